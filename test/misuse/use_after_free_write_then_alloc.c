/* use_after_free_write_then_alloc: a block is freed, written to, and the program then only
 * allocates (never frees again). */
#include "misuse.h"

int main(void) {
  char *p = malloc(100);
  memset(p, 1, 100);
  free(p);
  aim(p);
  ((char *volatile)opaque(p))[40] = 'x';    /* the misuse */
  for (int i = 0; i < 1000; i++) opaque(malloc(32));
  say("detail: 1000 mallocs after the write completed\n");
  survived();
}
