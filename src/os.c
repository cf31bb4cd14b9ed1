/* os.c -- the only file that calls mmap, munmap, madvise, mremap and mprotect.
 *
 * Contract with the rest of amalloc:
 *   - every mapping is MAP_PRIVATE | MAP_ANONYMOUS (| MAP_NORESERVE): fresh memory reads as
 *     zero and is faulted in lazily by the kernel;
 *   - failure to get memory returns NULL / false with errno = ENOMEM, never a crash;
 *   - an munmap that the kernel refuses means amalloc's own bookkeeping is wrong: that is
 *     reported and aborts.
 *
 * Placement: amalloc needs mappings aligned to 4 MiB (AM_SEGMENT_SIZE) or more. The kernel
 * places an mmap at a free hint address, so the usual cost is one mmap: we hand out hints from
 * a bump pointer in an otherwise unused part of the address space (starting at 2 TiB plus a
 * random offset). If the kernel does not honour a hint (the range is taken, or a sanitizer
 * owns that range) we fall back to mapping size + alignment and unmapping the excess, and
 * after 16 misses we stop using hints.
 */
#include "internal.h"

#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define AM_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
#define AM_HINT_BASE ((uintptr_t)2 << 40)       /* 2 TiB */
#define AM_HINT_END ((uintptr_t)64 << 40)       /* stop before 64 TiB */

/* The page size. It is read from sysconf alone: glibc's getpagesize() and sysconf both
 * return the kernel's AT_PAGESZ, and nothing else in amalloc assumes a page size (tests run
 * it with 16 and 64 KiB pages: test/pagesize). A size the segment layout is not made for is
 * refused here, at start, rather than corrupting memory later. */
static size_t am_os_page_size(void) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t page = ps > 0 ? (size_t)ps : 0;
  if (!am_is_pow2(page) || page < AM_PAGE_SIZE_MIN || page > AM_PAGE_SIZE_MAX) {
    char what[160];
    size_t len = 0;
    const char *a = "unsupported page size ", *b = " bytes (amalloc needs 4 KiB to 64 KiB pages)";
    while (*a) what[len++] = *a++;
    len += _am_fmt_size(what + len, 24, ps > 0 ? (size_t)ps : 0);
    while (*b) what[len++] = *b++;
    what[len] = 0;
    _am_fatal(what, NULL);
  }
  return page;
}

AM_INTERNAL void _am_os_init(void) {
  long ps = 0;                          /* (its address seeds the secret below) */
  am_g.page_size = am_os_page_size();
  /* AT_RANDOM: 16 random bytes the kernel gives every process (no syscall, no allocation). */
  uintptr_t secret = (uintptr_t)&ps ^ (uintptr_t)getpid() * 0x9e3779b97f4a7c15ull;
  const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
  if (r != NULL) {
    uint64_t a, b;
    memcpy(&a, r, 8);
    memcpy(&b, r + 8, 8);
    secret ^= a ^ (b << 1);
  }
  am_g.secret = secret | 1;
  am_g.free_key = (secret * 0xd6e8feb86659fd93ull) ^ (secret >> 29) ^ 0x5bd1e995u;
  am_g.canary_key = _am_mix64(secret ^ 0x243f6a8885a308d3ull);
  /* A random start below 1 TiB above the base, segment aligned. */
  uintptr_t offset = ((secret >> 7) % ((uintptr_t)1 << (40 - AM_SEGMENT_SHIFT))) << AM_SEGMENT_SHIFT;
  atomic_store_explicit(&am_g.hint, AM_HINT_BASE + offset, memory_order_relaxed);
}

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int am_map_flags(unsigned flags) {
  if (flags & AM_OS_HUGETLB)          /* no MAP_NORESERVE: the pages must exist */
    return MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT);
  return AM_MAP_FLAGS | ((flags & AM_OS_POPULATE) ? MAP_POPULATE : 0);
}

/* Fault injection (tests only): true when this mapping call must fail. */
static bool am_os_fault(void) {
  if (am_likely(!atomic_load_explicit(&am_g.fault_on, memory_order_relaxed))) return false;
  if (atomic_fetch_sub_explicit(&am_g.fault_calls, 1, memory_order_relaxed) > 0) return false;
  long left = atomic_load_explicit(&am_g.fault_left, memory_order_relaxed);
  if (left == 0) return false;
  if (left > 0 && atomic_fetch_sub_explicit(&am_g.fault_left, 1, memory_order_relaxed) <= 0) return false;
  atomic_fetch_add_explicit(&am_g.fault_count, 1, memory_order_relaxed);
  return true;
}

AM_EXPORT long am_test_os_failures(long after, long count) {
  atomic_store(&am_g.fault_on, 0);
  if (count != 0) _am_large_cache_expire(0, -1);   /* every large block then needs the OS */
  atomic_store(&am_g.fault_calls, after);
  atomic_store(&am_g.fault_left, count);
  long failed = atomic_exchange(&am_g.fault_count, 0);
  atomic_store(&am_g.fault_on, count != 0);
  return failed;
}

static void *am_mmap(void *addr, size_t size, unsigned flags) {
  if (am_os_fault()) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = mmap(addr, size, PROT_READ | PROT_WRITE, am_map_flags(flags), -1, 0);
  if (p == MAP_FAILED) {
    errno = ENOMEM;
    return NULL;
  }
  return p;
}

static void am_munmap(void *p, size_t size) {
  if (size == 0) return;
  if (munmap(p, size) != 0 && errno != ENOMEM) _am_fatal("munmap failed: bad address", p);
}

/* A hint for a mapping of `size` bytes, or 0 when hints are off or the mapping does not fit
 * below AM_HINT_END. The bump pointer moves only when a hint is handed out: a request that
 * cannot fit (a failed malloc(1 << 62)) must not use the range up and turn hints off for
 * every later mapping. */
static uintptr_t am_os_hint(size_t size, size_t align) {
  if (atomic_load_explicit(&am_g.hint_failures, memory_order_relaxed) >= 16) return 0;
  if (size >= AM_HINT_END || align >= AM_HINT_END) return 0;    /* (no overflow below) */
  uintptr_t h = atomic_load_explicit(&am_g.hint, memory_order_relaxed);
  for (;;) {
    uintptr_t start = am_align_up(h, align);
    if (start + size >= AM_HINT_END) return 0;
    /* Leave a gap of one segment after every mapping, so a large block can usually grow in
     * place with mremap. */
    uintptr_t next = start + am_align_up(size, align) + AM_SEGMENT_SIZE;
    if (atomic_compare_exchange_weak_explicit(&am_g.hint, &h, next, memory_order_relaxed, memory_order_relaxed))
      return start;
  }
}

AM_INTERNAL void *_am_os_alloc_aligned(size_t size, size_t align, size_t align_offset, unsigned flags) {
  am_assert(am_is_pow2(align) && align >= AM_SEGMENT_SIZE);
  am_assert(size % am_g.page_size == 0);
  if (align_offset == 0) {
    uintptr_t hint = am_os_hint(size, align);
    if (hint != 0) {
      uint8_t *p = am_mmap((void *)hint, size, flags);
      if (p == NULL) return NULL;
      if ((uintptr_t)p == hint) return p;
      /* Not honoured: use it anyway if it happens to be aligned. */
      if (((uintptr_t)p & (align - 1)) == 0) return p;
      am_munmap(p, size);
      atomic_fetch_add_explicit(&am_g.hint_failures, 1, memory_order_relaxed);
    }
  }
  /* Over-allocate and trim: map size + align, keep the aligned part. */
  size_t total = size + align;
  if (total < size) {
    errno = ENOMEM;
    return NULL;
  }
  /* (populate only the part we keep) */
  uint8_t *raw = am_mmap(NULL, total, flags & ~AM_OS_POPULATE);
  if (raw == NULL) return NULL;
  uintptr_t want = am_align_up((uintptr_t)raw + align_offset, align) - align_offset;
  if (want < (uintptr_t)raw) want += align;
  uint8_t *p = (uint8_t *)want;
  am_munmap(raw, (size_t)(p - raw));
  am_munmap(p + size, (size_t)((raw + total) - (p + size)));
  if (flags & AM_OS_POPULATE) {
    int saved = errno;
    (void)madvise(p, size, MADV_POPULATE_WRITE);   /* best effort (Linux 5.14+) */
    errno = saved;
  }
  return p;
}

/* Memory for the allocator's own tables (the profiler's): `size` bytes (a multiple of the page
 * size), anywhere, zero; NULL when the system has none. */
AM_INTERNAL void *_am_os_map(size_t size) {
  int saved = errno;
  void *p = am_mmap(NULL, size, 0);
  errno = saved;
  return p;
}

/* A read-only private mapping of the first `size` bytes of file `fd` (the profiler reads symbol
 * tables with it); NULL on failure. */
AM_INTERNAL const void *_am_os_map_file(int fd, size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

AM_INTERNAL void _am_os_free(void *p, size_t size) {
  int saved = errno;
  am_munmap(p, size);
  errno = saved;
}

/* Gives the pages back to the OS; the range stays mapped and reads as zero afterwards. */
AM_INTERNAL bool _am_os_purge(void *p, size_t size) {
  if (size == 0) return false;
  int saved = errno;
  int advice = am_g.options[AM_OPTION_PURGE] == 1 ? MADV_FREE : MADV_DONTNEED;
  bool ok = madvise(p, size, advice) == 0;
  errno = saved;
  if (ok) am_stat_add(&am_g.stat_purged_bytes, size);
  return ok;
}

/* Makes [p, p + size) inaccessible (a guard page of the secure build). Best effort: when the
 * kernel refuses (too many mappings: vm.max_map_count), the range stays usable memory. */
AM_INTERNAL void _am_os_guard(void *p, size_t size) {
  int saved = errno;
  if (mprotect(p, size, PROT_NONE) != 0 && !atomic_exchange(&am_g.guard_failed, 1) && am_option(AM_OPTION_VERBOSE))
    _am_message("", "secure build: mprotect refused a guard page (vm.max_map_count?); "
                    "continuing without some guard pages", NULL);
  errno = saved;
}

/* Turns access to [p, p + size) off (PROT_NONE) or back on (read/write); the pages stay
 * resident. False when the kernel refuses. */
AM_INTERNAL bool _am_os_protect(void *p, size_t size, bool access) {
  int saved = errno;
  bool ok = mprotect(p, size, access ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
  errno = saved;
  return ok;
}

/* Asks for transparent huge pages on the range (THP in "madvise" mode needs this). */
AM_INTERNAL void _am_os_advise_huge(void *p, size_t size) {
  int saved = errno;
  (void)madvise(p, size, MADV_HUGEPAGE);
  errno = saved;
}

/* Grows or shrinks the mapping at p without moving it. */
AM_INTERNAL bool _am_os_resize_inplace(void *p, size_t old_size, size_t new_size) {
  if (new_size > old_size && am_os_fault()) return false;
  int saved = errno;
  void *r = mremap(p, old_size, new_size, 0);
  errno = saved;
  return r == p;
}

/* Moves the mapping at p to `target` (which must be a mapping of new_size bytes that this
 * call replaces), resizing it: the kernel moves the page tables, nothing is copied. */
AM_INTERNAL bool _am_os_move(void *p, size_t old_size, size_t new_size, void *target) {
  /* memcheck (3.19) leaves the grown part of a mapping moved with MREMAP_FIXED inaccessible
   * and then reports every write to it: under valgrind the caller copies instead. */
  if (RUNNING_ON_VALGRIND) return false;
  if (am_os_fault()) return false;
  int saved = errno;
  void *r = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  errno = saved;
  return r == target;
}
