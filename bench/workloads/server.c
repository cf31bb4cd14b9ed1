/* server.c -- a server-like multi-threaded churn: 4 worker threads each handle requests; a
 * request allocates a buffer, a dozen small header objects and a response; the response and
 * the headers are handed to another worker's inbox and freed there (threads free each other's
 * blocks). Each worker also keeps a session cache of 2,000 long-lived entries, one replaced
 * every few requests.   server [scale]
 */
#include "common.h"

#define WORKERS 4
#define CACHE 2000
#define INBOX 8192

typedef struct { pthread_mutex_t lock; int n; void *item[INBOX]; } inbox_t;
static inbox_t inbox[WORKERS];
static long requests;

static void drain(inbox_t *b) {
  pthread_mutex_lock(&b->lock);
  for (int i = 0; i < b->n; i++) free(b->item[i]);
  b->n = 0;
  pthread_mutex_unlock(&b->lock);
}

static void send_to(int to, void **items, int n) {
  inbox_t *b = &inbox[to];
  pthread_mutex_lock(&b->lock);
  int i = 0;
  for (; i < n && b->n < INBOX; i++) b->item[b->n++] = items[i];
  pthread_mutex_unlock(&b->lock);
  for (; i < n; i++) free(items[i]);
}

static void *worker(void *arg) {
  long id = (long)arg;
  uint64_t s = 1234567 + (uint64_t)id * 7919, h = 0;
  char **cache = calloc(CACHE, sizeof *cache);
  for (long r = 0; r < requests; r++) {
    size_t reqlen = 256 + rng_next(&s) % 8192;
    unsigned char *req = xmalloc(reqlen);
    for (size_t i = 0; i < reqlen; i += 64) req[i] = (unsigned char)(i + r);
    int nh = 4 + (int)(rng_next(&s) % 12);
    void *out[20];
    for (int k = 0; k < nh; k++) {
      size_t len = 16 + rng_next(&s) % 112;
      char *hdr = xmalloc(len);
      memset(hdr, 'a' + k, len);
      h = mix(h, (uint64_t)hdr[len - 1] + len);
      out[k] = hdr;
    }
    size_t resplen = 512 + rng_next(&s) % 16384;
    unsigned char *resp = xmalloc(resplen);
    memset(resp, (int)(r & 0xff), resplen);
    h = mix(h, resplen + req[0]);
    out[nh] = resp;
    free(req);
    if (rng_next(&s) % 4 == 0) {
      size_t k = rng_next(&s) % CACHE, len = 64 + rng_next(&s) % 448;
      if (cache[k]) h = mix(h, (unsigned char)cache[k][0]);
      free(cache[k]);
      cache[k] = xmalloc(len);
      cache[k][0] = (char)len;
    }
    send_to((int)((id + 1 + rng_next(&s) % (WORKERS - 1)) % WORKERS), out, nh + 1);
    if ((r & 15) == 0) drain(&inbox[id]);
  }
  for (int k = 0; k < CACHE; k++) free(cache[k]);
  free(cache);
  return (void *)(uintptr_t)h;
}

int main(int argc, char **argv) {
  rss_start();
  requests = scaled(600000, scale_arg(argc, argv));
  for (int i = 0; i < WORKERS; i++) pthread_mutex_init(&inbox[i].lock, NULL);
  pthread_t th[WORKERS];
  for (long i = 0; i < WORKERS; i++) pthread_create(&th[i], NULL, worker, (void *)i);
  uint64_t sum = 0;
  for (int i = 0; i < WORKERS; i++) {
    void *r;
    pthread_join(th[i], &r);
    sum += (uint64_t)(uintptr_t)r;
  }
  for (int i = 0; i < WORKERS; i++) drain(&inbox[i]);
  finish(sum);
  return 0;
}
