/* usable_size_freed_large: malloc_usable_size of a freed 1-MiB block. */
#include "misuse.h"

int main(void) {
  char *p = malloc(1 << 20);
  memset(p, 1, 1 << 20);
  free(p);
  aim(p);
  size_t n = malloc_usable_size(opaque(p)); /* the misuse */
  say("detail: malloc_usable_size returned %zu\n", n);
  survived();
}
