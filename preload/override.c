/* override.c -- the glibc malloc API and the C++ operators, as amalloc.
 *
 * Included at the end of src/unity.c when AM_OVERRIDE is 1 (libamalloc.so, libamalloc.a).
 * The C names are aliases of the am_* functions (the same code, no extra call): with
 * LD_PRELOAD, or when a program links libamalloc, every caller in the process -- the program,
 * libc itself, libstdc++ -- binds to these. The __libc_* names are defined too, so a static
 * link never pulls glibc's malloc.o (which would clash), and code that calls glibc's internal
 * names gets amalloc as well.
 *
 * C++: operator new must call the new-handler and throw std::bad_alloc when it fails. This is
 * C, so it reaches libstdc++ through weak references: std::get_new_handler() and
 * std::__throw_bad_alloc(). They resolve when libstdc++ is in the process (every C++ program);
 * without it a failing operator new cannot throw, and aborts with a message.
 */
#include <stddef.h>
#include <stdint.h>

/* Several C++ names alias a C function with fewer parameters (delete's size, alignment or
 * nothrow tag are ignored or checked elsewhere); that is ABI-compatible on every Linux target. */
#pragma GCC diagnostic ignored "-Wattribute-alias"
#pragma GCC diagnostic ignored "-Wmissing-attributes"

#define AM_ALIAS(name) __attribute__((alias(#name), visibility("default"), used))

/* ---- C ---------------------------------------------------------------------------------- */
void *malloc(size_t size) AM_ALIAS(am_malloc);
void *calloc(size_t count, size_t size) AM_ALIAS(am_calloc);
void *realloc(void *p, size_t size) AM_ALIAS(am_realloc);
void *reallocarray(void *p, size_t count, size_t size) AM_ALIAS(am_reallocarray);
void free(void *p) AM_ALIAS(am_free);
void cfree(void *p) AM_ALIAS(am_free);
void free_sized(void *p, size_t size) AM_ALIAS(am_free_sized);
void free_aligned_sized(void *p, size_t alignment, size_t size) AM_ALIAS(am_free_aligned_sized);
int posix_memalign(void **out, size_t alignment, size_t size) AM_ALIAS(am_posix_memalign);
void *aligned_alloc(size_t alignment, size_t size) AM_ALIAS(am_aligned_alloc);
void *memalign(size_t alignment, size_t size) AM_ALIAS(am_memalign);
void *valloc(size_t size) AM_ALIAS(am_valloc);
void *pvalloc(size_t size) AM_ALIAS(am_pvalloc);
size_t malloc_usable_size(void *p) AM_ALIAS(am_malloc_usable_size);
struct am_mallinfo2 mallinfo2(void) AM_ALIAS(am_mallinfo2);
struct am_mallinfo mallinfo(void) AM_ALIAS(am_mallinfo);
int malloc_trim(size_t pad) AM_ALIAS(am_malloc_trim);
void malloc_stats(void) AM_ALIAS(am_malloc_stats);
int malloc_info(int options, FILE *stream) AM_ALIAS(am_malloc_info);
int mallopt(int param, int value) AM_ALIAS(am_mallopt);

/* glibc's internal names */
void *__libc_malloc(size_t size) AM_ALIAS(am_malloc);
void *__libc_calloc(size_t count, size_t size) AM_ALIAS(am_calloc);
void *__libc_realloc(void *p, size_t size) AM_ALIAS(am_realloc);
void __libc_free(void *p) AM_ALIAS(am_free);
void __libc_cfree(void *p) AM_ALIAS(am_free);
void *__libc_memalign(size_t alignment, size_t size) AM_ALIAS(am_memalign);
void *__libc_valloc(size_t size) AM_ALIAS(am_valloc);
void *__libc_pvalloc(size_t size) AM_ALIAS(am_pvalloc);
int __posix_memalign(void **out, size_t alignment, size_t size) AM_ALIAS(am_posix_memalign);
struct am_mallinfo2 __libc_mallinfo2(void) AM_ALIAS(am_mallinfo2);
struct am_mallinfo __libc_mallinfo(void) AM_ALIAS(am_mallinfo);
int __libc_mallopt(int param, int value) AM_ALIAS(am_mallopt);

/* ---- C++ -------------------------------------------------------------------------------- */

typedef void (*am_new_handler_t)(void);
extern am_new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));  /* std::get_new_handler() */
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));  /* std::__throw_bad_alloc() */

/* operator new failed: call the new-handler until it gives up, then throw. */
static am_noinline void *am_new_retry(size_t size, size_t align, bool nothrow) {
  for (;;) {
    am_new_handler_t handler = _ZSt15get_new_handlerv != NULL ? _ZSt15get_new_handlerv() : NULL;
    if (handler == NULL) break;
    handler();                              /* may throw; unwinds through this C frame */
    void *p = align <= 16 ? am_malloc(size) : am_aligned_alloc(align, size);
    if (p != NULL) return p;
  }
  if (nothrow) return NULL;
  if (_ZSt17__throw_bad_allocv != NULL) _ZSt17__throw_bad_allocv();
  _am_fatal("operator new: out of memory, and no C++ runtime in the process to throw std::bad_alloc", NULL);
}

/* nothrow new: the same loop over the new-handler, then NULL. (The standard also has it catch
 * a std::bad_alloc that the handler throws; C cannot catch, so such an exception propagates.) */
static am_noinline void *am_new_nothrow_failed(size_t size, size_t align) {
  return am_new_retry(size, align, true);
}

AM_EXPORT void *_Znwm(size_t size) {
  void *p = am_malloc(size);
  if (am_unlikely(p == NULL)) return am_new_retry(size, 0, false);
  return p;
}
AM_EXPORT void *_Znam(size_t size) __attribute__((alias("_Znwm")));

AM_EXPORT void *_ZnwmSt11align_val_t(size_t size, size_t align) {
  void *p = am_is_pow2(align) ? am_aligned_alloc(align, size) : NULL;
  if (am_unlikely(p == NULL)) return am_new_retry(size, am_is_pow2(align) ? align : 16, false);
  return p;
}
AM_EXPORT void *_ZnamSt11align_val_t(size_t size, size_t align)
    __attribute__((alias("_ZnwmSt11align_val_t")));

AM_EXPORT void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag) {
  (void)tag;
  void *p = am_malloc(size);
  if (am_unlikely(p == NULL)) return am_new_nothrow_failed(size, 0);
  return p;
}
AM_EXPORT void *_ZnamRKSt9nothrow_t(size_t size, const void *tag)
    __attribute__((alias("_ZnwmRKSt9nothrow_t")));

AM_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag) {
  (void)tag;
  void *p = am_is_pow2(align) ? am_aligned_alloc(align, size) : NULL;
  if (am_unlikely(p == NULL)) return am_new_nothrow_failed(size, align);
  return p;
}
AM_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag)
    __attribute__((alias("_ZnwmSt11align_val_tRKSt9nothrow_t")));

/* delete: plain, array, nothrow, aligned -> free; sized -> checked against the block */
void _ZdlPv(void *p) AM_ALIAS(am_free);
void _ZdaPv(void *p) AM_ALIAS(am_free);
void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) AM_ALIAS(am_free);
void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) AM_ALIAS(am_free);
void _ZdlPvSt11align_val_t(void *p, size_t align) AM_ALIAS(am_free);
void _ZdaPvSt11align_val_t(void *p, size_t align) AM_ALIAS(am_free);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) AM_ALIAS(am_free);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) AM_ALIAS(am_free);
/* sized delete: the checks of free_sized, reported as free's (delete is a free) */
AM_EXPORT void _ZdlPvm(void *p, size_t size) {
  if (p == NULL) return;
  _am_free_sized_check(p, size, "free");
  am_free(p);
}
AM_EXPORT void _ZdaPvm(void *p, size_t size) __attribute__((alias("_ZdlPvm")));

AM_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align) {
  if (p == NULL) return;
  _am_free_aligned_sized_check(p, align, size, "free");
  am_free(p);
}
AM_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align)
    __attribute__((alias("_ZdlPvmSt11align_val_t")));
