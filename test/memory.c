/* memory.c -- memory goes back to the OS (issue 4 targets), through the am_* API.
 *
 *   memory [delay|trim|large|threads|options]   (default: all)
 *
 *   delay    1 GiB of 64-byte blocks interleaved with a 128 MiB live set of 1 KiB blocks; the
 *            64-byte blocks are freed. With light allocator traffic afterwards, RSS must come
 *            back within 15% of the live size (above the process's baseline) within 250 ms
 *            (AMALLOC_PURGE_DELAY_MS is at its default, 25 ms).
 *   delay-timed  64 MiB of 1 KiB blocks freed at once, then light traffic: RSS stays up at the
 *            free, is back within 250 ms (measured 26-37 ms), and the empty segments are
 *            unmapped (am_stats_get segments / segment_bytes fall) within 250 ms.
 *   delay-zero   (AMALLOC_PURGE_DELAY_MS=0) the same memory, and a large block, go back at once.
 *   idle     (AMALLOC_PURGE_THREAD=1) the same, but no allocator call after the frees: the purge
 *            thread alone gives the memory back within 250 ms (fails without the thread).
 *   trim     the same, then malloc_trim(0): returns 1 and RSS is back at once.
 *   large    a freed 512 MiB block leaves RSS at once; a freed 9 MiB block stays cached for the
 *            delay and is gone within 100 ms of small traffic.
 *   threads  5,000 short-lived threads whose blocks are freed by the main thread after they
 *            exit leave under 8 MiB of RSS residue.
 *   options  am_option_get/set round trips and refuses bad values.
 *   stats    am_stats_get: per-class mallocs, frees and live blocks, large blocks, follow the test.
 *   convert  empty segments change kind: freed medium blocks' memory holds small blocks next
 *            without new segments, and the other way round.
 *   thp      (run with AMALLOC_THP=1) 128 MiB of small blocks are all in huge pages
 *            (AnonHugePages in /proc/self/smaps_rollup at least 128 MiB).
 *   hugetlb  (run with AMALLOC_HUGETLB=1 and huge pages reserved; test/hugetlb.sh) 64 MiB of
 *            small blocks live in hugetlb pages (Private_Hugetlb).
 *   populate the first allocation of a process faults in a whole 4 MiB segment with
 *            AMALLOC_POPULATE=1, and less than 1 MiB without it.
 * The bounds are in bytes and seconds of light traffic, never in speed.
 */
#include "test.h"

#include <amalloc.h>
#include <pthread.h>
#include <time.h>

#define MiB ((size_t)1 << 20)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Light traffic: a few small allocations, then a short sleep. */
static void light_traffic(void) {
  for (int i = 0; i < 100; i++) {
    void *p = am_malloc(32 + (size_t)(i % 7) * 16);
    am_free(p);
  }
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

typedef struct {
  void **live;
  size_t nlive;
} liveset_t;

/* Builds the live set and frees the garbage; returns the live bytes. */
static size_t fill_and_free(liveset_t *ls) {
  const size_t garbage_bytes = (size_t)(test_quick() ? 128 : 1024) * MiB;
  const size_t n = garbage_bytes / 64;
  const size_t per_live = 128;                 /* one 1 KiB live block per 128 garbage blocks */
  void **garbage = am_malloc(n * sizeof(void *));
  ls->live = am_malloc((n / per_live + 1) * sizeof(void *));
  ls->nlive = 0;
  CHECK(garbage != NULL && ls->live != NULL);
  for (size_t i = 0; i < n; i++) {
    garbage[i] = am_malloc(64);
    memset(garbage[i], 0x5a, 64);
    if (i % per_live == 0) {
      void *l = am_malloc(1024);
      memset(l, 0x11, 1024);
      ls->live[ls->nlive++] = l;
    }
  }
  for (size_t i = 0; i < n; i++) am_free(garbage[i]);
  am_free(garbage);
  return ls->nlive * 1024;
}

static void free_live(liveset_t *ls) {
  for (size_t i = 0; i < ls->nlive; i++) {
    CHECK(((unsigned char *)ls->live[i])[1023] == 0x11);
    am_free(ls->live[i]);
  }
  am_free(ls->live);
}

static void test_delay(void) {
  size_t base = vm_rss_kib() * 1024;
  liveset_t ls;
  size_t live = fill_and_free(&ls);
  size_t at_free = vm_rss_kib() * 1024;
  double t0 = now_s(), t = 0;
  size_t rss = at_free;
  size_t bound = base + live + live * 15 / 100;
  while ((t = now_s() - t0) < 3.0) {
    light_traffic();
    rss = vm_rss_kib() * 1024;
    if (rss <= bound) break;
  }
  CHECK(t <= 0.25);         /* the delay (25 ms) plus a few purge periods, not seconds */
  printf("delay: baseline %zu MiB, live %zu MiB, RSS after free %zu MiB, after %.2f s %zu MiB "
         "(bound %zu MiB)\n", base / MiB, live / MiB, at_free / MiB, t, rss / MiB, bound / MiB);
  CHECK(rss <= bound);
  free_live(&ls);
}

/* ---- the purge delay, timed --------------------------------------------------------------
 * 64 MiB of 1 KiB blocks freed in a few milliseconds; then light traffic through the slow
 * paths every millisecond (slow_path_call). The
 * README: empty slab slots are purged AMALLOC_PURGE_DELAY_MS after they emptied "by whichever
 * thread next goes through an allocator slow path", and an empty segment is unmapped by its
 * thread once it has been empty for the delay (the last one of each kind per thread kept). So RSS stays up
 * right after the free (nothing is purged early) and is back within the delay plus a few purge
 * periods (bound: 250 ms, for a loaded 2-core machine; measured 26-40 ms), and the segments
 * are unmapped (am_stats_get: segments and segment_bytes fall). */
enum { TIMED_N = 64 * 1024, TIMED_SIZE = 1024 };
static void *timed_blocks[TIMED_N];

static void timed_fill(void) {
  for (size_t i = 0; i < TIMED_N; i++) {
    timed_blocks[i] = am_malloc(TIMED_SIZE);
    CHECK(timed_blocks[i] != NULL);
    if (timed_blocks[i]) memset(timed_blocks[i], 0x33, TIMED_SIZE);
  }
}
static void timed_free(void) {
  for (size_t i = 0; i < TIMED_N; i++) am_free(timed_blocks[i]);
}
/* Light traffic, about 1 ms of it between polls: small malloc/free pairs (a free that empties
 * the current slab takes the free slow path, every 64th of which runs the purge and segment
 * checks) and one 300 KiB block (the large path runs the purge check). */
static void slow_path_call(void) {
  for (int i = 0; i < 64; i++) am_free(am_malloc(48));
  am_free(am_malloc(300 * 1024));
}
static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void test_delay_timed(void) {
  long delay = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  CHECK(delay > 0);
  am_malloc_trim(0);
  am_stats_t st0 = {.size = sizeof st0}, st1 = {.size = sizeof st1}, st2 = {.size = sizeof st2};
  CHECK_EQ(am_stats_get(&st0), 0);
  size_t base = vm_rss_kib() * 1024;
  timed_fill();
  CHECK_EQ(am_stats_get(&st1), 0);
  double t0 = now_s();
  timed_free();
  double t_freed = now_s() - t0;
  size_t at_free = vm_rss_kib() * 1024;
  size_t bound = base + 8 * MiB, rss = at_free;
  double t = 0;
  while ((t = now_s() - t0) < 3.0) {
    slow_path_call();
    rss = vm_rss_kib() * 1024;
    if (rss <= bound) break;
    sleep_ms(1);
  }
  double t_rss = t;
  /* the segments: unmapped once empty for the delay (the last one of each kind kept) */
  size_t segs = 0;
  while ((t = now_s() - t0) < 3.0) {
    slow_path_call();
    CHECK_EQ(am_stats_get(&st2), 0);
    segs = st2.segments;
    if (segs <= st0.segments + 2) break;
    sleep_ms(1);
  }
  double t_segs = t;
  printf("delay-timed: delay %ld ms; 64 MiB freed in %.1f ms; RSS %zu MiB -> %zu MiB at the free "
         "-> %zu MiB after %.0f ms (bound %zu MiB); segments %zu -> %zu -> %zu after %.0f ms\n",
         delay, t_freed * 1e3, base / MiB, at_free / MiB, rss / MiB, t_rss * 1e3, bound / MiB,
         st0.segments, st1.segments, segs, t_segs * 1e3);
  CHECK(st1.segments >= st0.segments + 16);      /* 64 MiB of slabs: 16+ segments mapped */
  if (t_freed < delay / 2 * 1e-3)                 /* (unless this machine stalled the loop) */
    CHECK(at_free >= base + 48 * MiB);           /* not purged before the delay */
  CHECK(rss <= bound);
  CHECK(t_rss <= 0.25);
  CHECK(t_rss >= delay / 2 * 1e-3);
  CHECK(segs <= st0.segments + 2);
  CHECK(st2.segment_bytes <= st0.segment_bytes + 2 * 4 * MiB);
  CHECK(t_segs <= 0.25);
}

/* AMALLOC_PURGE_DELAY_MS=0: freed memory goes back at once, without any further allocator call:
 * the pages of empty slabs, empty segments (unmapped), and large blocks (no cache). */
static void test_delay_zero(void) {
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MS), 0);
  am_stats_t st0 = {.size = sizeof st0}, st1 = {.size = sizeof st1}, st2 = {.size = sizeof st2};
  CHECK_EQ(am_stats_get(&st0), 0);
  size_t base = vm_rss_kib() * 1024;
  timed_fill();
  CHECK_EQ(am_stats_get(&st1), 0);
  size_t full = vm_rss_kib() * 1024;
  timed_free();
  size_t after = vm_rss_kib() * 1024;
  CHECK_EQ(am_stats_get(&st2), 0);
  printf("delay-zero: RSS %zu -> %zu -> %zu MiB at once; segments %zu -> %zu -> %zu\n",
         base / MiB, full / MiB, after / MiB, st0.segments, st1.segments, st2.segments);
  CHECK(full >= base + 64 * MiB);
  CHECK(after <= base + 4 * MiB);
  CHECK(st1.segments >= st0.segments + 16);
  CHECK(st2.segments <= st0.segments + 2);
  /* a large block is unmapped at once: not cached */
  size_t m = 6 * MiB;
  char *a = am_malloc(m);
  CHECK(a != NULL);
  if (a) memset(a, 7, m);
  size_t with = vm_rss_kib() * 1024;
  am_free(a);
  CHECK_EQ(am_stats_get(&st2), 0);
  size_t without = vm_rss_kib() * 1024;
  CHECK_EQ(st2.large_cached, 0);
  CHECK(without + 5 * MiB <= with);
}

/* AMALLOC_PURGE_THREAD=1: after the frees the program makes no allocator call at all (it only
 * sleeps and reads /proc, through glibc's malloc); the purge thread alone must give the memory
 * back, within the delay plus a few of its periods. Without the thread nothing would. */
static void test_idle(void) {
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_THREAD), 1);
  long delay = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  am_malloc_trim(0);
  size_t base = vm_rss_kib() * 1024;
  timed_fill();
  double t0 = now_s();
  timed_free();
  /* no am_* call from here on */
  size_t bound = base + 8 * MiB, rss = 0;
  double t = 0;
  while ((t = now_s() - t0) < 3.0) {
    rss = vm_rss_kib() * 1024;
    if (rss <= bound) break;
    sleep_ms(1);
  }
  printf("idle: delay %ld ms; RSS %zu MiB -> %zu MiB after %.0f ms with no allocator call "
         "(bound %zu MiB)\n", delay, base / MiB, rss / MiB, t * 1e3, bound / MiB);
  CHECK(rss <= bound);
  CHECK(t <= 0.25);
}

static void test_trim(void) {
  long old = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, -1), 0);   /* only malloc_trim purges */
  size_t base = vm_rss_kib() * 1024;
  liveset_t ls;
  size_t live = fill_and_free(&ls);
  size_t before = vm_rss_kib() * 1024;
  int r = am_malloc_trim(0);
  size_t after = vm_rss_kib() * 1024;
  size_t bound = base + live + live * 15 / 100;
  printf("trim: baseline %zu MiB, live %zu MiB, before trim %zu MiB, after %zu MiB, returned %d\n",
         base / MiB, live / MiB, before / MiB, after / MiB, r);
  CHECK(before > bound);            /* with purging off, nothing went back before the trim */
  CHECK_EQ(r, 1);
  CHECK(after <= bound);
  free_live(&ls);
  am_malloc_trim(0);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, old), 0);
}

static void test_large(void) {
  size_t base = vm_rss_kib() * 1024;
  size_t n = (test_quick() ? 64 : 512) * MiB;
  char *p = am_malloc(n);
  CHECK(p != NULL);
  memset(p, 1, n);
  size_t used = vm_rss_kib() * 1024;
  am_free(p);
  size_t after = vm_rss_kib() * 1024;
  printf("large: %zu MiB block: RSS %zu -> %zu -> %zu MiB\n", n / MiB, base / MiB, used / MiB, after / MiB);
  CHECK(used >= base + n - 4 * MiB);
  CHECK(after <= base + 4 * MiB);

  /* blocks up to 64 MiB: the freed mapping is kept for reuse (resident, off the segment map)
   * until the purge delay passes */
  am_stats_t st = {.size = sizeof st};
  am_malloc_trim(0);
  size_t m = 6 * MiB;
  char *a = am_malloc(m);
  memset(a, 7, m);
  am_free(a);
  am_stats_get(&st);
  CHECK(st.large_cached >= m);
  CHECK_EQ(st.large_count, 0);
  /* a smaller block reuses it (same address, no new mapping), and calloc's is zero */
  char *b = am_calloc(1, 5 * MiB);
  CHECK(b == a);
  size_t nonzero = 0;
  for (size_t i = 0; i < 5 * MiB; i += 512) nonzero += b[i] != 0 || b[i + 511] != 0;
  CHECK_EQ(nonzero, 0);
  CHECK_EQ(am_malloc_usable_size(b), 5 * MiB);     /* the block's size, not the mapping's */
  am_stats_get(&st);
  CHECK_EQ(st.large_cached, 0);
  /* a larger block grows it where it is */
  am_free(b);
  char *c = am_malloc(9 * MiB);
  CHECK(c == a);
  memset(c, 3, 9 * MiB);
  am_free(c);
  /* after the delay (25 ms by default), any allocator call gives it back: polled every
   * millisecond, it must be gone within the delay plus a few purge periods (bound 100 ms for a
   * loaded machine; measured 27-34 ms) and not before half the delay */
  size_t cached_rss = vm_rss_kib() * 1024;
  long delay = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  double t0 = now_s(), t_gone = -1;
  while (now_s() - t0 < 1.0) {
    /* small traffic only (a large block would take the cached mapping): every 64th free
     * slow path runs the purge check */
    for (int i = 0; i < 64; i++) am_free(am_malloc(64));
    am_stats_get(&st);
    if (st.large_cached < 1 * MiB) {
      t_gone = now_s() - t0;
      break;
    }
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  size_t gone_rss = vm_rss_kib() * 1024;
  printf("large cache: 9 MiB freed: RSS %zu MiB, %.0f ms later %zu MiB (cached %zu bytes; "
         "delay %ld ms)\n", cached_rss / MiB, t_gone * 1e3, gone_rss / MiB, st.large_cached, delay);
  CHECK(st.large_cached < 1 * MiB);
  CHECK(t_gone >= 0 && t_gone <= 0.1);
  CHECK(t_gone >= (delay < 25 ? delay : 25) / 2 * 1e-3);
  CHECK(gone_rss + 8 * MiB <= cached_rss);
  /* malloc_trim empties it at once */
  am_free(am_malloc(2 * MiB));
  am_stats_get(&st);
  CHECK(st.large_cached >= 2 * MiB);
  am_malloc_trim(0);
  am_stats_get(&st);
  CHECK_EQ(st.large_cached, 0);
}

#define TH_WAVE 16
static void *th_main(void *arg) {
  void **keep = arg;
  rng_t r;
  rng_seed(&r, (uint64_t)(uintptr_t)arg);
  void *mine[200];
  for (int i = 0; i < 200; i++) {
    size_t n = 16 + rng_below(&r, 2000);
    mine[i] = am_malloc(n);
    memset(mine[i], i, n);
    if (i % 2) keep[i / 2] = mine[i];
  }
  for (int i = 0; i < 200; i += 2) am_free(mine[i]);
  return NULL;
}

static void test_threads(void) {
  unsigned total = test_quick() ? 1000 : 5008;
  static void *keep[TH_WAVE][100];
  /* warm up: one wave, so the baseline includes thread stacks and glibc's per-thread state */
  size_t base = 0;
  for (unsigned w = 0; w < total; w += TH_WAVE) {
    pthread_t th[TH_WAVE];
    for (int i = 0; i < TH_WAVE; i++) CHECK(pthread_create(&th[i], NULL, th_main, keep[i]) == 0);
    for (int i = 0; i < TH_WAVE; i++) {
      pthread_join(th[i], NULL);
      for (int k = 0; k < 100; k++) am_free(keep[i][k]);
    }
    if (w == 0) base = vm_rss_kib() * 1024;
  }
  /* let the purge deadline pass, with light traffic */
  double t0 = now_s();
  while (now_s() - t0 < 1.0) light_traffic();
  size_t after = vm_rss_kib() * 1024;
  printf("threads: %u threads, RSS after the first wave %zu KiB, at the end %zu KiB\n", total,
         base / 1024, after / 1024);
  CHECK(after < base + 8 * MiB);
}

static void test_options(void) {
  long d = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  CHECK(d >= -1);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, 250), 0);
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MS), 250);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, -2), EINVAL);
  CHECK_EQ(am_option_set(AM_OPTION_THP, 2), EINVAL);
  CHECK_EQ(am_option_set((am_option_t)999, 1), EINVAL);
  CHECK_EQ(am_option_get((am_option_t)999), 0);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, d), 0);
}

static void **alloc_small(size_t bytes, size_t *count) {
  size_t n = bytes / 64;
  void **v = am_malloc(n * sizeof(void *));
  for (size_t i = 0; i < n; i++) {
    v[i] = am_malloc(64);
    memset(v[i], 7, 64);
  }
  *count = n;
  return v;
}
static void free_small(void **v, size_t n) {
  for (size_t i = 0; i < n; i++) am_free(v[i]);
  am_free(v);
}

static void test_thp(void) {
  CHECK_EQ(am_option_get(AM_OPTION_THP), 1);
  size_t n;
  void **v = alloc_small(128 * MiB, &n);
  size_t huge = smaps_kib("AnonHugePages") * 1024;
  printf("thp: 128 MiB of 64-byte blocks, AnonHugePages %zu MiB\n", huge / MiB);
  CHECK(huge >= 128 * MiB);     /* README: "100% in huge pages" */
  free_small(v, n);
}

static void test_hugetlb(void) {
  CHECK_EQ(am_option_get(AM_OPTION_HUGETLB), 1);
  size_t n;
  void **v = alloc_small(64 * MiB, &n);
  size_t huge = smaps_kib("Private_Hugetlb") * 1024;
  printf("hugetlb: 64 MiB of 64-byte blocks, Private_Hugetlb %zu MiB\n", huge / MiB);
  CHECK(huge >= 64 * MiB);
  free_small(v, n);
  CHECK(smaps_kib("Private_Hugetlb") * 1024 < huge);   /* empty segments are unmapped */
}

static void test_populate(void) {
  size_t before = vm_rss_kib() * 1024;
  void *p = am_malloc(64);
  size_t after = vm_rss_kib() * 1024;
  bool populate = am_option_get(AM_OPTION_POPULATE) == 1;
  printf("populate=%d: RSS grew by %zu KiB at the first allocation\n", populate, (after - before) / 1024);
  if (populate) CHECK(after >= before + 3 * MiB);
  else CHECK(after < before + 1 * MiB);
  am_free(p);
}

/* Fills n blocks of `size` bytes (each with its own pattern in its first and last bytes). */
static void fill_blocks(void **v, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = v[i] = am_malloc(size);
    CHECK(p != NULL);
    if (p == NULL) continue;
    memset(p, (int)(i & 0xff), 64);
    p[size - 1] = (unsigned char)(i * 7);
  }
}
static void check_and_free(void **v, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = v[i];
    if (p == NULL) continue;
    CHECK(p[0] == (unsigned char)(i & 0xff) && p[63] == (unsigned char)(i & 0xff));
    CHECK(p[size - 1] == (unsigned char)(i * 7));
    am_free(p);
  }
}

/* An empty segment of one kind serves the other: the memory of freed medium blocks (64 KiB)
 * holds small blocks (1 KiB) next, without new segments, and then the other way round. With the
 * purge off, so that nothing is unmapped meanwhile. */
static void test_convert(void) {
  long old = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, -1), 0);
  enum { NM = 200, NS = 16 * 1024 };    /* 200 x 64 KiB: 13 medium slabs, 4 segments;
                                           16,384 x 1 KiB = 16 MiB: 4+ small segments */
  static void *med[NM], *sml[NS];
  am_stats_t a, b, c, d;
  a.size = b.size = c.size = d.size = sizeof(am_stats_t);
  fill_blocks(med, NM, 64 * 1024);
  check_and_free(med, NM, 64 * 1024);   /* 2-3 medium segments are empty now (one slab, the
                                           class's current one, stays) */
  CHECK_EQ(am_stats_get(&a), 0);
  fill_blocks(sml, NS, 1024);
  CHECK_EQ(am_stats_get(&b), 0);
  printf("convert: medium -> small: %zu segments converted, %zu mapped\n",
         b.segments_converted - a.segments_converted, b.segments - a.segments);
  CHECK(b.segments_converted - a.segments_converted >= 2);
  CHECK(b.segments - a.segments <= 2);  /* without conversion: 4 */
  check_and_free(sml, NS, 1024);
  CHECK_EQ(am_stats_get(&c), 0);
  fill_blocks(med, NM, 64 * 1024);
  CHECK_EQ(am_stats_get(&d), 0);
  printf("convert: small -> medium: %zu segments converted, %zu mapped\n",
         d.segments_converted - c.segments_converted, d.segments - c.segments);
  CHECK(d.segments_converted - c.segments_converted >= 2);
  CHECK(d.segments == c.segments);
  check_and_free(med, NM, 64 * 1024);
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, old), 0);
  CHECK_EQ(am_malloc_trim(0), 1);
}

/* am_stats_get: per-class counts follow what the test does. */
static void test_stats(void) {
  am_stats_t st0, st1, st2;
  st0.size = st1.size = st2.size = sizeof(am_stats_t);
  CHECK_EQ(am_stats_get(NULL), EINVAL);
  am_stats_t small;
  small.size = 8;
  CHECK_EQ(am_stats_get(&small), EINVAL);
  CHECK_EQ(am_stats_get(&st0), 0);
  CHECK_EQ(st0.version, AM_STATS_VERSION);
  enum { N = 10000 };
  static void *v[N];
  for (int i = 0; i < N; i++) {
    v[i] = am_malloc(700);           /* class of 704 bytes */
    if (v[i]) memset(v[i], 9, 700);
  }
  void *big = am_malloc(3 * MiB);
  if (big) memset(big, 9, 3 * MiB);
  CHECK_EQ(am_stats_get(&st1), 0);
  size_t rss1 = vm_rss_kib() * 1024;
  size_t c = 0;
  while (c < AM_STATS_CLASSES && st1.classes[c].block_size < 700) c++;
  CHECK_EQ(st1.classes[c].block_size, 704);
  CHECK_EQ(st1.classes[c].mallocs - st0.classes[c].mallocs, N);
  CHECK_EQ(st1.classes[c].live - st0.classes[c].live, N);
  CHECK(st1.classes[c].slabs >= N * 704 / (64 * 1024));
  CHECK(st1.classes[c].peak_slabs >= N * 704 / (64 * 1024));
  CHECK_EQ(st1.large_count - st0.large_count, 1);
  CHECK(st1.large_bytes - st0.large_bytes >= 3 * MiB);
  CHECK_EQ(st1.large_mallocs - st0.large_mallocs, 1);
  CHECK(st1.mapped >= st1.segment_bytes + 3 * MiB);
  /* resident is the process's RSS: it rose by what the test touched, and agrees with
   * /proc/self/status read right after */
  CHECK_GE(st1.resident, st0.resident + N * 700 + 3 * MiB - 1 * MiB);
  CHECK(st1.resident <= rss1 + 1 * MiB && rss1 <= st1.resident + 1 * MiB);
  for (int i = 0; i < N; i++) am_free(v[i]);
  am_free(big);
  CHECK_EQ(am_stats_get(&st2), 0);
  CHECK_EQ(st2.classes[c].frees - st1.classes[c].frees, N);
  CHECK_EQ(st2.classes[c].live, st0.classes[c].live);
  CHECK_EQ(st2.large_count, st0.large_count);
  /* after a trim the class's slabs are gone, and the peak still remembers them */
  am_stats_t st3 = {.size = sizeof st3};
  am_malloc_trim(0);
  CHECK_EQ(am_stats_get(&st3), 0);
  CHECK(st3.classes[c].slabs <= st0.classes[c].slabs);
  CHECK_GE(st3.classes[c].peak_slabs, st1.classes[c].slabs);
  CHECK(st3.resident + 4 * MiB <= st1.resident);
}

int main(int argc, char **argv) {
  test_init("memory");
  const char *which = argc > 1 ? argv[1] : "all";
  bool all = strcmp(which, "all") == 0;
  if (all || !strcmp(which, "options")) test_options();
  if (all || !strcmp(which, "convert")) test_convert();
  if (all || !strcmp(which, "stats")) test_stats();
  if (all || !strcmp(which, "large")) test_large();
  if (all || !strcmp(which, "delay")) test_delay();
  if (all || !strcmp(which, "trim")) test_trim();
  if (all || !strcmp(which, "threads")) test_threads();
  if (all || !strcmp(which, "delay-timed")) test_delay_timed();
  if (!strcmp(which, "delay-zero")) test_delay_zero();
  if (!strcmp(which, "idle")) test_idle();
  if (!strcmp(which, "thp")) test_thp();
  if (!strcmp(which, "hugetlb")) test_hugetlb();
  if (!strcmp(which, "populate")) test_populate();
  return test_summary();
}
