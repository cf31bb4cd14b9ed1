/* segment.c -- segments: 4 MiB aligned regions cut into slabs, owned by one heap.
 *
 * A heap keeps its SMALL and MEDIUM segments in two lists, those with a free slot first, so
 * finding a slot is a look at the list head and a count-trailing-zeros on its free mask.
 * When a heap needs a slab and has no free slot it first takes over an abandoned segment
 * (left by an exited thread), and only then maps a new one.
 *
 * Returning memory: a slot whose slab empties is marked free and dirty; a segment whose last
 * slab empties is unmapped, except the last one of its kind in the heap (kept so that a
 * program that repeatedly fills and empties a little memory does not mmap each time).
 * malloc_trim purges dirty slots with MADV_DONTNEED.
 */
#include "internal.h"

AM_INTERNAL void _am_segmap_set(am_segment_t *seg, bool on) {
  uintptr_t idx = (uintptr_t)seg >> AM_SEGMENT_SHIFT;
  if (idx >= AM_SEGMAP_BITS) _am_fatal("mapping outside the supported address range", seg);
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (on)
    atomic_fetch_or_explicit(&am_segmap[idx >> 6], bit, memory_order_release);
  else
    atomic_fetch_and_explicit(&am_segmap[idx >> 6], ~bit, memory_order_release);
}

AM_INTERNAL size_t _am_segment_header_size(void) {
  return am_align_up(sizeof(am_segment_t), am_g.page_size);
}

/* Start and end of slot `i`'s usable area. Slot 0 starts after the header. */
static uint8_t *am_slot_start(am_segment_t *seg, size_t i) {
  uint8_t *p = (uint8_t *)seg + (i << seg->slab_shift);
  return i == 0 ? p + _am_segment_header_size() : p;
}
static uint8_t *am_slot_end(am_segment_t *seg, size_t i) {
  return (uint8_t *)seg + ((i + 1) << seg->slab_shift);
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

static am_segment_t *am_segment_map(am_heap_t *heap, am_segment_kind_t kind) {
  am_segment_t *seg = _am_os_alloc_aligned(AM_SEGMENT_SIZE, AM_SEGMENT_SIZE, 0);
  if (seg == NULL) return NULL;
  /* fresh anonymous memory is zero: only the non-zero fields are set */
  seg->kind = (uint8_t)kind;
  seg->slab_shift = kind == AM_SEGMENT_SMALL ? AM_SMALL_SLAB_SHIFT : AM_MEDIUM_SLAB_SHIFT;
  seg->slab_count = (uint16_t)(AM_SEGMENT_SIZE >> seg->slab_shift);
  seg->free_mask = seg->slab_count == 64 ? ~(uint64_t)0 : (((uint64_t)1 << seg->slab_count) - 1);
  seg->map_size = AM_SEGMENT_SIZE;
  seg->cookie = (uintptr_t)seg ^ am_g.secret;
  for (size_t i = 0; i < seg->slab_count; i++) seg->slabs[i].index = (uint8_t)i;
  atomic_store_explicit(&seg->heap, heap, memory_order_relaxed);
  _am_segmap_set(seg, true);
  am_stat_add(&am_g.stat_segments, 1);
  am_stat_add(&am_g.stat_segment_bytes, AM_SEGMENT_SIZE);
  return seg;
}

static void am_segment_unmap(am_segment_t *seg) {
  _am_segmap_set(seg, false);
  am_stat_sub(&am_g.stat_segments, 1);
  am_stat_sub(&am_g.stat_segment_bytes, AM_SEGMENT_SIZE);
  _am_os_free(seg, seg->map_size);
}

/* ---- slots ------------------------------------------------------------------------------ */

/* Marks slot `slab` free (no decision about the segment). */
static void am_slot_release(am_segment_t *seg, am_slab_t *slab) {
  am_assert(slab->state != AM_SLAB_FREE);
  am_stat_sub(&am_g.stat_slab_bytes, (size_t)1 << seg->slab_shift);
  slab->state = AM_SLAB_FREE;
  slab->bsize = 0;
  slab->free = NULL;
  slab->used = 0;
  slab->capacity = slab->reserved = 0;
  slab->next = slab->prev = NULL;
  atomic_store_explicit(&slab->remote, NULL, memory_order_relaxed);
  uint64_t bit = (uint64_t)1 << slab->index;
  seg->free_mask |= bit;
  seg->dirty_mask |= bit;
  seg->slabs_used--;
}

/* Called when a heap-owned slab has no block in use: the slot goes back to its segment.
 * Returns true when that emptied the segment and it was unmapped. */
AM_INTERNAL bool _am_segment_slab_free(am_heap_t *heap, am_slab_t *slab) {
  am_segment_t *seg = am_slab_segment(slab);
  bool was_full = seg->free_mask == 0;
  am_slot_release(seg, slab);
  if (seg->slabs_used == 0 && heap->segment_count[seg->kind] > 1) {
    am_seglist_remove(heap, seg);
    am_segment_unmap(seg);
    return true;
  }
  if (was_full) {
    /* it has a free slot again: move it to the front */
    am_seglist_remove(heap, seg);
    am_seglist_push_front(heap, seg);
  }
  return false;
}

/* Adopts an abandoned segment into `heap`: collects what other threads freed into it, gives
 * back empty slabs and queues the rest. */
static void am_segment_adopt(am_heap_t *heap, am_segment_t *seg) {
  atomic_store_explicit(&seg->heap, heap, memory_order_release);
  atomic_store_explicit(&seg->remote_pending, 0, memory_order_relaxed);
  for (size_t i = 0; i < seg->slab_count; i++) {
    am_slab_t *slab = &seg->slabs[i];
    if (slab->state == AM_SLAB_FREE) continue;
    slab->next = slab->prev = NULL;
    _am_slab_collect(slab);
    if (slab->used == 0) {
      am_slot_release(seg, slab);
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
  if (am_g.abandoned[kind] == NULL) return NULL;     /* racy peek: fine, it is a hint */
  pthread_mutex_lock(&am_g.abandoned_lock);
  am_segment_t *seg = am_g.abandoned[kind];
  if (seg != NULL) {
    am_g.abandoned[kind] = seg->next;
    am_g.abandoned_count--;
  }
  pthread_mutex_unlock(&am_g.abandoned_lock);
  if (seg == NULL) return NULL;
  seg->next = seg->prev = NULL;
  am_segment_adopt(heap, seg);
  return seg;
}

/* A fresh slab of class `cls` for `heap`, or NULL (errno ENOMEM) when the OS has no memory. */
AM_INTERNAL am_slab_t *_am_segment_slab_alloc(am_heap_t *heap, size_t cls) {
  am_segment_kind_t kind =
      am_class_size[cls] <= AM_SMALL_MAX ? AM_SEGMENT_SMALL : AM_SEGMENT_MEDIUM;
  am_segment_t *seg = heap->segments[kind];
  if (seg == NULL || seg->free_mask == 0) {
    /* Take over abandoned segments until one has a free slot. */
    for (;;) {
      seg = am_segment_reclaim(heap, kind);
      if (seg == NULL || seg->free_mask != 0) break;
    }
    if (seg == NULL) {
      seg = am_segment_map(heap, kind);
      if (seg == NULL) return NULL;
      am_seglist_push_front(heap, seg);
    }
  }
  am_assert(seg->free_mask != 0);
  size_t i = (size_t)__builtin_ctzll(seg->free_mask);
  seg->free_mask &= ~((uint64_t)1 << i);
  seg->dirty_mask &= ~((uint64_t)1 << i);
  seg->slabs_used++;
  if (seg->free_mask == 0 && seg->next != NULL) {
    /* full: keep segments with free slots in front */
    am_seglist_remove(heap, seg);
    am_seglist_push_back(heap, seg);
  }
  am_slab_t *slab = &seg->slabs[i];
  slab->start = am_slot_start(seg, i);
  slab->reserved = (uint32_t)((size_t)(am_slot_end(seg, i) - slab->start) / am_class_size[cls]);
  am_stat_add(&am_g.stat_slab_bytes, (size_t)1 << seg->slab_shift);
  _am_slab_init(seg, slab, cls);
  return slab;
}

/* Gives back the pages of the segment's free slots that may still be resident. */
static size_t am_segment_purge_free_slots(am_segment_t *seg) {
  size_t released = 0;
  uint64_t dirty = seg->dirty_mask & seg->free_mask;
  while (dirty != 0) {
    size_t i = (size_t)__builtin_ctzll(dirty);
    dirty &= dirty - 1;
    uint8_t *start = (uint8_t *)am_align_up((uintptr_t)am_slot_start(seg, i), am_g.page_size);
    uint8_t *end = am_slot_end(seg, i);
    if (end > start && _am_os_purge(start, (size_t)(end - start))) released += (size_t)(end - start);
    seg->dirty_mask &= ~((uint64_t)1 << i);
  }
  return released;
}

/* ---- thread exit ------------------------------------------------------------------------ */

AM_INTERNAL void _am_segment_abandon_all(am_heap_t *heap) {
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL) {
      am_segment_t *next = seg->next;
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);
        if (slab->used == 0) am_slot_release(seg, slab);
      }
      seg->next = seg->prev = NULL;
      if (seg->slabs_used == 0) {
        am_segment_unmap(seg);
      } else {
        /* Nobody may use this segment for a while: give back its free slots' pages now. */
        am_segment_purge_free_slots(seg);
        atomic_store_explicit(&seg->heap, NULL, memory_order_release);
        pthread_mutex_lock(&am_g.abandoned_lock);
        seg->next = am_g.abandoned[kind];
        am_g.abandoned[kind] = seg;
        am_g.abandoned_count++;
        pthread_mutex_unlock(&am_g.abandoned_lock);
        am_stat_add(&am_g.stat_abandoned, 1);
      }
      seg = next;
    }
    heap->segments[kind] = NULL;
    heap->segment_count[kind] = 0;
  }
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
        am_seglist_remove(heap, seg);
        am_segment_unmap(seg);
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
