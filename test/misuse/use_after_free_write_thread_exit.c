/* use_after_free_write_thread_exit: a thread frees a 64-B block, writes into it, and exits
 * without any further allocator call (its quarantine is checked when it exits). */
#include "misuse.h"
#include <pthread.h>

static void *thread_a(void *arg) {
  (void)arg;
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  free(p);
  aim(p);
  memset((char *)opaque(p) + 16, 'W', 32); /* the misuse */
  return NULL;
}

int main(void) {
  keep(malloc(64));
  pthread_t t;
  if (pthread_create(&t, NULL, thread_a, NULL) != 0) return 2;
  pthread_join(t, NULL);
  say("detail: the thread exited\n");
  survived();
}
