/* bigblocks.c -- repeated malloc/free of blocks of several MiB (1-8 MiB), up to 4 live at a
 * time, each written every 4 KiB (so the cost of getting and returning pages shows).
 *   bigblocks [scale]
 */
#include "common.h"

#define LIVE 4

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(6000, scale_arg(argc, argv));
  uint64_t s = 3, h = 0;
  unsigned char *p[LIVE] = {0};
  size_t len[LIVE] = {0};
  for (long i = 0; i < steps; i++) {
    int k = (int)(i % LIVE);
    if (p[k]) {
      h = mix(h, p[k][len[k] - 1] + len[k]);
      free(p[k]);
    }
    len[k] = (1u << 20) + rng_next(&s) % (7u << 20);
    p[k] = xmalloc(len[k]);
    for (size_t o = 0; o < len[k]; o += 4096) p[k][o] = (unsigned char)o;
    p[k][len[k] - 1] = (unsigned char)i;
  }
  for (int k = 0; k < LIVE; k++) free(p[k]);
  finish(h);
  return 0;
}
