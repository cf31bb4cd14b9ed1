/* free_interior_medium: free(p + 4096) of a 20-KiB block. */
#include "misuse.h"

int main(void) {
  keep(malloc(20 * 1024));
  char *p = malloc(20 * 1024);
  memset(p, 1, 20 * 1024);
  aim(p + 4096);
  free(opaque(p + 4096));            /* the misuse */
  survived();
}
