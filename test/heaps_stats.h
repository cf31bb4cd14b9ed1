/* heaps_stats.h -- a first-class heap's statistics for the heaps tests (heaps.c, heaps_cxx.cc);
 * include after test.h and amalloc.h. */
#ifndef AM_TEST_HEAPS_STATS_H
#define AM_TEST_HEAPS_STATS_H

static am_heap_stats_t hstats(am_heap_t *h) {
  am_heap_stats_t st;
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  CHECK_EQ(am_heap_stats(h, &st), 0);
  return st;
}

#endif
