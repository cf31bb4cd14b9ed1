/* alloc.c -- the am_* allocation API: malloc, free and their relatives.
 *
 * The fast paths, as x86-64 executes them (gcc 12 -O2; objdump of libamalloc.so; the default
 * build, with the misuse checks):
 *
 *   am_malloc, up to 1 KiB, 18 instructions: the size test (2); the thread's heap (2: the
 *   initial-exec TLS offset from the GOT, then the %fs load); (size + 15) >> 4 (2); the heap's
 *   direct[] entry, which points at the class's current[] slot (1), the current slab (1), its
 *   free list head (1) and its test (2); the pop (2); the mark cleared (1: the double-free
 *   check needs it); used++ (1); the class's countdown to the heap profiler's next sample,
 *   which is also its allocation counter, at a fixed distance from that slot, and its branch
 *   (2: prof.c); ret. No class table, no stack frame; an empty list is a tail call to
 *   am_heap_malloc_miss (_am_heap_malloc_generic, heap.c), a sample one to
 *   _am_prof_malloc_taken.
 *
 *   am_free, 25 instructions: the segment (2: p - 1, masked); the thread's am_tls_seg, the
 *   segment it owns and freed into last (2: TLS offset, compare with %fs) and the branch (1):
 *   a hit stands for the segment map test and the owner test, both made when the segment was
 *   cached (internal.h). The slab: slot_slab[(p >> 16) & 63] (4 with the copy of p); the
 *   interior/grid check (5: the low 32 bits of p minus start_lo, one multiply by magic, one
 *   compare with the coded carved extent, internal.h am_slab_off_grid), which also sends
 *   every free into a FULL slab to the slow path (start_lo's FULL flag); the mark check (4:
 *   the slab's key xor p against the block's second word); the push and the mark (4); used--
 *   and its test (2); ret. The rare cases are tail calls: am_free_off_grid (a bad pointer, or
 *   a full slab), am_free_local_marked (the mark matched: a double free, or 2^-64 bad luck),
 *   am_free_local_slow (the slab's last block came back).
 *
 *   A pointer of another segment: the segment map test and the owner test inline (about 12
 *   more), after which the segment becomes am_tls_seg; not owned: am_free_generic (remote
 *   free, large block); not on the map: am_free_mapped (NULL, foreign pointers). The secure
 *   build takes am_free_mapped for every pointer (its quarantine comes first) and then the same
 *   am_free_local; the valgrind build wraps these functions (valgrind.c).
 *
 * mimalloc 2.0 (Debian) executes 16 (malloc) and 26 (free) in the same loop, without any
 * of the three checks (bench/micro/icount.c: 58 per pair for amalloc, 57.75 for mimalloc, the
 * loop's 15 included).
 */
#include "internal.h"

#if AM_VALGRIND
#include <valgrind/memcheck.h>
#endif

am_inline void am_ensure_init(void) {
  if (am_unlikely(atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2)) _am_process_init();
}

/* The request the allocator serves for `size` bytes: the secure build adds room for its canary
 * to anything that may come from a size class (AM_CANARY_SIZE is 0 in other builds). */
am_inline size_t am_request(size_t size) {
  return (AM_CANARY_SIZE != 0 && size <= AM_MEDIUM_MAX) ? size + AM_CANARY_SIZE : size;
}

/* The current slab of the class had no free block: the slow path, out of line (a tail call,
 * so the fast path needs no stack frame). The class is computed again here, because before
 * the process is initialised the class tables are still zero (the first allocation of a
 * process always lands here: its heap is the empty heap). */
static AM_API_TEXT am_noinline void *am_heap_malloc_miss(am_heap_t *heap, size_t size) {
  if (am_unlikely(heap == &am_heap_empty)) am_ensure_init();
  return _am_heap_malloc_generic(heap, am_size_class(size));
}

/* The same for a first-class heap's request (initialised: no check), dense classes included. */
static AM_API_TEXT am_noinline void *am_heap_malloc_miss_dense(am_heap_t *heap, size_t size) {
  return _am_heap_malloc_generic(heap, am_size_class_dense(size));
}

/* A block of class `cls` from `heap` (the process initialised; the heap may be the empty one,
 * which the slow path sets up). */
am_inline void *am_heap_malloc_class(am_heap_t *heap, size_t cls) {
  am_slab_t *slab = heap->current[cls];
  am_block_t *b = slab->free;
  if (am_likely(b != NULL)) return am_slab_pop(heap, slab, b, cls);
  return _am_heap_malloc_generic(heap, cls);
}


/* A large allocation is a slow path of the calling thread's heap too: it ticks (heap.c
 * _am_heap_tick), so that a thread that allocates only large blocks after freeing small ones
 * still gives back its idle slabs and empty segments on time; the secure build checks a few
 * quarantined blocks. */
static am_noinline void am_large_tick(void) {
  am_heap_t *heap = am_heap_get();
  if (heap == &am_heap_empty) return;
  _am_heap_tick(heap);
#if AM_SECURE
  am_sec_check_some(heap, "malloc");
#endif
}

/* Above 1 KiB: a size class up to AMALLOC_LARGE_THRESHOLD, a mapping of its own above. `req` is
 * am_request's; `zero` bytes at the start are cleared (calloc). */
static AM_API_TEXT am_noinline void *am_malloc_above_table(size_t req, size_t zero) {
  am_ensure_init();
  if (req <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD)) {
    void *p = am_heap_malloc_class(am_heap_get(), am_size_class(req));
    if (zero != 0 && p != NULL) memset(p, 0, zero);
    return p;
  }
  am_large_tick();
  return am_prof_large_hook(_am_large_alloc(req, 0, zero != 0));   /* (a fresh mapping is zero) */
}

/* A block for a request of `size` <= AM_TABLE_MAX bytes (am_request's): the heap's direct[]
 * entry of the size points at its class's current[] entry, and the class's countdown to its
 * next sample (types.h sample_left, also its allocation counter) lies at a fixed distance from
 * that, so no class table is read. The countdown is one sub and one branch (the add it replaced
 * was one instruction); below 0 the allocation is the sampled one (prof.c). (Indexing by 16 bytes, not 8: with an
 * 8-byte index the compiler folds the shift and the scaled address into an and and an add, one
 * instruction more. direct[] holds pointers to current[], not copies of it, so that the slow
 * paths, which change current[], need not keep copies equal: copies saved the fast path one
 * load and cost a program that churns slabs 20 instructions per pair.) `user` is a constant:
 * false for malloc (current from direct[]); true for am_heap_malloc on a first-class heap
 * (current from its dense[] table, heapapi.c), which is never sampled (its countdown, armed to
 * AM_PROF_NEVER, still counts its allocations, without the branch) and whose slow path looks
 * the class up with the dense classes. */
#define AM_LEFT_FROM_CURRENT (offsetof(am_heap_t, sample_left) - offsetof(am_heap_t, current))
_Static_assert(sizeof(((am_heap_t *)0)->current[0]) == sizeof(((am_heap_t *)0)->sample_left[0]),
               "a class's countdown lies AM_LEFT_FROM_CURRENT bytes after its current[] entry");
am_inline void *am_heap_malloc_current(am_heap_t *heap, am_slab_t **current, size_t size, bool user) {
  am_slab_t *slab = *current;
  am_block_t *b = slab->free;
  if (am_likely(b != NULL)) {
    void *p = am_slab_take(heap, slab, b);
    /* --heap->sample_left[current - heap->current], as one sub (the compiler keeps the
     * subtraction and the shift of that form). After the pop, which leaves the block in the
     * return register (before it, the compiler spent a move on it); the sampled path puts the
     * block back. */
    int64_t *left = (int64_t *)((uint8_t *)current + AM_LEFT_FROM_CURRENT);
    if (user) --*left;
    else if (am_unlikely(--*left < 0)) return _am_prof_malloc_taken(heap, current, p);
    return p;
  }
  return user ? am_heap_malloc_miss_dense(heap, size) : am_heap_malloc_miss(heap, size);
}

/* malloc's: the direct[] entry of the size. */
am_inline void *am_heap_malloc_direct(am_heap_t *heap, size_t size) {
  size_t i = (size + 15) >> 4;
  return am_heap_malloc_current(heap, heap->direct[i], i * 16, false);   /* (the same class as size) */
}

AM_EXPORT void *am_malloc(size_t size) {
  size = am_request(size);
  if (am_likely(size <= AM_TABLE_MAX)) return am_heap_malloc_direct(am_heap_get(), size);
  return am_malloc_above_table(size, 0);
}

AM_EXPORT void *am_calloc(size_t count, size_t size) {
  size_t total;
  if (am_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  size_t req = am_request(total);
  if (am_likely(req <= AM_TABLE_MAX)) {
    void *p = am_heap_malloc_direct(am_heap_get(), req);
    if (am_likely(p != NULL)) memset(p, 0, total);
    return p;
  }
  return am_malloc_above_table(req, total);
}

/* ---- free ------------------------------------------------------------------------------- */

/* The checks every build makes (doc/hardening.md "Misuse checks"):
 *   - the pointer's segment must be on the segment map (else: not allocated by amalloc);
 *   - a small block's offset in its slab must be a multiple of the block size and below the
 *     part of the slab carved so far (else: a pointer inside a block, or one never handed out),
 *     tested without a division (internal.h: am_slab_interior);
 *   - a free block carries its mark (internal.h: am_block_mark, bound to the block's address
 *     and its slab's life) in its second word; malloc clears it. Freeing a block that carries
 *     its mark is a double free: the owner confirms by finding it on the slab's lists, another
 *     thread trusts the mark (live data equals it with probability 2^-64; no copy of bytes a
 *     program can read produces it).
 */

/* Returns the slab of small/medium block p in seg, after the checks; `fn` names the API for
 * the message. A pointer into a slot that holds no slab was freed with its whole slab: for
 * free that is a double free, for the others a pointer to a freed block. */
static am_slab_t *am_checked_slab(am_segment_t *seg, const void *p, const char *fn) {
  am_slab_t *slab = am_segment_slab_of(seg, p);
  if (am_unlikely(slab->bsize == 0)) {
    if ((const uint8_t *)p < (const uint8_t *)seg + _am_segment_header_size())
      _am_fatal_in(fn, AM_E_INTERIOR, p);
    /* (a slot a first-class heap's destroy or reset freed, not reused since: internal.h) */
    if (am_remote_top(atomic_load_explicit(am_slab_remote(slab), memory_order_relaxed)) == AM_REMOTE_DEAD)
      _am_fatal_in(fn, AM_E_DESTROYED, p);
    _am_fatal_in(fn, strcmp(fn, "free") == 0 ? AM_E_DOUBLE : AM_E_FREED, p);
  }
  if (am_likely(!am_slab_interior(slab, p))) return slab;
  /* (the layout was cleared under our feet by a first-class heap's destroy: internal.h) */
  if (am_remote_top(atomic_load_explicit(am_slab_remote(slab), memory_order_acquire)) == AM_REMOTE_DEAD)
    _am_fatal_in(fn, AM_E_DESTROYED, p);
  uint64_t off = (uint64_t)((const uint8_t *)p - am_slab_start(slab));
  if (off >= (uint64_t)slab->reserved * slab->bsize || off % slab->bsize != 0)
    _am_fatal_in(fn, AM_E_INTERIOR, p);
  /* on the block grid, but never carved: never handed out */
  _am_fatal_in(fn, AM_E_FOREIGN, p);
}


static am_cold void am_free_unknown(void *p) {
  if (p == NULL) return;
  _am_fatal_in("free", AM_E_FOREIGN, p);
}

/* The block at b carries its free mark, and the caller owns the slab: a double free if it is
 * on one of the slab's lists; otherwise live data happened to equal the mark (2^-64). */
static am_cold am_noinline void am_free_marked(am_slab_t *slab, am_block_t *b) {
  size_t n = 0;
  for (am_block_t *q = slab->free; q != NULL && n <= slab->capacity; q = am_block_next(slab, q), n++)
    if (q == b) _am_fatal_in("free", AM_E_DOUBLE, b);
  n = 0;
  for (am_block_t *q = am_remote_top(atomic_load_explicit(am_slab_remote(slab), memory_order_acquire));
       q != NULL && !am_remote_is_reclaim(q) && n <= slab->capacity;
       q = am_block_next(slab, q), n++)
    if (q == b) _am_fatal_in("free", AM_E_DOUBLE, b);
}

/* Pushes b on the owner's free list (the secure build: at the head or behind it, at random). */
am_inline void am_slab_push(am_heap_t *heap, am_slab_t *slab, am_block_t *b) {
#if AM_SECURE
  am_secure_push(heap, slab, b);
#else
  (void)heap;
  am_block_set_next(slab, b, slab->free);
  slab->free = b;
#endif
}

/* A local free of a block that carries its mark: abort if it is a double free, else (live data
 * equal to the mark) finish the free as the fast path would. */
static am_cold am_noinline void am_free_local_marked(am_slab_t *slab, am_block_t *b) {
  am_heap_t *heap = am_heap_get();
  am_free_marked(slab, b);
  am_slab_push(heap, slab, b);
  if (--slab->used == 0 || slab->state != AM_SLAB_AVAIL) _am_heap_free_slow(heap, slab);
}

/* A local free left `slab` without a live block, or found it in the full list. The current
 * slab of its class stays even when empty (what the slow path would decide, without the call:
 * a loop that allocates and frees one block lands here every time); every 64th time it runs
 * the slow path's purge check. */
static am_noinline void am_free_local_slow(const void *p) {
  am_slab_t *slab = am_segment_slab_of(am_ptr_segment(p), p);
  am_heap_t *heap = am_heap_get();
  if (slab->state == AM_SLAB_AVAIL && heap->current[slab->cls] == slab) {   /* (so used == 0) */
    if (am_unlikely((++heap->purge_ticks & 63) == 0)) _am_heap_tick(heap);
    return;
  }
  _am_heap_free_slow(heap, slab);
}

/* free's fast path (the default build) found p off the block grid of `slab` (p's slot's): either
 * p is not a block (inside one, never carved, or in a slot without a slab: reported here), or
 * the slab is FULL (internal.h am_slab_set_state: its start_lo flag fails every pointer), or it
 * may hold a block the profiler sampled in place (AM_SLAB_PROF_FLAG). Then this is the free of
 * a block into such a slab: the grid test again without the flags, the sampled block out of the
 * profile, the mark test, the push, and for a full slab the slow path, which moves it back to
 * its class queue. */
/* (am_free_off_grid: the free of checked block p into a slab whose flags failed the grid test:
 * `full`, the FULL flag; `prof`, AM_SLAB_PROF_FLAG, a constant in each caller) */
am_inline void am_free_flagged(void *p, am_slab_t *slab, bool full, bool prof) {
#if AM_PROF_IN_PLACE
  if (prof) {                            /* (the flag goes once no block of the slab is a sample) */
    am_prof_free_in_place(slab, p);
    if (am_slab_prof_none(slab)) am_slab_set_prof_flag(slab, false);
  }
#else
  (void)prof;
#endif
  am_block_t *b = p;
  uintptr_t mark = am_block_mark(slab, b);
  if (am_unlikely(b->mark == mark)) am_free_marked(slab, b);   /* aborts on a double free */
  am_heap_t *heap = am_heap_get();
  am_slab_push(heap, slab, b);
  b->mark = mark;
  if (--slab->used == 0 || full) _am_heap_free_slow(heap, slab);
}
#if AM_PROF_IN_PLACE
static am_noinline void am_free_prof_flagged(void *p, am_slab_t *slab, bool full) {
  am_free_flagged(p, slab, full, true);
}
#endif
static am_noinline void am_free_off_grid(void *p, am_slab_t *slab) {
  /* (am_slab_interior: the same grid test on the start without the flags) */
#if AM_PROF_IN_PLACE
  if (am_unlikely(am_slab_prof_flagged(slab)) && !am_slab_interior(slab, p)) {
    am_free_prof_flagged(p, slab, slab->state == AM_SLAB_FULL);
    return;
  }
#endif
  if (am_likely(slab->state == AM_SLAB_FULL) && !am_slab_interior(slab, p)) {
    am_free_flagged(p, slab, true, false);
    return;
  }
  am_checked_slab(am_ptr_segment(p), p, "free");    /* reports it */
  __builtin_unreachable();
}

/* Free of a block the calling thread does not own: a large block, or a block of another
 * thread's (or an abandoned) segment, which goes on the slab's atomic remote stack. */
static am_noinline void am_free_generic(am_segment_t *seg, void *p) {
  if (seg->kind == AM_SEGMENT_LARGE) {
    if (am_unlikely(am_large_heap(seg) != NULL)) _am_heap_large_unlink(seg, p, "free");
    if (am_unlikely(seg->prof_sampled)) _am_prof_large_freed(seg, p, "free");
    _am_large_free(seg, p);
    return;
  }
  /* a block of the profiler's heap is a sampled one: it leaves the live set, and goes back to
   * that heap under the profiler's lock (types.h prof_heap) */
  am_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_relaxed);   /* (before the push) */
  if (am_unlikely(am_heap_is_prof(owner))) {
    _am_prof_free_block(seg, p);
    return;
  }
  am_slab_t *slab = am_checked_slab(seg, p, "free");
#if AM_PROF_IN_PLACE
  /* a block the profiler sampled in place leaves the profile (before the push: the segment
   * must not be touched after it) */
  if (seg->kind == AM_SEGMENT_MEDIUM) am_prof_free_in_place(slab, p);
#endif
  am_block_t *b = p;
  uintptr_t life = __atomic_load_n(&slab->mark_key, __ATOMIC_RELAXED);
  uintptr_t mark = am_mark_with(life, b);   /* (am_block_mark) */
  /* Not the owner: the owner's lists cannot be walked from here, so the mark decides (the
   * secure build checked the block when it entered the quarantine). */
  if (AM_CHECKS && !AM_SECURE && am_unlikely(b->mark == mark)) _am_fatal_in("free", AM_E_DOUBLE, p);
  if (AM_CHECKS) b->mark = mark;
  /* A push that makes the slab's stack non-empty is announced in seg->remote_pending first
   * (types.h: the protocol): once the block is on the stack the owner may collect it, find the
   * segment empty and unmap it, so nothing may touch the segment after the push. A push onto
   * a non-empty stack needs no announcement (and gives back one it took while the stack it
   * saw was empty). */
  _Atomic(uintptr_t) *remote = am_slab_remote(slab);
  _Atomic(uint32_t) *pending = &seg->remote_pending;
  size_t reserved = slab->reserved;
  bool announced = false;
  uintptr_t head = atomic_load_explicit(remote, memory_order_relaxed);
  do {
    /* the block's first-class heap freed the slab after the checks above (a destroy or reset
     * racing this free), or the slot holds a slab of another life already: reported, never
     * pushed (doc/heaps.md: what is left is a window of a few instructions) */
    if (am_unlikely(am_remote_top(head) == AM_REMOTE_DEAD ||
                    __atomic_load_n(&slab->mark_key, __ATOMIC_RELAXED) != life))
      _am_fatal_in("free", AM_E_DESTROYED, p);
    /* a stack longer than the slab means blocks freed twice */
    if (am_unlikely(am_remote_count(head) >= reserved)) _am_fatal_in("free", AM_E_OVERFREED, p);
    if (am_unlikely((head == 0) != announced)) {
      if (head == 0) atomic_fetch_add_explicit(pending, 1, memory_order_relaxed);
      else atomic_fetch_sub_explicit(pending, 1, memory_order_relaxed);
      announced = head == 0;
    }
    am_block_set_next(slab, b, am_remote_top(head));
  } while (!atomic_compare_exchange_weak_explicit(remote, &head, am_remote_word(b, am_remote_count(head) + 1),
                                                  memory_order_release, memory_order_relaxed));
  /* a stack made non-empty: the owner's next collection walks its segments (types.h:
   * remote_hint; a heap struct outlives its segments, so this is not a touch of the segment) */
  if (announced && owner != NULL && atomic_load_explicit(&owner->remote_hint, memory_order_relaxed) == 0)
    atomic_store_explicit(&owner->remote_hint, 1, memory_order_release);
  /* The stack now holds every block of the slab: no block of it is live, and its owner may be
   * idle (blocked, or only using other slabs) for as long as it likes. A purge pass gives such
   * slabs' pages back (segment.c am_reclaim_full_stacks). (A process-wide flag: the segment
   * must not be touched after the push.) */
  if (am_unlikely(am_remote_count(head) + 1 == reserved) &&
      atomic_load_explicit(&am_g.remote_full, memory_order_relaxed) == 0)
    atomic_store_explicit(&am_g.remote_full, 1, memory_order_relaxed);
}

/* The free of small/medium block p of seg, a segment the calling thread owns (on the segment
 * map: am_tls_seg, or both tests just made): the interior/grid check and the double-free mark
 * check, then the push on the slab's free list. */
am_inline void am_free_local(am_segment_t *seg, void *p) {
  am_slab_t *slab = am_segment_slab_of(seg, p);
  am_block_t *b = p;
  /* (the secure build checked the block when it entered the quarantine, and the block still
   * carries the mark the quarantine wrote: its fill check saw it) */
  uintptr_t mark = 0;
  if (AM_CHECKS && !AM_SECURE) {
    if (am_unlikely(am_slab_off_grid(slab, p))) {   /* not a block, or a FULL slab */
      am_free_off_grid(p, slab);
      return;
    }
    mark = am_block_mark(slab, b);
    if (am_unlikely(b->mark == mark)) {
      am_free_local_marked(slab, b);     /* a tail call: the fast path keeps no frame */
      return;
    }
  }
#if AM_SECURE
  am_slab_push(am_heap_get(), slab, b);
#else
  am_slab_push(NULL, slab, b);
#endif
  if (AM_CHECKS && !AM_SECURE) b->mark = mark;
  /* (the slow path finds the slab again: passing it would cost the fast path an instruction;
   * a FULL slab took am_free_off_grid already, unless there was no grid test) */
  if (AM_CHECKS && !AM_SECURE) {
    if (am_unlikely(--slab->used == 0)) am_free_local_slow(p);
  } else if (am_unlikely(--slab->used == 0 || slab->state != AM_SLAB_AVAIL)) {
    am_free_local_slow(p);
  }
}

/* The free of small/medium block p (of seg, on the segment map) after any secure-build step:
 * pushed on the owner's free list (and seg becomes the thread's am_tls_seg), or handed to
 * am_free_generic. `cached`: test am_tls_seg first (not when the caller just did). */
am_inline void am_free_block_in(am_segment_t *seg, void *p, bool cached) {
  if (cached && am_likely(seg == am_tls_seg)) {
    am_free_local(seg, p);
    return;
  }
  am_heap_t *heap = am_heap_get();
  if (am_likely(atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap)) {
    am_tls_seg = seg;
    am_free_local(seg, p);
    return;
  }
  am_free_generic(seg, p);
}

AM_INTERNAL void _am_free_block(am_segment_t *seg, void *p) { am_free_block_in(seg, p, true); }

/* free of a pointer whose segment is not on the segment map (NULL, foreign pointers), and every
 * free of the secure build: the segment map test (the O(1) "is this amalloc's" check, which
 * also catches NULL), the secure build's quarantine, then the owner test. */
static am_noinline void am_free_mapped(void *p, am_segment_t *seg) {
  if (am_unlikely(!am_segmap_contains(seg))) {
    am_free_unknown(p);
    return;
  }
#if AM_SECURE
  if (seg->kind != AM_SEGMENT_LARGE) {
    if (am_unlikely(am_heap_is_prof(atomic_load_explicit(&seg->heap, memory_order_relaxed))))
      _am_prof_free(p);                   /* the program freed it: not live, quarantined or not */
    p = am_secure_quarantine(seg, p);     /* checks p; the block leaving the quarantine, if any */
    if (p == NULL) return;
    seg = am_ptr_segment(p);
  }
#endif
  am_free_block_in(seg, p, AM_SECURE);    /* (am_free tested am_tls_seg, unless secure) */
}

/* The fast path (default build): a block of the segment the thread freed into last (am_tls_seg:
 * owned, on the map) is checked (grid, mark) and pushed on its slab's free list; a block of
 * another segment on the map takes the owner test (and becomes am_tls_seg, or goes to
 * am_free_generic); anything else, and every pointer in the secure build (its quarantine comes
 * first), takes am_free_mapped. */
AM_EXPORT void am_free(void *p) {
  am_segment_t *seg = am_ptr_segment(p);
  if (!AM_SECURE && am_likely(seg == am_tls_seg)) {
    am_free_local(seg, p);
    return;
  }
  if (!AM_SECURE && am_likely(am_segmap_contains(seg))) {
    am_free_block_in(seg, p, false);
    return;
  }
  am_free_mapped(p, seg);                 /* (p first: the fast path keeps p where it came) */
}

/* ---- sizes ------------------------------------------------------------------------------ */

/* The usable size of block p as the program sees it, after the checks (`fn` names the API for
 * messages). */
static size_t am_usable_checked(const void *p, const char *fn) {
  am_segment_t *seg = am_ptr_segment(p);
  if (am_unlikely(!am_segmap_contains(seg))) _am_fatal_in(fn, AM_E_FOREIGN, p);
  if (seg->kind == AM_SEGMENT_LARGE) {
    if ((const uint8_t *)p != seg->large_block) _am_fatal_in(fn, AM_E_INTERIOR, p);
    return seg->large_size;
  }
  am_slab_t *slab = am_checked_slab(seg, p, fn);
#if AM_SECURE
  am_secure_check_block(seg, slab, p, fn);
#else
  uintptr_t mark = ((const am_block_t *)p)->mark;
#if AM_VALGRIND
  /* the word is the program's data, maybe never written: not an error of the program's */
  VALGRIND_MAKE_MEM_DEFINED(&mark, sizeof(mark));
#endif
  if (AM_CHECKS && am_unlikely(mark == am_block_mark(slab, p)))
    _am_fatal_in(fn, strcmp(fn, "free") == 0 ? AM_E_DOUBLE : AM_E_FREED, p);
#endif
  return slab->bsize - AM_CANARY_SIZE;
}

AM_EXPORT size_t am_malloc_usable_size(const void *p) {
  if (p == NULL) return 0;
  return am_usable_checked(p, "malloc_usable_size");
}

/* True when realloc(q, size) of a class block q can have made a large block of `usable` bytes:
 * a class block of usable size u that must grow to u < size < u + u/8 gets a request of u + u/8
 * (am_realloc_grow), and a large block's usable size is its request rounded up to a page. So
 * size may lie up to about an eighth below such a block's usable size. Exact: the old class
 * must exist and its grown request round to `usable`. `canary`: the bytes the secure build
 * adds to a class block's request (its usable size is the class size less those, and a grown
 * request of at most AM_MEDIUM_MAX gets them too). A cold loop: only free_sized of a large
 * block within an eighth of a class size above 256 KiB (or above AMALLOC_LARGE_THRESHOLD) and
 * not within its last page gets here. */
static am_cold bool am_grown_from_class(size_t size, size_t usable, size_t canary) {
  for (size_t cls = 0; cls < AM_CLASS_COUNT; cls++) {
    size_t u = am_class_size[cls] - canary;
    size_t grown = u + u / 8;
    size_t request = canary != 0 && grown <= AM_MEDIUM_MAX ? grown + canary : grown;
    if (u < size && size < grown && am_align_up(request, am_g.page_size) == usable) return true;
  }
  return false;
}

/* The checks of free_sized(p, n) (`fn` names the caller: "free_sized", or "free" for a sized
 * operator delete): n must be a size the program can have last passed to malloc, calloc or
 * realloc for this block: at most its usable size and, above 32 bytes, at least half of it
 * (the smallest request malloc or an in-place realloc leaves in a block); for a large block,
 * within the last page (plus the canary the secure build adds to a request near the largest
 * class), or within the eighth realloc added when it grew the block out of a size class
 * (am_grown_from_class). */
AM_INTERNAL void _am_free_sized_check(void *p, size_t size, const char *fn) {
  size_t usable = am_usable_checked(p, fn);
  bool large = usable > (size_t)AM_MEDIUM_MAX || am_ptr_segment(p)->kind == AM_SEGMENT_LARGE;
  bool ok = size <= usable &&
            (large ? size + am_g.page_size + AM_CANARY_SIZE > usable ||
                         am_grown_from_class(size, usable, AM_CANARY_SIZE)
                   : (usable <= 32 || size >= usable / 2));
  if (am_unlikely(!ok)) _am_fatal_in(fn, AM_E_SIZE, p);
}

/* The checks of free_aligned_sized(p, a, n): p must have alignment a, and n fit the block (an
 * aligned allocation may take a block much larger than n, so only the upper bound). */
AM_INTERNAL void _am_free_aligned_sized_check(void *p, size_t alignment, size_t size, const char *fn) {
  if (am_unlikely(alignment != 0 && ((uintptr_t)p & (alignment - 1)) != 0))
    _am_fatal_in(fn, "pointer without that alignment", p);
  if (am_unlikely(size > am_usable_checked(p, fn))) _am_fatal_in(fn, AM_E_SIZE, p);
}

/* ---- realloc ---------------------------------------------------------------------------- */

AM_EXPORT void *am_realloc(void *p, size_t size) {
  if (p == NULL) return am_malloc(size);
  if (size == 0) {            /* glibc: free and return NULL */
    am_free(p);
    return NULL;
  }
  am_segment_t *seg = am_ptr_segment(p);
  if (am_unlikely(!am_segmap_contains(seg))) _am_fatal_in("realloc", AM_E_FOREIGN, p);
  if (seg->kind == AM_SEGMENT_LARGE) {
    if (am_unlikely(am_large_heap(seg) != NULL)) return _am_heap_large_realloc(seg, p, size);
    if (am_unlikely(seg->prof_sampled || atomic_load_explicit(&am_g.prof_period, memory_order_relaxed) > 0))
      return _am_prof_realloc_large(seg, p, size);
    return _am_large_realloc(seg, p, size);
  }
  size_t bsize = am_usable_checked(p, "realloc");
  /* Keep the block when the new size fits and does not waste more than half of it. */
  if (size <= bsize && (size >= bsize / 2 || bsize <= 32)) return p;
  void *q = am_malloc(am_realloc_grow(size, bsize));
  if (q == NULL) return NULL;
  memcpy(q, p, size < bsize ? size : bsize);
  am_free(p);
  return q;
}

/* ---- aligned allocation ----------------------------------------------------------------- */

/* `align` is a power of two. Small requests use the first class at least as large whose block
 * size is a multiple of `align`: every block of such a class is aligned, since slabs start on
 * page boundaries. */
static AM_API_TEXT am_noinline void *am_malloc_aligned(size_t align, size_t size) {
  if (align <= 16) {
    if (align > 8 && size < 16) size = 16;
    return am_malloc(size);
  }
  am_ensure_init();
  size_t req = am_request(size);
  if (align <= AM_CLASS_ALIGN_MAX && req <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD)) {
    size_t cls = am_size_class_aligned(req, align);
    if (cls < AM_DENSE_FIRST) return am_heap_malloc_class(am_heap_get(), cls);
  }
  am_large_tick();
  return am_prof_large_hook(_am_large_alloc(req, align, false));
}

AM_EXPORT int am_posix_memalign(void **out, size_t align, size_t size) {
  if (!am_is_pow2(align) || (align % sizeof(void *)) != 0) return EINVAL;
  int saved = errno;
  void *p = am_malloc_aligned(align, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

AM_EXPORT void *am_aligned_alloc(size_t align, size_t size) {
  if (!am_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return am_malloc_aligned(align, size);
}

/* memalign is glibc's function, so it follows glibc (_mid_memalign): an alignment of at most
 * 16 (MALLOC_ALIGNMENT; 0 included) is malloc's; one above SIZE_MAX / 2 + 1 is EINVAL (no
 * power of two is that large); any other is rounded up to the next power of two (at least 32,
 * glibc's smallest chunk). posix_memalign and aligned_alloc keep their EINVAL. */
AM_EXPORT void *am_memalign(size_t align, size_t size) {
  if (align <= 16) return am_malloc(size);
  if (align > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  if (!am_is_pow2(align)) {
    size_t a = 32;
    while (a < align) a <<= 1;
    align = a;
  }
  return am_malloc_aligned(align, size);
}

AM_EXPORT void *am_valloc(size_t size) {
  am_ensure_init();
  return am_malloc_aligned(am_g.page_size, size);
}

AM_EXPORT void *am_pvalloc(size_t size) {
  am_ensure_init();
  size_t page = am_g.page_size;
  if (size > AM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = size == 0 ? page : am_align_up(size, page);
  return am_malloc_aligned(page, rounded);
}

AM_EXPORT int am_version(void) { return AMALLOC_VERSION; }
