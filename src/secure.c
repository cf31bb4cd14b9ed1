/* secure.c -- the secure build's steps in the allocation path (AM_SECURE=1:
 * libamalloc-secure.so/.a).
 *
 * There is one allocation path (alloc.c, heap.c); the secure build adds these steps to it at
 * compile time (doc/hardening.md "The secure build"):
 *   - free-list links stored xor a random per-slab key (internal.h: am_block_next), and checked
 *     at EVERY pop, of every class, on the fast path and the slow path (am_slab_pop calls
 *     am_secure_check_pop): the popped block must carry its free mark and its decoded link must
 *     be a carved block of the same slab, else the program stops ("malloc: corrupted free list",
 *     or "malloc: write after free" when the mark was overwritten). Walking a remote stack checks
 *     every link the same way (heap.c _am_slab_collect).
 *   - a block handed out holds neither its encoded link nor its free mark (am_secure_handed_out
 *     clears both words), so no byte a program can read gives away a slab's key.
 *   - a random carving order: a slab's fresh blocks go on its free list shuffled, at least
 *     AM_SECURE_MIN_CARVE at a time (heap.c am_slab_extend), and a block leaving the quarantine
 *     goes to the head of its slab's free list or behind the head at random, so that addresses
 *     handed out are not predictable from earlier ones, in every class.
 *   - a canary: every request served from a size class gets AM_CANARY_SIZE more bytes, and the
 *     last 8 bytes of the block (block + bsize - 8) hold a per-process random word xor the
 *     block's address (its low byte forced to 0xC3, so that a one-byte overflow with a string
 *     terminator is always seen). malloc_usable_size reports bsize - 8. free and realloc check
 *     it: amalloc: error: free: heap overflow past the end of a block (pointer 0x...)
 *   - a quarantine: free checks the block (interior pointer, double free, canary), fills it
 *     (its first word and bytes 16 .. min(bsize - 8, 128) with 0xDF; the second word is the free
 *     mark) and puts it in a per-thread ring of 64 blocks; it reaches its slab's free list only
 *     when 64 later frees push it out, and then its fill is checked:
 *       amalloc: error: free: write to a freed block (pointer 0x...)
 *     Allocations check the ring too, AM_SECURE_CHECK_SLOTS slots every AM_SECURE_CHECK_EVERY
 *     blocks handed out (and on every large allocation), so a write into a quarantined block is
 *     reported within 64 frees or 256 allocations, whichever comes first. The ring is checked and
 *     emptied when the thread exits (heap.c's thread destructor) and checked at process exit.
 *     Blocks of a first-class heap go to the ring only when the heap's own thread frees them;
 *     its destroy and reset check them there and drop them (heapapi.c).
 *   - guard pages (PROT_NONE): the last page of every slab slot, a page between each segment's
 *     header (the slab descriptors) and its first slab, and a page before and after every large
 *     block (segment.c, large.c).
 *   - after fork, the child draws fresh random bits (keys, carving order), not the parent's.
 * Large blocks have no canary and no quarantine: they are unmapped on free (or kept PROT_NONE
 * in the large cache), so any later access faults, and their guard pages catch overflows.
 *
 * Blocks of 16 bytes (requests of up to 8 bytes) have their canary in the mark word: the mark
 * is checked before the canary, so a double free is reported as one.
 */
#include "internal.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !AM_CHECKS
#error "the secure build needs AM_CHECKS (its mark checks build on them)"
#endif

#define AM_SECURE_RING 64
/* blocks handed out between two checks of quarantined blocks, and ring slots checked each time:
 * every slot is checked at least once per 64 / 8 * 32 = 256 allocations */
#define AM_SECURE_CHECK_EVERY 32u
#define AM_SECURE_CHECK_SLOTS 8u
/* fresh blocks a secure slab carves (and shuffles) at a time, at least: with fewer, classes
 * above 4 KiB (one block per AM_EXTEND_BYTES) would be handed out in address order */
#define AM_SECURE_MIN_CARVE 16
#define AM_E_OVERFLOW "heap overflow past the end of a block"
#define AM_E_WRITE_AFTER_FREE "write after free"
#define AM_E_WRITE_FREED "write to a freed block"
#define AM_E_FREE_LIST "corrupted free list"

static AM_TLS uint64_t am_sec_rng;
_Static_assert(sizeof(((am_heap_t *)0)->quarantine) / sizeof(void *) == AM_SECURE_RING, "ring size");
_Static_assert((AM_SECURE_CHECK_EVERY & (AM_SECURE_CHECK_EVERY - 1)) == 0, "a power of two");

/* A random word (xorshift64*, per thread, seeded from the process secret, the fork salt and a
 * counter). */
AM_INTERNAL uintptr_t _am_secure_random(void) {
  uint64_t x = am_sec_rng;
  if (am_unlikely(x == 0)) {
    uint64_t n = atomic_fetch_add_explicit(&am_g.key_counter, 1, memory_order_relaxed);
    x = _am_mix64(am_g.secret ^ am_g.rng_salt ^ (n * 0x9E3779B97F4A7C15ull)) | 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  am_sec_rng = x;
  return (uintptr_t)(x * 0x2545F4914F6CDD1Dull);
}

/* In a forked child (init.c's handler): the generators restart from fresh kernel randomness, so
 * that children of one parent do not draw the same keys and carving orders as it and each
 * other. getrandom is a system call (no allocation); without it, the child's pid and the clock. */
AM_INTERNAL void _am_secure_fork_child(void) {
  uint64_t salt = 0;
  if (syscall(SYS_getrandom, &salt, sizeof(salt), 1 /* GRND_NONBLOCK */) != (long)sizeof(salt)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    salt = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
  }
  am_g.rng_salt = _am_mix64(am_g.rng_salt ^ salt ^ ((uint64_t)getpid() << 17));
  am_sec_rng = 0;
  am_heap_t *heap = am_heap_get();
  if (heap != &am_heap_empty) heap->random_bits = 0;
}

/* One random bit (64 draws per call of _am_secure_random). */
am_inline unsigned am_sec_random_bit(am_heap_t *heap) {
  uint64_t bits = heap->random_bits;
  if (am_unlikely(bits <= 1)) bits = (uint64_t)_am_secure_random() | ((uint64_t)1 << 63);
  heap->random_bits = bits >> 1;
  return (unsigned)(bits & 1);
}

am_inline uintptr_t am_sec_canary(const void *p) {
  return ((am_g.canary_key ^ (uintptr_t)p) & ~(uintptr_t)0xFF) | 0xC3;
}

am_inline uintptr_t *am_sec_canary_at(const void *p, size_t bsize) {
  return (uintptr_t *)((uint8_t *)p + bsize - 8);
}

am_inline bool am_sec_canary_ok(const void *p, size_t bsize) {
  return *am_sec_canary_at(p, bsize) == am_sec_canary(p);
}

/* ---- the quarantine's fill ------------------------------------------------------------------ */

/* The fill of a quarantined block, 16 bytes at a time (the region [16, end) is a multiple of 8
 * bytes long, so at most one 8-byte word is left over). Blocks are 8-byte aligned at least (the
 * dense classes of first-class heaps: 24, 40, 56 bytes), so the vectors are declared 8-byte
 * aligned: unaligned 16-byte moves, as fast as aligned ones on aligned data. The empty asm
 * keeps the compiler from turning the short loops into calls of memset/memcmp. */
typedef uint64_t am_sec_v2 __attribute__((vector_size(16), may_alias, aligned(8)));
typedef uint64_t am_sec_u64a __attribute__((may_alias));
am_inline void am_sec_fill(void *p, size_t end) {
  const am_sec_v2 fill = {AM_SECURE_FILL_WORD, AM_SECURE_FILL_WORD};
  uint8_t *w = (uint8_t *)p + 16, *e = (uint8_t *)p + end;
  for (; w + 16 <= e; w += 16) {
    *(am_sec_v2 *)w = fill;
    __asm__("" : "+r"(w));
  }
  if (w < e) *(am_sec_u64a *)w = AM_SECURE_FILL_WORD;
}
/* Nonzero when [p + 16, p + end) no longer holds the fill. */
am_inline uint64_t am_sec_fill_diff(const void *p, size_t end) {
  const am_sec_v2 fill = {AM_SECURE_FILL_WORD, AM_SECURE_FILL_WORD};
  am_sec_v2 acc = {0, 0};
  const uint8_t *w = (const uint8_t *)p + 16, *e = (const uint8_t *)p + end;
  for (; w + 16 <= e; w += 16) {
    acc |= *(const am_sec_v2 *)w ^ fill;
    __asm__("" : "+r"(w));
  }
  uint64_t diff = acc[0] | acc[1];
  if (w < e) diff |= *(const am_sec_u64a *)w ^ AM_SECURE_FILL_WORD;
  return diff;
}

/* Checks that quarantined block b still holds its fill (and its mark); `fn` names the API call
 * that found it otherwise. */
am_inline void am_sec_check_fill(am_block_t *b, const char *fn) {
  am_slab_t *slab = am_segment_slab_of(am_ptr_segment(b), b);
  uint64_t diff = ((uint64_t)(uintptr_t)b->next ^ AM_SECURE_FILL_WORD) | (b->mark ^ am_block_mark(slab, b)) |
                  am_sec_fill_diff(b, am_secure_fill_end(slab->bsize));
  if (am_unlikely(diff != 0)) _am_fatal_in(fn, AM_E_WRITE_FREED, b);
}

/* Checks the next AM_SECURE_CHECK_SLOTS slots of the ring (round robin). */
static am_noinline void am_sec_check_some(am_heap_t *heap, const char *fn) {
  unsigned pos = heap->quarantine_check;
  for (unsigned i = 0; i < AM_SECURE_CHECK_SLOTS; i++) {
    am_block_t *b = heap->quarantine[pos];
    if (b != NULL) am_sec_check_fill(b, fn);
    pos = (pos + 1) & (AM_SECURE_RING - 1);
  }
  heap->quarantine_check = pos;
}

/* ---- hooks of am_slab_pop (internal.h) ------------------------------------------------------ */

/* malloc popped b from slab's free list and found its mark or its link bad. */
static am_cold __attribute__((noreturn)) void am_sec_bad_pop(am_slab_t *slab, am_block_t *b) {
  if (b->mark != am_block_mark(slab, b)) _am_fatal_in("malloc", AM_E_WRITE_AFTER_FREE, b);
  _am_fatal_in("malloc", AM_E_FREE_LIST, b);
}

/* Every block on a free list carries its mark, and its link decodes to NULL or a carved block
 * of the same slab. */
am_inline void am_secure_check_pop(am_slab_t *slab, am_block_t *b, am_block_t *next) {
  if (am_unlikely(b->mark != am_block_mark(slab, b) || (next != NULL && am_slab_interior(slab, next))))
    am_sec_bad_pop(slab, b);
}

/* A block leaves the allocator: no trace of the encoded link (the mark is cleared by
 * am_slab_pop), its canary written; now and then a few quarantined blocks are checked. */
am_inline void am_secure_handed_out(am_heap_t *heap, am_slab_t *slab, am_block_t *b) {
  b->next = NULL;
  *am_sec_canary_at(b, slab->bsize) = am_sec_canary(b);
  if (am_unlikely((++heap->quarantine_tick & (AM_SECURE_CHECK_EVERY - 1)) == 0)) am_sec_check_some(heap, "malloc");
}

/* A local free puts b at the head of its slab's free list, or behind the head at random. */
am_inline void am_secure_push(am_heap_t *heap, am_slab_t *slab, am_block_t *b) {
  am_block_t *head = slab->free;
  if (head != NULL && am_sec_random_bit(heap)) {
    am_block_set_next(slab, b, am_block_next(slab, head));
    am_block_set_next(slab, head, b);
  } else {
    am_block_set_next(slab, b, head);
    slab->free = b;
  }
}

/* ---- free's first step: the checks and the quarantine ---------------------------------------- */

/* b (of a small/medium slab) is handed to free or realloc (`fn`): its checks beyond the default
 * build's: the mark decides a double free alone (a mark cannot be copied from anywhere, so live
 * data equals it with probability 2^-64: internal.h am_block_mark), then the canary. */
am_inline void am_secure_check_block(am_segment_t *seg, am_slab_t *slab, const void *p, const char *fn) {
  if (am_unlikely(am_slab_interior(slab, p))) {
    am_checked_slab(seg, p, fn);            /* reports it */
    __builtin_unreachable();
  }
  if (am_unlikely(((const am_block_t *)p)->mark == am_block_mark(slab, p)))
    _am_fatal_in(fn, strcmp(fn, "free") == 0 ? AM_E_DOUBLE : AM_E_FREED, p);
  if (am_unlikely(!am_sec_canary_ok(p, slab->bsize))) _am_fatal_in(fn, AM_E_OVERFLOW, p);
}

/* free of small/medium block p: checks it, fills it and puts it in the calling thread's ring.
 * Returns the block that leaves the ring (its fill checked), for free to really free, or NULL.
 * A thread without a heap has no ring: p itself is returned, checked. */
static void *am_secure_quarantine(am_segment_t *seg, void *p) {
  am_slab_t *slab = am_segment_slab_of(seg, p);
  am_secure_check_block(seg, slab, p, "free");
  am_heap_t *heap = am_heap_get();
  if (am_unlikely(heap == &am_heap_empty)) return p;
  /* A block of another thread's first-class heap is not quarantined here: that heap's destroy
   * cannot reach this thread's ring (it checks and drops only its own thread's rings). */
  am_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_relaxed);
  if (am_unlikely(owner != NULL && owner->kind == AM_HEAP_USER && owner->owner != (const void *)&am_tls_home)) return p;
  am_block_t *b = p;
  b->next = (am_block_t *)(uintptr_t)AM_SECURE_FILL_WORD;
  b->mark = am_block_mark(slab, b);
  am_sec_fill(p, am_secure_fill_end(slab->bsize));
  /* (a program whose frees all land here may never empty a slab, where the default build's
   * free path ticks: the quarantine ticks instead) */
  if (am_unlikely((++heap->purge_ticks & 63) == 0)) _am_heap_tick(heap);
  unsigned pos = heap->quarantine_pos;
  am_block_t *old = heap->quarantine[pos];
  heap->quarantine[pos] = p;
  heap->quarantine_pos = (pos + 1) & (AM_SECURE_RING - 1);
  if (old != NULL) am_sec_check_fill(old, "free");
  return old;
}

/* The heap's quarantined blocks are checked and freed (its thread exits, or a first-class
 * heap that was its default is released or destroyed), while the thread owns its heaps. */
AM_INTERNAL void _am_secure_flush(am_heap_t *heap) {
  for (unsigned i = 0; i < AM_SECURE_RING; i++) {
    am_block_t *b = heap->quarantine[i];
    if (b == NULL) continue;
    heap->quarantine[i] = NULL;
    am_sec_check_fill(b, "free");
    _am_free_block(am_ptr_segment(b), b);
  }
  heap->quarantine_pos = 0;
}

/* First-class heap `heap` frees all its blocks (destroy or reset; `fn` names the call): its
 * blocks in the quarantines of its thread's heaps (a block goes to the ring of the heap that
 * is the default when it is freed; other threads do not quarantine them, see
 * am_secure_quarantine) are checked and dropped from them: their slabs go with the heap. */
AM_INTERNAL void _am_secure_heap_drop(am_heap_t *heap, const char *fn) {
  am_heap_t *home = heap->home;
  for (am_heap_t *x = home; x != NULL; x = x == home ? home->users : x->user_next) {
    for (unsigned i = 0; i < AM_SECURE_RING; i++) {
      am_block_t *b = x->quarantine[i];
      if (b == NULL || atomic_load_explicit(&am_ptr_segment(b)->heap, memory_order_relaxed) != heap) continue;
      am_sec_check_fill(b, fn);
      x->quarantine[i] = NULL;
    }
  }
}

/* At process exit: the calling thread's quarantine is checked (not freed). */
__attribute__((destructor)) static void am_sec_exit_check(void) {
  am_heap_t *heap = am_heap_get();
  if (heap == &am_heap_empty) return;
  for (unsigned i = 0; i < AM_SECURE_RING; i++)
    if (heap->quarantine[i] != NULL) am_sec_check_fill(heap->quarantine[i], "exit");
}
