/* overflow_large: 64 bytes written past the usable size of a 100-KiB block (into whatever
 * follows it: the next block of the slab / the next chunk), then both blocks are freed. */
#include "misuse.h"

int main(void) {
  size_t n = 100 * 1024;
  char *p = malloc(n);
  char *q = malloc(n);
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
