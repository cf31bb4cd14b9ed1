/* stats.c -- introspection: mallinfo2/mallinfo, malloc_trim, malloc_stats, malloc_info,
 * mallopt.
 *
 * The figures come from process-wide counters (am_g.stat_*) that only the slow paths update:
 * segments mapped, slots holding a slab, large blocks. "In use" for small and medium blocks
 * is counted per slab, not per block: a slab that holds at least one live block counts whole
 * (64 KiB or 1 MiB), so uordblks is an upper bound of the bytes handed out. Exact per-class
 * counts come with the statistics work (README "Known limits").
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

static size_t am_load(_Atomic(size_t) *c) { return atomic_load_explicit(c, memory_order_relaxed); }

AM_EXPORT struct am_mallinfo2 am_mallinfo2(void) {
  struct am_mallinfo2 mi;
  memset(&mi, 0, sizeof(mi));
  size_t seg_bytes = am_load(&am_g.stat_segment_bytes);
  size_t slab_bytes = am_load(&am_g.stat_slab_bytes);
  size_t large_bytes = am_load(&am_g.stat_large_bytes);
  mi.arena = seg_bytes;
  mi.ordblks = am_load(&am_g.stat_segments);
  mi.hblks = am_load(&am_g.stat_large_count);
  mi.hblkhd = large_bytes;
  mi.uordblks = slab_bytes + large_bytes;
  mi.fordblks = seg_bytes > slab_bytes ? seg_bytes - slab_bytes : 0;
  mi.usmblks = 0;
  return mi;
}

static int am_clamp_int(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

AM_EXPORT struct am_mallinfo am_mallinfo(void) {
  struct am_mallinfo2 m = am_mallinfo2();
  struct am_mallinfo r = {
    am_clamp_int(m.arena), am_clamp_int(m.ordblks), am_clamp_int(m.smblks), am_clamp_int(m.hblks),
    am_clamp_int(m.hblkhd), am_clamp_int(m.usmblks), am_clamp_int(m.fsmblks),
    am_clamp_int(m.uordblks), am_clamp_int(m.fordblks), am_clamp_int(m.keepcost),
  };
  return r;
}

/* Releases what can be released now: blocks other threads freed into the caller's slabs,
 * empty slabs and segments (the caller's, and those abandoned by exited threads, which the
 * caller adopts), and the pages of free slots. */
AM_EXPORT int am_malloc_trim(size_t pad) {
  (void)pad;
  /* the thread's own heap, even while a first-class heap is its default: that one must never
   * adopt abandoned segments (heapapi.c) */
  am_heap_t *heap = am_tls_home != NULL ? am_tls_home : am_heap_get();
  if (heap == &am_heap_empty) {
    if (__atomic_load_n(&am_g.abandoned_count, __ATOMIC_RELAXED) == 0 &&
        atomic_load_explicit(&am_g.dirty_segments, memory_order_relaxed) == 0)
      return 0;
    heap = _am_heap_init_thread();
    if (heap == NULL) return 0;
  }
  size_t before = am_load(&am_g.stat_segment_bytes) + am_load(&am_g.stat_purged_bytes);
  _am_segment_reclaim_all(heap);
  /* collect remote frees everywhere and give back slabs that are empty */
  for (size_t kind = 0; kind < 2; kind++) {
    am_segment_t *seg = heap->segments[kind];
    while (seg != NULL) {
      am_segment_t *next = seg->next;
      for (size_t i = 0; i < seg->slab_count; i++) {
        am_slab_t *slab = &seg->slabs[i];
        if (slab->state == AM_SLAB_FREE) continue;
        _am_slab_collect(slab);
        if (slab->used == 0) {
          _am_heap_unlink_slab(heap, slab);
          if (_am_segment_slab_free(heap, slab)) break;
        } else if (slab->state == AM_SLAB_FULL && slab->free != NULL) {
          _am_heap_unlink_slab(heap, slab);
          _am_heap_queue_slab(heap, slab);
        }
      }
      seg = next;
    }
  }
  size_t released = _am_segment_trim(heap);
  released += _am_purge(true);          /* every thread's free slots, at once */
  size_t after = am_load(&am_g.stat_segment_bytes) + am_load(&am_g.stat_purged_bytes);
  return (released > 0 || after != before) ? 1 : 0;
}

/* ---- am_stats_get / reports ------------------------------------------------------------ */

#include <fcntl.h>

static size_t am_resident_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *p = buf;
  while (*p && *p != ' ') p++;          /* skip the size field */
  size_t pages = 0;
  while (*p == ' ') p++;
  while (*p >= '0' && *p <= '9') pages = pages * 10 + (size_t)(*p++ - '0');
  return pages * am_g.page_size;
}

/* The struct of AM_STATS_VERSION 7 (96 classes, the dense ones came after it, at the end): a
 * program built against that header passes its size and gets the fields it knows. */
#define AM_STATS_SIZE_V7 (offsetof(am_stats_t, classes) + 96 * sizeof(am_class_stats_t))

AM_EXPORT int am_stats_get(am_stats_t *user) {
  if (user == NULL || user->size < AM_STATS_SIZE_V7) return EINVAL;
  size_t size = user->size < sizeof(am_stats_t) ? user->size : sizeof(am_stats_t);
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  am_stats_t st, *out = &st;
  memset(out, 0, sizeof(*out));
  out->size = size;
  out->version = AM_STATS_VERSION;
  out->segments = am_load(&am_g.stat_segments);
  out->segment_bytes = am_load(&am_g.stat_segment_bytes);
  out->slab_bytes = am_load(&am_g.stat_slab_bytes);
  out->large_count = am_load(&am_g.stat_large_count);
  out->large_bytes = am_load(&am_g.stat_large_bytes);
  out->large_peak = am_load(&am_g.stat_large_peak);
  out->large_mallocs = am_load(&am_g.stat_large_mallocs);
  am_spin_lock(&am_g.large_lock);
  out->large_cached = am_g.large_cache_bytes;
  am_spin_unlock(&am_g.large_lock);
  out->mapped = out->segment_bytes + out->large_bytes + out->large_cached;
  out->resident = am_resident_bytes();
  out->purged_bytes = am_load(&am_g.stat_purged_bytes);
  out->thp_segments = am_load(&am_g.stat_thp_segments);
  out->hugetlb_segments = am_load(&am_g.stat_hugetlb_segments);
  out->threads_created = am_load(&am_g.stat_threads);
  out->threads_exited = am_load(&am_g.stat_threads_exited);
  out->segments_abandoned = am_load(&am_g.stat_abandoned);
  out->segments_reclaimed = am_load(&am_g.stat_reclaimed);
  out->segments_abandoned_now = __atomic_load_n(&am_g.abandoned_count, __ATOMIC_RELAXED);
  out->segments_converted = am_load(&am_g.stat_converted);
  out->dirty_segments = am_load(&am_g.dirty_segments);
  long delay = 0;                       /* the longest of the three pools' */
  for (size_t pool = 0; pool < 3; pool++) {
    long d = _am_purge_delay(pool);
    if (d > delay) delay = d;
  }
  out->purge_delay_ms = (size_t)delay;
  out->purge_regrets = am_load(&am_g.stat_purge_regrets);
  out->purge_relaxes = am_load(&am_g.stat_purge_relaxed);
  for (size_t c = 0; c < AM_CLASS_COUNT && c < AM_STATS_CLASSES; c++) {
    out->classes[c].block_size = am_class_size[c];
    out->classes[c].mallocs = atomic_load_explicit(&am_g.stat_mallocs[c], memory_order_relaxed);
    out->classes[c].slabs = am_load(&am_g.stat_class_slabs[c]);
    out->classes[c].peak_slabs = am_load(&am_g.stat_class_peak_slabs[c]);
  }
  /* live heaps' counters and every slab's live blocks: read while their owners run */
  pthread_mutex_lock(&am_g.heap_lock);
  for (am_heap_t *h = am_g.heaps; h != NULL; h = h->gnext)
    for (size_t c = 0; c < AM_CLASS_COUNT && c < AM_STATS_CLASSES; c++)
      out->classes[c].mallocs += am_heap_mallocs(h, c);
  pthread_mutex_unlock(&am_g.heap_lock);
  pthread_mutex_lock(&am_g.segments_lock);
  for (am_segment_t *seg = am_g.segments; seg != NULL; seg = seg->gnext) {
    for (size_t i = 0; i < seg->slab_count; i++) {
      am_slab_t *slab = &seg->slabs[i];
      uint8_t state = __atomic_load_n(&slab->state, __ATOMIC_RELAXED);
      if (state == AM_SLAB_FREE) continue;
      size_t cls = __atomic_load_n(&slab->cls, __ATOMIC_RELAXED);
      if (cls < AM_STATS_CLASSES) out->classes[cls].live += __atomic_load_n(&slab->used, __ATOMIC_RELAXED);
    }
  }
  pthread_mutex_unlock(&am_g.segments_lock);
  out->live_bytes = am_load(&am_g.stat_large_usable);
  for (size_t c = 0; c < AM_STATS_CLASSES; c++) {
    am_class_stats_t *k = &out->classes[c];
    k->frees = k->mallocs > k->live ? k->mallocs - k->live : 0;
    out->live_bytes += k->live * k->block_size;
  }
  memcpy(user, out, size);
  return 0;
}

/* (the report's lines: message.c am_line_t) */

AM_EXPORT void am_stats_print(void) {
  int saved = errno;
  am_stats_t st;
  st.size = sizeof(st);
  if (am_stats_get(&st) != 0) return;
  am_line_t l = {.len = 0};
  am_line_str(&l, "amalloc: statistics (process ");
  am_line_num(&l, (size_t)getpid(), 0);
  am_line_str(&l, ")");
  am_line_end(&l);
  am_line_str(&l, "amalloc: class  block size     mallocs       frees        live   slabs  peak slabs");
  am_line_end(&l);
  for (size_t c = 0; c < AM_STATS_CLASSES; c++) {
    am_class_stats_t *k = &st.classes[c];
    if (k->mallocs == 0 && k->live == 0 && k->peak_slabs == 0) continue;
    am_line_str(&l, "amalloc: ");
    am_line_num(&l, c, 5);
    am_line_num(&l, k->block_size, 12);
    am_line_num(&l, k->mallocs, 12);
    am_line_num(&l, k->frees, 12);
    am_line_num(&l, k->live, 12);
    am_line_num(&l, k->slabs, 8);
    am_line_num(&l, k->peak_slabs, 12);
    am_line_end(&l);
  }
  static const struct { const char *label; size_t off; } rows[] = {
    {"large blocks live", offsetof(am_stats_t, large_count)},
    {"large bytes live", offsetof(am_stats_t, large_bytes)},
    {"large bytes peak", offsetof(am_stats_t, large_peak)},
    {"large mallocs", offsetof(am_stats_t, large_mallocs)},
    {"large cached bytes", offsetof(am_stats_t, large_cached)},
    {"mapped bytes (segments + large)", offsetof(am_stats_t, mapped)},
    {"segments", offsetof(am_stats_t, segments)},
    {"segment bytes", offsetof(am_stats_t, segment_bytes)},
    {"slab bytes", offsetof(am_stats_t, slab_bytes)},
    {"resident bytes (process RSS)", offsetof(am_stats_t, resident)},
    {"purged bytes", offsetof(am_stats_t, purged_bytes)},
    {"purge delay in force (ms)", offsetof(am_stats_t, purge_delay_ms)},
    {"purge delay lengthened (regrets)", offsetof(am_stats_t, purge_regrets)},
    {"purge delay shortened", offsetof(am_stats_t, purge_relaxes)},
    {"bytes in live blocks", offsetof(am_stats_t, live_bytes)},
    {"THP segments", offsetof(am_stats_t, thp_segments)},
    {"hugetlb segments", offsetof(am_stats_t, hugetlb_segments)},
    {"threads (heaps) created", offsetof(am_stats_t, threads_created)},
    {"threads exited", offsetof(am_stats_t, threads_exited)},
    {"segments abandoned", offsetof(am_stats_t, segments_abandoned)},
    {"segments reclaimed", offsetof(am_stats_t, segments_reclaimed)},
    {"segments abandoned now", offsetof(am_stats_t, segments_abandoned_now)},
    {"segments converted", offsetof(am_stats_t, segments_converted)},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    am_line_str(&l, "amalloc: ");
    am_line_str(&l, rows[i].label);
    while (l.len < 45) l.buf[l.len++] = ' ';
    am_line_num(&l, *(const size_t *)((const char *)&st + rows[i].off), 14);
    am_line_end(&l);
  }
  /* first-class heaps live now (heapapi.c): counters their owners update on slow paths, read
   * without stopping them */
  pthread_mutex_lock(&am_g.heap_lock);
  for (am_heap_t *h = am_g.heaps; h != NULL; h = h->gnext) {
    if (__atomic_load_n(&h->kind, __ATOMIC_RELAXED) != AM_HEAP_USER) continue;
    size_t mallocs = 0;
    for (size_t c = 0; c < AM_CLASS_COUNT; c++) mallocs += am_heap_mallocs(h, c);
    am_line_str(&l, "amalloc: heap ");
    am_line_num(&l, (size_t)h->thread_serial, 0);
    am_line_str(&l, ": slabs");
    am_line_num(&l, __atomic_load_n(&h->stat_slabs, __ATOMIC_RELAXED), 8);
    am_line_str(&l, "  segments");
    am_line_num(&l, __atomic_load_n(&h->segment_count[0], __ATOMIC_RELAXED) +
                        __atomic_load_n(&h->segment_count[1], __ATOMIC_RELAXED), 6);
    am_line_str(&l, "  large blocks");
    am_line_num(&l, __atomic_load_n(&h->large_count, __ATOMIC_RELAXED), 8);
    am_line_str(&l, "  mallocs");
    am_line_num(&l, mallocs + __atomic_load_n(&h->large_mallocs, __ATOMIC_RELAXED), 12);
    am_line_str(&l, "  resets");
    am_line_num(&l, __atomic_load_n(&h->stat_resets, __ATOMIC_RELAXED), 6);
    am_line_end(&l);
  }
  pthread_mutex_unlock(&am_g.heap_lock);
  errno = saved;
}

AM_EXPORT void am_malloc_stats(void) { am_stats_print(); }

AM_EXPORT int am_malloc_info(int options, FILE *stream) {
  if (options != 0 || stream == NULL) {
    errno = EINVAL;
    return -1;
  }
  struct am_mallinfo2 m = am_mallinfo2();
  fprintf(stream,
          "<malloc version=\"1\" allocator=\"amalloc\">\n"
          "<heap nr=\"0\">\n"
          "<sizes>\n</sizes>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</heap>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
          "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</malloc>\n",
          m.ordblks, m.fordblks, m.arena, m.arena, m.arena, m.arena,
          m.ordblks, m.fordblks, m.hblks, m.hblkhd, m.arena + m.hblkhd,
          m.arena + am_load(&am_g.stat_large_peak), m.arena + m.hblkhd, m.arena + m.hblkhd);
  return 0;
}

/* am_mallopt: options.c (glibc's settings). */
