#include "misuse.h"

/* underflow_large: 16 bytes written just before a 1-MiB block (where an allocator that puts
 * headers in front of its blocks keeps them), then the block is freed and the heap used. */
int main(void) {
  size_t n = 1 << 20;
  char *p = malloc(n);
  memset(p, 'a', n);
  aim(p);
  memset((char *)opaque(p) - 16, 'U', 16); /* the misuse */
  free(p);
  keep(malloc(n));
  keep(malloc(100));
  survived();
}
