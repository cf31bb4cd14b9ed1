/* use_after_free_write_large: write into a freed 1-MiB block (unmapped by most allocators:
 * SIGSEGV). */
#include "misuse.h"

int main(void) {
  char *p = malloc(1 << 20);
  memset(p, 1, 1 << 20);
  free(p);
  aim(p);
  memset((char *)opaque(p) + 4096, 'W', 64); /* the misuse */
  survived();
}
