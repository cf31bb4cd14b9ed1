/* realloc_freed: realloc of a freed 64-B block (its slab still holds a live block). */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  char *q = realloc(opaque(p), 128); /* the misuse */
  say("detail: realloc returned %s\n", q == NULL ? "NULL" : q == p ? "the same pointer" : "a new block");
  survived();
}
