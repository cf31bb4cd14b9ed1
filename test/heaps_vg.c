/* heaps_vg.c -- programs for test/heaps-valgrind.sh: memcheck over amalloc's valgrind build
 * (-Dvalgrind=true) sees the blocks of a first-class heap as allocated, and every block a
 * destroy (or reset) frees as freed.
 *   heaps_vg uaf-destroy   read and write a block of a destroyed heap (small and large)
 *   heaps_vg uaf-reset     the same after a reset
 *   heaps_vg clean         correct use of the am_heap_* API: memcheck must report nothing
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct am_heap_s am_heap_t;
static volatile char sink;

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "clean";
  am_heap_t *(*heap_new)(void) = (am_heap_t * (*)(void)) dlsym(RTLD_DEFAULT, "am_heap_new");
  void *(*heap_malloc)(am_heap_t *, size_t) = (void *(*)(am_heap_t *, size_t))dlsym(RTLD_DEFAULT, "am_heap_malloc");
  void *(*heap_realloc)(am_heap_t *, void *, size_t) =
      (void *(*)(am_heap_t *, void *, size_t))dlsym(RTLD_DEFAULT, "am_heap_realloc");
  void (*heap_destroy)(am_heap_t *) = (void (*)(am_heap_t *))dlsym(RTLD_DEFAULT, "am_heap_destroy");
  void (*heap_reset)(am_heap_t *) = (void (*)(am_heap_t *))dlsym(RTLD_DEFAULT, "am_heap_reset");
  if (!heap_new || !heap_malloc || !heap_realloc || !heap_destroy || !heap_reset) return 77;
  am_heap_t *h = heap_new();
  char *small = heap_malloc(h, 100), *large = heap_malloc(h, 1 << 20);
  memset(small, 1, 100);
  memset(large, 1, 1 << 20);
  if (!strcmp(what, "uaf-destroy") || !strcmp(what, "uaf-reset")) {
    if (!strcmp(what, "uaf-destroy")) heap_destroy(h);
    else heap_reset(h);
    sink = small[50];
    small[60] = 2;
    return 0;
  }
  /* clean */
  for (int i = 0; i < 1000; i++) {
    char *p = heap_malloc(h, 16 + (size_t)i);
    memset(p, 2, 16 + (size_t)i);
    if (i % 3 == 0) free(p);
  }
  small = heap_realloc(h, small, 3000);
  sink = small[99];
  heap_reset(h);
  char *again = heap_malloc(h, 100);
  memset(again, 3, 100);
  heap_destroy(h);
  return 0;
}
