/* large.c -- blocks above AM_MEDIUM_MAX (256 KiB): one mapping each.
 *
 * A large block's mapping is a LARGE segment: it starts on a 4 MiB boundary with a small
 * header (the fields of am_segment_t before `slabs`), and the block follows at the next page
 * (or at its alignment). So free() finds the header with the same mask as for small blocks,
 * and the segment map tells that it is amalloc's.
 *
 *   free     munmap at once: the RSS falls immediately.
 *   realloc  mremap: in place when the address space after the block is free (the placement
 *            hints leave a gap after every mapping for that), otherwise the kernel moves the
 *            page tables to a new aligned range. The data is never copied. The header travels
 *            with the mapping.
 *
 * Alignment above 4 MiB: the mapping is placed so that base + 4 MiB is aligned and the block
 * starts there; ((p - 1) & ~mask) then still finds the header at the base.
 */
#include "internal.h"

AM_INTERNAL void *_am_large_alloc(size_t size, size_t align, bool zero) {
  (void)zero;                             /* fresh mappings are zero */
  size_t page = am_g.page_size;
  if (am_unlikely(size > AM_MAX_REQUEST || align > AM_MAX_REQUEST / 4)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t offset, map_align, align_offset;
  if (align <= page) {
    offset = page;
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
  am_segment_t *seg = _am_os_alloc_aligned(total, map_align, align_offset, 0);
  if (seg == NULL) return NULL;
  am_purge_maybe();
  seg->kind = AM_SEGMENT_LARGE;
  seg->slab_shift = 63;
  seg->slab_count = 0;
  seg->map_size = total;
  seg->large_block = (uint8_t *)seg + offset;
  seg->large_size = total - offset;
  seg->cookie = (uintptr_t)seg ^ am_g.secret;
  atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
  _am_segmap_set(seg, true);
  am_stat_add(&am_g.stat_large_count, 1);
  am_stat_add(&am_g.stat_large_mallocs, 1);
  size_t now = atomic_fetch_add_explicit(&am_g.stat_large_bytes, total, memory_order_relaxed) + total;
  size_t peak = atomic_load_explicit(&am_g.stat_large_peak, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&am_g.stat_large_peak, &peak, now,
                                                              memory_order_relaxed, memory_order_relaxed)) {
  }
  return seg->large_block;
}

AM_INTERNAL void _am_large_free(am_segment_t *seg, void *p) {
  if (am_unlikely((uint8_t *)p != seg->large_block))
    _am_fatal_in("free", AM_E_INTERIOR, p);
  _am_segmap_set(seg, false);
  am_stat_sub(&am_g.stat_large_count, 1);
  am_stat_sub(&am_g.stat_large_bytes, seg->map_size);
  _am_os_free(seg, seg->map_size);
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
  size_t old_total = seg->map_size;
  size_t total = offset + am_align_up(size, page);
  if (total == old_total) return p;
  if (_am_os_resize_inplace(seg, old_total, total)) {
    seg->map_size = total;
    seg->large_size = total - offset;
    if (total > old_total) am_stat_add(&am_g.stat_large_bytes, total - old_total);
    else am_stat_sub(&am_g.stat_large_bytes, old_total - total);
    return p;
  }
  if (total < old_total) return p;        /* could not shrink: the block is big enough */
  if (offset == page) {
    /* move the whole mapping (header included) to a new aligned range */
    uint8_t *target = _am_os_alloc_aligned(total, AM_SEGMENT_SIZE, 0, 0);
    if (target == NULL) return NULL;
    if (_am_os_move(seg, old_total, total, target)) {
      _am_segmap_set(seg, false);
      am_segment_t *nseg = (am_segment_t *)target;
      nseg->map_size = total;
      nseg->large_block = target + offset;
      nseg->large_size = total - offset;
      nseg->cookie = (uintptr_t)nseg ^ am_g.secret;
      _am_segmap_set(nseg, true);
      am_stat_add(&am_g.stat_large_bytes, total - old_total);
      return nseg->large_block;
    }
    _am_os_free(target, total);
  }
  /* over-aligned block (realloc does not keep alignment beyond malloc's), or mremap refused:
   * allocate, copy, free */
  void *q = _am_large_alloc(size, 0, false);
  if (q == NULL) return NULL;
  memcpy(q, p, seg->large_size < size ? seg->large_size : size);
  _am_large_free(seg, p);
  return q;
}
