/* free_misaligned: free(p + 1) of a 64-B block. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  aim(p + 1);
  free(opaque(p + 1));               /* the misuse */
  survived();
}
