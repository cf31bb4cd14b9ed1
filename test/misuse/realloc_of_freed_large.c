/* realloc_of_freed_large: realloc of a freed 1-MiB block. */
#include "misuse.h"

int main(void) {
  char *p = malloc(1 << 20);
  memset(p, 1, 1 << 20);
  free(p);
  aim(p);
  char *q = realloc(opaque(p), 2 << 20); /* the misuse */
  say("detail: realloc returned %s\n", q == NULL ? "NULL" : q == p ? "the same pointer" : "a new block");
  survived();
}
