/* usable_size_invalid: malloc_usable_size of a local array. */
#include "misuse.h"

int main(void) {
  keep(malloc(32));
  struct {
    _Alignas(16) char before[64];    /* zeros: what a header read before buf finds */
    char buf[256];
  } local;
  memset(&local, 0, sizeof local);
  char *buf = local.buf;
  aim(buf);
  size_t n = malloc_usable_size(opaque(buf)); /* the misuse */
  say("detail: malloc_usable_size returned %zu\n", n);
  survived();
}
