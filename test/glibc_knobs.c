/* glibc_knobs.c -- glibc's malloc settings under amalloc (src/options.c, issue 17): mallopt and
 * the MALLOC_*_ / GLIBC_TUNABLES environment. Standard names only; amalloc's am_option_get and
 * am_stats_get are looked up with dlsym, so the same program runs on glibc's malloc too
 * (test/glibc-knobs.sh compares the two).
 *
 *   glibc_knobs matrix       prints mallopt's result for glibc's parameters and unknown ones,
 *                            each with several values (run on glibc and on amalloc: the same)
 *   glibc_knobs options      prints the options amalloc has in force (am_option_get)
 *   glibc_knobs threshold    mallopt(M_MMAP_THRESHOLD) moves where blocks become large
 *                            (am_stats_get: large_count), clamped to 1 KiB .. 256 KiB
 *   glibc_knobs trim         mallopt(M_TRIM_THRESHOLD, -1): memory freed is not purged;
 *                            mallopt(M_TRIM_THRESHOLD, 0): purged at the next free
 *   glibc_knobs large N      1 if malloc(N) is a large block (its own mapping), else 0
 *   glibc_knobs calls        mallopt(M_MMAP_THRESHOLD, 65536), and M_MXFAST 161 (refused) for the
 *                            verbose lines
 */
#define _GNU_SOURCE
#include "test.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include "../include/amalloc.h"

static long (*opt_get)(am_option_t);
static int (*stats_get)(am_stats_t *);

static void lookup(void) {
  opt_get = (long (*)(am_option_t))dlsym(RTLD_DEFAULT, "am_option_get");
  stats_get = (int (*)(am_stats_t *))dlsym(RTLD_DEFAULT, "am_stats_get");
  if (opt_get == NULL || stats_get == NULL) {
    fprintf(stderr, "amalloc is not loaded (no am_option_get/am_stats_get)\n");
    exit(1);
  }
}

static am_stats_t stats(void) {
  am_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (stats_get(&s) != 0) {
    fprintf(stderr, "am_stats_get failed\n");
    exit(1);
  }
  return s;
}

/* 1 if a fresh malloc(n) is a large block (large_count grows while it lives). */
static int is_large(size_t n) {
  size_t before = stats().large_count;
  void *volatile p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "malloc(%zu) failed\n", n);
    exit(1);
  }
  size_t during = stats().large_count;
  free(p);
  return during > before;
}

static void test_matrix(void) {
  static const int params[] = {M_MXFAST, M_NLBLKS, M_GRAIN, M_KEEP, M_TRIM_THRESHOLD, M_TOP_PAD,
                               M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB,
                               M_ARENA_TEST, M_ARENA_MAX, 12345, -1000, 0};
  static const int values[] = {0, 1, 64, 160, 161, -1, 1 << 20, 32 << 20, (32 << 20) + 1, 1 << 30};
  int res[sizeof params / sizeof params[0]][sizeof values / sizeof values[0]];
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
      res[i][k] = mallopt(params[i], values[k]);
      /* (back to the defaults glibc's test run would otherwise keep: perturb off) */
      if (params[i] == M_PERTURB) mallopt(M_PERTURB, 0);
      void *p = malloc(100);         /* malloc still works after each */
      if (p == NULL) exit(1);
      free(p);
    }
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++)
      printf("mallopt(%d, %d) = %d\n", params[i], values[k], res[i][k]);
}

static void test_options(void) {
  static const char *names[] = {"PURGE_DELAY_MS", "PURGE", "THP", "HUGETLB", "POPULATE",
                                "LARGE_THRESHOLD"};
  for (int o = 0; o < (int)(sizeof names / sizeof names[0]); o++)
    printf("%s=%ld\n", names[o], opt_get((am_option_t)o));
}

static void test_threshold(void) {
  CHECK_EQ(opt_get(AM_OPTION_LARGE_THRESHOLD), 256 * 1024);
  CHECK_EQ(is_large(100000), 0);
  CHECK_EQ(is_large(300000), 1);
  CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 64 * 1024), 1);
  CHECK_EQ(opt_get(AM_OPTION_LARGE_THRESHOLD), 64 * 1024);
  CHECK_EQ(is_large(100000), 1);
  CHECK_EQ(is_large(60000), 0);
  void *p = malloc(100000);            /* its usable size is the large block's: page-rounded */
  CHECK(p != NULL);
  CHECK_EQ(malloc_usable_size(p) % 4096, 0);
  free(p);
  /* above amalloc's largest class (and -1, a huge size to glibc): 256 KiB; below its
   * smallest: 1 KiB */
  CHECK_EQ(mallopt(M_MMAP_THRESHOLD, -1), 1);
  CHECK_EQ(opt_get(AM_OPTION_LARGE_THRESHOLD), 256 * 1024);
  CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 64 * 1024), 1);
  CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
  CHECK_EQ(opt_get(AM_OPTION_LARGE_THRESHOLD), 256 * 1024);
  CHECK_EQ(is_large(200000), 0);
  CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 0), 1);
  CHECK_EQ(opt_get(AM_OPTION_LARGE_THRESHOLD), 1024);
  CHECK_EQ(is_large(2000), 1);
  CHECK_EQ(is_large(1000), 0);
}

/* Frees 8 MiB of 4 KiB blocks and returns the bytes purged by the time a later free ran. */
static size_t churn_purged(void) {
  enum { N = 2048 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(4096);
    if (blocks[i] == NULL) exit(1);
    memset(blocks[i], 1, 4096);
  }
  size_t before = stats().purged_bytes;
  for (int i = 0; i < N; i++) free(blocks[i]);
  usleep(100 * 1000);                  /* four default delays */
  for (int i = 0; i < 64; i++) free(malloc(64));   /* slow-path ticks */
  void *big = malloc(1 << 20);         /* (a large allocation ticks the heap too) */
  free(big);
  return stats().purged_bytes - before;
}

static void test_trim(void) {
  CHECK_EQ(mallopt(M_TRIM_THRESHOLD, -1), 1);
  CHECK_EQ(opt_get(AM_OPTION_PURGE_DELAY_MS), -1);
  size_t kept = churn_purged();
  CHECK_EQ(kept, 0);
  CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 0), 1);
  CHECK_EQ(opt_get(AM_OPTION_PURGE_DELAY_MS), 0);
  size_t purged = churn_purged();
  CHECK_GE(purged, (size_t)4 << 20);
  /* any other size leaves the delay as it is */
  CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 128 * 1024), 1);
  CHECK_EQ(opt_get(AM_OPTION_PURGE_DELAY_MS), 0);
  printf("purged with -1: %zu bytes, with 0: %zu bytes\n", kept, purged);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "matrix")) {
    test_matrix();
    return 0;
  }
  test_init("glibc_knobs");
  CHECK_AMALLOC_ACTIVE();
  lookup();
  if (!strcmp(what, "options")) test_options();
  else if (!strcmp(what, "threshold")) test_threshold();
  else if (!strcmp(what, "trim")) test_trim();
  else if (!strcmp(what, "large") && argc > 2) {
    printf("%d\n", is_large((size_t)atol(argv[2])));
    return 0;
  } else if (!strcmp(what, "calls")) {
    CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 65536), 1);
    CHECK_EQ(mallopt(M_MXFAST, 161), 0);
  }
  else {
    fprintf(stderr, "usage: glibc_knobs matrix|options|threshold|trim|large N|calls\n");
    return 2;
  }
  return test_summary();
}
