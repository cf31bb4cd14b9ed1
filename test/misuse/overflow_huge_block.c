#include "misuse.h"

/* overflow_huge_block: one byte written just past the usable size of a 2-MiB block (its own
 * mapping in most allocators), then the block is freed and the heap used. */
int main(void) {
  size_t n = 2 << 20;
  char *p = malloc(n);
  memset(p, 'a', n);
  size_t u = malloc_usable_size(p);
  aim(p);
  ((char *)opaque(p))[u] = 'X';         /* the misuse */
  say("detail: usable size %zu\n", u);
  free(p);
  keep(malloc(n));
  keep(malloc(100));
  survived();
}
