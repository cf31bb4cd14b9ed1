/* memalign_glibc.c -- memalign and __libc_memalign follow glibc's rules (issue 13, defect 14):
 *   alignment <= 16 (MALLOC_ALIGNMENT, 0 included)  -> malloc(size)
 *   alignment > SIZE_MAX / 2 + 1                    -> NULL, EINVAL
 *   otherwise not a power of two                    -> rounded up to the next power of two
 *                                                      (at least 32: glibc's MINSIZE)
 * posix_memalign and aligned_alloc keep EINVAL for an alignment that is not a power of two (as
 * POSIX and C require; glibc 2.36's aligned_alloc does not, so that one check is skipped when
 * validating against glibc).
 *
 * Not linked with amalloc: run under LD_PRELOAD (default and secure build); with
 * AMALLOC_TEST_EXPECT_GLIBC=1 it checks the same expectations against glibc's malloc.
 */
#include "test.h"

#include <malloc.h>

extern void *__libc_memalign(size_t, size_t);

static size_t expected_align(size_t a) {
  if (a <= 16) return 16;
  size_t e = 32;
  while (e < a) e <<= 1;
  return e;
}

static void check_one(void *(*fn)(size_t, size_t), const char *name, size_t align, size_t size) {
  errno = 0;
  char *p = fn(opaque_size(align), opaque_size(size));
  if (!CHECK(p != NULL)) {
    fprintf(stderr, "  %s(%zu, %zu) = NULL, errno %d\n", name, align, size, errno);
    return;
  }
  if (!CHECK_ALIGNED(p, expected_align(align)))
    fprintf(stderr, "  %s(%zu, %zu) = %p\n", name, align, size, (void *)p);
  CHECK_GE(malloc_usable_size(p), size);
  if (size > 0) {
    memset(p, 0xA5, size);
    CHECK_EQ((uint8_t)p[size - 1], 0xA5);
  }
  free(p);
}

int main(void) {
  test_init("memalign_glibc");
  CHECK_AMALLOC_ACTIVE();
  static const size_t aligns[] = {0, 1, 2, 3, 5, 8, 12, 16, 17, 24, 31, 32, 33, 48, 63, 96,
                                  100, 1000, 3000, 4095, 4097, 5000, 12288, 65537,
                                  ((size_t)1 << 20) + 1, (size_t)3 << 20, (size_t)5 << 20};
  static const size_t sizes[] = {0, 1, 100, 5000, 300000};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
      check_one(memalign, "memalign", aligns[i], sizes[j]);
      check_one(__libc_memalign, "__libc_memalign", aligns[i], sizes[j]);
    }
  }
  /* the example */
  void *p = memalign(opaque_size(24), 100);
  CHECK(p != NULL);
  CHECK_ALIGNED(p, 32);
  free(p);

  /* alignments above SIZE_MAX / 2 + 1: EINVAL */
  static const size_t bad[] = {SIZE_MAX / 2 + 2, SIZE_MAX / 2 + 3, SIZE_MAX - 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    CHECK(memalign(opaque_size(bad[i]), 1) == NULL);
    CHECK_ERRNO(EINVAL);
    errno = 0;
    CHECK(__libc_memalign(opaque_size(bad[i]), 1) == NULL);
    CHECK_ERRNO(EINVAL);
  }
  /* SIZE_MAX / 2 + 1 is a power of two, and 2^62 + 1 rounds up to it: no memory (ENOMEM) */
  static const size_t huge[] = {SIZE_MAX / 2 + 1, ((size_t)1 << 62) + 1};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    CHECK(memalign(opaque_size(huge[i]), 1) == NULL);
    CHECK_ERRNO(ENOMEM);
  }

  /* posix_memalign and aligned_alloc: not a power of two stays EINVAL */
  static const size_t npot[] = {24, 48, 100, 3000, 12288};
  for (size_t i = 0; i < sizeof npot / sizeof npot[0]; i++) {
    void *q = (void *)1;
    errno = 1234;
    CHECK_EQ(posix_memalign(&q, opaque_size(npot[i]), 100), EINVAL);
    CHECK(q == (void *)1);
    CHECK_ERRNO(1234);
    if (expect_glibc()) continue;       /* glibc 2.36: aligned_alloc is memalign */
    errno = 0;
    CHECK(aligned_alloc(opaque_size(npot[i]), 100) == NULL);
    CHECK_ERRNO(EINVAL);
  }
  if (expect_glibc()) test_note("glibc 2.36: aligned_alloc with a non-power-of-two alignment not checked");
  return test_summary();
}
