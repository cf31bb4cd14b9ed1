/* double_free_aligned: a posix_memalign'ed block (64-B alignment, 200 B) freed twice. */
#include "misuse.h"

int main(void) {
  void *n = NULL, *p = NULL;
  if (posix_memalign(&n, 64, 200) != 0) return 2;
  keep(n);
  if (posix_memalign(&p, 64, 200) != 0) return 2;
  memset(p, 1, 200);
  free(p);
  aim(p);
  free(opaque(p));                   /* the misuse */
  report_reuse(200);
  survived();
}
