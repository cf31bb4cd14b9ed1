/* realloc_invalid: realloc of a local array. */
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
  char *q = realloc(opaque(buf), 512); /* the misuse */
  say("detail: realloc returned %s\n", q == NULL ? "NULL" : q == buf ? "the same pointer" : "a new block");
  survived();
}
