/* overflow_then_realloc: 8 bytes written past the end of a 24-B block, which is then grown
 * with realloc (which must look at the canary before it copies and frees the block). */
#include "misuse.h"

int main(void) {
  keep(malloc(24));
  char *p = malloc(24);
  memset(p, 'a', 24);
  aim(p);
  memcpy((char *)opaque(p) + 24, "OVERFLOW", 8); /* the misuse */
  char *q = realloc(p, 200);
  keep(q);
  survived();
}
