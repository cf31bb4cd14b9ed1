/* free_aligned_sized_too_big: free_aligned_sized(p, 64, 2000) of aligned_alloc(64, 200). */
#include "misuse.h"

int main(void) {
  void (*fas)(void *, size_t, size_t) =
      (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  if (fas == NULL) not_available("free_aligned_sized");
  keep(aligned_alloc(64, 200));
  char *p = aligned_alloc(64, 200);
  memset(p, 1, 200);
  aim(p);
  fas(opaque(p), 64, 2000);          /* the misuse */
  survived();
}
