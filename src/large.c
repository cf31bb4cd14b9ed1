/* large.c -- blocks above AM_MEDIUM_MAX (256 KiB): one mapping each.
 *
 * A large block's mapping is a LARGE segment: it starts on a 4 MiB boundary with a small
 * header (the fields of am_segment_t before `slabs`), and the block follows at the next page
 * (or at its alignment). So free() finds the header with the same mask as for small blocks,
 * and the segment map tells that it is amalloc's.
 *
 *   free     the mapping goes into a small process-wide cache (up to 8 mappings of at most 64
 *            MiB, 128 MiB in all) and is unmapped once it has sat there for the purge delay in
 *            force (purge.c: AMALLOC_PURGE_DELAY_MS, longer when the program has shown that it
 *            maps large blocks again soon after the cache gave them back), when the heap takes
 *            fresh slab memory while it has sat there for a few ms (_am_large_cache_evict_idle),
 *            or when malloc_trim runs, unless a large malloc reuses it first: a program that
 *            frees and allocates blocks of a few MiB in turn then neither maps nor faults in
 *            fresh pages each time. A cached mapping too small for the new block grows in place
 *            or moves (mremap: its pages come along), so only the difference is fresh. Larger
 *            mappings (above 64 MiB: RSS falls at once when such a block is freed), and every
 *            mapping when the delay is 0, are unmapped at once. A cached
 *            mapping is off the segment map, so a second free of its block is still reported;
 *            a write after free into it goes unnoticed in the default build (the secure build
 *            makes the cached block PROT_NONE).
 *   realloc  mremap: in place when the address space after the block is free (the placement
 *            hints leave a gap after every mapping for that), otherwise the kernel moves the
 *            page tables to a new aligned range. The data is never copied. The header travels
 *            with the mapping.
 *
 * Alignment above 4 MiB: the mapping is placed so that base + 4 MiB is aligned and the block
 * starts there; ((p - 1) & ~mask) then still finds the header at the base.
 *
 * Secure build: the page before the block (between it and the header) and a page after its end
 * are guard pages (PROT_NONE), and realloc copies (a mapping with guard pages is several
 * kernel mappings, which mremap cannot resize). A cached mapping's block is PROT_NONE until
 * it is reused (a use after free faults), and reuse never grows a mapping.
 */
#include "internal.h"

/* ---- the cache of freed mappings ---------------------------------------------------------- */

/* Unmaps cached mappings freed at least `age` ms before `now` (all of them when age < 0).
 * Returns the bytes unmapped. */
AM_INTERNAL size_t _am_large_cache_expire(int64_t now, long age) {
  if (atomic_load_explicit(&am_g.large_cache_count, memory_order_relaxed) == 0) return 0;
  bool all = age < 0;
  am_segment_t *drop[AM_LARGE_CACHE_SLOTS];
  size_t n = 0, bytes = 0;
  am_spin_lock(&am_g.large_lock);
  for (size_t i = 0; i < AM_LARGE_CACHE_SLOTS; i++) {
    am_segment_t *seg = am_g.large_cache[i];
    if (seg == NULL || !(all || am_g.large_cache_at[i] + age <= now)) continue;
    am_g.large_cache[i] = NULL;
    am_g.large_cache_bytes -= seg->map_size;
    atomic_fetch_sub_explicit(&am_g.large_cache_count, 1, memory_order_relaxed);
    drop[n++] = seg;
  }
  am_spin_unlock(&am_g.large_lock);
  for (size_t i = 0; i < n; i++) {
    bytes += drop[i]->map_size;
    _am_os_free(drop[i], drop[i]->map_size);
  }
  return bytes;
}

/* The heap took fresh slab memory (segment.c): cached mappings that have sat unused for a
 * while are not what the program needs now, and would add to its peak RSS (sqlite3 freed a
 * 32 MiB sorter block, then grew its page cache by 35 MiB): they go back. A while is
 * AM_LARGE_CACHE_IDLE_MS at the base delay, longer in proportion when the purge policy
 * lengthened the delay (the program showed that it maps large blocks again soon). */
AM_INTERNAL void _am_large_cache_evict_idle(void) {
  long base = am_option(AM_OPTION_PURGE_DELAY_MS), delay = _am_purge_delay(AM_SEGMENT_LARGE);
  long age = base > 0 ? AM_LARGE_CACHE_IDLE_MS * (delay / base) : AM_LARGE_CACHE_IDLE_MS;
  int64_t now = _am_clock_ms();
  _am_purge_released(AM_SEGMENT_LARGE, _am_large_cache_expire(now, age), now, now - age);
}

/* Takes a cached mapping for a block of `total` mapped bytes: the smallest that is large
 * enough, else the largest (the caller grows it). NULL when the cache is empty. */
static am_segment_t *am_large_cache_take(size_t total) {
  if (atomic_load_explicit(&am_g.large_cache_count, memory_order_relaxed) == 0) return NULL;
  am_spin_lock(&am_g.large_lock);
  size_t best = AM_LARGE_CACHE_SLOTS;
  for (size_t i = 0; i < AM_LARGE_CACHE_SLOTS; i++) {
    am_segment_t *seg = am_g.large_cache[i];
    if (seg == NULL) continue;
    if (best == AM_LARGE_CACHE_SLOTS) {
      best = i;
      continue;
    }
    size_t have = am_g.large_cache[best]->map_size, cand = seg->map_size;
    bool have_fits = have >= total, cand_fits = cand >= total;
    if (cand_fits ? (!have_fits || cand < have) : (!have_fits && cand > have)) best = i;
  }
  am_segment_t *seg = NULL;
  if (best < AM_LARGE_CACHE_SLOTS) {
    seg = am_g.large_cache[best];
    am_g.large_cache[best] = NULL;
    am_g.large_cache_bytes -= seg->map_size;
    atomic_fetch_sub_explicit(&am_g.large_cache_count, 1, memory_order_relaxed);
  }
  am_spin_unlock(&am_g.large_lock);
  return seg;
}

/* Puts a freed mapping into the cache. False when it does not qualify (the caller unmaps it). */
static bool am_large_cache_put(am_segment_t *seg) {
  if (AM_VALGRIND) return false;          /* (memcheck reports the unmapped block's uses) */
  if (seg->map_size > AM_LARGE_CACHE_MAX_BLOCK || _am_purge_delay(AM_SEGMENT_LARGE) == 0) return false;
  size_t offset = (AM_SECURE ? 2 : 1) * am_g.page_size;
  if (seg->large_block != (uint8_t *)seg + offset) return false;   /* over-aligned */
  /* secure build: the block becomes PROT_NONE (its pages stay resident), so any use after
   * free still faults */
  if (AM_SECURE && !_am_os_protect(seg->large_block, seg->map_size - offset, false)) return false;
  int64_t now = _am_clock_ms();
  am_segment_t *evict = NULL;
  am_spin_lock(&am_g.large_lock);
  size_t slot = AM_LARGE_CACHE_SLOTS, oldest = AM_LARGE_CACHE_SLOTS;
  for (size_t i = 0; i < AM_LARGE_CACHE_SLOTS; i++) {
    if (am_g.large_cache[i] == NULL) {
      if (slot == AM_LARGE_CACHE_SLOTS) slot = i;
    } else if (oldest == AM_LARGE_CACHE_SLOTS || am_g.large_cache_at[i] < am_g.large_cache_at[oldest]) {
      oldest = i;
    }
  }
  if (slot == AM_LARGE_CACHE_SLOTS || am_g.large_cache_bytes + seg->map_size > AM_LARGE_CACHE_MAX_BYTES) {
    if (oldest == AM_LARGE_CACHE_SLOTS) {
      am_spin_unlock(&am_g.large_lock);
      return false;
    }
    evict = am_g.large_cache[oldest];        /* make room: the oldest goes */
    am_g.large_cache[oldest] = NULL;
    am_g.large_cache_bytes -= evict->map_size;
    atomic_fetch_sub_explicit(&am_g.large_cache_count, 1, memory_order_relaxed);
    slot = oldest;
  }
  bool ok = am_g.large_cache_bytes + seg->map_size <= AM_LARGE_CACHE_MAX_BYTES;
  if (ok) {
    am_g.large_cache[slot] = seg;
    am_g.large_cache_at[slot] = now;
    am_g.large_cache_bytes += seg->map_size;
    atomic_fetch_add_explicit(&am_g.large_cache_count, 1, memory_order_relaxed);
  }
  am_spin_unlock(&am_g.large_lock);
  if (evict != NULL) _am_os_free(evict, evict->map_size);
  return ok;
}

/* A cached mapping may be this much (or 100%) larger than the mapping a block needs. */
#define AM_LARGE_KEEP_EXCESS ((size_t)8 << 20)

/* A mapping of at least `total` bytes from the cache (trimmed or grown in place), or NULL. */
static am_segment_t *am_large_from_cache(size_t total) {
  am_segment_t *seg = am_large_cache_take(total);
  if (seg == NULL) return NULL;
  size_t have = seg->map_size;
  if (AM_SECURE) {
    /* the cached mapping is several kernel mappings (header, then PROT_NONE): mremap cannot
     * resize it, munmap can cut its tail */
    if (have < total) {
      _am_os_free(seg, have);
      return NULL;
    }
    if (have - total > (total > AM_LARGE_KEEP_EXCESS ? total : AM_LARGE_KEEP_EXCESS)) {
      _am_os_free((uint8_t *)seg + total, have - total);
      have = total;
    }
  } else if (have - total > (total > AM_LARGE_KEEP_EXCESS ? total : AM_LARGE_KEEP_EXCESS)) {
    /* far too big: give the excess back (RSS stays near what the block needs) */
    if (!_am_os_resize_inplace(seg, have, total)) {
      _am_os_free(seg, have);
      return NULL;
    }
    have = total;
  } else if (have < total) {
    /* too small: grown where it is, or moved (mremap moves the page tables: its resident
     * pages come along) to a new aligned range that has room; only the difference is fresh */
    if (!_am_os_resize_inplace(seg, have, total)) {
      uint8_t *target = _am_os_alloc_aligned(total, AM_SEGMENT_SIZE, 0, 0);
      if (target == NULL || !_am_os_move(seg, have, total, target)) {
        if (target != NULL) _am_os_free(target, total);
        _am_os_free(seg, have);
        return NULL;
      }
      seg = (am_segment_t *)target;   /* (off the segment map while cached: no bit to move) */
    }
    _am_purge_fresh(AM_SEGMENT_LARGE, total - have);
    have = total;
  }
  /* (a little too big: kept whole, its pages resident, so that blocks of varying sizes reuse
   * mappings without faulting pages in again; the block's usable size is still what a fresh
   * mapping would give, which free_sized checks) */
  seg->map_size = have;
  return seg;
}

/* ---- allocation --------------------------------------------------------------------------- */

AM_INTERNAL void *_am_large_alloc(size_t size, size_t align, bool zero) {
  size_t page = am_g.page_size;
  if (am_unlikely(size > AM_MAX_REQUEST || align > AM_MAX_REQUEST / 4)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t offset, map_align, align_offset;
  if (align <= page) {
    offset = AM_SECURE ? 2 * page : page;
    map_align = AM_SEGMENT_SIZE;
    align_offset = 0;
  } else if (align <= AM_SEGMENT_SIZE) {
    offset = align;
    map_align = AM_SEGMENT_SIZE;
    align_offset = 0;
  } else {
    offset = AM_SEGMENT_SIZE;
    map_align = align;
    align_offset = AM_SEGMENT_SIZE;
  }
  /* at least one page, so that even a 0-byte block points into its mapping */
  size_t total = offset + am_align_up(size == 0 ? 1 : size, page);
  size_t guard = AM_SECURE ? page : 0;    /* the guard page after the block */
  if (am_unlikely(total + guard < total)) {
    errno = ENOMEM;
    return NULL;
  }
  total += guard;
  am_segment_t *seg = NULL;
  bool reused = false;
  size_t map_size = total;
  if (align <= page && (seg = am_large_from_cache(total)) != NULL) {
    reused = true;
    map_size = seg->map_size;
#if AM_SECURE
    /* the block's pages accessible again; the rest of the mapping stays PROT_NONE (the guard
     * page after the block, and any excess) */
    if (!_am_os_protect((uint8_t *)seg + offset, total - guard - offset, true)) {
      _am_os_free(seg, map_size);
      seg = NULL;
      reused = false;
      map_size = total;
    }
#endif
  }
  if (seg == NULL) {
    seg = _am_os_alloc_aligned(total, map_align, align_offset, 0);
    if (seg == NULL) return NULL;
    _am_purge_fresh(AM_SEGMENT_LARGE, total);
#if AM_SECURE
    _am_os_guard((uint8_t *)seg + offset - page, page);
    _am_os_guard((uint8_t *)seg + total - page, page);
#endif
  }
  am_purge_maybe();
  seg->kind = AM_SEGMENT_LARGE;
  seg->slab_shift = 63;
  seg->slab_count = 0;
  seg->map_size = map_size;
  seg->large_block = (uint8_t *)seg + offset;
  seg->large_size = total - guard - offset;
  am_stat_add(&am_g.stat_large_usable, seg->large_size);
  seg->cookie = (uintptr_t)seg ^ am_g.secret;
  atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
  seg->large_heap = NULL;                 /* (heapapi.c links a first-class heap's block) */
  _am_segmap_set(seg, true);
  am_stat_add(&am_g.stat_large_count, 1);
  am_stat_add(&am_g.stat_large_mallocs, 1);
  size_t now = atomic_fetch_add_explicit(&am_g.stat_large_bytes, map_size, memory_order_relaxed) + map_size;
  size_t peak = atomic_load_explicit(&am_g.stat_large_peak, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&am_g.stat_large_peak, &peak, now,
                                                              memory_order_relaxed, memory_order_relaxed)) {
  }
  if (zero && reused) memset(seg->large_block, 0, size);   /* fresh mappings are zero already */
  return seg->large_block;
}

/* A live block's usable size changes (realloc in place); am_stats_t live_bytes follows. */
static void am_large_set_size(am_segment_t *seg, size_t size) {
  if (size > seg->large_size) am_stat_add(&am_g.stat_large_usable, size - seg->large_size);
  else am_stat_sub(&am_g.stat_large_usable, seg->large_size - size);
  seg->large_size = size;
}

AM_INTERNAL void _am_large_free(am_segment_t *seg, void *p) {
  if (am_unlikely((uint8_t *)p != seg->large_block))
    _am_fatal_in("free", AM_E_INTERIOR, p);
  _am_segmap_set(seg, false);
  am_stat_sub(&am_g.stat_large_count, 1);
  am_stat_sub(&am_g.stat_large_bytes, seg->map_size);
  am_stat_sub(&am_g.stat_large_usable, seg->large_size);
  if (!am_large_cache_put(seg)) _am_os_free(seg, seg->map_size);
  else am_purge_maybe();                  /* (schedules the cache's own expiry too) */
}

AM_INTERNAL void *_am_large_realloc(am_segment_t *seg, void *p, size_t size) {
  if (am_unlikely((uint8_t *)p != seg->large_block))
    _am_fatal_in("realloc", AM_E_INTERIOR, p);
  size_t page = am_g.page_size;
  size_t offset = (size_t)((uint8_t *)p - (uint8_t *)seg);
  if (size <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD) && size < seg->large_size / 2) {
    /* shrinking to a size class: move into a slab */
    void *q = am_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, size);
    _am_large_free(seg, p);
    return q;
  }
  if (size > AM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (AM_SECURE) goto copy;
  size_t old_total = seg->map_size;
  size_t total = offset + am_align_up(size, page);
  if (total == old_total) {
    am_large_set_size(seg, total - offset);   /* (a reused mapping may be larger than its block) */
    return p;
  }
  if (_am_os_resize_inplace(seg, old_total, total)) {
    seg->map_size = total;
    am_large_set_size(seg, total - offset);
    if (total > old_total) am_stat_add(&am_g.stat_large_bytes, total - old_total);
    else am_stat_sub(&am_g.stat_large_bytes, old_total - total);
    return p;
  }
  if (total < old_total) {
    /* could not shrink: the block is big enough; its usable size is still what the request
     * gives (free_sized checks the request against it) */
    am_large_set_size(seg, total - offset);
    return p;
  }
  if (offset == page) {
    /* move the whole mapping (header included) to a new aligned range */
    uint8_t *target = _am_os_alloc_aligned(total, AM_SEGMENT_SIZE, 0, 0);
    if (target == NULL) return NULL;
    /* Off the segment map before the move: once mremap has released the old range, another
     * thread's new mapping may be placed there and set the same bit. (Nobody else may look
     * the block up meanwhile: it is the caller's.) */
    _am_segmap_set(seg, false);
    if (_am_os_move(seg, old_total, total, target)) {
      am_segment_t *nseg = (am_segment_t *)target;
      nseg->map_size = total;
      nseg->large_block = target + offset;
      am_large_set_size(nseg, total - offset);   /* (the header moved with the block) */
      nseg->cookie = (uintptr_t)nseg ^ am_g.secret;
      _am_segmap_set(nseg, true);
      am_stat_add(&am_g.stat_large_bytes, total - old_total);
      return nseg->large_block;
    }
    _am_segmap_set(seg, true);            /* not moved: the old range is still ours */
    _am_os_free(target, total);
  }
  /* over-aligned block (realloc does not keep alignment beyond malloc's), or mremap refused:
   * allocate, copy, free */
copy:;
  void *q = _am_large_alloc(size, 0, false);
  if (q == NULL) return NULL;
  memcpy(q, p, seg->large_size < size ? seg->large_size : size);
  _am_large_free(seg, p);
  return q;
}
