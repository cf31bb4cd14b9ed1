/* use_after_free_write_small: write bytes 8..63 of a freed 64-B block, then malloc twice the
 * same size, look at them and free them. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  memset((char *)opaque(p) + 8, 'W', 56); /* the misuse */
  char *a = malloc(64);
  char *b = malloc(64);
  say("detail: the next mallocs returned %s; the write is %s\n",
      a == p || b == p ? "the freed block" : "other blocks",
      (a == p && a[63] == 'W') || (b == p && b[63] == 'W') ? "visible in it" : "not visible");
  free(a);
  free(b);
  survived();
}
