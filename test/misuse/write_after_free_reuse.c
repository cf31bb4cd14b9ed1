/* write_after_free_reuse: two blocks of 64 B are freed (x, then p: most allocators' free list
 * is now p -> x); then 8 bytes are written at p's offset 0, where most allocators keep the
 * free-list link: the address of a global buffer. Then malloc twice the same size: an
 * unprotected free list hands out the global buffer on the second call. */
#include "misuse.h"

static _Alignas(64) char target[256];

int main(void) {
  keep(malloc(64));
  char *x = malloc(64);
  char *p = malloc(64);
  memset(x, 1, 64);
  memset(p, 1, 64);
  free(x);
  free(p);
  void *link = target + 64;
  aim(p);
  memcpy(opaque(p), &link, sizeof link); /* the misuse */
  char *a = malloc(64);
  char *b = malloc(64);
  int hijacked = (a >= target && a < target + sizeof target) || (b >= target && b < target + sizeof target);
  say("detail: malloc %s\n", hijacked ? "returned the planted address (free list hijacked)" : "did not return the planted address");
  keep(a);
  keep(b);
  survived();
}
