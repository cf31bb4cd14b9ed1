/* internal.h -- what the files of amalloc share: compiler helpers, checks, the small inline
 * helpers of the hot paths, and the cross-file functions grouped by the file that owns them.
 *
 * amalloc is compiled as one translation unit (unity.c), so every cross-file function is
 * `static` (AM_INTERNAL) and the compiler sees all of it.
 */
#ifndef AM_INTERNAL_H
#define AM_INTERNAL_H

#include "types.h"
#include "../include/amalloc.h"

#include <errno.h>
#include <string.h>

/* ---- compiler helpers -------------------------------------------------------------------- */
#define am_likely(x) __builtin_expect(!!(x), 1)
#define am_unlikely(x) __builtin_expect(!!(x), 0)
#define am_noinline __attribute__((noinline))
#define am_cold __attribute__((cold, noinline))
#define am_inline static inline __attribute__((always_inline))
#define AM_INTERNAL static __attribute__((unused))
/* Every function that can be on the stack when the heap profiler takes one (the API and the
 * allocation slow paths) is in the section amalloc_api: the profiler drops the frames up to the
 * outermost one in it, whatever path led to the sample (prof.c am_prof_backtrace). The linker
 * defines __start_amalloc_api and __stop_amalloc_api, in the shared library and in a program
 * that links libamalloc.a alike. */
#define AM_API_TEXT __attribute__((section("amalloc_api")))
#define AM_EXPORT __attribute__((visibility("default"))) AM_API_TEXT
#define AM_TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- checks ------------------------------------------------------------------------------ */
AM_INTERNAL _Noreturn void _am_fatal(const char *what, const void *ptr);
AM_INTERNAL _Noreturn void _am_fatal_in(const char *fn, const char *problem, const void *ptr);
#define AM_E_FOREIGN "pointer not allocated by amalloc"
#define AM_E_INTERIOR "pointer inside a block, not at its start"
#define AM_E_FREED "pointer to a freed block"
#define AM_E_DOUBLE "double free"
#define AM_E_OVERFREED "double free (more blocks freed than allocated)"
#define AM_E_SIZE "size does not match the block"
#define AM_E_DESTROYED "pointer to a block of a destroyed heap"
#define AM_E_HEAP_DEAD "heap destroyed"
#define AM_E_HEAP_OWNER "heap owned by another thread"
#define AM_E_HEAP_BAD "not a heap"
#if AM_DEBUG >= 1
#define am_assert(c) ((c) ? (void)0 : _am_fatal("internal assertion failed: " #c, NULL))
#else
#define am_assert(c) ((void)0)
#endif
#if AM_DEBUG >= 2
#define am_assert_expensive(c) am_assert(c)
#else
#define am_assert_expensive(c) ((void)0)
#endif

/* ---- globals.c --------------------------------------------------------------------------- */
static am_global_t am_g;
static _Atomic(uint64_t) am_segmap[AM_SEGMAP_WORDS];
extern am_slab_t am_slab_empty;
extern am_heap_t am_heap_empty;

/* ---- message.c --------------------------------------------------------------------------- */
AM_INTERNAL void _am_message(const char *prefix, const char *what, const void *ptr);
AM_INTERNAL size_t _am_fmt_size(char *buf, size_t cap, size_t value);

/* ---- os.c: the only caller of mmap / munmap / madvise / mremap / mprotect --------------------------- */
AM_INTERNAL void _am_os_init(void);
#define AM_OS_POPULATE 1u                /* pre-fault the pages */
#define AM_OS_HUGETLB 2u                 /* MAP_HUGETLB 2 MiB pages (NULL when none are free) */
AM_INTERNAL void *_am_os_alloc_aligned(size_t size, size_t align, size_t align_offset, unsigned flags);
AM_INTERNAL void _am_os_advise_huge(void *p, size_t size);
AM_INTERNAL void _am_os_guard(void *p, size_t size);
AM_INTERNAL bool _am_os_protect(void *p, size_t size, bool access);
AM_INTERNAL void _am_os_free(void *p, size_t size);
AM_INTERNAL void *_am_os_map(size_t size);
AM_INTERNAL const void *_am_os_map_file(int fd, size_t size);
AM_INTERNAL bool _am_os_purge(void *p, size_t size);
AM_INTERNAL bool _am_os_resize_inplace(void *p, size_t old_size, size_t new_size);
AM_INTERNAL bool _am_os_move(void *p, size_t old_size, size_t new_size, void *target);

/* ---- options.c -------------------------------------------------------------------------- */
AM_INTERNAL void _am_options_init(void);
#define am_option(o) (am_g.options[(o)])

/* ---- sizeclass.c ------------------------------------------------------------------------- */
AM_INTERNAL void _am_sizeclass_init(void);
static uint8_t am_class_of_small[AM_TABLE_MAX / 8 + 1];
static uint32_t am_class_size[AM_CLASS_COUNT];
static uint8_t am_class_of_dense[AM_DENSE_MAX / 8 + 1];

/* The class of a request of `size` bytes (size <= AM_MEDIUM_MAX). */
am_inline size_t am_size_class(size_t size) {
  if (am_likely(size <= AM_TABLE_MAX)) return am_class_of_small[(size + 7) >> 3];
  size_t s = size - 1;
  size_t e = 63 - (size_t)__builtin_clzl(s);        /* 2^e <= s < 2^(e+1), e >= 10 */
  return 8 + (e - 7) * 8 + ((s >> (e - 3)) & 7);
}

/* The class of a first-class heap's request of `size` bytes (size <= AM_MEDIUM_MAX): the dense
 * classes too (8-byte steps up to AM_DENSE_MAX). */
am_inline size_t am_size_class_dense(size_t size) {
  return size <= AM_DENSE_MAX ? am_class_of_dense[(size + 7) >> 3] : am_size_class(size);
}

/* The first class of at least `req` and `align` bytes whose size is a multiple of `align` (a
 * power of two, 16 < align <= AM_CLASS_ALIGN_MAX; req <= AM_MEDIUM_MAX): its blocks are that
 * aligned (slabs start on pages). AM_DENSE_FIRST when no class is (the dense ones never are). */
am_inline size_t am_size_class_aligned(size_t req, size_t align) {
  size_t cls = am_size_class(req < align ? align : req);
  while (cls < AM_DENSE_FIRST && (am_class_size[cls] & (align - 1)) != 0) cls++;
  return cls;
}

/* ---- segment.c --------------------------------------------------------------------------- */
am_inline am_segment_t *am_ptr_segment(const void *p) {
  /* p - 1: a block that starts exactly on a segment boundary (a large block aligned to 4 MiB
   * or more) belongs to the header just below it. */
  return (am_segment_t *)(((uintptr_t)p - 1) & ~(uintptr_t)AM_SEGMENT_MASK);
}
/* True when `seg` is the base of a segment amalloc mapped (an O(1) ownership test that never
 * dereferences a foreign pointer). NULL and addresses above the user range are false. */
am_inline bool am_segmap_contains(const am_segment_t *seg) {
  uintptr_t idx = (uintptr_t)seg >> AM_SEGMENT_SHIFT;
  if (am_unlikely(idx >= AM_SEGMAP_BITS)) return false;
  return (atomic_load_explicit(&am_segmap[idx >> 6], memory_order_relaxed) >> (idx & 63)) & 1;
}
/* The descriptor of the slot that holds p (p in seg, or seg + AM_SEGMENT_SIZE: slot 0's, whose
 * block grid test rejects it). */
am_inline am_slab_t *am_segment_slab_of(am_segment_t *seg, const void *p) {
  return seg->slot_slab[((uintptr_t)p >> AM_SMALL_SLAB_SHIFT) & (AM_SLABS_MAX - 1)];
}
am_inline am_segment_t *am_slab_segment(const am_slab_t *slab) {
  return (am_segment_t *)((uintptr_t)slab & ~(uintptr_t)AM_SEGMENT_MASK);
}
/* Bit 31 of start_lo flipped while the slab is FULL (types.h): free's grid test
 * (am_slab_off_grid) then fails for every pointer, so the fast path needs no test of its own for
 * a free into a full slab, whose slow path must move the slab back to its class queue. Every
 * state change of a slab in use goes through am_slab_set_state. */
#define AM_SLAB_FULL_FLAG 0x80000000u
/* Bit 30 of start_lo flipped while a medium slab may hold a block the profiler sampled in place
 * (types.h am_segment_t.prof_bits; AM_PROF_IN_PLACE builds): the grid test then fails for
 * every pointer as with the FULL flag (the offset is at least 2^30 - 2^22 away: not a multiple
 * of the block size, or more than 4,000 blocks of at most 256 KiB on, where a medium slab holds
 * at most 128), so the owner's frees into the slab take the slow path (alloc.c
 * am_free_off_grid), which takes a sampled block out of the profile and clears the flag once
 * no bit of the slab is set. Set and cleared by the owner only; a new slab
 * starts without it (am_slab_set_start). */
#define AM_SLAB_PROF_FLAG 0x40000000u
/* (flipped: start_lo's bit 30 differs from block 0's address bit 30, which is the segment base's) */
am_inline bool am_slab_prof_flagged(const am_slab_t *slab) {
  return ((slab->start_lo ^ (uint32_t)(uintptr_t)am_slab_segment(slab)) & AM_SLAB_PROF_FLAG) != 0;
}
/* Block 0's address: in the slab's own segment, whose base has zero low bits (so the FULL and
 * PROF flags are masked off too). Other threads read start_lo: atomic, relaxed (plain loads). */
am_inline uint32_t am_slab_start_lo(const am_slab_t *slab) {
  return __atomic_load_n(&slab->start_lo, __ATOMIC_RELAXED);
}
am_inline uint8_t *am_slab_start(const am_slab_t *slab) {
  return (uint8_t *)am_slab_segment(slab) + (am_slab_start_lo(slab) & AM_SEGMENT_MASK);
}
am_inline void am_slab_set_start(am_slab_t *slab, const uint8_t *start) {
  uint32_t flag = slab->state == AM_SLAB_FULL ? AM_SLAB_FULL_FLAG : 0;
  __atomic_store_n(&slab->start_lo, (uint32_t)(uintptr_t)start ^ flag, __ATOMIC_RELAXED);
}
am_inline void am_slab_set_state(am_slab_t *slab, am_slab_state_t state) {
  if ((slab->state == AM_SLAB_FULL) != (state == AM_SLAB_FULL))
    __atomic_store_n(&slab->start_lo, slab->start_lo ^ AM_SLAB_FULL_FLAG, __ATOMIC_RELAXED);
  slab->state = (uint8_t)state;
}
/* The index of block p (on the slab's grid) in its slab: the high word of its offset times
 * magic (= floor(2^64 / bsize) + 1): for offset k * bsize that product is k * 2^64 +
 * k * (bsize - 2^64 mod bsize), whose second term stays below 2^64. */
am_inline size_t am_block_index(const am_slab_t *slab, const void *p) {
  uint64_t off = (uint64_t)((const uint8_t *)p - am_slab_start(slab));
  return (size_t)(((unsigned __int128)off * slab->magic) >> 64);
}
/* The stack of blocks other threads freed into `slab`: one atomic word holding the top block's
 * address (below 2^AM_ADDRESS_BITS, as every block on the segment map) and, above it, how many
 * blocks the stack holds. A remote free pushes with one compare-and-swap that also counts; the
 * owner takes the whole stack with one exchange and so knows the count without walking the
 * blocks (each of which another core wrote: a walk is a chain of cache misses). 0 = empty. */
#define AM_REMOTE_SHIFT AM_ADDRESS_BITS
#define AM_REMOTE_PTR_MASK (((uintptr_t)1 << AM_REMOTE_SHIFT) - 1)
/* The slot index of a slab: its descriptor's place in the segment's array. */
am_inline size_t am_slab_index(const am_slab_t *slab) {
  return (size_t)(slab - am_slab_segment(slab)->slabs);
}
/* The owner flips AM_SLAB_PROF_FLAG (set: a block sampled in place; clear: none left). */
am_inline void am_slab_set_prof_flag(am_slab_t *slab, bool on) {
  if (am_slab_prof_flagged(slab) != on)
    __atomic_store_n(&slab->start_lo, slab->start_lo ^ AM_SLAB_PROF_FLAG, __ATOMIC_RELAXED);
}
/* The slab's words of its segment's prof_bits (types.h; medium slabs only). */
am_inline _Atomic(uint64_t) *am_slab_prof_bits(const am_slab_t *slab) {
  return am_slab_segment(slab)->prof_bits[am_slab_index(slab)];
}
/* True when no block of the slab is a sample taken in place. */
am_inline bool am_slab_prof_none(const am_slab_t *slab) {
  _Atomic(uint64_t) *bits = am_slab_prof_bits(slab);
  uint64_t any = 0;
  for (size_t w = 0; w < AM_MEDIUM_BLOCKS_MAX / 64; w++) any |= atomic_load_explicit(&bits[w], memory_order_relaxed);
  return any == 0;
}
am_inline _Atomic(uintptr_t) *am_slab_remote(const am_slab_t *slab) {
  return &am_slab_segment(slab)->remote[am_slab_index(slab)];
}
am_inline am_block_t *am_remote_top(uintptr_t w) { return (am_block_t *)(w & AM_REMOTE_PTR_MASK); }
/* The top of a stack that a purger reclaimed: it found every block of the slab on the stack
 * (count == reserved), put this in place of the blocks with one compare-and-swap, and gave the
 * slab's pages back (segment.c am_reclaim_full_stacks). The owner's next collection starts the
 * slab afresh (heap.c _am_slab_collect). Not an address any block can have. */
#define AM_REMOTE_RECLAIMED ((am_block_t *)(uintptr_t)16)
/* The top while the purger gives the slab's pages back (between its compare-and-swap and the
 * madvise's return): a collector leaves such a stack alone (the slab has no block to offer
 * meanwhile), so that its owner cannot restart the slab and hand out blocks the madvise would
 * then zero. */
#define AM_REMOTE_RECLAIMING ((am_block_t *)(uintptr_t)32)
/* The top of the stack of a slot whose slab a first-class heap's destroy or reset freed
 * (segment.c am_slot_release): a remote free that finds it (the block's heap destroyed it
 * meanwhile) is reported, and so is a free into the free slot afterwards (alloc.c
 * am_checked_slab), until the slot holds a slab again (_am_slab_init clears it). */
#define AM_REMOTE_DEAD ((am_block_t *)(uintptr_t)48)
am_inline bool am_remote_is_reclaim(const am_block_t *top) {
  return top == AM_REMOTE_RECLAIMED || top == AM_REMOTE_RECLAIMING;
}
am_inline size_t am_remote_count(uintptr_t w) { return (size_t)(w >> AM_REMOTE_SHIFT); }
am_inline uintptr_t am_remote_word(am_block_t *top, size_t count) {
  return (uintptr_t)top | ((uintptr_t)count << AM_REMOTE_SHIFT);
}
AM_INTERNAL void _am_segmap_set(am_segment_t *seg, bool on);
AM_INTERNAL size_t _am_segment_header_size(void);
AM_INTERNAL void _am_segment_layout_init(void);
AM_INTERNAL am_slab_t *_am_segment_slab_alloc(am_heap_t *heap, size_t cls);
AM_INTERNAL bool _am_segment_slab_free(am_heap_t *heap, am_slab_t *slab);
AM_INTERNAL void _am_segment_abandon_all(am_heap_t *heap);
AM_INTERNAL size_t _am_segment_trim(am_heap_t *heap);
AM_INTERNAL void _am_segment_unmap_expired(am_heap_t *heap);
AM_INTERNAL size_t _am_segment_reclaim_all(am_heap_t *heap);
AM_INTERNAL size_t _am_purge(bool force);
AM_INTERNAL void _am_purge_thread_start(void);
AM_INTERNAL void _am_purge_thread_stop(void);
AM_INTERNAL void _am_segment_fork_child(void);
AM_INTERNAL void _am_segment_heap_clear(am_heap_t *heap, am_heap_t *to);
AM_INTERNAL void _am_segment_heap_hand_over(am_heap_t *heap, am_heap_t *to);
AM_INTERNAL int64_t _am_clock_ms(void);
/* ---- purge.c ----------------------------------------------------------------------------- */
AM_INTERNAL long _am_purge_delay(size_t pool);
AM_INTERNAL void _am_purge_released(size_t pool, size_t bytes, int64_t now, int64_t freed_at);
AM_INTERNAL void _am_purge_fresh(size_t pool, size_t bytes);
AM_INTERNAL int64_t _am_purge_loop_keep(int64_t *last, int64_t now);
/* Runs a purge pass when one is due; cheap when none is. */
am_inline void am_purge_maybe(void) {
  if (am_likely(atomic_load_explicit(&am_g.dirty_segments, memory_order_relaxed) == 0 &&
                __atomic_load_n(&am_g.abandoned_count, __ATOMIC_RELAXED) == 0 &&
                atomic_load_explicit(&am_g.remote_full, memory_order_relaxed) == 0 &&
                atomic_load_explicit(&am_g.large_cache_count, memory_order_relaxed) == 0))
    return;
  if (am_g.options[AM_OPTION_PURGE_DELAY_MS] < 0) return;
  if (_am_clock_ms() < atomic_load_explicit(&am_g.next_purge, memory_order_relaxed)) return;
  _am_purge(false);
}


/* ---- heap.c ------------------------------------------------------------------------------ */
extern AM_TLS am_heap_t *am_tls_heap;
am_inline am_heap_t *am_heap_get(void) { return am_tls_heap; }
/* The calling thread's own heap (NULL until its first allocation): am_tls_heap is that heap
 * unless the thread made a first-class heap its default (am_heap_set_default). The variable's
 * address is the thread's token in am_heap_t.owner. */
extern AM_TLS am_heap_t *am_tls_home;
/* The first-class heap the calling thread last used that passed every check of a handle
 * (heapapi.c am_heap_check: cookie, kind, owner), or &am_heap_empty: am_heap_malloc's fast path
 * compares the handle with it, one compare for all the checks (and for NULL). Written by this
 * thread only: am_heap_new and the checked path set it; am_heap_delete (destroy, release: run by
 * the owner, so on this thread) puts &am_heap_empty back before the struct can be reused. */
extern AM_TLS am_heap_t *am_tls_user;
/* The free fast path's segment: a segment the calling thread's heap owns, which passed the
 * segment map test and the owner test when free last took the slow way into it (alloc.c
 * am_free_block). A pointer whose segment equals it needs neither test again: the one compare
 * stands for both (the map test's answer cannot change while the heap owns the segment). It is
 * never a segment the thread does not own: whoever takes a segment out of its owner's heap
 * (unmap, thread exit) calls am_tls_seg_forget on the owner's thread first. AM_SEG_NONE (not
 * the base of any segment, so no pointer's masked segment equals it) when there is none. */
extern AM_TLS am_segment_t *am_tls_seg;
#define AM_SEG_NONE ((am_segment_t *)(uintptr_t)1)
am_inline void am_tls_seg_forget(const am_segment_t *seg) {
  if (am_tls_seg == seg) am_tls_seg = AM_SEG_NONE;
}
/* Points each direct[] entry of a new heap at its class's current[] entry (a request of up to
 * i * 16 bytes has the class of i * 16 bytes: every class size is a multiple of 16), and each
 * dense[] entry at the class of i * 8 bytes (the dense classes are multiples of 8). */
am_inline void am_heap_init_direct(am_heap_t *heap) {
  for (size_t i = 0; i < AM_DIRECT_COUNT; i++) heap->direct[i] = &heap->current[am_class_of_small[i * 2]];
  for (size_t i = 0; i < AM_DENSE_COUNT; i++) heap->dense[i] = &heap->current[am_size_class_dense(i * 8)];
}
AM_INTERNAL am_heap_t *_am_heap_init_thread(void);
AM_INTERNAL am_heap_t *_am_heap_create(uint8_t kind);
AM_INTERNAL void _am_heap_thread_done(void *value);
AM_INTERNAL void _am_heap_retire(am_heap_t *heap);
AM_INTERNAL void *_am_heap_malloc_generic(am_heap_t *heap, size_t cls);
AM_INTERNAL void _am_heap_free_slow(am_heap_t *heap, am_slab_t *slab);
AM_INTERNAL void _am_heap_tick(am_heap_t *heap);
AM_INTERNAL void _am_heap_queue_slab(am_heap_t *heap, am_slab_t *slab);
AM_INTERNAL void _am_heap_unlink_slab(am_heap_t *heap, am_slab_t *slab);
AM_INTERNAL void _am_heap_full_push(am_heap_t *heap, am_slab_t *slab);
AM_INTERNAL size_t _am_slab_collect(am_slab_t *slab);
AM_INTERNAL void _am_slab_init(am_slab_t *slab, size_t cls);

/* ---- secure.c (AM_SECURE builds: its hooks in the one allocation path) ------------------- */
/* Bytes the secure build adds to every request served from a size class: the canary. */
#define AM_CANARY_SIZE ((size_t)(AM_SECURE ? 8 : 0))
#if AM_SECURE
/* A block in the secure build's quarantine holds AM_SECURE_FILL in its first word and from byte
 * 16 to am_secure_fill_end(bsize) (its second word is the free mark); secure.c checks both when
 * the block leaves the quarantine ("write after free"). */
#define AM_SECURE_FILL 0xDF
#define AM_SECURE_FILL_WORD (0x0101010101010101ull * AM_SECURE_FILL)
#define AM_SECURE_FILL_MAX ((size_t)128)
am_inline size_t am_secure_fill_end(size_t bsize) {
  size_t end = bsize - 8;
  return end < AM_SECURE_FILL_MAX ? end : AM_SECURE_FILL_MAX;
}
AM_INTERNAL void _am_secure_flush(am_heap_t *heap);
AM_INTERNAL void _am_secure_heap_drop(am_heap_t *heap, const char *fn);
AM_INTERNAL uintptr_t _am_secure_random(void);
AM_INTERNAL void _am_secure_fork_child(void);
#endif

/* Free-list links: plain pointers, or in the secure build stored xor the slab's random key (a
 * use-after-free write of a link then decodes to garbage, which malloc's check rejects, instead
 * of to an address of the attacker's choice). */
am_inline am_block_t *am_block_next(const am_slab_t *slab, const am_block_t *b) {
#if AM_SECURE
  return (am_block_t *)((uintptr_t)b->next ^ slab->key);
#else
  (void)slab;
  return b->next;
#endif
}
am_inline void am_block_set_next(const am_slab_t *slab, am_block_t *b, am_block_t *next) {
#if AM_SECURE
  b->next = (am_block_t *)((uintptr_t)next ^ slab->key);
#else
  (void)slab;
  b->next = next;
#endif
}

/* The mark a free block of `slab` carries in its second word (the double-free check): its
 * address plus the slab's mark key (plus, not xor: the marks of consecutive blocks differ by
 * the block size, so carving advances one register: heap.c am_slab_extend). The key is unique to this slab's life, so a mark matches
 * only the one block it was written for, in the one slab life it was written in: bytes a program
 * copies from a reused block (stale marks of earlier slabs, or of blocks at other addresses) never
 * match; live data matches only if it holds this exact secret-derived word (2^-64). */
am_inline uintptr_t am_mark_with(uintptr_t key, const void *b) { return (uintptr_t)b + key; }
am_inline uintptr_t am_block_mark(const am_slab_t *slab, const void *b) {
  return am_mark_with(slab->mark_key, b);
}

/* The block grid test without a division. With magic = floor(2^64 / bsize) + 1 and
 * u = bsize * magic mod 2^64 (1 <= u <= bsize), the product off * magic mod 2^64 is k * u for
 * off = k * bsize, and at least 2^64 / bsize (>= 2^46: bsize <= 2^18) for any other off with
 * |off| < 2^22 (negative offsets, before block 0, included); so with limit = capacity * u
 * (< 2^21), off * magic < limit iff off is the start of one of the `capacity` blocks carved so
 * far. (Lemire, Kaser, Kurz, "Faster remainder by direct computation", 2019: the error term
 * off * (magic - 2^64 / bsize) < off stays far below 2^64 / bsize.) Powers of two get the +1
 * too (floor(2^64 / bsize) alone would make u = 0). */
am_inline uint64_t am_slab_magic(size_t bsize) {
  return (uint64_t)(UINT64_MAX / bsize) + 1 + ((bsize & (bsize - 1)) == 0);
}

/* A slab's carved extent (coded: limit = bytes * magic mod 2^64, which is capacity * u): written
 * by its owner (slow paths), read by any thread that frees or measures one of its blocks, so
 * both sides are atomic (relaxed: a block handed to another thread was carved before the
 * hand-over, which orders the write that covers it; later growth does not matter to the
 * reader). Plain loads and stores in the generated code. `bytes` is capacity * bsize. */
am_inline uint64_t am_slab_limit(const am_slab_t *slab) { return __atomic_load_n(&slab->limit, __ATOMIC_RELAXED); }
am_inline void am_slab_set_limit(am_slab_t *slab, uint32_t bytes) {
  __atomic_store_n(&slab->limit, bytes * slab->magic, __ATOMIC_RELAXED);
}

/* True when p is not the start of a block of `slab` that was ever carved: before block 0, at or
 * past the carved part (0 in a free slot), or not on the block grid: one multiply, one compare
 * (am_slab_magic); also for every p while the slab is FULL (AM_SLAB_FULL_FLAG). Only for a p in
 * the slab's slot or in the segment header before it (the free path's pointer, whose slab was
 * found from p): |p - start| < 2^22. Only for the slab's owner, the one writer of start_lo and
 * limit: plain loads, which the compiler folds into the subtraction and the compare. */
am_inline bool am_slab_off_grid(const am_slab_t *slab, const void *p) {
  /* (32 bits suffice: |p - start| < 2^22, so this is p - start, or 2^32 + (p - start) when p
   * lies before block 0, an offset the test rejects as well: the bounds above hold for any
   * offset below 2^32. With the FULL flag in start_lo the offset is 2^31 away from that: a
   * multiple of bsize only for a power of two, and then 2^31 / bsize blocks on, more than a
   * slab of at most 2^20 bytes holds: every pointer fails.) */
  uint64_t off = (uint32_t)((uint32_t)(uintptr_t)p - slab->start_lo);
  return off * slab->magic >= slab->limit;
}
/* The same for any p (a free-list link read from memory may hold anything). */
am_inline bool am_slab_interior(const am_slab_t *slab, const void *p) {
  uint64_t off = (uint64_t)((const uint8_t *)p - am_slab_start(slab));
  return off >= AM_SEGMENT_SIZE || off * slab->magic >= am_slab_limit(slab);
}

#if AM_SECURE
static void am_secure_check_pop(am_slab_t *slab, am_block_t *b, am_block_t *next);
static void am_secure_handed_out(am_heap_t *heap, am_slab_t *slab, am_block_t *b);
#endif

/* Hands out block b, the head of slab's free list: the one place every path takes a block
 * (malloc's fast path, its slow path, a new slab). The secure build checks what it pops (the
 * block's mark and the decoded link) and scrubs and guards what it hands out. */
am_inline void *am_slab_take(am_heap_t *heap, am_slab_t *slab, am_block_t *b) {
  am_block_t *next = am_block_next(slab, b);
#if AM_SECURE
  am_secure_check_pop(slab, b, next);
#else
  (void)heap;
#endif
  slab->free = next;
  if (AM_CHECKS) b->mark = 0;
#if AM_SECURE
  am_secure_handed_out(heap, slab, b);
#endif
  slab->used++;
  return b;
}
/* The same, counted in the class's statistics. */
/* The allocations of class `cls` the heap has handed out (types.h: sample_left). */
am_inline uint64_t am_heap_mallocs(const am_heap_t *heap, size_t cls) {
  return __atomic_load_n(&heap->stat_mallocs[cls], __ATOMIC_RELAXED) +
         __atomic_load_n(&heap->sample_armed[cls], __ATOMIC_RELAXED) -
         (uint64_t)__atomic_load_n(&heap->sample_left[cls], __ATOMIC_RELAXED);
}

/* ---- unwind.c ---------------------------------------------------------------------------- */
AM_INTERNAL bool _am_unwind_init(void);
AM_INTERNAL int _am_unwind_backtrace(void **out, int max);

/* ---- prof.c ------------------------------------------------------------------------------ */
AM_INTERNAL void *_am_prof_malloc_small(am_heap_t *heap, am_slab_t **current);
AM_INTERNAL void *_am_prof_malloc_taken(am_heap_t *heap, am_slab_t **current, void *p);
AM_INTERNAL void _am_prof_large(void *p);
AM_INTERNAL void _am_prof_arm_heap(am_heap_t *heap);
AM_INTERNAL void _am_prof_free(void *p);
AM_INTERNAL void _am_prof_free_block(am_segment_t *seg, void *p);
/* Block p of a medium slab (checked: on the grid) is being freed, by any thread: when the
 * profiler sampled it in place (its bit in types.h prof_bits), it leaves the profile; the one
 * free that clears the bit does it. */
am_inline void am_prof_free_in_place(am_slab_t *slab, const void *p) {
  size_t k = am_block_index(slab, p);
  _Atomic(uint64_t) *w = &am_slab_prof_bits(slab)[k >> 6];
  uint64_t bit = (uint64_t)1 << (k & 63);
  if (am_unlikely(atomic_load_explicit(w, memory_order_relaxed) & bit) &&
      (atomic_fetch_and_explicit(w, ~bit, memory_order_relaxed) & bit) != 0)
    _am_prof_free((void *)p);
}
AM_INTERNAL void *_am_prof_realloc_large(am_segment_t *seg, void *p, size_t size);
AM_INTERNAL void _am_prof_init(void);
AM_INTERNAL void _am_prof_start(void);
AM_INTERNAL void _am_prof_options_changed(void);
AM_INTERNAL void _am_prof_exit(void);
AM_INTERNAL void _am_prof_fork_child(void);
AM_INTERNAL void _am_prof_large_freed(am_segment_t *seg, void *p, const char *fn);
/* True for the profiler's heap (types.h prof_heap): the owner of every sampled small or medium
 * block (NULL, an abandoned segment's owner, is not). */
am_inline bool am_heap_is_prof(const am_heap_t *owner) {
  return owner != NULL && owner == atomic_load_explicit(&am_g.prof_heap, memory_order_relaxed);
}
/* A large block just allocated: the profiler may sample it (prof.c). */
am_inline void *am_prof_large_hook(void *p) {
  if (am_unlikely(atomic_load_explicit(&am_g.prof_period, memory_order_relaxed) > 0) && p != NULL)
    _am_prof_large(p);
  return p;
}

/* Pops block b of `slab` (heap->current[cls]) on a slow path, counting it down to the next
 * sample like the fast path (alloc.c am_heap_malloc_current). */
am_inline void *am_slab_pop(am_heap_t *heap, am_slab_t *slab, am_block_t *b, size_t cls) {
  if (am_unlikely(--heap->sample_left[cls] < 0)) return _am_prof_malloc_small(heap, &heap->current[cls]);
  return am_slab_take(heap, slab, b);
}

/* ---- alloc.c ----------------------------------------------------------------------------- */
AM_INTERNAL void _am_free_sized_check(void *p, size_t size, const char *fn);
AM_INTERNAL void _am_free_aligned_sized_check(void *p, size_t alignment, size_t size, const char *fn);
static am_slab_t *am_checked_slab(am_segment_t *seg, const void *p, const char *fn);
static void am_free_marked(am_slab_t *slab, am_block_t *b);
AM_INTERNAL void _am_free_block(am_segment_t *seg, void *p);

/* ---- heapapi.c (first-class heaps) ------------------------------------------------------ */
AM_INTERNAL void _am_heap_user_release(am_heap_t *heap);
AM_INTERNAL void _am_heap_large_unlink(am_segment_t *seg, const void *p, const char *fn);
AM_INTERNAL void *_am_heap_large_realloc(am_segment_t *seg, void *p, size_t size);
/* The first-class heap a large block belongs to (NULL: none). Another thread's destroy may
 * clear it: relaxed atomic. */
am_inline am_heap_t *am_large_heap(const am_segment_t *seg) {
  return __atomic_load_n(&seg->large_heap, __ATOMIC_RELAXED);
}

/* ---- large.c ----------------------------------------------------------------------------- */
AM_INTERNAL void *_am_large_alloc(size_t size, size_t align, bool zero);
AM_INTERNAL void _am_large_free(am_segment_t *seg, void *p);
AM_INTERNAL void *_am_large_realloc(am_segment_t *seg, void *p, size_t size);
AM_INTERNAL size_t _am_large_cache_expire(int64_t now, long age);
AM_INTERNAL void _am_large_cache_evict_idle(void);

/* ---- init.c ------------------------------------------------------------------------------ */
AM_INTERNAL void _am_process_init(void);
AM_INTERNAL void _am_lock_all(void);
AM_INTERNAL void _am_unlock_all(void);

/* ---- stats.c ----------------------------------------------------------------------------- */
am_inline void am_stat_add(_Atomic(size_t) *c, size_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
am_inline void am_stat_sub(_Atomic(size_t) *c, size_t n) {
  atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

/* ---- small helpers ----------------------------------------------------------------------- */
/* A spin lock for short critical sections (a few dozen instructions): no system call when
 * uncontended or briefly contended, sched_yield while another thread holds it. */
AM_INTERNAL void _am_spin_wait(_Atomic(uint32_t) *lock);
am_inline void am_spin_lock(_Atomic(uint32_t) *lock) {
  if (am_unlikely(atomic_exchange_explicit(lock, 1, memory_order_acquire) != 0)) _am_spin_wait(lock);
}
am_inline void am_spin_unlock(_Atomic(uint32_t) *lock) { atomic_store_explicit(lock, 0, memory_order_release); }
/* A 64-bit mixing function (the splitmix64 finaliser): keys and random draws from a seed. */
am_inline uint64_t _am_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/* The size to allocate when realloc moves a block of `usable` bytes to hold `size` > usable:
 * at least an eighth more than the old block. Classes are an eighth of a doubling apart, so a
 * block grown a few bytes at a time (strings, vectors grown by naive code) would otherwise be
 * copied at every class boundary; with this it skips a class, and is copied about as often as
 * with four classes per doubling. */
am_inline size_t am_realloc_grow(size_t size, size_t usable) {
  size_t more = usable + usable / 8;
  return size > usable && size < more ? more : size;
}
am_inline size_t am_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
am_inline bool am_is_pow2(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

#endif /* AM_INTERNAL_H */
