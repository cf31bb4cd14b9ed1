/* sizeclass.c -- the size-class scheme of doc/size-classes.md, checked through the am_* API.
 *
 * For every request size from 1 byte to 256 KiB (the largest class): the usable size is at
 * least the request, the block is 16-byte aligned (8 for requests under 16), the internal
 * waste (usable - request) / usable is at most 11.2% above 128 bytes and at most 25% above 48
 * bytes (at most 15 bytes below), there are at least 8 classes per doubling, and the usable
 * size never shrinks as the request grows. Above 256 KiB, a block's usable size is the request
 * rounded up to whole pages.
 */
#include "test.h"

#include <amalloc.h>

int main(void) {
  test_init("sizeclass");
  const size_t max_class = 256 * 1024;
  size_t prev_usable = 0, classes = 0, worst_above_128 = 0;
  double worst_pct_above_128 = 0, worst_pct_above_48 = 0;
  size_t classes_per_doubling[20] = {0};
  for (size_t size = 1; size <= max_class; size++) {
    void *p = am_malloc(size);
    if (!CHECK(p != NULL)) break;
    size_t usable = am_malloc_usable_size(p);
    if (!CHECK_GE(usable, size)) fprintf(stderr, "  size %zu\n", size);
    CHECK_ALIGNED(p, size < 16 ? 8 : 16);
    double waste = (double)(usable - size) / (double)usable;
    if (size > 128 && waste > worst_pct_above_128) {
      worst_pct_above_128 = waste;
      worst_above_128 = size;
    }
    if (size > 48 && waste > worst_pct_above_48) worst_pct_above_48 = waste;
    if (size <= 48 && !CHECK(usable - size <= 15)) fprintf(stderr, "  size %zu\n", size);
    if (!CHECK(usable >= prev_usable)) fprintf(stderr, "  size %zu\n", size);
    if (usable != prev_usable) {
      classes++;
      if (usable > 128) classes_per_doubling[63 - __builtin_clzl(usable - 1)]++;
      prev_usable = usable;
    }
    am_free(p);
  }
  printf("sizeclass: %zu classes up to %zu bytes; worst waste above 128 B: %.1f%% (request %zu), "
         "above 48 B: %.1f%%\n",
         classes, max_class, 100 * worst_pct_above_128, worst_above_128, 100 * worst_pct_above_48);
  CHECK(worst_pct_above_128 <= 0.112);
  CHECK(worst_pct_above_48 <= 0.25);
  for (int e = 7; e < 18; e++) {
    if (!CHECK_GE(classes_per_doubling[e], 8)) fprintf(stderr, "  doubling 2^%d\n", e);
  }
  long page = sysconf(_SC_PAGESIZE);
  for (size_t size = max_class + 1; size < max_class + 3 * (size_t)page * 17; size += 4093) {
    void *p = am_malloc(size);
    if (!CHECK(p != NULL)) break;
    size_t usable = am_malloc_usable_size(p);
    CHECK(usable >= size && usable < size + (size_t)page);
    am_free(p);
  }
  return test_summary();
}
