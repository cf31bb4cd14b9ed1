/* waves.c -- a heap that grows, shrinks and grows again: what the allocator gives back, and
 * when. Three waves; in each:
 *   1. grow: allocate 3,000,000 blocks of 16-512 B (about 800 MiB at full scale), touching them;
 *   2. shrink: free 95% of them: runs of 5,000 consecutive blocks die together, as when a phase
 *      of a program ends, and one run in 20 survives;
 *   3. idle for 600 ms with light traffic (a few hundred small allocations every 10 ms);
 *   4. free the rest.
 * Run with AMB_RSS_LOG=file to record RSS every AMB_RSS_MS ms: compare.sh plots RSS against time
 * for every allocator (waves-rss.png). The peak RSS alone hides the difference that matters
 * here: how far RSS falls during the idle phases.
 *   waves [scale]
 */
#include "common.h"

static uint64_t s = 11, h;

static void light_traffic(long ms) {
  struct timespec d = {0, 10 * 1000000};
  for (long t = 0; t < ms; t += 10) {
    for (int i = 0; i < 200; i++) {
      unsigned char *volatile p = xmalloc(16 + (size_t)(i % 13) * 24);
      p[0] = (unsigned char)i;
      h = mix(h, p[0]);
      free(p);
    }
    nanosleep(&d, NULL);
  }
}

int main(int argc, char **argv) {
  rss_start();
  double sc = scale_arg(argc, argv);
  long n = scaled(3000000, sc);
  unsigned char **v = xmalloc((size_t)n * sizeof *v);
  for (int wave = 0; wave < 3; wave++) {
    for (long i = 0; i < n; i++) {
      size_t sz = 16 + rng_next(&s) % 497;
      v[i] = xmalloc(sz);
      memset(v[i], (int)(sz & 0xff), sz);
    }
    for (long i = 0; i < n; i++)
      if ((i / 5000) % 20 != 0) {
        h = mix(h, v[i][0]);
        free(v[i]);
        v[i] = NULL;
      }
    light_traffic(600);
    for (long i = 0; i < n; i++)
      if (v[i] != NULL) {
        h = mix(h, v[i][0]);
        free(v[i]);
        v[i] = NULL;
      }
  }
  light_traffic(300);
  free(v);
  finish(h);
  return 0;
}
