/* free_interior_large: free(p + 4096) of a 1-MiB block. */
#include "misuse.h"

int main(void) {
  char *p = malloc(1 << 20);
  memset(p, 1, 1 << 20);
  aim(p + 4096);
  free(opaque(p + 4096));            /* the misuse */
  survived();
}
