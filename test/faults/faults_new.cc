// faults_new.cc -- C++ operator new under injected mmap/mremap failures (libamalloc.so linked).
//
// With failures on (am_test_os_failures(0, -1)):
//   - throwing new (plain, array, aligned) of a size that needs fresh memory throws
//     std::bad_alloc; the nothrow versions return nullptr; small sizes after the slabs in place
//     are used up (allocating with nothrow new until nullptr);
//   - a new-handler is called, and when it turns the failures off, new succeeds;
//   - std::vector and std::string growing under failure throw std::bad_alloc and keep their
//     contents (the strong guarantee of push_back / append), and go on growing once failures
//     are off;
// and afterwards the program keeps working (containers, thousands of blocks).
#include "test.h"

#include <amalloc.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <vector>

namespace {

const size_t kMiB = size_t(1) << 20;

template <class F> bool throws_bad_alloc(F f) {
  try {
    f();
  } catch (const std::bad_alloc &) {
    return true;
  }
  return false;
}

void test_new_fails() {
  am_test_os_failures(0, -1);
  bool plain = throws_bad_alloc([] { ::operator delete(::operator new(opaque_size(kMiB))); });
  bool array = throws_bad_alloc([] { delete[] new char[opaque_size(2 * kMiB)]; });
  bool aligned = throws_bad_alloc([] {
    ::operator delete(::operator new(opaque_size(kMiB), std::align_val_t(4096)), std::align_val_t(4096));
  });
  bool aligned_small = throws_bad_alloc([] {
    // alignment above a page: always a mapping of its own
    ::operator delete(::operator new(opaque_size(64), std::align_val_t(65536)), std::align_val_t(65536));
  });
  void *nt = ::operator new(opaque_size(kMiB), std::nothrow);
  void *nta = ::operator new[](opaque_size(kMiB), std::align_val_t(256), std::nothrow);
  long failed = am_test_os_failures(0, 0);
  CHECK(plain);
  CHECK(array);
  CHECK(aligned);
  CHECK(aligned_small);
  CHECK(nt == nullptr);
  CHECK(nta == nullptr);
  CHECK(failed >= 6);
  ::operator delete(nt);
  ::operator delete[](nta, std::align_val_t(256));

  // failures off: the same work
  void *p = ::operator new(kMiB);
  char *q = new char[2 * kMiB];
  void *r = ::operator new(kMiB, std::align_val_t(4096));
  CHECK_ALIGNED(r, 4096);
  pat_fill(p, kMiB, 1, 4096);
  pat_fill(q, 2 * kMiB, 2, 4096);
  CHECK(pat_check(p, kMiB, 1, 4096));
  CHECK(pat_check(q, 2 * kMiB, 2, 4096));
  ::operator delete(p);
  delete[] q;
  ::operator delete(r, std::align_val_t(4096));
  printf("faults-new: new of 1-2 MiB under failure: std::bad_alloc / nullptr, %ld mapping calls "
         "failed; recovered\n", failed);
}

// Small blocks: use up the slabs in place with nothrow new, then the throwing new throws.
void test_new_small() {
  std::vector<void *> got;
  got.reserve(2000000);  // before the failures: the vector itself must not need memory
  am_test_os_failures(0, -1);
  for (;;) {
    void *p = ::operator new(opaque_size(48), std::nothrow);
    if (p == nullptr) break;
    *static_cast<size_t *>(p) = got.size();
    got.push_back(p);
    if (got.size() == got.capacity()) break;
  }
  bool threw = throws_bad_alloc([] { ::operator delete(::operator new(opaque_size(48))); });
  long failed = am_test_os_failures(0, 0);
  CHECK(got.size() < got.capacity());
  CHECK(threw);
  CHECK(failed >= 2);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); i++) {
    if (*static_cast<size_t *>(got[i]) != i) bad++;
    ::operator delete(got[i], size_t(48));
  }
  CHECK_EQ(bad, 0);
  void *p = ::operator new(48);
  CHECK(p != nullptr);
  ::operator delete(p);
  printf("faults-new: 48-byte blocks: %zu, then nullptr / std::bad_alloc; recovered\n", got.size());
}

int handler_calls;
void handler_turns_failures_off() {
  handler_calls++;
  am_test_os_failures(0, 0);
}
void test_new_handler() {
  handler_calls = 0;
  std::set_new_handler(handler_turns_failures_off);
  am_test_os_failures(0, -1);
  void *p = nullptr;
  bool threw = throws_bad_alloc([&] { p = ::operator new(opaque_size(3 * kMiB)); });
  std::set_new_handler(nullptr);
  CHECK(!threw);
  CHECK(p != nullptr);
  CHECK_EQ(handler_calls, 1);
  if (p) {
    pat_fill(p, 3 * kMiB, 3, 4096);
    CHECK(pat_check(p, 3 * kMiB, 3, 4096));
    ::operator delete(p);
  }
  CHECK_EQ(am_test_os_failures(0, 0), 0);
  printf("faults-new: the new-handler ran %d time(s) and new succeeded after it\n", handler_calls);
}

void test_containers() {
  // a vector growing under failure: push_back throws, the vector keeps its elements
  std::vector<uint64_t> v;
  am_test_os_failures(0, -1);
  bool threw = false;
  size_t at = 0;
  try {
    for (uint64_t i = 0; i < 16 * kMiB; i++) v.push_back(i * 2654435761u);
  } catch (const std::bad_alloc &) {
    threw = true;
    at = v.size();
  }
  long failed = am_test_os_failures(0, 0);
  CHECK(threw);
  CHECK(failed >= 1);
  CHECK_EQ(v.size(), at);
  size_t bad = 0;
  for (size_t i = 0; i < v.size(); i++)
    if (v[i] != i * 2654435761u) bad++;
  CHECK_EQ(bad, 0);
  // failures off: it goes on growing
  for (uint64_t i = v.size(); i < 4 * kMiB; i++) v.push_back(i * 2654435761u);
  bad = 0;
  for (size_t i = 0; i < v.size(); i++)
    if (v[i] != i * 2654435761u) bad++;
  CHECK_EQ(bad, 0);
  CHECK_EQ(v.size(), 4 * kMiB);
  printf("faults-new: vector<uint64_t>: std::bad_alloc at %zu elements under failure; grew to "
         "%zu after\n", at, v.size());
  std::vector<uint64_t>().swap(v);

  // a string
  std::string s;
  am_test_os_failures(0, -1);
  threw = false;
  size_t slen = 0;
  try {
    for (int i = 0; i < 1 << 24; i++) s += static_cast<char>('a' + i % 26);
  } catch (const std::bad_alloc &) {
    threw = true;
    slen = s.size();
  }
  failed = am_test_os_failures(0, 0);
  CHECK(threw);
  CHECK(failed >= 1);
  CHECK_EQ(s.size(), slen);
  bad = 0;
  for (size_t i = 0; i < s.size(); i++)
    if (s[i] != static_cast<char>('a' + i % 26)) bad++;
  CHECK_EQ(bad, 0);
  s.append(3 * kMiB, 'z');
  CHECK_EQ(s.size(), slen + 3 * kMiB);
  printf("faults-new: string: std::bad_alloc at %zu bytes under failure; grew after\n", slen);

  // a vector of vectors: a growth failure in the middle of many small allocations
  std::vector<std::vector<int>> vv;
  am_test_os_failures(0, -1);
  threw = false;
  try {
    for (int i = 0; i < 200000; i++) vv.emplace_back(static_cast<size_t>(1 + i % 50), i);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  failed = am_test_os_failures(0, 0);
  CHECK(threw);
  bad = 0;
  for (size_t i = 0; i < vv.size(); i++)
    if (vv[i].size() != 1 + i % 50 || vv[i].back() != static_cast<int>(i)) bad++;
  CHECK_EQ(bad, 0);
  size_t vvn = vv.size();
  vv.clear();
  vv.shrink_to_fit();
  printf("faults-new: vector<vector<int>>: std::bad_alloc after %zu elements; %ld mapping calls "
         "failed\n", vvn, failed);
}

// The program goes on as usual.
void test_usable_after() {
  std::map<int, std::string> m;
  for (int i = 0; i < 20000; i++) m[i] = std::string(static_cast<size_t>(i % 300), static_cast<char>('A' + i % 26));
  size_t bad = 0;
  for (auto &kv : m)
    if (kv.second.size() != static_cast<size_t>(kv.first % 300) ||
        (kv.second.size() && kv.second[0] != static_cast<char>('A' + kv.first % 26)))
      bad++;
  CHECK_EQ(bad, 0);
  std::vector<char *> blocks;
  for (int i = 0; i < 5000; i++) {
    size_t n = 1 + static_cast<size_t>(i) * 37 % 70000;
    char *p = new char[n];
    pat_fill(p, n, static_cast<uint64_t>(i), 4096);
    blocks.push_back(p);
  }
  for (int i = 0; i < 5000; i++) {
    size_t n = 1 + static_cast<size_t>(i) * 37 % 70000;
    if (!pat_check(blocks[static_cast<size_t>(i)], n, static_cast<uint64_t>(i), 4096)) bad++;
    delete[] blocks[static_cast<size_t>(i)];
  }
  CHECK_EQ(bad, 0);
}

}  // namespace

int main() {
  test_init("faults-new");
  CHECK_AMALLOC_ACTIVE();
  printf("faults-new: start\n");  // stdout's buffer, before any failure
  test_new_fails();
  test_new_small();
  test_new_handler();
  test_containers();
  test_usable_after();
  CHECK_EQ(am_test_os_failures(0, 0), 0);
  return test_summary();
}
