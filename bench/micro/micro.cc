// micro.cc -- micro benchmarks (google-benchmark) of every allocator in the same binary and run.
//
//   micro [--quick] [--alloc=NAME[,NAME..]] [google-benchmark flags, e.g. --benchmark_filter=pair]
//
// The allocators come from alloctab.c (one table of function pointers each: glibc, amalloc via
// am_*, mimalloc, jemalloc, tcmalloc via dlopen; extra libraries via AMB_EXTRA=name=/path.so).
// Benchmark names are CASE/ALLOCATOR[/real_time/threads:N]. --quick sets a short min_time.
//
// Cases
//   pair_SIZE          malloc + free of one block, 8 B .. 1 MiB
//   sized_SIZE         malloc + sized free (free_sized / sdallocx / mi_free_size / tc_free_sized)
//   lifo_SIZE, fifo_SIZE, random_SIZE
//                      1000 blocks allocated, then freed in reverse / same / random order
//   calloc_SIZE        calloc + free
//   realloc_grow       a block grown by realloc from 16 B to 64 KiB in steps of ~12%
//   aligned_ALIGN      aligned allocation of ALIGN bytes at alignment ALIGN + free
//   mt_same            each thread: 100 blocks of 16..1024 B allocated then freed (1-8 threads)
//   mt_xthread         thread pairs: the producer allocates, the consumer frees (2-8 threads)
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "alloctab.h"

namespace {

inline void touch(void *p) {
  static_cast<volatile unsigned char *>(p)[0] = 1;
}

void BM_pair(benchmark::State &st, const amb_alloc *a, size_t size) {
  for (auto _ : st) {
    void *p = a->malloc(size);
    touch(p);
    benchmark::DoNotOptimize(p);
    a->free(p);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_sized(benchmark::State &st, const amb_alloc *a, size_t size) {
  for (auto _ : st) {
    void *p = a->malloc(size);
    touch(p);
    benchmark::DoNotOptimize(p);
    a->free_sized(p, size);
  }
  st.SetItemsProcessed(st.iterations());
}

enum Order { LIFO, FIFO, RANDOM };
constexpr int kBatch = 1000;

void BM_batch(benchmark::State &st, const amb_alloc *a, size_t size, Order order) {
  std::vector<void *> blocks(kBatch);
  std::vector<int> perm(kBatch);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < kBatch; i++) perm[i] = i;
  for (int i = kBatch - 1; i > 0; i--) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    std::swap(perm[i], perm[x % (i + 1)]);
  }
  for (auto _ : st) {
    for (int i = 0; i < kBatch; i++) {
      blocks[i] = a->malloc(size);
      touch(blocks[i]);
    }
    benchmark::ClobberMemory();
    if (order == LIFO)
      for (int i = kBatch - 1; i >= 0; i--) a->free(blocks[i]);
    else if (order == FIFO)
      for (int i = 0; i < kBatch; i++) a->free(blocks[i]);
    else
      for (int i = 0; i < kBatch; i++) a->free(blocks[perm[i]]);
  }
  st.SetItemsProcessed(st.iterations() * kBatch);
}

void BM_calloc(benchmark::State &st, const amb_alloc *a, size_t size) {
  for (auto _ : st) {
    void *p = a->calloc(1, size);
    benchmark::DoNotOptimize(p);
    a->free(p);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_realloc(benchmark::State &st, const amb_alloc *a) {
  int64_t steps = 0;
  for (auto _ : st) {
    size_t n = 16;
    char *p = static_cast<char *>(a->malloc(n));
    p[0] = 1;
    while (n < 64 * 1024) {
      n += n / 8 + 8;
      p = static_cast<char *>(a->realloc(p, n));
      p[n - 1] = 2;
      steps++;
    }
    a->free(p);
  }
  st.SetItemsProcessed(steps);
}

void BM_aligned(benchmark::State &st, const amb_alloc *a, size_t align) {
  for (auto _ : st) {
    void *p = a->aligned(align, align);
    touch(p);
    benchmark::DoNotOptimize(p);
    a->free(p);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_mt_same(benchmark::State &st, const amb_alloc *a) {
  constexpr int kN = 100;
  void *blocks[kN];
  uint64_t x = 0x2545F4914F6CDD1Dull + st.thread_index();
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      blocks[i] = a->malloc(16 + x % 1009);
      touch(blocks[i]);
    }
    for (int i = 0; i < kN; i++) a->free(blocks[i]);
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

// One single-producer single-consumer ring per thread pair. Producer and consumer run the same
// number of iterations and move the same number of blocks, so a ring is empty between runs.
constexpr int kRing = 4096;
constexpr int kXBatch = 64;
struct alignas(64) Ring {
  std::atomic<uint64_t> head{0};
  alignas(64) std::atomic<uint64_t> tail{0};
  alignas(64) void *slot[kRing];
};
Ring rings[4];

void BM_mt_xthread(benchmark::State &st, const amb_alloc *a) {
  Ring &r = rings[(st.thread_index() / 2) % 4];
  bool producer = st.thread_index() % 2 == 0;
  uint64_t x = 0x9E3779B97F4A7C15ull + st.thread_index();
  for (auto _ : st) {
    for (int i = 0; i < kXBatch; i++) {
      if (producer) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        void *p = a->malloc(16 + x % 497);
        touch(p);
        uint64_t h = r.head.load(std::memory_order_relaxed);
        for (int spin = 0; h - r.tail.load(std::memory_order_acquire) >= kRing; spin++)
          if (spin > 64) sched_yield();
        r.slot[h % kRing] = p;
        r.head.store(h + 1, std::memory_order_release);
      } else {
        uint64_t t = r.tail.load(std::memory_order_relaxed);
        for (int spin = 0; r.head.load(std::memory_order_acquire) == t; spin++)
          if (spin > 64) sched_yield();
        void *p = r.slot[t % kRing];
        r.tail.store(t + 1, std::memory_order_release);
        a->free(p);
      }
    }
  }
  if (producer) st.SetItemsProcessed(st.iterations() * kXBatch);
}

}  // namespace

int main(int argc, char **argv) {
  amb_reexec_with_static_tls(argv);
  std::vector<char *> args;
  std::string only;
  bool quick = false;
  static char min_time[] = "--benchmark_min_time=0.02";
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (std::strncmp(argv[i], "--alloc=", 8) == 0)
      only = argv[i] + 8;
    else
      args.push_back(argv[i]);
  }
  if (quick) args.insert(args.begin() + 1, min_time);  // a later --benchmark_min_time wins
  amb_alloc *table;
  int n = amb_load(only.c_str(), &table);
  if (n == 0) {
    std::fprintf(stderr, "micro: no allocator available\n");
    return 1;
  }
  std::fprintf(stderr, "micro: allocators:");
  for (int i = 0; i < n; i++) std::fprintf(stderr, " %s", table[i].name);
  std::fprintf(stderr, "\n");

  auto reg = [](const std::string &c, const amb_alloc *a, auto fn, auto... more) {
    return benchmark::RegisterBenchmark((c + "/" + a->name).c_str(), fn, a, more...);
  };
  const size_t pair_sizes[] = {8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536,
                               262144, 1048576};
  for (size_t s : pair_sizes)
    for (int i = 0; i < n; i++) reg("pair_" + std::to_string(s), &table[i], BM_pair, s);
  for (size_t s : {64, 1024})
    for (int i = 0; i < n; i++) reg("sized_" + std::to_string(s), &table[i], BM_sized, (size_t)s);
  for (size_t s : {16, 256, 4096}) {
    for (int i = 0; i < n; i++) reg("lifo_" + std::to_string(s), &table[i], BM_batch, (size_t)s, LIFO);
    for (int i = 0; i < n; i++) reg("fifo_" + std::to_string(s), &table[i], BM_batch, (size_t)s, FIFO);
    for (int i = 0; i < n; i++)
      reg("random_" + std::to_string(s), &table[i], BM_batch, (size_t)s, RANDOM);
  }
  for (size_t s : {64, 4096, 262144})
    for (int i = 0; i < n; i++) reg("calloc_" + std::to_string(s), &table[i], BM_calloc, (size_t)s);
  for (int i = 0; i < n; i++) reg("realloc_grow", &table[i], BM_realloc);
  for (size_t al : {64, 4096})
    for (int i = 0; i < n; i++) reg("aligned_" + std::to_string(al), &table[i], BM_aligned, (size_t)al);
  for (int i = 0; i < n; i++)
    reg("mt_same", &table[i], BM_mt_same)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();
  for (int i = 0; i < n; i++)
    reg("mt_xthread", &table[i], BM_mt_xthread)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();

  int nargs = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
