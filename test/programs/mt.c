/* mt.c -- a multi-threaded malloc workload for the preload tests (NOT linked to amalloc).
 *
 *   mt [THREADS [MESSAGES_PER_THREAD]]
 *
 * THREADS workers sit in a ring, each with a queue (mutex + condition variable). Every worker
 * makes MESSAGES_PER_THREAD malloc'ed strings and sends each to the next worker. A worker that
 * receives a message checks its content, adds it to its checksum and, while the message has
 * hops left, grows it with realloc and passes it on; at the last hop it frees it. So most
 * blocks are freed (and realloc'ed) by threads other than the one that allocated them, sizes
 * span small, medium and large blocks, and the printed checksum does not depend on the
 * scheduling (it is a sum): the output is the same under any correct allocator.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msg {
  struct msg *next;
  uint32_t origin, seq, hops;
  size_t len; /* bytes of text, without the NUL */
  char text[];
};

struct queue {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct msg *head, *tail;
  size_t count;
};

static unsigned nthreads = 4;
static unsigned per_thread = 20000;
static struct queue *queues;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total_sum, total_msgs, total_bytes;
/* messages still travelling anywhere; the workers stop when it reaches 0 and all have sent */
static uint64_t in_flight;
static unsigned senders_left;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static char text_char(uint32_t origin, uint32_t seq, size_t i) {
  return (char)('a' + (mix(((uint64_t)origin << 40) ^ ((uint64_t)seq << 8) ^ (i / 7)) + i) % 26);
}

static size_t msg_size(uint32_t origin, uint32_t seq) {
  uint64_t r = mix(((uint64_t)origin << 32) | seq);
  switch (r % 16) {
  case 0: return 4000 + (r >> 8) % 60000;      /* medium */
  case 1: if ((r >> 8) % 64 == 0) return 300000 + (r >> 16) % 200000; /* large, rarely */
          return 1 + (r >> 8) % 16;
  default: return 1 + (r >> 8) % 600;          /* small */
  }
}

static void push(struct queue *q, struct msg *m) {
  m->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->tail) q->tail->next = m; else q->head = m;
  q->tail = m;
  q->count++;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static int all_done(void) {
  return __atomic_load_n(&senders_left, __ATOMIC_ACQUIRE) == 0 &&
         __atomic_load_n(&in_flight, __ATOMIC_ACQUIRE) == 0;
}

/* Pops a message; NULL once everything has been delivered. */
static struct msg *pop(struct queue *q, int wait) {
  pthread_mutex_lock(&q->mu);
  while (!q->head) {
    if (!wait || all_done()) { pthread_mutex_unlock(&q->mu); return NULL; }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 2000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
  }
  struct msg *m = q->head;
  q->head = m->next;
  if (!q->head) q->tail = NULL;
  q->count--;
  pthread_mutex_unlock(&q->mu);
  return m;
}

static void die(const char *what, const struct msg *m) {
  fprintf(stderr, "mt: %s (origin %u seq %u hops %u len %zu)\n", what, m ? m->origin : 0,
          m ? m->seq : 0, m ? m->hops : 0, m ? m->len : 0);
  abort();
}

struct worker {
  pthread_t tid;
  unsigned id;
  uint64_t sum, msgs, bytes;
};

static void handle(struct worker *w, struct msg *m) {
  /* check the content written by the origin (and the extension added at each hop) */
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < m->len; i++) {
    if (m->text[i] != text_char(m->origin, m->seq, i)) die("corrupted message", m);
    h = (h ^ (unsigned char)m->text[i]) * 1099511628211ULL;
  }
  if (m->text[m->len] != '\0') die("missing NUL", m);
  w->sum += mix(h + m->hops);
  w->msgs++;
  w->bytes += m->len;
  if (m->hops == 0) {
    free(m);
    __atomic_sub_fetch(&in_flight, 1, __ATOMIC_ACQ_REL);
    return;
  }
  /* grow it and send it on */
  size_t add = 1 + (mix(m->seq ^ m->hops) % 3000);
  size_t newlen = m->len + add;
  struct msg *n = realloc(m, sizeof *n + newlen + 1);
  if (!n) die("realloc failed", m);
  for (size_t i = n->len; i < newlen; i++) n->text[i] = text_char(n->origin, n->seq, i);
  n->text[newlen] = '\0';
  n->len = newlen;
  n->hops--;
  push(&queues[(w->id + 1 + n->hops) % nthreads], n);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct queue *mine = &queues[w->id];
  /* some thread-local garbage that lives for the whole run */
  char **keep = calloc(64, sizeof *keep);
  for (unsigned i = 0; i < 64; i++) {
    keep[i] = malloc(16 + i * 37);
    memset(keep[i], (int)i, 16 + i * 37);
  }
  for (uint32_t seq = 0; seq < per_thread; seq++) {
    size_t len = msg_size(w->id, seq);
    struct msg *m = malloc(sizeof *m + len + 1);
    if (!m) die("malloc failed", NULL);
    m->origin = w->id;
    m->seq = seq;
    m->hops = (uint32_t)(mix(seq * 31u + w->id) % 4);
    m->len = len;
    for (size_t i = 0; i < len; i++) m->text[i] = text_char(w->id, seq, i);
    m->text[len] = '\0';
    __atomic_add_fetch(&in_flight, 1, __ATOMIC_ACQ_REL);
    push(&queues[(w->id + 1) % nthreads], m);
    /* drain what has arrived, so that the queues stay short */
    if (seq % 8 == 7) {
      struct msg *r;
      while ((r = pop(mine, 0)) != NULL) handle(w, r);
    }
  }
  __atomic_sub_fetch(&senders_left, 1, __ATOMIC_ACQ_REL);
  struct msg *r;
  while ((r = pop(mine, 1)) != NULL) handle(w, r);
  for (unsigned i = 0; i < 64; i++) {
    for (unsigned j = 0; j < 16 + i * 37; j++)
      if (keep[i][j] != (char)i) die("thread-local block corrupted", NULL);
    free(keep[i]);
  }
  free(keep);
  pthread_mutex_lock(&done_mu);
  total_sum += w->sum;
  total_msgs += w->msgs;
  total_bytes += w->bytes;
  pthread_mutex_unlock(&done_mu);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) nthreads = (unsigned)strtoul(argv[1], NULL, 10);
  if (argc > 2) per_thread = (unsigned)strtoul(argv[2], NULL, 10);
  if (nthreads < 1 || nthreads > 256) { fprintf(stderr, "mt: bad thread count\n"); return 2; }
  senders_left = nthreads;
  queues = calloc(nthreads, sizeof *queues);
  struct worker *ws = calloc(nthreads, sizeof *ws);
  if (!queues || !ws) return 1;
  for (unsigned i = 0; i < nthreads; i++) {
    pthread_mutex_init(&queues[i].mu, NULL);
    pthread_cond_init(&queues[i].cv, NULL);
  }
  for (int round = 0; round < 2; round++) {
    total_sum = total_msgs = total_bytes = 0;
    senders_left = nthreads;
    for (unsigned i = 0; i < nthreads; i++) {
      ws[i].id = i;
      ws[i].sum = ws[i].msgs = ws[i].bytes = 0;
      if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
        fprintf(stderr, "mt: pthread_create failed\n");
        return 1;
      }
    }
    for (unsigned i = 0; i < nthreads; i++) pthread_join(ws[i].tid, NULL);
    for (unsigned i = 0; i < nthreads; i++)
      if (queues[i].head) { fprintf(stderr, "mt: queue %u not empty\n", i); return 1; }
    printf("round %d: threads %u messages %llu bytes %llu checksum %016llx\n", round, nthreads,
           (unsigned long long)total_msgs, (unsigned long long)total_bytes,
           (unsigned long long)total_sum);
  }
  free(ws);
  free(queues);
  return 0;
}
