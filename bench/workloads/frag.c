/* frag.c -- fragmentation: the live set changes shape phase by phase, so what matters is how much
 * memory the allocator holds over time, not only at the peak. Each cycle:
 *   1. allocate 600,000 small blocks (32-128 B);
 *   2. free 90% of them at random (the survivors are scattered over the small-block pages);
 *   3. allocate 1,500 medium blocks (16-64 KiB), then free them;
 *   4. allocate 200,000 blocks of 256-1024 B, then free all but 1 in 50;
 *   5. free everything of this cycle except 1% of the small blocks (kept for good), pause 20 ms.
 * Run with AMB_RSS_LOG=file to record RSS every AMB_RSS_MS ms (compare.sh plots it).
 *   frag [scale]
 */
#include "common.h"

#define SMALL 600000
#define MEDIUM 1500
#define MID 200000

static uint64_t s = 5, h;

static void release(unsigned char **p, long n) {
  for (long i = 0; i < n; i++)
    if (p[i]) {
      h = mix(h, p[i][0]);
      free(p[i]);
      p[i] = NULL;
    }
}

static unsigned char *get(size_t n) {
  unsigned char *p = xmalloc(n);
  memset(p, (int)(n & 0xff), n < 256 ? n : 256);
  p[n - 1] = 1;
  return p;
}

int main(int argc, char **argv) {
  rss_start();
  long cycles = scaled(8, scale_arg(argc, argv));
  unsigned char **small = xmalloc(SMALL * sizeof *small);
  unsigned char **medium = xmalloc(MEDIUM * sizeof *medium);
  unsigned char **mid = xmalloc(MID * sizeof *mid);
  unsigned char **kept = xmalloc((size_t)cycles * (SMALL / 100 + 1) * sizeof *kept);
  long nkept = 0;
  struct timespec pause = {0, 20 * 1000000};
  for (long c = 0; c < cycles; c++) {
    for (long i = 0; i < SMALL; i++) small[i] = get(32 + rng_next(&s) % 97);
    for (long i = 0; i < SMALL; i++)
      if (rng_next(&s) % 10 != 0) {
        h = mix(h, small[i][0]);
        free(small[i]);
        small[i] = NULL;
      }
    for (long i = 0; i < MEDIUM; i++) medium[i] = get(16384 + rng_next(&s) % 49153);
    release(medium, MEDIUM);
    for (long i = 0; i < MID; i++) mid[i] = get(256 + rng_next(&s) % 769);
    for (long i = 0; i < MID; i++)
      if (i % 50 != 0) {
        h = mix(h, mid[i][0]);
        free(mid[i]);
        mid[i] = NULL;
      }
    for (long i = 0; i < SMALL; i++)
      if (small[i] && i % 10 == 0 && nkept < cycles * (SMALL / 100)) {
        kept[nkept++] = small[i];
        small[i] = NULL;
      }
    release(small, SMALL);
    release(mid, MID);
    nanosleep(&pause, NULL);
  }
  release(kept, nkept);
  free(kept);
  free(mid);
  free(medium);
  free(small);
  nanosleep(&pause, NULL);
  finish(h);
  return 0;
}
