/* free_sized_realloc.c -- free_sized(p, n) accepts every size n the program last passed to
 * malloc, calloc or realloc for p, and still rejects sizes that cannot have given the block
 * (issue 13, defect 6: malloc(262144), realloc(p, 262145), free_sized(p, 262145) was reported
 * as "size does not match the block": realloc had grown the block by an eighth).
 *
 * Not linked with amalloc: run under LD_PRELOAD (the default and the secure build, and with a
 * low AMALLOC_LARGE_THRESHOLD so that class blocks grow into large ones below 256 KiB). Each
 * free_sized runs in a forked child, so that the parent keeps its block and goes on along the
 * realloc chain, and a rejection (an abort) is seen as such. glibc 2.36 has no free_sized:
 * with AMALLOC_TEST_EXPECT_GLIBC=1 the test is skipped (77).
 */
#include "test.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>

static void (*t_free_sized)(void *, size_t);

/* free_sized(p, size) in a child: 1 accepted (the child exits 0), 0 rejected (SIGABRT),
 * -1 anything else. `quiet`: the child's stderr goes to /dev/null (an expected rejection). */
static int sized_free_in_child(void *p, size_t size, bool quiet) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (quiet) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, 2);
    }
    t_free_sized(p, size);
    _exit(0);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) return 0;
  return -1;
}

static unsigned long t_steps;

/* p holds a block whose last requested size is `size`: that size must be accepted, and sizes
 * that cannot have given the block (one byte more than usable, or far below it) rejected. */
static void check_block(void *p, size_t size, const char *what) {
  size_t usable = malloc_usable_size(p);
  if (!CHECK_EQ(sized_free_in_child(p, size, false), 1))
    fprintf(stderr, "  %s: free_sized(p, %zu) rejected (usable %zu)\n", what, size, usable);
  if (t_steps++ % 4 != 0) return;       /* the rejections on every 4th block (forks cost) */
  if (!CHECK_EQ(sized_free_in_child(p, usable + 1, true), 0))
    fprintf(stderr, "  %s: free_sized(p, %zu) accepted (usable %zu)\n", what, usable + 1, usable);
  if (usable >= 256 && !CHECK_EQ(sized_free_in_child(p, usable / 4, true), 0))
    fprintf(stderr, "  %s: free_sized(p, %zu) accepted (usable %zu)\n", what, usable / 4, usable);
}

#define MiB ((size_t)1 << 20)

int main(void) {
  test_init("free_sized_realloc");
  t_free_sized = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  if (expect_glibc() && t_free_sized == NULL) {
    test_note("glibc: no free_sized in this C library; skipped");
    return 77;
  }
  CHECK_AMALLOC_ACTIVE();
  if (!CHECK(t_free_sized != NULL)) return test_summary();

  /* the case */
  char *p = malloc(262144);
  p = realloc(p, 262145);
  CHECK(p != NULL);
  check_block(p, 262145, "262144 -> 262145");
  free(p);

  /* every class (and the large sizes after it): malloc the usable size, grow by one byte, the
   * block moves and realloc adds an eighth */
  for (size_t n = 1; n <= 3 * MiB;) {
    p = malloc(n);
    size_t u = malloc_usable_size(p);
    check_block(p, n, "malloc");
    p = realloc(p, u + 1);
    CHECK(p != NULL);
    check_block(p, u + 1, "usable + 1");
    free(p);
    n = u < 512 * 1024 ? u + 1 : u + u / 4;   /* (large blocks: a page apart; fewer of them) */
  }

  /* growth chains: by one byte past the usable size, by a sixteenth, by a half */
  p = malloc(1);
  for (size_t n = 1; n <= 6 * MiB; n = malloc_usable_size(p) + 1 + (n > 512 * 1024 ? n / 8 : 0)) {
    p = realloc(p, n);
    check_block(p, n, "chain +1");
  }
  free(p);
  p = malloc(1);
  for (size_t n = 1; n <= 6 * MiB; n += n / 16 + 1) {
    p = realloc(p, n);
    check_block(p, n, "chain +1/16");
  }
  free(p);
  p = malloc(3);
  for (size_t n = 3; n <= 6 * MiB; n += n / 2) {
    p = realloc(p, n);
    check_block(p, n, "chain +1/2");
  }
  /* shrink chains from there: by a sixteenth (in place, mostly), by two fifths (moves) */
  for (size_t n = 6 * MiB; n >= 1; n -= n / 16 + 1) {
    p = realloc(p, n);
    check_block(p, n, "chain -1/16");
  }
  free(p);
  p = malloc(6 * MiB);
  for (size_t n = 6 * MiB; n >= 1; n = n * 3 / 5) {
    p = realloc(p, n);
    check_block(p, n, "chain *3/5");
  }
  free(p);
  /* around the 256 KiB boundary, up and down */
  size_t around[] = {200000, 262144, 262145, 270000, 294912, 294913, 262144, 240000, 262145,
                     300000, 262000, 131073, 262145, 140000};
  p = NULL;
  for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
    p = realloc(p, around[i]);
    check_block(p, around[i], "around 256 KiB");
  }
  free(p);
  /* calloc */
  for (size_t n = 24; n <= 4 * MiB; n = n * 3 + 5) {
    p = calloc(1, n);
    check_block(p, n, "calloc");
    free(p);
  }
  printf("free_sized_realloc: %lu blocks checked\n", t_steps);
  return test_summary();
}
