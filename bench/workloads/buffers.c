/* buffers.c -- I/O-style buffers of 256 KiB - 4 MiB allocated, filled and freed in a loop, as
 * python3 does when it reads a file or builds a bytes object (half of the buffers are about
 * 1.7 MiB, the size python3 was seen mapping again and again; the rest 256 KiB - 4 MiB). A
 * third of the buffers are filled completely, the others only in their first quarter (a buffer
 * sized for the worst case). Most are freed at once; one in four stays live in a ring of 2 slots
 * until a later one takes its place, so 1-3 buffers are live at a time. Between buffers a few
 * small objects come and go, as they would in the program around them.   buffers [scale]
 */
#include "common.h"

#define RING 2
#define KiB 1024u
#define MiB (1024u * 1024u)

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(30000, scale_arg(argc, argv));
  unsigned char *ring[RING] = {0};
  size_t ring_len[RING] = {0};
  uint64_t s = 29, h = 0;
  for (long i = 0; i < steps; i++) {
    size_t n = rng_next(&s) % 2 ? 1700 * KiB + rng_next(&s) % (64 * KiB)
                                : 256 * KiB + rng_next(&s) % (4 * MiB - 256 * KiB + 1);
    unsigned char *p = xmalloc(n);
    size_t fill = rng_next(&s) % 3 == 0 ? n : n / 4;
    memset(p, (int)(i & 0xff), fill);
    p[n - 1] = (unsigned char)(n >> 10);
    // the small objects made from the buffer's contents
    for (int k = 0; k < 8; k++) {
      unsigned char *q = xmalloc(32 + (size_t)k * 40);
      q[0] = p[(size_t)k * (fill / 8)];
      h = mix(h, q[0]);
      free(q);
    }
    h = mix(h, (uint64_t)p[fill - 1] + p[n - 1] + n);
    if (rng_next(&s) % 4 == 0) {
      int k = (int)(i % RING);
      if (ring[k]) {
        h = mix(h, (uint64_t)ring[k][0] + ring[k][ring_len[k] - 1]);
        free(ring[k]);
      }
      ring[k] = p;
      ring_len[k] = n;
    } else {
      free(p);
    }
  }
  for (int k = 0; k < RING; k++)
    if (ring[k]) {
      h = mix(h, ring[k][0]);
      free(ring[k]);
    }
  finish(h);
  return 0;
}
