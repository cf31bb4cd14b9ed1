/* prof.c -- the heap profiler's tests (src/prof.c; doc/heap-profiler.md).
 *
 *   prof accuracy    three sites allocate 60%, 30% and 10% of the bytes (mixed sizes, half of
 *                    them freed again, 1 GiB live) at the default period: each site's share of
 *                    the profile's live and allocated estimates within 5 points; the profile's
 *                    live total within 10% of am_stats_get's live bytes
 *   prof stats       100 MiB live (run with AMALLOC_PROF_SAMPLE=64k): the live total within 10%
 *   prof api         every allocation sampled (AMALLOC_PROF_SAMPLE=1): each function of the API
 *                    adds one live sample, its free takes it away; frame 0 is the caller;
 *                    am_prof_set_sample(0) stops sampling, am_prof_reset forgets, errors
 *   prof threads     blocks sampled in one thread and freed in another leave the live set; 8
 *                    threads allocating and freeing each other's blocks while sampling
 *   prof fork        fork() while other threads take samples: the child works and dumps
 *   prof inplace     medium blocks are sampled where they are (AMALLOC_PROF_SAMPLE=1): a
 *                    sampled block freed and allocated again unsampled comes back at the same
 *                    address; unsampled neighbours in its slab free and come back; 40 samples
 *                    in one slab (more than its 8 entries: the rest from the profiler's
 *                    heap) leave the profile whether the owner or another thread frees them;
 *                    a double free and an interior pointer are still reported; blocks of a
 *                    first-class heap (am_heap_malloc, malloc with it the default) are not sampled
 *   prof off         without AMALLOC_PROF: am_prof_dump and am_prof_reset say ENOTSUP
 *   prof leak        leaks from leaky_site and prints the exact bytes (leak_check.py reads
 *                    the report AMALLOC_PROF_LEAKS=1 prints at exit)
 *   prof sites       allocates from known sites and dumps to argv[2] (for google-pprof tests)
 *
 * Linked with libamalloc.so and -rdynamic (dladdr names the sites).
 */
#include "../test.h"
#include "amalloc.h"

#include <math.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>

#define MiB ((size_t)1 << 20)

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
/* log-uniform in [16 B, 512 KiB]: small, medium and large blocks */
static size_t mixed_size(void) {
  double e = 4 + (double)(next_rand() % 10000) / 10000.0 * 15;
  return (size_t)exp2(e);
}

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")   /* (and no tail call) */
__attribute__((noinline)) void *site_a(size_t n) { void *p = malloc(n); KEEP(p); return p; }
__attribute__((noinline)) void *site_b(size_t n) { void *p = malloc(n); KEEP(p); return p; }
__attribute__((noinline)) void *site_c(size_t n) { void *p = malloc(n); KEEP(p); return p; }
__attribute__((noinline)) void *leaky_site(size_t n) { void *p = malloc(n); KEEP(p); return p; }

/* ---- reading a profile ------------------------------------------------------------------- */

typedef struct {
  double live_count, live_bytes, alloc_count, alloc_bytes;   /* raw (header) */
  long period;
} totals_t;

static double scale(double count, double bytes, double period) {
  if (count <= 0) return 0;
  return 1 / (1 - exp(-(bytes / count) / period));
}

/* Reads profile `path`: its header into *t; for each line, calls fn(frame0, live estimate,
 * alloc estimate). Returns false when the file does not parse. (Without allocating: the
 * profile must not change because the test reads it.) */
static char file_buf[16 << 20];
static bool read_profile(const char *path, totals_t *t,
                         void (*fn)(uintptr_t frame0, double live, double alloc, void *arg), void *arg) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  size_t len = 0;
  ssize_t r;
  while (len < sizeof(file_buf) - 1 && (r = read(fd, file_buf + len, sizeof(file_buf) - 1 - len)) > 0) len += (size_t)r;
  close(fd);
  file_buf[len] = 0;
  char *line = file_buf, *end;
  bool ok = (end = strchr(line, '\n')) != NULL &&
            sscanf(line, "heap profile: %lf: %lf [ %lf: %lf] @ heap_v2/%ld", &t->live_count, &t->live_bytes,
                   &t->alloc_count, &t->alloc_bytes, &t->period) == 5;
  for (line = end + 1; ok && (end = strchr(line, '\n')) != NULL; line = end + 1) {
    if (line == end) break;               /* the blank line before MAPPED_LIBRARIES */
    double n1, s1, n2, s2;
    int used = 0;
    if (sscanf(line, " %lf: %lf [ %lf: %lf] @%n", &n1, &s1, &n2, &s2, &used) != 4 || used == 0) {
      ok = false;
      break;
    }
    uintptr_t frame0 = 0;
    sscanf(line + used, " %" SCNxPTR, &frame0);
    if (fn != NULL)
      fn(frame0, s1 * scale(n1, s1, (double)t->period), s2 * scale(n2, s2, (double)t->period), arg);
  }
  return ok && strstr(line, "MAPPED_LIBRARIES:\n") == line + 1;
}

static const char *fn_name(uintptr_t a) {
  Dl_info info;
  if (a == 0 || dladdr((void *)(a - 1), &info) == 0 || info.dli_sname == NULL) return "?";
  return info.dli_sname;
}

static char profile_path[256];
static const char *tmp_profile(const char *what) {
  snprintf(profile_path, sizeof(profile_path), "/tmp/amalloc-prof-test.%d.%s.heap", (int)getpid(), what);
  return profile_path;
}

static bool dump_totals(totals_t *t) {
  const char *path = tmp_profile("totals");
  int err = am_prof_dump(path);
  if (!CHECK_EQ(err, 0)) return false;
  bool ok = read_profile(path, t, NULL, NULL);
  unlink(path);
  return CHECK(ok);
}

/* live bytes of the whole heap, as am_stats_get counts them */
static double stats_live_bytes(void) {
  am_stats_t st;
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  if (!CHECK_EQ(am_stats_get(&st), 0)) return 0;
  double live = (double)st.large_bytes;
  for (size_t c = 0; c < AM_STATS_CLASSES; c++) live += (double)st.classes[c].live * (double)st.classes[c].block_size;
  CHECK((double)st.live_bytes <= live);  /* (large blocks: usable bytes, not their mappings) */
  return (double)st.live_bytes;
}

/* the test's own arrays: not from malloc, so they are not in the profile */
static void **mmap_array(size_t n) {
  void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  return p;
}
static void munmap_array(void **a, size_t n) { munmap(a, n * sizeof(void *)); }

/* ---- accuracy ------------------------------------------------------------------------------ */

typedef struct {
  double live[4], alloc[4];             /* a, b, c, other */
} shares_t;

static void by_site(uintptr_t frame0, double live, double alloc, void *arg) {
  shares_t *s = arg;
  const char *name = fn_name(frame0);
  int i = strcmp(name, "site_a") == 0 ? 0 : strcmp(name, "site_b") == 0 ? 1 : strcmp(name, "site_c") == 0 ? 2 : 3;
  s->live[i] += live;
  s->alloc[i] += alloc;
}

/* Allocates `live` bytes in the proportions 60/30/10 across the three sites, and as many again
 * that are freed at once; checks the profile, then frees everything. */
static void check_proportions(size_t live, bool shares) {
  void *(*site[3])(size_t) = {site_a, site_b, site_c};
  const double want[3] = {0.6, 0.3, 0.1};
  double exact_live[3] = {0}, exact_alloc[3] = {0};
  size_t cap = 1 << 20, n = 0;
  void **keep = mmap_array(cap);
  for (int s = 0; s < 3; s++) {
    double target = want[s] * (double)live;
    while (exact_live[s] < target && n < cap) {
      void *p = site[s](mixed_size());
      memset(p, 1, 64 < malloc_usable_size(p) ? 64 : malloc_usable_size(p));
      exact_live[s] += (double)malloc_usable_size(p);
      exact_alloc[s] += (double)malloc_usable_size(p);
      keep[n++] = p;
      void *q = site[s](mixed_size());   /* allocated and freed */
      exact_alloc[s] += (double)malloc_usable_size(q);
      free(q);
    }
  }
  const char *path = tmp_profile("accuracy");
  CHECK_EQ(am_prof_dump(path), 0);
  totals_t t;
  shares_t got = {{0}, {0}};
  CHECK(read_profile(path, &t, by_site, &got));
  unlink(path);
  double live_sum = got.live[0] + got.live[1] + got.live[2] + got.live[3];
  double alloc_sum = got.alloc[0] + got.alloc[1] + got.alloc[2] + got.alloc[3];
  double exact_live_sum = exact_live[0] + exact_live[1] + exact_live[2];
  double exact_alloc_sum = exact_alloc[0] + exact_alloc[1] + exact_alloc[2];
  printf("live: %.0f MiB estimated, %.0f MiB exact (sites), %.0f MiB am_stats_get; samples %.0f\n",
         live_sum / MiB, exact_live_sum / MiB, stats_live_bytes() / MiB, t.live_count);
  double stats = stats_live_bytes();
  if (!CHECK(fabs(live_sum - stats) <= 0.10 * stats))
    printf("profile's live total %.0f vs am_stats_get's %.0f\n", live_sum, stats);
  if (shares) {
    for (int s = 0; s < 3; s++) {
      double live_share = got.live[s] / live_sum, alloc_share = got.alloc[s] / alloc_sum;
      double exact_ls = exact_live[s] / exact_live_sum, exact_as = exact_alloc[s] / exact_alloc_sum;
      printf("site %c: live %.1f%% (exact %.1f%%), allocated %.1f%% (exact %.1f%%)\n", 'a' + s,
             100 * live_share, 100 * exact_ls, 100 * alloc_share, 100 * exact_as);
      CHECK(fabs(live_share - exact_ls) <= 0.05);
      CHECK(fabs(alloc_share - exact_as) <= 0.05);
    }
    printf("other stacks: live %.1f%%\n", 100 * got.live[3] / live_sum);
  }
  for (size_t i = 0; i < n; i++) free(keep[i]);
  munmap_array(keep, cap);
}

/* ---- the API ------------------------------------------------------------------------------- */

static double live_samples(void) {
  totals_t t;
  return dump_totals(&t) ? t.live_count : -1;
}

static uintptr_t newest_frame0;
static void find_api_caller(uintptr_t frame0, double live, double alloc, void *arg) {
  (void)live;
  (void)alloc;
  (void)arg;
  if (strcmp(fn_name(frame0), "api_calls") == 0) newest_frame0 = frame0;
}

#define SAMPLED(expr, p)                                                   \
  do {                                                                     \
    double before = live_samples();                                        \
    p = (expr);                                                            \
    CHECK(p != NULL);                                                      \
    if (!CHECK(live_samples() == before + 1)) printf("not sampled: %s\n", #expr); \
    free(p);                                                               \
    if (!CHECK(live_samples() == before)) printf("free not seen: %s\n", #expr);   \
  } while (0)

__attribute__((noinline)) void api_calls(void) {
  void *p;
  SAMPLED(malloc(24), p);
  SAMPLED(malloc(3000), p);
  SAMPLED(malloc(100000), p);
  SAMPLED(malloc(3 * MiB), p);
  SAMPLED(calloc(10, 10), p);
  SAMPLED(calloc(1, 2 * MiB), p);
  SAMPLED(aligned_alloc(64, 640), p);
  SAMPLED(aligned_alloc(1 << 20, 5000), p);
  SAMPLED(memalign(256, 1000), p);
  SAMPLED(valloc(100), p);
  SAMPLED(pvalloc(100), p);
  SAMPLED(reallocarray(NULL, 10, 30), p);
  {
    double before = live_samples();
    CHECK_EQ(posix_memalign(&p, 128, 500), 0);
    CHECK(live_samples() == before + 1);
    free(p);
    CHECK(live_samples() == before);
  }
  /* realloc: each move is a new allocation; a block kept in place stays sampled */
  {
    double before = live_samples();
    p = malloc(40);
    void *q = realloc(p, 100000);         /* small -> medium: moved */
    CHECK(live_samples() == before + 1);
    q = realloc(q, 4 * MiB);              /* -> large */
    CHECK(live_samples() == before + 1);
    q = realloc(q, 16 * MiB);             /* large -> larger (mremap) */
    CHECK(live_samples() == before + 1);
    q = realloc(q, 100);                  /* -> small */
    CHECK(live_samples() == before + 1);
    free(q);
    CHECK(live_samples() == before);
  }
  /* frame 0 of these samples is this function */
  const char *path = tmp_profile("api");
  p = malloc(48);
  CHECK_EQ(am_prof_dump(path), 0);
  totals_t t;
  newest_frame0 = 0;
  CHECK(read_profile(path, &t, find_api_caller, NULL));
  unlink(path);
  if (!CHECK(newest_frame0 != 0)) printf("no stack has api_calls as frame 0\n");
  free(p);
}

static void test_api(void) {
  api_calls();
  /* off: no new sample */
  totals_t t0, t1;
  CHECK(dump_totals(&t0));
  CHECK_EQ(am_prof_set_sample(0), 0);
  for (int i = 0; i < 1000; i++) free(malloc(100));
  free(malloc(5 * MiB));
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == t0.alloc_count);
  /* on again: sampled at once in this thread */
  CHECK_EQ(am_prof_set_sample(1), 0);
  void *p = malloc(100);
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == t0.alloc_count + 1);
  CHECK(t1.period == 1);
  CHECK_EQ(am_prof_set_sample((size_t)1 << 41), EINVAL);
  /* reset: nothing sampled before it is shown; p's free still works */
  CHECK_EQ(am_prof_reset(), 0);
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == 0 && t1.live_count == 0);
  free(p);
  void *q = malloc(200);
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == 1 && t1.live_count == 1);
  free(q);
  /* errors */
  CHECK_EQ(am_prof_dump("/nonexistent-dir/x.heap"), ENOENT);
  if (getenv("AMALLOC_PROF_DUMP") == NULL) CHECK_EQ(am_prof_dump(NULL), EINVAL);
  /* options: the same switches */
  CHECK_EQ(am_option_get(AM_OPTION_PROF), 1);
  CHECK_EQ(am_option_get(AM_OPTION_PROF_SAMPLE), 1);
  CHECK_EQ(am_option_set(AM_OPTION_PROF, 0), 0);
  CHECK(dump_totals(&t0));
  free(malloc(64));
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == t0.alloc_count);
  CHECK_EQ(am_option_set(AM_OPTION_PROF, 1), 0);
  free(malloc(64));
  CHECK(dump_totals(&t1));
  CHECK(t1.alloc_count == t0.alloc_count + 1);
}

/* with AMALLOC_PROF_DUMP=<prefix>: am_prof_dump(NULL) writes <prefix>.0001.heap, .0002 */
static void test_prefix(void) {
  const char *prefix = getenv("AMALLOC_PROF_DUMP");
  if (!CHECK(prefix != NULL)) return;
  char name[512];
  for (int i = 1; i <= 2; i++) {
    CHECK_EQ(am_prof_dump(NULL), 0);
    snprintf(name, sizeof(name), "%s.%04d.heap", prefix, i);
    struct stat sb;
    if (!CHECK(stat(name, &sb) == 0 && sb.st_size > 0)) printf("missing %s\n", name);
  }
}

/* ---- threads -------------------------------------------------------------------------------- */

enum { HANDOFF = 20000 };
static void *handoff[HANDOFF];

static void *alloc_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < HANDOFF; i++) handoff[i] = malloc(i % 100 == 0 ? 300000 : 16 + (size_t)(i % 500) * 8);
  return NULL;
}

static void *free_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < HANDOFF; i++) free(handoff[i]);
  return NULL;
}

enum { RING = 4096, WORKERS = 8 };
static _Atomic(void *) ring[RING];
static void *worker(void *arg) {
  uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  int rounds = getenv("AMALLOC_TEST_QUICK") ? 20000 : 200000;
  for (int i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t n = (x >> 20) % 16 == 0 ? 4096 + (x >> 40) % 300000 : 8 + (x >> 40) % 1000;
    void *p = malloc(n);
    memset(p, 7, 8);
    void *old = atomic_exchange(&ring[x % RING], p);  /* freed by whichever thread takes it */
    free(old);
  }
  return NULL;
}

static void test_threads(void) {
  totals_t t0, t1;
  CHECK(dump_totals(&t0));
  pthread_t a, b;
  pthread_create(&a, NULL, alloc_thread, NULL);
  pthread_join(a, NULL);
  CHECK(dump_totals(&t1));
  CHECK(t1.live_count >= t0.live_count + HANDOFF);
  pthread_create(&b, NULL, free_thread, NULL);
  pthread_join(b, NULL);
  CHECK(dump_totals(&t1));
  if (!CHECK(t1.live_count <= t0.live_count + 2))
    printf("live samples %.0f before, %.0f after the other thread freed them\n", t0.live_count, t1.live_count);
  /* 8 threads freeing each other's blocks, sampled every 4 KiB */
  CHECK_EQ(am_prof_set_sample(4096), 0);
  pthread_t w[WORKERS];
  for (int i = 0; i < WORKERS; i++) pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
  for (int i = 0; i < RING; i++) free(atomic_exchange(&ring[i], NULL));
  CHECK(dump_totals(&t1));
  if (!CHECK(t1.live_count <= t0.live_count + 2)) printf("live samples %.0f after the workers\n", t1.live_count);
  CHECK(t1.alloc_count > t0.alloc_count + 1000);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static _Atomic(int) stop_churn;
static void *churn(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_churn)) {
    void *p[64];
    for (int i = 0; i < 64; i++) p[i] = malloc(16 + (size_t)i * 40);
    for (int i = 0; i < 64; i++) free(p[i]);
  }
  return NULL;
}

static void test_fork(void) {
  pthread_t t;
  pthread_create(&t, NULL, churn, NULL);
  for (int round = 0; round < 20; round++) {
    pid_t pid = fork();
    if (pid == 0) {
      void *p[1000];
      for (int i = 0; i < 1000; i++) p[i] = malloc(100 + (size_t)i);
      for (int i = 0; i < 1000; i++) free(p[i]);
      totals_t tt;
      const char *path = tmp_profile("child");
      int err = am_prof_dump(path);
      bool ok = err == 0 && read_profile(path, &tt, NULL, NULL);
      unlink(path);
      _exit(ok ? 0 : 3);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0)) printf("child status %#x\n", status);
  }
  atomic_store(&stop_churn, 1);
  pthread_join(t, NULL);
}

/* ---- medium blocks sampled in place (src/prof.c am_prof_sample_in_place) ------------------- */

#define MEDIUM 20000                    /* a medium class (above 8 KiB) */
static void *free_in_thread(void *p) {
  free(p);
  return NULL;
}
static void inplace_double_free(void *arg) {
  (void)arg;
  void *keep = malloc(MEDIUM), *p = malloc(MEDIUM);   /* (keep: the slab stays) */
  KEEP(keep);
  fprintf(stderr, "%p\n", p);
  free(p);
  free(p);
}
static void inplace_interior(void *arg) {
  (void)arg;
  void *p = malloc(MEDIUM);
  fprintf(stderr, "%p\n", (void *)((char *)p + 4096));
  free((char *)p + 4096);
}
/* fn must stop the child with "amalloc: error: free: <what> (pointer <its first line>)" */
static void inplace_abort(const char *name, void (*fn)(void *), const char *what) {
  char err[1024], want[256];
  int status = test_in_child(fn, NULL, err, sizeof(err));
  char *nl = strchr(err, '\n');
  if (nl != NULL) *nl = 0;
  snprintf(want, sizeof(want), "amalloc: error: free: %s (pointer %s)", what, err);
  bool ok = test_died_of(status, SIGABRT) && nl != NULL && strncmp(nl + 1, want, strlen(want)) == 0;
  if (!CHECK(ok)) printf("%s: status %d, want \"%s\", got \"%s\"\n", name, status, want, nl ? nl + 1 : err);
}

static void test_inplace(void) {
  pthread_t warm;                         /* (glibc keeps what its first thread allocated) */
  pthread_create(&warm, NULL, free_in_thread, NULL);
  pthread_join(warm, NULL);
  double base = live_samples();
  void *p = malloc(MEDIUM);
  CHECK(live_samples() == base + 1);
  free(p);
  CHECK(live_samples() == base);
  CHECK_EQ(am_prof_set_sample(0), 0);
  void *q = malloc(MEDIUM);
  if (!CHECK(q == p)) printf("the sampled block came from elsewhere: %p, then %p\n", p, q);
  void *u[4];
  for (int i = 0; i < 4; i++) u[i] = malloc(MEDIUM);
  CHECK_EQ(am_prof_set_sample(1), 0);
  void *s = malloc(MEDIUM);               /* in the slab of u[] (the current one) */
  CHECK(live_samples() == base + 1);
  for (int i = 0; i < 4; i++) free(u[i]);   /* the flagged slab's slow path: not samples */
  CHECK(live_samples() == base + 1);
  CHECK_EQ(am_prof_set_sample(0), 0);
  void *u2[4];
  for (int i = 0; i < 4; i++) u2[i] = malloc(MEDIUM);
  for (int i = 0; i < 4; i++) CHECK(u2[i] == u[3 - i]);   /* back on the slab's list, LIFO */
  for (int i = 0; i < 4; i++) free(u2[i]);
  CHECK_EQ(am_prof_set_sample(1), 0);
  void *m[40];
  for (int i = 0; i < 40; i++) m[i] = malloc(MEDIUM);
  CHECK(live_samples() == base + 41);
  for (int i = 0; i < 40; i += 2) {       /* every other one freed by another thread */
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, m[i]);
    pthread_join(t, NULL);
  }
  if (!CHECK(live_samples() == base + 21)) printf("live %.0f, want %.0f\n", live_samples(), base + 21);
  for (int i = 1; i < 40; i += 2) free(m[i]);
  free(s);
  free(q);
  CHECK(live_samples() == base);
  /* first-class heaps are never sampled (src/prof.c arms them with AM_PROF_NEVER) */
  totals_t t0, t1;
  CHECK(dump_totals(&t0));
  am_heap_t *h = am_heap_new();
  for (int i = 0; i < 100; i++) am_heap_malloc(h, 16 + (size_t)i * 200);
  am_heap_t *prev = am_heap_set_default(h);
  for (int i = 0; i < 100; i++) KEEP(malloc(16 + (size_t)i * 200));
  am_heap_set_default(prev);
  am_heap_destroy(h);
  CHECK(dump_totals(&t1));
  if (!CHECK(t1.alloc_count == t0.alloc_count)) printf("a first-class heap's blocks were sampled\n");
  inplace_abort("double free of a sample", inplace_double_free, "double free");
  inplace_abort("interior pointer", inplace_interior, "pointer inside a block, not at its start");
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  test_init("prof");
  CHECK_AMALLOC_ACTIVE();
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "accuracy") == 0) {
    check_proportions(getenv("AMALLOC_TEST_QUICK") ? 256 * MiB : 1024 * MiB, true);
  } else if (strcmp(what, "stats") == 0) {
    check_proportions(100 * MiB, false);
  } else if (strcmp(what, "api") == 0) {
    test_api();
  } else if (strcmp(what, "prefix") == 0) {
    test_prefix();
  } else if (strcmp(what, "threads") == 0) {
    test_threads();
  } else if (strcmp(what, "fork") == 0) {
    test_fork();
  } else if (strcmp(what, "inplace") == 0) {
    test_inplace();
  } else if (strcmp(what, "off") == 0) {
    CHECK_EQ(am_prof_dump("/tmp/never.heap"), ENOTSUP);
    CHECK_EQ(am_prof_reset(), ENOTSUP);
    CHECK_EQ(am_option_get(AM_OPTION_PROF), 0);
  } else if (strcmp(what, "leak") == 0) {
    /* 256 MiB leaked from leaky_site in mixed sizes; as much again from site_a, freed */
    size_t leaked = 0;
    while (leaked < 256 * MiB) {
      void *p = leaky_site(mixed_size());
      leaked += malloc_usable_size(p);
      free(site_a(mixed_size()));
    }
    printf("leaked %zu bytes\n", leaked);
  } else if (strcmp(what, "sites") == 0 && argc > 2) {
    void *keep[30000];
    for (int i = 0; i < 30000; i++) keep[i] = (i % 3 == 0 ? site_b : site_a)(1000 + (size_t)i);
    CHECK_EQ(am_prof_dump(argv[2]), 0);
    for (int i = 0; i < 30000; i++) free(keep[i]);
  } else {
    fprintf(stderr, "usage: prof accuracy|stats|api|prefix|threads|fork|inplace|off|leak|sites FILE\n");
    return 2;
  }
  return test_summary();
}
