/* heaps_secure.c -- first-class heaps in the secure build (issue 16), run with
 * LD_PRELOAD=libamalloc-secure.so: a destroy checks the canary of every live block of the heap
 * and the blocks of the heap in the quarantine before it releases them; correct use is silent;
 * both checks also in blocks of the dense classes (8-byte aligned).
 *
 * usage: heaps_secure
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <malloc.h>
#include <pthread.h>

typedef struct am_heap_s am_heap_t;
typedef am_heap_t *(*new_fn)(void);
typedef void *(*malloc_fn)(am_heap_t *, size_t);
typedef void (*destroy_fn)(am_heap_t *);
typedef am_heap_t *(*default_fn)(am_heap_t *);
static new_fn heap_new;
static malloc_fn heap_malloc;
static destroy_fn heap_destroy, heap_reset;
static default_fn heap_default;

/* arg: the request (40: a 48-byte block; 32: a block of the dense 40-byte class, 8-byte
 * aligned in every other slot) */
static void overflow_live(void *arg) {
  size_t n = (size_t)(uintptr_t)arg;
  am_heap_t *h = heap_new();
  for (int i = 0; i < 101; i++) heap_malloc(h, n);
  char *p = heap_malloc(h, n);
  fprintf(stderr, "%p\n", (void *)p);
  p[n] = 'x';                               /* the canary (n + 8 bytes in the block) */
  heap_destroy(h);
}
static void write_quarantined(void *arg) {
  size_t n = (size_t)(uintptr_t)arg;
  am_heap_t *h = heap_new();
  for (int i = 0; i < 11; i++) heap_malloc(h, n);
  char *p = heap_malloc(h, n);
  free(p);                                  /* into this thread's quarantine */
  fprintf(stderr, "%p\n", (void *)p);
  p[20] = 'x';                              /* write after free */
  heap_reset(h);
}
static void *free_remote(void *p) {
  free(p);
  return NULL;
}

static void expect(const char *name, void (*fn)(void *), size_t n, const char *what) {
  char err[1024];
  int status = test_in_child(fn, (void *)(uintptr_t)n, err, sizeof(err));
  char *nl = strchr(err, '\n');
  char want[256] = "";
  if (nl != NULL) {
    *nl = 0;
    snprintf(want, sizeof(want), "amalloc: error: %s (pointer %s)\n", what, err);
  }
  bool ok = test_died_of(status, SIGABRT) && nl != NULL && strncmp(nl + 1, want, strlen(want)) == 0;
  CHECK(ok);
  if (!ok) test_note("%s: status %d, want %s got %s", name, status, want, nl ? nl + 1 : err);
}

int main(void) {
  test_init("heaps_secure");
  heap_new = (new_fn)dlsym(RTLD_DEFAULT, "am_heap_new");
  heap_malloc = (malloc_fn)dlsym(RTLD_DEFAULT, "am_heap_malloc");
  heap_destroy = (destroy_fn)dlsym(RTLD_DEFAULT, "am_heap_destroy");
  heap_reset = (destroy_fn)dlsym(RTLD_DEFAULT, "am_heap_reset");
  heap_default = (default_fn)dlsym(RTLD_DEFAULT, "am_heap_set_default");
  CHECK(heap_new && heap_malloc && heap_destroy && heap_reset && heap_default);
  if (!heap_new || !heap_malloc || !heap_destroy || !heap_reset || !heap_default) return test_summary();

  /* correct use, silent: blocks freed by the owner (quarantined), by another thread (not), kept
   * live, the heap the default; then destroyed */
  for (int round = 0; round < 50; round++) {
    am_heap_t *h = heap_new();
    void *b[300];
    for (int i = 0; i < 300; i++) {
      b[i] = heap_malloc(h, 16 + (size_t)i * 8);
      memset(b[i], 1, 16 + (size_t)i * 8);
    }
    for (int i = 0; i < 100; i++) free(b[i]);
    pthread_t t;
    pthread_create(&t, NULL, free_remote, b[100]);
    pthread_join(t, NULL);
    heap_default(h);
    void *m = malloc(77);
    free(m);
    free(malloc(5000));
    heap_default(NULL);
    if (round % 2) heap_reset(h);
    heap_destroy(h);
  }
  /* the other thread's free of a block of a destroyed heap's quarantine neighbours still works */
  void *x = malloc(50);
  free(x);

  /* the secure build has the dense classes too: 32 bytes + the canary in a 40-byte block */
  am_heap_t *hd = heap_new();
  void *d = heap_malloc(hd, 32);
  CHECK_EQ(malloc_usable_size(d), 32);
  heap_destroy(hd);
  expect("overflow of a live block", overflow_live, 40, "am_heap_destroy: heap overflow past the end of a block");
  expect("write to a quarantined block", write_quarantined, 100, "am_heap_reset: write to a freed block");
  /* the same in blocks of the dense 40-byte class (32 + the 8-byte canary) */
  expect("overflow of a live dense block", overflow_live, 32, "am_heap_destroy: heap overflow past the end of a block");
  expect("write to a quarantined dense block", write_quarantined, 32, "am_heap_reset: write to a freed block");
  return test_summary();
}
