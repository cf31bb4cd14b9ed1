/* simple.c -- tight loops of small malloc/free, where the allocator's fast paths are nearly all
 * the work (the shapes of glibc's bench-malloc-simple and bench-malloc-thread, mimalloc-bench's
 * glibc-simple and glibc-thread).   simple [scale] [threads]       (default 1 thread)
 * Each thread, 30 rounds at full scale, each of two halves:
 *   1. batches: allocate 25, 100, 400 or 1,600 blocks of 16-128 B (random sizes), write each
 *      block's every word, free them in allocation order; 1 million blocks a round;
 *   2. working set: 1,024 slots; 1 million times, free the block in a (pseudo)random slot and
 *      put a new one there, its size drawn from an inverse-square distribution over 4 B - 32 KiB
 *      (most blocks are tiny: the mean is about 36 B), writing its every byte.
 * The random sizes and slots come from tables filled before the loops (as in glibc's bench), so
 * the loops do little besides malloc, free and the writes. Every thread does the same work
 * whatever the number of threads (`simple2` runs 2 threads: twice the work, the same time on 2
 * cores if the allocator scales).
 */
#include "common.h"

#define ROUNDS 30
#define BATCH_BLOCKS 1000000
#define MAX_BATCH 1600
#define WORKING_SET 1024
#define WS_STEPS 1000000
#define NSIZES 8191  // the two tables' lengths are coprime: the pairs repeat only every 32 M steps
#define NSLOTS 4096

static long rounds;

typedef struct {
  int id;
  uint64_t h;
} job;

static void *run(void *arg) {
  job *j = arg;
  uint64_t s = 37 + (uint64_t)j->id, h = 0;
  static const int batch_len[4] = {25, 100, 400, MAX_BATCH};
  uint32_t *small = xmalloc(NSIZES * sizeof *small);
  uint32_t *ws_size = xmalloc(NSIZES * sizeof *ws_size);
  uint16_t *slot = xmalloc(NSLOTS * sizeof *slot);
  for (int i = 0; i < NSIZES; i++) {
    small[i] = 16 + (uint32_t)(rng_next(&s) % 113);
    // inverse square on [4, 32768]: the inverse of a uniform draw between 1/32768 and 1/4
    double u = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
    double inv = 1.0 / 32768 + u * (1.0 / 4 - 1.0 / 32768);
    uint32_t n = (uint32_t)(1.0 / inv);
    ws_size[i] = n < 4 ? 4 : n > 32768 ? 32768 : n;
  }
  for (int i = 0; i < NSLOTS; i++) slot[i] = (uint16_t)(rng_next(&s) % WORKING_SET);
  uint64_t **batch = xmalloc(MAX_BATCH * sizeof *batch);
  unsigned char **ws = calloc(WORKING_SET, sizeof *ws);
  uint32_t *ws_len = calloc(WORKING_SET, sizeof *ws_len);
  if (!ws || !ws_len) abort();
  uint32_t si = 0, zi = 0, oi = 0;
  for (long r = 0; r < rounds; r++) {
    for (long done = 0, b = 0; done < BATCH_BLOCKS; b++) {
      int n = batch_len[b & 3];
      for (int i = 0; i < n; i++) {
        uint32_t sz = small[si];
        si = si + 1 == NSIZES ? 0 : si + 1;
        uint64_t *p = xmalloc(sz);
        for (uint32_t w = 0; w < sz / 8; w++) p[w] = w + (uint64_t)i;
        batch[i] = p;
      }
      for (int i = 0; i < n; i++) {
        h += batch[i][0];
        free(batch[i]);
      }
      done += n;
    }
    for (long i = 0; i < WS_STEPS; i++) {
      uint32_t k = slot[oi], sz = ws_size[zi];
      oi = oi + 1 == NSLOTS ? 0 : oi + 1;
      zi = zi + 1 == NSIZES ? 0 : zi + 1;
      if (ws[k]) h += (uint64_t)ws[k][0] + ws[k][ws_len[k] - 1];
      free(ws[k]);
      unsigned char *p = xmalloc(sz);
      for (uint32_t c = 0; c < sz; c++) p[c] = (unsigned char)(c + k);
      ws[k] = p;
      ws_len[k] = sz;
    }
    h = mix(h, (uint64_t)r);
  }
  for (int k = 0; k < WORKING_SET; k++) free(ws[k]);
  free(ws_len);
  free(ws);
  free(batch);
  free(slot);
  free(ws_size);
  free(small);
  j->h = h;
  return NULL;
}

int main(int argc, char **argv) {
  rss_start();
  rounds = scaled(ROUNDS, scale_arg(argc, argv));
  int nthreads = argc > 2 ? atoi(argv[2]) : 1;
  if (nthreads < 1) nthreads = 1;
  job *jobs = xmalloc((size_t)nthreads * sizeof *jobs);
  pthread_t *th = xmalloc((size_t)nthreads * sizeof *th);
  for (int t = 0; t < nthreads; t++) {
    jobs[t].id = t;
    jobs[t].h = 0;
  }
  uint64_t h = 0;
  if (nthreads == 1) {
    run(&jobs[0]);  // in the main thread, as glibc-simple's first part does
    h = jobs[0].h;
  } else {
    for (int t = 0; t < nthreads; t++) pthread_create(&th[t], NULL, run, &jobs[t]);
    for (int t = 0; t < nthreads; t++) {
      pthread_join(th[t], NULL);
      h = mix(h, jobs[t].h);
    }
  }
  free(th);
  free(jobs);
  finish(h);
  return 0;
}
