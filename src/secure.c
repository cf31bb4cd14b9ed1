/* secure.c -- the am_* allocation API of the secure build (AM_SECURE=1: libamalloc-secure.so/.a).
 *
 * The secure build is the default build's allocator (am_*_core for the slow paths) with its
 * own malloc and free fast paths here, and these additions (README "Secure build"):
 *   - free-list links stored xor a random per-slab key (heap.c, alloc.c: am_block_next), and
 *     checked when malloc pops a block: a link that does not decode to a block of the slab's
 *     segment stops the program ("malloc: corrupted free list");
 *   - a random carving order: a slab's fresh blocks go on its free list shuffled (heap.c), and
 *     a block leaving the quarantine goes to the head of its slab's free list or behind the
 *     head at random, so that addresses handed out are not predictable from earlier ones;
 *   - a canary: every request gets 8 more bytes, and the last 8 bytes of a small/medium block
 *     (block + bsize - 8) hold a per-process random word xor the block's address (its low byte
 *     forced to 0xC3, so that a one-byte overflow with a string terminator is always seen).
 *     malloc_usable_size reports bsize - 8. free and realloc check it:
 *       amalloc: error: free: heap overflow past the end of a block (pointer 0x...)
 *   - a quarantine: free fills the block (its first word and bytes 16 .. min(bsize - 8, 128)
 *     with 0xDF; the second word is the free mark) and puts it in a per-thread ring of 64
 *     blocks; it reaches its slab's free list only when 64 later frees push it out, and then its
 *     fill is checked:
 *       amalloc: error: free: write to a freed block (pointer 0x...)
 *     The ring is checked and emptied when the thread exits (heap.c's thread destructor) and
 *     checked at process exit (a destructor). Freeing a block in the ring again is a double
 *     free (it carries its free mark). malloc also checks the mark of the block it pops (a
 *     write after the block left the quarantine: "malloc: write after free").
 *   - guard pages (PROT_NONE): the last page of every slab slot, a page between each segment's
 *     header (the slab descriptors) and its first slab, and a page before and after every large
 *     block (segment.c, large.c).
 * Large blocks have no canary and no quarantine: they are unmapped on free, so any later
 * access faults, and their guard pages catch overflows past the last page.
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

#if !AM_CHECKS
#error "the secure build needs AM_CHECKS (its mark checks build on them)"
#endif

#define AM_SECURE_RING 64
#define AM_E_OVERFLOW "heap overflow past the end of a block"
#define AM_E_WRITE_AFTER_FREE "write after free"
#define AM_E_WRITE_FREED "write to a freed block"
#define AM_E_FREE_LIST "corrupted free list"

static AM_TLS uint64_t am_sec_rng;
_Static_assert(sizeof(((am_heap_t *)0)->quarantine) / sizeof(void *) == AM_SECURE_RING, "ring size");

/* A random word (xorshift64*, per thread, seeded from the process secret and a counter). */
AM_INTERNAL uintptr_t _am_secure_random(void) {
  uint64_t x = am_sec_rng;
  if (am_unlikely(x == 0)) {
    uint64_t n = atomic_fetch_add_explicit(&am_g.key_counter, 1, memory_order_relaxed);
    x = _am_mix64(am_g.secret ^ (n * 0x9E3779B97F4A7C15ull)) | 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  am_sec_rng = x;
  return (uintptr_t)(x * 0x2545F4914F6CDD1Dull);
}

/* One random bit (64 draws per call of _am_secure_random). */
am_inline unsigned am_sec_random_bit(am_heap_t *heap) {
  uint64_t bits = heap->random_bits;
  if (am_unlikely(bits <= 1)) bits = (uint64_t)_am_secure_random() | ((uint64_t)1 << 63);
  heap->random_bits = bits >> 1;
  return (unsigned)(bits & 1);
}

/* The request to make of the core for `size` bytes: 8 more (the canary), unless the block will
 * be large anyway (and always 8 more when size <= AM_MEDIUM_MAX, so that the block has room for
 * the canary whatever class or large block the core picks). */
am_inline size_t am_sec_size(size_t size) { return size <= AM_MEDIUM_MAX ? size + 8 : size; }

am_inline uintptr_t am_sec_canary(const void *p) {
  return ((am_g.canary_key ^ (uintptr_t)p) & ~(uintptr_t)0xFF) | 0xC3;
}

am_inline uintptr_t *am_sec_canary_at(void *p, size_t bsize) {
  return (uintptr_t *)((uint8_t *)p + bsize - 8);
}

/* A block from the core's slow paths: write its canary (large blocks have none). */
static void *am_sec_alloced(void *p) {
  if (p == NULL) return NULL;
  am_segment_t *seg = am_ptr_segment(p);
  if (seg->kind == AM_SEGMENT_LARGE) return p;
  am_slab_t *slab = am_segment_slab_of(seg, p);
  *am_sec_canary_at(p, slab->bsize) = am_sec_canary(p);
  return p;
}

/* malloc popped b from slab's free list and found its mark or its link bad. */
static am_cold __attribute__((noreturn)) void am_sec_bad_pop(am_block_t *b) {
  if (b->mark != am_g.free_key) _am_fatal_in("malloc", AM_E_WRITE_AFTER_FREE, b);
  _am_fatal_in("malloc", AM_E_FREE_LIST, b);
}

AM_EXPORT void *am_malloc(size_t size) {
  if (am_likely(size <= AM_TABLE_MAX - 8)) {
    am_heap_t *heap = am_heap_get();
    size_t cls = am_class_of_small[(size + 8 + 7) >> 3];
    am_slab_t *slab = heap->current[cls];
    am_block_t *b = slab->free;
    if (am_likely(b != NULL)) {
      am_block_t *next = am_block_next(slab, b);
      if (am_unlikely(b->mark != am_g.free_key || (next != NULL && am_slab_interior(slab, next))))
        am_sec_bad_pop(b);
      slab->free = next;
      b->mark = 0;
      slab->used++;
      heap->stat_mallocs[cls]++;
      *am_sec_canary_at(b, slab->bsize) = am_sec_canary(b);
      return b;
    }
  }
  return am_sec_alloced(am_malloc_core(am_sec_size(size)));
}

/* The checks of a small/medium block p handed back to free or realloc (`fn`): the default
 * build's (interior pointer, freed slab), the free mark (double free / freed block), the
 * canary. Returns its slab. */
static am_cold __attribute__((noreturn)) void am_sec_bad(am_segment_t *seg, void *p, const char *fn) {
  am_slab_t *slab = am_checked_slab(seg, p, fn);
  if (((am_block_t *)p)->mark == am_block_mark(p))
    _am_fatal_in(fn, strcmp(fn, "free") == 0 ? AM_E_DOUBLE : AM_E_FREED, p);
  (void)slab;
  _am_fatal_in(fn, AM_E_OVERFLOW, p);
}
am_inline am_slab_t *am_sec_checked(am_segment_t *seg, void *p, const char *fn) {
  am_slab_t *slab = am_segment_slab_of(seg, p);
  if (am_unlikely(slab->bsize == 0 || am_slab_interior(slab, p) || ((am_block_t *)p)->mark == am_block_mark(p) ||
                  *am_sec_canary_at(p, slab->bsize) != am_sec_canary(p)))
    am_sec_bad(seg, p, fn);
  return slab;
}

/* The fill of a quarantined block, 16 bytes at a time (blocks are 16-byte aligned; the region
 * [16, end) is a multiple of 8 bytes long, so at most one 8-byte word is left over). The
 * empty asm keeps the compiler from turning the short loops into calls of memset/memcmp. */
typedef uint64_t am_sec_v2 __attribute__((vector_size(16), may_alias));
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

/* Checks that quarantined block b (of `slab`) still holds its fill (and its mark). */
am_inline void am_sec_check_fill(am_slab_t *slab, am_block_t *b, const char *fn) {
  uint64_t diff = ((uint64_t)(uintptr_t)b->next ^ AM_SECURE_FILL_WORD) | (b->mark ^ am_g.free_key) |
                  am_sec_fill_diff(b, am_secure_fill_end(slab->bsize));
  if (am_unlikely(diff != 0)) _am_fatal_in(fn, AM_E_WRITE_FREED, b);
}

/* A block leaves the quarantine: check its fill, then really free it (it keeps its mark). */
am_inline void am_sec_release(am_heap_t *heap, am_block_t *b) {
  am_segment_t *seg = am_ptr_segment(b);
  am_slab_t *slab = am_segment_slab_of(seg, b);
  am_sec_check_fill(slab, b, "free");
  if (am_likely(atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap)) {
    am_block_t *head = slab->free;
    if (head != NULL && am_sec_random_bit(heap)) {      /* behind the head */
      am_block_set_next(slab, b, am_block_next(slab, head));
      am_block_set_next(slab, head, b);
    } else {
      am_block_set_next(slab, b, head);
      slab->free = b;
    }
    if (am_unlikely(--slab->used == 0 || slab->state != AM_SLAB_AVAIL)) _am_heap_free_slow(heap, slab);
    return;
  }
  b->mark = 0;                   /* another thread's block: the core's remote free marks it */
  am_free_core(b);
}

AM_INTERNAL void _am_secure_thread_done(void) {
  am_heap_t *heap = am_heap_get();
  if (heap == &am_heap_empty) return;
  for (unsigned i = 0; i < AM_SECURE_RING; i++) {
    void *b = heap->quarantine[i];
    if (b == NULL) continue;
    heap->quarantine[i] = NULL;
    am_sec_release(heap, b);
  }
  heap->quarantine_pos = 0;
}

/* At process exit: the calling thread's quarantine is checked (not freed). */
__attribute__((destructor)) static void am_sec_exit_check(void) {
  am_heap_t *heap = am_heap_get();
  if (heap == &am_heap_empty) return;
  for (unsigned i = 0; i < AM_SECURE_RING; i++)
    if (heap->quarantine[i] != NULL) {
      am_block_t *b = heap->quarantine[i];
      am_sec_check_fill(am_segment_slab_of(am_ptr_segment(b), b), b, "exit");
    }
}

AM_EXPORT void am_free(void *p) {
  am_segment_t *seg = am_ptr_segment(p);
  if (am_unlikely(!am_segmap_contains(seg)) || seg->kind == AM_SEGMENT_LARGE) {
    am_free_core(p);               /* NULL, foreign pointers (an error) and large blocks */
    return;
  }
  am_slab_t *slab = am_sec_checked(seg, p, "free");
  am_heap_t *heap = am_heap_get();
  if (am_unlikely(heap == &am_heap_empty)) {
    am_free_core(p);               /* no heap (exited, or never allocated): no quarantine */
    return;
  }
  am_block_t *b = p;
  b->next = (am_block_t *)(uintptr_t)AM_SECURE_FILL_WORD;
  b->mark = am_block_mark(b);
  am_sec_fill(p, am_secure_fill_end(slab->bsize));
  unsigned pos = heap->quarantine_pos;
  void *old = heap->quarantine[pos];
  heap->quarantine[pos] = p;
  heap->quarantine_pos = (pos + 1) & (AM_SECURE_RING - 1);
  if (old != NULL) am_sec_release(heap, old);
}

AM_EXPORT void *am_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t req = am_sec_size(total);
  if (req > AM_MEDIUM_MAX) return am_calloc_core(1, req);        /* large: already zero */
  void *p = am_malloc(total);
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
 * request may have been 8 bytes more than the program's, so the lower bound allows 8 more, or
 * realloc grew the block out of a size class by an eighth (alloc.c am_grown_from_class). */
static void _am_free_sized_check(void *p, size_t size, const char *fn) {
  am_segment_t *seg = am_ptr_segment(p);
  if (!am_segmap_contains(seg)) _am_fatal_in(fn, AM_E_FOREIGN, p);
  size_t usable = am_usable_checked(p, fn);
  bool ok;
  if (seg->kind == AM_SEGMENT_LARGE) {
    ok = size <= usable && (size + am_g.page_size + 8 > usable || am_grown_from_class(size, usable, 8));
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
  void *q = am_malloc(am_realloc_grow(size, usable));
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
