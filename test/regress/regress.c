/* regress.c -- regression tests of issue 13's defects that a valid program can hit, run with the
 * standard names under LD_PRELOAD of the default and the secure build (test/regress/meson.build).
 *
 *   regress mark-copy       a copy of a reused block's stale bytes (an old free mark among them)
 *                           into a live block's second word trips no misuse check (defect 2)
 *   regress remote-count    threads free many blocks of another thread's slabs while it
 *                           allocates; afterwards one slow path of the owner collects every
 *                           remote free: no slab keeps uncollected blocks (defect 12)
 *   regress idle-current    a burst of every medium class, freed, then small traffic: the
 *                           burst's current slabs go back within the purge delay (defect 5a)
 *   regress idle-remote-trim / idle-remote-thread
 *                           128 MiB freed by main into a blocked thread's slabs comes back on
 *                           malloc_trim(0) from main, or with AMALLOC_PURGE_THREAD=1 by itself
 *                           within 300 ms (defect 5b)
 *   regress large-only      a thread that frees its small blocks and then allocates only large
 *                           ones still unmaps its empty segments after the purge delay
 * Each scenario that could abort runs in a child process; the parent checks its exit.
 */
#include "../test.h"

#include <amalloc.h>
#include <pthread.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

extern int am_stats_get(am_stats_t *out) __attribute__((weak));

/* ---- defect 2 ---------------------------------------------------------------------------- */

/* 9,000 blocks of 16 bytes, freed: their memory holds free marks. Then a 48-byte block over that
 * memory; 16 of its (indeterminate) bytes copied into a 16-byte record. Valid C: the record is
 * the program's to use, realloc and free. */
static char *mark_copy_record(void) {
  enum { N = 9000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(16);
  for (int i = 0; i < N; i++) free(p[i]);
  char *a = malloc(48);
  char *rec = malloc(16);
  memcpy(rec, a + 16, 16);
  free(a);
  return rec;
}
static void mark_copy_realloc(void *unused) {
  (void)unused;
  char *rec = mark_copy_record();
  rec = realloc(rec, 200);
  free(rec);
}
static void mark_copy_free_local(void *unused) {
  (void)unused;
  free(mark_copy_record());
}
static void *free_it(void *p) {
  free(p);
  return NULL;
}
static void mark_copy_free_remote(void *unused) {
  (void)unused;
  char *rec = mark_copy_record();
  pthread_t t;
  if (pthread_create(&t, NULL, free_it, rec) != 0) _exit(3);
  pthread_join(t, NULL);
}
/* The same with every small class: a reused slab's stale marks copied into blocks of each size. */
static void mark_copy_all_classes(void *unused) {
  (void)unused;
  enum { N = 4000 };
  static void *p[N];
  for (size_t sz = 16; sz <= 1024; sz += 16) {
    for (int i = 0; i < N; i++) p[i] = malloc(sz);
    for (int i = 0; i < N; i++) free(p[i]);
    char *big = malloc(sz * 3 + 16);
    char *rec = malloc(sz);
    memcpy(rec, big + sz / 2, sz);
    free(big);
    pthread_t t;
    if (pthread_create(&t, NULL, free_it, rec) != 0) _exit(3);
    pthread_join(t, NULL);
  }
}

static void test_mark_copy(void) {
  struct {
    const char *name;
    void (*fn)(void *);
  } cases[] = {
    {"realloc of the record", mark_copy_realloc},
    {"free of the record, same thread", mark_copy_free_local},
    {"free of the record, another thread", mark_copy_free_remote},
    {"every class below 1 KiB, freed by another thread", mark_copy_all_classes},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512];
    int st = test_in_child(cases[i].fn, NULL, err, sizeof err);
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && err[0] == 0;
    if (!CHECK(ok)) fprintf(stderr, "mark-copy: %s: status 0x%x, stderr: %s\n", cases[i].name, st, err);
  }
}

/* ---- defect 12 --------------------------------------------------------------------------- */

enum { RC_BLOCKS = 200000, RC_SIZE = 48, RC_FREERS = 2 };
static void *rc_blocks[RC_BLOCKS];
static volatile int rc_go;

static void *rc_freer(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  while (!__atomic_load_n(&rc_go, __ATOMIC_ACQUIRE)) {
  }
  for (size_t i = k; i < RC_BLOCKS; i += RC_FREERS) free(rc_blocks[i]);
  return NULL;
}

static void test_remote_count(void) {
  if (am_stats_get == NULL) {
    CHECK(!"am_stats_get is not in the process (run with amalloc preloaded)");
    return;
  }
  size_t n = test_quick() ? RC_BLOCKS / 10 : RC_BLOCKS;
  /* the class of the blocks (the secure build serves 8 bytes more: another class) */
  am_stats_t st;
  st.size = sizeof st;
  void *probe = malloc(RC_SIZE);
  size_t usable = malloc_usable_size(probe), cls = 0;
  CHECK_EQ(am_stats_get(&st), 0);
  while (cls + 1 < AM_STATS_CLASSES && st.classes[cls].block_size < usable) cls++;
  size_t live_before = st.classes[cls].live;
  free(probe);
  for (size_t i = 0; i < n; i++) rc_blocks[i] = malloc(RC_SIZE);
  for (size_t i = n; i < RC_BLOCKS; i++) rc_blocks[i] = NULL;
  pthread_t t[RC_FREERS];
  for (size_t k = 0; k < RC_FREERS; k++) pthread_create(&t[k], NULL, rc_freer, (void *)(uintptr_t)k);
  __atomic_store_n(&rc_go, 1, __ATOMIC_RELEASE);
  /* the owner keeps allocating and freeing the same class meanwhile: its slow paths collect
   * remote frees while more arrive */
  for (int round = 0; round < 200; round++) {
    void *q[512];
    for (int i = 0; i < 512; i++) q[i] = malloc(RC_SIZE);
    for (int i = 0; i < 512; i++) free(q[i]);
  }
  for (size_t k = 0; k < RC_FREERS; k++) pthread_join(t[k], NULL);
  /* the secure build's own quarantine holds the owner's last frees: push them out with frees of
   * another class */
  void *flush[64];
  for (int i = 0; i < 64; i++) flush[i] = malloc(5000);
  for (int i = 0; i < 64; i++) free(flush[i]);
  /* one slow path: the first block of a class the process never used */
  void *fresh = malloc(150000);
  CHECK(fresh != NULL);
  CHECK_EQ(am_stats_get(&st), 0);
  printf("remote-count: %zu blocks of %d freed by %d threads; class %zu (%u bytes): %zu live "
         "before, %zu after\n", n, RC_SIZE, RC_FREERS, cls, (unsigned)st.classes[cls].block_size,
         live_before, (size_t)st.classes[cls].live);
  /* (the probe block was freed: at most it is still counted, in the secure build's quarantine) */
  CHECK(st.classes[cls].live <= live_before);
  free(fresh);
}

/* ---- defect 5 ---------------------------------------------------------------------------- */

static size_t rss_bytes(void) { return vm_rss_kib() * 1024; }
#define MiB ((size_t)1 << 20)

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* (a) A burst of every medium class (9 KiB .. 256 KiB), all freed; then 500 ms of small traffic
 * on the same thread. The burst's memory must go back: the current slab of each class is kept
 * only while the class is in use. */
static void test_idle_current(void) {
  size_t base = rss_bytes();
  enum { PER = 8 };
  static void *p[128 * PER];
  size_t n = 0;
  for (size_t size = 9 * 1024; size <= 256 * 1024; size += size / 8)
    for (int k = 0; k < PER; k++) {
      p[n] = malloc(size);
      memset(p[n], 0x3c, size);
      n++;
    }
  size_t peak = rss_bytes();
  for (size_t i = 0; i < n; i++) free(p[i]);
  double t0 = now_seconds();
  while (now_seconds() - t0 < 0.5) {
    for (int i = 0; i < 100; i++) {
      void *q = malloc(32 + (size_t)(i % 5) * 16);
      free(q);
    }
    sleep_ms(5);
  }
  size_t after = rss_bytes();
  printf("idle-current: %zu blocks of every medium class; RSS above the start: %.1f MiB at the "
         "peak, %.1f MiB 500 ms after the free\n", n, (double)(peak - base) / MiB,
         after > base ? (double)(after - base) / MiB : 0.0);
  CHECK(peak - base > 10 * MiB);                      /* the burst was there */
  CHECK(after < base + 2 * MiB);
}

/* (b) A thread allocates 128 MiB of 64-byte blocks and blocks on a condition variable; main
 * frees them all (remote frees into the idle thread's slabs). Then, by the argument:
 *   "trim"   malloc_trim(0) from main must return 1 and bring RSS back at once;
 *   "thread" (AMALLOC_PURGE_THREAD=1) main calls nothing: within the purge delay plus the purge
 *            thread's periods the memory is back. */
static pthread_mutex_t ir_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ir_cond = PTHREAD_COND_INITIALIZER;
static int ir_state;
static void **ir_blocks;
static size_t ir_count;

static void *ir_owner(void *arg) {
  (void)arg;
  for (size_t i = 0; i < ir_count; i++) {
    ir_blocks[i] = malloc(64);
    memset(ir_blocks[i], 0x77, 64);
  }
  pthread_mutex_lock(&ir_lock);
  ir_state = 1;
  pthread_cond_broadcast(&ir_cond);
  while (ir_state != 2) pthread_cond_wait(&ir_cond, &ir_lock);
  pthread_mutex_unlock(&ir_lock);
  /* awake again: its slabs whose pages a purger gave back start afresh; allocate through them
   * (more blocks than the reclaimed slabs held, so every one of them is carved again) and check
   * that no two blocks overlap and every block keeps its contents */
  size_t n = ir_count;
  for (size_t i = 0; i < n; i++) {
    size_t *b = ir_blocks[i] = malloc(64);
    for (int w = 0; w < 8; w++) b[w] = i;        /* its index in every word: an overlap shows */
  }
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    const size_t *b = ir_blocks[i];
    for (int w = 0; w < 8; w++) bad += b[w] != i;
  }
  for (size_t i = 0; i < n; i++) free(ir_blocks[i]);
  return (void *)(uintptr_t)bad;
}

static void test_idle_remote(const char *how) {
  size_t total = (test_quick() ? 32 : 128) * MiB;
  ir_count = total / 64;
  ir_blocks = mmap(NULL, ir_count * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(ir_blocks != MAP_FAILED);
  size_t base = rss_bytes();
  pthread_t t;
  pthread_create(&t, NULL, ir_owner, NULL);
  pthread_mutex_lock(&ir_lock);
  while (ir_state != 1) pthread_cond_wait(&ir_cond, &ir_lock);
  pthread_mutex_unlock(&ir_lock);
  size_t peak = rss_bytes();
  for (size_t i = 0; i < ir_count; i++) free(ir_blocks[i]);
  /* (the pointer array is the test's, not the allocator's: out of the RSS; the owner refills it) */
  madvise(ir_blocks, ir_count * sizeof(void *), MADV_DONTNEED);
  size_t after;
  if (strcmp(how, "trim") == 0) {
    int r = malloc_trim(0);
    after = rss_bytes();
    CHECK_EQ(r, 1);
  } else {
    sleep_ms(300);                                    /* no allocator call meanwhile */
    after = rss_bytes();
  }
  printf("idle-remote (%s): %zu MiB of 64-byte blocks freed by another thread; RSS above the "
         "start: %.1f MiB at the peak, %.1f MiB after\n", how, total / MiB,
         (double)(peak - base) / MiB, after > base ? (double)(after - base) / MiB : 0.0);
  CHECK(peak - base > total * 9 / 10);
  CHECK(after < base + total / 10);
  pthread_mutex_lock(&ir_lock);
  ir_state = 2;
  pthread_cond_broadcast(&ir_cond);
  pthread_mutex_unlock(&ir_lock);
  void *bad = NULL;
  pthread_join(t, &bad);
  printf("idle-remote (%s): the owner allocated %zu blocks again: %zu overlapped or lost contents\n",
         how, ir_count, (size_t)(uintptr_t)bad);
  CHECK_EQ((size_t)(uintptr_t)bad, 0);
  munmap(ir_blocks, ir_count * sizeof(void *));
  /* the owner's heap is whole again: blocks of the reclaimed slabs are handed out, right */
  void *q[1000];
  for (int i = 0; i < 1000; i++) {
    q[i] = malloc(64);
    memset(q[i], i & 0xff, 64);
  }
  for (int i = 0; i < 1000; i++) CHECK(((unsigned char *)q[i])[63] == (i & 0xff));
  for (int i = 0; i < 1000; i++) free(q[i]);
}

/* After its small blocks are freed, a thread that only allocates large blocks still unmaps its
 * empty segments after the purge delay (doc/memory.md). */
static void test_large_only(void) {
  if (am_stats_get == NULL) {
    CHECK(!"am_stats_get is not in the process (run with amalloc preloaded)");
    return;
  }
  enum { N = 64 * 1024 };
  static void *p[N];
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  size_t seg0 = st.segments;
  for (int i = 0; i < N; i++) p[i] = malloc(1000);
  CHECK_EQ(am_stats_get(&st), 0);
  size_t seg1 = st.segments;
  for (int i = 0; i < N; i++) free(p[i]);
  double t0 = now_seconds();
  while (now_seconds() - t0 < 0.3) {
    void *q = malloc(2 << 20);
    memset(q, 1, 4096);
    free(q);
    sleep_ms(2);
  }
  CHECK_EQ(am_stats_get(&st), 0);
  printf("large-only: segments %zu before, %zu with 64 Ki blocks of 1000 bytes, %zu 300 ms after "
         "their free (only large blocks meanwhile)\n", seg0, seg1, (size_t)st.segments);
  CHECK(seg1 >= seg0 + 10);
  CHECK(st.segments <= seg0 + 2);
}

int main(int argc, char **argv) {
  test_init("regress");
  CHECK_AMALLOC_ACTIVE();
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "mark-copy") == 0) test_mark_copy();
  if (all || strcmp(what, "remote-count") == 0) test_remote_count();
  if (all || strcmp(what, "idle-current") == 0) test_idle_current();
  if (all || strcmp(what, "idle-remote-trim") == 0) test_idle_remote("trim");
  if (strcmp(what, "idle-remote-thread") == 0) test_idle_remote("thread");
  if (all || strcmp(what, "large-only") == 0) test_large_only();
  return test_summary();
}
