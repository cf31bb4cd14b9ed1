/* segment.c -- segments: 4 MiB aligned regions cut into slabs, owned by one heap.
 *
 * Layout: slot i of a segment starts at i << slab_shift (slot 0 behind the header, which is
 * rounded up to a page); small slabs are 64 KiB, or 4 pages when pages are larger than 16 KiB
 * (_am_segment_layout_init, which also checks at start that every slab has room for a block).
 *
 * A heap keeps its SMALL and MEDIUM segments in two lists, those with a free slot first, so
 * finding a slot is a look at the list head and a count-trailing-zeros on its free mask.
 * When a heap needs a slab and has no free slot it first takes over an abandoned segment
 * (left by an exited thread), and only then maps a new one.
 *
 * Returning memory: a slot whose slab empties is marked free and dirty, and the segment gets a
 * purge deadline (now + AMALLOC_PURGE_DELAY_MS) if it had none. A segment whose last slab
 * empties stays mapped and in its heap (its slots are purged on the usual schedule) and is
 * unmapped by its owner once it has been empty for the delay, so that a program that frees
 * and allocates much memory in turn neither maps nor faults it in again each time; the last
 * segment of each kind in a heap is never unmapped this way. With a delay of 0, and for
 * hugetlb segments, it goes at once.
 *
 * Purging (_am_purge) may run on any thread: from allocator slow paths when a deadline has
 * passed (am_purge_maybe), from malloc_trim (at once), or from the optional purge thread. So
 * that a purger can work on segments it does not own, every SMALL/MEDIUM segment is on one
 * process-wide list (am_g.segments, under am_g.segments_lock; a segment leaves it before it is
 * unmapped), and the slot masks are guarded by a per-segment spin lock that the owner takes
 * only when a slot changes state (once per 64 KiB or 1 MiB slab, never on the block paths).
 * Abandoned segments are swept too: their remote frees are collected, their empty slabs given
 * back, and empty ones unmapped, so exited threads leave nothing behind for long.
 *
 * Huge pages: with AMALLOC_THP=1 a segment is advised MADV_HUGEPAGE and purged only by 2 MiB
 * halves whose slots are all free: the upper half whole, the lower one after the header
 * (am_segment_purge_locked says why splitting that huge page is right); hugetlb-backed
 * segments are never purged, only unmapped, and their free slots never count as dirty.
 */
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

AM_INTERNAL void _am_segmap_set(am_segment_t *seg, bool on) {
  uintptr_t idx = (uintptr_t)seg >> AM_SEGMENT_SHIFT;
  if (idx >= AM_SEGMAP_BITS) _am_fatal("mapping outside the supported address range", seg);
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (on)
    atomic_fetch_or_explicit(&am_segmap[idx >> 6], bit, memory_order_release);
  else
    atomic_fetch_and_explicit(&am_segmap[idx >> 6], ~bit, memory_order_release);
}

AM_INTERNAL int64_t _am_clock_ms(void) {
  struct timespec ts;
  /* the coarse clock (a few ms resolution, read without a syscall and cheaper than the fine
   * one): plenty for delays of tens of milliseconds, and read on slow paths only */
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

AM_INTERNAL void _am_spin_wait(_Atomic(uint32_t) *lock) {
  do {
    while (atomic_load_explicit(lock, memory_order_relaxed) != 0) sched_yield();
  } while (atomic_exchange_explicit(lock, 1, memory_order_acquire) != 0);
}
static void am_seg_lock(am_segment_t *seg) { am_spin_lock(&seg->lock); }
static void am_seg_unlock(am_segment_t *seg) { am_spin_unlock(&seg->lock); }

AM_INTERNAL size_t _am_segment_header_size(void) {
  return am_align_up(sizeof(am_segment_t), am_g.page_size) + (AM_SECURE ? am_g.page_size : 0);
}

/* Offsets from the segment base of the start and end of slot `i`'s usable area, for slabs of
 * 2^shift bytes. Slot 0 starts after the header; the secure build keeps the last page of
 * every slot as a guard page (PROT_NONE). */
static size_t am_slot_start_offset(size_t shift, size_t i) {
  return (i << shift) + (i == 0 ? _am_segment_header_size() : 0);
}
static size_t am_slot_end_offset(size_t shift, size_t i) {
  return ((i + 1) << shift) - (AM_SECURE ? am_g.page_size : 0);
}
static uint8_t *am_slot_start(am_segment_t *seg, size_t i) {
  return (uint8_t *)seg + am_slot_start_offset(seg->slab_shift, i);
}
static uint8_t *am_slot_end(am_segment_t *seg, size_t i) {
  return (uint8_t *)seg + am_slot_end_offset(seg->slab_shift, i);
}

/* At start (after the page size and the size classes are known): the size of small slabs,
 * and the check that every slab of every class has room for at least one block (and at most
 * what am_slab_t.reserved holds) in every slot of its kind, slot 0 behind the header included.
 * A layout that fails it would hand out overlapping blocks: refuse to run instead. */
AM_INTERNAL void _am_segment_layout_init(void) {
  size_t page_shift = (size_t)__builtin_ctzl(am_g.page_size);
  size_t small = page_shift + 2 > AM_SMALL_SLAB_SHIFT ? page_shift + 2 : AM_SMALL_SLAB_SHIFT;
  am_g.small_slab_shift = small;
  for (size_t cls = 0; cls < AM_CLASS_COUNT; cls++) {
    size_t bsize = am_class_size[cls];
    size_t shift = bsize <= AM_SMALL_MAX ? small : AM_MEDIUM_SLAB_SHIFT;
    bool ok = shift <= AM_SMALL_SLAB_SHIFT_MAX || shift == AM_MEDIUM_SLAB_SHIFT;
    for (size_t i = 0; i < 2 && ok; i++) {     /* slot 0 (behind the header) and any other */
      size_t start = am_slot_start_offset(shift, i), end = am_slot_end_offset(shift, i);
      ok = end > start && (end - start) / bsize >= 1 && (end - start) / bsize <= UINT16_MAX &&
           start % AM_CLASS_ALIGN_MAX == 0;
    }
    if (!ok) {
      char what[160];
      size_t len = 0;
      const char *a = "segment layout: no room for a block of ", *b = " bytes in a slab (page size ";
      while (*a) what[len++] = *a++;
      len += _am_fmt_size(what + len, 24, bsize);
      while (*b) what[len++] = *b++;
      len += _am_fmt_size(what + len, 24, am_g.page_size);
      what[len++] = ')';
      what[len] = 0;
      _am_fatal(what, NULL);
    }
  }
}

/* ---- the heap's segment lists ----------------------------------------------------------- */

static void am_seglist_remove(am_heap_t *heap, am_segment_t *seg) {
  if (seg->prev != NULL) seg->prev->next = seg->next;
  else heap->segments[seg->kind] = seg->next;
  if (seg->next != NULL) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
  heap->segment_count[seg->kind]--;
}
static void am_seglist_push_front(am_heap_t *heap, am_segment_t *seg) {
  seg->prev = NULL;
  seg->next = heap->segments[seg->kind];
  if (seg->next != NULL) seg->next->prev = seg;
  heap->segments[seg->kind] = seg;
  heap->segment_count[seg->kind]++;
}
static void am_seglist_push_back(am_heap_t *heap, am_segment_t *seg) {
  am_segment_t *last = heap->segments[seg->kind];
  if (last == NULL) {
    am_seglist_push_front(heap, seg);
    return;
  }
  while (last->next != NULL) last = last->next;
  last->next = seg;
  seg->prev = last;
  seg->next = NULL;
  heap->segment_count[seg->kind]++;
}

/* ---- mapping and unmapping -------------------------------------------------------------- */

/* A mask with a bit for each of the segment's slots. */
static uint64_t am_segment_all_slots(const am_segment_t *seg) {
  return seg->slab_count == 64 ? ~(uint64_t)0 : (((uint64_t)1 << seg->slab_count) - 1);
}

/* Lays the segment out as `kind` with every slot free (a new segment, or an empty one that
 * changes kind; the caller sets the dirty marks). */
static void am_segment_set_kind(am_segment_t *seg, am_segment_kind_t kind) {
  seg->kind = (uint8_t)kind;
  seg->slab_shift = (uint8_t)(kind == AM_SEGMENT_SMALL ? am_g.small_slab_shift : AM_MEDIUM_SLAB_SHIFT);
  seg->slab_count = (uint16_t)(AM_SEGMENT_SIZE >> seg->slab_shift);
  seg->free_mask = am_segment_all_slots(seg);
  for (size_t i = 0; i < AM_SLABS_MAX; i++)   /* (types.h: free finds a slab through slot_slab) */
    seg->slot_slab[i] = &seg->slabs[i >> (seg->slab_shift - AM_SMALL_SLAB_SHIFT)];
}

static am_segment_t *am_segment_map(am_heap_t *heap, am_segment_kind_t kind) {
  unsigned flags = am_option(AM_OPTION_POPULATE) ? AM_OS_POPULATE : 0;
  am_segment_t *seg = NULL;
  bool hugetlb = false;
  if (!AM_SECURE && am_option(AM_OPTION_HUGETLB) && !atomic_load_explicit(&am_g.hugetlb_failed, memory_order_relaxed)) {
    seg = _am_os_alloc_aligned(AM_SEGMENT_SIZE, AM_SEGMENT_SIZE, 0, flags | AM_OS_HUGETLB);
    hugetlb = seg != NULL;
    if (seg == NULL && !atomic_exchange(&am_g.hugetlb_failed, 1) && am_option(AM_OPTION_VERBOSE))
      _am_message("", "AMALLOC_HUGETLB: no huge pages available (see /proc/sys/vm/nr_hugepages); "
                      "using normal pages", NULL);
  }
  if (seg == NULL) seg = _am_os_alloc_aligned(AM_SEGMENT_SIZE, AM_SEGMENT_SIZE, 0, flags);
  if (seg == NULL) return NULL;
  if (!hugetlb && am_option(AM_OPTION_THP)) {
    _am_os_advise_huge(seg, AM_SEGMENT_SIZE);
    seg->thp = 1;
    am_stat_add(&am_g.stat_thp_segments, 1);
  }
  if (hugetlb) am_stat_add(&am_g.stat_hugetlb_segments, 1);
  seg->hugetlb = hugetlb;
  /* fresh anonymous memory is zero: only the non-zero fields are set */
  am_segment_set_kind(seg, kind);
  seg->map_size = AM_SEGMENT_SIZE;
  seg->cookie = (uintptr_t)seg ^ am_g.secret;
#if AM_SECURE
  /* guard pages: after the header, and the last page of every slot */
  _am_os_guard((uint8_t *)seg + _am_segment_header_size() - am_g.page_size, am_g.page_size);
  for (size_t i = 0; i < seg->slab_count; i++) _am_os_guard(am_slot_end(seg, i), am_g.page_size);
#endif
  atomic_store_explicit(&seg->heap, heap, memory_order_relaxed);
  pthread_mutex_lock(&am_g.segments_lock);
  seg->gnext = am_g.segments;
  if (seg->gnext != NULL) seg->gnext->gprev = seg;
  am_g.segments = seg;
  pthread_mutex_unlock(&am_g.segments_lock);
  _am_segmap_set(seg, true);
  am_stat_add(&am_g.stat_segments, 1);
  am_stat_add(&am_g.stat_segment_bytes, AM_SEGMENT_SIZE);
  if (am_option(AM_OPTION_PURGE_THREAD)) _am_purge_thread_start();
  return seg;
}

/* dirty_mask read by the owner without seg->lock, as a hint (a purger clears bits under the
 * lock, with atomic stores; every other write is the owner's own). */
static uint64_t am_seg_dirty_hint(const am_segment_t *seg) {
  return __atomic_load_n(&seg->dirty_mask, __ATOMIC_RELAXED);
}

static bool am_segment_has_dirty(const am_segment_t *seg) {
  return (seg->dirty_mask & seg->free_mask) != 0;
}

static void am_segment_unmap(am_segment_t *seg) {
  am_tls_seg_forget(seg);               /* (the owner's thread: its free fast path's segment) */
  pthread_mutex_lock(&am_g.segments_lock);
  if (seg->gprev != NULL) seg->gprev->gnext = seg->gnext;
  else am_g.segments = seg->gnext;
  if (seg->gnext != NULL) seg->gnext->gprev = seg->gprev;
  pthread_mutex_unlock(&am_g.segments_lock);
  if (am_segment_has_dirty(seg)) am_stat_sub(&am_g.dirty_segments, 1);
  if (seg->thp) am_stat_sub(&am_g.stat_thp_segments, 1);
  if (seg->hugetlb) am_stat_sub(&am_g.stat_hugetlb_segments, 1);
  _am_segmap_set(seg, false);
  am_stat_sub(&am_g.stat_segments, 1);
  am_stat_sub(&am_g.stat_segment_bytes, AM_SEGMENT_SIZE);
  _am_os_free(seg, seg->map_size);
}

/* Gives back the pages of the segment's dirty free slots (caller holds seg->lock). With THP
 * only 2 MiB halves whose slots are all free; the header pages never. */
static size_t am_segment_purge_locked(am_segment_t *seg) {
  size_t released = 0;
  if (seg->hugetlb) return 0;
  uint64_t dirty = seg->dirty_mask & seg->free_mask;
  if (dirty == 0) return 0;
  if (seg->thp) {
    size_t half = seg->slab_count / 2;
    uint64_t lower = ((uint64_t)1 << half) - 1;
    uint64_t upper = am_segment_all_slots(seg) & ~lower;
    if ((seg->free_mask & upper) == upper && (dirty & upper) != 0) {
      if (_am_os_purge((uint8_t *)seg + AM_SEGMENT_SIZE / 2, AM_SEGMENT_SIZE / 2)) released += AM_SEGMENT_SIZE / 2;
      __atomic_store_n(&seg->dirty_mask, seg->dirty_mask & ~upper, __ATOMIC_RELAXED);   /* (am_seg_dirty_hint) */
    }
    /* The lower half holds the header, which stays resident, so everything after the header
     * goes: that splits the half's huge page (the kernel maps the header with small pages from
     * then on, and khugepaged may collapse the range again once slabs use it). Right: else up
     * to 2 MiB less the header stays resident for as long as the segment lives (and the last
     * segment of each kind lives as long as its heap), holding nothing; no TLB saving is
     * worth that, and purging one half whole while the other half is in use splits nothing
     * else. */
    if ((seg->free_mask & lower) == lower && (dirty & lower) != 0) {
      size_t header = _am_segment_header_size();
      if (_am_os_purge((uint8_t *)seg + header, AM_SEGMENT_SIZE / 2 - header)) released += AM_SEGMENT_SIZE / 2 - header;
      __atomic_store_n(&seg->dirty_mask, seg->dirty_mask & ~lower, __ATOMIC_RELAXED);   /* (am_seg_dirty_hint) */
    }
    /* A half with a slab in use is not purged at all; its free slots stop counting as dirty
     * (else the segment would stay on the purge schedule, and a pass run every few ms, for as
     * long as that slab lives). The release that empties the half marks it dirty again. */
    uint64_t busy = ((seg->free_mask & lower) != lower ? lower : 0) | ((seg->free_mask & upper) != upper ? upper : 0);
    if (seg->dirty_mask & busy)
      __atomic_store_n(&seg->dirty_mask, seg->dirty_mask & ~busy, __ATOMIC_RELAXED);   /* (am_seg_dirty_hint) */
  } else {
    /* one madvise per run of adjacent dirty free slots */
    while (dirty != 0) {
      size_t i = (size_t)__builtin_ctzll(dirty);
      size_t j = i;
      while (j + 1 < seg->slab_count && (dirty >> (j + 1)) & 1) j++;
      uint64_t run = (j - i + 1 == 64) ? ~(uint64_t)0 : ((((uint64_t)1 << (j - i + 1)) - 1) << i);
      dirty &= ~run;
      uint8_t *start = (uint8_t *)am_align_up((uintptr_t)am_slot_start(seg, i), am_g.page_size);
      uint8_t *end = am_slot_end(seg, j);
      if (end > start && _am_os_purge(start, (size_t)(end - start))) released += (size_t)(end - start);
      __atomic_store_n(&seg->dirty_mask, seg->dirty_mask & ~run, __ATOMIC_RELAXED);     /* (am_seg_dirty_hint) */
    }
  }
  if (!am_segment_has_dirty(seg)) am_stat_sub(&am_g.dirty_segments, 1);
  return released;
}

static size_t am_segment_purge_free_slots(am_segment_t *seg) {
  am_seg_lock(seg);
  size_t r = am_segment_purge_locked(seg);
  am_seg_unlock(seg);
  return r;
}

/* ---- slots ------------------------------------------------------------------------------ */

/* Marks slot `slab` free (no decision about the segment). `dead`: a first-class heap's destroy
 * or reset frees the slab with blocks maybe still in other threads' hands: its remote stack
 * becomes AM_REMOTE_DEAD first, under the lock (a purger reclaiming it holds the lock
 * throughout), with one exchange: a push that came first is dropped with the slab (and its announcement
 * taken back), a push that comes after finds DEAD and is reported (alloc.c am_free_generic). */
static void am_slot_release_as(am_segment_t *seg, am_slab_t *slab, bool dead) {
  am_assert(slab->state != AM_SLAB_FREE);
  if (dead) {
    /* first, before the layout is cleared: a racing free that sees the cleared layout then
     * finds DEAD too, and reports the destroyed heap (alloc.c am_checked_slab) */
    am_seg_lock(seg);
    uintptr_t w = atomic_exchange_explicit(am_slab_remote(slab), am_remote_word(AM_REMOTE_DEAD, 0),
                                           memory_order_acq_rel);
    if (w != 0) atomic_fetch_sub_explicit(&seg->remote_pending, 1, memory_order_relaxed);
    am_seg_unlock(seg);
  }
  am_stat_sub(&am_g.stat_slab_bytes, (size_t)1 << seg->slab_shift);
  am_stat_sub(&am_g.stat_class_slabs[slab->cls], 1);
  slab->state = AM_SLAB_FREE;
  slab->bsize = 0;
  slab->free = NULL;
  slab->used = 0;
  slab->capacity = 0;
  am_slab_set_limit(slab, 0);
  slab->next = slab->prev = NULL;
  if (!dead) atomic_store_explicit(am_slab_remote(slab), 0, memory_order_relaxed);
  uint64_t bit = (uint64_t)1 << am_slab_index(slab);
  long delay = _am_purge_delay(seg->kind);
  am_seg_lock(seg);
  slab->reserved = 0;                   /* (under the lock: a purger reads it) */
  seg->remote_full_seen &= ~bit;
  bool had_dirty = am_segment_has_dirty(seg);
  seg->free_mask |= bit;
  /* hugetlb pages are never purged (only unmapped with their segment): their free slots are
   * not dirty, or dirty_segments would stay above 0 and keep a purge pass due for ever */
  if (!seg->hugetlb) seg->dirty_mask |= bit;
  seg->slabs_used--;
  if (!had_dirty && !seg->hugetlb) {
    am_stat_add(&am_g.dirty_segments, 1);
    seg->dirty_at = _am_clock_ms();
  }
  if (delay == 0) am_segment_purge_locked(seg);
  am_seg_unlock(seg);
}

static void am_slot_release(am_segment_t *seg, am_slab_t *slab) { am_slot_release_as(seg, slab, false); }

/* Takes an owned segment out of its heap and unmaps it. */
static void am_segment_drop(am_heap_t *heap, am_segment_t *seg) {
  if (seg->empty_kept) heap->empty_segments--;
  seg->empty_kept = 0;
  am_seglist_remove(heap, seg);
  am_segment_unmap(seg);
}

/* Unmaps the heap's segments that have been empty for the purge delay (keeping one of each
 * kind). Cheap when there are none. */
AM_INTERNAL void _am_segment_unmap_expired(am_heap_t *heap) {
  if (heap->empty_segments == 0) return;
  if (_am_purge_delay(AM_SEGMENT_SMALL) < 0) return;
  int64_t now = _am_clock_ms();
  for (size_t kind = 0; kind < 2; kind++) {
    long delay = _am_purge_delay(kind);
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL && heap->empty_segments > 0) {
      am_segment_t *next = seg->next;
      if (seg->empty_kept && seg->empty_at + delay <= now && seg->keep_until <= now &&
          heap->segment_count[kind] > 1)
        am_segment_drop(heap, seg);
      seg = next;
    }
  }
}

/* Called when a heap-owned slab has no block in use: the slot goes back to its segment.
 * Returns true when that emptied the segment and it was unmapped. */
AM_INTERNAL bool _am_segment_slab_free(am_heap_t *heap, am_slab_t *slab) {
  am_segment_t *seg = am_slab_segment(slab);
  bool was_full = seg->free_mask == 0;
  am_slot_release(seg, slab);
  __atomic_store_n(&heap->stat_slabs, heap->stat_slabs - (heap->stat_slabs != 0), __ATOMIC_RELAXED);
  if (seg->slabs_used == 0 && heap->segment_count[seg->kind] > 1) {
    if (_am_purge_delay(seg->kind) == 0 || seg->hugetlb) {   /* (hugetlb pages are
                                                                           scarce, never purged) */
      am_segment_drop(heap, seg);
      return true;
    }
    /* keep it for a while (_am_segment_unmap_expired) */
    if (!seg->empty_kept) heap->empty_segments++;
    seg->empty_kept = 1;
    seg->empty_at = _am_clock_ms();
  }
  if (was_full) {
    /* it has a free slot again: move it to the front */
    am_seglist_remove(heap, seg);
    am_seglist_push_front(heap, seg);
  }
  return false;
}

/* Adopts an abandoned segment into `heap`: collects what other threads freed into it, queues
 * its slabs, and gives back empty slabs of classes the heap already has a slab of. An empty
 * slab of a class the heap has none of is kept and queued: its blocks are carved and its pages
 * touched already, so a new thread that adopts an exited one's segment (thread pools, waves of
 * short-lived threads) allocates from them instead of touching fresh pages of other slots
 * (threadchurn: peak RSS 6.6-8.2 -> 4.0-5.0 MiB). At most one empty slab per class is kept this
 * way; malloc_trim gives them back, and so does the heap when one of them is emptied again
 * after use. One the heap never uses stays until malloc_trim or the thread's exit (then it
 * passes on with the segment, or the purge pass's sweep of abandoned segments frees it). */
static void am_segment_adopt(am_heap_t *heap, am_segment_t *seg) {
  atomic_store_explicit(&seg->heap, heap, memory_order_release);
  for (size_t i = 0; i < seg->slab_count; i++) {
    am_slab_t *slab = &seg->slabs[i];
    if (slab->state == AM_SLAB_FREE) continue;
    slab->next = slab->prev = NULL;
    _am_slab_collect(slab);
    if (slab->used == 0 && heap->current[slab->cls] != &am_slab_empty) {
      am_slot_release(seg, slab);       /* the heap has a slab of this class already */
    } else if (slab->free != NULL || slab->capacity < slab->reserved) {
      _am_heap_queue_slab(heap, slab);
    } else {
      _am_heap_full_push(heap, slab);
    }
  }
  if (seg->free_mask != 0) am_seglist_push_front(heap, seg);
  else am_seglist_push_back(heap, seg);
  am_stat_add(&am_g.stat_reclaimed, 1);
}

static am_segment_t *am_segment_reclaim(am_heap_t *heap, am_segment_kind_t kind) {
  if (__atomic_load_n(&am_g.abandoned[kind], __ATOMIC_RELAXED) == NULL) return NULL;  /* a hint */
  pthread_mutex_lock(&am_g.abandoned_lock);
  am_segment_t *seg = am_g.abandoned[kind];
  if (seg != NULL) {
    __atomic_store_n(&am_g.abandoned[kind], seg->next, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&am_g.abandoned_count, 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&am_g.abandoned_lock);
  if (seg == NULL) return NULL;
  seg->next = seg->prev = NULL;
  am_segment_adopt(heap, seg);
  return seg;
}

/* ---- changing an empty segment's kind -------------------------------------------------- */

/* An empty segment of the other kind that `heap` keeps for reuse (empty_kept: not the last of
 * its kind), preferring one with resident (dirty) slots; NULL if there is none among the first
 * few of that list (segments with free slots are in front, so empty ones are among them). */
static am_segment_t *am_segment_find_empty(am_heap_t *heap, am_segment_kind_t kind, bool dirty_only) {
  if (AM_SECURE || heap->empty_segments == 0) return NULL;
  am_segment_t *found = NULL;
  size_t looked = 0;
  for (am_segment_t *s = heap->segments[kind == AM_SEGMENT_SMALL ? AM_SEGMENT_MEDIUM : AM_SEGMENT_SMALL];
       s != NULL && s->free_mask != 0 && looked < 16; s = s->next, looked++) {
    if (!s->empty_kept || s->slabs_used != 0) continue;
    if (am_seg_dirty_hint(s) != 0) return s;
    if (found == NULL && !dirty_only) found = s;
  }
  return found;
}

/* Makes the empty segment `seg` (all slots free) a segment of `kind` and moves it to the front
 * of that list. Its resident free slots stay resident and are preferred by the next slot
 * allocations, so memory a program freed in one phase (say, 16-64 KiB blocks, MEDIUM) serves its
 * next phase (small blocks) without new page faults and without adding to the peak RSS, and no
 * segment is mapped or unmapped meanwhile (frag: 78 segments converted, page faults 296k ->
 * 281k). The dirty marks are carried over slot by slot (a 1 MiB slot is 16 small slots). Not
 * in the secure build, whose slots end in guard pages. */
static void am_segment_convert(am_heap_t *heap, am_segment_t *seg, am_segment_kind_t kind) {
  am_assert(seg->slabs_used == 0 && seg->kind != kind);
  am_seglist_remove(heap, seg);
  /* small slots per medium slot: 16 (4 with 64 KiB pages) */
  const size_t ratio = (size_t)1 << (AM_MEDIUM_SLAB_SHIFT - am_g.small_slab_shift);
  am_seg_lock(seg);                     /* a purger reads the layout under this lock */
  uint64_t dirty = seg->dirty_mask & seg->free_mask, mapped = 0;
  if (kind == AM_SEGMENT_SMALL) {
    for (size_t i = 0; i < seg->slab_count; i++)
      if ((dirty >> i) & 1) mapped |= (((uint64_t)1 << ratio) - 1) << (i * ratio);
  } else {
    for (size_t i = 0; i < (AM_SEGMENT_SIZE >> AM_MEDIUM_SLAB_SHIFT); i++)
      if ((dirty >> (i * ratio)) & ((((uint64_t)1 << ratio) - 1))) mapped |= (uint64_t)1 << i;
  }
  am_segment_set_kind(seg, kind);
  seg->dirty_mask = mapped;             /* (non-zero iff it was: dirty_segments stays right) */
  am_seg_unlock(seg);
  am_seglist_push_front(heap, seg);
  am_stat_add(&am_g.stat_converted, 1);
}

/* Moves empty segment `seg` (every slot free) of heap `from` to heap `to`, both owned by the
 * calling thread, as an empty segment `to` keeps for reuse (or unmaps after the delay). */
static void am_segment_move_empty(am_heap_t *from, am_heap_t *to, am_segment_t *seg) {
  am_assert(seg->slabs_used == 0);
  if (seg->empty_kept) from->empty_segments--;
  am_seglist_remove(from, seg);
  am_tls_seg_forget(seg);
  atomic_store_explicit(&seg->heap, to, memory_order_release);
  am_seglist_push_front(to, seg);
  seg->empty_kept = 1;
  seg->empty_at = _am_clock_ms();
  to->empty_segments++;
}

/* An empty segment of kind `kind` for first-class heap `heap`, taken from its thread's own heap
 * (the segments of destroyed heaps wait there, resident, until the purge delay): the next
 * request's heap reuses them without a page fault. One of the other kind is converted. NULL
 * when there is none. */
static am_segment_t *am_segment_borrow(am_heap_t *heap, am_segment_kind_t kind) {
  am_heap_t *home = heap->home;
  if (home == NULL || home->empty_segments == 0) return NULL;
  am_segment_t *found = NULL;
  size_t looked = 0;
  for (am_segment_t *s = home->segments[kind]; s != NULL && s->free_mask != 0 && looked < 16; s = s->next, looked++)
    if (s->empty_kept && s->slabs_used == 0) {
      found = s;
      break;
    }
  if (found == NULL && (found = am_segment_find_empty(home, kind, false)) != NULL)
    am_segment_convert(home, found, kind);
  if (found == NULL) return NULL;
  am_segment_move_empty(home, heap, found);
  found->empty_kept = 0;                /* (in use at once) */
  heap->empty_segments--;
  return found;
}

/* Frees every slab of `heap` (a first-class heap's destroy or reset: its blocks are all freed at
 * once; their remote stacks become AM_REMOTE_DEAD). `to` NULL (reset): the segments stay, empty,
 * for the heap's next allocations (beyond one of each kind they are unmapped after the delay);
 * else (destroy) they go to heap `to`, the thread's own heap, as empty segments, or are
 * unmapped at once when the delay is 0 (or for hugetlb segments). Time: one pass over the slot
 * descriptors. */
AM_INTERNAL void _am_segment_heap_clear(am_heap_t *heap, am_heap_t *to) {
  int64_t now = _am_clock_ms();
  int64_t keep = _am_purge_loop_keep(&heap->home->heap_freed_at, now);
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL) {
      am_segment_t *next = seg->next;
      uint64_t used = ~seg->free_mask & am_segment_all_slots(seg);
      if (keep != 0) {
        am_seg_lock(seg);
        if (keep > seg->keep_until) seg->keep_until = keep;
        am_seg_unlock(seg);
      }
      while (used != 0) {
        size_t i = (size_t)__builtin_ctzll(used);
        used &= used - 1;
        am_slot_release_as(seg, &seg->slabs[i], true);
      }
      if (to == NULL) {
        if (!seg->empty_kept) heap->empty_segments++;
        seg->empty_kept = 1;
        seg->empty_at = now;
      } else if (_am_purge_delay(seg->kind) == 0 || seg->hugetlb) {
        am_segment_drop(heap, seg);
      } else {
        am_segment_move_empty(heap, to, seg);
      }
      seg = next;
    }
  }
  __atomic_store_n(&heap->stat_slabs, 0, __ATOMIC_RELAXED);
}

/* Hands every segment of first-class heap `heap` to heap `to` (the thread's own: am_heap_release
 * and the thread's exit): its live blocks stay where they are and become `to`'s, as when a
 * thread adopts an abandoned segment. */
AM_INTERNAL void _am_segment_heap_hand_over(am_heap_t *heap, am_heap_t *to) {
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg;
    while ((seg = heap->segments[kind]) != NULL) {
      if (seg->slabs_used == 0) {
        am_segment_move_empty(heap, to, seg);
        continue;
      }
      if (seg->empty_kept) heap->empty_segments--;
      seg->empty_kept = 0;
      am_seglist_remove(heap, seg);
      am_tls_seg_forget(seg);
      am_segment_adopt(to, seg);
      am_stat_sub(&am_g.stat_reclaimed, 1);   /* (not an abandoned segment) */
    }
  }
  __atomic_store_n(&heap->stat_slabs, 0, __ATOMIC_RELAXED);
}

/* A fresh slab of class `cls` for `heap`, or NULL (errno ENOMEM) when the OS has no memory. */
AM_INTERNAL am_slab_t *_am_segment_slab_alloc(am_heap_t *heap, size_t cls) {
  am_segment_kind_t kind =
      am_class_size[cls] <= AM_SMALL_MAX ? AM_SEGMENT_SMALL : AM_SEGMENT_MEDIUM;
  am_segment_t *seg = heap->segments[kind];
  if (seg == NULL || seg->free_mask == 0) {
    /* Take over abandoned segments until one has a free slot. Not a first-class heap: their
     * live blocks are other threads', which its destroy would free; it takes an empty segment
     * of its thread's own heap instead (where destroyed heaps' segments go). */
    if (heap->kind == AM_HEAP_THREAD) {
      for (;;) {
        seg = am_segment_reclaim(heap, kind);
        if (seg == NULL || seg->free_mask != 0) break;
      }
    } else {
      seg = am_segment_borrow(heap, kind);
    }
    if (seg == NULL && (seg = am_segment_find_empty(heap, kind, false)) != NULL)
      am_segment_convert(heap, seg, kind);
    if (seg == NULL) {
      seg = am_segment_map(heap, kind);
      if (seg == NULL) return NULL;
      am_seglist_push_front(heap, seg);
    }
  }
  /* Prefer a free slot that is still resident (dirty: freed, not purged yet), in this segment or
   * the next few with free slots: reusing it touches no fresh pages, and a clean slot taken
   * while dirty ones wait for their purge would add to the peak RSS. (dirty_mask is read
   * without the lock here: a hint; the lock below decides.) */
  if ((seg->free_mask & am_seg_dirty_hint(seg)) == 0) {
    size_t looked = 0;
    for (am_segment_t *s = seg->next; s != NULL && s->free_mask != 0 && looked < 4; s = s->next, looked++) {
      if ((s->free_mask & am_seg_dirty_hint(s)) != 0) {
        seg = s;
        break;
      }
    }
    /* none: an empty segment of the other kind with resident slots serves better than fresh
     * pages (which would add to the peak RSS while those wait for their purge) */
    if ((seg->free_mask & am_seg_dirty_hint(seg)) == 0) {
      am_segment_t *e = am_segment_find_empty(heap, kind, true);
      if (e != NULL) {
        am_segment_convert(heap, e, kind);
        seg = e;
      }
    }
  }
  am_assert(seg->free_mask != 0);
  am_seg_lock(seg);
  uint64_t dirty_free = seg->free_mask & seg->dirty_mask;
  size_t i = (size_t)__builtin_ctzll(dirty_free != 0 ? dirty_free : seg->free_mask);
  bool had_dirty = am_segment_has_dirty(seg);
  seg->free_mask &= ~((uint64_t)1 << i);
  seg->dirty_mask &= ~((uint64_t)1 << i);
  seg->slabs_used++;
  am_slab_t *slab = &seg->slabs[i];
  /* (the layout under the lock: a purger reads `reserved`, am_reclaim_full_stacks) */
  am_slab_set_start(slab, am_slot_start(seg, i));
  slab->reserved = (uint16_t)((size_t)(am_slot_end(seg, i) - am_slot_start(seg, i)) / am_class_size[cls]);
  if (seg->empty_kept) {                /* a kept empty segment is in use again */
    seg->empty_kept = 0;
    heap->empty_segments--;
  }
  if (had_dirty && !am_segment_has_dirty(seg)) am_stat_sub(&am_g.dirty_segments, 1);
  am_seg_unlock(seg);
  /* A clean slot: the heap grows into fresh pages. Freed large mappings that have sat in the
   * cache for a few ms are not what it needs (it asked for slab memory), and holding them now
   * would add them to the peak RSS (sqlite3 freed a 32 MiB sorter block, then grew its page
   * cache by 35 MiB): they go back now. Younger ones stay, for programs that free and
   * allocate large blocks in turn. */
  if (dirty_free == 0) {
    /* (the profiler's heap takes and gives back slabs with its samples: not the program's want
     * of memory, which is what a regretted purge means) */
    if (heap != atomic_load_explicit(&am_g.prof_heap, memory_order_relaxed))
      _am_purge_fresh(kind, (size_t)1 << seg->slab_shift);
    if (atomic_load_explicit(&am_g.large_cache_count, memory_order_relaxed) != 0)
      _am_large_cache_evict_idle();
  }
  if (seg->free_mask == 0 && seg->next != NULL) {
    /* full: keep segments with free slots in front */
    am_seglist_remove(heap, seg);
    am_seglist_push_back(heap, seg);
  }
  am_stat_add(&am_g.stat_slab_bytes, (size_t)1 << seg->slab_shift);
  size_t now = atomic_fetch_add_explicit(&am_g.stat_class_slabs[cls], 1, memory_order_relaxed) + 1;
  if (now > atomic_load_explicit(&am_g.stat_class_peak_slabs[cls], memory_order_relaxed))
    atomic_store_explicit(&am_g.stat_class_peak_slabs[cls], now, memory_order_relaxed);
  __atomic_store_n(&heap->stat_slabs, heap->stat_slabs + 1, __ATOMIC_RELAXED);
  _am_slab_init(slab, cls);
  return slab;
}

/* ---- thread exit ------------------------------------------------------------------------ */

AM_INTERNAL void _am_segment_abandon_all(am_heap_t *heap) {
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL) {
      am_segment_t *next = seg->next;
      /* Empty slabs stay formatted while a block of the segment is live, for the thread that
       * adopts it (am_segment_adopt); a segment with no live block is unmapped. */
      bool live = false;
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);
        live |= slab->used != 0;
      }
      seg->next = seg->prev = NULL;
      seg->empty_kept = 0;
      if (!live) {
        for (size_t i = 0; i < seg->slab_count; i++)
          if (seg->slabs[i].state != AM_SLAB_FREE) am_slot_release(seg, &seg->slabs[i]);
        am_segment_unmap(seg);
      } else {
        /* (its free slots keep their purge deadline: a later purge pass gives them back) */
        atomic_store_explicit(&seg->heap, NULL, memory_order_release);
        pthread_mutex_lock(&am_g.abandoned_lock);
        seg->next = am_g.abandoned[kind];
        __atomic_store_n(&am_g.abandoned[kind], seg, __ATOMIC_RELAXED);
        __atomic_fetch_add(&am_g.abandoned_count, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&am_g.abandoned_lock);
        am_stat_add(&am_g.stat_abandoned, 1);
      }
      seg = next;
    }
    heap->segments[kind] = NULL;
    heap->segment_count[kind] = 0;
  }
  heap->empty_segments = 0;
}

/* ---- trimming --------------------------------------------------------------------------- */

/* Purges the dirty free slots of the heap's segments, and unmaps its empty segments.
 * Returns the number of bytes given back. */
AM_INTERNAL size_t _am_segment_trim(am_heap_t *heap) {
  size_t released = 0;
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL) {
      am_segment_t *next = seg->next;
      if (seg->slabs_used == 0) {
        am_segment_drop(heap, seg);
        released += AM_SEGMENT_SIZE;
        seg = next;
        continue;
      }
      released += am_segment_purge_free_slots(seg);
      seg = next;
    }
  }
  return released;
}

/* Takes over every abandoned segment (so that its empty slabs and segments can be given
 * back). Returns how many were taken. */
AM_INTERNAL size_t _am_segment_reclaim_all(am_heap_t *heap) {
  size_t n = 0;
  for (size_t kind = 0; kind < 2; kind++) {
    while (am_segment_reclaim(heap, (am_segment_kind_t)kind) != NULL) n++;
  }
  return n;
}

/* ---- purging on time -------------------------------------------------------------------- */

/* Sweeps the abandoned segments: collects what other threads freed into them, gives back
 * their empty slabs and unmaps the empty ones. Returns bytes unmapped. */
static size_t am_sweep_abandoned(void) {
  size_t released = 0;
  if (__atomic_load_n(&am_g.abandoned_count, __ATOMIC_RELAXED) == 0) return 0;
  if (pthread_mutex_trylock(&am_g.abandoned_lock) != 0) return 0;
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t **link = &am_g.abandoned[kind];
    while (*link != NULL) {
      am_segment_t *seg = *link;
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);
        if (slab->used == 0) am_slot_release(seg, slab);
      }
      if (seg->slabs_used == 0) {
        __atomic_store_n(link, seg->next, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&am_g.abandoned_count, 1, __ATOMIC_RELAXED);
        am_segment_unmap(seg);
        released += AM_SEGMENT_SIZE;
      } else {
        link = &seg->next;
      }
    }
  }
  pthread_mutex_unlock(&am_g.abandoned_lock);
  return released;
}

/* Gives back the pages of slabs whose every block other threads have freed (the stack holds
 * `reserved` blocks), whatever their owner is doing: it may be blocked for good, and only its
 * own slow paths would collect them. Such a slab has no live block and no block on its owner's
 * free list, so nothing but a collection of its stack touches its memory; one compare-and-swap
 * replaces the stack by AM_REMOTE_RECLAIMING (which keeps the count, so remote_pending stays
 * right; collectors leave it alone), the pages go, then AM_REMOTE_RECLAIMED, which the owner's
 * next collection turns into a fresh slab (heap.c). A purger reads only
 * `reserved`, written under seg->lock. Without `force` a slab is reclaimed when a second pass
 * finds its stack full (at least half a purge delay later) and its owner ran no slow path in
 * between (am_heap_t.slow_paths): an active owner collects its stacks itself and keeps its
 * pages. Returns bytes given back; sets *again when a slab waits
 * for the next pass. */
static size_t am_reclaim_full_stacks(bool force, bool *again) {
  size_t released = 0;
  if (force) pthread_mutex_lock(&am_g.segments_lock);
  else if (pthread_mutex_trylock(&am_g.segments_lock) != 0) {
    *again = true;
    return 0;
  }
  for (am_segment_t *seg = am_g.segments; seg != NULL; seg = seg->gnext) {
    if (atomic_load_explicit(&seg->remote_pending, memory_order_relaxed) == 0) continue;
    if (seg->hugetlb) continue;
    /* the owner's activity: a slab is reclaimed only if its owner ran no slow path between the
     * two sightings (an active owner collects its stacks itself); abandoned: no owner */
    am_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_acquire);
    uint64_t activity = owner != NULL ? __atomic_load_n(&owner->slow_paths, __ATOMIC_RELAXED) : 0;
    am_seg_lock(seg);
    uint64_t used = ~seg->free_mask & am_segment_all_slots(seg);
    bool idle = force || activity == seg->remote_full_activity;
    seg->remote_full_activity = activity;
    while (used != 0) {
      size_t i = (size_t)__builtin_ctzll(used);
      uint64_t bit = (uint64_t)1 << i;
      used &= ~bit;
      size_t reserved = seg->slabs[i].reserved;
      uintptr_t w = atomic_load_explicit(&seg->remote[i], memory_order_relaxed);
      if (reserved == 0 || am_remote_count(w) != reserved || am_remote_is_reclaim(am_remote_top(w))) {
        seg->remote_full_seen &= ~bit;
        continue;
      }
      if (!force && (!(seg->remote_full_seen & bit) || !idle)) {
        seg->remote_full_seen |= bit;
        *again = true;
        continue;
      }
      seg->remote_full_seen &= ~bit;
      /* two steps: RECLAIMING while the pages go (a collector leaves the stack alone, so the
       * owner cannot restart the slab and hand out blocks the madvise would zero), RECLAIMED
       * once they are gone (the owner's next collection restarts the slab) */
      if (!atomic_compare_exchange_strong_explicit(&seg->remote[i], &w, am_remote_word(AM_REMOTE_RECLAIMING, reserved),
                                                   memory_order_acquire, memory_order_relaxed))
        continue;                       /* the owner took the stack meanwhile */
      uint8_t *start = (uint8_t *)am_align_up((uintptr_t)am_slot_start(seg, i), am_g.page_size);
      uint8_t *end = am_slot_end(seg, i);
      if (end > start && _am_os_purge(start, (size_t)(end - start))) released += (size_t)(end - start);
      atomic_store_explicit(&seg->remote[i], am_remote_word(AM_REMOTE_RECLAIMED, reserved), memory_order_release);
      am_stat_add(&am_g.stat_reclaimed_slabs, 1);
    }
    am_seg_unlock(seg);
  }
  pthread_mutex_unlock(&am_g.segments_lock);
  return released;
}

/* One purge pass over every segment: gives back the dirty free slots that have been free for
 * the delay in force (purge.c; all of them when `force`), slabs whose every block other threads
 * freed (am_reclaim_full_stacks), and cached large mappings older than the delay. Without
 * `force` it runs at most every half delay (5-25 ms apart), never waits for a lock, and tells
 * the purge policy what it gave back. Returns the number of bytes released. */
AM_INTERNAL size_t _am_purge(bool force) {
  long delays[3] = {_am_purge_delay(AM_SEGMENT_SMALL), _am_purge_delay(AM_SEGMENT_MEDIUM),
                    _am_purge_delay(AM_SEGMENT_LARGE)};
  long delay = delays[0] < delays[1] ? delays[0] : delays[1];   /* the shortest */
  if (delays[2] < delay) delay = delays[2];
  if (!force && delay < 0) return 0;
  int64_t now = _am_clock_ms();
  if (!force) {
    int64_t due = atomic_load_explicit(&am_g.next_purge, memory_order_relaxed);
    int64_t step = delay / 2 < 5 ? 5 : delay / 2 > 25 ? 25 : delay / 2;
    if (now < due || !atomic_compare_exchange_strong(&am_g.next_purge, &due, now + step)) return 0;
  }
  size_t released = am_sweep_abandoned();
  size_t large = _am_large_cache_expire(now, force ? -1 : delays[AM_SEGMENT_LARGE]);
  if (!force) _am_purge_released(AM_SEGMENT_LARGE, large, now, now - delays[AM_SEGMENT_LARGE]);
  released += large;
  if (force || atomic_exchange_explicit(&am_g.remote_full, 0, memory_order_relaxed) != 0) {
    bool again = false;
    released += am_reclaim_full_stacks(force, &again);
    if (again) atomic_store_explicit(&am_g.remote_full, 1, memory_order_relaxed);
  }
  if (atomic_load_explicit(&am_g.dirty_segments, memory_order_relaxed) == 0) return released;
  if (force) pthread_mutex_lock(&am_g.segments_lock);
  else if (pthread_mutex_trylock(&am_g.segments_lock) != 0) return released;
  size_t by_kind[2] = {0, 0}, prof = 0;
  int64_t freed_at[2] = {now, now};     /* the oldest dirty_at purged, per kind */
  am_heap_t *prof_heap = atomic_load_explicit(&am_g.prof_heap, memory_order_relaxed);
  for (am_segment_t *seg = am_g.segments; seg != NULL; seg = seg->gnext) {
    if (atomic_load_explicit(&seg->lock, memory_order_relaxed) != 0 && !force) continue;
    am_seg_lock(seg);
    if (am_segment_has_dirty(seg) &&
        (force || (seg->dirty_at + delays[seg->kind] <= now && seg->keep_until <= now))) {
      /* (the profiler's heap gives back the slabs of its samples: nothing the program will
       * want again, so not what the purge policy learns from, as its fresh slabs are not) */
      if (prof_heap != NULL && atomic_load_explicit(&seg->heap, memory_order_relaxed) == prof_heap) {
        prof += am_segment_purge_locked(seg);
      } else {
        if (seg->dirty_at < freed_at[seg->kind]) freed_at[seg->kind] = seg->dirty_at;
        by_kind[seg->kind] += am_segment_purge_locked(seg);
      }
    }
    am_seg_unlock(seg);
  }
  pthread_mutex_unlock(&am_g.segments_lock);
  if (!force) {
    _am_purge_released(AM_SEGMENT_SMALL, by_kind[AM_SEGMENT_SMALL], now, freed_at[AM_SEGMENT_SMALL]);
    _am_purge_released(AM_SEGMENT_MEDIUM, by_kind[AM_SEGMENT_MEDIUM], now, freed_at[AM_SEGMENT_MEDIUM]);
  }
  return released + by_kind[0] + by_kind[1] + prof;
}

/* The optional background purger (AMALLOC_PURGE_THREAD=1): wakes every half delay (at least
 * every 10 ms, at most every second) and runs a purge pass, so memory goes back on time even
 * when every thread of the program is idle or blocked. It is joinable and sleeps on a futex,
 * so that _am_purge_thread_stop (init.c's destructor: a plugin that links amalloc statically is
 * unloaded, or the process exits) wakes it at once and waits until it has left amalloc's code.
 * am_purge_stop, once 1, stays 1: no purge thread starts again. */
static pthread_t am_purge_thread;
static _Atomic(int) am_purge_thread_joinable;   /* am_purge_thread runs and nobody joined it */
static _Atomic(int) am_purge_stop;              /* the futex word: 1 = stop */

static void *am_purge_thread_main(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&am_purge_stop, memory_order_acquire)) {
    long delay = _am_purge_delay(AM_SEGMENT_SMALL);
    long ms = delay <= 0 ? 1000 : delay / 2 < 10 ? 10 : delay / 2 > 1000 ? 1000 : delay / 2;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* returns at the timeout, at the stop's wake-up, or at once if the word is 1 already */
    syscall(SYS_futex, &am_purge_stop, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    if (atomic_load_explicit(&am_purge_stop, memory_order_acquire)) break;
    if (delay >= 0) _am_purge(false);
  }
  return NULL;
}

AM_INTERNAL void _am_purge_thread_start(void) {
  if (atomic_load_explicit(&am_g.purge_thread_started, memory_order_relaxed)) return;
  if (atomic_exchange(&am_g.purge_thread_started, 1)) return;
  if (atomic_load_explicit(&am_purge_stop, memory_order_acquire)) return;   /* unloading */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  if (pthread_create(&am_purge_thread, &attr, am_purge_thread_main, NULL) == 0) {
    atomic_store_explicit(&am_purge_thread_joinable, 1, memory_order_release);
  } else if (am_option(AM_OPTION_VERBOSE)) {
    _am_message("", "AMALLOC_PURGE_THREAD: cannot start the purge thread", NULL);
  }
  pthread_attr_destroy(&attr);
}

/* Stops the purge thread, if it runs, and waits for it to exit (a purge pass under way ends
 * first); none starts afterwards. */
AM_INTERNAL void _am_purge_thread_stop(void) {
  atomic_store_explicit(&am_purge_stop, 1, memory_order_release);
  syscall(SYS_futex, &am_purge_stop, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
  if (atomic_exchange(&am_purge_thread_joinable, 0)) pthread_join(am_purge_thread, NULL);
}

/* In a forked child: no purger holds a segment lock (the parent's prepare handler held
 * segments_lock), but an owner thread that does not exist in the child may have; reset them. */
AM_INTERNAL void _am_segment_fork_child(void) {
  for (am_segment_t *seg = am_g.segments; seg != NULL; seg = seg->gnext)
    atomic_store_explicit(&seg->lock, 0, memory_order_relaxed);
  atomic_store_explicit(&am_g.purge_thread_started, 0, memory_order_relaxed);
  atomic_store_explicit(&am_purge_thread_joinable, 0, memory_order_relaxed);   /* (not here) */
}
