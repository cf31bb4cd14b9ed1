/* compose.c -- the API functions that are only checks around another API function:
 * free_sized and free_aligned_sized (their size checks, then am_free) and reallocarray (an
 * overflow check, then am_realloc).
 *
 * Included after valgrind.c / secure.c, so in those builds am_free and am_realloc here are the
 * wrapped API (blocks reported to valgrind, canaries and quarantine), and in the default build
 * the allocator's own; the size checks come from alloc.c, or secure.c's own in the secure build.
 */
#include "internal.h"

AM_EXPORT void am_free_sized(void *p, size_t size) {
  if (p == NULL) return;
  _am_free_sized_check(p, size, "free_sized");
  am_free(p);
}

AM_EXPORT void am_free_aligned_sized(void *p, size_t alignment, size_t size) {
  if (p == NULL) return;
  _am_free_aligned_sized_check(p, alignment, size, "free_aligned_sized");
  am_free(p);
}

AM_EXPORT void *am_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (am_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  return am_realloc(p, total);
}
