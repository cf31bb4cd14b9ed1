/* free_global: free of a static array (the 64 bytes before it are zeros). */
#include "misuse.h"

static struct {
  _Alignas(64) char before[64];      /* zeros: what a header read before the array finds */
  char buf[4096];
} global;

int main(void) {
  keep(malloc(32));
  aim(global.buf);
  free(opaque(global.buf));          /* the misuse */
  survived();
}
