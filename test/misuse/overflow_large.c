/* overflow_large: 64 bytes written past the usable size of a 100-KiB block (into whatever
 * follows it: the next block of the slab / the next chunk), then both blocks are freed. */
#include "misuse.h"

int main(void) {
  size_t n = 100 * 1024;
  /* p: the lowest of three blocks, so that a block follows it in its slab (an allocator that
   * hands out blocks in a random order may otherwise put p before a guard page) */
  char *a = malloc(n), *b = malloc(n), *c = malloc(n);
  char *p = a < b ? (a < c ? a : c) : (b < c ? b : c);
  char *q = p == a ? b : a;
  keep(p == c || q == c ? b : c);
  memset(p, 'a', n);
  memset(q, 'b', n);
  size_t u = malloc_usable_size(p);
  aim(p);
  memset((char *)opaque(p) + u, 'X', 64); /* the misuse */
  say("detail: usable size %zu; q %s\n", u, q[0] == 'X' ? "was overwritten" : "is intact at its start");
  free(p);
  free(q);
  keep(malloc(n));
  keep(malloc(n));
  survived();
}
