/* sizeclass.c -- the size-class scheme of doc/size-classes.md, checked through the am_* API.
 *
 * For every request size from 1 byte to 256 KiB (the largest class): the usable size is at
 * least the request, the block is 16-byte aligned (every size, also under 16: the README's
 * "16 bytes for every block"), the internal waste (usable - request) / usable is at most 11.1%
 * above 128 bytes (1/9: 2^e + 1 in 9/8 * 2^e) and at most 23.4% above 48 bytes (15/64: 49 in
 * 64), at most 15 bytes below; there are exactly 96 classes (the distinct usable sizes, and
 * am_stats_get's table, which must list the same sizes: 16..128 by 16, then 8 per doubling),
 * exactly 8 per doubling above 128 bytes, and the usable size never shrinks as the request
 * grows. Above 256 KiB, a block's usable size is the request rounded up to whole pages.
 * am_stats_get's table ends with the three dense classes of first-class heaps (24, 40, 56),
 * which malloc never uses (test/heaps.c checks am_heap_malloc's use of them).
 */
#include "test.h"

#include <amalloc.h>

int main(void) {
  test_init("sizeclass");
  const size_t max_class = 256 * 1024;
  size_t prev_usable = 0, classes = 0, worst_above_128 = 0;
  double worst_pct_above_128 = 0, worst_pct_above_48 = 0;
  size_t classes_per_doubling[20] = {0};
  static size_t seen[AM_STATS_CLASSES + 8];    /* the distinct usable sizes, in order */
  for (size_t size = 1; size <= max_class; size++) {
    void *p = am_malloc(size);
    if (!CHECK(p != NULL)) break;
    size_t usable = am_malloc_usable_size(p);
    if (!CHECK_GE(usable, size)) fprintf(stderr, "  size %zu\n", size);
    if (!CHECK_ALIGNED(p, 16)) fprintf(stderr, "  size %zu\n", size);
    double waste = (double)(usable - size) / (double)usable;
    if (size > 128 && waste > worst_pct_above_128) {
      worst_pct_above_128 = waste;
      worst_above_128 = size;
    }
    if (size > 48 && waste > worst_pct_above_48) worst_pct_above_48 = waste;
    if (size <= 48 && !CHECK(usable - size <= 15)) fprintf(stderr, "  size %zu\n", size);
    if (!CHECK(usable >= prev_usable)) fprintf(stderr, "  size %zu\n", size);
    if (usable != prev_usable) {
      if (classes < sizeof seen / sizeof seen[0]) seen[classes] = usable;
      classes++;
      if (usable > 128) classes_per_doubling[63 - __builtin_clzl(usable - 1)]++;
      prev_usable = usable;
    }
    am_free(p);
  }
  printf("sizeclass: %zu classes up to %zu bytes; worst waste above 128 B: %.1f%% (request %zu), "
         "above 48 B: %.1f%%\n",
         classes, max_class, 100 * worst_pct_above_128, worst_above_128, 100 * worst_pct_above_48);
  CHECK(worst_pct_above_128 <= 1.0 / 9 + 1e-9);      /* "11.1%" */
  CHECK(worst_pct_above_48 <= 15.0 / 64 + 1e-9);     /* "23.4%" */
  CHECK_EQ(classes, 96);
  for (int e = 7; e < 18; e++) {
    if (!CHECK_EQ(classes_per_doubling[e], 8)) fprintf(stderr, "  doubling 2^%d\n", e);
  }
  /* am_stats_get lists the same 96 classes, and they are the documented sizes; then the 3
   * dense ones */
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  CHECK_EQ(AM_STATS_CLASSES, 99);
  for (size_t c = 0; c < AM_STATS_CLASSES; c++) {
    size_t want;
    if (c >= 96) {
      want = 24 + (c - 96) * 16;
    } else if (c < 8) {
      want = 16 * (c + 1);
    } else {
      size_t e = 7 + (c - 8) / 8, k = (c - 8) % 8;      /* (9 + k) / 8 * 2^e */
      want = ((size_t)1 << e) / 8 * (9 + k);
    }
    if (!CHECK_EQ(st.classes[c].block_size, want)) fprintf(stderr, "  class %zu\n", c);
    if (c < classes && !CHECK_EQ(seen[c], want)) fprintf(stderr, "  usable size of class %zu\n", c);
  }
  CHECK_EQ(st.classes[95].block_size, max_class);
  /* a program built against version 7's header (96 classes) still gets its statistics */
  am_stats_t old;
  memset(&old, 0x5A, sizeof old);
  old.size = offsetof(am_stats_t, classes) + 96 * sizeof(am_class_stats_t);
  CHECK_EQ(am_stats_get(&old), 0);
  CHECK_EQ(old.size, offsetof(am_stats_t, classes) + 96 * sizeof(am_class_stats_t));
  CHECK_EQ(old.classes[95].block_size, max_class);
  CHECK_EQ(old.classes[96].block_size, 0x5A5A5A5A5A5A5A5Aull);   /* (beyond it: untouched) */
  old.size -= 1;
  CHECK_EQ(am_stats_get(&old), EINVAL);
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
