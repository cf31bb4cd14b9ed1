/* free_stack: free of a local array (the 64 bytes before it are zeros). */
#include "misuse.h"

int main(void) {
  keep(malloc(32));                  /* the allocator is initialised */
  struct {
    _Alignas(16) char before[64];    /* zeros: what a header read before buf finds */
    char buf[256];
  } local;
  memset(&local, 0, sizeof local);
  char *buf = local.buf;
  aim(buf);
  free(opaque(buf));                 /* the misuse */
  survived();
}
