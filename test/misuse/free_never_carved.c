/* free_never_carved: free of an address on a slab's block grid that was never handed out (the
 * slab had not carved that far). */
#include "misuse.h"

int main(void) {
  char *p = malloc(3000);
  keep(p);
  /* a late block of p's slab slot (64 KiB, or 4 pages with larger pages; the last block that
   * ends a page before the slot's end, where a secure build keeps a guard page): on the grid
   * of 3,072-byte blocks, far past what one malloc carves */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t slot = 4 * page > 65536 ? 4 * page : 65536;
  uintptr_t slot_end = ((uintptr_t)p & ~(uintptr_t)(slot - 1)) + slot;
  char *q = p + ((slot_end - page - (uintptr_t)p) / 3072 - 1) * 3072;
  if (q == p) q = p - 3072;          /* (p is that block: the one before it, never handed out) */
  say("detail: freeing %p, %zu blocks after %p\n", (void *)q, (size_t)(q - p) / 3072, (void *)p);
  aim(q);
  free(opaque(q));                   /* the misuse */
  report_reuse(3000);
  survived();
}
