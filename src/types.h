/* types.h -- amalloc's data model: every struct, the layout constants and the build knobs.
 *
 * The picture (DESIGN.md has it in full):
 *
 *   segment  A 4 MiB region, 4 MiB aligned, from one anonymous mmap. Its first bytes are the
 *            segment header (this file's am_segment_t), which holds the descriptors of all its
 *            slabs. Any pointer inside a segment finds the header by masking: ((p - 1) & ~mask).
 *            Three kinds: SMALL segments are cut into 64 slabs of 64 KiB (16 of 256 KiB with
 *            64 KiB pages), MEDIUM segments into 4 slabs of 1 MiB, and a LARGE segment is one
 *            mapping holding one large block.
 *   slab     One slot of a segment, holding blocks of one size class. The descriptor keeps a
 *            free list for the owning thread and an atomic list for frees from other threads.
 *   block    What malloc hands out. Small blocks have no header: a free block's first word is
 *            the free-list link.
 *   heap     One per thread (created on its first allocation): for each size class the queue
 *            of slabs it allocates from, the full slabs, and the segments it owns. Only the
 *            owning thread touches a heap; other threads reach a segment only through the
 *            atomic fields marked "shared" below.
 *
 * A segment belongs to one heap (segment->heap). When a thread exits, its segments are
 * abandoned (heap = NULL) and put on a process-wide list; another thread that needs a slab
 * reclaims them before it maps new memory.
 *
 * First-class heaps (am_heap_new, heapapi.c, doc/heaps.md) are heaps of the same struct that a
 * program creates: owned by the thread that created them like its own heap, with a list of
 * their large blocks, and destroyed, reset or released as a whole.
 */
#ifndef AM_TYPES_H
#define AM_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

/* AM_VALGRIND  1: the allocation API reports every block to valgrind (client requests), so
 *              memcheck run over a program using amalloc sees use after free, overflows past a
 *              block and leaks as it does for glibc's malloc (valgrind.c). The allocator's own
 *              functions are then compiled as am_*_core and valgrind.c defines the am_* API
 *              around them. */
#ifndef AM_VALGRIND
#define AM_VALGRIND 0
#endif

/* AM_SECURE    1: the secure build (libamalloc-secure.so/.a; secure.c has the list): canaries
 *              after small/medium blocks, a checked quarantine of freed blocks, free-list links
 *              encoded with per-slab keys and checked at every pop, random allocation order,
 *              guard pages around slabs, segment headers and large blocks. Its steps are
 *              compile-time hooks in the one allocation API (alloc.c, heap.c: `if (AM_SECURE)`
 *              and the am_secure_* functions of secure.c), not a second copy of it. Not
 *              combinable with AM_VALGRIND; needs AM_CHECKS. */
#ifndef AM_SECURE
#define AM_SECURE 0
#endif
#if AM_SECURE && AM_VALGRIND
#error "AM_SECURE and AM_VALGRIND cannot be combined"
#endif
/* The valgrind build wraps the allocation API: the allocator's own functions become am_*_core. */
#if AM_VALGRIND
#define am_malloc am_malloc_core
#define am_calloc am_calloc_core
#define am_realloc am_realloc_core
#define am_free am_free_core
#define am_posix_memalign am_posix_memalign_core
#define am_aligned_alloc am_aligned_alloc_core
#define am_memalign am_memalign_core
#define am_valloc am_valloc_core
#define am_pvalloc am_pvalloc_core
#define am_malloc_usable_size am_malloc_usable_size_core
#endif

#include "../include/amalloc.h"

/* ---- build knobs (one place; meson maps its options onto these) -------------------------
 * AM_DEBUG     0: release; 1: cheap internal asserts; 2: also expensive consistency checks.
 * AM_OVERRIDE  1: also define malloc/free/... and the C++ operators (libamalloc.so/.a);
 *              0: only the am_* API (libamalloc-api.a, the sanitizer builds).
 */
#ifndef AM_DEBUG
#define AM_DEBUG 0
#endif
#ifndef AM_OVERRIDE
#define AM_OVERRIDE 0
#endif
/* AM_SECURE    see above (default 0). */
/* AM_CHECKS    1 (default): the misuse checks of the free fast path (interior pointers and
 *              double frees, alloc.c). 0 only to measure what they cost (meson -Dchecks=false). */
#ifndef AM_CHECKS
#define AM_CHECKS 1
#endif

/* AM_PROF_IN_PLACE  1 when the profiler samples medium blocks where they are (prof.c): the
 * builds whose free fast path makes the grid test, which the slab's AM_SLAB_PROF_FLAG fails
 * (internal.h). The secure and valgrind builds, and the unchecked one, take every sample from
 * the profiler's own heap. */
#define AM_PROF_IN_PLACE (AM_CHECKS && !AM_SECURE && !AM_VALGRIND)

/* The heap profiler's stacks (prof.c; meson option prof_unwind): 1, amalloc's own reader of the
 * objects' call frame information (unwind.c); 0, a walk of the frame-pointer chain (the library
 * then keeps frame pointers). */
#ifndef AM_PROF_UNWINDER
#define AM_PROF_UNWINDER 1
#endif
#if AM_PROF_UNWINDER && !defined(__x86_64__)
#undef AM_PROF_UNWINDER
#define AM_PROF_UNWINDER 0                /* (unwind.c reads x86-64's registers and rules) */
#endif

/* ---- layout constants ------------------------------------------------------------------- */

/* 4 MiB segments: large enough that the mmap of a new segment is rare (one per 4 MiB of heap
 * growth) and that 64 small slabs share one header page; 4 MiB alignment is also 2 MiB aligned,
 * so transparent huge pages can back whole segments. */
#define AM_SEGMENT_SHIFT 22
#define AM_SEGMENT_SIZE ((size_t)1 << AM_SEGMENT_SHIFT)
#define AM_SEGMENT_MASK (AM_SEGMENT_SIZE - 1)

/* Page sizes amalloc lays segments out for: 4 KiB (x86-64, most arm64) to 64 KiB (arm64 and
 * ppc64le kernels built with 64 KiB pages); others are refused at start (os.c). Below 4 KiB
 * slot starts would not be AM_CLASS_ALIGN_MAX aligned; above 64 KiB the layout is untested. */
#define AM_PAGE_SIZE_MIN ((size_t)4096)
#define AM_PAGE_SIZE_MAX ((size_t)65536)

/* Small slabs are 64 KiB (64 per segment): a slab of 8 KiB blocks still holds 8 of them,
 * and an idle size class pins at most 64 KiB. With pages above 16 KiB they are 4 pages
 * (am_g.small_slab_shift, set at start by segment.c): the segment header rounded up to a page
 * fills a 64 KiB slot 0, and the secure build's header guard page and per-slot guard page
 * would leave no room at all; 4 pages leave at least one page of blocks in every slot (64 KiB
 * pages: 256 KiB slabs, 16 per segment). Medium slabs are 1 MiB (4 per segment), so the
 * largest class, 256 KiB, still fits 4 blocks per slab (3 in slab 0, behind the header). */
#define AM_SMALL_SLAB_SHIFT 16
#define AM_SMALL_SLAB_SHIFT_MAX 18        /* 4 pages of AM_PAGE_SIZE_MAX */
#define AM_MEDIUM_SLAB_SHIFT 20
#define AM_SLABS_MAX (AM_SEGMENT_SIZE >> AM_SMALL_SLAB_SHIFT)
#define AM_MEDIUM_SLABS (AM_SEGMENT_SIZE >> AM_MEDIUM_SLAB_SHIFT)
#define AM_MEDIUM_BLOCKS_MAX 128          /* blocks a medium slab holds at most (above AM_SMALL_MAX) */
_Static_assert(((size_t)4 * AM_PAGE_SIZE_MAX) == ((size_t)1 << AM_SMALL_SLAB_SHIFT_MAX),
               "small slabs are at most 4 of the largest pages");
_Static_assert(AM_SMALL_SLAB_SHIFT_MAX <= AM_MEDIUM_SLAB_SHIFT, "a medium slab holds whole small slabs");
_Static_assert(((size_t)1 << AM_SMALL_SLAB_SHIFT_MAX) / 16 <= UINT16_MAX,
               "a slab's block count fits am_slab_t.reserved");

/* Size classes (sizeclass.c has the scheme): 16..128 in steps of 16, then 8 classes per
 * doubling up to 256 KiB. Classes up to AM_SMALL_MAX live in small slabs. The smallest block
 * is 16 bytes so that a free block has room for its link and its double-free mark. */
#define AM_SMALL_MAX ((size_t)8192)
_Static_assert(((size_t)1 << AM_MEDIUM_SLAB_SHIFT) / (AM_SMALL_MAX + 16) < AM_MEDIUM_BLOCKS_MAX,
               "a medium slab's blocks fit am_segment_t.prof_bits");
#define AM_MEDIUM_MAX ((size_t)256 * 1024)
#define AM_CLASS_COUNT 99
/* Classes 96..98 (24, 40, 56 bytes) are the dense classes: only first-class heaps' requests of
 * up to AM_DENSE_MAX bytes use them (am_heap_malloc, am_heap_calloc, am_heap_realloc), with
 * 8-byte steps there; malloc never does (its blocks stay 16-byte aligned). Every build has them
 * (the secure build's quarantine fill takes 8-byte aligned blocks: secure.c). sizeclass.c. */
#define AM_DENSE_FIRST 96
#define AM_DENSE_MAX 64
/* am_heap_malloc's fast path indexes a first-class heap by (size + 7) / 8 up to AM_TABLE_MAX */
#define AM_DENSE_COUNT (AM_TABLE_MAX / 8 + 1)
/* Requests up to this size find their class with one table lookup. */
#define AM_TABLE_MAX ((size_t)1024)

/* Blocks carved at a time when a slab grows (lazily, so that a fresh slab does not fault in all
 * of its pages at once): 4 KiB worth, at least one block. */
#define AM_EXTEND_BYTES 4096

/* User addresses on x86-64/arm64 Linux with 4-level page tables are below 2^47; the segment
 * map covers that range. A pointer above it is not amalloc's. */
#define AM_ADDRESS_BITS 47
#define AM_SEGMAP_BITS ((size_t)1 << (AM_ADDRESS_BITS - AM_SEGMENT_SHIFT))
#define AM_SEGMAP_WORDS (AM_SEGMAP_BITS / 64)

/* No request may exceed this: it keeps every size computation far from overflow and is what
 * glibc refuses too (PTRDIFF_MAX). */
#define AM_MAX_REQUEST ((size_t)PTRDIFF_MAX)

/* The largest alignment served from a size class (slab starts are page aligned). */
#define AM_CLASS_ALIGN_MAX ((size_t)4096)
_Static_assert(AM_PAGE_SIZE_MIN % AM_CLASS_ALIGN_MAX == 0, "slab starts are AM_CLASS_ALIGN_MAX aligned");

/* ---- structs ---------------------------------------------------------------------------- */

typedef struct am_block_s {
  struct am_block_s *next;            /* next free block (secure build: xor the slab's key) */
  uintptr_t mark;                     /* while the block is free: am_block_mark(slab, block), the
                                         double-free check; 0 once handed out */
} am_block_t;

typedef enum am_slab_state_e {
  AM_SLAB_FREE = 0,                   /* slot not in use */
  AM_SLAB_AVAIL = 1,                  /* in its heap's class queue (may have free blocks) */
  AM_SLAB_FULL = 2,                   /* in its heap's full list (had no free block); its
                                         start_lo carries AM_SLAB_FULL_FLAG */
} am_slab_state_t;

/* A slab descriptor. Who writes what:
 *   - the owning heap's thread (seg->heap's thread): everything, with plain stores, except
 *     `limit` and `start_lo` (relaxed atomics: other threads read them). The block fields
 *     (free, used) are written by the fast paths; the others only on slow paths (slab init,
 *     extend, queue moves, release). `start_lo` and `reserved` are written under seg->lock at
 *     slot allocation and release (start_lo's FULL flag without it: readers other than free's
 *     fast path mask it off).
 *   - other threads never write a descriptor of a segment they do not own. Freeing one of its
 *     blocks they read the layout (start_lo, magic, limit, bsize, reserved) and push the block on
 *     the slab's remote stack (am_segment_t.remote[i], atomic), announced in
 *     seg->remote_pending when the stack was empty.
 *   - a purge pass or malloc_trim (any thread), under seg->lock, reads `reserved` and may replace
 *     a remote stack that holds all `reserved` blocks by AM_REMOTE_RECLAIMING, give the slab's
 *     pages back, then store AM_REMOTE_RECLAIMED (segment.c am_reclaim_full_stacks); collectors
 *     leave a RECLAIMING stack alone, and the owner restarts the slab when it collects
 *     RECLAIMED. Free slots (free_mask) it may purge under the same lock.
 * What pins a slab: used > 0 (a live block, a block in a secure quarantine, or blocks on the
 * remote stack, which `used` still counts) keeps it from being released; only its owner
 * releases it, and a current slab (heap->current[cls]) only when idle for the purge delay
 * (heap.c am_heap_release_idle). Its pages are given back while it is in use only when every
 * block is on its remote stack. A segment is unmapped only by its owner (or, abandoned, under
 * am_g.abandoned_lock by a purge pass) when no slot holds a slab, after it left am_g.segments
 * (under segments_lock, which a purge pass holds while it looks at segments); it changes kind
 * only then, under seg->lock. */
typedef struct am_slab_s {
  am_block_t *free;                   /* owner: blocks ready to hand out (LIFO) */
  uint64_t magic;                     /* floor(2^64 / bsize) + 1 (internal.h am_slab_magic) */
  uint64_t limit;                     /* (capacity * bsize) * magic mod 2^64, the carved part
                                         coded so that one multiply and one compare check a
                                         pointer (internal.h am_slab_off_grid); 0 in a free
                                         slot: every pointer is rejected */
  uint32_t start_lo;                  /* the low 32 bits of block 0's address (the block grid
                                         test needs no more; internal.h am_slab_start has it
                                         whole), bit 31 flipped while the slab is FULL
                                         (AM_SLAB_FULL_FLAG: free's grid test then fails, and
                                         its slow path moves the slab back to its queue), bit
                                         30 while a medium slab holds a block sampled in place
                                         (AM_SLAB_PROF_FLAG, internal.h) */
  uint32_t bsize;                     /* block size in bytes; 0 when the slot is free */
  uint16_t used;                      /* owner: blocks handed out and not yet back in `free`
                                         (blocks on the remote stack are still counted) */
  uint16_t capacity;                  /* blocks carved so far (lazy growth) */
  uint16_t reserved;                  /* blocks the slab can hold (at least 1, at most 16384:
                                         segment.c checks at start) */
  uint8_t state;                      /* am_slab_state_t (internal.h am_slab_set_state) */
  uint8_t cls;                        /* size class */
  /* (the slot index is the descriptor's place in the segment: internal.h am_slab_index) */
  uintptr_t mark_key;                 /* unique to this slab's life (a bijective mix of a
                                         per-heap counter and a secret): free marks are bound to
                                         it and to the block's address, so no byte a program
                                         can read before or after this slab's life matches a
                                         mark of it */
  struct am_slab_s *next;             /* owner: neighbours in the class queue or full list */
  struct am_slab_s *prev;
#if AM_SECURE
  uintptr_t key;                      /* random per slab: the free-list links (`free` and
                                         `remote` chains) are stored xor this key */
#endif
} am_slab_t;
#if !AM_SECURE
_Static_assert(sizeof(am_slab_t) == 64, "a slab descriptor is one cache line");
#endif

typedef enum am_segment_kind_e {
  AM_SEGMENT_SMALL = 0,
  AM_SEGMENT_MEDIUM = 1,
  AM_SEGMENT_LARGE = 2,
} am_segment_kind_t;

struct am_heap_s;

typedef struct am_segment_s {
  _Atomic(struct am_heap_s *) heap;   /* shared: owning heap; NULL when abandoned or LARGE */
  uint8_t kind;                       /* am_segment_kind_t */
  uint8_t slab_shift;                 /* log2 of the slab size (63 for LARGE: one "slab") */
  uint16_t slab_count;                /* slots in this segment */
  uint32_t slabs_used;                /* owner: slots in use */
  _Atomic(uint32_t) lock;             /* shared: spin lock over free_mask (writes), dirty_mask,
                                         dirty_at, remote_full_seen, the layout (kind, shift,
                                         count) and each slab's start/reserved; taken by the
                                         owner when a slot changes state or the segment changes
                                         kind, and by a purger */
  uint64_t free_mask;                 /* bit i set = slot i free (written under lock) */
  uint64_t dirty_mask;                /* bit i set = free slot i may still be resident (lock) */
  int64_t dirty_at;                   /* lock: when the oldest dirty free slot became free (ms);
                                         the slots are due at dirty_at + the delay in force */
  uint8_t thp;                        /* advised MADV_HUGEPAGE: purge whole 2 MiB halves */
  uint8_t hugetlb;                    /* backed by MAP_HUGETLB pages: never purged, only unmapped */
  uint8_t empty_kept;                 /* owner: empty, kept mapped until empty_at + delay */
  uint8_t prof_sampled;               /* LARGE: the block is in the profiler's live set (set by
                                         the allocating thread before the pointer is returned,
                                         cleared by the freeing one: prof.c) */
  uint8_t _pad2[4];
  uint64_t remote_full_seen;          /* lock: slots whose remote stack a purge pass found
                                         holding every block of the slab (reclaimed when the
                                         next pass finds them so again, the owner idle) */
  uint64_t remote_full_activity;      /* lock: the owner's slow_paths at that sighting */
  int64_t empty_at;                   /* owner: when it became empty (ms) */
  int64_t keep_until;                 /* lock (written by the owner, read by purgers): a
                                         first-class heap destroyed or reset in a loop freed
                                         its slots; neither they nor the empty segment go back
                                         to the OS before this time (ms; 0: no such hold). See
                                         purge.c _am_purge_loop_keep */
  struct am_segment_s *gnext;         /* in am_g.segments (all SMALL/MEDIUM segments) */
  struct am_segment_s *gprev;
  size_t map_size;                    /* bytes mapped from the segment's base */
  uint8_t *large_block;               /* LARGE: the block's address */
  size_t large_size;                  /* LARGE: usable bytes of the block */
  uintptr_t cookie;                   /* address ^ process secret: checked on the slow paths */
  /* LARGE: the first-class heap the block belongs to (NULL: none, an ordinary block), and then
   * its neighbours in that heap's list (next, prev below). Written under that heap's
   * large_lock only (heapapi.c); seg->heap stays NULL for every LARGE segment, so that free's
   * owner test never takes a large block for a local one. */
  struct am_heap_s *large_heap;
  struct am_segment_s *next;          /* owner: heap segment list, or the abandoned list;
                                         LARGE: the large_heap's list (under its large_lock) */
  struct am_segment_s *prev;
  am_slab_t slabs[AM_SLABS_MAX];      /* SMALL/MEDIUM: one descriptor per slot */
  am_slab_t *slot_slab[AM_SLABS_MAX]; /* SMALL/MEDIUM: for each 64 KiB of the segment, the
                                         descriptor of the slot that covers it (written with
                                         the layout: segment.c am_segment_set_kind), so that
                                         free finds a block's slab with a shift, a mask and a
                                         load, whatever the slab size (internal.h
                                         am_segment_slab_of) */
  /* shared: per slot, the blocks other threads freed into its slab (a stack). Apart from the
   * descriptors, so that remote frees do not keep taking the owner's descriptor cache lines
   * away from it (false sharing). */
  _Alignas(64) _Atomic(uintptr_t) remote[AM_SLABS_MAX]; /* top block | count << AM_REMOTE_SHIFT
                                                           (internal.h: am_remote_word) */
  /* shared: at least the number of the segment's slabs whose remote stack is not empty. The
   * protocol (it cannot lose a push): a remote free that is about to push onto an EMPTY stack
   * adds 1 first (BEFORE the push: the segment must not be touched after it, when the owner
   * may already have unmapped it); if its compare-and-swap then finds the stack non-empty, it
   * takes the 1 back before it retries (still before its push). Whoever takes a non-empty
   * stack (_am_slab_collect) subtracts 1 after. So a stack only becomes non-empty under an
   * announcement, only an emptying takes one back, and the count is never below the number of
   * non-empty stacks: a non-empty stack always leaves it non-zero, and the owner's slow path,
   * which scans a segment whenever its count is non-zero, finds every push. Pushes onto a
   * non-empty stack (most of them under steady cross-thread traffic) do not touch the count.
   * (A purger's AM_REMOTE_RECLAIMING/RECLAIMED keep a stack non-empty: no change.) Here, not in
   * the first cache line, which the owner's free fast path reads every time (heap,
   * slab_shift): other threads' writes would take that line away from the owner (false
   * sharing). */
  _Alignas(64) _Atomic(uint32_t) remote_pending;
  /* MEDIUM, AM_PROF_IN_PLACE builds: per slab (AM_MEDIUM_SLABS of them), one bit per block
   * (internal.h am_block_index), set while the profiler holds that block as a sample taken
   * where it is (prof.c am_prof_sample_in_place). The owner sets a bit (fetch-or) before it
   * returns the block; whoever frees the block, any thread, clears it (fetch-and: the one free
   * that finds it set takes the block out of the profile, internal.h am_prof_free_in_place).
   * Relaxed: a thread that frees a block got it through the program's own synchronization
   * after the fetch-or. A slab with a bit set has AM_SLAB_PROF_FLAG (internal.h), which the
   * owner clears once the slab's words are 0 (only the owner sets bits: no race with that). */
  _Alignas(64) _Atomic(uint64_t) prof_bits[AM_MEDIUM_SLABS][AM_MEDIUM_BLOCKS_MAX / 64];
} am_segment_t;

/* A LARGE segment uses only the fields before `slabs`. */
#define AM_LARGE_CACHE_SLOTS 8
/* Freed large mappings up to this size are kept for reuse (and given back after the purge
 * delay); larger ones are unmapped at once. */
#define AM_LARGE_CACHE_MAX_BLOCK ((size_t)64 << 20)
/* The cache holds at most this many bytes. */
#define AM_LARGE_CACHE_MAX_BYTES ((size_t)128 << 20)
#define AM_LARGE_HEADER_SIZE offsetof(am_segment_t, slabs)
/* A cached mapping unused for this long goes back when the heap takes fresh slab memory
 * (segment.c): at least one tick of the coarse clock (4 ms), so that a mapping freed just
 * before is still there for the next large malloc. */
#define AM_LARGE_CACHE_IDLE_MS 5

/* malloc's fast path indexes the heap by (size + 15) / 16 for requests up to AM_TABLE_MAX (every
 * class size is a multiple of 16, so the index decides the class). */
#define AM_DIRECT_COUNT (AM_TABLE_MAX / 16 + 1)

typedef struct am_heap_s {
  am_slab_t **direct[AM_DIRECT_COUNT];/* &current[class of i * 16] for each i (set once,
                                         internal.h am_heap_init_direct): malloc's fast path
                                         finds its class's slab, and its counter at a fixed
                                         distance, without a class table */
  am_slab_t **dense[AM_DENSE_COUNT];  /* &current[class of i * 8, dense classes included] for
                                         each i (set once with direct[]): am_heap_malloc's
                                         fast path on a first-class heap */
  am_slab_t *current[AM_CLASS_COUNT]; /* head of each class queue, or &am_slab_empty */
  am_slab_t *full;                    /* slabs that had no free block when last looked at */
  am_slab_t *queue_tail[AM_CLASS_COUNT]; /* last slab of each class queue (NULL when empty) */
  am_segment_t *segments[2];          /* owned SMALL and MEDIUM segments; ones with free slots
                                         first */
  size_t segment_count[2];
  struct am_heap_s *next_free;        /* in the pool of unused heaps */
  uint64_t thread_serial;             /* which thread creation this heap serves (for messages) */
  uint32_t purge_ticks;               /* free slow-path calls; every 64th checks the clock */
  uint64_t slow_paths;                /* malloc and free slow paths run (owner writes, relaxed
                                         atomic; a purger reads it: an owner that ran none
                                         between two purge passes is idle) */
  int64_t idle_scan_at;               /* ms: when _am_heap_tick next looks for idle current slabs */
  uint64_t idle_mallocs[AM_CLASS_COUNT]; /* am_heap_mallocs at the last look: a class whose count
                                         has not moved since, and whose current slab is empty,
                                         gives that slab back */
  uint32_t empty_segments;            /* owned segments with no slab, kept for reuse */
  struct am_heap_s *gnext;            /* in am_g.heaps (live heaps), under heap_lock */
  struct am_heap_s *gprev;
  /* Per class, the allocations left before the next sampled one (prof.c): malloc's fast path
   * decrements it and takes the sampled path when it goes below 0 (one sub and one branch, the
   * class's allocation counter as well: internal.h am_heap_mallocs). While the profiler is off
   * the gap is AM_PROF_OFF_GAP, so the sampled path runs once per 2^20 allocations of a class,
   * sees it off and re-arms. Owner only (plain stores); other threads read it for statistics. */
  int64_t sample_left[AM_CLASS_COUNT];
  uint64_t sample_armed[AM_CLASS_COUNT]; /* owner: sample_left's value when last armed */
  uint64_t stat_mallocs[AM_CLASS_COUNT]; /* owner: allocations counted before that arming */
  uint64_t prof_rng;                  /* owner: the sampler's random state (0: not seeded) */
#if AM_SECURE
  void *quarantine[64];               /* secure.c: freed blocks whose reuse is delayed (a ring) */
  uint32_t quarantine_pos;            /* the next slot of the ring */
  uint32_t quarantine_check;          /* the next slot the allocation path checks */
  uint32_t quarantine_tick;           /* mallocs until the next check of a few ring slots */
  uint64_t random_bits;               /* secure.c: random bits for the release order */
#endif
  uint32_t remote_skips;              /* owner: remote collections skipped for want of a hint */
  /* First-class heaps (heapapi.c; doc/heaps.md has the invariants in full).
   *   kind   AM_HEAP_THREAD: a thread's own heap (or the profiler's); AM_HEAP_USER: made by
   *          am_heap_new, live; AM_HEAP_DEAD: destroyed or released (the struct waits in the
   *          pool: a use of the stale handle is reported until am_heap_new reuses it).
   *   owner  the owning thread's token (the address of its am_tls_home, unique among live
   *          threads): only that thread allocates from the heap, destroys, resets or releases
   *          it, or makes it its default; every am_heap_* call compares it (one load each).
   *   A user heap never adopts abandoned segments (their live blocks are other threads', which
   *   a destroy would free): it takes slabs from its own segments, empty segments of its
   *   thread's own heap (`home`, where destroyed heaps' segments go), or fresh ones. Its
   *   segments go back to `home` at destroy, with every slot free, or with their blocks at
   *   release. Written by the owner only, plain, except `kind` (read by other threads'
   *   statistics: relaxed). */
  uint8_t kind;                       /* am_heap_kind_t */
  const void *owner;                  /* the owning thread's token (NULL: none yet, or DEAD) */
  uintptr_t cookie;                   /* address ^ process secret: an am_heap_t handle */
  struct am_heap_s *home;             /* USER: the creating thread's own heap */
  struct am_heap_s *users;            /* THREAD: its thread's live user heaps (list head) */
  struct am_heap_s *user_next;        /* USER: in home->users */
  struct am_heap_s *user_prev;
  size_t stat_slabs;                  /* owner (relaxed): slabs held now (user heaps exact;
                                         thread heaps approximate: adopted slabs uncounted) */
  size_t stat_resets;                 /* owner: am_heap_reset calls */
  int64_t heap_freed_at;              /* THREAD, owner: when the thread last destroyed or reset
                                         one of its first-class heaps (ms; 0: never) */
  /* shared, in a line of its own (other threads write it): 1 when a remote free may have made a
   * stack of one of this heap's segments non-empty. The freeing thread reads seg->heap before
   * its push and stores 1 here after it (release; the heap struct is never unmapped: a stale
   * heap gets a spurious hint, harmless); the owner exchanges it to 0 (acquire) before it walks
   * its segments' remote_pending counts, and without a hint walks only every 32nd time (a push
   * whose hint went to the previous owner of an adopted segment is found then). Before, every
   * slow path that needed a new slab walked all the heap's segments (a cold cache line each:
   * 11% of the time of a program filling 580 MB of small blocks). */
  _Alignas(64) _Atomic(uint32_t) remote_hint;
  /* shared (USER heaps): the heap's large blocks, a list through their segments' next/prev
   * (seg->large_heap == this heap), and its counts, under large_lock: the owner adds blocks
   * and takes the whole list at destroy/reset/release; any thread that frees or reallocates a
   * block unlinks it. A free that finds seg->large_heap cleared (its heap destroyed the block
   * meanwhile) reports the free after destroy. */
  _Atomic(uint32_t) large_lock;
  struct am_segment_s *large;
  size_t large_count;
  size_t large_usable;                /* usable bytes of those blocks */
  size_t large_mallocs;               /* ever (since creation) */
} am_heap_t;

typedef enum am_heap_kind_e {
  AM_HEAP_THREAD = 0,
  AM_HEAP_USER = 1,
  AM_HEAP_DEAD = 2,
} am_heap_kind_t;

/* The heap profiler's tables (prof.c; under am_g.prof_lock, in memory mapped for them). */
typedef struct {
  uint64_t hash;                        /* of the frames and size_key */
  uint64_t frames_hash;                 /* of the frames alone (the leak report groups by it) */
  uint64_t size_key;                    /* the blocks' size (large ones: its top 4 bits): one
                                           entry per stack and size, so that each line of a
                                           profile scales by its own sampling probability */
  uint32_t depth;
  uint32_t frames;                      /* index of its first frame in am_g.prof.frames */
  uint64_t live_count, live_bytes;      /* sampled blocks of this stack live now */
  uint64_t alloc_count, alloc_bytes;    /* sampled since the start (or am_prof_reset) */
} am_prof_stack_t;

typedef struct {
  uintptr_t addr;                       /* 0: an empty slot */
  uint32_t stack;                       /* index in am_g.prof.stacks */
  uint32_t _pad;
  uint64_t size;
} am_prof_rec_t;

typedef struct am_prof_state_s {
  am_prof_stack_t *stacks;              /* every entry, in the order they came (an entry's index
                                           never changes: live records refer to it) */
  size_t stack_cap, stack_count;
  uint32_t *stack_slots;                /* the entries by hash: index + 1 (0: an empty slot) */
  size_t slot_cap;                      /* a power of two (0: none mapped yet) */
  uintptr_t *frames;
  size_t frame_cap, frame_count;
  am_prof_rec_t *recs;
  size_t rec_cap, rec_count;
} am_prof_state_t;

/* The stack walker's cache (unwind.c): the rules of the code addresses it has walked, by a hash
 * of the address. No lock: each entry is a sequence lock of its own, every field an atomic word.
 * A writer claims an entry by moving `seq` from even to odd (compare-exchange; a busy entry is
 * simply not cached), writes the words, and releases it with seq + 2; a reader takes the words
 * only if `seq` was even and unchanged around its reads. An entry is valid for its address
 * in the object whose .eh_frame_hdr is `hdr` and which starts at `base`: an object loaded later
 * at the same address gives another pair. */
#define AM_UNW_CACHE 512                  /* entries (a power of two): 20 KiB */
typedef struct {
  _Atomic(uint64_t) seq;
  _Atomic(uintptr_t) ip;                /* the code address looked up (0: empty) */
  _Atomic(uintptr_t) hdr, base;         /* its object (see above) */
  _Atomic(uint64_t) rule;               /* unwind.c am_unw_rule_t, packed */
} am_unw_entry_t;
typedef struct am_unwind_state_s {
  uintptr_t main_lo, main_hi, main_hdr; /* the executable's range and .eh_frame_hdr (written
                                           before the state is published; then read-only) */
  bool main_static;                     /* the executable has no PT_INTERP: a static program,
                                           whose own table the walker uses (glibc's lookup
                                           fails there, or gives no table) */
  am_unw_entry_t cache[AM_UNW_CACHE];
} am_unwind_state_t;

/* ---- process-wide state -------------------------------------------------------------------
 * All of it lives in one object, `am_g` (defined in globals.c), apart from the TLS heap
 * pointer (heap.c) and the segment map (globals.c, too large for the struct's cache lines). */
typedef struct am_global_s {
  size_t page_size;                   /* sysconf(_SC_PAGESIZE), AM_PAGE_SIZE_MIN..MAX */
  size_t small_slab_shift;            /* log2 of a small slab: max(16, log2(4 pages)) (segment.c) */
  uintptr_t secret;                   /* random per process (AT_RANDOM), for cookies */
  uintptr_t free_key;                 /* random per process: the input of slabs' mark keys */
  _Atomic(uint64_t) slab_inits;       /* slabs initialised so far: each one's mark key is a
                                         bijective mix of this count, so no two are equal */
  uintptr_t canary_key;               /* random per process: the secure build's canaries */
  _Atomic(uint64_t) key_counter;      /* seeds handed to threads' generators (the secure
                                         build's, the profiler's) */
  uint64_t rng_salt;                  /* secure build: fresh random bits after a fork (the
                                         child's generators must not repeat the parent's) */
  _Atomic(int) init_state;            /* 0 none, 1 in progress, 2 done */
  pthread_key_t thread_key;           /* its destructor abandons a dying thread's heap */

  _Atomic(uintptr_t) hint;            /* next address to ask mmap for (aligned placement) */
  _Atomic(uint32_t) hint_failures;    /* hints the kernel did not honour; stop trying at 16 */

  pthread_mutex_t abandoned_lock;     /* guards abandoned[] */
  am_segment_t *abandoned[2];         /* abandoned SMALL and MEDIUM segments */
  size_t abandoned_count;

  _Atomic(uint32_t) large_lock;       /* spin lock over the cache of freed large mappings */
  struct am_segment_s *large_cache[AM_LARGE_CACHE_SLOTS]; /* freed LARGE mappings kept for reuse */
  int64_t large_cache_at[AM_LARGE_CACHE_SLOTS]; /* when each was freed (ms) */
  size_t large_cache_bytes;           /* their map_size total */
  _Atomic(size_t) large_cache_count;  /* entries in use (read without the lock by the purge check) */

  pthread_mutex_t heap_lock;          /* guards heap_pool and the meta bump area */
  am_heap_t *heap_pool;               /* heaps of exited threads, ready for reuse */
  am_heap_t *heaps;                   /* live heaps (for statistics) */
  _Atomic(uint64_t) stat_mallocs[AM_CLASS_COUNT]; /* exited heaps' stat_mallocs, merged */
  _Atomic(size_t) stat_class_slabs[AM_CLASS_COUNT];
  _Atomic(size_t) stat_class_peak_slabs[AM_CLASS_COUNT];
  _Atomic(size_t) stat_large_mallocs;
  _Atomic(size_t) stat_threads_exited;
  _Atomic(size_t) stat_thp_segments;
  _Atomic(size_t) stat_hugetlb_segments;
  uint8_t *meta_next;                 /* bump allocator for heap structs */
  uint8_t *meta_end;
  _Atomic(uint64_t) thread_serial;

  long options[AM_OPTION_COUNT];      /* options.c: values in force */

  pthread_mutex_t segments_lock;      /* guards the list of all SMALL/MEDIUM segments */
  am_segment_t *segments;             /* every SMALL/MEDIUM segment, owned or abandoned */
  _Atomic(size_t) dirty_segments;     /* segments with dirty free slots (a purge is due) */
  _Atomic(int) remote_full;           /* a remote free completed a stack holding every block
                                         of its slab: a purge pass looks for such slabs */
  _Atomic(int64_t) next_purge;        /* ms: no purge pass before this */

  /* The purge policy (purge.c): the delay in force adapts between AMALLOC_PURGE_DELAY_MS and
   * AMALLOC_PURGE_DELAY_MAX_MS. Relaxed atomics written by any thread on slow paths (a purge
   * pass, a fresh slot, a fresh large mapping): a lost update costs one decision, never
   * memory safety. Per pool (AM_SEGMENT_SMALL, MEDIUM, LARGE: memory of one pool cannot serve
   * another's request, so only a pool's own fresh memory regrets its purge). */
  _Atomic(long) purge_delay[3];       /* ms: each pool's delay in force (0: not set yet, the base) */
  _Atomic(int64_t) purge_window_at[3];/* ms: when the pool's first timed purge since the last
                                         decision gave memory back (0: none since) */
  _Atomic(int64_t) purge_last_at[3];  /* ms: the pool's latest timed purge since then */
  _Atomic(int64_t) purge_freed_at[3]; /* ms: since when the memory of that purge had been free */
  _Atomic(size_t) purge_released[3];  /* bytes timed purges gave back since the decision */
  _Atomic(size_t) purge_refetched[3]; /* fresh bytes the pool took within the regret window */
  _Atomic(size_t) stat_purge_regrets; /* decisions that lengthened the delay */
  _Atomic(size_t) stat_purge_relaxed; /* decisions that shortened it */
  _Atomic(int) purge_thread_started;
  _Atomic(int) hugetlb_failed;        /* MAP_HUGETLB refused: the fallback was reported */
  _Atomic(int) guard_failed;          /* secure build: an mprotect of a guard page failed */
  _Atomic(long) fault_calls;          /* fault injection (am_test_os_failures): calls left to */
  _Atomic(long) fault_left;           /* let through, then calls to fail (<0: all) */
  _Atomic(long) fault_count;          /* calls failed on purpose */
  _Atomic(int) fault_on;

  /* The heap profiler (prof.c). prof_period: the mean bytes between samples in force (0: not
   * sampling), read by the sampled paths without a lock; prof_heap: the heap that serves every
   * sampled small/medium block (no thread owns it, so every free of such a block takes the
   * remote-free path, where the profiler sees it), created at the first sample and then never
   * changed. Everything else of the profiler (its tables, prof_heap's lists) under prof_lock,
   * which comes before every other lock. */
  _Atomic(long) prof_period;
  _Atomic(int) prof_enabled;          /* AMALLOC_PROF (or _DUMP, _LEAKS) was set, or am_prof_set_sample */
  _Atomic(struct am_heap_s *) prof_heap;
  pthread_mutex_t prof_lock;
  am_prof_state_t prof;               /* prof.c: its tables (mapped at the first sample) */
  char prof_prefix[512];              /* AMALLOC_PROF_DUMP (empty: none) */
  /* the stack walker's cache (unwind.c): mapped once when the profiler starts, published with
   * release (NULL: not yet) */
  _Atomic(struct am_unwind_state_s *) unwind;
  _Atomic(int) unwind_ready;          /* set once by the library constructor (init.c): before
                                         it, samples get no stack (a static program's glibc is
                                         still setting up _dl_find_object, and allocating) */
  unsigned prof_seq;                  /* prof_lock: the last dump sequence number used */

  /* statistics (relaxed atomics, updated on slow paths only) */
  _Atomic(size_t) stat_segments;      /* SMALL+MEDIUM segments mapped */
  _Atomic(size_t) stat_segment_bytes;
  _Atomic(size_t) stat_slab_bytes;    /* bytes of slots holding a slab */
  _Atomic(size_t) stat_large_count;
  _Atomic(size_t) stat_large_bytes;   /* bytes mapped for large blocks */
  _Atomic(size_t) stat_large_peak;
  _Atomic(size_t) stat_large_usable;  /* usable bytes of live large blocks */
  _Atomic(size_t) stat_threads;       /* heaps created */
  _Atomic(size_t) stat_abandoned;     /* segments abandoned at thread exit */
  _Atomic(size_t) stat_reclaimed;     /* abandoned segments taken over */
  _Atomic(size_t) stat_converted;     /* empty segments given the other kind */
  _Atomic(size_t) stat_reclaimed_slabs; /* slabs whose pages a purger gave back because other
                                         threads had freed all their blocks */
  _Atomic(size_t) stat_purged_bytes;  /* bytes given back with madvise */
} am_global_t;

#endif /* AM_TYPES_H */
