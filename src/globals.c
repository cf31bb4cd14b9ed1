/* globals.c -- all process-wide state of amalloc, in one place.
 *
 *   am_g            the am_global_t in types.h: page size, process secret, init state, the
 *                   thread key, the mmap placement hint, the options in force, the list of
 *                   all segments, the abandoned-segment lists, the cache of freed large
 *                   mappings and the heap pool with their four locks, the purge schedule, and the statistics counters.
 *   am_segmap       one bit per 4 MiB of address space: set while a segment starts there. It
 *                   is 4 MiB of zero-initialised .bss that the kernel faults in lazily, so a
 *                   process touches only the words for the address ranges it really uses.
 *   am_slab_empty   a slab with no free block, and
 *   am_heap_empty   a heap whose every class points to it: the initial value of each thread's
 *                   heap pointer, so the malloc fast path needs no "is this thread set up"
 *                   test (its first allocation simply takes the slow path).
 *   thread-local variables, each documented where it is declared: am_tls_heap (the calling
 *                   thread's heap), am_tls_home (its own heap), am_tls_seg (the free fast path's
 *                   segment), am_tls_user (am_heap_malloc's last checked heap) in internal.h;
 *                   init.c's am_initializing, prof.c's sampler state, secure.c's random state.
 *
 * Everything else is owned by a heap, i.e. by one thread.
 */
#include "internal.h"

static am_global_t am_g = {
  .abandoned_lock = PTHREAD_MUTEX_INITIALIZER,
  .heap_lock = PTHREAD_MUTEX_INITIALIZER,
  .segments_lock = PTHREAD_MUTEX_INITIALIZER,
  .prof_lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Atomic(uint64_t) am_segmap[AM_SEGMAP_WORDS];

am_slab_t am_slab_empty;

am_heap_t am_heap_empty = {
  .direct = { [0 ... AM_DIRECT_COUNT - 1] = &am_heap_empty.current[0] },   /* (all empty) */
  .dense = { [0 ... AM_DENSE_COUNT - 1] = &am_heap_empty.current[0] },
  .current = { [0 ... AM_CLASS_COUNT - 1] = &am_slab_empty },
};
