/* stats.c -- introspection: mallinfo2/mallinfo, malloc_trim, malloc_stats, malloc_info,
 * mallopt.
 *
 * The figures come from process-wide counters (am_g.stat_*) that only the slow paths update:
 * segments mapped, slots holding a slab, large blocks. "In use" for small and medium blocks
 * is counted per slab, not per block: a slab that holds at least one live block counts whole
 * (64 KiB or 1 MiB), so uordblks is an upper bound of the bytes handed out. Exact per-class
 * counts come with the statistics work (see the README's known limits).
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
  am_heap_t *heap = am_heap_get();
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

/* ---- reports ---------------------------------------------------------------------------- */

static void am_report_line(const char *label, size_t value) {
  char buf[128];
  size_t len = 0;
  const char *pre = "amalloc: ";
  while (*pre) buf[len++] = *pre++;
  while (*label && len < 80) buf[len++] = *label++;
  while (len < 40) buf[len++] = ' ';
  len += _am_fmt_size(buf + len, sizeof(buf) - len - 1, value);
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

AM_EXPORT void am_malloc_stats(void) {
  int saved = errno;
  struct am_mallinfo2 m = am_mallinfo2();
  am_report_line("segments", m.ordblks);
  am_report_line("segment bytes", m.arena);
  am_report_line("slab bytes in use", am_load(&am_g.stat_slab_bytes));
  am_report_line("large blocks", m.hblks);
  am_report_line("large bytes", m.hblkhd);
  am_report_line("large bytes (peak)", am_load(&am_g.stat_large_peak));
  am_report_line("bytes in use (upper bound)", m.uordblks);
  am_report_line("threads (heaps created)", am_load(&am_g.stat_threads));
  am_report_line("segments abandoned", am_load(&am_g.stat_abandoned));
  am_report_line("segments reclaimed", am_load(&am_g.stat_reclaimed));
  am_report_line("bytes purged", am_load(&am_g.stat_purged_bytes));
  errno = saved;
}

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

/* amalloc has none of glibc's tunables; accept every call as glibc does for valid ones. */
AM_EXPORT int am_mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}
