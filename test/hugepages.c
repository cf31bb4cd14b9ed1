/* hugepages.c -- purging with huge pages (issue 13, defect 15).
 *
 *   hugepages thp       (AMALLOC_THP=1 AMALLOC_PURGE_DELAY_MS=0) a segment's lower 2 MiB half
 *                       (the one with the header) is purged when all its slots are free: fill
 *                       it with blocks, keep one block in the upper half, free the rest; the
 *                       purged bytes and the RSS must show the lower half gone. Small and
 *                       medium segments. (Before: only the upper half was ever purged.)
 *   hugepages thp-both  (the same options) a live block in each half: the segment's free slots
 *                       must not stay counted dirty (purge passes would run for ever).
 *   hugepages hugetlb   (AMALLOC_HUGETLB=1, huge pages reserved: test/hugepages-hugetlb.sh) a
 *                       hugetlb segment's free slots are never purged, so they must not count
 *                       as dirty: after the frees am_stats' dirty_segments is 0 again. (Before:
 *                       it stayed above 0, and a purge pass ran every few ms for ever.)
 *
 * Linked with libamalloc-api.a (the am_* API beside glibc's malloc).
 */
#include "test.h"

#include <amalloc.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define SEGMENT ((uintptr_t)4 << 20)

static am_stats_t stats(void) {
  am_stats_t st;
  st.size = sizeof st;
  CHECK_EQ(am_stats_get(&st), 0);
  CHECK_EQ(st.version, AM_STATS_VERSION);
  return st;
}

/* Blocks of `size` bytes (touched) until one lands in the upper half of the first block's
 * segment; that one stays, the others are freed. */
static void thp_case(size_t size) {
  enum { MAX = 4096 };
  static char *blocks[MAX];
  size_t n = 0;
  uintptr_t seg = 0;
  char *keep = NULL;
  while (n < MAX) {
    char *p = am_malloc(size);
    if (!CHECK(p != NULL)) return;
    memset(p, 1, size);
    if (seg == 0) seg = (uintptr_t)p & ~(SEGMENT - 1);
    if ((uintptr_t)p - seg >= SEGMENT / 2 && (uintptr_t)p - seg < SEGMENT) {
      keep = p;
      break;
    }
    blocks[n++] = p;
  }
  if (!CHECK(keep != NULL)) return;
  size_t lower = 0;                     /* blocks in the lower half of that segment */
  for (size_t i = 0; i < n; i++) lower += (uintptr_t)blocks[i] - seg < SEGMENT / 2;
  /* RSS from smaps_rollup, which walks the page tables: statm's count (am_stats_t resident)
   * is a per-CPU counter that may lag (the suite saw "RSS 0 KiB less" once, under load) */
  am_stats_t before = stats();
  long rss_before = (long)smaps_kib("Rss") * (long)KiB;
  for (size_t i = 0; i < n; i++) am_free(blocks[i]);
  am_stats_t after = stats();
  long rss_after = (long)smaps_kib("Rss") * (long)KiB;
  size_t purged = after.purged_bytes - before.purged_bytes;
  long drop = rss_before - rss_after;
  printf("thp: %zu-byte blocks: %zu in the lower half freed (one kept above): purged %zu KiB, "
         "RSS %ld KiB less\n", size, lower, purged / KiB, drop / (long)KiB);
  CHECK_GE(lower * size, MiB);          /* the lower half was filled */
  /* the lower half less the header (at most a few pages) */
  if (!CHECK_GE(purged, 2 * MiB - 64 * KiB) || !CHECK_GE(drop, (long)(3 * MiB / 2)))
    fprintf(stderr, "thp: %zu-byte blocks: the lower half was not purged\n", size);
  am_free(keep);
}

static void test_thp(void) {
  CHECK_EQ(am_option_get(AM_OPTION_THP), 1);
  CHECK_EQ(am_option_get(AM_OPTION_PURGE_DELAY_MS), 0);
  thp_case(4096);                       /* small segments: 64 slots of 64 KiB */
  thp_case(100 * 1000);                 /* medium segments: 4 slots of 1 MiB */
  CHECK_GE(stats().thp_segments, 2);
}

/* A THP segment with a live block in each half: neither half can be purged whole, so its free
 * slots must not stay counted as dirty (a purge pass would run every few ms for as long as the
 * two blocks live, as for hugetlb); once a half empties, it is purged. */
static void test_thp_both(void) {
  CHECK_EQ(am_option_get(AM_OPTION_THP), 1);
  enum { MAX = 4096 };
  static char *blocks[MAX];
  size_t n = 0, size = 4096;
  uintptr_t seg = 0;
  char *low = NULL, *high = NULL;
  while (n < MAX && high == NULL) {
    char *p = am_malloc(size);
    if (!CHECK(p != NULL)) return;
    memset(p, 1, size);
    if (seg == 0) seg = (uintptr_t)p & ~(SEGMENT - 1);
    if (low == NULL && (uintptr_t)p - seg < SEGMENT / 2) low = p;
    else if ((uintptr_t)p - seg >= SEGMENT / 2 && (uintptr_t)p - seg < SEGMENT) high = p;
    else blocks[n++] = p;
  }
  if (!CHECK(low != NULL && high != NULL)) return;
  for (size_t i = 0; i < n; i++) am_free(blocks[i]);
  am_stats_t st = stats();
  printf("thp-both: one block live in each half, %zu others freed: dirty_segments %zu\n", n,
         st.dirty_segments);
  CHECK_EQ(st.dirty_segments, 0);
  am_free(high);
  am_free(low);
  CHECK_EQ(stats().dirty_segments, 0);
}

static void test_hugetlb(void) {
  CHECK_EQ(am_option_get(AM_OPTION_HUGETLB), 1);
  enum { N = 3000 };
  static char *blocks[N];
  for (size_t i = 0; i < N; i++) {
    blocks[i] = am_malloc(4096);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], 1, 4096);
  }
  am_stats_t st = stats();
  printf("hugetlb: %zu hugetlb segments of %zu\n", st.hugetlb_segments, st.segments);
  if (!CHECK_GE(st.hugetlb_segments, 1)) test_note("no hugetlb segment: are huge pages reserved?");
  for (size_t i = 1; i < N; i++) am_free(blocks[i]);   /* blocks[0] keeps a segment */
  st = stats();
  printf("hugetlb: after the frees: dirty_segments %zu\n", st.dirty_segments);
  CHECK_EQ(st.dirty_segments, 0);
  am_free(blocks[0]);
  CHECK_EQ(stats().dirty_segments, 0);
}

int main(int argc, char **argv) {
  test_init("hugepages");
  const char *which = argc > 1 ? argv[1] : "";
  if (strcmp(which, "thp") == 0) test_thp();
  else if (strcmp(which, "thp-both") == 0) test_thp_both();
  else if (strcmp(which, "hugetlb") == 0) test_hugetlb();
  else CHECK(!"usage: hugepages thp|thp-both|hugetlb");
  return test_summary();
}
