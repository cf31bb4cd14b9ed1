/* free_sized_too_big: free_sized(p, 200) of a 100-B block. */
#include "misuse.h"

int main(void) {
  sized_free_fn free_sized = find_free_sized();
  keep(malloc(100));
  char *p = malloc(100);
  memset(p, 1, 100);
  aim(p);
  free_sized(opaque(p), 200);        /* the misuse */
  survived();
}
