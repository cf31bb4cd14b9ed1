/* am_api.c -- the API contract through the am_* names, linked with libamalloc-api.a (no
 * override): amalloc beside the C library's own malloc in one process. Also built with
 * ASan+UBSan, and (the "threads" part) with TSan.
 *
 * usage: am_api [all|single|threads]      (default all)
 * AMALLOC_TEST_QUICK=1 cuts the workload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <amalloc.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#define F(name) am_##name
#define MI2_T struct am_mallinfo2
#define MI_T struct am_mallinfo
#define STRICT true
#define HAVE_FREE_SIZED true

#include "api_body.h"

/* ---- side by side with the C library's malloc ------------------------------------------- */
static void test_side_by_side(void) {
  CHECK_EQ(am_version(), AMALLOC_VERSION);
  CHECK_EQ(am_mallopt(M_ARENA_MAX, 1), 1);

  enum { N = 2000 };
  static void *g[N], *a[N];
  for (int i = 0; i < N; i++) {
    size_t n = 1 + (size_t)(i * 97) % 5000;
    g[i] = malloc(n);
    a[i] = am_malloc(n);
    CHECK(g[i] && a[i]);
    CHECK(g[i] != a[i]);
    if (g[i]) pat_fill(g[i], n, (uint64_t)i, SIZE_MAX);
    if (a[i]) {
      CHECK_GE(am_malloc_usable_size(a[i]), n);
      pat_fill(a[i], n, (uint64_t)i + N, SIZE_MAX);
    }
  }
  int bad = 0;
  for (int i = 0; i < N; i += 2) { /* free every other one, interleaved */
    free(g[i]);
    am_free(a[i]);
    g[i] = malloc(64);
    a[i] = am_calloc(1, 64);
    if (a[i] && !all_bytes(a[i], 64, 0)) bad++;
  }
  for (int i = 1; i < N; i += 2) {
    size_t n = 1 + (size_t)(i * 97) % 5000;
    if (g[i] && !pat_check(g[i], n, (uint64_t)i, SIZE_MAX)) bad++;
    if (a[i] && !pat_check(a[i], n, (uint64_t)i + N, SIZE_MAX)) bad++;
  }
  CHECK_EQ(bad, 0);
  for (int i = 0; i < N; i++) {
    free(g[i]);
    am_free(a[i]);
  }

  /* am_* large blocks do not come from glibc (its accounting does not move), and glibc's do
   * not show up in amalloc's */
  struct mallinfo2 g0 = mallinfo2();
  struct am_mallinfo2 a0 = am_mallinfo2();
  void *big = am_malloc(8 * MiB);
  CHECK(big != NULL);
  if (big) memset(big, 1, 8 * MiB);
  struct mallinfo2 g1 = mallinfo2();
  struct am_mallinfo2 a1 = am_mallinfo2();
  size_t gu0 = g0.hblkhd + g0.uordblks, gu1 = g1.hblkhd + g1.uordblks;
  size_t au0 = a0.hblkhd + a0.uordblks, au1 = a1.hblkhd + a1.uordblks;
  CHECK(gu1 < gu0 + 1 * MiB);
  CHECK_GE(au1, au0 + 8 * MiB);
  void *gbig = malloc(8 * MiB);
  CHECK(gbig != NULL);
  if (gbig) memset(gbig, 2, 8 * MiB);
  struct am_mallinfo2 a2 = am_mallinfo2();
  size_t au2 = a2.hblkhd + a2.uordblks;
  CHECK(au2 < au1 + 1 * MiB);
  if (big) CHECK(all_bytes(big, 8 * MiB, 1));
  free(gbig);
  am_free(big);
}

/* ---- cross-thread am_free: 4 threads in a ring, each passing blocks to the next ---------- */
enum { NT = 4 };
typedef struct msg {
  struct msg *next;
  size_t size;
  uint64_t seed;
} msg_t;
typedef struct {
  pthread_mutex_t lock;
  msg_t *head;
  char pad[64];
} queue_t;
static queue_t queues[NT];
static unsigned long per_thread;
static unsigned long received_total;   /* atomic */
static unsigned long thread_bad;       /* atomic */

static void q_push(queue_t *q, msg_t *m) {
  pthread_mutex_lock(&q->lock);
  m->next = q->head;
  q->head = m;
  pthread_mutex_unlock(&q->lock);
}
static msg_t *q_take_all(queue_t *q) {
  pthread_mutex_lock(&q->lock);
  msg_t *m = q->head;
  q->head = NULL;
  pthread_mutex_unlock(&q->lock);
  return m;
}

static unsigned long drain(queue_t *q, rng_t *r) {
  unsigned long n = 0;
  msg_t *m = q_take_all(q);
  while (m) {
    msg_t *next = m->next;
    size_t sz = m->size;
    if (am_malloc_usable_size(m) < sz ||
        !pat_check((char *)m + sizeof *m, sz - sizeof *m, m->seed, 1024))
      __atomic_add_fetch(&thread_bad, 1, __ATOMIC_RELAXED);
    switch (rng_below(r, 8)) {
    case 0: { /* realloc a foreign block, then free it */
      void *p = am_realloc(m, sz + 1000);
      if (!p) __atomic_add_fetch(&thread_bad, 1, __ATOMIC_RELAXED);
      else if (!pat_check((char *)p + sizeof *m, 64 < sz - sizeof *m ? 64 : sz - sizeof *m,
                          ((msg_t *)p)->seed, SIZE_MAX))
        __atomic_add_fetch(&thread_bad, 1, __ATOMIC_RELAXED);
      am_free(p ? p : m);
      break;
    }
    case 1: am_free_sized(m, sz); break;
    default: am_free(m); break;
    }
    n++;
    m = next;
  }
  return n;
}

static void *ring_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  rng_t r;
  rng_seed(&r, (uint64_t)id + 99);
  queue_t *mine = &queues[id], *next = &queues[(id + 1) % NT];
  unsigned long total = per_thread * NT;
  for (unsigned long i = 0; i < per_thread; i++) {
    size_t k = rng_below(&r, 100), sz;
    if (k < 80) sz = sizeof(msg_t) + rng_below(&r, 256);
    else if (k < 98) sz = sizeof(msg_t) + rng_below(&r, 16 * KiB);
    else sz = sizeof(msg_t) + rng_below(&r, 400 * KiB);
    msg_t *m = (msg_t *)(rng_below(&r, 10) == 0 ? am_calloc(1, sz) : am_malloc(sz));
    if (!m) {
      __atomic_add_fetch(&thread_bad, 1, __ATOMIC_RELAXED);
      continue;
    }
    m->size = sz;
    m->seed = ((uint64_t)id << 40) + i;
    pat_fill((char *)m + sizeof *m, sz - sizeof *m, m->seed, 1024);
    q_push(next, m);
    /* some thread-local churn as well */
    void *t = am_malloc(1 + rng_below(&r, 2000));
    am_free(t);
    if (i % 16 == 0)
      __atomic_add_fetch(&received_total, drain(mine, &r), __ATOMIC_RELAXED);
  }
  while (__atomic_load_n(&received_total, __ATOMIC_RELAXED) < total) {
    unsigned long n = drain(mine, &r);
    if (n) __atomic_add_fetch(&received_total, n, __ATOMIC_RELAXED);
    else sched_yield();
  }
  return NULL;
}

static void test_threads(void) {
  per_thread = scaled(40000);
  for (int i = 0; i < NT; i++) {
    pthread_mutex_init(&queues[i].lock, NULL);
    queues[i].head = NULL;
  }
  pthread_t th[NT];
  for (int i = 0; i < NT; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, ring_thread, (void *)(intptr_t)i), 0);
  for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
  CHECK_EQ(__atomic_load_n(&received_total, __ATOMIC_RELAXED), per_thread * NT);
  CHECK_EQ(__atomic_load_n(&thread_bad, __ATOMIC_RELAXED), 0);
  for (int i = 0; i < NT; i++) CHECK(queues[i].head == NULL);
  /* the heap is usable afterwards from the main thread */
  void *p = am_malloc(1000);
  CHECK(p != NULL);
  am_free(p);
  /* the ring threads have exited: malloc_trim releases what they left (their segments' free
   * slots, at least), then nothing is left to release */
  CHECK_EQ(am_malloc_trim(0), 1);
  CHECK_EQ(am_malloc_trim(0), 0);
}

/* ---- blocks freed by another thread come back with the right count ---------------------
 * Another thread frees blocks into the main thread's slabs; the count kept with each slab's
 * remote stack (not a walk of the blocks) then decides how many blocks are live. Two paths:
 * the slab's own free list empty (the stack becomes the free list) and not empty (the stack is
 * appended to it). If a count were wrong, a slab would be given back with live blocks in it or
 * keep blocks that can never be handed out: the live figures of am_stats_get and the distinct,
 * intact blocks checked here would show it. */
enum { RC_N = 3000, RC_SIZE = 48 };
static void *rc_remote[RC_N];      /* the blocks the other thread frees */
static size_t rc_nremote;

static void *rc_free_thread(void *arg) {
  (void)arg;
  for (size_t i = 0; i < rc_nremote; i++) am_free(rc_remote[i]);
  return NULL;
}

static size_t rc_live(size_t size) {
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  for (size_t c = 0; c < AM_STATS_CLASSES; c++)
    if (st.classes[c].block_size == size) return (size_t)st.classes[c].live;
  return SIZE_MAX;
}

static void rc_round(bool local_half) {
  /* With the heap profiler on (am_api-tsan-prof), a sampled block leaves its class's live count
   * when it is freed, not when its owner collects it, and the profiler's heap holds slabs of its
   * own: the exact counts below do not apply (the contents checks do). */
  bool exact = getenv("AMALLOC_PROF") == NULL;
  size_t live0 = rc_live(RC_SIZE);
  rc_nremote = 0;
  for (size_t i = 0; i < RC_N; i++) {
    void *b = am_malloc(RC_SIZE);
    CHECK(b != NULL);
    rc_remote[rc_nremote++] = b;
  }
  if (exact) CHECK_EQ(rc_live(RC_SIZE), live0 + RC_N);
  /* with local_half, every other block goes back on its slab's own free list first; the other
   * thread frees the rest */
  if (local_half) {
    size_t kept = 0;
    for (size_t i = 0; i < RC_N; i++) {
      if (i % 2 == 0) am_free(rc_remote[i]);
      else rc_remote[kept++] = rc_remote[i];
    }
    rc_nremote = kept;
  }
  size_t nrest = rc_nremote;
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, rc_free_thread, NULL), 0);
  pthread_join(t, NULL);
  /* not collected yet: the remotely freed blocks still count as live */
  if (exact) CHECK_EQ(rc_live(RC_SIZE), live0 + nrest);
  /* allocating the class again collects them through malloc's slow path */
  static unsigned char *again[2 * RC_N];
  for (size_t i = 0; i < 2 * RC_N; i++) {
    again[i] = am_malloc(RC_SIZE);
    CHECK(again[i] != NULL);
    memset(again[i], (int)(i % 251) + 1, RC_SIZE);
  }
  /* (malloc_trim collects what malloc did not need to; a second call finds nothing left) */
  am_malloc_trim(0);
  if (exact) CHECK_EQ(am_malloc_trim(0), 0);
  if (exact) CHECK_EQ(rc_live(RC_SIZE), live0 + 2 * RC_N);
  for (size_t i = 0; i < 2 * RC_N; i++) {
    size_t bad = 0;
    for (size_t k = 0; k < RC_SIZE; k++) bad += again[i][k] != (unsigned char)((i % 251) + 1);
    CHECK_EQ(bad, 0);      /* an overlap with another live block would have overwritten it */
    am_free(again[i]);
  }
  if (exact) {
    CHECK_EQ(am_malloc_trim(0), 1);    /* 2 * RC_N blocks' slabs are empty now */
    CHECK_EQ(am_malloc_trim(0), 0);
    CHECK_EQ(rc_live(RC_SIZE), live0);
  }
}

static void test_remote_counts(void) {
  rc_round(false);
  rc_round(true);
}

int main(int argc, char **argv) {
  test_init("am_api");
  const char *what = argc > 1 ? argv[1] : "all";
  bool single = !strcmp(what, "all") || !strcmp(what, "single");
  bool threads = !strcmp(what, "all") || !strcmp(what, "threads");
  if (!single && !threads) {
    fprintf(stderr, "usage: %s [all|single|threads]\n", argv[0]);
    return 2;
  }
  if (single) {
    test_side_by_side();
    run_api_body();
  }
  if (threads) {
    test_remote_counts();
    test_threads();
  }
  return test_summary();
}
