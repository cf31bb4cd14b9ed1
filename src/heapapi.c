/* heapapi.c -- first-class heaps: the am_heap_* API (doc/heaps.md has the design in full).
 *
 * A first-class heap is an am_heap_t like a thread's own heap (types.h), with kind
 * AM_HEAP_USER: the same class queues and segments, so allocation from it is the ordinary slow
 * and fast paths run on another heap struct, and its blocks are ordinary blocks (free finds
 * their slab by masking, as for any block). What differs:
 *   - ownership: the creating thread owns it (heap->owner, its token). Every am_heap_* call
 *     checks the handle (cookie, kind, owner): a few loads, then the usual path.
 *   - its large blocks are on a list of its own (types.h large, under large_lock), so that a
 *     destroy finds them; free and realloc from any thread unlink theirs.
 *   - it never adopts abandoned segments (their blocks are other threads'); it borrows empty
 *     segments of its thread's own heap (`home`), where a destroyed heap's segments go: a
 *     program that makes a heap per request reuses the same resident memory each time.
 *   - destroy and reset free every slot of its segments, one pass over the slot descriptors,
 *     and every large block, one by one: time in proportion to slabs and large blocks, not to
 *     blocks. The slots' remote stacks become AM_REMOTE_DEAD (internal.h), so that a free from
 *     another thread racing the destroy, or coming after it, is reported rather than pushed
 *     onto a slab of another life.
 *   - release hands its segments (with their live blocks) to `home`, as an adopted segment,
 *     and its large blocks become ordinary ones.
 *   - am_heap_set_default points am_tls_heap (malloc's heap) at it; the free fast path's
 *     segment (am_tls_seg) is forgotten, since it must be a segment of am_tls_heap.
 * The secure build checks every live block's canary and the heap's quarantined blocks before a
 * destroy or reset; the valgrind build reports every block a destroy or reset frees to memcheck
 * as freed.
 */
#include "internal.h"

#if AM_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* ---- handles ----------------------------------------------------------------------------- */

/* Stops the program unless `heap` is a live heap owned by the calling thread. */
static void am_heap_check(am_heap_t *heap, const char *fn) {
  if (am_unlikely(heap->cookie != ((uintptr_t)heap ^ am_g.secret))) _am_fatal_in(fn, AM_E_HEAP_BAD, heap);
  if (am_unlikely(heap->kind == AM_HEAP_DEAD)) _am_fatal_in(fn, AM_E_HEAP_DEAD, heap);
  if (am_unlikely(heap->owner != (const void *)&am_tls_home)) _am_fatal_in(fn, AM_E_HEAP_OWNER, heap);
}

/* The calling thread's own heap, created if it has none (NULL without memory). */
static am_heap_t *am_heap_home(void) {
  am_ensure_init();
  am_heap_t *home = am_tls_home;
  if (home == NULL) home = _am_heap_init_thread();
  return home;
}

/* The heap an allocation call works on: `heap`, checked, or for NULL the thread's default. */
static am_heap_t *am_heap_for(am_heap_t *heap, const char *fn) {
  if (heap == NULL) {
    am_ensure_init();
    heap = am_heap_get();
    if (heap == &am_heap_empty) heap = _am_heap_init_thread();
    return heap;
  }
  am_heap_check(heap, fn);
  return heap;
}

/* ---- valgrind: blocks handed out and freed ---------------------------------------------- */

#if AM_VALGRIND
#define AM_VG_ALLOCED(p)                                                                     \
  do {                                                                                       \
    if ((p) != NULL) VALGRIND_MALLOCLIKE_BLOCK((p), am_malloc_usable_size_core(p), 0, 0);     \
  } while (0)
#define AM_VG_FREED(p)                                                                       \
  do {                                                                                       \
    VALGRIND_FREELIKE_BLOCK((p), 0);                                                         \
    VALGRIND_MAKE_MEM_DEFINED((p), 2 * sizeof(void *));                                      \
  } while (0)
#else
#define AM_VG_ALLOCED(p) ((void)0)
#define AM_VG_FREED(p) ((void)0)
#endif

/* ---- large blocks ------------------------------------------------------------------------ */

static void am_heap_large_link(am_heap_t *heap, am_segment_t *seg) {
  am_spin_lock(&heap->large_lock);
  seg->prev = NULL;
  seg->next = heap->large;
  if (seg->next != NULL) seg->next->prev = seg;
  heap->large = seg;
  heap->large_count++;
  heap->large_usable += seg->large_size;
  __atomic_store_n(&seg->large_heap, heap, __ATOMIC_RELAXED);
  am_spin_unlock(&heap->large_lock);
}

/* Large block p (of seg) leaves its first-class heap: freed or reallocated (`fn`) by any
 * thread. If the heap's destroy or reset took the block first, the free comes after it:
 * reported. (A destroy unmaps the block after it cleared large_heap under the lock; a free
 * that read the segment before that and the lock after is the window doc/heaps.md names.) */
AM_INTERNAL void _am_heap_large_unlink(am_segment_t *seg, const void *p, const char *fn) {
  am_heap_t *heap = am_large_heap(seg);
  if (heap == NULL) return;
  if ((const uint8_t *)p != seg->large_block) _am_fatal_in(fn, AM_E_INTERIOR, p);
  am_spin_lock(&heap->large_lock);
  if (am_unlikely(am_large_heap(seg) != heap)) {
    am_spin_unlock(&heap->large_lock);
    _am_fatal_in(fn, AM_E_DESTROYED, p);
  }
  if (seg->prev != NULL) seg->prev->next = seg->next;
  else heap->large = seg->next;
  if (seg->next != NULL) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  heap->large_count--;
  heap->large_usable -= seg->large_size;
  __atomic_store_n(&seg->large_heap, NULL, __ATOMIC_RELAXED);
  am_spin_unlock(&heap->large_lock);
}

/* realloc of large block p of a first-class heap: out of the heap's list while mremap may move
 * it, back in afterwards when the result is a large block still (a block shrunk into a size
 * class comes from the calling thread's default heap, as realloc's moves do). */
AM_INTERNAL void *_am_heap_large_realloc(am_segment_t *seg, void *p, size_t size) {
  am_heap_t *heap = am_large_heap(seg);
  _am_heap_large_unlink(seg, p, "realloc");
  void *q = _am_large_realloc(seg, p, size);
  void *back = q != NULL ? q : p;       /* (NULL: p is unchanged, still the heap's) */
  am_segment_t *nseg = am_ptr_segment(back);
  if (nseg->kind == AM_SEGMENT_LARGE && nseg->large_block == back &&
      __atomic_load_n(&heap->kind, __ATOMIC_RELAXED) == AM_HEAP_USER)
    am_heap_large_link(heap, nseg);
  return q;
}

/* Takes the heap's whole list of large blocks (the owner: destroy, reset, release). */
static am_segment_t *am_heap_large_take(am_heap_t *heap) {
  am_spin_lock(&heap->large_lock);
  am_segment_t *list = heap->large;
  for (am_segment_t *seg = list; seg != NULL; seg = seg->next)
    __atomic_store_n(&seg->large_heap, NULL, __ATOMIC_RELAXED);
  heap->large = NULL;
  heap->large_count = 0;
  heap->large_usable = 0;
  am_spin_unlock(&heap->large_lock);
  return list;
}

/* ---- allocation -------------------------------------------------------------------------- */

/* A block of at least `size` bytes aligned to `align` (a power of two; <= 16: malloc's; 0: a
 * first-class heap's dense classes may serve it) from `heap`; `zero`: cleared. */
static AM_API_TEXT am_noinline void *am_heap_alloc(am_heap_t *heap, size_t size, size_t align, bool zero) {
  if (align > 8 && size < 16) size = 16;
  size_t req = am_request(size);
  void *p = NULL;
  if (req <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD) && align <= AM_CLASS_ALIGN_MAX) {
    size_t cls;
    if (align == 0 && heap->kind == AM_HEAP_USER) cls = am_size_class_dense(req);
    else if (align <= 16) cls = am_size_class(req);
    else cls = am_size_class_aligned(req, align);   /* (AM_DENSE_FIRST: none) */
    if (align <= 16 || cls < AM_DENSE_FIRST) p = am_heap_malloc_class(heap, cls);
    if (p != NULL && zero) memset(p, 0, size);
    if (p != NULL || req <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD)) return p;
  }
  /* (a large block: the heap's slow path ticks, as for malloc's large blocks) */
  _am_heap_tick(heap);
  p = _am_large_alloc(req, align > 16 ? align : 0, zero);
  if (p == NULL) return NULL;
  if (heap->kind == AM_HEAP_USER) {
    am_heap_large_link(heap, am_ptr_segment(p));
    heap->large_mallocs++;
    return p;
  }
  return am_prof_large_hook(p);
}

static AM_API_TEXT am_noinline void *am_heap_malloc_checked(am_heap_t *heap, size_t size) {
  heap = am_heap_for(heap, "am_heap_malloc");
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (heap->kind == AM_HEAP_USER) am_tls_user = heap;   /* (checked: the next call is fast) */
  void *p = am_heap_alloc(heap, size, 0, false);
  AM_VG_ALLOCED(p);
  return p;
}

/* The fast path: the heap this thread used last, checked then and not deleted since
 * (internal.h am_tls_user), and a request of up to AM_TABLE_MAX bytes take malloc's own fast
 * path on the heap, through its dense[] table and without the sampling test (alloc.c
 * am_heap_malloc_current); everything else, the checks and their messages included,
 * am_heap_malloc_checked. */
AM_EXPORT void *am_heap_malloc(am_heap_t *heap, size_t size) {
  if (!AM_VALGRIND && am_likely(heap == am_tls_user)) {
    size_t req = am_request(size);
    if (am_likely(req <= AM_TABLE_MAX)) return am_heap_malloc_current(heap, heap->dense[(req + 7) >> 3], req, true);
  }
  return am_heap_malloc_checked(heap, size);
}

AM_EXPORT void *am_heap_calloc(am_heap_t *heap, size_t count, size_t size) {
  heap = am_heap_for(heap, "am_heap_calloc");
  size_t total;
  if (heap == NULL || am_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = am_heap_alloc(heap, total, 0, true);
  AM_VG_ALLOCED(p);
#if AM_VALGRIND
  if (p != NULL) VALGRIND_MAKE_MEM_DEFINED(p, total);   /* (zeroed) */
#endif
  return p;
}

AM_EXPORT void *am_heap_aligned_alloc(am_heap_t *heap, size_t alignment, size_t size) {
  heap = am_heap_for(heap, "am_heap_aligned_alloc");
  if (!am_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = am_heap_alloc(heap, size, alignment, false);
  AM_VG_ALLOCED(p);
  return p;
}

/* The heap block p belongs to: its segment's owner (small/medium) or its list's (large). */
static am_heap_t *am_block_heap(const void *p) {
  am_segment_t *seg = am_ptr_segment(p);
  if (seg->kind == AM_SEGMENT_LARGE) return am_large_heap(seg);
  return atomic_load_explicit(&seg->heap, memory_order_relaxed);
}

AM_EXPORT void *am_heap_realloc(am_heap_t *heap, void *p, size_t size) {
  heap = am_heap_for(heap, "am_heap_realloc");
  if (p == NULL) return am_heap_malloc(heap, size);
  if (size == 0) {                      /* (realloc's rule: free, NULL) */
    am_free(p);
    return NULL;
  }
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (!am_segmap_contains(am_ptr_segment(p))) _am_fatal_in("am_heap_realloc", AM_E_FOREIGN, p);
  size_t old = am_malloc_usable_size(p);     /* (its checks: freed, interior, overflow) */
  am_segment_t *seg = am_ptr_segment(p);
  bool large = seg->kind == AM_SEGMENT_LARGE;
  if (!AM_VALGRIND && am_block_heap(p) == heap) {
    /* a block of this heap: realloc's own rules (a large one stays in the heap's list) */
    if (large && size > (size_t)am_option(AM_OPTION_LARGE_THRESHOLD)) return am_realloc(p, size);
    if (!large && size <= old && (size >= old / 2 || old <= 32)) return p;
  }
  void *q = am_heap_alloc(heap, large ? size : am_realloc_grow(size, old), 0, false);
  if (q == NULL) return NULL;
  AM_VG_ALLOCED(q);
  memcpy(q, p, size < old ? size : old);
  AM_VG_FREED(p);
  am_free(p);
  return q;
}

AM_EXPORT size_t am_heap_usable_size(am_heap_t *heap, const void *p) {
  if (heap != NULL) am_heap_check(heap, "am_heap_usable_size");
  if (p == NULL) return 0;
  size_t n = am_malloc_usable_size(p);
  if (heap != NULL && am_unlikely(am_block_heap(p) != heap))
    _am_fatal_in("am_heap_usable_size", "pointer to a block of another heap", p);
  return n;
}

/* ---- the heap's live blocks (the secure build's canary check, valgrind's frees) ----------- */

#if AM_SECURE || AM_VALGRIND
/* Calls fn(slab, block, fnname) for every live small/medium block of `heap` (the owner): every
 * carved block that is neither on the slab's free list nor on its remote stack (collected
 * first). */
static void am_heap_each_live(am_heap_t *heap, void (*fn)(am_slab_t *, void *, const char *), const char *fname) {
  uint64_t seen[(((size_t)1 << AM_SMALL_SLAB_SHIFT_MAX) / 16 + 63) / 64];
  for (size_t kind = 0; kind < 2; kind++) {
    for (am_segment_t *seg = heap->segments[kind]; seg != NULL; seg = seg->next) {
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);
        uintptr_t w = atomic_load_explicit(am_slab_remote(slab), memory_order_acquire);
        if (slab->used == 0 || am_remote_is_reclaim(am_remote_top(w))) continue;   /* (none live) */
        size_t cap = slab->capacity, bsize = slab->bsize;
        uint8_t *start = am_slab_start(slab);
        memset(seen, 0, (cap + 63) / 64 * sizeof(uint64_t));
        size_t n = 0;
        for (am_block_t *b = slab->free; b != NULL && n <= cap; b = am_block_next(slab, b), n++) {
          size_t k = (size_t)((uint8_t *)b - start) / bsize;
          if (k < cap) seen[k / 64] |= (uint64_t)1 << (k % 64);
        }
        for (size_t k = 0; k < cap; k++)
          if (!((seen[k / 64] >> (k % 64)) & 1)) fn(slab, start + k * bsize, fname);
      }
    }
  }
}
#endif

#if AM_SECURE
static void am_heap_check_canary(am_slab_t *slab, void *p, const char *fn) {
  if (am_unlikely(!am_sec_canary_ok(p, slab->bsize))) _am_fatal_in(fn, "heap overflow past the end of a block", p);
}
#endif
#if AM_VALGRIND
static void am_heap_vg_free(am_slab_t *slab, void *p, const char *fn) {
  (void)slab;
  (void)fn;
  AM_VG_FREED(p);
}
#endif

/* ---- destroy, reset, release ------------------------------------------------------------- */

/* Frees every block of first-class heap `heap` (`fn` names the call): the secure build's
 * checks, then the large blocks one by one, then the slabs, slot by slot; the segments go to
 * `to` (destroy: the thread's own heap) or stay (reset: `to` NULL). */
static void am_heap_free_all(am_heap_t *heap, am_heap_t *to, const char *fn) {
  (void)fn;
#if AM_SECURE
  am_heap_each_live(heap, am_heap_check_canary, fn);   /* (quarantined blocks keep theirs) */
  _am_secure_heap_drop(heap, fn);
#elif AM_VALGRIND
  am_heap_each_live(heap, am_heap_vg_free, fn);
#endif
  am_segment_t *seg = am_heap_large_take(heap);
  while (seg != NULL) {
    am_segment_t *next = seg->next;
    seg->next = seg->prev = NULL;
    AM_VG_FREED(seg->large_block);
    _am_large_free(seg, seg->large_block);
    seg = next;
  }
  _am_segment_heap_clear(heap, to);
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) {
    heap->current[c] = &am_slab_empty;
    heap->queue_tail[c] = NULL;
  }
  heap->full = NULL;
}

/* The heap leaves its thread (destroy, release, the thread's exit): it is the default no more,
 * it leaves its thread's list and am_g.heaps, and its struct waits in the pool, DEAD. */
static void am_heap_delete(am_heap_t *heap) {
  am_heap_t *home = heap->home;
  if (am_tls_heap == heap) {
    am_tls_heap = home;
    am_tls_seg = AM_SEG_NONE;
  }
  if (heap->user_prev != NULL) heap->user_prev->user_next = heap->user_next;
  else home->users = heap->user_next;
  if (heap->user_next != NULL) heap->user_next->user_prev = heap->user_prev;
  heap->user_next = heap->user_prev = NULL;
  __atomic_store_n(&heap->kind, AM_HEAP_DEAD, __ATOMIC_RELAXED);
  heap->owner = NULL;
  if (am_tls_user == heap) am_tls_user = &am_heap_empty;   /* (am_heap_malloc: the checks report) */
  _am_heap_retire(heap);
}

AM_INTERNAL void _am_heap_user_release(am_heap_t *heap) {
#if AM_SECURE
  _am_secure_flush(heap);               /* (its ring goes: the blocks in it are freed) */
#endif
  am_segment_t *seg = am_heap_large_take(heap);
  while (seg != NULL) {                 /* (now ordinary large blocks) */
    am_segment_t *next = seg->next;
    seg->next = seg->prev = NULL;
    seg = next;
  }
  if (am_tls_heap == heap) {            /* (before its segments change owner: am_tls_seg) */
    am_tls_heap = heap->home;
    am_tls_seg = AM_SEG_NONE;
  }
  _am_segment_heap_hand_over(heap, heap->home);
  am_heap_delete(heap);
}

AM_EXPORT am_heap_t *am_heap_new(void) {
  am_heap_t *home = am_heap_home();
  am_heap_t *heap = home != NULL ? _am_heap_create(AM_HEAP_USER) : NULL;
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  heap->owner = &am_tls_home;
  heap->home = home;
  am_tls_user = heap;
  heap->user_next = home->users;
  if (heap->user_next != NULL) heap->user_next->user_prev = heap;
  home->users = heap;
  return heap;
}

AM_EXPORT void am_heap_destroy(am_heap_t *heap) {
  if (heap == NULL) return;
  am_heap_check(heap, "am_heap_destroy");
#if AM_SECURE
  if (am_tls_heap == heap) _am_secure_flush(heap);   /* (its ring goes with it) */
#endif
  am_heap_free_all(heap, heap->home, "am_heap_destroy");
  am_heap_delete(heap);
}

AM_EXPORT void am_heap_reset(am_heap_t *heap) {
  if (heap == NULL) return;
  am_heap_check(heap, "am_heap_reset");
  am_heap_free_all(heap, NULL, "am_heap_reset");
  heap->stat_resets++;
}

AM_EXPORT void am_heap_release(am_heap_t *heap) {
  if (heap == NULL) return;
  am_heap_check(heap, "am_heap_release");
  _am_heap_user_release(heap);
}

AM_EXPORT am_heap_t *am_heap_set_default(am_heap_t *heap) {
  am_heap_t *home = am_heap_home();
  if (home == NULL) return NULL;
  if (heap != NULL) am_heap_check(heap, "am_heap_set_default");
  am_heap_t *prev = am_tls_heap;
  am_tls_heap = heap != NULL ? heap : home;
  am_tls_seg = AM_SEG_NONE;             /* (internal.h: a segment of am_tls_heap only) */
  return prev == home || prev == &am_heap_empty ? NULL : prev;
}

/* ---- statistics -------------------------------------------------------------------------- */

AM_EXPORT int am_heap_stats(am_heap_t *heap, am_heap_stats_t *out) {
  if (heap == NULL || out == NULL || out->size < sizeof(am_heap_stats_t)) return EINVAL;
  am_heap_check(heap, "am_heap_stats");
  memset(out, 0, sizeof(*out));
  out->size = sizeof(*out);
  out->version = AM_HEAP_STATS_VERSION;
  for (size_t kind = 0; kind < 2; kind++) {
    out->segments += heap->segment_count[kind];
    for (am_segment_t *seg = heap->segments[kind]; seg != NULL; seg = seg->next) {
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);         /* (the owner: remote frees count as frees) */
        out->slabs++;
        out->blocks += slab->used;
        out->block_bytes += (size_t)slab->used * slab->bsize;
      }
    }
  }
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) out->mallocs += am_heap_mallocs(heap, c);
  am_spin_lock(&heap->large_lock);
  out->large_blocks = heap->large_count;
  out->large_bytes = heap->large_usable;
  am_spin_unlock(&heap->large_lock);
  out->large_mallocs = heap->large_mallocs;
  out->resets = heap->stat_resets;
  return 0;
}
