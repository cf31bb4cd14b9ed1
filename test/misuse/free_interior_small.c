/* free_interior_small: free(p + 16) of a 64-B block. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  aim(p + 16);
  free(opaque(p + 16));              /* the misuse */
  survived();
}
