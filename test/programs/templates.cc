// templates.cc -- a template-heavy C++17 program for the preload tests.
//
// The test compiles it with g++ -O2 twice, once with the C library's malloc and once with amalloc
// preloaded (so cc1plus, as, collect2 and ld run on amalloc), checks that both compilers wrote
// the same assembly, and runs the result under both allocators: its output must not change.
// Everything it prints is deterministic (no addresses, no unordered iteration without sorting).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace tpl {

// ---- a deterministic generator --------------------------------------------------------------
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ULL + 1) {}
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

// ---- compile-time computations ------------------------------------------------------------------
template <std::size_t N> struct Fib { static constexpr std::uint64_t value = Fib<N - 1>::value + Fib<N - 2>::value; };
template <> struct Fib<0> { static constexpr std::uint64_t value = 0; };
template <> struct Fib<1> { static constexpr std::uint64_t value = 1; };

template <std::size_t... Is>
constexpr std::array<std::uint64_t, sizeof...(Is)> fib_table(std::index_sequence<Is...>) {
  return {{Fib<Is>::value...}};
}
constexpr auto kFibs = fib_table(std::make_index_sequence<64>{});

template <typename... Ts> struct TypeList {};
template <typename List> struct Length;
template <typename... Ts> struct Length<TypeList<Ts...>> : std::integral_constant<std::size_t, sizeof...(Ts)> {};
template <typename T, typename List> struct Prepend;
template <typename T, typename... Ts> struct Prepend<T, TypeList<Ts...>> { using type = TypeList<T, Ts...>; };
template <template <typename> class Pred, typename List> struct Filter;
template <template <typename> class Pred> struct Filter<Pred, TypeList<>> { using type = TypeList<>; };
template <template <typename> class Pred, typename T, typename... Ts>
struct Filter<Pred, TypeList<T, Ts...>> {
  using rest = typename Filter<Pred, TypeList<Ts...>>::type;
  using type = std::conditional_t<Pred<T>::value, typename Prepend<T, rest>::type, rest>;
};
using AllTypes = TypeList<int, double, char, long, float, short, unsigned, std::string, bool>;
static_assert(Length<Filter<std::is_integral, AllTypes>::type>::value == 6);
static_assert(Length<Filter<std::is_floating_point, AllTypes>::type>::value == 2);

// ---- a generic matrix -----------------------------------------------------------------------------
template <typename T>
class Matrix {
 public:
  Matrix(std::size_t r, std::size_t c) : rows_(r), cols_(c), data_(r * c) {}
  T &operator()(std::size_t i, std::size_t j) { return data_[i * cols_ + j]; }
  const T &operator()(std::size_t i, std::size_t j) const { return data_[i * cols_ + j]; }
  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  template <typename U>
  Matrix<std::common_type_t<T, U>> operator*(const Matrix<U> &o) const {
    Matrix<std::common_type_t<T, U>> out(rows_, o.cols());
    for (std::size_t i = 0; i < rows_; ++i)
      for (std::size_t k = 0; k < cols_; ++k)
        for (std::size_t j = 0; j < o.cols(); ++j) out(i, j) += (*this)(i, k) * o(k, j);
    return out;
  }
  T trace() const {
    T t{};
    for (std::size_t i = 0; i < std::min(rows_, cols_); ++i) t += (*this)(i, i);
    return t;
  }

 private:
  std::size_t rows_, cols_;
  std::vector<T> data_;
};

// ---- a small expression language with std::variant -------------------------------------------
struct Expr;
using ExprPtr = std::shared_ptr<Expr>;
struct Num { long v; };
struct Var { std::string name; };
struct Bin { char op; ExprPtr l, r; };
struct Expr { std::variant<Num, Var, Bin> node; };

template <class... Fs> struct Overload : Fs... { using Fs::operator()...; };
template <class... Fs> Overload(Fs...) -> Overload<Fs...>;

ExprPtr make_expr(Rng &rng, int depth) {
  auto e = std::make_shared<Expr>();
  if (depth == 0 || rng.below(4) == 0) {
    if (rng.below(2)) e->node = Num{static_cast<long>(rng.below(100))};
    else e->node = Var{std::string(1, static_cast<char>('a' + rng.below(6)))};
  } else {
    static const char ops[] = "+-*";
    e->node = Bin{ops[rng.below(3)], make_expr(rng, depth - 1), make_expr(rng, depth - 1)};
  }
  return e;
}

long eval(const ExprPtr &e, const std::map<std::string, long> &env) {
  return std::visit(Overload{
      [](const Num &n) { return n.v; },
      [&](const Var &v) { auto it = env.find(v.name); return it == env.end() ? 0L : it->second; },
      [&](const Bin &b) {
        long l = eval(b.l, env), r = eval(b.r, env);
        switch (b.op) {
          case '+': return l + r;
          case '-': return l - r;
          default: return (l * r) % 1000003;
        }
      }}, e->node);
}

std::string show(const ExprPtr &e) {
  return std::visit(Overload{
      [](const Num &n) { return std::to_string(n.v); },
      [](const Var &v) { return v.name; },
      [](const Bin &b) { return "(" + show(b.l) + b.op + show(b.r) + ")"; }}, e->node);
}

// ---- generic algorithms over containers -----------------------------------------------------
template <typename Container, typename Key>
auto group_by(const Container &c, Key key) {
  using V = typename Container::value_type;
  using K = std::decay_t<std::invoke_result_t<Key, const V &>>;
  std::map<K, std::vector<V>> out;
  for (const auto &v : c) out[key(v)].push_back(v);
  return out;
}

template <typename Map>
std::uint64_t hash_map_contents(const Map &m) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto &[k, v] : m) {
    h = (h ^ std::hash<std::decay_t<decltype(k)>>{}(k)) * 1099511628211ULL;
    h = (h ^ static_cast<std::uint64_t>(v.size())) * 1099511628211ULL;
  }
  return h;
}

template <typename T, typename F>
std::vector<std::invoke_result_t<F, const T &>> map_vec(const std::vector<T> &in, F f) {
  std::vector<std::invoke_result_t<F, const T &>> out;
  out.reserve(in.size());
  for (const auto &x : in) out.push_back(f(x));
  return out;
}

template <typename... Args>
std::string concat(const Args &...args) {
  std::ostringstream os;
  ((os << args << ' '), ...);
  return os.str();
}

// ---- an LRU cache ------------------------------------------------------------------------------
template <typename K, typename V>
class Lru {
 public:
  explicit Lru(std::size_t cap) : cap_(cap) {}
  std::optional<V> get(const K &k) {
    auto it = index_.find(k);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }
  void put(const K &k, V v) {
    auto it = index_.find(k);
    if (it != index_.end()) {
      it->second->second = std::move(v);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(k, std::move(v));
    index_[k] = order_.begin();
    if (order_.size() > cap_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  std::size_t size() const { return order_.size(); }

 private:
  std::size_t cap_;
  std::list<std::pair<K, V>> order_;
  std::unordered_map<K, typename std::list<std::pair<K, V>>::iterator> index_;
};

// ---- a graph and Dijkstra ----------------------------------------------------------------------
template <typename W>
std::vector<W> dijkstra(const std::vector<std::vector<std::pair<std::size_t, W>>> &g, std::size_t src) {
  std::vector<W> dist(g.size(), std::numeric_limits<W>::max());
  std::set<std::pair<W, std::size_t>> q;
  dist[src] = 0;
  q.insert({0, src});
  while (!q.empty()) {
    auto [d, u] = *q.begin();
    q.erase(q.begin());
    for (auto [v, w] : g[u]) {
      if (d + w < dist[v]) {
        q.erase({dist[v], v});
        dist[v] = d + w;
        q.insert({dist[v], v});
      }
    }
  }
  return dist;
}

}  // namespace tpl

int main() {
  using namespace tpl;
  Rng rng(2024);
  std::uint64_t check = 0;
  auto mixin = [&check](std::uint64_t v) { check = (check ^ v) * 0x100000001b3ULL + 7; };

  // compile-time tables
  std::cout << "fib63 " << kFibs[63] << '\n';
  mixin(kFibs[50]);

  // words: vector<string>, unordered_map, map, set
  std::vector<std::string> words;
  for (int i = 0; i < 60000; ++i) {
    std::string w;
    for (std::uint64_t n = 1 + rng.below(8); n > 0; --n) w += static_cast<char>('a' + rng.below(20));
    words.push_back(std::move(w));
  }
  std::unordered_map<std::string, int> counts;
  for (const auto &w : words) ++counts[w];
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::cout << "words " << words.size() << " distinct " << counts.size() << " top";
  for (std::size_t i = 0; i < 5; ++i) std::cout << ' ' << sorted[i].first << '=' << sorted[i].second;
  std::cout << '\n';
  auto groups = group_by(words, [](const std::string &s) { return s.size(); });
  std::cout << "groups " << groups.size() << " hash " << hash_map_contents(groups) << '\n';
  std::set<std::string> uniq(words.begin(), words.end());
  mixin(uniq.size());
  std::unordered_set<std::string> us(words.begin(), words.end());
  mixin(us.size());

  // expressions
  std::map<std::string, long> env{{"a", 3}, {"b", 5}, {"c", 7}, {"d", 11}, {"e", 13}, {"f", 17}};
  long total = 0;
  std::string longest;
  for (int i = 0; i < 400; ++i) {
    auto e = make_expr(rng, 8);
    total = (total + eval(e, env)) % 1000000007;
    auto s = show(e);
    if (s.size() > longest.size()) longest = s;
  }
  std::cout << "expr total " << total << " longest " << longest.size() << '\n';

  // matrices of two types
  Matrix<long> a(60, 60);
  Matrix<double> b(60, 60);
  for (std::size_t i = 0; i < 60; ++i)
    for (std::size_t j = 0; j < 60; ++j) {
      a(i, j) = static_cast<long>(rng.below(10));
      b(i, j) = static_cast<double>(rng.below(1000)) / 8.0;
    }
  auto c = a * b;
  auto d = a * a;
  std::cout << "matrix trace " << c.trace() << ' ' << d.trace() << '\n';

  // LRU cache
  Lru<int, std::string> lru(1000);
  int hits = 0;
  for (int i = 0; i < 100000; ++i) {
    int k = static_cast<int>(rng.below(1500));
    if (auto v = lru.get(k)) {
      ++hits;
      mixin(v->size());
    } else {
      lru.put(k, concat("value", k, i % 10));
    }
  }
  std::cout << "lru hits " << hits << " size " << lru.size() << '\n';

  // graph
  const std::size_t n = 3000;
  std::vector<std::vector<std::pair<std::size_t, std::uint64_t>>> g(n);
  for (std::size_t u = 0; u < n; ++u)
    for (int e = 0; e < 6; ++e) g[u].push_back({rng.below(n), 1 + rng.below(100)});
  auto dist = dijkstra(g, 0);
  std::uint64_t reach = 0, far = 0;
  for (auto x : dist)
    if (x != std::numeric_limits<std::uint64_t>::max()) { ++reach; far = std::max(far, x); }
  std::cout << "graph reach " << reach << " far " << far << '\n';

  // deques, tuples, maps of vectors, transforms
  std::deque<std::tuple<int, std::string, double>> dq;
  for (int i = 0; i < 50000; ++i) {
    dq.emplace_back(i, std::to_string(i * 7), i / 3.0);
    if (i % 3 == 0) dq.pop_front();
  }
  auto lens = map_vec(words, [](const std::string &s) { return s.size() * 2 + 1; });
  std::cout << "deque " << dq.size() << " sum " << std::accumulate(lens.begin(), lens.end(), std::size_t{0})
            << '\n';
  std::map<int, std::vector<std::string>> mv;
  for (const auto &[i, s, x] : dq) mv[i % 97].push_back(s + (x > 100 ? "+" : "-"));
  for (const auto &[k, v] : mv) mixin(static_cast<std::uint64_t>(k) * v.size() + v.back().size());
  std::cout << "check " << check << '\n';
  return 0;
}
