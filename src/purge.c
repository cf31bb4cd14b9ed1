/* purge.c -- when free memory goes back to the OS: a delay that learns from the program.
 *
 * Free memory (dirty free slots, empty segments, cached large mappings) goes back to the OS
 * once it has been free for "the delay in force" (segment.c's purge passes, large.c's cache).
 * A fixed delay is wrong one way or the other: too short, and a program that frees a large
 * heap and builds it again a moment later (a request loop over big batches, a compiler pass,
 * a cache being rebuilt) pays a page fault for every page each time; too long, and memory
 * freed for good stays resident. So the delay starts at AMALLOC_PURGE_DELAY_MS (the base,
 * 25 ms) and moves between the base and AMALLOC_PURGE_DELAY_MAX_MS (1 s):
 *
 *   regret  timed purges gave back at least 8 MiB of a pool, and the same pool then took at
 *           least 8 MiB of fresh memory (slots never used or purged, new large mappings)
 *           within the regret window (4 x the delay, at least 250 ms) of the last of those
 *           purges: the program wanted the memory back. The delay becomes twice the time
 *           the oldest of the purged memory had been free when it was wanted, so the next
 *           round of the same cycle keeps it (never more than the maximum, at least twice the
 *           old delay).
 *   relax   the first timed purge of a pool after a window that passed with no regret (the
 *           memory given back was not wanted again): the delay halves, down to the base.
 *
 * Pools: small slots, medium slots and large mappings (AM_SEGMENT_SMALL, MEDIUM, LARGE), each
 * with a delay of its own (an empty segment goes with its kind's). Only a pool's own fresh
 * memory regrets its purge: memory freed as small blocks cannot serve a large
 * mapping, so a program that frees small blocks and then maps large ones (phases of different
 * sizes) keeps the short delay and its low peak RSS. What malloc_trim gives back, and what a
 * delay of 0 or -1 decides, teaches nothing (an AMALLOC_PURGE_DELAY_MAX_MS at or below the
 * base fixes the delay at the base).
 *
 * Measured: see doc/memory.md "Measured" and the closing note of issue 14. The state is am_g's
 * purge_* fields (types.h says who writes them).
 */
#include "internal.h"

/* A regret needs this much given back and then taken fresh again: below it, the page faults a
 * longer delay would save are not worth the memory it holds (python3 regretted purges of a
 * 1.7 MiB buffer and of a few MiB of medium slots: delays of 60-450 ms saved 50 k faults, about 1%
 * of its time, for 14% more peak RSS). */
#define AM_PURGE_REGRET_MIN ((size_t)8 << 20)

/* The regret window for a delay `d` (ms). */
static long am_purge_window(long d) { return d * 4 > 250 ? d * 4 : 250; }

/* The base and the maximum when the delay adapts; false when it does not. */
static bool am_purge_adapts(long *base, long *max) {
  *base = am_g.options[AM_OPTION_PURGE_DELAY_MS];
  *max = am_g.options[AM_OPTION_PURGE_DELAY_MAX_MS];
  return *base > 0 && *max > *base;
}

AM_INTERNAL long _am_purge_delay(size_t pool) {
  long base, max;
  if (!am_purge_adapts(&base, &max)) return base;
  long d = atomic_load_explicit(&am_g.purge_delay[pool], memory_order_relaxed);
  return d < base ? base : d > max ? max : d;
}

/* A timed purge (not malloc_trim) gave back `bytes` of `pool` at `now`, memory that had been
 * free since `freed_at` at least (the oldest of it). */
AM_INTERNAL void _am_purge_released(size_t pool, size_t bytes, int64_t now, int64_t freed_at) {
  long base, max;
  if (bytes == 0 || !am_purge_adapts(&base, &max)) return;
  int64_t w = atomic_load_explicit(&am_g.purge_window_at[pool], memory_order_relaxed);
  long d = _am_purge_delay(pool);
  if (w != 0 && now - w > am_purge_window(d)) {
    /* a whole window went by and nothing given back then was wanted again: a shorter delay,
     * and a new window from now */
    if (!atomic_compare_exchange_strong_explicit(&am_g.purge_window_at[pool], &w, now,
                                                 memory_order_relaxed, memory_order_relaxed))
      return;                           /* another purger decided */
    if (d > base) {
      atomic_store_explicit(&am_g.purge_delay[pool], d / 2 > base ? d / 2 : base, memory_order_relaxed);
      am_stat_add(&am_g.stat_purge_relaxed, 1);
    }
    atomic_store_explicit(&am_g.purge_released[pool], bytes, memory_order_relaxed);
    atomic_store_explicit(&am_g.purge_refetched[pool], 0, memory_order_relaxed);
  } else {
    if (w == 0) {
      int64_t zero = 0;
      if (atomic_compare_exchange_strong_explicit(&am_g.purge_window_at[pool], &zero, now,
                                                  memory_order_relaxed, memory_order_relaxed))
        atomic_store_explicit(&am_g.purge_refetched[pool], 0, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&am_g.purge_released[pool], bytes, memory_order_relaxed);
  }
  atomic_store_explicit(&am_g.purge_freed_at[pool], freed_at, memory_order_relaxed);
  atomic_store_explicit(&am_g.purge_last_at[pool], now, memory_order_relaxed);
}

/* A first-class heap's destroy or reset at `now` freed every slot of its segments; `*last` is
 * when its thread last did so (updated here). Returns the time until which those slots stay
 * resident (segment.c: keep_until), or 0 for the usual delay.
 *
 * A request loop (a heap per request, destroyed at its end) takes the same memory again at
 * once, but reaches the last segments of its heap only late in the next request: with the base
 * delay, a request longer than it found those segments purged and faulted them in again every
 * time (bench/heaps/request.c, 100,000 nodes: 450-1,000 faults a request, 4 MiB purged and
 * taken fresh again, too little for a regret). A thread that destroys heaps at most the
 * maximum delay apart is in such a loop: the memory is kept for twice the time since the
 * previous destroy (the next request's length, with room to spare; between the base and the
 * maximum). A heap destroyed once keeps the usual delay. Keeping the memory adds nothing to
 * the peak: the next heap takes those slots before fresh ones. */
AM_INTERNAL int64_t _am_purge_loop_keep(int64_t *last, int64_t now) {
  int64_t prev = *last;
  *last = now;
  long base, max;
  if (prev == 0 || !am_purge_adapts(&base, &max)) return 0;
  int64_t period = now - prev;
  if (period > max) return 0;
  int64_t keep = 2 * period;
  if (keep < base) keep = base;
  if (keep > max) keep = max;
  return now + keep;
}

/* `pool` took `bytes` of fresh memory (pages that will fault in). Cheap when the pool gave
 * nothing back since the last decision (one relaxed load). */
AM_INTERNAL void _am_purge_fresh(size_t pool, size_t bytes) {
  if (am_likely(atomic_load_explicit(&am_g.purge_window_at[pool], memory_order_relaxed) == 0)) return;
  long base, max;
  if (!am_purge_adapts(&base, &max)) return;
  int64_t now = _am_clock_ms();
  int64_t last = atomic_load_explicit(&am_g.purge_last_at[pool], memory_order_relaxed);
  long d = _am_purge_delay(pool);
  if (now - last > am_purge_window(d)) return;
  if (atomic_load_explicit(&am_g.purge_released[pool], memory_order_relaxed) < AM_PURGE_REGRET_MIN) return;
  size_t got = atomic_fetch_add_explicit(&am_g.purge_refetched[pool], bytes, memory_order_relaxed) + bytes;
  if (got < AM_PURGE_REGRET_MIN) return;
  int64_t w = atomic_load_explicit(&am_g.purge_window_at[pool], memory_order_relaxed);
  if (w == 0 || !atomic_compare_exchange_strong_explicit(&am_g.purge_window_at[pool], &w, 0,
                                                         memory_order_relaxed, memory_order_relaxed))
    return;                             /* another thread decided */
  /* regret: the purged memory had been free since freed_at when it was wanted (a purge pass
   * often runs late, on the very call that wants the memory again: the time since the purge
   * says little) */
  int64_t freed_at = atomic_load_explicit(&am_g.purge_freed_at[pool], memory_order_relaxed);
  long want = 2 * (long)(now - freed_at);
  if (want < 2 * d) want = 2 * d;
  if (want > max) want = max;
  atomic_store_explicit(&am_g.purge_delay[pool], want, memory_order_relaxed);
  atomic_store_explicit(&am_g.purge_released[pool], 0, memory_order_relaxed);
  atomic_store_explicit(&am_g.purge_refetched[pool], 0, memory_order_relaxed);
  am_stat_add(&am_g.stat_purge_regrets, 1);
}
