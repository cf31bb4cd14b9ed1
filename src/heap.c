/* heap.c -- thread heaps and the slabs they allocate from.
 *
 * Each thread's heap keeps, per size class, a queue of slabs; the head of the queue is
 * heap->current[cls], the slab the malloc fast path pops from. Slabs that had no free block
 * when the slow path looked at them move to heap->full. Blocks come back three ways:
 *   - freed by the owning thread: pushed on slab->free (fast path, no atomics);
 *   - freed by another thread: pushed on the slab's atomic remote stack (a push onto an empty
 *     stack announced in the segment's remote_pending count first); the owner collects them in
 *     the slow path;
 *   - at thread exit the heap's segments are abandoned, and another heap adopts them.
 *
 * Policy: a slab whose last block is freed is given back to its segment, unless it is the
 * head of its class queue (so a program that allocates and frees one block in a loop keeps
 * its slab instead of re-initialising one each time).
 */
#include "internal.h"

#if AM_VALGRIND
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)0)
#endif

AM_TLS am_heap_t *am_tls_heap = &am_heap_empty;
AM_TLS am_segment_t *am_tls_seg = AM_SEG_NONE;
AM_TLS am_heap_t *am_tls_home;
AM_TLS am_heap_t *am_tls_user = &am_heap_empty;

/* ---- slabs ------------------------------------------------------------------------------ */

/* Carves up to AM_EXTEND_BYTES more blocks onto the free list (in address order; in the secure
 * build at least AM_SECURE_MIN_CARVE blocks, in a random order). Every carved block carries its
 * free mark, like every block on a free list, so that a free of a block that was carved but
 * never handed out is a double free, and the secure build's pop check holds for every block. */
/* A carved block p whose next free block is the one after it. */
am_inline void am_carve_one(am_slab_t *slab, uint8_t *p, size_t bsize, uintptr_t key) {
  am_block_set_next(slab, (am_block_t *)p, (am_block_t *)(p + bsize));
  if (AM_CHECKS) ((am_block_t *)p)->mark = am_mark_with(key, p);   /* (= am_block_mark) */
}

static void am_slab_extend(am_slab_t *slab) {
  size_t bsize = slab->bsize;
  size_t n = AM_EXTEND_BYTES / bsize;
  if (n == 0) n = 1;
#if AM_SECURE
  if (n < AM_SECURE_MIN_CARVE) n = AM_SECURE_MIN_CARVE;
#endif
  size_t left = (size_t)slab->reserved - (size_t)slab->capacity;
  if (n > left) n = left;
  if (n == 0) return;
  uint8_t *first = am_slab_start(slab) + (size_t)slab->capacity * bsize;
  /* valgrind builds: a carved block's two free-list words become addressable; the rest of the
   * slab stays no-access until a block is handed out (valgrind.c) */
  for (size_t i = 0; i < n; i++) VALGRIND_MAKE_MEM_UNDEFINED(first + i * bsize, sizeof(am_block_t));
#if AM_SECURE
  uint16_t order[AM_EXTEND_BYTES / 16];
  _Static_assert(AM_EXTEND_BYTES / 16 >= AM_SECURE_MIN_CARVE, "room for the shuffle");
  for (size_t i = 0; i < n; i++) order[i] = (uint16_t)i;
  uint64_t bits = 0;
  for (size_t i = n - 1; i > 0; i--) {          /* Fisher-Yates, 16 random bits a draw */
    if (((n - 1 - i) & 3) == 0) bits = _am_secure_random();
    /* in [0, i]; i < 256, so the bias of a 16-bit draw is below 0.4% */
    size_t j = (size_t)(((bits & 0xFFFF) * (uint64_t)(i + 1)) >> 16);
    bits >>= 16;
    uint16_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  am_block_t *list = slab->free;
  for (size_t i = 0; i < n; i++) {
    am_block_t *b = (am_block_t *)(first + (size_t)order[i] * bsize);
    am_block_set_next(slab, b, list);
    b->mark = am_block_mark(slab, b);
    list = b;
  }
  slab->free = list;
#else
  /* (four blocks a round, then one at a time: about 4.5 instructions a block where a pointer
   * walk took 8 and a counted loop 9) */
  uint8_t *p = first;
  uintptr_t key = slab->mark_key;
  size_t k = n - 1;                     /* blocks whose next is the block after them */
  for (; k >= 4; k -= 4, p += 4 * bsize) {
    am_carve_one(slab, p, bsize, key);
    am_carve_one(slab, p + bsize, bsize, key);
    am_carve_one(slab, p + 2 * bsize, bsize, key);
    am_carve_one(slab, p + 3 * bsize, bsize, key);
  }
  for (; k > 0; k--, p += bsize) am_carve_one(slab, p, bsize, key);
  am_block_set_next(slab, (am_block_t *)p, slab->free);
  if (AM_CHECKS) ((am_block_t *)p)->mark = am_block_mark(slab, p);
  slab->free = (am_block_t *)first;
#endif
  slab->capacity = (uint16_t)(slab->capacity + n);
  am_slab_set_limit(slab, (uint32_t)((size_t)slab->capacity * bsize));
}

AM_INTERNAL void _am_slab_init(am_slab_t *slab, size_t cls) {
  slab->bsize = am_class_size[cls];
  slab->magic = am_slab_magic(slab->bsize);
  slab->cls = (uint8_t)cls;
  slab->used = 0;
  slab->capacity = 0;
  am_slab_set_limit(slab, 0);
  slab->free = NULL;
  slab->next = slab->prev = NULL;
  am_slab_set_state(slab, AM_SLAB_AVAIL);
  /* unique per slab life: the count never repeats and _am_mix64 is a bijection */
  slab->mark_key = _am_mix64(am_g.free_key ^ atomic_fetch_add_explicit(&am_g.slab_inits, 1, memory_order_relaxed));
#if AM_SECURE
  slab->key = _am_secure_random();
#endif
  atomic_store_explicit(am_slab_remote(slab), 0, memory_order_relaxed);
  VALGRIND_MAKE_MEM_NOACCESS(am_slab_start(slab), (size_t)slab->reserved * slab->bsize);
  am_slab_extend(slab);
}

/* Moves blocks freed by other threads onto the free list. Returns how many. The stack's word
 * says how many blocks it holds; when the free list is empty (malloc's slow path, full slabs)
 * the stack simply becomes the free list, without touching its blocks. Otherwise, and always in
 * the secure build (which checks every link it follows), the blocks are walked to find the
 * tail, and the walk must end after exactly that many blocks (else the stack was corrupted, or
 * a block was freed twice at once). The segment's count of non-empty stacks drops by one
 * (types.h: remote_pending). */
AM_INTERNAL size_t _am_slab_collect(am_slab_t *slab) {
  _Atomic(uintptr_t) *remote = am_slab_remote(slab);
  uintptr_t w = atomic_load_explicit(remote, memory_order_relaxed);
  do {
    /* (a purger is giving the slab's pages back: its blocks are not to be had until it is done) */
    if (w == 0 || am_remote_top(w) == AM_REMOTE_RECLAIMING) return 0;
  } while (!atomic_compare_exchange_weak_explicit(remote, &w, 0, memory_order_acquire, memory_order_relaxed));
  am_block_t *list = am_remote_top(w);
  size_t n = am_remote_count(w);
  if (list == NULL) return 0;
  /* (one non-empty stack less: types.h remote_pending) */
  atomic_fetch_sub_explicit(&am_slab_segment(slab)->remote_pending, 1, memory_order_relaxed);
  if (am_unlikely(n == 0 || n > slab->used)) _am_fatal_in("free", AM_E_OVERFREED, list);
  if (list == AM_REMOTE_RECLAIMED) {
    /* every block was on the stack and a purger gave the pages back (they read as zero): the
     * slab starts afresh and carves its blocks again */
    am_assert(n == slab->reserved && slab->free == NULL);
    slab->used = (uint16_t)(slab->used - n);
    slab->free = NULL;
    slab->capacity = 0;
    am_slab_set_limit(slab, 0);
    VALGRIND_MAKE_MEM_NOACCESS(am_slab_start(slab), (size_t)slab->reserved * slab->bsize);
    return n;
  }
  if (AM_SECURE || slab->free != NULL) {
    am_block_t *tail = list;
    for (size_t i = 1; i < n; i++) {
      tail = am_block_next(slab, tail);
      if (am_unlikely(tail == NULL)) break;
      if (AM_SECURE && am_unlikely(am_slab_interior(slab, tail)))
        _am_fatal("free: corrupted free list (a link of the list of blocks freed by other threads)", tail);
    }
    if (am_unlikely(tail == NULL || am_block_next(slab, tail) != NULL))
      _am_fatal("free: double free (the list of blocks freed by other threads is corrupt)", list);
    am_block_set_next(slab, tail, slab->free);
  }
  slab->free = list;
  slab->used = (uint16_t)(slab->used - n);
  return n;
}

/* ---- the class queues and the full list -------------------------------------------------- */

static bool am_queue_is_empty(am_heap_t *heap, size_t cls) {
  return heap->current[cls] == &am_slab_empty;
}

/* Puts a slab with free blocks at the end of its class queue: the slabs ahead of it are used
 * first, so by the time malloc reaches it, it has gathered more free blocks (a slab that went
 * back to the queue with one free block and were used next would send malloc to its slow path
 * again after one block). */
AM_INTERNAL void _am_heap_queue_slab(am_heap_t *heap, am_slab_t *slab) {
  size_t cls = slab->cls;
  am_slab_set_state(slab, AM_SLAB_AVAIL);
  slab->next = NULL;
  if (am_queue_is_empty(heap, cls)) {
    slab->prev = NULL;
    heap->current[cls] = slab;
  } else {
    am_slab_t *tail = heap->queue_tail[cls];
    slab->prev = tail;
    tail->next = slab;
  }
  heap->queue_tail[cls] = slab;
}

static void am_queue_push_front(am_heap_t *heap, am_slab_t *slab) {
  size_t cls = slab->cls;
  am_slab_set_state(slab, AM_SLAB_AVAIL);
  slab->prev = NULL;
  slab->next = am_queue_is_empty(heap, cls) ? NULL : heap->current[cls];
  if (slab->next != NULL) slab->next->prev = slab;
  else heap->queue_tail[cls] = slab;
  heap->current[cls] = slab;
}

AM_INTERNAL void _am_heap_full_push(am_heap_t *heap, am_slab_t *slab) {
  am_slab_set_state(slab, AM_SLAB_FULL);
  slab->prev = NULL;
  slab->next = heap->full;
  if (heap->full != NULL) heap->full->prev = slab;
  heap->full = slab;
}

/* Removes a slab from whichever list it is in. */
AM_INTERNAL void _am_heap_unlink_slab(am_heap_t *heap, am_slab_t *slab) {
  if (slab->state == AM_SLAB_AVAIL) {
    if (slab->prev != NULL) slab->prev->next = slab->next;
    else heap->current[slab->cls] = slab->next != NULL ? slab->next : &am_slab_empty;
    if (slab->next == NULL) heap->queue_tail[slab->cls] = slab->prev;
  } else {
    am_assert(slab->state == AM_SLAB_FULL);
    if (slab->prev != NULL) slab->prev->next = slab->next;
    else heap->full = slab->next;
  }
  if (slab->next != NULL) slab->next->prev = slab->prev;
  slab->next = slab->prev = NULL;
}

/* Collects what other threads freed into the heap's slabs, in the segments whose announced
 * count (types.h: remote_pending) is not zero: full slabs with blocks again are queued, slabs
 * left without a live block are given back (unless current). Returns how many full slabs were
 * queued. */
static size_t am_heap_collect_remote(am_heap_t *heap) {
  size_t queued = 0;
  if (atomic_load_explicit(&heap->remote_hint, memory_order_relaxed) == 0) {
    if ((++heap->remote_skips & 31) != 0) return 0;
  } else {
    atomic_exchange_explicit(&heap->remote_hint, 0, memory_order_acquire);
  }
  for (size_t kind = 0; kind < 2; kind++) {
    for (am_segment_t *seg = heap->segments[kind]; seg != NULL;) {
      am_segment_t *next = seg->next;   /* seg may be unmapped below */
      if (atomic_load_explicit(&seg->remote_pending, memory_order_relaxed) != 0) {
        for (size_t i = 0; i < seg->slab_count; i++) {
          am_slab_t *slab = &seg->slabs[i];
          if (slab->state == AM_SLAB_FREE) continue;
          if (atomic_load_explicit(am_slab_remote(slab), memory_order_relaxed) == 0) continue;
          if (_am_slab_collect(slab) == 0) continue;
          if (slab->used == 0 && heap->current[slab->cls] != slab) {
            _am_heap_unlink_slab(heap, slab);
            if (_am_segment_slab_free(heap, slab)) break;  /* the segment is gone */
          } else if (slab->state == AM_SLAB_FULL) {
            _am_heap_unlink_slab(heap, slab);
            _am_heap_queue_slab(heap, slab);
            queued++;
          }
        }
      }
      seg = next;
    }
  }
  return queued;
}

/* ---- malloc slow path ------------------------------------------------------------------- */

/* Allocates a block of class `cls` when the current slab's free list is empty: collects
 * remote frees, walks the class queue, revives full slabs, and finally takes a new slab. */
AM_INTERNAL AM_API_TEXT am_noinline void *_am_heap_malloc_generic(am_heap_t *heap, size_t cls) {
  if (am_unlikely(heap == &am_heap_empty)) {
    heap = _am_heap_init_thread();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  __atomic_store_n(&heap->slow_paths, heap->slow_paths + 1, __ATOMIC_RELAXED);
  if (am_unlikely((++heap->purge_ticks & 63) == 0)) _am_heap_tick(heap);
  else am_purge_maybe();
  bool revived = false;
  for (;;) {
    am_slab_t *slab = heap->current[cls];
    while (slab != &am_slab_empty) {
      if (slab->free == NULL) _am_slab_collect(slab);
      if (slab->free == NULL && slab->capacity < slab->reserved) am_slab_extend(slab);
      am_block_t *b = slab->free;
      if (b != NULL) return am_slab_pop(heap, slab, b, cls);
      /* no free block: park it in the full list */
      _am_heap_unlink_slab(heap, slab);
      _am_heap_full_push(heap, slab);
      slab = heap->current[cls];
    }
    if (revived) break;
    revived = true;
    if (am_heap_collect_remote(heap) == 0 || am_queue_is_empty(heap, cls)) break;
  }
  am_slab_t *slab = _am_segment_slab_alloc(heap, cls);
  if (slab == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  am_queue_push_front(heap, slab);
  return am_slab_pop(heap, slab, slab->free, cls);
}

/* ---- free slow path --------------------------------------------------------------------- */

/* Gives back the current slabs that are empty and whose class has handed out no block since
 * the last look, at least the purge delay ago: a class used in a burst and never again keeps no
 * slab (with 1 MiB medium slabs, a burst of every class would otherwise pin tens of MiB). A
 * class in use keeps its slab, so a loop that allocates and frees one block does not pay a new
 * slab each time. */
static void am_heap_release_idle(am_heap_t *heap) {
  long delay = _am_purge_delay(AM_SEGMENT_SMALL);   /* (the pool of most classes) */
  if (delay < 0) return;
  int64_t now = _am_clock_ms();
  if (now < heap->idle_scan_at) return;
  heap->idle_scan_at = now + (delay > 0 ? delay : 1);
  for (size_t cls = 0; cls < AM_CLASS_COUNT; cls++) {
    am_slab_t *slab = heap->current[cls];
    uint64_t count = am_heap_mallocs(heap, cls);
    if (slab != &am_slab_empty && slab->used == 0 && count == heap->idle_mallocs[cls] &&
        atomic_load_explicit(am_slab_remote(slab), memory_order_relaxed) == 0) {
      _am_heap_unlink_slab(heap, slab);
      _am_segment_slab_free(heap, slab);
    }
    heap->idle_mallocs[cls] = count;
  }
}

/* Every 64th slow path of malloc or free (or free of the last block of a current slab): a purge
 * pass if one is due, idle current slabs given back, and the heap's long-empty segments
 * unmapped. */
AM_INTERNAL am_noinline void _am_heap_tick(am_heap_t *heap) {
  am_purge_maybe();
  am_heap_release_idle(heap);
  _am_segment_unmap_expired(heap);
}

/* Called by the local free fast path when a slab became empty or was in the full list. */
AM_INTERNAL am_noinline void _am_heap_free_slow(am_heap_t *heap, am_slab_t *slab) {
  if (am_unlikely(slab->state == AM_SLAB_FREE)) _am_fatal("free: double free", am_slab_start(slab));
  __atomic_store_n(&heap->slow_paths, heap->slow_paths + 1, __ATOMIC_RELAXED);
  if (slab->used == 0) {
    if (!(slab->state == AM_SLAB_AVAIL && heap->current[slab->cls] == slab)) {   /* (current: kept) */
      _am_heap_unlink_slab(heap, slab);
      _am_segment_slab_free(heap, slab);
    }
  } else if (slab->state == AM_SLAB_FULL) {
    _am_heap_unlink_slab(heap, slab);
    _am_heap_queue_slab(heap, slab);
  }
  /* last: the tick may give slabs back, this one included */
  if ((++heap->purge_ticks & 63) == 0) _am_heap_tick(heap);
}

/* ---- thread start and exit -------------------------------------------------------------- */

static am_heap_t *am_heap_struct_take(void) {
  am_heap_t *heap = NULL;
  pthread_mutex_lock(&am_g.heap_lock);
  if (am_g.heap_pool != NULL) {
    heap = am_g.heap_pool;
    am_g.heap_pool = heap->next_free;
  } else {
    size_t size = am_align_up(sizeof(am_heap_t), 64);
    if (am_g.meta_next == NULL || (size_t)(am_g.meta_end - am_g.meta_next) < size) {
      /* Heap structs come from their own segment-aligned chunk (never on the segment map,
       * so a pointer into it is never taken for a block). */
      uint8_t *chunk = _am_os_alloc_aligned(AM_SEGMENT_SIZE, AM_SEGMENT_SIZE, 0, 0);
      if (chunk != NULL) {
        am_g.meta_next = chunk;
        am_g.meta_end = chunk + AM_SEGMENT_SIZE;
      }
    }
    if (am_g.meta_next != NULL && (size_t)(am_g.meta_end - am_g.meta_next) >= size) {
      heap = (am_heap_t *)am_g.meta_next;
      am_g.meta_next += size;
    }
  }
  pthread_mutex_unlock(&am_g.heap_lock);
  return heap;
}

/* A heap, initialised and on am_g.heaps, owned by no thread yet (NULL when there is no memory
 * for it), its countdowns to the next sample armed (prof.c). */
AM_INTERNAL am_heap_t *_am_heap_create(uint8_t kind) {
  am_heap_t *heap = am_heap_struct_take();
  if (heap == NULL) return NULL;
  memset(heap, 0, sizeof(*heap));
  heap->cookie = (uintptr_t)heap ^ am_g.secret;
  heap->kind = kind;                    /* (before the countdowns are armed: prof.c) */
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) heap->current[c] = &am_slab_empty;
  am_heap_init_direct(heap);
  _am_prof_arm_heap(heap);
  heap->thread_serial = atomic_fetch_add_explicit(&am_g.thread_serial, 1, memory_order_relaxed);
  pthread_mutex_lock(&am_g.heap_lock);
  heap->gnext = am_g.heaps;
  if (heap->gnext != NULL) heap->gnext->gprev = heap;
  am_g.heaps = heap;
  pthread_mutex_unlock(&am_g.heap_lock);
  return heap;
}

AM_INTERNAL am_heap_t *_am_heap_init_thread(void) {
  _am_process_init();
  am_heap_t *heap = _am_heap_create(AM_HEAP_THREAD);
  if (heap == NULL) return NULL;
  am_stat_add(&am_g.stat_threads, 1);
  heap->owner = &am_tls_home;
  am_tls_home = heap;
  am_tls_heap = heap;
  /* Set last: pthread_setspecific may itself allocate (for high key numbers), which then
   * finds the heap already in place. */
  if (am_g.init_state == 2) pthread_setspecific(am_g.thread_key, heap);
  return heap;
}

/* Takes `heap` off am_g.heaps (its allocation counts merged into the process-wide ones) and
 * puts the struct in the pool for reuse. */
AM_INTERNAL void _am_heap_retire(am_heap_t *heap) {
  pthread_mutex_lock(&am_g.heap_lock);
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) {
    uint64_t n = am_heap_mallocs(heap, c);
    if (n != 0) atomic_fetch_add_explicit(&am_g.stat_mallocs[c], n, memory_order_relaxed);
  }
  if (heap->gprev != NULL) heap->gprev->gnext = heap->gnext;
  else am_g.heaps = heap->gnext;
  if (heap->gnext != NULL) heap->gnext->gprev = heap->gprev;
  heap->next_free = am_g.heap_pool;
  am_g.heap_pool = heap;
  pthread_mutex_unlock(&am_g.heap_lock);
}

/* The thread key's destructor: releases the thread's first-class heaps into its own heap
 * (their blocks stay valid: other threads may hold them), then abandons that heap's segments
 * for other threads to adopt. */
AM_INTERNAL void _am_heap_thread_done(void *value) {
  (void)value;
  am_heap_t *heap = am_tls_home;
  if (heap == NULL) return;
  am_tls_heap = heap;                   /* (a first-class heap may have been the default) */
  am_tls_seg = AM_SEG_NONE;
#if AM_SECURE
  /* free the thread's quarantined blocks while it owns its heaps */
  for (am_heap_t *u = heap->users; u != NULL; u = u->user_next) _am_secure_flush(u);
  _am_secure_flush(heap);
#endif
  while (heap->users != NULL) _am_heap_user_release(heap->users);
  am_tls_heap = &am_heap_empty;
  am_tls_home = NULL;
  am_tls_seg = AM_SEG_NONE;             /* (its segments are abandoned or unmapped next) */
  _am_segment_abandon_all(heap);
  am_stat_add(&am_g.stat_threads_exited, 1);
  _am_heap_retire(heap);
}
