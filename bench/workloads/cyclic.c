/* cyclic.c -- a heap filled and emptied again and again, with short pauses: eight cycles of
 *   1. allocate blocks of 16-1024 B until about 570 MB are live (about 1.1 million blocks at
 *      full scale), writing every byte of each;
 *   2. free all of them in random order;
 *   3. pause 100 ms (times the scale), then fill again.
 * The program wants its memory back 100 ms after it freed it: an allocator that returns freed
 * pages to the OS sooner than that faults every page in again on the next cycle (compare the
 * minor-faults column). The shape of the issue-14 measurement of a heap "filled and emptied
 * eight times over".   cyclic [scale]
 */
#include "common.h"

#define CYCLES 8
#define MIN_SIZE 16
#define MAX_SIZE 1024

int main(int argc, char **argv) {
  rss_start();
  double sc = scale_arg(argc, argv);
  long bytes = scaled(570e6, sc);
  long cap = bytes / MIN_SIZE + 1;
  unsigned char **v = xmalloc((size_t)cap * sizeof *v);
  long pause_ms = scaled(100, sc);
  struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000};
  uint64_t s = 17, h = 0;
  for (int c = 0; c < CYCLES; c++) {
    long n = 0;
    for (long live = 0; live < bytes && n < cap; n++) {
      size_t sz = MIN_SIZE + rng_next(&s) % (MAX_SIZE - MIN_SIZE + 1);
      v[n] = xmalloc(sz);
      memset(v[n], (int)((sz + (size_t)c) & 0xff), sz);
      live += (long)sz;
    }
    // Fisher-Yates: the blocks die in an order unrelated to the order they were allocated in
    for (long i = n - 1; i > 0; i--) {
      long j = (long)(rng_next(&s) % (uint64_t)(i + 1));
      unsigned char *t = v[i];
      v[i] = v[j];
      v[j] = t;
    }
    for (long i = 0; i < n; i++) {
      h = mix(h, v[i][0]);
      free(v[i]);
    }
    h = mix(h, (uint64_t)n);
    nanosleep(&pause, NULL);
  }
  free(v);
  finish(h);
  return 0;
}
