/* pagesize.c -- amalloc on 4, 16 and 64 KiB pages: no two live blocks overlap, every block
 * is usable to its full size, and a page size amalloc cannot lay out is refused at start.
 *
 *   LD_PRELOAD="libpagesize_shim.so libamalloc.so" AMALLOC_TEST_PAGE_SIZE=65536 \
 *       ./pagesize [layout|refuse|all]
 *
 * The shim (pagesize_shim.c) makes sysconf(_SC_PAGESIZE) & co. report AMALLOC_TEST_PAGE_SIZE;
 * without it the test runs on the machine's own page size.
 *   layout   malloc(16) and malloc(1000) do not overlap (with 64 KiB pages the segment header
 *            filled small slot 0 and they did); then blocks of every size class, a few large
 *            and aligned ones, kept live together: sorted by address no block reaches into the
 *            next, each holds the pattern written over its whole usable size after all were
 *            written, and the same after half are freed and allocated again.
 *   refuse   runs this program again with page sizes amalloc does not support (128 KiB, 2 KiB,
 *            12 KiB): each must die by SIGABRT at start, before main, with exactly one line
 *            "amalloc: error: ..." that names the page size, instead of running on a layout that
 *            corrupts memory.
 */
#define _GNU_SOURCE
#include "../test.h"

#include <malloc.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/wait.h>

typedef struct {
  uint8_t *p;
  size_t n;          /* usable size */
  uint64_t seed;
} blk_t;

static int blk_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const blk_t *)a)->p, y = (uintptr_t)((const blk_t *)b)->p;
  return x < y ? -1 : x > y;
}

/* The page size this process sees (the shim's, when it is preloaded). */
static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Every source of the page size agrees (so the shim covers them all). */
static void test_sources(void) {
  const char *want = getenv("AMALLOC_TEST_PAGE_SIZE");
  size_t ps = page_size();
  CHECK_EQ((size_t)getpagesize(), ps);
  CHECK_EQ((size_t)getauxval(AT_PAGESZ), ps);
  if (want != NULL && *want != 0) CHECK_EQ(ps, (size_t)strtoull(want, NULL, 10));
  printf("pagesize: page size %zu KiB\n", ps / 1024);
}

/* No two blocks of `b` overlap; each holds its pattern. Returns the failures. */
static size_t blk_verify(blk_t *b, size_t n) {
  qsort(b, n, sizeof(*b), blk_cmp);
  size_t bad = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (b[i].p + b[i].n > b[i + 1].p) {
      if (bad < 5)
        fprintf(stderr, "pagesize: blocks overlap: %p (usable %zu) and %p (usable %zu)\n",
                (void *)b[i].p, b[i].n, (void *)b[i + 1].p, b[i + 1].n);
      bad++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (!pat_check(b[i].p, b[i].n, b[i].seed, 4096)) {
      if (bad < 5) fprintf(stderr, "pagesize: block %p (usable %zu) lost its pattern\n", (void *)b[i].p, b[i].n);
      bad++;
    }
  }
  return bad;
}

static bool blk_alloc(blk_t *b, size_t size, size_t align, uint64_t seed) {
  void *p = NULL;
  if (align == 0) p = malloc(size);
  else if (align == 1) p = valloc(size);
  else if (align == 2) p = pvalloc(size);
  else if (posix_memalign(&p, align, size) != 0) p = NULL;
  if (!CHECK(p != NULL)) return false;
  size_t ps = page_size();
  CHECK_ALIGNED(p, 16);
  if (align == 1 || align == 2) CHECK_ALIGNED(p, ps);
  if (align > 2) CHECK_ALIGNED(p, align);
  b->p = p;
  b->n = malloc_usable_size(p);
  CHECK_GE(b->n, size);
  if (align == 2) CHECK_GE(b->n, (size + ps - 1) / ps * ps);
  b->seed = seed;
  pat_fill(b->p, b->n, seed, 4096);
  return true;
}

static void test_layout(void) {
  /* the reproduction of issue 13, defect 1 */
  uint8_t *a = malloc(16), *c = malloc(1000);
  CHECK(a != NULL && c != NULL);
  if (a && c) {
    CHECK(a + malloc_usable_size(a) <= c || c + malloc_usable_size(c) <= a);
    memset(a, 0xAA, malloc_usable_size(a));
    memset(c, 0xCC, malloc_usable_size(c));
    CHECK(all_bytes(a, malloc_usable_size(a), 0xAA));
  }

  /* every class: sizes 16..256 KiB (each class reached by 16-byte steps up to 1 KiB, then by
   * eighths of a power of two, and one byte more than each), enough blocks of each to fill
   * the first slab of its class and start a second, plus large and aligned blocks */
  enum { MAX_BLOCKS = 60000 };
  blk_t *b = calloc(MAX_BLOCKS, sizeof(*b));
  if (!CHECK(b != NULL)) return;
  size_t n = 0;
  uint64_t seed = 1;
  size_t sizes[400], ns = 0;
  for (size_t s = 16; s <= 1024; s += 16) sizes[ns++] = s;
  for (size_t e = 10; e < 18; e++)
    for (size_t k = 1; k <= 8; k++) {
      size_t s = ((size_t)1 << e) + k * ((size_t)1 << (e - 3));
      sizes[ns++] = s;
      if (s + 1 <= 256 * 1024) sizes[ns++] = s + 1;
    }
  sizes[ns++] = 1;
  sizes[ns++] = 0;
  size_t budget = test_quick() ? 64 * 1024 : 256 * 1024;   /* bytes per size */
  for (size_t i = 0; i < ns; i++) {
    size_t count = budget / (sizes[i] ? sizes[i] : 1);
    if (count < 8) count = 8;
    if (count > 512) count = 512;
    for (size_t j = 0; j < count && n < MAX_BLOCKS; j++)
      if (blk_alloc(&b[n], sizes[i], 0, seed++)) n++;
  }
  static const size_t big[] = {256 * 1024 + 1, 300 * 1000, 1024 * 1024, 5 * 1024 * 1024};
  for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
    for (size_t j = 0; j < 3 && n < MAX_BLOCKS; j++)
      if (blk_alloc(&b[n], big[i], 0, seed++)) n++;
  static const size_t aligns[] = {1, 2, 32, 256, 4096, 16384, 65536, 262144};
  static const size_t asizes[] = {1, 100, 5000, 70000};
  for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++)
    for (size_t j = 0; j < sizeof(asizes) / sizeof(asizes[0]) && n + 2 < MAX_BLOCKS; j++)
      for (size_t k = 0; k < 2; k++)
        if (blk_alloc(&b[n], asizes[j], aligns[i], seed++)) n++;
  printf("pagesize: %zu live blocks of %zu sizes\n", n, ns);
  CHECK_EQ(blk_verify(b, n), 0);

  /* free every other block (in address order: both neighbours of each freed one stay), then
   * allocate as many again of mixed sizes: reused slots and slabs must not overlap either */
  rng_t r;
  rng_seed(&r, 13);
  for (size_t i = 0; i < n; i += 2) free(b[i].p);
  size_t m = 0;
  for (size_t i = 1; i < n; i += 2) b[m++] = b[i];
  size_t refill = n - m;
  for (size_t i = 0; i < refill && m < MAX_BLOCKS; i++) {
    size_t s = rng_below(&r, 4) == 0 ? rng_below(&r, 64 * 1024) : rng_below(&r, 2048);
    if (blk_alloc(&b[m], s, 0, seed++)) m++;
  }
  CHECK_EQ(blk_verify(b, m), 0);
  for (size_t i = 0; i < m; i++) free(b[i].p);
  free(b);
}

/* ---- refusal of unsupported page sizes ------------------------------------------------- */

/* Runs this program ("child") with AMALLOC_TEST_PAGE_SIZE=ps; checks the refusal. */
static void refuse_one(const char *ps) {
  int fds[2];
  if (!CHECK(pipe(fds) == 0)) return;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    setenv("AMALLOC_TEST_PAGE_SIZE", ps, 1);
    execl("/proc/self/exe", "pagesize", "child", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char err[4096];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof(err) - 1 && (r = read(fds[0], err + len, sizeof(err) - 1 - len)) > 0) len += (size_t)r;
  err[len] = 0;
  close(fds[0]);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) lines += err[i] == '\n';
  bool one_line = lines == 1 && len > 0 && err[len - 1] == '\n';
  bool prefix = strncmp(err, "amalloc: error: ", 16) == 0;
  bool names_it = strstr(err, "page size") != NULL;
  if (!CHECK(aborted && one_line && prefix && names_it))
    fprintf(stderr, "pagesize: page size %s: status 0x%x, stderr: \"%s\"\n", ps, status, err);
  else
    printf("pagesize: page size %s refused: %s", ps, err);
}

static void test_refuse(void) {
  refuse_one("131072");
  refuse_one("2048");
  refuse_one("12288");
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  if (!strcmp(what, "child")) {
    /* reached only when amalloc accepted the page size */
    void *p = malloc(100);
    printf("SURVIVED %p\n", p);
    free(p);
    return 0;
  }
  test_init("pagesize");
  bool all = !strcmp(what, "all");
  if (!all && strcmp(what, "layout") && strcmp(what, "refuse")) {
    fprintf(stderr, "usage: %s [layout|refuse|all]\n", argv[0]);
    return 2;
  }
  CHECK_AMALLOC_ACTIVE();
  test_sources();
  if (all || !strcmp(what, "layout")) test_layout();
  if (all || !strcmp(what, "refuse")) test_refuse();
  return test_summary();
}
