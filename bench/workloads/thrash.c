/* thrash.c -- false sharing of cache lines between threads, caused by where the allocator puts
 * small blocks (the shapes of Hoard's cache-thrash and cache-scratch, as in mimalloc-bench).
 *   thrash [scale] [active|passive] [threads]       (default: active, 2 threads)
 * active:  each thread, 1,000 times (at full scale): allocates a block of 8-64 B (all threads
 *          ask for the same sizes in the same order), writes and reads back every byte of it
 *          40,000 times over in a tight loop, frees it. If the allocator hands two threads blocks
 *          in the same cache line, every write moves the line between cores.
 * passive: the main thread allocates one small block per thread, back to back, of the size of
 *          the threads' first block, and hands one to each thread; the thread frees it and then
 *          runs the active loop. An allocator that gives a thread back the block it just freed
 *          (which the main thread allocated next to the others) makes the threads share lines
 *          although each only writes its own blocks.
 * Each thread's work is the same whatever the number of threads, so with 1 thread this measures
 * the write loop alone.
 */
#include "common.h"

#define REPS 40000
#define MIN_SIZE 8
#define MAX_SIZE 64

#define SIZE_SEED 31

typedef struct {
  unsigned char *handed;  // passive: the block the main thread allocated for this thread
  int id;
  uint64_t h;
} job;

static long iterations;

static size_t block_size(uint64_t *s) { return MIN_SIZE + rng_next(s) % (MAX_SIZE - MIN_SIZE + 1); }

static void *run(void *arg) {
  job *j = arg;
  uint64_t s = SIZE_SEED, h = 0;  // every thread asks for the same sizes in the same order
  if (j->handed) {
    h = mix(h, j->handed[0]);
    free(j->handed);
  }
  for (long i = 0; i < iterations; i++) {
    size_t n = block_size(&s);
    // volatile: every store and load reaches the block's cache line, as in cache-thrash's loop
    volatile unsigned char *p = xmalloc(n);
    for (int r = 0; r < REPS; r++)
      for (size_t k = 0; k < n; k++) {
        p[k] = (unsigned char)(r + (int)k);
        volatile unsigned char c = p[k];
        c++;
      }
    h = mix(h, (uint64_t)p[0] + p[n - 1] + (uint64_t)j->id);
    free((void *)p);
  }
  j->h = h;
  return NULL;
}

int main(int argc, char **argv) {
  rss_start();
  iterations = scaled(1000, scale_arg(argc, argv));
  int passive = argc > 2 && strcmp(argv[2], "passive") == 0;
  if (argc > 2 && !passive && strcmp(argv[2], "active") != 0) {
    fprintf(stderr, "usage: thrash [scale] [active|passive] [threads]\n");
    return 2;
  }
  int nthreads = argc > 3 ? atoi(argv[3]) : 2;
  if (nthreads < 1) nthreads = 1;
  job *jobs = xmalloc((size_t)nthreads * sizeof *jobs);
  pthread_t *th = xmalloc((size_t)nthreads * sizeof *th);
  for (int t = 0; t < nthreads; t++) {
    jobs[t].id = t;
    jobs[t].h = 0;
    jobs[t].handed = NULL;
  }
  if (passive)
    for (int t = 0; t < nthreads; t++) {
      uint64_t s = SIZE_SEED;
      size_t n = block_size(&s);  // the size of the thread's first block: it can take this one
      jobs[t].handed = xmalloc(n);
      memset(jobs[t].handed, t + 1, n);
    }
  for (int t = 0; t < nthreads; t++) pthread_create(&th[t], NULL, run, &jobs[t]);
  uint64_t h = 0;
  for (int t = 0; t < nthreads; t++) {
    pthread_join(th[t], NULL);
    h = mix(h, jobs[t].h);
  }
  free(th);
  free(jobs);
  finish(h);
  return 0;
}
