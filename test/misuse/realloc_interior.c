/* realloc_interior: realloc(p + 16, 200) of a 64-B block. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  aim(p + 16);
  char *q = realloc(opaque(p + 16), 200); /* the misuse */
  say("detail: realloc returned %s\n", q == NULL ? "NULL" : q == p + 16 ? "the same pointer" : "a new block");
  survived();
}
