/* use_after_free_write_delayed: write bytes 16..63 of a freed 64-B block, then free 100 other
 * blocks of its size (more than a quarantine of 64 holds) and malloc 200: the written block is
 * handed out again at some point. */
#include "misuse.h"

int main(void) {
  char *other[100];
  for (int i = 0; i < 100; i++) other[i] = malloc(64);
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  memset((char *)opaque(p) + 16, 'W', 48); /* the misuse */
  for (int i = 0; i < 100; i++) free(other[i]);
  int seen = 0;
  for (int i = 0; i < 200; i++) {
    char *q = malloc(64);
    if (q == p) seen = 1;
    keep(q);
  }
  say("detail: the written block was %s\n", seen ? "handed out again" : "not handed out again");
  survived();
}
