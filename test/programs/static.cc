// static.cc -- a C++ program linked with libamalloc.a, dynamically (static-cxx) or fully
// statically with -static (static-full-cxx). It checks that malloc and ::operator new are
// amalloc's, then uses new/delete and the standard containers.
#include <amalloc.h>
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#ifndef AM_FULL_STATIC
#include <dlfcn.h>
#endif

extern "C" void *am_malloc(std::size_t) __attribute__((weak));

#ifdef AM_FULL_STATIC
#define KIND "fully static"
#else
#define KIND "dynamic, libamalloc.a"
#endif

static int failures;
#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                            \
      std::printf(__VA_ARGS__);                                                               \
      std::printf("\n");                                                                      \
      failures++;                                                                             \
    }                                                                                         \
  } while (0)

// Keeps the compiler from removing new/delete pairs (allowed since C++14).
static void *volatile sink;

int main() {
  void *volatile m = reinterpret_cast<void *>(&malloc);
  void *volatile a = reinterpret_cast<void *>(&am_malloc);
  CHECK(a != nullptr, "am_malloc is not linked in");
  CHECK(m == a, "malloc (%p) is not am_malloc (%p)", m, a);

  // ::operator new: its memory is counted by amalloc, and (where dladdr works) it is defined in
  // the same object as am_malloc, not in libstdc++.
  {
    auto before = am_mallinfo2();
    char *p = new char[1 << 20];
    sink = p;
    std::memset(p, 1, 1 << 20);
    auto during = am_mallinfo2();
    CHECK(during.uordblks >= before.uordblks + (1 << 20),
          "uordblks %zu -> %zu after new char[1 MiB]", before.uordblks, during.uordblks);
    CHECK(malloc_usable_size(p) >= (1 << 20), "malloc_usable_size(new[]) = %zu",
          malloc_usable_size(p));
    CHECK(am_malloc_usable_size(p) == malloc_usable_size(p), "usable sizes differ");
    delete[] p;
    auto after = am_mallinfo2();
    CHECK(after.uordblks + (1 << 20) <= during.uordblks, "uordblks %zu -> %zu after delete[]",
          during.uordblks, after.uordblks);
  }
  {
    void *p = ::operator new(3 << 20);
    sink = p;
    CHECK(am_malloc_usable_size(p) >= (3u << 20), "operator new(3 MiB) usable %zu",
          am_malloc_usable_size(p));
    ::operator delete(p);
    void *q = ::operator new(100, std::align_val_t(4096));
    sink = q;
    CHECK((reinterpret_cast<std::uintptr_t>(q) & 4095) == 0, "aligned new %p", q);
    CHECK(am_malloc_usable_size(q) >= 100, "aligned new usable %zu", am_malloc_usable_size(q));
    ::operator delete(q, std::align_val_t(4096));
    void *r = ::operator new(64, std::nothrow);
    CHECK(r != nullptr && am_malloc_usable_size(r) >= 64, "nothrow new");
    ::operator delete(r);
  }
#ifndef AM_FULL_STATIC
  {
    using new_fn = void *(*)(std::size_t);
    Dl_info in_new{}, in_am{};
    void *volatile op_new = reinterpret_cast<void *>(static_cast<new_fn>(&::operator new));
    int ok1 = dladdr(op_new, &in_new), ok2 = dladdr(a, &in_am);
    CHECK(ok1 && ok2, "dladdr failed");
    if (ok1 && ok2) {
      CHECK(in_new.dli_fbase == in_am.dli_fbase,
            "operator new is in %s, am_malloc in %s: operator new is not amalloc's",
            in_new.dli_fname, in_am.dli_fname);
      CHECK(std::strstr(in_new.dli_fname, "libstdc++") == nullptr,
            "operator new comes from %s", in_new.dli_fname);
    }
  }
#endif

  // the standard containers
  std::map<std::string, std::vector<int>> groups;
  std::unordered_map<int, std::string> names;
  for (int i = 0; i < 100000; i++) {
    std::string key = "k" + std::to_string(i % 997);
    groups[key].push_back(i);
    names[i] = std::string(static_cast<std::size_t>(i % 50), 'x') + std::to_string(i);
    if (i % 3 == 0) names.erase(i / 2);
  }
  std::size_t total = 0;
  for (const auto &kv : groups) total += kv.second.size();
  CHECK(total == 100000, "map total %zu", total);
  CHECK(groups.size() == 997, "map size %zu", groups.size());
  std::vector<std::unique_ptr<std::string>> owned;
  for (int i = 0; i < 20000; i++) owned.push_back(std::make_unique<std::string>(i % 300, 'y'));
  std::size_t chars = 0;
  for (const auto &s : owned) chars += s->size();
  CHECK(chars > 0, "strings");

  // threads that free what other threads allocated
  std::vector<std::vector<std::string *>> made(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([t, &made] {
      for (int i = 0; i < 20000; i++) made[t].push_back(new std::string(i % 200 + 1, 'a' + t));
    });
  for (auto &t : ts) t.join();
  ts.clear();
  for (int t = 0; t < 4; t++)
    ts.emplace_back([t, &made] {
      for (auto *s : made[(t + 1) % 4]) delete s;
    });
  for (auto &t : ts) t.join();

  if (failures) {
    std::printf("%d check(s) failed (%s)\n", failures, KIND);
    return 1;
  }
  std::printf("ok: amalloc %d provides malloc and operator new in this %s C++ program\n",
              am_version(), KIND);
  return 0;
}
