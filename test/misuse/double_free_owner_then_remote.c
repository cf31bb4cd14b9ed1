/* double_free_owner_then_remote: main allocates and frees a block (a local free), then another
 * thread frees it again: the second free comes from a non-owner. */
#include "misuse.h"
#include <pthread.h>

static void *thread_b(void *p) {
  aim(p);
  free(opaque(p));                   /* the misuse */
  return NULL;
}

int main(void) {
  keep(malloc(80));
  char *p = malloc(80);
  memset(p, 1, 80);
  free(p);
  pthread_t t;
  if (pthread_create(&t, NULL, thread_b, p) != 0) return 2;
  pthread_join(t, NULL);
  report_reuse(80);
  survived();
}
