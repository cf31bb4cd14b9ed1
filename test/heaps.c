/* heaps.c -- first-class heaps (am_heap_*, issue 16): the API contract, destroy with blocks in
 * other threads' hands and remote frees racing the destroy, fork with live heaps, and misuse
 * (exact messages). Linked with libamalloc-api.a (the am_* names); also built with ASan+UBSan
 * ("api" and "misuse" parts) and TSan ("threads").
 *
 * usage: heaps [all|api|threads|race|fork|misuse]      (default all)
 * AMALLOC_TEST_QUICK=1 cuts the workload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <amalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define MiB ((size_t)1 << 20)

#include "heaps_stats.h"

static size_t segments_now(void) {
  am_stats_t st;
  st.size = sizeof(st);
  am_stats_get(&st);
  return st.segments;
}

/* ---- the API contract ------------------------------------------------------------------- */
static void test_api(void) {
  /* NULL: the thread's default heap for allocation; nothing for destroy/reset/release */
  void *d = am_heap_malloc(NULL, 40);
  CHECK(d != NULL);
  CHECK_GE(am_heap_usable_size(NULL, d), 40);
  am_free(d);
  am_heap_destroy(NULL);
  am_heap_reset(NULL);
  am_heap_release(NULL);
  CHECK_EQ(am_heap_usable_size(NULL, NULL), 0);
  am_heap_stats_t st;
  st.size = sizeof(st);
  CHECK_EQ(am_heap_stats(NULL, &st), EINVAL);

  am_heap_t *h = am_heap_new();
  CHECK(h != NULL);
  if (h == NULL) return;
  st.size = 3;
  CHECK_EQ(am_heap_stats(h, &st), EINVAL);
  CHECK_EQ(am_heap_stats(h, NULL), EINVAL);
  st = hstats(h);
  CHECK_EQ(st.version, AM_HEAP_STATS_VERSION);
  CHECK_EQ(st.blocks, 0);
  CHECK_EQ(st.large_blocks, 0);

  /* zero sizes: a unique block, freeable */
  void *z1 = am_heap_malloc(h, 0), *z2 = am_heap_malloc(h, 0);
  CHECK(z1 != NULL && z2 != NULL && z1 != z2);
  void *zc = am_heap_calloc(h, 0, 8);
  CHECK(zc != NULL);
  am_free(z1);
  am_free(zc);
  /* calloc: zeroed, overflow ENOMEM */
  volatile size_t huge = SIZE_MAX;
  errno = 0;
  CHECK(am_heap_calloc(h, huge / 2, 3) == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  CHECK(am_heap_malloc(h, huge) == NULL);
  CHECK_ERRNO(ENOMEM);
  for (size_t n = 1; n < 3 * MiB; n = n * 3 + 1) {
    unsigned char *c = am_heap_calloc(h, 1, n);
    CHECK(c != NULL);
    if (c == NULL) continue;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += c[i] != 0;
    CHECK_EQ(bad, 0);
    memset(c, 0xAB, n);
    am_free(c);
    c = am_heap_calloc(h, n, 1);     /* (a reused block is cleared too) */
    bad = 0;
    for (size_t i = 0; c && i < n; i++) bad += c[i] != 0;
    CHECK_EQ(bad, 0);
    am_free(c);
  }
  /* alignment: every power of two up to 8 MiB, small and large sizes */
  for (size_t a = 1; a <= 8 * MiB; a <<= 1) {
    size_t sizes[] = {1, 24, 100, 5000, 300000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
      void *p = am_heap_aligned_alloc(h, a, sizes[k]);
      CHECK(p != NULL);
      CHECK_ALIGNED(p, a < 16 ? a : a);
      if (p) {
        CHECK_GE(am_heap_usable_size(h, p), sizes[k]);
        memset(p, 1, sizes[k]);
      }
      am_free(p);
    }
  }
  /* the dense classes: a first-class heap serves 17-24, 33-40 and 49-56 bytes from 24, 40 and
   * 56-byte blocks, 8-byte aligned, and every other size as malloc does (16-byte aligned);
   * malloc with the heap as default keeps malloc's classes */
  size_t dense_bad = 0;
  for (size_t n = 1; n <= 1100; n++) {
    void *p = am_heap_malloc(h, n), *c = am_heap_calloc(h, n, 1), *m = am_malloc(n);
    bool dense = (n > 16 && n <= 24) || (n > 32 && n <= 40) || (n > 48 && n <= 56);
    size_t want = dense ? (n + 15) / 16 * 16 - 8 : am_malloc_usable_size(m);
    size_t align = want % 16 == 0 ? 16 : 8;
    if (am_heap_usable_size(h, p) != want || am_heap_usable_size(h, c) != want ||
        ((uintptr_t)p & (align - 1)) != 0 || ((uintptr_t)c & (align - 1)) != 0) {
      if (dense_bad++ < 5)
        test_note("dense: size %zu: usable %zu / %zu, want %zu", n, am_heap_usable_size(h, p),
                  am_heap_usable_size(h, c), want);
    }
    am_free(p);
    am_free(c);
    am_free(m);
  }
  CHECK_EQ(dense_bad, 0);
  {
    char *p = am_heap_malloc(h, 40);
    CHECK_EQ(am_heap_usable_size(h, p), 40);
    memset(p, 'd', 40);
    char *q = am_heap_realloc(h, p, 24);   /* shrinks in place (at least half the block) */
    CHECK(q == p);
    q = am_realloc(p, 56);                 /* moves: to the default heap, malloc's class */
    CHECK(q != NULL && am_malloc_usable_size(q) == 64);
    CHECK(q && q[0] == 'd' && q[23] == 'd');
    p = am_heap_realloc(h, q, 56);         /* into the heap: the dense 56 */
    CHECK(p != NULL && am_heap_usable_size(h, p) == 56 && p[23] == 'd');
    am_free_sized(p, 50);                  /* a size it can have been asked for */
    am_heap_t *prev = am_heap_set_default(h);
    void *m = am_malloc(40);
    CHECK_EQ(am_malloc_usable_size(m), 48);
    CHECK_ALIGNED(m, 16);
    am_free(m);
    am_heap_set_default(prev);
    /* an object that needs 16 bytes asks for them */
    void *a = am_heap_aligned_alloc(h, 16, 40);
    CHECK_ALIGNED(a, 16);
    am_free(a);
  }
  errno = 0;
  CHECK(am_heap_aligned_alloc(h, 24, 10) == NULL);
  CHECK_ERRNO(EINVAL);
  errno = 0;
  CHECK(am_heap_aligned_alloc(h, 0, 10) == NULL);
  CHECK_ERRNO(EINVAL);

  /* stats follow the blocks */
  st = hstats(h);
  size_t base_blocks = st.blocks;
  enum { N = 1000 };
  void *v[N];
  for (int i = 0; i < N; i++) v[i] = am_heap_malloc(h, 16 + (size_t)(i % 50) * 16);
  void *big = am_heap_malloc(h, 2 * MiB);
  CHECK(big != NULL);
  st = hstats(h);
  CHECK_EQ(st.blocks, base_blocks + N);
  CHECK_EQ(st.large_blocks, 1);
  CHECK_GE(st.large_bytes, 2 * MiB);
  CHECK_GE(st.mallocs, N);
  CHECK_GE(st.slabs, 1);
  CHECK_GE(st.segments, 1);
  for (int i = 0; i < N; i += 2) am_free(v[i]);
  am_free(big);
  st = hstats(h);
  CHECK_EQ(st.blocks, base_blocks + N / 2);
  CHECK_EQ(st.large_blocks, 0);

  /* realloc: NULL is malloc in the heap, 0 frees; within the heap in place when it fits; a
   * block of another heap (or of the default heap) moves into this one, contents kept */
  void *r = am_heap_realloc(h, NULL, 100);
  CHECK(r != NULL && am_heap_usable_size(h, r) >= 100);
  memset(r, 7, 100);
  void *r2 = am_heap_realloc(h, r, 90);
  CHECK(r2 == r);
  CHECK(am_heap_realloc(h, r2, 0) == NULL);
  am_heap_t *h2 = am_heap_new();
  CHECK(h2 != NULL && h2 != h);
  unsigned char *o = am_heap_malloc(h2, 64);
  memset(o, 0x5A, 64);
  unsigned char *m = am_heap_realloc(h, o, 64);   /* same size: still moves into h */
  CHECK(m != NULL && m != o);
  CHECK(m != NULL && m[0] == 0x5A && m[63] == 0x5A);
  CHECK_EQ(am_heap_usable_size(h, m), am_heap_usable_size(NULL, m));
  CHECK_EQ(hstats(h2).blocks, 0);
  unsigned char *g = am_malloc(3000);              /* the default heap's */
  memset(g, 0x11, 3000);
  unsigned char *gm = am_heap_realloc(h2, g, 5000);
  CHECK(gm != NULL && gm[2999] == 0x11);
  CHECK_EQ(hstats(h2).blocks, 1);
  /* large blocks: grown (mremap) and still in the heap's list; shrunk into a class */
  unsigned char *L = am_heap_malloc(h, 1 * MiB);
  memset(L, 0x33, 1 * MiB);
  unsigned char *L2 = am_realloc(L, 6 * MiB);
  CHECK(L2 != NULL && L2[MiB - 1] == 0x33);
  CHECK_EQ(hstats(h).large_blocks, 1);
  L2 = am_heap_realloc(h, L2, 12 * MiB);
  CHECK(L2 != NULL && L2[0] == 0x33);
  CHECK_EQ(hstats(h).large_blocks, 1);
  unsigned char *Lb = am_heap_realloc(h2, L2, 2 * MiB);   /* moves to h2 */
  CHECK(Lb != NULL && Lb[0] == 0x33);
  CHECK_EQ(hstats(h).large_blocks, 0);
  CHECK_EQ(hstats(h2).large_blocks, 1);

  /* reset: every block freed, the heap reusable, its memory kept */
  size_t segs = hstats(h).segments;
  am_heap_reset(h);
  st = hstats(h);
  CHECK_EQ(st.blocks, 0);
  CHECK_EQ(st.large_blocks, 0);
  CHECK_EQ(st.slabs, 0);
  CHECK_EQ(st.resets, 1);
  CHECK_EQ(st.segments, segs);
  void *after = am_heap_malloc(h, 48);
  CHECK(after != NULL);
  CHECK_EQ(hstats(h).blocks, 1);

  /* release: the blocks stay valid (here and freed later) */
  unsigned char *keep[64];
  for (int i = 0; i < 64; i++) {
    keep[i] = am_heap_malloc(h2, 200 + (size_t)i);
    memset(keep[i], i, 200);
  }
  unsigned char *keep_large = am_heap_malloc(h2, 1 * MiB);
  memset(keep_large, 9, MiB);
  am_heap_release(h2);
  int bad = 0;
  for (int i = 0; i < 64; i++) bad += keep[i][0] != i || keep[i][199] != i;
  CHECK_EQ(bad, 0);
  CHECK(keep_large[MiB - 1] == 9);
  for (int i = 0; i < 64; i++) am_free(keep[i]);
  am_free(keep_large);
  am_free(gm);
  am_free(Lb);

  /* destroy: frees it all; a heap per request reuses the same memory (no segment growth) */
  am_heap_destroy(h);
  size_t before = 0;
  for (int round = 0; round < 200; round++) {
    am_heap_t *q = am_heap_new();
    for (int i = 0; i < 20000; i++) am_heap_malloc(q, 32 + (size_t)(i % 7) * 16);
    for (int i = 0; i < 3; i++) am_heap_malloc(q, 600000);
    am_heap_destroy(q);
    if (round == 10) before = segments_now();
    if (round > 10) CHECK(segments_now() <= before + 1);
  }

  /* set_default: am_malloc goes to the heap, and back */
  am_heap_t *s = am_heap_new();
  CHECK(am_heap_set_default(s) == NULL);
  void *sd = am_malloc(100);
  CHECK_EQ(hstats(s).blocks, 1);
  am_free(sd);                               /* a local free into the default heap */
  CHECK_EQ(hstats(s).blocks, 0);
  void *sd2 = am_calloc(10, 10);
  am_heap_t *s2 = am_heap_new();
  CHECK(am_heap_set_default(s2) == s);
  CHECK(am_heap_set_default(NULL) == s2);
  CHECK(am_heap_set_default(NULL) == NULL);
  void *own = am_malloc(100);
  CHECK_EQ(hstats(s).blocks, 1);
  am_free(own);
  am_free(sd2);                              /* a block of s, freed while s is not the default */
  CHECK_EQ(hstats(s).blocks, 0);
  /* destroying the default heap: the thread's own heap is the default again */
  am_heap_set_default(s);
  am_malloc(64);
  am_heap_destroy(s);
  void *back = am_malloc(64);
  CHECK(back != NULL);
  CHECK(am_heap_set_default(NULL) == NULL);
  am_free(back);
  am_heap_destroy(s2);
}

/* ---- a first-class heap never adopts an exited thread's segments ------------------------- */
static void *exit_holding(void *arg) {
  void **out = arg;
  for (int i = 0; i < 200; i++) out[i] = am_malloc(64 + (size_t)i * 8);
  out[200] = am_malloc(100000);
  return NULL;
}

static void test_no_adopt(void) {
  void *held[201];
  pthread_t t;
  pthread_create(&t, NULL, exit_holding, held);
  pthread_join(t, NULL);                     /* its segments are abandoned, with live blocks */
  am_heap_t *h = am_heap_new();
  CHECK(am_heap_set_default(h) == NULL);
  for (int i = 0; i < 5000; i++) am_malloc(64 + (size_t)(i % 200) * 8);   /* h's slow paths */
  am_malloc_trim(0);                         /* adopts abandoned segments: into the own heap */
  am_heap_stats_t st = hstats(h);
  CHECK_EQ(st.blocks, 5000);
  CHECK(am_heap_set_default(NULL) == h);
  am_heap_destroy(h);
  int bad = 0;                               /* the exited thread's blocks were not freed */
  for (int i = 0; i < 200; i++) {
    memset(held[i], 0x77, 64);
    void *again = am_malloc(64 + (size_t)i * 8);
    bad += again == held[i];
    am_free(again);
  }
  CHECK_EQ(bad, 0);
  for (int i = 0; i < 201; i++) am_free(held[i]);
}

/* ---- threads ---------------------------------------------------------------------------- */
typedef struct {
  void **blocks;
  size_t n;
  _Atomic size_t freed;
  _Atomic int go;
} hand_t;

static void *free_them(void *arg) {
  hand_t *t = arg;
  while (!atomic_load_explicit(&t->go, memory_order_acquire)) {
  }
  for (size_t i = 0; i < t->n; i++) {
    am_free(t->blocks[i]);
    atomic_fetch_add_explicit(&t->freed, 1, memory_order_release);
  }
  return NULL;
}

/* Another thread may hold blocks, free them (remote frees into the heap, racing the owner's
 * allocations from it), realloc and measure them; the owner destroys the heap once they are
 * freed; blocks another thread still holds, unused, are freed by the destroy. */
static void test_threads(void) {
  unsigned rounds = (unsigned)scaled(40);
  for (unsigned round = 0; round < rounds; round++) {
    am_heap_t *h = am_heap_new();
    enum { N = 4000 };
    static void *given[N];
    hand_t t = {given, N, 0, 0};
    for (size_t i = 0; i < N; i++) {
      /* (the last: a large block freed by the other thread) */
      given[i] = am_heap_malloc(h, i == N - 1 ? 2 * MiB : i % 3 == 2 ? 70000 : 16 + (i % 40) * 8);
      memset(given[i], 1, 16);
    }
    pthread_t th;
    pthread_create(&th, NULL, free_them, &t);
    atomic_store_explicit(&t.go, 1, memory_order_release);
    /* the owner allocates (and frees) meanwhile */
    for (int i = 0; i < 2000; i++) am_free(am_heap_malloc(h, 24 + (size_t)(i % 100)));
    void *held[100];
    for (int i = 0; i < 100; i++) held[i] = am_heap_malloc(h, 40);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&t.freed), N);
    am_heap_stats_t st = hstats(h);
    CHECK_EQ(st.blocks, 100);
    CHECK_EQ(st.large_blocks, 0);
    am_heap_destroy(h);                         /* held[]: freed by the destroy */
    (void)held;
  }
}

/* ---- a free racing the destroy: the free lands first, or is reported; never a corruption --- */
typedef struct {
  void **blocks;
  size_t n;
  _Atomic int go, started;
} race_t;

static void *race_free(void *arg) {
  race_t *r = arg;
  atomic_store_explicit(&r->started, 1, memory_order_release);
  while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
  }
  for (size_t i = 0; i < r->n; i++) am_free(r->blocks[i]);
  return NULL;
}

static void race_child(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  am_heap_t *h = am_heap_new();
  enum { N = 3000 };
  static void *b[N];
  /* (8-byte steps: the dense classes 24, 40, 56 race too) */
  for (size_t i = 0; i < N; i++) b[i] = am_heap_malloc(h, 16 + ((i * 7 + seed) % 64) * 8);
  race_t r = {b, N, 0, 0};
  pthread_t th;
  pthread_create(&th, NULL, race_free, &r);
  while (!atomic_load_explicit(&r.started, memory_order_acquire)) {
  }
  atomic_store_explicit(&r.go, 1, memory_order_release);
  for (volatile unsigned spin = 0; spin < seed * 3000; spin++) {
  }
  am_heap_destroy(h);
  pthread_join(th, NULL);
  /* the memory goes on being used: a new heap's blocks (the same slots, the same addresses)
   * must be intact, and every block handed out once: no block the racing thread pushed before
   * the destroy (or tried to after) is on a new slab's lists */
  am_heap_t *h2 = am_heap_new();
  static unsigned char *c[N];
  for (size_t i = 0; i < N; i++) {
    c[i] = am_heap_malloc(h2, 16 + ((i * 7 + seed) % 64) * 8);
    memset(c[i], (int)(i & 0xFF), 16);
  }
  for (size_t i = 0; i < N; i++) am_free(am_heap_malloc(h2, 16 + ((i * 7 + seed) % 64) * 8));
  for (size_t i = 0; i < N; i++)
    if (c[i][0] != (i & 0xFF) || c[i][15] != (i & 0xFF)) _exit(3);
  am_heap_destroy(h2);
  _exit(0);
}

static void test_race(void) {
  unsigned trials = (unsigned)scaled(60), freed_first = 0, reported = 0;
  for (unsigned i = 0; i < trials; i++) {
    char err[512];
    int status = test_in_child(race_child, (void *)(uintptr_t)(i * 37 % 200), err, sizeof(err));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && err[0] == 0) {
      freed_first++;
    } else if (test_died_of(status, SIGABRT) &&
               strncmp(err, "amalloc: error: free: pointer to a block of a destroyed heap (pointer 0x", 71) == 0) {
      reported++;
    } else {
      CHECK(!"a free racing the destroy ended otherwise");
      test_note("status %d, stderr: %s", status, err);
    }
  }
  CHECK_EQ(freed_first + reported, trials);
  test_note("race: %u trials, %u with every free first, %u reported", trials, freed_first, reported);
}

/* ---- fork with live heaps --------------------------------------------------------------- */
static void fork_child(void *arg) {
  unsigned char **blocks = arg;
  am_heap_t *h = (am_heap_t *)blocks[0];
  for (int i = 1; i < 100; i++)
    if (blocks[i][0] != i) _exit(4);
  unsigned char *p = am_heap_malloc(h, 500);        /* the child's thread owns the heap */
  if (p == NULL) _exit(5);
  memset(p, 1, 500);
  am_free(blocks[1]);
  unsigned char *L = am_heap_malloc(h, 3 * MiB);
  if (L == NULL) _exit(6);
  am_heap_stats_t st = {.size = sizeof(st)};
  if (am_heap_stats(h, &st) != 0 || st.blocks != 99 || st.large_blocks != 2) _exit(7);
  am_heap_destroy(h);
  am_heap_t *h2 = am_heap_new();
  if (am_heap_malloc(h2, 100) == NULL) _exit(8);
  am_heap_destroy(h2);
  _exit(0);
}

static void test_fork(void) {
  am_heap_t *h = am_heap_new();
  unsigned char *blocks[100];
  blocks[0] = (unsigned char *)h;
  for (int i = 1; i < 100; i++) {
    blocks[i] = am_heap_malloc(h, 100);
    memset(blocks[i], i, 100);
  }
  void *L = am_heap_malloc(h, 2 * MiB);
  char err[512];
  int status = test_in_child(fork_child, blocks, err, sizeof(err));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) test_note("fork child: status %d: %s", status, err);
  /* the parent's heap is untouched by the child */
  int bad = 0;
  for (int i = 1; i < 100; i++) bad += blocks[i][0] != i;
  CHECK_EQ(bad, 0);
  CHECK_EQ(hstats(h).blocks, 99);
  am_free(L);
  am_heap_destroy(h);
}

/* ---- misuse: exact messages ------------------------------------------------------------- */
static char expected_ptr[64];

static void misuse_free_after_destroy(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  void *keep = am_heap_malloc(h, 64);
  void *p = am_heap_malloc(h, 64);
  (void)keep;
  am_heap_destroy(h);
  fprintf(stderr, "%p\n", p);
  am_free(p);
}
static void *remote_free(void *p) {
  am_free(p);
  return NULL;
}
static void misuse_remote_free_after_destroy(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  void *p = am_heap_malloc(h, 4000);
  am_heap_destroy(h);
  fprintf(stderr, "%p\n", p);
  pthread_t t;
  pthread_create(&t, NULL, remote_free, p);
  pthread_join(t, NULL);
}
static void misuse_realloc_after_destroy(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  void *p = am_heap_malloc(h, 100);
  am_heap_malloc(h, 100);
  am_heap_reset(h);
  fprintf(stderr, "%p\n", p);
  am_realloc(p, 5000);
}
static void misuse_large_after_destroy(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  void *p = am_heap_malloc(h, 3 * MiB);
  am_heap_destroy(h);
  fprintf(stderr, "%p\n", p);
  am_free(p);
}
static void misuse_use_destroyed(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  am_heap_destroy(h);
  fprintf(stderr, "%p\n", (void *)h);
  am_heap_malloc(h, 10);
}
/* am_heap_malloc's fast test compares the handle with the heap the thread used last (src
 * internal.h am_tls_user): a release must forget it as a destroy does, and a destroyed heap
 * that is not the last one used must be caught as well. */
static void misuse_use_released(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  am_free(am_heap_malloc(h, 10));
  am_heap_release(h);
  fprintf(stderr, "%p\n", (void *)h);
  am_heap_malloc(h, 10);
}
static void misuse_use_destroyed_other(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  am_heap_t *h2 = am_heap_new();
  am_heap_malloc(h, 10);
  am_heap_malloc(h2, 10);                 /* (h2 is the last heap used) */
  am_heap_destroy(h);
  am_heap_malloc(h2, 10);
  fprintf(stderr, "%p\n", (void *)h);
  am_heap_malloc(h, 10);
}
static void misuse_destroy_twice(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  am_heap_destroy(h);
  fprintf(stderr, "%p\n", (void *)h);
  am_heap_destroy(h);
}
static void *alloc_from(void *h) { return am_heap_malloc(h, 10); }
static void misuse_other_thread(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  fprintf(stderr, "%p\n", (void *)h);
  pthread_t t;
  pthread_create(&t, NULL, alloc_from, h);
  pthread_join(t, NULL);
}
static void *destroy_from(void *h) {
  am_heap_destroy(h);
  return NULL;
}
static void misuse_destroy_other_thread(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  fprintf(stderr, "%p\n", (void *)h);
  pthread_t t;
  pthread_create(&t, NULL, destroy_from, h);
  pthread_join(t, NULL);
}
static void misuse_not_a_heap(void *arg) {
  (void)arg;
  static _Alignas(64) uint64_t fake[1024];   /* (a heap struct's alignment: UBSan checks it) */
  fprintf(stderr, "%p\n", (void *)fake);
  am_heap_malloc((am_heap_t *)fake, 10);
}

/* The child prints the pointer it misuses on its first stderr line; the second must be exactly
 * "amalloc: error: <what> (pointer <it>)". */
static void expect_abort(const char *name, void (*fn)(void *), const char *what) {
  char err[1024];
  int status = test_in_child(fn, NULL, err, sizeof(err));
  char *nl = strchr(err, '\n');
  char want[256];
  if (nl != NULL) {
    *nl = 0;
    snprintf(expected_ptr, sizeof(expected_ptr), "%s", err);
    snprintf(want, sizeof(want), "amalloc: error: %s (pointer %s)\n", what, expected_ptr);
  }
  bool ok = test_died_of(status, SIGABRT) && nl != NULL && strncmp(nl + 1, want, strlen(want)) == 0;
  CHECK(ok);
  if (!ok) test_note("%s: status %d, want \"%s\", stderr after the pointer: %s", name, status,
                     nl ? want : "?", nl ? nl + 1 : err);
}

static void print_stats(void *arg) {
  (void)arg;
  am_heap_t *h = am_heap_new();
  for (int i = 0; i < 3000; i++) am_heap_malloc(h, 100);
  am_heap_malloc(h, 1 * MiB);
  am_heap_reset(h);
  for (int i = 0; i < 5000; i++) am_heap_malloc(h, 100);
  am_heap_malloc(h, 1 * MiB);
  am_heap_t *gone = am_heap_new();
  am_heap_destroy(gone);
  am_stats_print();
}

/* am_stats_print (AMALLOC_SHOW_STATS) has a line per live first-class heap */
static void test_stats_print(void) {
  char err[16384];
  int status = test_in_child(print_stats, NULL, err, sizeof(err));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  size_t lines = 0;
  unsigned long slabs = 0, segs = 0, large = 0, mallocs = 0, resets = 0;
  for (char *l = strstr(err, "amalloc: heap "); l != NULL; l = strstr(l + 1, "amalloc: heap ")) {
    lines++;
    char *c = strchr(l, ':');
    c = c ? strchr(c + 1, ':') : NULL;
    if (c && sscanf(c + 1, " slabs %lu segments %lu large blocks %lu mallocs %lu resets %lu", &slabs, &segs,
                    &large, &mallocs, &resets) != 5)
      CHECK(!"a heap line of the statistics");
  }
  CHECK_EQ(lines, 1);
  CHECK_GE(slabs, 1);
  CHECK_GE(segs, 1);
  CHECK_EQ(large, 1);
  CHECK_EQ(mallocs, 8002);
  CHECK_EQ(resets, 1);
}

static void test_misuse(void) {
  test_stats_print();
  expect_abort("free after destroy", misuse_free_after_destroy, "free: pointer to a block of a destroyed heap");
  expect_abort("remote free after destroy", misuse_remote_free_after_destroy,
               "free: pointer to a block of a destroyed heap");
  expect_abort("realloc after reset", misuse_realloc_after_destroy,
               "realloc: pointer to a block of a destroyed heap");
  expect_abort("large free after destroy", misuse_large_after_destroy, "free: pointer not allocated by amalloc");
  expect_abort("destroyed heap used", misuse_use_destroyed, "am_heap_malloc: heap destroyed");
  expect_abort("released heap used", misuse_use_released, "am_heap_malloc: heap destroyed");
  expect_abort("destroyed heap used, another used since", misuse_use_destroyed_other,
               "am_heap_malloc: heap destroyed");
  expect_abort("destroyed twice", misuse_destroy_twice, "am_heap_destroy: heap destroyed");
  expect_abort("allocation by another thread", misuse_other_thread, "am_heap_malloc: heap owned by another thread");
  expect_abort("destroy by another thread", misuse_destroy_other_thread,
               "am_heap_destroy: heap owned by another thread");
  expect_abort("not a heap", misuse_not_a_heap, "am_heap_malloc: not a heap");
}

int main(int argc, char **argv) {
  test_init("heaps");
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "api") == 0) {
    test_api();
    test_no_adopt();
  }
  if (all || strcmp(what, "threads") == 0) test_threads();
  if (all || strcmp(what, "race") == 0) test_race();
  if (all || strcmp(what, "fork") == 0) test_fork();
  if (all || strcmp(what, "misuse") == 0) test_misuse();
  return test_summary();
}
