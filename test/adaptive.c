/* adaptive.c -- the purge delay that learns (src/purge.c), through the am_* API.
 *
 *   adaptive regret   64 MiB of 64-byte blocks allocated, freed, 150 ms of idle, allocated
 *                     again: the first round's memory was purged (its refill faults the pages
 *                     in again) and that purge was regretted: the delay in force grew above
 *                     the base (am_stats_t purge_delay_ms, purge_regrets). The next rounds
 *                     keep their memory through the same idle time: a refill faults in under
 *                     a tenth of the pages the first one did. Then, after the last free, the
 *                     memory is still back with the OS within 3 s of light traffic (RSS within
 *                     15% of what it was before the rounds: the memory issue's target).
 *   adaptive fixed    the same with AMALLOC_PURGE_DELAY_MAX_MS at the base: the delay stays at
 *                     the base and every refill faults its pages in again.
 *   adaptive relax    after a regret (the maximum set to 200 ms), memory freed and not wanted
 *                     again within the window: the next timed purge halves the delay.
 *   adaptive heaploop a request loop: a first-class heap per round, 10 MiB of 48-byte blocks
 *                     and 16-80-byte ones (the request benchmark's nodes and strings) taken
 *                     over at least 80 ms (longer than the base delay: the last segment
 *                     is reached after it), then destroyed. From the third round on, a round
 *                     faults in under a tenth of the pages the first did (the destroyed
 *                     heap's memory is kept for the next one), and after the last round the
 *                     memory is back with the OS within 3 s of light traffic.
 *   adaptive heaponce one such heap, destroyed once (no loop): its memory is back with the OS
 *                     within 0.5 s of light traffic.
 *   adaptive large    a freed 8 MiB block cached, then a 12 MiB malloc: the cached mapping
 *                     grows (in place or moved by mremap) and keeps its resident pages: the
 *                     new block faults in about 4 MiB, not 12.
 * Bounds are in pages and bytes, never in speed.
 */
#include "test.h"

#include <amalloc.h>
#include <sys/resource.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define NBLOCKS ((size_t)(64 * MiB / 64))

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static am_stats_t stats(void) {
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  return st;
}

/* A few small allocations (slow paths run purge passes), then `ms` of sleep. */
static void light_traffic(long ms) {
  for (int i = 0; i < 200; i++) {
    void *p = am_malloc(32 + (size_t)(i % 7) * 16);
    am_free(p);
  }
  sleep_ms(ms);
}

static void **blocks;

/* Allocates the 64 MiB and writes every block; returns the page faults it took. */
static long fill(void) {
  long f0 = minflt();
  for (size_t i = 0; i < NBLOCKS; i++) {
    blocks[i] = am_malloc(64);
    memset(blocks[i], (int)i, 64);
  }
  return minflt() - f0;
}

static void empty(void) {
  for (size_t i = 0; i < NBLOCKS; i++) am_free(blocks[i]);
}

/* One round after the first: idle 150 ms (with a little traffic, so that purge passes run),
 * then the refill. Returns its faults. */
static long round_after_idle(void) {
  empty();
  for (int i = 0; i < 5; i++) light_traffic(30);
  return fill();
}

static void test_cycles(bool adapts) {
  long base = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  CHECK_EQ(base, 25);
  if (!adapts) CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MAX_MS, base), 0);
  else CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MAX_MS), 1000);
  blocks = am_malloc(NBLOCKS * sizeof(void *));
  memset(blocks, 0, NBLOCKS * sizeof(void *));
  size_t rss0 = vm_rss_kib();              /* (the array of pointers included: it stays) */
  CHECK_EQ(stats().purge_delay_ms, (size_t)base);
  long first = fill();
  long second = round_after_idle();
  am_stats_t st = stats();
  printf("%s: first fill %ld faults, refill after 150 ms idle %ld; delay %zu ms, regrets %zu\n",
         adapts ? "adapts" : "fixed", first, second, st.purge_delay_ms, st.purge_regrets);
  CHECK_GE(first, (long)(64 * MiB / 4096) / 2);
  CHECK_GE(second, first / 2);              /* the first idle purged it: faulted in again */
  long later[3];
  for (int r = 0; r < 3; r++) later[r] = round_after_idle();
  st = stats();
  printf("%s: refills %ld %ld %ld faults; delay %zu ms, regrets %zu, relaxes %zu\n",
         adapts ? "adapts" : "fixed", later[0], later[1], later[2], st.purge_delay_ms,
         st.purge_regrets, st.purge_relaxes);
  if (adapts) {
    CHECK_GE(st.purge_regrets, 1);
    CHECK(st.purge_delay_ms > (size_t)base);
    CHECK(st.purge_delay_ms <= 1000);
    CHECK(later[1] < first / 10);           /* kept through the idle time */
    CHECK(later[2] < first / 10);
  } else {
    CHECK_EQ(st.purge_regrets, 0);
    CHECK_EQ(st.purge_delay_ms, (size_t)base);
    for (int r = 0; r < 3; r++) CHECK_GE(later[r], first / 2);
  }
  /* memory still goes back: within 3 s of light traffic (the memory issue's bound) */
  empty();
  size_t peak = vm_rss_kib();
  double waited = 0;
  size_t rss = peak;
  while (waited < 3.0) {
    light_traffic(20);
    waited += 0.02;
    rss = vm_rss_kib();
    if (rss <= rss0 + rss0 * 15 / 100 + 1024) break;
  }
  printf("%s: after the last free RSS %zu MiB -> %zu MiB within %.2f s (before the rounds %zu MiB)\n",
         adapts ? "adapts" : "fixed", peak / 1024, rss / 1024, waited, rss0 / 1024);
  CHECK(peak > rss0 + 48 * 1024);           /* (the free itself leaves the memory resident) */
  CHECK(rss <= rss0 + rss0 * 15 / 100 + 1024);
  am_free(blocks);
}

static void test_relax(void) {
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MAX_MS, 200), 0);
  blocks = am_malloc(NBLOCKS * sizeof(void *));
  fill();
  round_after_idle();                      /* purged, then wanted again: a regret */
  am_stats_t st = stats();
  long grown = (long)st.purge_delay_ms;
  CHECK_GE(st.purge_regrets, 1);
  CHECK(grown > 25);
  /* now memory freed for good: purged after the delay (a window opens), nothing fresh taken
   * in the window (4 x 200 ms = 800 ms), then the next timed purge relaxes the delay */
  empty();
  for (int i = 0; i < 60; i++) light_traffic(20);       /* 1.2 s: purged, window passes */
  void *keep[64];
  for (int i = 0; i < 64; i++) keep[i] = am_malloc(64 * 1024);   /* medium blocks: another pool */
  for (int i = 0; i < 64; i++) am_free(keep[i]);
  void **small = am_malloc(2 * 16384 * sizeof(void *));
  for (size_t i = 0; i < 2 * 16384; i++) small[i] = am_malloc(64);   /* 2 MiB, from the kept slabs */
  for (size_t i = 0; i < 2 * 16384; i++) am_free(small[i]);
  am_free(small);
  for (int i = 0; i < 30; i++) light_traffic(20);       /* the second purge: the decision */
  st = stats();
  printf("relax: delay %ld ms after the regret, %zu ms now; regrets %zu, relaxes %zu\n", grown,
         st.purge_delay_ms, st.purge_regrets, st.purge_relaxes);
  CHECK_GE(st.purge_relaxes, 1);
  CHECK((long)st.purge_delay_ms < grown);
  am_free(blocks);
}

/* One request: a heap, 10 MiB of 48-byte and 16-80-byte blocks in 40 steps 2 ms apart,
 * destroyed. Returns its page faults. */
static long heap_round(void) {
  long f0 = minflt();
  am_heap_t *h = am_heap_new();
  CHECK(h != NULL);
  size_t per = 10 * MiB / 104 / 40;
  for (int s = 0; s < 40; s++) {
    for (size_t i = 0; i < per; i++) {
      void *p = am_heap_malloc(h, 48);
      memset(p, s + 1, 48);
      size_t n = 16 + i % 65;
      p = am_heap_malloc(h, n);
      memset(p, s + 1, n);
    }
    sleep_ms(2);
  }
  am_heap_destroy(h);
  return minflt() - f0;
}

/* RSS back within `limit_s` of light traffic; returns the seconds it took (or more). */
static double rss_back(size_t rss0, double limit_s) {
  double waited = 0;
  while (waited < limit_s) {
    light_traffic(20);
    waited += 0.02;
    if (vm_rss_kib() <= rss0 + 2048) break;
  }
  return waited;
}

static void test_heaploop(void) {
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MS), 25);
  size_t rss0 = vm_rss_kib();
  long f[8];
  for (int r = 0; r < 8; r++) f[r] = heap_round();
  am_stats_t st = stats();
  printf("heaploop: faults per round %ld %ld %ld %ld %ld %ld %ld %ld (10 MiB is %zu pages); delay %zu ms, "
         "regrets %zu\n", f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], 10 * MiB / 4096,
         st.purge_delay_ms, st.purge_regrets);
  CHECK_GE(f[0], (long)(10 * MiB / 4096) / 2);
  for (int r = 2; r < 8; r++) CHECK(f[r] < f[0] / 10);
  double after = rss_back(rss0, 3.0);
  printf("heaploop: after the last round RSS back within %.2f s\n", after);
  CHECK(after < 3.0);
}

/* One heap, destroyed once: nothing says its memory is wanted again, it goes back on the base
 * delay's passes. */
static void test_heaponce(void) {
  size_t rss0 = vm_rss_kib();
  heap_round();
  size_t peak = vm_rss_kib();
  double once = rss_back(rss0, 3.0);
  printf("heaponce: RSS %zu -> %zu KiB within %.2f s (before %zu KiB)\n", peak, vm_rss_kib(), once, rss0);
  CHECK(peak > rss0 + 8 * 1024);
  CHECK(once < 0.5);
}

static void test_large(void) {
  size_t a = 8 * MiB, b = 12 * MiB;
  char *p = am_malloc(a);
  memset(p, 1, a);
  am_free(p);                              /* cached */
  CHECK(stats().large_cached >= a);
  long f0 = minflt();
  char *q = am_malloc(b);
  memset(q, 2, b);
  long faults = minflt() - f0;
  printf("large: 8 MiB freed, 12 MiB allocated and written: %ld faults (4 MiB is %zu pages)\n",
         faults, 4 * MiB / 4096);
  CHECK(faults < (long)(6 * MiB / 4096));  /* about 4 MiB fresh, not 12 */
  CHECK(all_bytes(q, b, 2));
  am_free(q);
}

int main(int argc, char **argv) {
  test_init("adaptive");
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "regret")) test_cycles(true);
  else if (!strcmp(what, "fixed")) test_cycles(false);
  else if (!strcmp(what, "relax")) test_relax();
  else if (!strcmp(what, "large")) test_large();
  else if (!strcmp(what, "heaploop")) test_heaploop();
  else if (!strcmp(what, "heaponce")) test_heaponce();
  else {
    fprintf(stderr, "usage: %s regret|fixed|relax|large|heaploop|heaponce\n", argv[0]);
    return 2;
  }
  return test_summary();
}
