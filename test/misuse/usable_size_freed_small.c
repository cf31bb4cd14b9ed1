/* usable_size_freed_small: malloc_usable_size of a freed 64-B block (its slab still holds a
 * live block). */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  size_t n = malloc_usable_size(opaque(p)); /* the misuse */
  say("detail: malloc_usable_size returned %zu\n", n);
  survived();
}
