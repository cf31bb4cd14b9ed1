/* batch.c -- allocate a million blocks (16-128 bytes), then free them all; several rounds,
 * alternately freeing in allocation order and in reverse.   batch [scale]
 */
#include "common.h"

#define N 1000000

int main(int argc, char **argv) {
  rss_start();
  long rounds = scaled(12, scale_arg(argc, argv));
  uint64_t s = 99, h = 0;
  unsigned char **p = xmalloc(N * sizeof *p);
  for (long r = 0; r < rounds; r++) {
    for (long i = 0; i < N; i++) {
      size_t n = 16 + rng_next(&s) % 113;
      p[i] = xmalloc(n);
      p[i][0] = (unsigned char)n;
      p[i][n - 1] = (unsigned char)i;
    }
    if (r % 2 == 0)
      for (long i = 0; i < N; i++) { h += p[i][0]; free(p[i]); }
    else
      for (long i = N - 1; i >= 0; i--) { h += p[i][0]; free(p[i]); }
  }
  free(p);
  finish(h);
  return 0;
}
