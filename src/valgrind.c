/* valgrind.c -- the am_* allocation API for valgrind builds (meson -Dvalgrind=true).
 *
 * Each function calls the allocator (am_*_core) and tells memcheck what happened with client
 * requests: a block handed out is MALLOCLIKE (its usable size: what malloc_usable_size
 * promises is writable), a block freed is FREELIKE, so memcheck reports reads and writes of
 * freed blocks, accesses past the end of a block, and blocks never freed ("definitely lost"),
 * with the stacks of the malloc and the free, as it does for glibc's malloc.
 *
 * The allocator keeps two words in a free block (its free-list link and its double-free mark):
 * those 16 bytes stay accessible, so a use after free that touches only them is not reported.
 * realloc of a small block always moves it here (so the copy is made between blocks memcheck
 * knows); everything else is the default build's code.
 */
#undef am_malloc
#undef am_calloc
#undef am_realloc
#undef am_free
#undef am_posix_memalign
#undef am_aligned_alloc
#undef am_memalign
#undef am_valloc
#undef am_pvalloc
#undef am_malloc_usable_size

#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

static void *am_vg_alloced(void *p) {
  if (p != NULL) VALGRIND_MALLOCLIKE_BLOCK(p, am_malloc_usable_size_core(p), 0, 0);
  return p;
}

static void am_vg_free(void *p) {
  if (p == NULL) return;
  (void)am_malloc_usable_size_core(p);         /* the checks, before memcheck forgets p */
  VALGRIND_FREELIKE_BLOCK(p, 0);
  VALGRIND_MAKE_MEM_DEFINED(p, 2 * sizeof(void *));   /* the free block's two words */
}

AM_EXPORT void *am_malloc(size_t size) { return am_vg_alloced(am_malloc_core(size)); }

AM_EXPORT void *am_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = am_vg_alloced(am_malloc_core(total));
  if (p != NULL) memset(p, 0, total);
  return p;
}

AM_EXPORT void am_free(void *p) {
  am_vg_free(p);
  am_free_core(p);
}

AM_EXPORT size_t am_malloc_usable_size(const void *p) { return am_malloc_usable_size_core(p); }

AM_EXPORT void *am_realloc(void *p, size_t size) {
  if (p == NULL) return am_malloc(size);
  if (size == 0) {
    am_free(p);
    return NULL;
  }
  size_t old = am_malloc_usable_size_core(p);
  am_segment_t *seg = am_ptr_segment(p);
  bool stays_large = seg->kind == AM_SEGMENT_LARGE &&
                     !(size <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD) && size < old / 2);
  if (stays_large) {
    /* mremap moves the pages (memcheck follows mremap); re-register the block */
    void *q = am_realloc_core(p, size);
    if (q == NULL) return NULL;
    VALGRIND_FREELIKE_BLOCK(p, 0);
    VALGRIND_MALLOCLIKE_BLOCK(q, am_malloc_usable_size_core(q), 0, 0);
    VALGRIND_MAKE_MEM_DEFINED(q, old < size ? old : size);
    return q;
  }
  void *q = am_malloc(size);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  am_free(p);
  return q;
}

AM_EXPORT int am_posix_memalign(void **out, size_t align, size_t size) {
  int r = am_posix_memalign_core(out, align, size);
  if (r == 0) am_vg_alloced(*out);
  return r;
}
AM_EXPORT void *am_aligned_alloc(size_t align, size_t size) { return am_vg_alloced(am_aligned_alloc_core(align, size)); }
AM_EXPORT void *am_memalign(size_t align, size_t size) { return am_vg_alloced(am_memalign_core(align, size)); }
AM_EXPORT void *am_valloc(size_t size) { return am_vg_alloced(am_valloc_core(size)); }
AM_EXPORT void *am_pvalloc(size_t size) { return am_vg_alloced(am_pvalloc_core(size)); }
