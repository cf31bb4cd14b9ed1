/* free_foreign_mmap: free of a pointer at the start of a page the program mapped itself
 * (the page before it is mapped too and reads as zeros). */
#include "misuse.h"

int main(void) {
  keep(malloc(32));
  size_t len = 64 * 1024;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 2;
  aim(m + 4096);
  free(opaque(m + 4096));            /* the misuse */
  survived();
}
