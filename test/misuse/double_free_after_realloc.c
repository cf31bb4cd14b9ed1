/* double_free_after_realloc: realloc moves a 64-B block to a 4-KiB one (freeing the old
 * block), then the stale old pointer is freed. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  char *q = realloc(p, 4096);
  if (q == NULL) return 2;
  keep(q);
  if (q == p) {
    say("detail: realloc did not move the block\n");
    survived();
  }
  aim(p);
  free(opaque(p));                   /* the misuse: p was freed by realloc */
  report_reuse(64);
  survived();
}
