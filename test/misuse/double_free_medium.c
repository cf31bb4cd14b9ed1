/* double_free_medium: a 20-KiB block freed twice while its slab holds another live block. */
#include "misuse.h"

int main(void) {
  keep(malloc(20 * 1024));
  char *p = malloc(20 * 1024);
  memset(p, 1, 20 * 1024);
  free(p);
  aim(p);
  free(opaque(p));                   /* the misuse */
  report_reuse(20 * 1024);
  survived();
}
