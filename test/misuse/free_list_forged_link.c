/* free_list_forged_link: an attack on an encoded free list. The "key" is guessed from fresh
 * blocks (a block's first word xor the address of the next block handed out: the slab key where
 * a handed-out block still holds its encoded link); then one read after free (the mark, copied
 * into the live victim block, as a mark shared by all blocks would let it pass) and one write
 * after free (a forged link to the victim), then malloc until the forged block comes back. An
 * allocator that hands the live block out again has lost. */
#include "misuse.h"

int main(void) {
  enum { N = 64 };
  uintptr_t *b[N];
  for (int i = 0; i < N; i++) b[i] = malloc(16);
  uintptr_t key = b[0][0] ^ (uintptr_t)b[1];
  uintptr_t *victim = b[N - 1];          /* live: must never be handed out again */
  uintptr_t *x = malloc(16);
  free(x);
  void *q[64];                           /* push x out of a quarantine of up to 64 blocks */
  for (int i = 0; i < 64; i++) q[i] = malloc(100);
  for (int i = 0; i < 64; i++) free(q[i]);
  uintptr_t *xr = opaque(x);
  say("detail: guessed key %#lx, mark read after free %#lx\n", (unsigned long)key, (unsigned long)xr[1]);
  victim[1] = xr[1];
  aim(x);                                /* (malloc reports the block whose link is forged) */
  xr[0] = (uintptr_t)victim ^ key;       /* the misuse: a forged link */
  int twice = 0;
  for (int i = 0; i < 300; i++) {
    uintptr_t *r = malloc(16);
    if (r == victim) twice++;
  }
  say("detail: malloc returned the live block %d times\n", twice);
  for (int i = 0; i < N; i++) keep(b[i]);
  survived();
}
