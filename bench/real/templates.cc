// templates.cc -- a template-heavy translation unit for compare.sh: g++ -O2 -c compiles it under
// each allocator (the compiler's own allocations are what is measured). AMB_N (default 48)
// scales the number of instantiated types.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#ifndef AMB_N
#define AMB_N 48
#endif

template <int N> struct Item {
  int v = N;
  std::string s = std::to_string(N);
  bool operator<(const Item &o) const { return v < o.v || (v == o.v && s < o.s); }
};

template <int N> struct Work {
  static long run(long seed) {
    std::vector<Item<N>> v(16 + N % 7);
    for (auto &x : v) x.v = static_cast<int>(seed = seed * 6364136223846793005L + N);
    std::sort(v.begin(), v.end());
    std::map<std::string, std::vector<Item<N>>> m;
    for (auto &x : v) m[x.s].push_back(x);
    std::unordered_map<int, std::optional<Item<N>>> u;
    for (auto &x : v) u.emplace(x.v, x);
    std::variant<int, std::string, Item<N>> var = v.front();
    auto t = std::make_tuple(v.size(), m.size(), u.size(), std::make_shared<Item<N>>());
    std::function<long(long)> f = [&](long k) { return k + static_cast<long>(std::get<0>(t)); };
    long acc = std::accumulate(v.begin(), v.end(), 0L, [](long a, const Item<N> &x) { return a + x.v; });
    return acc + f(static_cast<long>(var.index())) + Work<N - 1>::run(seed);
  }
};
template <> struct Work<0> {
  static long run(long seed) { return seed; }
};

long entry(long seed) { return Work<AMB_N>::run(seed); }
