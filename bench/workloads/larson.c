/* larson.c -- a server-like pattern in which threads free blocks that other threads allocated:
 * the shape of Larson and Krishnan's benchmark as mimalloc-bench runs it (`larson 5 8 1000 5000
 * 100 4141 T`).   larson [scale] [threads]       (default 2 threads)
 * There are T chains, one thread of each running at a time. Each chain owns an array of 5,000
 * slots holding blocks of 8-1000 B, all allocated first by the main thread. A thread of the
 * chain makes 500,000 steps, each freeing the block in a random slot and putting a new block of
 * random size there (writing its first two bytes); then it starts a new thread that takes over
 * the whole array, and exits. So every thread frees blocks that the thread before it allocated
 * and leaves its own blocks to the next one. Larson runs for a fixed time and counts the steps;
 * here the work is fixed (60 threads per chain at full scale), so the wall time measures speed.
 */
#include "common.h"

#define CHUNKS 5000
#define STEPS_PER_THREAD 500000
#define MIN_SIZE 8
#define MAX_SIZE 1000

typedef struct {
  unsigned char *block[CHUNKS];
  uint32_t size[CHUNKS];
  uint64_t rng, h;
  long generation;
} chain;

static long generations;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int chains_done;

static unsigned char *new_block(uint32_t n, uint64_t step) {
  unsigned char *p = xmalloc(n);
  p[0] = (unsigned char)n;
  p[1] = (unsigned char)step;
  return p;
}

static void *run(void *arg);

static void start(chain *c) {
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &a, run, c) != 0) {
    fprintf(stderr, "larson: pthread_create failed\n");
    abort();
  }
  pthread_attr_destroy(&a);
}

static void *run(void *arg) {
  chain *c = arg;
  uint64_t s = c->rng, h = c->h;
  for (uint64_t i = 0; i < STEPS_PER_THREAD; i++) {
    uint32_t k = (uint32_t)(rng_next(&s) % CHUNKS);
    h = mix(h, (uint64_t)c->block[k][0] + c->block[k][1] + c->size[k]);
    free(c->block[k]);
    uint32_t n = MIN_SIZE + (uint32_t)(rng_next(&s) % (MAX_SIZE - MIN_SIZE));
    c->block[k] = new_block(n, i);
    c->size[k] = n;
  }
  c->rng = s;
  c->h = h;
  if (++c->generation < generations) {
    start(c);  // the next thread of the chain takes over the array
  } else {
    pthread_mutex_lock(&done_lock);
    chains_done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rss_start();
  generations = scaled(60, scale_arg(argc, argv));
  int nchains = argc > 2 ? atoi(argv[2]) : 2;
  if (nchains < 1) nchains = 1;
  chain *c = xmalloc((size_t)nchains * sizeof *c);
  for (int t = 0; t < nchains; t++) {
    c[t].rng = 4141 + (uint64_t)t;
    c[t].h = 0;
    c[t].generation = 0;
    for (int k = 0; k < CHUNKS; k++) {
      uint32_t n = MIN_SIZE + (uint32_t)(rng_next(&c[t].rng) % (MAX_SIZE - MIN_SIZE));
      c[t].block[k] = new_block(n, (uint64_t)k);
      c[t].size[k] = n;
    }
  }
  for (int t = 0; t < nchains; t++) start(&c[t]);
  pthread_mutex_lock(&done_lock);
  while (chains_done < nchains) pthread_cond_wait(&done_cond, &done_lock);
  pthread_mutex_unlock(&done_lock);
  uint64_t h = 0;
  for (int t = 0; t < nchains; t++) {
    h += c[t].h;
    for (int k = 0; k < CHUNKS; k++) {
      h = mix(h, (uint64_t)c[t].block[k][0] + c[t].size[k]);
      free(c[t].block[k]);
    }
  }
  free(c);
  finish(h);
  return 0;
}
