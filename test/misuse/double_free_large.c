/* double_free_large: a 1-MiB block (a mapping of its own in most allocators) freed twice. */
#include "misuse.h"

int main(void) {
  char *p = malloc(1 << 20);
  memset(p, 1, 1 << 20);
  free(p);
  aim(p);
  free(opaque(p));                   /* the misuse */
  report_reuse(1 << 20);
  survived();
}
