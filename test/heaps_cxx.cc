// heaps_cxx.cc -- am_heap_set_default with C++ containers (issue 16): linked with libamalloc.so,
// so operator new is amalloc's malloc, which allocates from the thread's default heap.
#include "test.h"

#include <amalloc.h>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "heaps_stats.h"

int main() {
  test_init("heaps_cxx");
  CHECK_AMALLOC_ACTIVE();
  unsigned rounds = (unsigned)scaled(50);
  std::vector<int> outside(10, 1);           // the thread's own heap
  for (unsigned round = 0; round < rounds; round++) {
    am_heap_t *h = am_heap_new();
    CHECK(h != nullptr);
    CHECK(am_heap_set_default(h) == nullptr);
    // a request's objects: a map of strings, built in the heap and dropped with it (never
    // destructed: the destroy frees them all)
    auto *m = new std::map<std::string, std::vector<int>>();
    for (int i = 0; i < 5000; i++) (*m)["key number " + std::to_string(i)].assign(1 + i % 20, i);
    am_heap_stats_t st = hstats(h);
    CHECK_GE(st.blocks, 5000 * 2);     // (nodes and vectors; the keys fit std::string's own buffer)
    size_t sum = 0;
    for (auto &kv : *m) sum += kv.second.size();
    size_t want = 0;
    for (int i = 0; i < 5000; i++) want += (size_t)(1 + i % 20);
    CHECK_EQ(sum, want);
    // a container whose memory is freed as usual inside the heap
    {
      std::vector<std::string> v;
      for (int i = 0; i < 1000; i++) v.push_back(std::string(100, 'x'));
    }
    CHECK(am_heap_set_default(nullptr) == h);
    // back on the thread's own heap: this vector is not the heap's
    std::vector<int> after(1000, 2);
    size_t blocks = hstats(h).blocks;
    std::vector<int> more(2000, 3);
    CHECK_EQ(hstats(h).blocks, blocks);
    am_heap_destroy(h);
    CHECK(after[999] == 2 && more[1999] == 3 && outside[9] == 1);
  }
  // set_default in another thread, the thread exits with its heap still the default: the heap
  // is released there, its blocks stay valid here
  std::map<int, int> *kept = nullptr;
  std::thread t([&] {
    am_heap_t *h = am_heap_new();
    am_heap_set_default(h);
    kept = new std::map<int, int>();
    for (int i = 0; i < 1000; i++) (*kept)[i] = i * 2;
  });
  t.join();
  int bad = 0;
  for (int i = 0; i < 1000; i++) bad += (*kept)[i] != i * 2;
  CHECK_EQ(bad, 0);
  delete kept;
  return test_summary();
}
