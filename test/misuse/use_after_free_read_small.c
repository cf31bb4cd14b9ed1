/* use_after_free_read_small: read a freed 64-B block, then malloc again and compare. */
#include "misuse.h"

int main(void) {
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 'S', 64);
  free(p);
  char copy[64];
  aim(p);
  memcpy(copy, opaque(p), 64);       /* the misuse */
  int same = 0;
  for (int i = 0; i < 64; i++) same += copy[i] == 'S';
  char *q = malloc(64);
  say("detail: %d of 64 bytes still held the old contents; the next malloc returned %s\n", same,
      q == p ? "the same block" : "another block");
  keep(q);
  survived();
}
