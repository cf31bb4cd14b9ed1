/* free_list_bit_flip: a freed 2,000-byte block leaves the quarantine and sits on its slab's free
 * list; one bit of its free-list link is flipped (a use-after-free write); then malloc of that
 * size. (A medium variant: free_list_bit_flip_medium.) */
#include "misuse.h"

#ifndef SIZE
#define SIZE 2000
#endif

int main(void) {
  void *warm[8];
  for (int i = 0; i < 8; i++) warm[i] = malloc(SIZE);   /* the slab is in use */
  char *p = malloc(SIZE);
  free(p);
  /* 64 more frees push p out of a quarantine of up to 64 blocks */
  void *q[64];
  for (int i = 0; i < 64; i++) q[i] = malloc(100);
  for (int i = 0; i < 64; i++) free(q[i]);
  aim(p);                            /* (malloc reports the block whose link is bad) */
  uintptr_t *link = (uintptr_t *)opaque(p);
  *link ^= (uintptr_t)1 << 5;        /* the misuse (32 bytes off: not on any block grid) */
  void *r[100];
  for (int i = 0; i < 100; i++) {
    r[i] = malloc(SIZE);
    if (r[i] != NULL) memset(r[i], 0x55, SIZE);
  }
  say("detail: 100 mallocs of %d after the flip completed\n", SIZE);
  for (int i = 0; i < 8; i++) keep(warm[i]);
  survived();
}
