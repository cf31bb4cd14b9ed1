/* effects.c -- options and reports checked by their effect, not by their echo (issue 13),
 * through the am_* API beside glibc's malloc (libamalloc-api.a).
 *
 *   effects purge-free     (AMALLOC_PURGE=free) purged slots are given back with MADV_FREE: the
 *                          process's LazyFree (smaps_rollup) rises by what was purged and RSS
 *                          does not fall; purged_bytes counts them.
 *   effects purge-dontneed (the default) the same memory leaves RSS at once; LazyFree stays.
 *   effects threshold      blocks above AMALLOC_LARGE_THRESHOLD (read back with am_option_get;
 *                          run with 64k and with the default 256k) are large blocks (their
 *                          own mapping: am_stats_get large_count / large_mallocs rise), blocks of
 *                          exactly the threshold are not.
 *   effects stats-output   malloc_stats() prints per-class lines and totals that follow what the
 *                          program allocated (its stderr is parsed).
 *   effects info           malloc_info's XML totals agree with mallinfo2 and follow a large block.
 *   effects mremap         growing a 64 MiB block to 128 MiB with realloc moves its pages with
 *                          mremap: far fewer page faults than a copy would take (16,384), and
 *                          the contents are intact.
 *   effects secure-env     run by test/setuid.sh as a setuid program (AT_SECURE): every AMALLOC_*
 *                          variable it was given is ignored (the options are the defaults).
 */
#include "test.h"

#include <amalloc.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <time.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1 << 20)

static am_stats_t stats(void) {
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  return st;
}

/* ---- AMALLOC_PURGE=free / dontneed ------------------------------------------------------ */
enum { PN = 64 * 1024 };
static void *pblocks[PN];

static void test_purge(bool want_free) {
  CHECK_EQ(am_option_get(AM_OPTION_PURGE), want_free ? 1 : 0);
  CHECK(smaps_kib("LazyFree") != 0 || smaps_kib("Rss") != 0);   /* smaps_rollup is readable */
  am_malloc_trim(0);
  am_stats_t st0 = stats();
  size_t rss0 = vm_rss_kib() * KiB, lazy0 = smaps_kib("LazyFree") * KiB;
  for (size_t i = 0; i < PN; i++) {
    pblocks[i] = am_malloc(1000);
    CHECK(pblocks[i] != NULL);
    if (pblocks[i]) memset(pblocks[i], 0x44, 1000);
  }
  size_t rss1 = vm_rss_kib() * KiB;
  /* one block in 4096 (one per 64 slabs: about one per segment) stays live, so that the
   * segments stay mapped and their free slots are purged in place, not unmapped */
  for (size_t i = 0; i < PN; i++)
    if (i % 4096 != 0) am_free(pblocks[i]);
  /* malloc_trim purges every free slot at once (the same purge the delay triggers) */
  am_malloc_trim(0);
  am_stats_t st2 = stats();
  size_t rss2 = vm_rss_kib() * KiB, lazy2 = smaps_kib("LazyFree") * KiB;
  size_t purged = st2.purged_bytes - st0.purged_bytes;
  printf("purge=%s: RSS %zu -> %zu -> %zu MiB, LazyFree %zu -> %zu MiB, purged %zu MiB\n",
         want_free ? "free" : "dontneed", rss0 / MiB, rss1 / MiB, rss2 / MiB, lazy0 / MiB,
         lazy2 / MiB, purged / MiB);
  CHECK(rss1 >= rss0 + 60 * MiB);
  CHECK_GE(purged, 48 * MiB);
  if (want_free) {
    /* MADV_FREE: the pages stay resident (no memory pressure here), counted as LazyFree */
    CHECK_GE(lazy2, lazy0 + 48 * MiB);
    CHECK_GE(rss2 + 8 * MiB, rss1);
  } else {
    /* MADV_DONTNEED: they leave RSS at once */
    CHECK(lazy2 <= lazy0 + 1 * MiB);
    CHECK(rss2 + 48 * MiB <= rss1);
  }
  for (size_t i = 0; i < PN; i += 4096) am_free(pblocks[i]);
}

/* ---- AMALLOC_LARGE_THRESHOLD --------------------------------------------------------------- */
static void test_threshold(void) {
  size_t t = (size_t)am_option_get(AM_OPTION_LARGE_THRESHOLD);
  const char *env = getenv("AMALLOC_LARGE_THRESHOLD");
  if (env && !strcmp(env, "64k")) CHECK_EQ(t, 64 * KiB);
  if (!env) CHECK_EQ(t, 256 * KiB);
  am_stats_t s0 = stats();
  void *at = am_malloc(t);                        /* not above: a slab block */
  am_stats_t s1 = stats();
  void *above = am_malloc(t + 1);                 /* above: a large block */
  am_stats_t s2 = stats();
  CHECK(at != NULL && above != NULL);
  printf("threshold %zu: malloc(%zu): large blocks %zu -> %zu; malloc(%zu): -> %zu\n", t, t,
         s0.large_count, s1.large_count, t + 1, s2.large_count);
  CHECK_EQ(s1.large_count, s0.large_count);
  CHECK_EQ(s1.large_mallocs, s0.large_mallocs);
  CHECK_EQ(s2.large_count, s1.large_count + 1);
  CHECK_EQ(s2.large_mallocs, s1.large_mallocs + 1);
  CHECK_GE(s2.large_bytes, s1.large_bytes + t + 1);
  /* a large block's usable size is whole pages; a slab block's is its class size */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(am_malloc_usable_size(above) % page, 0);
  am_free(at);
  am_free(above);
  CHECK_EQ(stats().large_count, s0.large_count);
}

/* ---- malloc_stats() output --------------------------------------------------------------- */
typedef struct {
  size_t block_size, mallocs, frees, live, slabs, peak;
} class_line_t;

/* The whole text written to temporary file `f` (through it or its descriptor), which it closes;
 * malloc'd by glibc. */
static char *file_text(FILE *f) {
  fseek(f, 0, SEEK_END);                /* (writes through the descriptor leave the FILE behind) */
  long n = ftell(f);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = 0;
  fclose(f);
  return buf;
}

/* Runs am_malloc_stats with stderr sent to a temporary file; returns the text (malloc'd by
 * glibc) or NULL. */
static char *capture_stats(void) {
  FILE *tmp = tmpfile();
  if (!CHECK(tmp != NULL)) return NULL;
  fflush(stderr);
  int saved = dup(2);
  dup2(fileno(tmp), 2);
  am_malloc_stats();
  dup2(saved, 2);
  close(saved);
  return file_text(tmp);                /* (am_malloc_stats wrote through fd 2) */
}

/* A number as printed by the report (digits, possibly with ',' or '_' separators). */
static size_t parse_num(const char **s) {
  while (**s == ' ') (*s)++;
  size_t v = 0;
  while ((**s >= '0' && **s <= '9') || **s == ',' || **s == '_') {
    if (**s >= '0' && **s <= '9') v = v * 10 + (size_t)(**s - '0');
    (*s)++;
  }
  return v;
}

/* The class line for block size `bsize`; false if there is none. */
static bool find_class(const char *text, size_t bsize, class_line_t *out) {
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, "amalloc: ", 9) != 0) continue;
    const char *s = l + 9;
    while (*s == ' ') s++;
    if (*s < '0' || *s > '9') continue;
    parse_num(&s);                                     /* the class index */
    class_line_t c;
    c.block_size = parse_num(&s);
    c.mallocs = parse_num(&s);
    c.frees = parse_num(&s);
    c.live = parse_num(&s);
    c.slabs = parse_num(&s);
    c.peak = parse_num(&s);
    if (c.block_size == bsize) {
      *out = c;
      return true;
    }
  }
  return false;
}

/* The value of a total line "amalloc: LABEL   N". */
static bool find_total(const char *text, const char *label, size_t *out) {
  char key[128];
  snprintf(key, sizeof key, "amalloc: %s ", label);
  const char *l = strstr(text, key);
  if (!l) return false;
  const char *s = l + strlen(key);
  *out = parse_num(&s);
  return true;
}

static void test_stats_output(void) {
  enum { N = 5000 };
  static void *v[N];
  char *before = capture_stats();
  class_line_t c0 = {0}, c1 = {0}, c2 = {0};
  size_t large0 = 0, large1 = 0, lm0 = 0, lm1 = 0, lb1 = 0, segs1 = 0;
  bool had0 = before && find_class(before, 704, &c0);     /* a class never used: no line */
  CHECK(before && find_total(before, "large blocks live", &large0));
  CHECK(before && find_total(before, "large mallocs", &lm0));
  for (int i = 0; i < N; i++) v[i] = am_malloc(700);
  void *big = am_malloc(5 * MiB);
  char *mid = capture_stats();
  am_stats_t st = stats();
  CHECK(mid && find_class(mid, 704, &c1));
  CHECK(mid && find_total(mid, "large blocks live", &large1));
  CHECK(mid && find_total(mid, "large mallocs", &lm1));
  CHECK(mid && find_total(mid, "large bytes live", &lb1));
  CHECK(mid && find_total(mid, "segments", &segs1));
  printf("malloc_stats: class 704 before %s, after %zu mallocs: mallocs %zu live %zu slabs %zu "
         "peak %zu; large blocks %zu -> %zu\n", had0 ? "listed" : "absent", (size_t)N, c1.mallocs,
         c1.live, c1.slabs, c1.peak, large0, large1);
  CHECK_EQ(c1.mallocs, c0.mallocs + N);
  CHECK_EQ(c1.live, c0.live + N);
  CHECK_EQ(c1.frees, c0.frees);
  CHECK_GE(c1.slabs, N * 704 / (64 * KiB));
  CHECK_GE(c1.peak, c1.slabs);
  CHECK_EQ(large1, large0 + 1);
  CHECK_EQ(lm1, lm0 + 1);
  CHECK_GE(lb1, 5 * MiB);
  CHECK_EQ(segs1, st.segments);
  for (int i = 0; i < N; i++) am_free(v[i]);
  am_free(big);
  char *after = capture_stats();
  CHECK(after && find_class(after, 704, &c2));
  CHECK_EQ(c2.frees, c1.frees + N);
  CHECK_EQ(c2.live, c0.live);
  CHECK_EQ(c2.mallocs, c1.mallocs);
  size_t large2 = 99;
  CHECK(after && find_total(after, "large blocks live", &large2));
  CHECK_EQ(large2, large0);
  free(before);
  free(mid);
  free(after);
}

/* ---- malloc_info ------------------------------------------------------------------------- */
/* The size (or count) attribute of the first element after `after` that matches `tag`. */
static size_t xml_attr(const char *xml, const char *after, const char *tag, const char *attr) {
  const char *p = after ? strstr(xml, after) : xml;
  if (!p) return SIZE_MAX;
  p = strstr(p, tag);
  if (!p) return SIZE_MAX;
  const char *end = strchr(p, '>');
  char key[32];
  snprintf(key, sizeof key, "%s=\"", attr);
  const char *a = strstr(p, key);
  if (!a || (end && a > end)) return SIZE_MAX;
  return (size_t)strtoull(a + strlen(key), NULL, 10);
}

static char *info_text(void) {
  FILE *f = tmpfile();
  if (!CHECK(f != NULL)) return NULL;
  CHECK_EQ(am_malloc_info(0, f), 0);
  return file_text(f);
}

static void test_info(void) {
  enum { N = 4000 };
  static void *v[N];
  for (int i = 0; i < N; i++) v[i] = am_malloc(100 + (size_t)(i % 900));
  char *x0 = info_text();
  struct am_mallinfo2 m0 = am_mallinfo2();
  void *big = am_malloc(3 * MiB);
  char *x1 = info_text();
  struct am_mallinfo2 m1 = am_mallinfo2();
  CHECK(x0 && x1);
  if (!x0 || !x1) return;
  const char *tail = "</heap>";          /* the process-wide totals follow the heap element */
  size_t mmap_count0 = xml_attr(x0, tail, "<total type=\"mmap\"", "count");
  size_t mmap_size0 = xml_attr(x0, tail, "<total type=\"mmap\"", "size");
  size_t mmap_count1 = xml_attr(x1, tail, "<total type=\"mmap\"", "count");
  size_t mmap_size1 = xml_attr(x1, tail, "<total type=\"mmap\"", "size");
  size_t rest1 = xml_attr(x1, tail, "<total type=\"rest\"", "size");
  size_t cur1 = xml_attr(x1, tail, "<system type=\"current\"", "size");
  size_t heap_cur1 = xml_attr(x1, "<heap nr=\"0\">", "<system type=\"current\"", "size");
  printf("malloc_info: mmap count %zu -> %zu, size %zu -> %zu; rest %zu; current %zu "
         "(mallinfo2 arena %zu hblkhd %zu fordblks %zu)\n", mmap_count0, mmap_count1,
         mmap_size0, mmap_size1, rest1, cur1, m1.arena, m1.hblkhd, m1.fordblks);
  CHECK_EQ(mmap_count0, m0.hblks);
  CHECK_EQ(mmap_size0, m0.hblkhd);
  CHECK_EQ(mmap_count1, mmap_count0 + 1);          /* the 3 MiB block */
  CHECK_GE(mmap_size1, mmap_size0 + 3 * MiB);
  CHECK_EQ(mmap_count1, m1.hblks);
  CHECK_EQ(mmap_size1, m1.hblkhd);
  CHECK_EQ(rest1, m1.fordblks);
  CHECK_EQ(cur1, m1.arena + m1.hblkhd);
  CHECK_EQ(heap_cur1, m1.arena);
  CHECK(m1.arena >= N * 100);                       /* the small blocks' segments */
  am_free(big);
  for (int i = 0; i < N; i++) am_free(v[i]);
  char *x2 = info_text();
  if (x2) CHECK_EQ(xml_attr(x2, tail, "<total type=\"mmap\"", "count"), mmap_count0);
  free(x0);
  free(x1);
  free(x2);
}

/* ---- large realloc with mremap ----------------------------------------------------------- */
static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void test_mremap(void) {
  size_t n = 64 * MiB, m = 128 * MiB;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *p = am_malloc(n);
  CHECK(p != NULL);
  if (!p) return;
  for (size_t i = 0; i < n; i += page) p[i] = (unsigned char)(i / page);
  /* something right after it, so that growing in place is not always possible */
  void *blocker = am_malloc(1 * MiB);
  long f0 = minflt();
  unsigned char *q = am_realloc(p, m);
  long f1 = minflt();
  CHECK(q != NULL);
  if (!q) return;
  size_t bad = 0;
  for (size_t i = 0; i < n; i += page) bad += q[i] != (unsigned char)(i / page);
  long copy_faults = (long)(n / page);
  printf("mremap: realloc 64 -> 128 MiB %s: %ld page faults (a copy: at least %ld)\n",
         q == p ? "in place" : "moved", f1 - f0, copy_faults);
  CHECK_EQ(bad, 0);
  CHECK(f1 - f0 < copy_faults / 16);
  am_free(q);
  am_free(blocker);
}

/* ---- the environment of a setuid program ----------------------------------------------- */
static void test_secure_env(void) {
  CHECK_EQ(getauxval(AT_SECURE), 1);       /* else this run proves nothing */
  CHECK(getenv("AMALLOC_PURGE_DELAY_MS") != NULL);
  am_free(am_malloc(100));                 /* initialised */
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MS), 25);
  CHECK_EQ(am_option_get(AM_OPTION_THP), 0);
  CHECK_EQ(am_option_get(AM_OPTION_PURGE), 0);
  CHECK_EQ(am_option_get(AM_OPTION_LARGE_THRESHOLD), 256 * 1024);
  CHECK_EQ(am_option_get(AM_OPTION_VERBOSE), 0);
  CHECK_EQ(am_option_get(AM_OPTION_SHOW_STATS), 0);
  /* the heap profiler: AMALLOC_PROF, _SAMPLE, _LEAKS and _DUMP ignored (no profile at exit) */
  CHECK(getenv("AMALLOC_PROF") != NULL && getenv("AMALLOC_PROF_DUMP") != NULL);
  CHECK_EQ(am_option_get(AM_OPTION_PROF), 0);
  CHECK_EQ(am_option_get(AM_OPTION_PROF_SAMPLE), 512 * 1024);
  CHECK_EQ(am_option_get(AM_OPTION_PROF_LEAKS), 0);
  CHECK_EQ(am_prof_dump(NULL), ENOTSUP);
}

int main(int argc, char **argv) {
  test_init("effects");
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "purge-free")) test_purge(true);
  else if (!strcmp(what, "purge-dontneed")) test_purge(false);
  else if (!strcmp(what, "threshold")) test_threshold();
  else if (!strcmp(what, "stats-output")) test_stats_output();
  else if (!strcmp(what, "info")) test_info();
  else if (!strcmp(what, "mremap")) test_mremap();
  else if (!strcmp(what, "secure-env")) test_secure_env();
  else {
    fprintf(stderr, "usage: %s purge-free|purge-dontneed|threshold|stats-output|info|mremap|"
            "secure-env\n", argv[0]);
    return 2;
  }
  return test_summary();
}
