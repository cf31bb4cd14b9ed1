/* secure.c -- the am_* allocation API of the secure build (AM_SECURE=1: libamalloc-secure.so/.a).
 *
 * Each function wraps the allocator (am_*_core, the default build's code, untouched) and adds,
 * for small and medium blocks (those of a slab):
 *   - a canary: every request gets 8 more bytes, and the last 8 bytes of the block
 *     (block + bsize - 8) hold a per-process random word xor the block's address (its low byte
 *     forced to 0xC3, so that a one-byte overflow with a string terminator is always seen).
 *     malloc_usable_size reports bsize - 8. free and realloc check it first:
 *       amalloc: error: free: heap overflow past the end of a block (pointer 0x...)
 *   - a fill: a freed block is filled with 0xDF from byte 16 (after its two free-list words) to
 *     bsize - 8, at most to byte 256; heap.c fills freshly carved blocks the same way, so every
 *     block on a free list carries it, and malloc checks it when it hands a block out:
 *       amalloc: error: malloc: write after free (pointer 0x...)
 *   - a quarantine: a freed block goes into a per-thread ring of 64 blocks (it carries its free
 *     mark there, so freeing it again is still a double free) and is really freed only when 64
 *     later frees push it out, which delays its reuse. The ring is flushed when the thread exits
 *     (heap.c's thread destructor); a free by a thread without a heap skips it.
 * Large blocks (their own mapping) get neither: an overflow past one runs into the end of its
 * mapping (a fault, unless the next page happens to be mapped), and the default build's checks
 * apply (double free, interior pointer).
 *
 * Blocks of 16 bytes (requests of up to 8 bytes) have their canary in the mark word: the mark
 * is checked before the canary, so a double free is reported as one.
 */
#undef am_malloc
#undef am_calloc
#undef am_realloc
#undef am_free
#undef am_posix_memalign
#undef am_aligned_alloc
#undef am_memalign
#undef am_valloc
#undef am_pvalloc
#undef am_malloc_usable_size
#undef _am_free_sized_check
#undef _am_free_aligned_sized_check

#define AM_SECURE_RING 64
#define AM_E_OVERFLOW "heap overflow past the end of a block"
#define AM_E_WRITE_AFTER_FREE "write after free"

static AM_TLS void *am_sec_ring[AM_SECURE_RING];
static AM_TLS unsigned am_sec_pos;

/* The request to make of the core for `size` bytes: 8 more (the canary), unless the block will
 * be large anyway (and always 8 more when size <= AM_MEDIUM_MAX, so that the block has room for
 * the canary whatever class or large block the core picks). */
am_inline size_t am_sec_size(size_t size) { return size <= AM_MEDIUM_MAX ? size + 8 : size; }

am_inline uintptr_t am_sec_canary(const void *p) {
  uintptr_t k = am_g.secret * (uintptr_t)0x9E3779B97F4A7C15ull;
  k ^= k >> 29;
  return ((k ^ (uintptr_t)p) & ~(uintptr_t)0xFF) | 0xC3;
}

am_inline uintptr_t *am_sec_canary_at(void *p, size_t bsize) {
  return (uintptr_t *)((uint8_t *)p + bsize - 8);
}

/* The slab of a block the core handed out, or NULL for a large block. */
am_inline am_slab_t *am_sec_slab(void *p) {
  am_segment_t *seg = am_ptr_segment(p);
  if (seg->kind == AM_SEGMENT_LARGE) return NULL;
  return am_segment_slab_of(seg, p);
}

/* A block from the core: check its fill (it was free), then write its canary. */
static void *am_sec_alloced(void *p) {
  if (p == NULL) return NULL;
  am_slab_t *slab = am_sec_slab(p);
  if (slab == NULL) return p;
  if (!AM_CHECKS) ((am_block_t *)p)->mark = 0;   /* the core leaves it as it was (checks off) */
  size_t bsize = slab->bsize;
  if (bsize > 16 + 8) {
    const uint64_t fill = 0x0101010101010101ull * AM_SECURE_FILL;
    const uint64_t *w = (const uint64_t *)((const uint8_t *)p + 16);
    const uint64_t *end = (const uint64_t *)((const uint8_t *)p + am_secure_fill_end(bsize));
    uint64_t diff = 0;
    for (; w < end; w++) diff |= *w ^ fill;
    if (am_unlikely(diff != 0)) _am_fatal_in("malloc", AM_E_WRITE_AFTER_FREE, p);
  }
  *am_sec_canary_at(p, bsize) = am_sec_canary(p);
  return p;
}

/* The checks of a small/medium block p handed back to free or realloc (`fn`): the default
 * build's (interior pointer, freed slab), the free mark (double free / freed block), the
 * canary. Returns its slab. */
static am_slab_t *am_sec_checked(am_segment_t *seg, void *p, const char *fn) {
  am_slab_t *slab = am_checked_slab(seg, p, fn);
  if (am_unlikely(((am_block_t *)p)->mark == am_block_mark(p)))
    _am_fatal_in(fn, strcmp(fn, "free") == 0 ? AM_E_DOUBLE : AM_E_FREED, p);
  if (am_unlikely(*am_sec_canary_at(p, slab->bsize) != am_sec_canary(p))) _am_fatal_in(fn, AM_E_OVERFLOW, p);
  return slab;
}

/* Frees a block that leaves the quarantine (its mark cleared: the core sets it again). */
static void am_sec_release(void *b) {
  ((am_block_t *)b)->mark = 0;
  am_free_core(b);
}

AM_INTERNAL void _am_secure_thread_done(void) {
  for (unsigned i = 0; i < AM_SECURE_RING; i++) {
    void *b = am_sec_ring[i];
    if (b == NULL) continue;
    am_sec_ring[i] = NULL;
    am_sec_release(b);
  }
  am_sec_pos = 0;
}

AM_EXPORT void am_free(void *p) {
  am_segment_t *seg = am_ptr_segment(p);
  if (am_unlikely(!am_segmap_contains(seg)) || seg->kind == AM_SEGMENT_LARGE) {
    am_free_core(p);               /* NULL, foreign pointers (an error) and large blocks */
    return;
  }
  am_slab_t *slab = am_sec_checked(seg, p, "free");
  size_t bsize = slab->bsize;
  if (bsize > 16 + 8) memset((uint8_t *)p + 16, AM_SECURE_FILL, am_secure_fill_end(bsize) - 16);
  if (am_unlikely(am_heap_get() == &am_heap_empty)) {
    am_free_core(p);               /* no heap (exited, or never allocated): no quarantine */
    return;
  }
  ((am_block_t *)p)->mark = am_block_mark(p);
  unsigned pos = am_sec_pos;
  void *old = am_sec_ring[pos];
  am_sec_ring[pos] = p;
  am_sec_pos = (pos + 1) & (AM_SECURE_RING - 1);
  if (old != NULL) am_sec_release(old);
}

AM_EXPORT void *am_malloc(size_t size) { return am_sec_alloced(am_malloc_core(am_sec_size(size))); }

AM_EXPORT void *am_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t req = am_sec_size(total);
  if (req > AM_MEDIUM_MAX) return am_calloc_core(1, req);        /* large: no canary, no fill */
  void *p = am_sec_alloced(am_malloc_core(req));
  if (p != NULL) memset(p, 0, total);
  return p;
}

AM_EXPORT size_t am_malloc_usable_size(const void *p) {
  if (p == NULL) return 0;
  am_segment_t *seg = am_ptr_segment(p);
  if (!am_segmap_contains(seg) || seg->kind == AM_SEGMENT_LARGE) return am_malloc_usable_size_core(p);
  return am_usable_checked(p, "malloc_usable_size") - 8;
}

/* free_sized's checks against the usable size the program sees (bsize - 8); large blocks: the
 * request may have been 8 bytes more than the program's, so the lower bound allows 8 more. */
static void _am_free_sized_check(void *p, size_t size, const char *fn) {
  am_segment_t *seg = am_ptr_segment(p);
  if (!am_segmap_contains(seg)) _am_fatal_in(fn, AM_E_FOREIGN, p);
  size_t usable = am_usable_checked(p, fn);
  bool ok;
  if (seg->kind == AM_SEGMENT_LARGE) {
    ok = size <= usable && size + am_g.page_size + 8 > usable;
  } else {
    usable -= 8;
    ok = size <= usable && (usable <= 32 || size >= usable / 2);
  }
  if (am_unlikely(!ok)) _am_fatal_in(fn, AM_E_SIZE, p);
}

static void _am_free_aligned_sized_check(void *p, size_t alignment, size_t size, const char *fn) {
  if (am_unlikely(alignment != 0 && ((uintptr_t)p & (alignment - 1)) != 0))
    _am_fatal_in(fn, "pointer without that alignment", p);
  if (am_unlikely(size > am_malloc_usable_size(p))) _am_fatal_in(fn, AM_E_SIZE, p);
}

AM_EXPORT void *am_realloc(void *p, size_t size) {
  if (p == NULL) return am_malloc(size);
  if (size == 0) {            /* glibc: free and return NULL */
    am_free(p);
    return NULL;
  }
  am_segment_t *seg = am_ptr_segment(p);
  if (am_unlikely(!am_segmap_contains(seg))) _am_fatal_in("realloc", AM_E_FOREIGN, p);
  size_t usable;
  if (seg->kind == AM_SEGMENT_LARGE) {
    if (am_unlikely((uint8_t *)p != seg->large_block)) _am_fatal_in("realloc", AM_E_INTERIOR, p);
    usable = seg->large_size;
    /* the core keeps a large block large (in place or moved), except when it shrinks into a
     * size class: that move is made here, so that the new block gets its canary */
    if (!(size <= (size_t)am_option(AM_OPTION_LARGE_THRESHOLD) && size < usable / 2))
      return am_realloc_core(p, size);
  } else {
    am_slab_t *slab = am_sec_checked(seg, p, "realloc");
    usable = slab->bsize - 8;
    if (size <= usable && (size >= usable / 2 || usable <= 32)) return p;
  }
  void *q = am_malloc(size);
  if (q == NULL) return NULL;
  memcpy(q, p, size < usable ? size : usable);
  am_free(p);
  return q;
}

AM_EXPORT int am_posix_memalign(void **out, size_t align, size_t size) {
  int r = am_posix_memalign_core(out, align, am_sec_size(size));
  if (r == 0) am_sec_alloced(*out);
  return r;
}

AM_EXPORT void *am_aligned_alloc(size_t align, size_t size) {
  return am_sec_alloced(am_aligned_alloc_core(align, am_sec_size(size)));
}

AM_EXPORT void *am_memalign(size_t align, size_t size) {
  return am_sec_alloced(am_memalign_core(align, am_sec_size(size)));
}

AM_EXPORT void *am_valloc(size_t size) { return am_sec_alloced(am_valloc_core(am_sec_size(size))); }

AM_EXPORT void *am_pvalloc(size_t size) {
  am_ensure_init();
  size_t page = am_g.page_size;
  if (size > AM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = size == 0 ? page : am_align_up(size, page);
  return am_sec_alloced(am_memalign_core(page, am_sec_size(rounded)));
}
