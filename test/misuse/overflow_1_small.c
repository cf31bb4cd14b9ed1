/* overflow_1_small: a 1-byte overflow: p[24] = 0 (a string terminator one past the end) of a
 * 24-B block, then both it and the block after it are freed. */
#include "misuse.h"

int main(void) {
  char *p = malloc(24);
  char *q = malloc(24);
  memset(p, 'a', 24);
  memset(q, 'b', 24);
  aim(p);
  ((char *)opaque(p))[24] = 0;       /* the misuse */
  say("detail: q %s\n", q == p + 32 ? "is right after p" : "is elsewhere");
  free(p);
  free(q);
  keep(malloc(24));
  keep(malloc(24));
  survived();
}
