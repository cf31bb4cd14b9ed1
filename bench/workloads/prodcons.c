/* prodcons.c -- producer/consumer: 2 producer threads allocate messages (32 B - 2 KiB), fill
 * them and queue them; 2 consumer threads read, hash and free them (every block is freed by a
 * thread other than the one that allocated it).   prodcons [scale]
 */
#include "common.h"

#define PAIRS 2
#define QLEN 1024

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  unsigned char *item[QLEN];
  int head, count;
} queue;

static queue q[PAIRS];
static long messages;

static void *producer(void *arg) {
  queue *x = arg;
  uint64_t s = (uint64_t)(x - q) + 11;
  for (long i = 0; i < messages; i++) {
    size_t n = 32 + rng_next(&s) % 2017;
    unsigned char *m = xmalloc(n);
    memset(m, (int)(i & 0xff), n < 64 ? n : 64);
    m[0] = (unsigned char)n;
    m[n - 1] = 3;
    pthread_mutex_lock(&x->lock);
    while (x->count == QLEN) pthread_cond_wait(&x->not_full, &x->lock);
    x->item[(x->head + x->count++) % QLEN] = m;
    pthread_cond_signal(&x->not_empty);
    pthread_mutex_unlock(&x->lock);
  }
  return NULL;
}

static void *consumer(void *arg) {
  queue *x = arg;
  uint64_t h = 0;
  for (long i = 0; i < messages; i++) {
    pthread_mutex_lock(&x->lock);
    while (x->count == 0) pthread_cond_wait(&x->not_empty, &x->lock);
    unsigned char *m = x->item[x->head];
    x->head = (x->head + 1) % QLEN;
    x->count--;
    pthread_cond_signal(&x->not_full);
    pthread_mutex_unlock(&x->lock);
    h = mix(h, (uint64_t)m[0] + m[1]);
    free(m);
  }
  return (void *)(uintptr_t)h;
}

int main(int argc, char **argv) {
  rss_start();
  messages = scaled(2e6, scale_arg(argc, argv));
  pthread_t p[PAIRS], c[PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    pthread_mutex_init(&q[i].lock, NULL);
    pthread_cond_init(&q[i].not_empty, NULL);
    pthread_cond_init(&q[i].not_full, NULL);
    pthread_create(&p[i], NULL, producer, &q[i]);
    pthread_create(&c[i], NULL, consumer, &q[i]);
  }
  uint64_t sum = 0;
  for (int i = 0; i < PAIRS; i++) {
    void *r;
    pthread_join(p[i], NULL);
    pthread_join(c[i], &r);
    sum += (uint64_t)(uintptr_t)r;
  }
  finish(sum);
  return 0;
}
