/* request.c -- a request-server shape for first-class heaps (issue 16): each request builds a
 * binary search tree of N nodes (48-byte nodes, each with a 16-80 byte string payload: 2N small
 * objects) from random keys, looks every key up, and drops the whole tree. Compiled once per
 * allocator (bench/heaps/run.sh):
 *
 *   -DALLOC_AMALLOC   amalloc (libamalloc-api.a): modes `free` (am_malloc, a walk of am_free
 *                     per object) and `heap` (am_heap_malloc from a heap per request, then
 *                     am_heap_destroy)
 *   -DALLOC_MIMALLOC  mimalloc (libmimalloc): `free` (mi_malloc/mi_free) and `heap`
 *                     (mi_heap_new, mi_heap_malloc, mi_heap_destroy)
 *   -DALLOC_JEMALLOC  jemalloc (libjemalloc): `free` (malloc/free) and `heap` (an explicit
 *                     arena from arenas.create, mallocx(MALLOCX_ARENA | MALLOCX_TCACHE_NONE),
 *                     arena.<i>.reset per request)
 *   (none)            glibc: `free` (malloc/free)
 *   -DALLOC_PAIR      amalloc and mimalloc in one process (libamalloc-api.a and libmimalloc):
 *                     each request is served twice, by an amalloc heap and a mimalloc heap
 *                     (`heap`), or by am_malloc/am_free and mi_malloc/mi_free (`free`), the
 *                     same keys, in alternating order (amalloc first in even requests). The machine's swings (10-35% between runs, larger than
 *                     the gap measured) then hit both sides of a pair alike.
 *
 * usage: request-ALLOC MODE N REQUESTS
 * prints one line: alloc mode n requests build_us teardown_us loop_us checksum, where the
 * times are medians per request (build: allocate and fill the tree and look every key up;
 * teardown: the per-object walk of frees, or the heap's destroy/reset) and loop_us the mean
 * of the whole loop per request. request-pair prints: pair heap n requests amalloc_us
 * mimalloc_us ratio q1 q3 checksum: the medians of each side's request time (build and
 * teardown) and of the pairs' ratios mimalloc / amalloc (above 1: amalloc faster), with their
 * quartiles.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(ALLOC_PAIR)
#include <amalloc.h>
#include <mimalloc.h>
#define ALLOC_NAME "pair"
typedef void *heap_t;
static int pair_side;                   /* 0: amalloc, 1: mimalloc */
static heap_t heap_begin(void) { return pair_side ? (void *)mi_heap_new() : (void *)am_heap_new(); }
static void *heap_alloc(heap_t h, size_t n) { return pair_side ? mi_heap_malloc(h, n) : am_heap_malloc(h, n); }
static void heap_end(heap_t h) {
  if (pair_side) mi_heap_destroy(h);
  else am_heap_destroy(h);
}
static void *plain_alloc(size_t n) { return pair_side ? mi_malloc(n) : am_malloc(n); }
static void plain_free(void *p) {
  if (pair_side) mi_free(p);
  else am_free(p);
}
#define HAVE_HEAP 1
#elif defined(ALLOC_AMALLOC)
#include <amalloc.h>
#define ALLOC_NAME "amalloc"
typedef am_heap_t *heap_t;
static heap_t heap_begin(void) { return am_heap_new(); }
static void *heap_alloc(heap_t h, size_t n) { return am_heap_malloc(h, n); }
static void heap_end(heap_t h) { am_heap_destroy(h); }
static void *plain_alloc(size_t n) { return am_malloc(n); }
static void plain_free(void *p) { am_free(p); }
#define HAVE_HEAP 1
#elif defined(ALLOC_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
typedef mi_heap_t *heap_t;
static heap_t heap_begin(void) { return mi_heap_new(); }
static void *heap_alloc(heap_t h, size_t n) { return mi_heap_malloc(h, n); }
static void heap_end(heap_t h) { mi_heap_destroy(h); }
static void *plain_alloc(size_t n) { return mi_malloc(n); }
static void plain_free(void *p) { mi_free(p); }
#define HAVE_HEAP 1
#elif defined(ALLOC_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOC_NAME "jemalloc"
typedef unsigned heap_t;
static unsigned je_arena = UINT32_MAX;
static char je_reset[64];
static heap_t heap_begin(void) {
  if (je_arena == UINT32_MAX) {
    size_t sz = sizeof(je_arena);
    if (mallctl("arenas.create", &je_arena, &sz, NULL, 0) != 0) abort();
    snprintf(je_reset, sizeof(je_reset), "arena.%u.reset", je_arena);
  }
  return je_arena;
}
static void *heap_alloc(heap_t a, size_t n) { return mallocx(n, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE); }
static void heap_end(heap_t a) {
  (void)a;
  if (mallctl(je_reset, NULL, NULL, NULL, 0) != 0) abort();
}
static void *plain_alloc(size_t n) { return malloc(n); }
static void plain_free(void *p) { free(p); }
#define HAVE_HEAP 1
#else
#define ALLOC_NAME "glibc"
typedef int heap_t;
static heap_t heap_begin(void) { return 0; }
static void *heap_alloc(heap_t h, size_t n) {
  (void)h;
  return malloc(n);
}
static void heap_end(heap_t h) { (void)h; }
static void *plain_alloc(size_t n) { return malloc(n); }
static void plain_free(void *p) { free(p); }
#define HAVE_HEAP 0
#endif

typedef struct node_s {
  uint64_t key;
  struct node_s *left, *right;
  char *payload;
  size_t len;
  uint64_t pad;
} node_t;
_Static_assert(sizeof(node_t) == 48, "48-byte nodes");

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static int use_heap;
static heap_t cur;

static void *obj(size_t n) { return use_heap ? heap_alloc(cur, n) : plain_alloc(n); }

static node_t *insert(node_t *root, uint64_t key, node_t **made) {
  node_t **link = &root;
  while (*link != NULL) {
    if (key == (*link)->key) return root;
    link = key < (*link)->key ? &(*link)->left : &(*link)->right;
  }
  node_t *n = obj(sizeof(node_t));
  n->key = key;
  n->left = n->right = NULL;
  n->len = 16 + key % 65;
  n->payload = obj(n->len);
  memset(n->payload, (int)(key & 0x7F), n->len);
  n->pad = 0;
  *link = n;
  *made = n;
  return root;
}

/* Frees every object of the tree, one by one (iteratively: a random BST is about 2.99 ln N
 * deep, but keep the stack flat anyway). */
static void free_tree(node_t *root, node_t **stack) {
  size_t top = 0;
  if (root != NULL) stack[top++] = root;
  while (top > 0) {
    node_t *n = stack[--top];
    if (n->left != NULL) stack[top++] = n->left;
    if (n->right != NULL) stack[top++] = n->right;
    plain_free(n->payload);
    plain_free(n);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One request (r: its number): build the tree, look every key up, drop it. Adds to *sum; sets
 * the build and teardown times. */
static void one_request(size_t n, size_t r, node_t **stack, uint64_t *sum, double *build, double *tear) {
  double t0 = now_us();
  if (use_heap) cur = heap_begin();
  node_t *root = NULL, *made = NULL;
  for (size_t i = 0; i < n; i++) root = insert(root, rng() % (n * 16), &made);
  /* look every key up once (the request's work on its objects) */
  rng_state ^= r;
  for (size_t i = 0; i < n; i++) {
    uint64_t key = rng() % (n * 16);
    for (node_t *p = root; p != NULL; p = key < p->key ? p->left : p->right)
      if (p->key == key) {
        *sum += (uint8_t)p->payload[p->len - 1];
        break;
      }
  }
  double t1 = now_us();
  if (use_heap) heap_end(cur);
  else free_tree(root, stack);
  double t2 = now_us();
  *build = t1 - t0;
  *tear = t2 - t1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s free|heap N REQUESTS\n", argv[0]);
    return 2;
  }
  use_heap = strcmp(argv[1], "heap") == 0;
  if (use_heap && !HAVE_HEAP) {
    fprintf(stderr, "%s: no heaps for %s\n", argv[0], ALLOC_NAME);
    return 77;
  }
  size_t n = strtoul(argv[2], NULL, 10), requests = strtoul(argv[3], NULL, 10);
  double *build = calloc(requests, sizeof(double)), *tear = calloc(requests, sizeof(double));
  node_t **stack = calloc(n + 1, sizeof(node_t *));
  uint64_t sum = 0;
#if defined(ALLOC_PAIR)
  /* (here build[] holds amalloc's request times, build and teardown, and tear[] mimalloc's) */
  double *side[2] = {build, tear}, *ratio = calloc(requests, sizeof(double));
  for (size_t r = 0; r < requests; r++) {
    uint64_t state = rng_state, sums[2] = {0, 0}, next = 0;
    for (int k = 0; k < 2; k++) {
      pair_side = (int)(r & 1) ^ k;
      rng_state = state;                /* the same keys for both */
      double b, t;
      one_request(n, r, stack, &sums[pair_side], &b, &t);
      side[pair_side][r] = b + t;
      next = rng_state;
    }
    rng_state = next;
    if (sums[0] != sums[1]) {
      fprintf(stderr, "%s: request %zu: checksums differ\n", argv[0], r);
      return 1;
    }
    sum += sums[0];
    ratio[r] = side[1][r] / side[0][r];
  }
  qsort(build, requests, sizeof(double), cmp_double);
  qsort(tear, requests, sizeof(double), cmp_double);
  qsort(ratio, requests, sizeof(double), cmp_double);
  printf("%s\t%s\t%zu\t%zu\t%.1f\t%.1f\t%.3f\t%.3f\t%.3f\t%llu\n", ALLOC_NAME, argv[1], n, requests,
         build[requests / 2], tear[requests / 2], ratio[requests / 2], ratio[requests / 4],
         ratio[requests * 3 / 4], (unsigned long long)sum);
#else
  double loop0 = now_us();
  for (size_t r = 0; r < requests; r++) one_request(n, r, stack, &sum, &build[r], &tear[r]);
  double loop = (now_us() - loop0) / (double)requests;
  qsort(build, requests, sizeof(double), cmp_double);
  qsort(tear, requests, sizeof(double), cmp_double);
  printf("%s\t%s\t%zu\t%zu\t%.1f\t%.1f\t%.1f\t%llu\n", ALLOC_NAME, argv[1], n, requests, build[requests / 2],
         tear[requests / 2], loop, (unsigned long long)sum);
#endif
  return 0;
}
