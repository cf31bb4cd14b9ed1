/* capture.c -- the cost of one heap-profile sample, for bench/prof-stacks.sh.
 *
 *   capture DEPTH N     N malloc(64)+free pairs made DEPTH calls deep; prints ns per pair
 *
 * Run with AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1 every malloc is sampled: the difference to a
 * run without the profiler is the cost of a sample (stack, lock, record, and the free's way back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

__attribute__((noinline)) double work(int depth, long n) {
  if (depth > 0) {
    double r = work(depth - 1, n);
    __asm__ volatile("" ::: "memory");   /* (no tail call: each level keeps its frame) */
    return r;
  }
  double t0 = now();
  for (long i = 0; i < n; i++) {
    void *p = malloc(64);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
  return (now() - t0) / (double)n * 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: capture DEPTH N\n");
    return 2;
  }
  printf("%.1f\n", work(atoi(argv[1]), atol(argv[2])));
  return 0;
}
