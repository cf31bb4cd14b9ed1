/* growheap.c -- a heap that grows slowly while freeing little: 3 million allocations (mostly
 * 16-256 B, some up to 4 KiB), each step frees a random live block with probability 1/10; all
 * is freed at the end.   growheap [scale]
 */
#include "common.h"

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(3e6, scale_arg(argc, argv));
  uint64_t s = 17, h = 0;
  unsigned char **live = xmalloc((size_t)steps * sizeof *live);
  long n = 0;
  for (long i = 0; i < steps; i++) {
    uint64_t r = rng_next(&s);
    size_t len = (r % 20 == 0) ? 256 + (r >> 8) % 3841 : 16 + (r >> 8) % 241;
    unsigned char *p = xmalloc(len);
    p[0] = (unsigned char)len;
    p[len - 1] = 4;
    live[n++] = p;
    if ((r >> 40) % 10 == 0) {
      long k = (long)((r >> 20) % (uint64_t)n);
      h = mix(h, live[k][0]);
      free(live[k]);
      live[k] = live[--n];
    }
  }
  for (long i = 0; i < n; i++) {
    h = mix(h, live[i][0]);
    free(live[i]);
  }
  free(live);
  finish(h);
  return 0;
}
