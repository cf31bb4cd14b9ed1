/* double_free_small: a 64-B block freed twice while its slab holds another live block. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));                  /* a neighbour: the slab stays in use */
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  free(opaque(p));                   /* the misuse */
  report_reuse(64);
  survived();
}
