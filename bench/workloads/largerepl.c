/* largerepl.c -- random replacement of large blocks: 20 slots; each step picks a slot and puts a
 * new block of 5-25 MiB in it (1,000 steps at full scale; Debian's mimalloc 2.0 takes about
 * 11 s for them). As with `slot = std::make_unique<char[]>(n)`, the new block is allocated and
 * value-initialised (zeroed with memset after malloc) before the old one is freed, so up to 21
 * blocks are live. A few bytes of each block are written and read back. What this measures is
 * how cheaply the allocator hands out large blocks again: a fresh mapping for each is faulted in
 * page by page by the memset. The shape of mimalloc-bench's malloc-large.   largerepl [scale]
 */
#include "common.h"

#define SLOTS 20
#define MIN_SIZE (5u << 20)
#define MAX_SIZE (25u << 20)

// memset through a volatile pointer: the compiler may not turn malloc + memset into calloc (an
// allocator's calloc may skip zeroing fresh pages; operator new + value-initialisation cannot)
static void *(*volatile zero_fill)(void *, int, size_t) = memset;

int main(int argc, char **argv) {
  rss_start();
  long steps = scaled(1000, scale_arg(argc, argv));
  unsigned char *slot[SLOTS] = {0};
  size_t len[SLOTS] = {0};
  uint64_t s = 23, h = 0;
  for (long i = 0; i < steps; i++) {
    int k = (int)(rng_next(&s) % SLOTS);
    size_t n = MIN_SIZE + rng_next(&s) % (MAX_SIZE - MIN_SIZE + 1);
    unsigned char *p = xmalloc(n);
    zero_fill(p, 0, n);
    p[n / 2] = (unsigned char)i;
    p[n - 1] = (unsigned char)(n >> 12);
    if (slot[k]) {
      // reads what this program wrote, and a byte it left zero
      h = mix(h, (uint64_t)slot[k][len[k] / 2] + slot[k][len[k] - 1] + slot[k][len[k] / 3 + 1] +
                 len[k]);
      free(slot[k]);
    }
    slot[k] = p;
    len[k] = n;
  }
  for (int k = 0; k < SLOTS; k++)
    if (slot[k]) {
      h = mix(h, (uint64_t)slot[k][len[k] / 2] + len[k]);
      free(slot[k]);
    }
  finish(h);
  return 0;
}
