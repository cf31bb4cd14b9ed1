/* claims.c -- README promises that no other test checked (doc/claims.md, "Claims without a
 * sufficient test"). Standard names, run under LD_PRELOAD of the default or the secure build
 * (test/claims/meson.build); am_stats_get and am_option_set are looked up weakly.
 *
 *   claims realloc-zero       realloc(p, 0) frees p (the live count of its class and the large
 *                             block count fall back) and returns NULL; realloc(NULL, 0) returns
 *                             distinct pointers
 *   claims memalign-zero      memalign(0, n) is malloc(n): a usable, 16-byte aligned block
 *   claims mallopt            mallopt returns glibc's value for every parameter (also unknown
 *                             ones): 0 only for M_MXFAST above 160 bytes
 *   claims realloc-growth     a realloc that must move a growing block asks for at least an eighth
 *                             more than the old block (default build: usable sizes exact)
 *   claims lazy-slab          the first block of a fresh class faults in a few pages of its
 *                             64 KiB slab slot, not all 16 (4 KiB pages)
 *   claims cxx-runtime        a C program does not load libstdc++; a failing operator new without
 *                             a C++ runtime aborts with one `amalloc: error: operator new:` line
 *   claims large-cache        the large-block cache keeps mappings of at most 64 MiB, at most 8 of
 *                             them, at most 128 MiB in all
 * secure build only:
 *   claims quarantine-bound   a write into a quarantined block is reported within 256 blocks
 *                             handed out, and within 8 large allocations
 *   claims fork-parent        a forked child's carving order differs from the parent's
 *   claims medium-guards      a medium segment has a guard page at the end of each of its four
 *                             1 MiB slots and one after its header
 *   claims no-convert         empty segments do not change kind
 *   claims large-cache-guards a large block reused from the cache has its guard pages; a cached
 *                             block faults on access
 * Each check fails if the claim were false (see doc/claims.md for how each was tried).
 */
#define _GNU_SOURCE
#include "../test.h"

#include <amalloc.h>
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

extern int am_stats_get(am_stats_t *out) __attribute__((weak));
extern int am_option_set(am_option_t opt, long value) __attribute__((weak));

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static bool stats(am_stats_t *st) {
  if (am_stats_get == NULL) {
    CHECK(!"am_stats_get is not in the process (run with amalloc preloaded)");
    return false;
  }
  st->size = sizeof *st;
  return CHECK_EQ(am_stats_get(st), 0);
}

/* The live blocks of the class that serves blocks of `usable` bytes (SIZE_MAX if none). */
static size_t class_live(size_t usable) {
  am_stats_t st;
  if (!stats(&st)) return SIZE_MAX;
  for (size_t c = 0; c < AM_STATS_CLASSES; c++)
    if (st.classes[c].block_size >= usable) return (size_t)st.classes[c].live;
  return SIZE_MAX;
}


/* The secure build's quarantine holds the last 64 frees: they count as live until they leave
 * it. Pushes them out with frees of another class. */
static void flush_quarantine(void) {
  void *q[64];
  for (int i = 0; i < 64; i++) q[i] = malloc(5000);
  for (int i = 0; i < 64; i++) free(q[i]);
}

/* ---- API and semantics ------------------------------------------------------------------- */

static void test_realloc_zero(void) {
  /* small: 1,000 blocks of one class given to realloc(p, 0); the class's live count falls back */
  enum { N = 1000 };
  static void *p[N];
  void *probe = malloc(600);
  size_t usable = malloc_usable_size(probe);
  free(probe);
  flush_quarantine();
  size_t live0 = class_live(usable);
  for (int i = 0; i < N; i++) p[i] = malloc(600);
  CHECK_EQ(class_live(usable), live0 + N);
  int not_null = 0;
  for (int i = 0; i < N; i++) not_null += realloc(p[i], opaque_size(0)) != NULL;
  CHECK_EQ(not_null, 0);
  flush_quarantine();
  CHECK_EQ(class_live(usable), live0);
  /* large: the block is unmapped or cached, no longer live */
  am_stats_t st0, st1;
  if (!stats(&st0)) return;
  void *big = malloc(5 * MiB);
  CHECK(realloc(big, opaque_size(0)) == NULL);
  if (!stats(&st1)) return;
  CHECK_EQ(st1.large_count, st0.large_count);
  /* realloc(NULL, 0): a unique pointer each time */
  static void *z[64];
  for (int i = 0; i < 64; i++) {
    z[i] = realloc(NULL, opaque_size(0));
    CHECK(z[i] != NULL);
  }
  int same = 0;
  for (int i = 0; i < 64; i++)
    for (int j = i + 1; j < 64; j++) same += z[i] == z[j];
  CHECK_EQ(same, 0);
  for (int i = 0; i < 64; i++) free(z[i]);
}

static void test_memalign_zero(void) {
  static const size_t sizes[] = {1, 16, 100, 5000, 100000, 300000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    errno = 0;
    void *p = memalign(opaque_size(0), n);
    if (!CHECK(p != NULL)) continue;
    CHECK_ALIGNED(p, 16);
    CHECK_GE(malloc_usable_size(p), n);
    memset(p, 0x3a, n);
    CHECK(all_bytes(p, n, 0x3a));
    free(p);
  }
}

/* What glibc 2.36's mallopt returns (malloc/malloc.c __libc_mallopt): M_MXFAST refuses a value
 * above 160 bytes (as a size_t: negative ones too); every other call returns 1.
 * (test/glibc-knobs.sh compares with glibc itself.) */
static int glibc_mallopt_result(int param, int value) {
  if (param == M_MXFAST) return value >= 0 && value <= 160;
  return 1;
}

static void test_mallopt(void) {
  /* glibc's parameters (malloc.h), then numbers glibc does not know */
  static const int params[] = {M_MXFAST, M_NLBLKS, M_GRAIN, M_KEEP, M_TRIM_THRESHOLD, M_TOP_PAD,
                               M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB,
                               M_ARENA_TEST, M_ARENA_MAX, 12345, -1000, 0};
  static const int values[] = {0, 1, 64, -1, 1 << 30};
  int bad = 0, zeros = 0;
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
      int r = mallopt(params[i], values[k]);
      int want = glibc_mallopt_result(params[i], values[k]);
      zeros += want == 0;
      if (r != want) {
        if (bad++ < 5) fprintf(stderr, "mallopt(%d, %d) returned %d, glibc %d\n", params[i], values[k], r, want);
      }
    }
  CHECK_EQ(bad, 0);
  CHECK_EQ(zeros, 2);
  void *p = malloc(100); /* and malloc still works */
  CHECK(p != NULL);
  free(p);
}

/* ---- Design ------------------------------------------------------------------------------ */

/* For every class from 128 bytes to 128 KiB: a block of exactly the class's size grown by one
 * byte must move; the new block holds at least an eighth more. (Above 128 bytes classes are an
 * eighth of a doubling apart, so without the rule the next class, 1/8 of the doubling's base
 * larger, would do: less than an eighth of the old block in the upper part of each doubling.) */
static void test_realloc_growth(void) {
  size_t classes = 0, bad = 0;
  for (size_t n = 128; n <= 128 * KiB;) {
    char *p = malloc(n);
    size_t u = malloc_usable_size(p);
    memset(p, 0x5c, u);
    char *q = realloc(p, u + 1);
    if (!CHECK(q != NULL)) {
      free(p);
      break;
    }
    size_t v = malloc_usable_size(q);
    if (v < u + u / 8) {
      if (bad++ < 5) fprintf(stderr, "realloc-growth: block of %zu grown by 1 byte: usable %zu\n", u, v);
    }
    CHECK(all_bytes(q, u, 0x5c));
    free(q);
    classes++;
    n = u + 1;
  }
  printf("realloc-growth: %zu classes, %zu grew by less than an eighth\n", classes, bad);
  CHECK(classes >= 70);
  CHECK_EQ(bad, 0);
}

/* The first malloc of a class nothing used before: of its 64 KiB slab slot (16 pages of 4 KiB)
 * only the first 4 KiB of blocks (and the segment header, if the slab is in slot 0) are touched. */
static void test_lazy_slab(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (page != 4096) {
    test_note("page size %zu: the check is for 4 KiB pages; skipped", page);
    return;
  }
  char *p = malloc(opaque_size(700)); /* the 704-byte class */
  CHECK(p != NULL);
  uintptr_t slot = (uintptr_t)p & ~(uintptr_t)(64 * KiB - 1);
  unsigned char vec[16];
  CHECK_EQ(mincore((void *)slot, 64 * KiB, vec), 0);
  size_t resident = 0, header = 0;
  for (int i = 0; i < 16; i++) resident += vec[i] & 1;
  if ((slot & ((uintptr_t)4 * MiB - 1)) == 0) /* slot 0 of its segment: the 8 KiB header */
    header = (vec[0] & 1) + (vec[1] & 1);
  printf("lazy-slab: %zu of 16 pages of the slot resident (%zu of them the header)\n", resident, header);
  CHECK(resident - header <= 2); /* 4 KiB of blocks: at most 2 pages (a block may straddle) */
  free(p);
}

/* ---- C programs and the C++ runtime ------------------------------------------------------ */

static bool maps_contain(const char *what) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return false;
  char line[512];
  bool found = false;
  while (fgets(line, sizeof line, f))
    if (strstr(line, what) != NULL) found = true;
  fclose(f);
  return found;
}

static void new_huge(void *arg) {
  void *(*op_new)(size_t) = (void *(*)(size_t))arg;
  void *p = op_new(opaque_size(SIZE_MAX / 2));
  printf("operator new returned %p\n", p);
}

static void test_cxx_runtime(void) {
  CHECK(!maps_contain("libstdc++"));
  void *op_new = dlsym(RTLD_DEFAULT, "_Znwm"); /* operator new(size_t) */
  if (!CHECK(op_new != NULL)) return;
  void *op_new2 = dlsym(RTLD_DEFAULT, "am_malloc");
  CHECK(op_new2 != NULL);                      /* amalloc is in the process */
  char err[512];
  int st = test_in_child(new_huge, op_new, err, sizeof err);
  bool ok = test_died_of(st, SIGABRT) &&
            strstr(err, "amalloc: error: operator new: out of memory") != NULL &&
            strchr(err, '\n') == err + strlen(err) - 1;
  if (!CHECK(ok)) fprintf(stderr, "cxx-runtime: status 0x%x, stderr: %s\n", st, err);
  CHECK(!maps_contain("libstdc++"));
}

/* ---- Memory return: the large-block cache ------------------------------------------------ */

static void test_large_cache(void) {
  am_stats_t st;
  malloc_trim(0); /* empty cache */
  if (!stats(&st)) return;
  CHECK_EQ(st.large_cached, 0);
  /* a mapping above 64 MiB is not kept */
  free(malloc(65 * MiB));
  stats(&st);
  CHECK_EQ(st.large_cached, 0);
  /* one of up to 64 MiB is (62 MiB + header and guard pages) */
  free(malloc(62 * MiB));
  stats(&st);
  CHECK_GE(st.large_cached, 62 * MiB);
  malloc_trim(0);
  /* 12 mappings of 2 MiB freed: at most 8 stay */
  enum { N = 12 };
  void *b[N];
  for (int i = 0; i < N; i++) b[i] = malloc(2 * MiB);
  for (int i = 0; i < N; i++) free(b[i]);
  stats(&st);
  printf("large-cache: 12 x 2 MiB freed: %zu bytes cached\n", st.large_cached);
  CHECK_GE(st.large_cached, 6 * 2 * MiB); /* kept (unless the delay passed meanwhile) */
  CHECK(st.large_cached <= 8 * (2 * MiB + 3 * 4096));
  malloc_trim(0);
  /* three of 60 MiB: at most 128 MiB in all */
  void *c[3];
  for (int i = 0; i < 3; i++) c[i] = malloc(60 * MiB);
  for (int i = 0; i < 3; i++) free(c[i]);
  stats(&st);
  printf("large-cache: 3 x 60 MiB freed: %zu bytes cached\n", st.large_cached);
  CHECK_GE(st.large_cached, 60 * MiB);
  CHECK(st.large_cached <= 128 * MiB);
  malloc_trim(0);
}

/* ---- Secure build ------------------------------------------------------------------------- */

static void write_then_small_allocs(void *arg) {
  (void)arg;
  char *p = malloc(100);
  free(p);
  ((char *volatile)opaque_ptr(p))[40] = 'x';
  for (int i = 0; i < 256; i++) opaque_ptr(malloc(32));
  fprintf(stderr, "256 mallocs completed\n");
}
static void write_then_large_allocs(void *arg) {
  (void)arg;
  char *p = malloc(100);
  free(p);
  ((char *volatile)opaque_ptr(p))[40] = 'x';
  for (int i = 0; i < 8; i++) opaque_ptr(malloc(1 * MiB));
  fprintf(stderr, "8 large mallocs completed\n");
}
static void test_quarantine_bound(void) {
  struct {
    const char *name;
    void (*fn)(void *);
  } cases[] = {{"256 small mallocs", write_then_small_allocs}, {"8 large mallocs", write_then_large_allocs}};
  for (size_t i = 0; i < 2; i++) {
    char err[512];
    int st = test_in_child(cases[i].fn, NULL, err, sizeof err);
    bool ok = test_died_of(st, SIGABRT) && strstr(err, "amalloc: error: malloc: write to a freed block") != NULL;
    if (!CHECK(ok)) fprintf(stderr, "quarantine-bound: %s: status 0x%x, stderr: %s\n", cases[i].name, st, err);
  }
}

/* The order (indices from the lowest block) of 64 blocks of a class nobody used yet. */
static void fresh_order(uint16_t *o, int n) {
  char *p[64];
  for (int i = 0; i < n; i++) p[i] = malloc(1400);
  size_t bsize = malloc_usable_size(p[0]) + 8;
  char *lo = p[0];
  for (int i = 0; i < n; i++) lo = p[i] < lo ? p[i] : lo;
  for (int i = 0; i < n; i++) o[i] = (uint16_t)((size_t)(p[i] - lo) / bsize);
}
static void test_fork_parent(void) {
  enum { N = 64 };
  uint16_t child[N], parent[N];
  int fds[2];
  if (!CHECK(pipe(fds) == 0)) return;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    uint16_t o[N];
    fresh_order(o, N);
    _exit(write(fds[1], o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
  }
  close(fds[1]);
  /* the parent draws next from the state it forked with: without a reseed in the child, the
   * child drew the same numbers */
  fresh_order(parent, N);
  size_t got = 0;
  ssize_t r;
  while (got < sizeof child && (r = read(fds[0], (char *)child + got, sizeof child - got)) > 0) got += (size_t)r;
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == sizeof child);
  int same = 0;
  for (int i = 0; i < N; i++) same += child[i] == parent[i];
  printf("fork-parent: %d of %d blocks at the same place in the parent's and the child's order\n", same, N);
  CHECK(same < N / 2);
}

static void count_guards(uintptr_t base, size_t *ranges, size_t *pages) {
  FILE *f = fopen("/proc/self/maps", "r");
  *ranges = *pages = 0;
  if (!CHECK(f != NULL)) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3) continue;
    if (hi <= base || lo >= base + 4 * MiB) continue;
    if (strcmp(perm, "---p") == 0) {
      (*ranges)++;
      *pages += (hi - lo) / (size_t)sysconf(_SC_PAGESIZE);
    }
  }
  fclose(f);
}

static void touch_before(void *arg) { ((volatile char *)arg)[-1] = 1; }
static void touch_after(void *arg) { ((volatile char *)arg)[malloc_usable_size(arg)] = 1; }
static void touch_slot_end(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  *(volatile char *)((p & ~(uintptr_t)(MiB - 1)) + MiB - 1) = 1;
}

static void test_medium_guards(void) {
  char *p = malloc(20000);
  uintptr_t base = (uintptr_t)p & ~(uintptr_t)(4 * MiB - 1);
  size_t ranges, pages;
  count_guards(base, &ranges, &pages);
  printf("medium-guards: %zu PROT_NONE ranges, %zu pages in p's segment\n", ranges, pages);
  CHECK_EQ(ranges, 5); /* 4 slot ends + 1 after the header */
  CHECK_EQ(pages, 5);
  char err[64];
  CHECK(test_died_of(test_in_child(touch_slot_end, p, err, sizeof err), SIGSEGV));
  free(p);
}

static void test_no_convert(void) {
  if (am_option_set == NULL) {
    CHECK(!"am_option_set is not in the process");
    return;
  }
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, -1), 0);
  enum { NM = 200, NS = 16 * 1024 };
  static void *med[NM], *sml[NS];
  am_stats_t a, b;
  for (int i = 0; i < NM; i++) memset(med[i] = malloc(64 * KiB), 1, 64);
  for (int i = 0; i < NM; i++) free(med[i]);
  for (int i = 0; i < 64; i++) free(malloc(100)); /* (out of the quarantine) */
  if (!stats(&a)) return;
  for (int i = 0; i < NS; i++) memset(sml[i] = malloc(1000), 2, 64);
  if (!stats(&b)) return;
  printf("no-convert: medium -> small: %zu segments converted, %zu mapped\n",
         b.segments_converted - a.segments_converted, b.segments - a.segments);
  CHECK_EQ(b.segments_converted, a.segments_converted);
  CHECK_EQ(b.segments_converted, 0);
  for (int i = 0; i < NS; i++) free(sml[i]);
}

static void read_first(void *arg) {
  volatile char c = *(volatile char *)arg;
  (void)c;
}
static void test_large_cache_guards(void) {
  char err[64];
  malloc_trim(0);
  char *a = malloc(6 * MiB);
  memset(a, 1, 6 * MiB);
  free(a);
  am_stats_t st;
  if (!stats(&st)) return;
  CHECK_GE(st.large_cached, 6 * MiB);  /* it is cached: and any access faults */
  CHECK(test_died_of(test_in_child(read_first, a, err, sizeof err), SIGSEGV));
  /* reused smaller (trimmed) and larger (never grown: a new mapping) */
  static const size_t sizes[] = {5 * MiB, 9 * MiB};
  for (int i = 0; i < 2; i++) {
    char *b = malloc(sizes[i]);
    if (!CHECK(b != NULL)) continue;
    memset(b, 2, malloc_usable_size(b));
    CHECK(test_died_of(test_in_child(touch_before, b, err, sizeof err), SIGSEGV));
    CHECK(test_died_of(test_in_child(touch_after, b, err, sizeof err), SIGSEGV));
    free(b);
  }
  malloc_trim(0);
}

int main(int argc, char **argv) {
  test_init("claims");
  CHECK_AMALLOC_ACTIVE();
  const char *what = argc > 1 ? argv[1] : "";
  static const struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
    {"realloc-zero", test_realloc_zero}, {"memalign-zero", test_memalign_zero},
    {"mallopt", test_mallopt}, {"realloc-growth", test_realloc_growth},
    {"lazy-slab", test_lazy_slab}, {"cxx-runtime", test_cxx_runtime},
    {"large-cache", test_large_cache}, {"quarantine-bound", test_quarantine_bound},
    {"fork-parent", test_fork_parent}, {"medium-guards", test_medium_guards},
    {"no-convert", test_no_convert}, {"large-cache-guards", test_large_cache_guards},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (strcmp(what, tests[i].name) == 0) {
      char name[64];
      snprintf(name, sizeof name, "claims-%s", what);
      test_init(name);
      tests[i].fn();
      return test_summary();
    }
  fprintf(stderr, "usage: %s TEST (see the comment at the top of claims.c)\n", argv[0]);
  return 2;
}
