/* zero_size_write: malloc(0), then 32 bytes written into it; then it is freed and the heap is
 * used a little. */
#include "misuse.h"

int main(void) {
  char *p = malloc(0);
  char *q = malloc(0);
  aim(p);
  memset(opaque(p), 'Z', 32);        /* the misuse */
  free(p);
  free(q);
  for (int i = 0; i < 4; i++) keep(malloc(8));
  survived();
}
