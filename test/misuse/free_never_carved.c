/* free_never_carved: free of an address on a slab's block grid that was never handed out (the
 * slab had not carved that far). */
#include "misuse.h"

int main(void) {
  char *p = malloc(3000);
  keep(p);
  /* a late block of p's 64 KiB slot (the last that ends a page before the slot's end, where a
   * secure build keeps a guard page): on the grid of 3,072-byte blocks, far past what one
   * malloc carves */
  uintptr_t slot_end = ((uintptr_t)p | 0xFFFF) + 1;
  char *q = p + ((slot_end - 4096 - (uintptr_t)p) / 3072 - 1) * 3072;
  say("detail: freeing %p, %zu blocks after %p\n", (void *)q, (size_t)(q - p) / 3072, (void *)p);
  free(opaque(q));                   /* the misuse */
  report_reuse(3000);
  survived();
}
