/* threads.c -- multi-threaded tests through the standard names, with libamalloc linked or
 * LD_PRELOADed.
 *
 * usage: threads [queue|churn|fork|all]     (default all)
 *   queue  8 threads pass blocks to each other through locked queues (cross-thread frees)
 *   churn  5,000+ short-lived threads; their blocks are freed by the main thread after they
 *          exit; RSS must not grow with the number of threads
 *   fork   fork() while 4 threads allocate; the children allocate, start a thread, _exit(0)
 *
 * AMALLOC_TEST_EXPECT_GLIBC=1 validates the test itself against glibc's malloc.
 * AMALLOC_TEST_QUICK=1 cuts the workload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* =========================== (a) blocks passed between threads =========================== */
enum { QT = 8 };
typedef struct qmsg {
  struct qmsg *next;
  size_t size;
  uint64_t seed;
  uint32_t producer;
} qmsg_t;
typedef struct {
  pthread_mutex_t lock;
  qmsg_t *head;
  char pad[64];
} queue_t;
static queue_t q_queues[QT];
static unsigned long q_per_thread;
static unsigned long q_received; /* atomic */
static unsigned long q_inflight; /* atomic: pushed and not yet taken */
static unsigned long q_bad;      /* atomic */

static uint64_t q_seed(size_t size, uint32_t producer, unsigned long i) {
  return ((uint64_t)producer << 48) ^ ((uint64_t)size << 20) ^ i;
}

static unsigned long q_drain(queue_t *q, rng_t *r) {
  pthread_mutex_lock(&q->lock);
  qmsg_t *m = q->head;
  q->head = NULL;
  pthread_mutex_unlock(&q->lock);
  unsigned long n = 0;
  while (m) {
    qmsg_t *next = m->next;
    size_t sz = m->size;
    if (m->producer >= QT || malloc_usable_size(m) < sz ||
        !pat_check((char *)m + sizeof *m, sz - sizeof *m, m->seed, 2048))
      __atomic_add_fetch(&q_bad, 1, __ATOMIC_RELAXED);
    if (rng_below(r, 16) == 0) { /* realloc someone else's block before freeing it */
      uint64_t seed = m->seed;
      void *p = realloc(m, sz / 2 + sizeof *m);
      if (!p || ((qmsg_t *)p)->seed != seed)
        __atomic_add_fetch(&q_bad, 1, __ATOMIC_RELAXED);
      free(p ? p : m);
    } else {
      free(m);
    }
    n++;
    m = next;
  }
  if (n) {
    __atomic_sub_fetch(&q_inflight, n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&q_received, n, __ATOMIC_RELAXED);
  }
  return n;
}

static void *q_thread(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  rng_t r;
  rng_seed(&r, id * 7 + 1);
  queue_t *mine = &q_queues[id];
  unsigned long total = q_per_thread * QT;
  for (unsigned long i = 0; i < q_per_thread; i++) {
    size_t k = rng_below(&r, 1000), sz;
    if (k < 700) sz = 1 + rng_below(&r, 512);
    else if (k < 990) sz = 1 + rng_below(&r, 64 * KiB);
    else sz = 64 * KiB + rng_below(&r, 2 * MiB);
    sz += sizeof(qmsg_t);
    qmsg_t *m = (qmsg_t *)malloc(sz);
    if (!m) {
      __atomic_add_fetch(&q_bad, 1, __ATOMIC_RELAXED);
      __atomic_add_fetch(&q_received, 1, __ATOMIC_RELAXED);
      continue;
    }
    m->size = sz;
    m->producer = id;
    m->seed = q_seed(sz, id, i);
    pat_fill((char *)m + sizeof *m, sz - sizeof *m, m->seed, 2048);
    uint32_t to = (uint32_t)rng_below(&r, QT - 1);
    if (to >= id) to++; /* never to itself */
    queue_t *q = &q_queues[to];
    __atomic_add_fetch(&q_inflight, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&q->lock);
    m->next = q->head;
    q->head = m;
    pthread_mutex_unlock(&q->lock);
    /* some local churn too */
    void *t = malloc(1 + rng_below(&r, 300));
    if (t) memset(t, 1, 1);
    free(t);
    if (i % 8 == 0) q_drain(mine, &r);
    /* back-pressure: do not let a descheduled consumer pile up gigabytes */
    while (__atomic_load_n(&q_inflight, __ATOMIC_RELAXED) > 4000) {
      if (!q_drain(mine, &r)) sched_yield();
    }
  }
  while (__atomic_load_n(&q_received, __ATOMIC_RELAXED) < total)
    if (!q_drain(mine, &r)) sched_yield();
  return NULL;
}

static void test_queue(void) {
  q_per_thread = scaled(40000); /* 320,000 blocks in all */
  for (int i = 0; i < QT; i++) {
    pthread_mutex_init(&q_queues[i].lock, NULL);
    q_queues[i].head = NULL;
  }
  pthread_t th[QT];
  for (int i = 0; i < QT; i++) {
    int rc = pthread_create(&th[i], NULL, q_thread, (void *)(uintptr_t)i);
    CHECK_EQ(rc, 0);
  }
  for (int i = 0; i < QT; i++) pthread_join(th[i], NULL);
  CHECK_EQ(__atomic_load_n(&q_received, __ATOMIC_RELAXED), q_per_thread * QT);
  CHECK_EQ(__atomic_load_n(&q_bad, __ATOMIC_RELAXED), 0);
  for (int i = 0; i < QT; i++) CHECK(q_queues[i].head == NULL);
}

/* =========================== (b) many short-lived threads =============================== */
enum { CH_BLOCKS = 300, CH_WAVE = 16 };
typedef struct {
  unsigned id;
  void *keep[CH_BLOCKS / 2]; /* handed to the main thread */
  size_t keep_size[CH_BLOCKS / 2];
  int nkeep;
  int bad;
} churn_arg_t;

static size_t churn_size(rng_t *r) {
  size_t k = rng_below(r, 100);
  if (k < 70) return 1 + rng_below(r, 256);
  if (k < 95) return 257 + rng_below(r, 8 * KiB);
  if (k < 99) return 8 * KiB + rng_below(r, 120 * KiB);
  return 128 * KiB + rng_below(r, 512 * KiB);
}

static void *churn_thread(void *arg) {
  churn_arg_t *a = (churn_arg_t *)arg;
  rng_t r;
  rng_seed(&r, a->id);
  void *p[CH_BLOCKS];
  size_t n[CH_BLOCKS];
  for (int i = 0; i < CH_BLOCKS; i++) {
    n[i] = churn_size(&r);
    p[i] = malloc(n[i]);
    if (!p[i]) {
      a->bad++;
      continue;
    }
    pat_fill(p[i], n[i], a->id * 1000u + (unsigned)i, 1024);
  }
  a->nkeep = 0;
  for (int i = 0; i < CH_BLOCKS; i++) {
    if (!p[i]) continue;
    if (!pat_check(p[i], n[i], a->id * 1000u + (unsigned)i, 1024)) a->bad++;
    if (i % 2 == 0) {
      free(p[i]);
    } else {
      a->keep[a->nkeep] = p[i];
      a->keep_size[a->nkeep] = n[i];
      a->nkeep++;
    }
  }
  return NULL;
}

/* 100 ms of light traffic: the purge delay (25 ms) passes and the slow paths purge, so that
 * RSS readings compare what the exited threads left, not what is waiting for its purge. */
static void settle(void) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    for (int i = 0; i < 64; i++) free(opaque_ptr(malloc(48)));
    struct timespec ms = {0, 1000 * 1000};
    nanosleep(&ms, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 100);
}

static void test_churn(void) {
  unsigned total = test_quick() ? 1000 : 5008;
  unsigned first = 208; /* RSS baseline after this many threads (a multiple of CH_WAVE) */
  static churn_arg_t args[CH_WAVE];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * KiB);
  size_t rss_first = 0;
  int bad = 0, create_fail = 0;
  for (unsigned base = 0; base < total; base += CH_WAVE) {
    pthread_t th[CH_WAVE];
    bool ok[CH_WAVE];
    for (unsigned i = 0; i < CH_WAVE; i++) {
      memset(&args[i], 0, sizeof args[i]);
      args[i].id = base + i + 1;
      ok[i] = pthread_create(&th[i], &attr, churn_thread, &args[i]) == 0;
      if (!ok[i]) create_fail++;
    }
    for (unsigned i = 0; i < CH_WAVE; i++) {
      if (!ok[i]) continue;
      pthread_join(th[i], NULL); /* the thread has exited: now free its blocks */
      bad += args[i].bad;
      for (int k = 0; k < args[i].nkeep; k++) {
        if (!pat_check(args[i].keep[k], args[i].keep_size[k],
                       args[i].id * 1000u + (unsigned)(2 * k + 1), 1024))
          bad++;
        free(args[i].keep[k]);
      }
    }
    if (base + CH_WAVE == first) {
      settle();
      rss_first = vm_rss_kib();
    }
  }
  pthread_attr_destroy(&attr);
  settle();
  size_t rss_last = vm_rss_kib();
  printf("churn: %u threads, VmRSS after %u: %zu KiB, after all: %zu KiB\n", total, first,
         rss_first, rss_last);
  CHECK_EQ(create_fail, 0);
  CHECK_EQ(bad, 0);
  CHECK(rss_first > 0 && rss_last > 0);
  /* the residue of dead threads must not grow with their number */
  if (!CHECK(rss_last < rss_first + 8 * 1024))      /* 8 MiB, as test/memory.c threads */
    fprintf(stderr, "churn: VmRSS grew by %zu KiB over %u threads\n", rss_last - rss_first,
            total - first);
}

/* =========================== (c) fork while other threads allocate ====================== */
static int fork_stop; /* atomic */

static void *fork_bg_thread(void *arg) {
  rng_t r;
  rng_seed(&r, (uint64_t)(uintptr_t)arg + 500);
  enum { S = 256 };
  void *slot[S] = {0};
  while (!__atomic_load_n(&fork_stop, __ATOMIC_RELAXED)) {
    size_t i = rng_below(&r, S);
    free(slot[i]);
    size_t k = rng_below(&r, 100), n;
    n = k < 90 ? 1 + rng_below(&r, 1000) : k < 99 ? rng_below(&r, 100 * KiB) : rng_below(&r, 4 * MiB);
    slot[i] = malloc(n);
    if (slot[i] && n) memset(slot[i], (int)i, n < 4096 ? n : 4096);
  }
  for (int i = 0; i < S; i++) free(slot[i]);
  return NULL;
}

static void *child_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) {
    void *p = malloc((size_t)(i % 700) * 13 + 1);
    if (!p) return (void *)1;
    memset(p, 1, 1);
    free(p);
  }
  return NULL;
}

/* runs in the child: exit status 0 if all went well */
static int child_work(int k, void **inherited, int ninh) {
  alarm(15); /* a deadlock kills the child (SIGALRM) rather than hanging */
  int bad = 0;
  static const size_t sizes[] = {1, 16, 100, 1000, 5000, 40000, 300000, 2 * MiB, 9 * MiB};
  void *p[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i]) bad++;
    else memset(p[i], (int)i, sizes[i]);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (p[i] && !all_bytes(p[i], sizes[i], (uint8_t)i)) bad++;
    free(p[i]);
  }
  /* blocks allocated by the parent before the fork */
  for (int i = 0; i < ninh; i++) {
    if (inherited[i] && !all_bytes(inherited[i], 100, 0x5c)) bad++;
    free(inherited[i]);
  }
  void *q = calloc(1000, 10);
  if (!q || !all_bytes(q, 10000, 0)) bad++;
  q = realloc(q, 1 * MiB);
  if (!q) bad++;
  free(q);
  if (k % 2 == 0) { /* a thread of its own */
    pthread_t t;
    void *ret = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0) bad++;
    else if (pthread_join(t, &ret) != 0 || ret != NULL) bad++;
  }
  return bad ? 1 : 0;
}

static void test_fork(void) {
  enum { BG = 4, INH = 64 };
  int nforks = test_quick() ? 12 : 60;
  pthread_t bg[BG];
  __atomic_store_n(&fork_stop, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < BG; i++) CHECK_EQ(pthread_create(&bg[i], NULL, fork_bg_thread, (void *)(uintptr_t)i), 0);
  static void *inh[INH];
  int failed = 0, killed = 0;
  for (int k = 0; k < nforks; k++) {
    for (int i = 0; i < INH; i++) {
      inh[i] = malloc(100 + (size_t)i * 50);
      if (inh[i]) memset(inh[i], 0x5c, 100);
    }
    struct timespec d = {0, 2000000}; /* let the threads get going */
    nanosleep(&d, NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(child_work(k, inh, INH));
    if (!CHECK(pid > 0)) {
      for (int i = 0; i < INH; i++) free(inh[i]);
      continue;
    }
    for (int i = 0; i < INH; i++) free(inh[i]);
    /* wait up to 20 s, then kill it and count a failure */
    int status = 0;
    pid_t w = 0;
    for (int ms = 0; ms < 20000; ms += 5) {
      w = waitpid(pid, &status, WNOHANG);
      if (w != 0) break;
      struct timespec t = {0, 5000000};
      nanosleep(&t, NULL);
    }
    if (w == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed++;
      fprintf(stderr, "fork: child %d did not exit within 20 s (deadlock?)\n", k);
      continue;
    }
    if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
      if (WIFSIGNALED(status))
        fprintf(stderr, "fork: child %d killed by signal %d\n", k, WTERMSIG(status));
      else
        fprintf(stderr, "fork: child %d exit status %d\n", k, WEXITSTATUS(status));
    }
  }
  __atomic_store_n(&fork_stop, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < BG; i++) pthread_join(bg[i], NULL);
  CHECK_EQ(killed, 0);
  CHECK_EQ(failed, 0);
  void *p = malloc(12345); /* the parent is fine too */
  CHECK(p != NULL);
  free(p);
}

int main(int argc, char **argv) {
  test_init("threads");
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = !strcmp(what, "all");
  if (!all && strcmp(what, "queue") && strcmp(what, "churn") && strcmp(what, "fork")) {
    fprintf(stderr, "usage: %s [queue|churn|fork|all]\n", argv[0]);
    return 2;
  }
  char name[32];
  snprintf(name, sizeof name, "threads-%s", what);
  test_init(name);
  CHECK_AMALLOC_ACTIVE();
  if (all || !strcmp(what, "queue")) test_queue();
  if (all || !strcmp(what, "churn")) test_churn();
  if (all || !strcmp(what, "fork")) test_fork();
  return test_summary();
}
