/* secure_regress.c -- regression tests of issue 13's secure-build defects, run preloaded with
 * libamalloc-secure.so (test/regress/meson.build). Under another malloc the checks fail.
 *
 *   secure_regress handed-out   a block handed out holds neither its encoded free-list link nor
 *                               its free mark: no byte a program can read gives a key away (4)
 *   secure_regress order        every class, not only those up to 4 KiB, hands out fresh blocks
 *                               in a random order (9)
 *   secure_regress fork         forked children draw different random numbers (slab keys,
 *                               carving order) from each other (8)
 */
#include "../test.h"

#include <malloc.h>
#include <sys/wait.h>

/* ---- defect 4 ---------------------------------------------------------------------------- */

static void check_words(char **p, int n, size_t size, const char *when) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    uintptr_t w0, w1;
    memcpy(&w0, p[i], 8);
    memcpy(&w1, p[i] + 8, 8);
    /* (requests up to 8 bytes have their canary in the second word) */
    if (w0 != 0 || (size > 8 && w1 != 0)) bad++;
  }
  if (!CHECK(bad == 0)) fprintf(stderr, "handed-out: size %zu (%s): %d of %d blocks hold a link or a mark\n", size, when, bad, n);
}

static void test_handed_out(void) {
  static const size_t sizes[] = {1, 8, 16, 24, 40, 100, 1000, 2000, 5000, 20000, 100000};
  enum { N = 200 };
  static char *p[N];
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    for (int i = 0; i < N; i++) p[i] = malloc(sizes[s]);
    check_words(p, N, sizes[s], "fresh blocks");
    for (int i = 0; i < N; i++) free(p[i]);
    /* freed blocks went through the quarantine; 64 more frees push the last of them out */
    char *q[64];
    for (int i = 0; i < 64; i++) q[i] = malloc(7000);
    for (int i = 0; i < 64; i++) free(q[i]);
    for (int i = 0; i < N; i++) p[i] = malloc(sizes[s]);
    check_words(p, N, sizes[s], "reused blocks");
    for (int i = 0; i < N; i++) free(p[i]);
  }
}

/* ---- defect 9 ---------------------------------------------------------------------------- */

/* For each class: 40 consecutive mallocs of a fresh class; how many returned the block right
 * after the one before. In address order that is 39 (or about that many); at random, few. */
static void test_order(void) {
  size_t classes = 0, bad = 0;
  for (size_t size = 16; size <= 256 * 1024 - 8; size = size < 128 ? size + 16 : size + size / 8) {
    enum { N = 40 };
    char *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(size);
    size_t bsize = malloc_usable_size(p[0]) + 8;
    int next = 0;
    for (int i = 1; i < N; i++) next += p[i] == p[i - 1] + bsize;
    classes++;
    /* with 16 blocks shuffled at a time, about 1 in 16 follows its predecessor; a slab of 3 or
     * 4 blocks (the largest classes) shuffles only those, about 1 in 4 */
    if (next > N / 2) {
      bad++;
      fprintf(stderr, "order: size %zu (block %zu): %d of %d consecutive mallocs returned the next block\n",
              size, bsize, next, N - 1);
    }
    for (int i = 0; i < N; i++) free(p[i]);
  }
  printf("order: %zu classes, %zu handed out fresh blocks in address order\n", classes, bad);
  CHECK(classes > 60);
  CHECK_EQ(bad, 0);
}

/* ---- defect 8 ---------------------------------------------------------------------------- */

/* Three children each take 64 blocks of a class nobody used before the fork (a new slab, same
 * address in each child) and report the order of the blocks: drawn from the same random state,
 * the orders are the same. */
static void test_fork(void) {
  enum { KIDS = 3, N = 64 };
  uint16_t order[KIDS][N];
  for (int k = 0; k < KIDS; k++) {
    int fds[2];
    if (pipe(fds) != 0) {
      CHECK(!"pipe");
      return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      char *p[N];
      uint16_t o[N];
      for (int i = 0; i < N; i++) p[i] = malloc(600);
      size_t bsize = malloc_usable_size(p[0]) + 8;
      char *lo = p[0];
      for (int i = 0; i < N; i++) lo = p[i] < lo ? p[i] : lo;
      for (int i = 0; i < N; i++) o[i] = (uint16_t)((size_t)(p[i] - lo) / bsize);
      ssize_t w = write(fds[1], o, sizeof o);
      _exit(w == (ssize_t)sizeof o ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof order[k] && (r = read(fds[0], (char *)order[k] + got, sizeof order[k] - got)) > 0)
      got += (size_t)r;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == sizeof order[k]);
  }
  int same = 0;
  for (int a = 0; a < KIDS; a++)
    for (int b = a + 1; b < KIDS; b++) same += memcmp(order[a], order[b], sizeof order[a]) == 0;
  printf("fork: %d of 3 pairs of children handed out blocks in the same order\n", same);
  CHECK_EQ(same, 0);
}

int main(int argc, char **argv) {
  test_init("secure_regress");
  CHECK_AMALLOC_ACTIVE();
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "handed-out") == 0) test_handed_out();
  if (all || strcmp(what, "order") == 0) test_order();
  if (all || strcmp(what, "fork") == 0) test_fork();
  return test_summary();
}
