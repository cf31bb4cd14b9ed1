/* free_unmapped: free of an address in a range the program mapped and unmapped again. */
#include "misuse.h"

int main(void) {
  keep(malloc(32));
  size_t len = 64 * 1024;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 2;
  if (munmap(m, len) != 0) return 2;
  aim(m + 4096 + 64);
  free(opaque(m + 4096 + 64));       /* the misuse: nothing is mapped there */
  survived();
}
