/* threadchurn.c -- many short-lived threads: waves of 4 threads, each allocating 300 blocks
 * (16 B - 2 KiB), freeing 250 of them and handing 50 back to the main thread, which frees them
 * after the join (frees of blocks whose thread is gone).   threadchurn [scale]
 */
#include "common.h"

#define WAVE 4
#define PER 300
#define KEEP 50

typedef struct { uint64_t seed, h; unsigned char *kept[KEEP]; } job;

static void *run(void *arg) {
  job *j = arg;
  unsigned char *p[PER];
  for (int i = 0; i < PER; i++) {
    size_t n = 16 + rng_next(&j->seed) % 2033;
    p[i] = xmalloc(n);
    p[i][0] = (unsigned char)n;
    p[i][n - 1] = 2;
  }
  for (int i = 0; i < PER; i++) {
    if (i % 6 == 0 && i / 6 < KEEP) {
      j->kept[i / 6] = p[i];
    } else {
      j->h = mix(j->h, p[i][0]);
      free(p[i]);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  rss_start();
  long waves = scaled(5000, scale_arg(argc, argv));
  uint64_t h = 0;
  job jobs[WAVE];
  pthread_t th[WAVE];
  for (long w = 0; w < waves; w++) {
    for (int t = 0; t < WAVE; t++) {
      jobs[t].seed = (uint64_t)(w * WAVE + t);
      jobs[t].h = 0;
      pthread_create(&th[t], NULL, run, &jobs[t]);
    }
    for (int t = 0; t < WAVE; t++) {
      pthread_join(th[t], NULL);
      h += jobs[t].h;
      for (int k = 0; k < KEEP; k++) {
        h = mix(h, jobs[t].kept[k][0]);
        free(jobs[t].kept[k]);
      }
    }
  }
  finish(h);
  return 0;
}
