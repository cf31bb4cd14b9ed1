/* double_free_cross_thread: main allocates, thread A frees, main frees again after the join. */
#include "misuse.h"
#include <pthread.h>

static void *thread_a(void *p) {
  free(p);
  return NULL;
}

int main(void) {
  keep(malloc(80));
  char *p = malloc(80);
  memset(p, 1, 80);
  pthread_t t;
  if (pthread_create(&t, NULL, thread_a, p) != 0) return 2;
  pthread_join(t, NULL);
  free(opaque(p));                   /* the misuse */
  report_reuse(80);
  survived();
}
