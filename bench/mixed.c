/* mixed.c -- a simple allocation workload for the demonstration (bench/demo.sh).
 *
 *   mixed [threads] [millions of operations]
 *
 * Each thread keeps a live set of 50,000 slots and replaces a random slot per step with a new
 * block of a random size (mostly 8..512 bytes, sometimes up to 64 KiB, rarely 1 MiB), writing
 * its first and last bytes. With 2+ threads, every 8th block is handed to the next thread's
 * inbox and freed there (cross-thread frees). Prints a checksum that does not depend on the
 * allocator, so runs can be compared.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 50000
#define INBOX 4096

typedef struct {
  pthread_mutex_t lock;
  void *items[INBOX];
  int count;
} inbox_t;

static int nthreads = 1;
static long steps = 4000000;
static inbox_t *inboxes;

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick_size(uint64_t *s) {
  uint64_t r = next_rand(s) % 1000;
  if (r < 900) return 8 + next_rand(s) % 505;
  if (r < 998) return 512 + next_rand(s) % (64 * 1024);
  return 256 * 1024 + next_rand(s) % (1024 * 1024);
}

static void drain(inbox_t *box) {
  pthread_mutex_lock(&box->lock);
  for (int i = 0; i < box->count; i++) free(box->items[i]);
  box->count = 0;
  pthread_mutex_unlock(&box->lock);
}

static void *worker(void *arg) {
  long id = (long)arg;
  uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
  void **slot = calloc(SLOTS, sizeof(void *));
  uint64_t sum = 0;
  for (long i = 0; i < steps; i++) {
    size_t k = next_rand(&seed) % SLOTS;
    if (slot[k] != NULL) {
      unsigned char *old = slot[k];
      sum += old[0];
      if (nthreads > 1 && (i & 7) == 0) {
        inbox_t *box = &inboxes[(id + 1) % nthreads];
        pthread_mutex_lock(&box->lock);
        if (box->count < INBOX) {
          box->items[box->count++] = old;
          old = NULL;
        }
        pthread_mutex_unlock(&box->lock);
      }
      free(old);
    }
    size_t n = pick_size(&seed);
    unsigned char *p = malloc(n);
    if (p == NULL) abort();
    p[0] = (unsigned char)n;
    p[n - 1] = (unsigned char)i;
    slot[k] = p;
    if (nthreads > 1 && (i & 1023) == 0) drain(&inboxes[id]);
  }
  for (size_t k = 0; k < SLOTS; k++) free(slot[k]);
  free(slot);
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  if (argc > 1) nthreads = atoi(argv[1]);
  if (argc > 2) steps = (long)(atof(argv[2]) * 1e6);
  if (nthreads < 1) nthreads = 1;
  inboxes = calloc((size_t)nthreads, sizeof(inbox_t));
  for (int t = 0; t < nthreads; t++) pthread_mutex_init(&inboxes[t].lock, NULL);
  pthread_t th[64];
  uint64_t total = 0;
  for (long t = 0; t < nthreads && t < 64; t++) pthread_create(&th[t], NULL, worker, (void *)t);
  for (long t = 0; t < nthreads && t < 64; t++) {
    void *r;
    pthread_join(th[t], &r);
    total += (uint64_t)(uintptr_t)r;
  }
  for (int t = 0; t < nthreads; t++) drain(&inboxes[t]);
  free(inboxes);
  printf("checksum %llu\n", (unsigned long long)total);
  return 0;
}
