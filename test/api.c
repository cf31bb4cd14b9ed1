/* api.c -- the malloc API contract through the standard names (malloc, free, ...), run with
 * libamalloc linked (shared or static) or LD_PRELOADed. Also the glibc-only entry points
 * (mallopt, __libc_* aliases) and the C23 free_sized / free_aligned_sized.
 *
 * AMALLOC_TEST_EXPECT_GLIBC=1 validates the test itself against glibc's malloc.
 * AMALLOC_TEST_QUICK=1 cuts the workload (valgrind).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <malloc.h>
#include <stdlib.h>

/* C23, not in glibc 2.36's headers; weak so the test still links against glibc */
extern void free_sized(void *ptr, size_t size) __attribute__((weak));
extern void free_aligned_sized(void *ptr, size_t alignment, size_t size) __attribute__((weak));
/* glibc's internal aliases, which libamalloc must provide too */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define F(name) name
#define MI2_T struct mallinfo2
#define MI_T struct mallinfo
#define STRICT (!expect_glibc())
#define HAVE_FREE_SIZED (free_sized != NULL && free_aligned_sized != NULL)

#include "api_body.h"

static void test_free_sized_present(void) {
  if (expect_glibc()) return;
  /* amalloc provides the C23 functions */
  CHECK(free_sized != NULL);
  CHECK(free_aligned_sized != NULL);
}

static void test_libc_aliases(void) {
  size_t ps = page_size();
  void *p = __libc_malloc(100);
  CHECK(p != NULL);
  if (p) {
    CHECK_GE(malloc_usable_size(p), 100);
    memset(p, 1, 100);
  }
  free(p); /* __libc_malloc'd memory goes to free */
  p = malloc(200);
  CHECK(p != NULL);
  if (p) memset(p, 2, 200);
  __libc_free(p); /* and malloc'd to __libc_free */
  p = __libc_calloc(100, 10);
  CHECK(p != NULL);
  if (p) CHECK(all_bytes(p, 1000, 0));
  void *q = __libc_realloc(p, 100000);
  CHECK(q != NULL);
  if (q) {
    CHECK(all_bytes(q, 1000, 0));
    p = q;
  }
  q = realloc(p, 10);
  CHECK(q != NULL);
  if (q) p = q;
  __libc_free(p);
  p = __libc_memalign(64, 100);
  CHECK(p != NULL);
  CHECK_ALIGNED(p, 64);
  free(p);
  p = __libc_memalign(1 << 20, 100);
  CHECK(p != NULL);
  CHECK_ALIGNED(p, 1 << 20);
  __libc_free(p);
  p = __libc_valloc(100);
  CHECK(p != NULL);
  CHECK_ALIGNED(p, ps);
  if (p) memset(p, 3, 100);
  free(p);
  p = __libc_pvalloc(100);
  CHECK(p != NULL);
  CHECK_ALIGNED(p, ps);
  if (p) {
    CHECK_GE(malloc_usable_size(p), ps);
    memset(p, 3, ps);
  }
  __libc_free(p);
  __libc_free(NULL);
  p = __libc_realloc(NULL, 10);
  CHECK(p != NULL);
  __libc_free(p);
}

static void test_mallopt(void) {
  CHECK_EQ(mallopt(M_ARENA_MAX, 1), 1);
  void *p = malloc(100); /* still works */
  CHECK(p != NULL);
  free(p);
}

int main(void) {
  test_init("api");
  CHECK_AMALLOC_ACTIVE();
  if (!expect_glibc() && am_version) CHECK(am_version() > 0);
  test_free_sized_present();
  run_api_body();
  test_libc_aliases();
  test_mallopt();
  return test_summary();
}
