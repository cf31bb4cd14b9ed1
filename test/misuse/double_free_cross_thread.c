/* double_free_cross_thread: main allocates (it owns the block's slab), thread A frees it (a
 * remote free), then thread B, another non-owner, frees it again. */
#include "misuse.h"
#include <pthread.h>

static void *thread_a(void *p) {
  free(p);
  return NULL;
}
static void *thread_b(void *p) {
  aim(p);
  free(opaque(p));                   /* the misuse: a second free, by a non-owner thread */
  return NULL;
}

int main(void) {
  keep(malloc(80));
  char *p = malloc(80);
  memset(p, 1, 80);
  pthread_t t;
  if (pthread_create(&t, NULL, thread_a, p) != 0) return 2;
  pthread_join(t, NULL);
  if (pthread_create(&t, NULL, thread_b, p) != 0) return 2;
  pthread_join(t, NULL);
  report_reuse(80);
  survived();
}
