/* overflow_8_small: 8 bytes written past the end (p[24..31]) of a 24-B block, then it and the
 * block after it are freed. */
#include "misuse.h"

int main(void) {
  char *p = malloc(24);
  char *q = malloc(24);
  memset(p, 'a', 24);
  memset(q, 'b', 24);
  aim(p);
  memcpy((char *)opaque(p) + 24, "OVERFLOW", 8); /* the misuse */
  free(p);
  free(q);
  keep(malloc(24));
  keep(malloc(24));
  survived();
}
