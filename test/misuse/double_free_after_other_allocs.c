/* double_free_after_other_allocs: free p, allocate blocks of other sizes (p's block stays
 * free), then free p again. */
#include "misuse.h"

int main(void) {
  keep(malloc(48));
  char *p = malloc(48);
  memset(p, 1, 48);
  free(p);
  static const size_t sizes[] = {16, 100, 200, 1000, 5000, 30000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *q = malloc(sizes[i]);
    memset(q, 2, sizes[i]);
    keep(q);
  }
  aim(p);
  free(opaque(p));                   /* the misuse */
  report_reuse(48);
  survived();
}
