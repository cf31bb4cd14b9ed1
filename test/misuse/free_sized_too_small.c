/* free_sized_too_small: free_sized(p, 10) of a 1000-B block. */
#include "misuse.h"

int main(void) {
  sized_free_fn free_sized = find_free_sized();
  keep(malloc(1000));
  char *p = malloc(1000);
  memset(p, 1, 1000);
  aim(p);
  free_sized(opaque(p), 10);         /* the misuse */
  survived();
}
