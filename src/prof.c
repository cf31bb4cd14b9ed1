/* prof.c -- the sampled heap profiler (AMALLOC_PROF=1; doc/heap-profiler.md).
 *
 * Sampling. Each allocation is sampled with probability 1 - exp(-s / R), s its block size and R
 * the period (AMALLOC_PROF_SAMPLE, 512 KiB): a Poisson process over the bytes allocated, as in
 * tcmalloc and jemalloc, so periodic programs are not aliased and a profile's numbers scale back
 * to estimates without bias (the scale of a line is 1 / (1 - exp(-s / R)): pprof's heap_v2
 * rule). Blocks of a size class all have one size, so a thread keeps, per class, the number of
 * allocations before its next sample: floor(E / s), E exponential with mean R, is exactly the
 * gap of that process (types.h sample_left). malloc's fast path counts it down (the sub that
 * replaced the class's counter add, and one branch); the sampled path re-arms it. While the
 * profiler is off the gap is AM_PROF_OFF_GAP: the sampled path runs once per 2^20 allocations
 * of a class, finds nothing to do and re-arms. Large blocks (own mapping) draw E at each
 * allocation and are sampled when E < their size.
 *
 * Sampled blocks. A sampled small or medium block comes from the profiler's heap
 * (am_g.prof_heap) under prof_lock, not from the thread's: no thread owns that heap, so
 * whichever thread frees the block takes free's remote path (alloc.c am_free_generic), which
 * sees the owner and gives the block back to that heap under prof_lock (_am_prof_free_block).
 * The free fast path has no profiler test at all. A sampled large block carries
 * seg->prof_sampled, which the large free path tests.
 *
 * Stacks. amalloc's own walker of the objects' call frame information (unwind.c: why not
 * libgcc's or libunwind's), or a walk of the frame-pointer chain (build option prof_unwind=fp;
 * doc/heap-profiler.md compares them), bounded to AM_PROF_DEPTH frames, taken before prof_lock
 * and with am_prof_busy set. The frames up to the outermost one in the
 * allocator's API (internal.h AM_API_TEXT) are dropped: frame 0 is the return address in the
 * function that called malloc, new, realloc...
 * Addresses are written as they are, with /proc/self/maps after them: symbols are looked up
 * afterwards (amalloc-prof, google-pprof), not in the process; only the leak report at exit
 * names functions itself (from the objects' ELF symbol tables, without allocating).
 *
 * Tables (under prof_lock, in memory mapped for them): the distinct stacks, each with its live
 * and cumulative sampled counts and bytes (stacks are never removed; am_prof_reset zeroes their
 * counts), and the live sampled blocks by address (open addressing, backward-shift deletion).
 *
 * Output: gperftools' heap-profile text format (am_prof_dump, AMALLOC_PROF_DUMP at exit), and
 * the leak report (AMALLOC_PROF_LEAKS at exit). No signal handler, no thread.
 */
#include "internal.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


#define AM_PROF_DEPTH 64                 /* frames kept per stack */
#define AM_PROF_SKIP_MAX 16              /* allocator frames looked for at the top of a stack */
#define AM_PROF_OFF_GAP ((int64_t)1 << 20)
#define AM_PROF_NEVER ((int64_t)1 << 62)  /* the profiler's own heap and first-class heaps */
#define AM_PROF_PERIOD_MAX ((size_t)1 << 40)

static AM_TLS bool am_prof_busy;        /* this thread is taking a sample */
static AM_TLS uint64_t am_prof_rng;     /* this thread's random state (0: not seeded) */
static AM_TLS uintptr_t am_prof_stack_hi;   /* the top of this thread's stack (0: not known) */

extern const char __start_amalloc_api[] __attribute__((visibility("hidden")));
extern const char __stop_amalloc_api[] __attribute__((visibility("hidden")));

/* ---- numbers ---------------------------------------------------------------------------- */

/* ln(x) for x > 0, without libm: x = m * 2^e with m in [0.707, 1.414], and
 * ln(m) = 2 atanh((m - 1) / (m + 1)) by its series (|s| <= 0.172: error below 1e-10). */
static double am_ln(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof(bits));
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  memcpy(&m, &bits, sizeof(m));
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double s = (m - 1) / (m + 1), s2 = s * s;
  double r = 2 * s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 / 11)))));
  return r + e * 0.6931471805599453;
}

/* exp(x) for x <= 0, without libm: 2^k * exp(f), f in [0, ln 2) by its series. */
static double am_exp_neg(double x) {
  if (x < -700) return 0;
  double k = (double)(long)(x / 0.6931471805599453);
  if (k * 0.6931471805599453 > x) k -= 1;
  double f = x - k * 0.6931471805599453;
  double t = 1, sum = 1;
  for (int i = 1; i < 14; i++) {
    t *= f / i;
    sum += t;
  }
  uint64_t bits = (uint64_t)((long)k + 1023) << 52;
  double p;
  memcpy(&p, &bits, sizeof(p));
  return sum * p;
}

/* An exponentially distributed number with mean `mean` (this thread's xorshift64*). */
static double am_prof_draw(double mean) {
  uint64_t x = am_prof_rng;
  if (am_unlikely(x == 0)) {
    uint64_t n = atomic_fetch_add_explicit(&am_g.key_counter, 1, memory_order_relaxed);
    x = _am_mix64(am_g.secret ^ (n * 0x9E3779B97F4A7C15ull) ^ (uintptr_t)&am_prof_rng) | 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  am_prof_rng = x;
  double u = (double)(((x * 0x2545F4914F6CDD1Dull) >> 11) + 1) * (1.0 / 9007199254740992.0);  /* (0, 1] */
  return -am_ln(u) * mean;
}

/* The scale of a profile line: 1 / the probability that a block of `avg` bytes was sampled. */
static double am_prof_scale(double avg, double period) {
  double p = 1 - am_exp_neg(-avg / period);
  return p > 0 ? 1 / p : 1;
}

/* ---- the countdowns ----------------------------------------------------------------------- */

/* Arms class cls of `heap` (the calling thread's) with the next gap: the allocations since it
 * was last armed go to its counter (internal.h am_heap_mallocs). */
static void am_prof_arm(am_heap_t *heap, size_t cls, long period) {
  int64_t gap = AM_PROF_OFF_GAP;
  /* first-class heaps: never sampled; am_heap_malloc counts their countdown down without a test
   * (alloc.c am_heap_malloc_current) */
  if (heap->kind == AM_HEAP_USER) gap = AM_PROF_NEVER;
  else if (period > 0) {
    double g = am_prof_draw((double)period) / (double)am_class_size[cls];
    gap = g >= (double)AM_PROF_NEVER ? AM_PROF_NEVER : (int64_t)g;
  }
  heap->stat_mallocs[cls] += heap->sample_armed[cls] - (uint64_t)heap->sample_left[cls];
  heap->sample_armed[cls] = (uint64_t)gap;
  heap->sample_left[cls] = gap;
}

/* ---- tables (prof_lock) ------------------------------------------------------------------- */

static uint64_t am_prof_hash(const uintptr_t *frames, size_t depth) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ depth;
  for (size_t i = 0; i < depth; i++) h = _am_mix64(h ^ frames[i]);
  return h;
}

static size_t am_prof_bytes(size_t n) { return am_align_up(n, am_g.page_size); }

/* A hash table of `cap` entries of `size` bytes grown to twice as many (64 at first): the
 * entries move to their slots (slot(entry, cap); SIZE_MAX for an empty one, which is all zero)
 * by linear probing. Returns false when there is no memory (the table is unchanged). */
static bool am_prof_grow(void **table, size_t *cap, size_t size, size_t (*slot)(const void *entry, size_t cap)) {
  size_t n = *cap ? *cap * 2 : 64;   /* (small at first: a program with few stacks touches few pages) */
  uint8_t *t = _am_os_map(am_prof_bytes(n * size)), *old = *table;
  if (t == NULL) return false;
  for (size_t i = 0; i < *cap; i++) {
    const void *e = old + i * size;
    size_t j = slot(e, n);
    if (j == SIZE_MAX) continue;
    while (slot(t + j * size, n) != SIZE_MAX) j = (j + 1) & (n - 1);
    memcpy(t + j * size, e, size);
  }
  if (old != NULL) _am_os_free(old, am_prof_bytes(*cap * size));
  *table = t;
  *cap = n;
  return true;
}

static size_t am_prof_stack_slot(const void *entry, size_t cap) {
  uint32_t id = *(const uint32_t *)entry;
  return id == 0 ? SIZE_MAX : (size_t)(am_g.prof.stacks[id - 1].hash & (cap - 1));
}

/* An array of `cap` entries of `size` bytes, `used` of them in use, made room for at least
 * `need` (`first` at first), the entries where they were. Returns false when there is no
 * memory (the array is unchanged). */
static bool am_prof_extend(void **array, size_t *cap, size_t used, size_t need, size_t size, size_t first) {
  if (need <= *cap) return true;
  size_t n = *cap ? *cap * 2 : first;
  while (n < need) n *= 2;
  void *t = _am_os_map(am_prof_bytes(n * size));
  if (t == NULL) return false;
  if (*array != NULL) {
    memcpy(t, *array, used * size);
    _am_os_free(*array, am_prof_bytes(*cap * size));
  }
  *array = t;
  *cap = n;
  return true;
}

/* Blocks of one entry have sizes within 1/8 of each other: the scale of a line, which comes
 * from its average block size, is then that of each of its blocks (with one entry per stack, a
 * stack that allocates 16-byte and 400 KiB blocks came out 4% low at a 64 KiB period). */
static uint64_t am_prof_size_key(size_t size) {
  if (size <= AM_MEDIUM_MAX) return size;          /* (a size class) */
  int top = 63 - __builtin_clzll((unsigned long long)size);
  return size & ~((((uint64_t)1) << (top - 3)) - 1);
}

/* The index of the entry of the stack and block size, added if new; SIZE_MAX when there is
 * no memory. */
static size_t am_prof_stack_find(am_prof_state_t *st, const uintptr_t *frames, size_t depth, size_t size) {
  uint64_t fh = am_prof_hash(frames, depth), key = am_prof_size_key(size);
  uint64_t h = _am_mix64(fh ^ key);
  if ((st->stack_count + 1) * 2 > st->slot_cap &&
      !am_prof_grow((void **)&st->stack_slots, &st->slot_cap, sizeof(*st->stack_slots), am_prof_stack_slot))
    return SIZE_MAX;
  size_t j = h & (st->slot_cap - 1);
  for (;; j = (j + 1) & (st->slot_cap - 1)) {
    uint32_t id = st->stack_slots[j];
    if (id == 0) break;
    am_prof_stack_t *s = &st->stacks[id - 1];
    if (s->hash == h && s->size_key == key && s->depth == depth &&
        memcmp(&st->frames[s->frames], frames, depth * sizeof(*frames)) == 0)
      return id - 1;
  }
  if (st->stack_count >= UINT32_MAX - 1 ||
      !am_prof_extend((void **)&st->stacks, &st->stack_cap, st->stack_count, st->stack_count + 1,
                      sizeof(*st->stacks), 64) ||
      !am_prof_extend((void **)&st->frames, &st->frame_cap, st->frame_count, st->frame_count + depth,
                      sizeof(*st->frames), 1024))
    return SIZE_MAX;
  size_t index = st->stack_count++;
  am_prof_stack_t *s = &st->stacks[index];
  memset(s, 0, sizeof(*s));
  s->hash = h;
  s->frames_hash = fh;
  s->size_key = key;
  s->depth = (uint32_t)depth;
  s->frames = (uint32_t)st->frame_count;
  memcpy(&st->frames[st->frame_count], frames, depth * sizeof(*frames));
  st->frame_count += depth;
  st->stack_slots[j] = (uint32_t)(index + 1);
  return index;
}

static size_t am_prof_rec_slot(uintptr_t addr, size_t cap) { return (size_t)(_am_mix64(addr) & (cap - 1)); }

static size_t am_prof_rec_entry_slot(const void *entry, size_t cap) {
  uintptr_t a = ((const am_prof_rec_t *)entry)->addr;
  return a == 0 ? SIZE_MAX : am_prof_rec_slot(a, cap);
}

/* Records block p (`size` bytes) as live, allocated at `frames`. */
static void am_prof_record(uintptr_t p, size_t size, const uintptr_t *frames, size_t depth) {
  am_prof_state_t *st = &am_g.prof;
  if ((st->rec_count + 1) * 2 > st->rec_cap &&
      !am_prof_grow((void **)&st->recs, &st->rec_cap, sizeof(*st->recs), am_prof_rec_entry_slot))
    return;
  size_t si = am_prof_stack_find(st, frames, depth, size);
  if (si == SIZE_MAX) return;
  am_prof_stack_t *s = &st->stacks[si];
  s->live_count++;
  s->live_bytes += size;
  s->alloc_count++;
  s->alloc_bytes += size;
  size_t j = am_prof_rec_slot(p, st->rec_cap);
  while (st->recs[j].addr != 0) j = (j + 1) & (st->rec_cap - 1);
  st->recs[j] = (am_prof_rec_t){.addr = p, .stack = (uint32_t)si, .size = size};
  st->rec_count++;
}

/* Removes block p from the live set, if it is there. */
static void am_prof_forget(uintptr_t p) {
  am_prof_state_t *st = &am_g.prof;
  if (st->rec_count == 0) return;
  size_t mask = st->rec_cap - 1, j = am_prof_rec_slot(p, st->rec_cap);
  while (st->recs[j].addr != p) {
    if (st->recs[j].addr == 0) return;
    j = (j + 1) & mask;
  }
  am_prof_stack_t *s = &st->stacks[st->recs[j].stack];
  s->live_count--;
  s->live_bytes -= st->recs[j].size;
  st->rec_count--;
  /* backward-shift deletion: later entries of the run move up so that no lookup stops early */
  size_t hole = j;
  for (size_t k = (j + 1) & mask; st->recs[k].addr != 0; k = (k + 1) & mask) {
    size_t home = am_prof_rec_slot(st->recs[k].addr, st->rec_cap);
    if (((k - home) & mask) >= ((k - hole) & mask)) {
      st->recs[hole] = st->recs[k];
      hole = k;
    }
  }
  st->recs[hole].addr = 0;
}

/* ---- stacks ------------------------------------------------------------------------------- */

/* The frame-pointer chain from here: return addresses while each frame lies above the last
 * and within this thread's stack (a program built without frame pointers ends it early; a
 * frame pointer register holding other data fails the bounds). The library is built with
 * frame pointers in this configuration. */
static AM_API_TEXT am_noinline int am_prof_fp_walk(void **out, int max) {
  if (am_prof_stack_hi == 0) {
    pthread_attr_t attr;
    void *addr;
    size_t size;
    /* (for the main thread glibc reads /proc/self/maps with stdio, which allocates: served,
     * not sampled, as am_prof_busy is set) */
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) am_prof_stack_hi = (uintptr_t)addr + size;
      pthread_attr_destroy(&attr);
    }
    if (am_prof_stack_hi == 0) return 0;
  }
  uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
  uintptr_t *fp = __builtin_frame_address(0);
  int n = 0;
  while (n < max) {
    uintptr_t f = (uintptr_t)fp;
    if (f < lo || f + 2 * sizeof(uintptr_t) > am_prof_stack_hi || (f & 7) != 0) break;
    uintptr_t ret = fp[1];
    if (ret < 4096) break;
    out[n++] = (void *)ret;
    lo = f + 2 * sizeof(uintptr_t);
    fp = (uintptr_t *)fp[0];
  }
  return n;
}

/* The calling program's stack, innermost first, without the allocator's frames. */
static AM_API_TEXT am_noinline size_t am_prof_backtrace(uintptr_t *out) {
  void *raw[AM_PROF_DEPTH + AM_PROF_SKIP_MAX];
  int max = AM_PROF_DEPTH + AM_PROF_SKIP_MAX;
  int n = AM_PROF_UNWINDER ? _am_unwind_backtrace(raw, max) : -1;
  if (n < 0) n = am_prof_fp_walk(raw, max);     /* (prof_unwind=fp, or no memory for the walker) */
  int first = 0;
  for (int i = 0; i < n && i < AM_PROF_SKIP_MAX; i++) {
    uintptr_t a = (uintptr_t)raw[i];
    if (a >= (uintptr_t)__start_amalloc_api && a < (uintptr_t)__stop_amalloc_api) first = i + 1;
  }
  size_t depth = 0;
  for (int i = first; i < n && depth < AM_PROF_DEPTH; i++) out[depth++] = (uintptr_t)raw[i];
  return depth;
}

/* ---- the sampled paths -------------------------------------------------------------------- */

/* The profiler's heap, created at its first use (prof_lock held). */
static am_heap_t *am_prof_heap_locked(void) {
  am_heap_t *h = atomic_load_explicit(&am_g.prof_heap, memory_order_relaxed);
  if (h != NULL) return h;
  h = _am_heap_create(AM_HEAP_THREAD);
  if (h == NULL) return NULL;
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) {
    h->sample_armed[c] = (uint64_t)AM_PROF_NEVER;
    h->sample_left[c] = AM_PROF_NEVER;
  }
  atomic_store_explicit(&am_g.prof_heap, h, memory_order_release);
  return h;
}

/* A block of class cls from the profiler's heap, recorded with the caller's stack; NULL when
 * the profiler's heap has no memory (the caller then serves the request itself). */
static AM_API_TEXT am_noinline void *am_prof_sample_block(size_t cls) {
  uintptr_t frames[AM_PROF_DEPTH];
  am_prof_busy = true;
  size_t depth = am_prof_backtrace(frames);
  /* The profiler's heap keeps one slab per class it serves, at least a touched page each: a
   * block of a power-of-two class (the smallest at least cls's size) keeps it to 10 small
   * classes, not 56. The block fits every check a block of cls passes: above a power of two
   * 2^k, cls is above it too, so its request is more than half the block (free_sized's bound,
   * alloc.c) and the block is aligned to at least cls's alignment. (Not in the secure build,
   * whose misuse checks stay those of the program's own classes.) */
  size_t pow2 = (size_t)1 << (64 - __builtin_clzll((unsigned long long)am_class_size[cls] - 1));
  size_t pcls = !AM_SECURE && am_class_size[cls] <= AM_SMALL_MAX ? am_size_class(pow2) : cls;
  pthread_mutex_lock(&am_g.prof_lock);
  am_heap_t *ph = am_prof_heap_locked();
  void *p = ph != NULL ? _am_heap_malloc_generic(ph, pcls) : NULL;
  if (p != NULL) am_prof_record((uintptr_t)p, am_class_size[cls], frames, depth);
  pthread_mutex_unlock(&am_g.prof_lock);
  am_prof_busy = false;
  return p;
}

/* Class cls of `heap` (the calling thread's) counted down to its next sample: re-armed, and
 * when sampling is on, the sample taken: a block of the profiler's heap, or NULL (the caller
 * serves the request from its own heap). */
/* (the first step of both: re-armed; true when this allocation is to be the sample) */
static bool am_prof_rearm(am_heap_t *heap, size_t cls) {
  long period = atomic_load_explicit(&am_g.prof_period, memory_order_relaxed);
  am_prof_arm(heap, cls, period);
  return period > 0 && !am_prof_busy && heap->kind != AM_HEAP_USER;
}
static AM_API_TEXT am_noinline void *am_prof_expired(am_heap_t *heap, size_t cls) {
  if (!am_prof_rearm(heap, cls)) return NULL;
  void *p = am_prof_sample_block(cls);
  if (p != NULL) heap->stat_mallocs[cls]--;   /* (the profiler's heap counted it) */
  return p;
}

/* Medium sampling in place (AM_PROF_IN_PLACE builds). A sampled block moved to the profiler's heap leaves a block free in
 * the thread's own heap while the profiler's slabs take fresh pages: with medium blocks, up to
 * 45 KiB of peak RSS per live sample (bench/mixed at the default rate: +6.3 MiB). So a medium
 * block is sampled where it is: its bit in its segment's map is set (types.h
 * am_segment_t.prof_bits) and its slab gets AM_SLAB_PROF_FLAG, which sends the owner's frees
 * into the slab to the slow path (alloc.c am_free_off_grid); other threads' frees look at the
 * bit anyway (alloc.c am_free_generic); both through internal.h am_prof_free_in_place.
 * Medium frees are rare next to the bytes they move, so the flagged slab's slow frees cost
 * little; small blocks, whose slabs see most frees, still come from the profiler's heap. */

/* Block p of `slab` (a medium class, just taken from the calling thread's own heap) becomes a
 * sample where it is. */
static AM_API_TEXT am_noinline void am_prof_sample_in_place(am_slab_t *slab, void *p, size_t cls) {
  size_t k = am_block_index(slab, p);
  uintptr_t frames[AM_PROF_DEPTH];
  am_prof_busy = true;
  size_t depth = am_prof_backtrace(frames);
  pthread_mutex_lock(&am_g.prof_lock);
  am_prof_record((uintptr_t)p, am_class_size[cls], frames, depth);
  pthread_mutex_unlock(&am_g.prof_lock);
  am_prof_busy = false;
  atomic_fetch_or_explicit(&am_slab_prof_bits(slab)[k >> 6], (uint64_t)1 << (k & 63), memory_order_relaxed);
  am_slab_set_prof_flag(slab, true);
}

/* malloc's countdown of class `*current` went below 0 (alloc.c am_heap_malloc_current, internal.h
 * am_slab_pop): re-arm it, and serve the request from the profiler's heap when sampling is on,
 * else from the heap's current slab (or the slow path, when it has no free block). A medium
 * class is served from the heap and, when sampling is on, sampled in place. */
AM_INTERNAL AM_API_TEXT am_noinline void *_am_prof_malloc_small(am_heap_t *heap, am_slab_t **current) {
  size_t cls = (size_t)(current - heap->current);
  bool in_place = AM_PROF_IN_PLACE && am_class_size[cls] > AM_SMALL_MAX;
  bool sample = false;                  /* (in place: once the block is taken) */
  if (in_place) {
    sample = am_prof_rearm(heap, cls);
  } else {
    void *q = am_prof_expired(heap, cls);
    if (q != NULL) return q;
  }
  am_slab_t *slab = *current;
  am_block_t *b = slab->free;
  void *p;
  if (am_likely(b != NULL)) {
    p = am_slab_take(heap, slab, b);
  } else {
    heap->sample_left[cls]++;           /* (the slow path counts it down again) */
    p = _am_heap_malloc_generic(heap, cls);
  }
  if (sample && p != NULL) am_prof_sample_in_place(am_segment_slab_of(am_ptr_segment(p), p), p, cls);
  return p;
}

/* The same, from malloc's direct path, which popped block p of the current slab before it
 * counted down (alloc.c am_heap_malloc_current): when the profiler's heap serves the request, p
 * goes back on its slab's free list as it was (the pop undone). */
AM_INTERNAL AM_API_TEXT am_noinline void *_am_prof_malloc_taken(am_heap_t *heap, am_slab_t **current, void *p) {
  size_t cls = (size_t)(current - heap->current);
  void *q = am_prof_expired(heap, cls);
  if (q == NULL) return p;
  am_slab_t *slab = *current;           /* (p's: the pop left it current) */
  am_block_t *b = p;
  am_slab_push(heap, slab, b);
  if (AM_CHECKS) b->mark = am_block_mark(slab, b);
  slab->used--;
  return q;
}

/* A large block just allocated (internal.h am_prof_large_hook): sampled when an exponential
 * draw falls within its size. */
AM_INTERNAL AM_API_TEXT am_noinline void _am_prof_large(void *p) {
  long period = atomic_load_explicit(&am_g.prof_period, memory_order_relaxed);
  am_segment_t *seg = am_ptr_segment(p);
  if (period <= 0 || am_prof_busy || am_prof_draw((double)period) >= (double)seg->large_size) return;
  uintptr_t frames[AM_PROF_DEPTH];
  am_prof_busy = true;
  size_t depth = am_prof_backtrace(frames);
  pthread_mutex_lock(&am_g.prof_lock);
  am_prof_record((uintptr_t)p, seg->large_size, frames, depth);
  seg->prof_sampled = 1;
  pthread_mutex_unlock(&am_g.prof_lock);
  am_prof_busy = false;
}

/* Block p, sampled, was freed (any thread; alloc.c). */
AM_INTERNAL am_noinline void _am_prof_free(void *p) {
  pthread_mutex_lock(&am_g.prof_lock);
  am_prof_forget((uintptr_t)p);
  pthread_mutex_unlock(&am_g.prof_lock);
}

/* Large block p of seg, sampled (seg->prof_sampled), leaves the live set: free or realloc (`fn`)
 * was called on it; p must be the block's start (the large paths check it again). */
AM_INTERNAL am_noinline void _am_prof_large_freed(am_segment_t *seg, void *p, const char *fn) {
  if ((uint8_t *)p != seg->large_block) _am_fatal_in(fn, AM_E_INTERIOR, p);
  seg->prof_sampled = 0;
  _am_prof_free(p);
}

/* Free of block p of seg, a segment of the profiler's heap (alloc.c am_free_generic; in the
 * secure build when p leaves the quarantine, after _am_prof_free saw the program free it): p
 * leaves the live set, and whoever holds prof_lock is that heap's owner, so p goes on its
 * slab's free list as a local free would (with the owner's double-free check). (Pushed on the
 * remote stack instead, such blocks waited for a later sample of the same class, and with the
 * heap's usual policy, which keeps an empty current slab per class, a thread-churning program
 * kept 13-20 MiB more at a 16 KiB period.) */
AM_INTERNAL am_noinline void _am_prof_free_block(am_segment_t *seg, void *p) {
  pthread_mutex_lock(&am_g.prof_lock);
  am_heap_t *ph = atomic_load_explicit(&am_g.prof_heap, memory_order_relaxed);
  am_prof_forget((uintptr_t)p);
  am_slab_t *slab = am_checked_slab(seg, p, "free");
  am_block_t *b = p;
  uintptr_t mark = am_block_mark(slab, b);
  /* (the secure build checked the block when it entered the quarantine, which wrote the mark) */
  if (AM_CHECKS && !AM_SECURE && am_unlikely(b->mark == mark)) am_free_marked(slab, b);   /* aborts */
  am_slab_push(ph, slab, b);
  if (AM_CHECKS) b->mark = mark;
  if (--slab->used == 0 && (ph->current[slab->cls] != slab || am_class_size[slab->cls] > AM_SMALL_MAX)) {
    /* An empty medium slab goes at once, current or not: sampled blocks are few and far
     * between, and a kept slab per medium class (1 MiB) would hold its touched pages for them.
     * A small class keeps its current slab (64 KiB), as a thread's heap does: releasing it too
     * made slabs come and go with every sample. */
    _am_heap_unlink_slab(ph, slab);
    _am_segment_slab_free(ph, slab);
    if ((++ph->purge_ticks & 63) == 0) _am_heap_tick(ph);
  } else if (slab->used == 0 || slab->state != AM_SLAB_AVAIL) {
    _am_heap_free_slow(ph, slab);
  }
  pthread_mutex_unlock(&am_g.prof_lock);
}

/* realloc of large block p while the profiler is on or p is sampled: the old block leaves the
 * live set, and the result is a new allocation to the profiler (a block realloc moved into a
 * size class was sampled or not by malloc). */
AM_INTERNAL AM_API_TEXT am_noinline void *_am_prof_realloc_large(am_segment_t *seg, void *p, size_t size) {
  if (seg->prof_sampled) _am_prof_large_freed(seg, p, "realloc");
  void *q = _am_large_realloc(seg, p, size);
  if (q != NULL && am_ptr_segment(q)->kind == AM_SEGMENT_LARGE && !am_ptr_segment(q)->prof_sampled)
    q = am_prof_large_hook(q);
  return q;
}

/* ---- set-up and control ------------------------------------------------------------------- */

/* Sets up the stack walker when the profiler starts (its cache; nothing is loaded). */
static void am_prof_load_unwinder(void) {
  if (AM_PROF_UNWINDER && !_am_unwind_init() && am_option(AM_OPTION_VERBOSE))
    _am_message("", "the heap profiler takes stacks by frame pointers: no memory for the walker's cache", NULL);
}

/* Arms every class of a new heap, or of the calling thread's when the period changes. (Not
 * lazily at a class's first allocation: that allocation would then always be sampled, and
 * each class a thread uses would add a phantom period's worth of bytes to the profile.) */
AM_INTERNAL void _am_prof_arm_heap(am_heap_t *heap) {
  long period = atomic_load_explicit(&am_g.prof_period, memory_order_relaxed);
  for (size_t c = 0; c < AM_CLASS_COUNT; c++) am_prof_arm(heap, c, period);
}

static void am_prof_set_period(long period) {
  atomic_store_explicit(&am_g.prof_period, period, memory_order_relaxed);
  am_heap_t *heap = am_heap_get();
  if (heap != &am_heap_empty) _am_prof_arm_heap(heap);
}

/* From _am_process_init, after the options: AMALLOC_PROF, AMALLOC_PROF_DUMP and
 * AMALLOC_PROF_LEAKS each turn the profiler on (secure_getenv: not in setuid programs). */
AM_INTERNAL void _am_prof_init(void) {
  const char *prefix = secure_getenv("AMALLOC_PROF_DUMP");
  if (prefix != NULL && prefix[0] != 0) {
    size_t n = strlen(prefix);
    if (n < sizeof(am_g.prof_prefix) - 16) memcpy(am_g.prof_prefix, prefix, n + 1);
    else _am_message("warning: ", "AMALLOC_PROF_DUMP is too long; ignored", NULL);
  }
  if (am_option(AM_OPTION_PROF) || am_option(AM_OPTION_PROF_LEAKS) || am_g.prof_prefix[0] != 0) {
    am_g.options[AM_OPTION_PROF] = 1;
    atomic_store_explicit(&am_g.prof_enabled, 1, memory_order_relaxed);
  }
}

/* From _am_process_init once the allocator works: loads the unwinder, then starts sampling. */
AM_INTERNAL void _am_prof_start(void) {
  if (!am_option(AM_OPTION_PROF)) return;
  am_prof_load_unwinder();
  am_prof_set_period(am_option(AM_OPTION_PROF_SAMPLE));
}

/* am_option_set changed AM_OPTION_PROF or AM_OPTION_PROF_SAMPLE. */
AM_INTERNAL void _am_prof_options_changed(void) {
  if (am_option(AM_OPTION_PROF)) {
    atomic_store_explicit(&am_g.prof_enabled, 1, memory_order_relaxed);
    am_prof_load_unwinder();
  }
  am_prof_set_period(am_option(AM_OPTION_PROF) ? am_option(AM_OPTION_PROF_SAMPLE) : 0);
}

AM_INTERNAL void _am_prof_fork_child(void) { pthread_mutex_init(&am_g.prof_lock, NULL); }

AM_EXPORT int am_prof_set_sample(size_t bytes) {
  if (bytes > AM_PROF_PERIOD_MAX) return EINVAL;
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  if (bytes > 0) {
    am_g.options[AM_OPTION_PROF_SAMPLE] = (long)bytes;
    am_g.options[AM_OPTION_PROF] = 1;
    atomic_store_explicit(&am_g.prof_enabled, 1, memory_order_relaxed);
    am_prof_load_unwinder();
  } else {
    am_g.options[AM_OPTION_PROF] = 0;
  }
  am_prof_set_period((long)bytes);
  return 0;
}

AM_EXPORT int am_prof_reset(void) {
  if (!atomic_load_explicit(&am_g.prof_enabled, memory_order_relaxed)) return ENOTSUP;
  pthread_mutex_lock(&am_g.prof_lock);
  am_prof_state_t *st = &am_g.prof;
  if (st->recs != NULL) memset(st->recs, 0, st->rec_cap * sizeof(*st->recs));
  st->rec_count = 0;
  for (size_t i = 0; i < st->stack_count; i++) {
    am_prof_stack_t *s = &st->stacks[i];
    s->live_count = s->live_bytes = s->alloc_count = s->alloc_bytes = 0;
  }
  pthread_mutex_unlock(&am_g.prof_lock);
  /* sampled large blocks keep their flag: their free finds no record */
  return 0;
}

/* ---- output -------------------------------------------------------------------------------- */

/* A buffered writer to a file descriptor, without allocating. */
typedef struct {
  int fd;
  int err;                              /* the first write's errno, or 0 */
  size_t len;
  char buf[4096];
} am_out_t;

static void am_out_flush(am_out_t *o) {
  size_t done = 0;
  while (done < o->len && o->err == 0) {
    ssize_t w = write(o->fd, o->buf + done, o->len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      o->err = errno;
    } else {
      done += (size_t)w;
    }
  }
  o->len = 0;
}

static void am_out_mem(am_out_t *o, const char *s, size_t n) {
  while (n > 0) {
    if (o->len == sizeof(o->buf)) am_out_flush(o);
    size_t k = sizeof(o->buf) - o->len < n ? sizeof(o->buf) - o->len : n;
    memcpy(o->buf + o->len, s, k);
    o->len += k;
    s += k;
    n -= k;
  }
}

static void am_out_str(am_out_t *o, const char *s) { am_out_mem(o, s, strlen(s)); }

/* value in decimal, right-aligned in `width` columns */
static void am_out_dec(am_out_t *o, uint64_t v, int width) {
  char tmp[24];
  size_t n = _am_fmt_size(tmp, sizeof(tmp), v);
  for (int i = (int)n; i < width; i++) am_out_mem(o, " ", 1);
  am_out_mem(o, tmp, n);
}

static void am_out_hex(am_out_t *o, uintptr_t v) {
  char tmp[24];
  am_out_mem(o, tmp, am_fmt_hex(tmp, sizeof(tmp), v));   /* (message.c: "0x..." ) */
}

/* Copies file `path` (/proc/self/maps) to the output. */
static void am_out_file(am_out_t *o, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char tmp[4096];
  for (;;) {
    ssize_t r = read(fd, tmp, sizeof(tmp));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    am_out_mem(o, tmp, (size_t)r);
  }
  close(fd);
}

/* Writes the profile (prof_lock held). */
/* "live_count: live_bytes [alloc_count: alloc_bytes] @", the counts of a profile line */
static void am_out_counts(am_out_t *o, const am_prof_stack_t *s) {
  am_out_dec(o, s->live_count, 6);
  am_out_str(o, ": ");
  am_out_dec(o, s->live_bytes, 8);
  am_out_str(o, " [");
  am_out_dec(o, s->alloc_count, 6);
  am_out_str(o, ": ");
  am_out_dec(o, s->alloc_bytes, 8);
  am_out_str(o, "] @");
}

static void am_prof_write(am_out_t *o) {
  am_prof_state_t *st = &am_g.prof;
  am_prof_stack_t total = {0};
  for (size_t i = 0; i < st->stack_count; i++) {
    const am_prof_stack_t *s = &st->stacks[i];
    total.live_count += s->live_count;
    total.live_bytes += s->live_bytes;
    total.alloc_count += s->alloc_count;
    total.alloc_bytes += s->alloc_bytes;
  }
  long period = atomic_load_explicit(&am_g.prof_period, memory_order_relaxed);
  if (period <= 0) period = am_option(AM_OPTION_PROF_SAMPLE);
  am_out_str(o, "heap profile: ");
  am_out_counts(o, &total);
  am_out_str(o, " heap_v2/");
  am_out_dec(o, (uint64_t)period, 0);
  am_out_str(o, "\n");
  for (size_t i = 0; i < st->stack_count; i++) {
    const am_prof_stack_t *s = &st->stacks[i];
    if (s->alloc_count == 0) continue;
    am_out_counts(o, s);
    for (uint32_t k = 0; k < s->depth; k++) {
      am_out_str(o, " ");
      am_out_hex(o, st->frames[s->frames + k]);
    }
    am_out_str(o, "\n");
  }
  am_out_str(o, "\nMAPPED_LIBRARIES:\n");
  am_out_file(o, "/proc/self/maps");
}

/* am_prof_dump; `used` (when not NULL) receives the path written (sizeof prof_prefix + 40). */
static int am_prof_dump_named(const char *path, char *used) {
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  if (!atomic_load_explicit(&am_g.prof_enabled, memory_order_relaxed)) return ENOTSUP;
  char name[sizeof(am_g.prof_prefix) + 40];
  pthread_mutex_lock(&am_g.prof_lock);
  if (path == NULL) {
    if (am_g.prof_prefix[0] == 0) {
      pthread_mutex_unlock(&am_g.prof_lock);
      return EINVAL;
    }
    /* <prefix>.NNNN.heap, as gperftools names its dumps; %p in the prefix is the process id
     * (the processes a program starts inherit the prefix) */
    unsigned seq = ++am_g.prof_seq;
    size_t n = 0;
    for (const char *c = am_g.prof_prefix; *c != 0; c++) {
      if (c[0] == '%' && c[1] == 'p') {
        n += _am_fmt_size(name + n, sizeof(name) - 40 - n, (size_t)getpid());
        c++;
      } else if (n < sizeof(name) - 40) {
        name[n++] = *c;
      }
    }
    name[n++] = '.';
    char digits[24];
    size_t d = _am_fmt_size(digits, sizeof(digits), seq);
    for (size_t i = d; i < 4; i++) name[n++] = '0';
    memcpy(name + n, digits, d);
    n += d;
    memcpy(name + n, ".heap", 6);
    path = name;
  }
  if (used != NULL) {
    size_t n = strlen(path);
    if (n > sizeof(am_g.prof_prefix) + 39) n = sizeof(am_g.prof_prefix) + 39;
    memcpy(used, path, n);
    used[n] = 0;
  }
  int saved = errno;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    pthread_mutex_unlock(&am_g.prof_lock);
    errno = saved;
    return err;
  }
  am_out_t o = {.fd = fd};
  am_prof_write(&o);
  am_out_flush(&o);
  if (close(fd) != 0 && o.err == 0) o.err = errno;
  pthread_mutex_unlock(&am_g.prof_lock);
  errno = saved;
  return o.err;
}

AM_EXPORT int am_prof_dump(const char *path) { return am_prof_dump_named(path, NULL); }

/* ---- the leak report: symbols from the objects' ELF tables, without allocating ------------ */

typedef struct {
  uintptr_t base;                       /* load bias */
  uintptr_t lo, hi;                     /* the object's mapped range */
  char path[256];
  const uint8_t *map;                   /* the file, mapped (NULL: not readable) */
  size_t map_size;
  const Elf64_Sym *syms;
  size_t nsyms;
  const char *strs;
  size_t strs_size;
} am_elf_t;

#define AM_ELF_CACHE 16
typedef struct {
  am_elf_t obj[AM_ELF_CACHE];
  size_t count;
  uintptr_t addr;                       /* dl_iterate_phdr's question */
  am_elf_t *found;
} am_symbolizer_t;

static void am_elf_load(am_elf_t *e) {
  char path[sizeof(e->path)];
  memcpy(path, e->path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_size < (off_t)sizeof(Elf64_Ehdr)) {
    close(fd);
    return;
  }
  const uint8_t *m = _am_os_map_file(fd, (size_t)sb.st_size);
  close(fd);
  if (m == NULL) return;
  e->map = m;
  e->map_size = (size_t)sb.st_size;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
      eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > e->map_size)
    return;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(m + eh->e_shoff);
  /* the full symbol table when the object has one, else the dynamic one */
  static const Elf64_Word kinds[2] = {SHT_SYMTAB, SHT_DYNSYM};
  for (size_t k = 0; k < 2 && e->syms == NULL; k++) {
    for (size_t i = 0; i < eh->e_shnum; i++) {
      if (sh[i].sh_type != kinds[k] || sh[i].sh_link >= eh->e_shnum) continue;
      const Elf64_Shdr *ss = &sh[sh[i].sh_link];
      if (sh[i].sh_offset + sh[i].sh_size > e->map_size || ss->sh_offset + ss->sh_size > e->map_size) continue;
      e->syms = (const Elf64_Sym *)(m + sh[i].sh_offset);
      e->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
      e->strs = (const char *)(m + ss->sh_offset);
      e->strs_size = ss->sh_size;
      break;
    }
  }
}

static int am_elf_find_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  am_symbolizer_t *sy = arg;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (sy->addr < lo || sy->addr >= hi) continue;
    if (sy->count == AM_ELF_CACHE) return 1;
    am_elf_t *e = &sy->obj[sy->count++];
    memset(e, 0, sizeof(*e));
    e->base = info->dlpi_addr;
    e->lo = lo;
    e->hi = hi;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == 0) {
      ssize_t n = readlink("/proc/self/exe", e->path, sizeof(e->path) - 1);
      e->path[n > 0 ? n : 0] = 0;
    } else {
      size_t n = strlen(name);
      if (n >= sizeof(e->path)) n = sizeof(e->path) - 1;
      memcpy(e->path, name, n);
      e->path[n] = 0;
    }
    am_elf_load(e);
    sy->found = e;
    return 1;
  }
  return 0;
}

/* The object of address a, its function's name and the offset in it (name NULL: unknown). */
static am_elf_t *am_symbolize(am_symbolizer_t *sy, uintptr_t a, const char **name, uintptr_t *off) {
  *name = NULL;
  *off = 0;
  am_elf_t *e = NULL;
  for (size_t i = 0; i < sy->count; i++)
    if (a >= sy->obj[i].lo && a < sy->obj[i].hi) e = &sy->obj[i];
  if (e == NULL) {
    sy->addr = a;
    sy->found = NULL;
    dl_iterate_phdr(am_elf_find_cb, sy);
    e = sy->found;
  }
  if (e == NULL || e->syms == NULL) return e;
  uintptr_t rel = a - e->base;
  const Elf64_Sym *best = NULL;
  for (size_t i = 0; i < e->nsyms; i++) {
    const Elf64_Sym *s = &e->syms[i];
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF || s->st_name >= e->strs_size) continue;
    if (rel >= s->st_value && rel < s->st_value + (s->st_size ? s->st_size : 1)) {
      best = s;
      break;
    }
  }
  if (best != NULL) {
    *name = e->strs + best->st_name;
    *off = rel - best->st_value;
  }
  return e;
}

/* The leak report's groups: the entries of one stack (of any block size) summed. */
typedef struct {
  size_t entry;                         /* an entry of the stack (SIZE_MAX: an empty slot) */
  double bytes, count;                  /* estimates */
  uint64_t samples;
} am_leak_group_t;

static void am_out_frame(am_out_t *o, am_symbolizer_t *sy, unsigned index, uintptr_t a) {
  am_out_str(o, "amalloc:     #");
  am_out_dec(o, index, 0);
  am_out_str(o, " ");
  am_out_hex(o, a);
  if (sy != NULL) {
    const char *name;
    uintptr_t off;
    am_elf_t *e = am_symbolize(sy, a - 1, &name, &off);   /* (a return address: the call is before it) */
    if (name != NULL) {
      am_out_str(o, " ");
      am_out_str(o, name);
      am_out_str(o, "+");
      am_out_hex(o, off + 1);
    }
    if (e != NULL) {
      am_out_str(o, " (");
      am_out_str(o, e->path);
      am_out_str(o, ")");
    }
  }
  am_out_str(o, "\n");
}

/* stderr: the sampled blocks still live, by stack, largest estimate first (prof_lock held). */
static void am_prof_leak_report(void) {
  am_prof_state_t *st = &am_g.prof;
  double period = (double)am_option(AM_OPTION_PROF_SAMPLE);
  am_out_t o = {.fd = 2};
  /* group the live entries by stack (open addressing on the frames' hash) */
  size_t cap = 16;
  while (cap < 2 * st->stack_count + 2) cap *= 2;
  am_leak_group_t *g = st->stack_count > 0 ? _am_os_map(am_prof_bytes(cap * sizeof(*g))) : NULL;
  size_t groups = 0;
  double total_bytes = 0, total_count = 0;
  uint64_t samples = 0;
  for (size_t j = 0; j < cap && g != NULL; j++) g[j].entry = SIZE_MAX;
  for (size_t i = 0; i < st->stack_count && g != NULL; i++) {
    const am_prof_stack_t *s = &st->stacks[i];
    if (s->live_count == 0) continue;
    double k = am_prof_scale((double)s->live_bytes / (double)s->live_count, period);
    size_t j = s->frames_hash & (cap - 1);
    for (; g[j].entry != SIZE_MAX; j = (j + 1) & (cap - 1)) {
      const am_prof_stack_t *r = &st->stacks[g[j].entry];
      if (r->frames_hash == s->frames_hash && r->depth == s->depth &&
          memcmp(&st->frames[r->frames], &st->frames[s->frames], s->depth * sizeof(uintptr_t)) == 0)
        break;
    }
    if (g[j].entry == SIZE_MAX) {
      g[j] = (am_leak_group_t){.entry = i};
      groups++;
    }
    g[j].bytes += k * (double)s->live_bytes;
    g[j].count += k * (double)s->live_count;
    g[j].samples += s->live_count;
    total_bytes += k * (double)s->live_bytes;
    total_count += k * (double)s->live_count;
    samples += s->live_count;
  }
  am_out_str(&o, "amalloc: leak report: ");
  if (groups == 0) {
    am_out_str(&o, "no sampled block is still live at exit (1 sample per ");
    am_out_dec(&o, (uint64_t)period, 0);
    am_out_str(&o, " bytes allocated, on average)\n");
    am_out_flush(&o);
    if (g != NULL) _am_os_free(g, am_prof_bytes(cap * sizeof(*g)));
    return;
  }
  am_out_str(&o, "about ");
  am_out_dec(&o, (uint64_t)(total_bytes + 0.5), 0);
  am_out_str(&o, " bytes in ");
  am_out_dec(&o, (uint64_t)(total_count + 0.5), 0);
  am_out_str(&o, " blocks still live at exit, from ");
  am_out_dec(&o, (uint64_t)groups, 0);
  am_out_str(&o, " stacks (estimated from ");
  am_out_dec(&o, samples, 0);
  am_out_str(&o, " sampled blocks, 1 per ");
  am_out_dec(&o, (uint64_t)period, 0);
  am_out_str(&o, " bytes)\n");
  /* the 20 largest stacks, by decreasing estimate (each shown is marked: samples = 0) */
  am_symbolizer_t *sy = _am_os_map(am_prof_bytes(sizeof(*sy)));
  for (int shown = 0; shown < 20; shown++) {
    size_t pick = SIZE_MAX;
    for (size_t j = 0; j < cap; j++)
      if (g[j].entry != SIZE_MAX && g[j].samples > 0 && (pick == SIZE_MAX || g[j].bytes > g[pick].bytes)) pick = j;
    if (pick == SIZE_MAX) break;
    g[pick].samples = 0;
    const am_prof_stack_t *s = &st->stacks[g[pick].entry];
    am_out_str(&o, "amalloc: leak: about ");
    am_out_dec(&o, (uint64_t)(g[pick].bytes + 0.5), 0);
    am_out_str(&o, " bytes in ");
    am_out_dec(&o, (uint64_t)(g[pick].count + 0.5), 0);
    am_out_str(&o, " blocks (");
    am_out_dec(&o, (uint64_t)(100 * g[pick].bytes / total_bytes + 0.5), 0);
    am_out_str(&o, "%), allocated at:\n");
    for (uint32_t f = 0; f < s->depth && f < 24; f++) am_out_frame(&o, sy, f, st->frames[s->frames + f]);
  }
  am_out_flush(&o);
  if (sy != NULL) {
    for (size_t i = 0; i < sy->count; i++)
      if (sy->obj[i].map != NULL) _am_os_free((void *)sy->obj[i].map, sy->obj[i].map_size);
    _am_os_free(sy, am_prof_bytes(sizeof(*sy)));
  }
  _am_os_free(g, am_prof_bytes(cap * sizeof(*g)));
}

/* At exit (init.c's destructor): the AMALLOC_PROF_DUMP profile, then the leak report. */
AM_INTERNAL void _am_prof_exit(void) {
  if (!atomic_load_explicit(&am_g.prof_enabled, memory_order_relaxed)) return;
  if (am_g.prof_prefix[0] != 0) {
    char path[sizeof(am_g.prof_prefix) + 40];
    int err = am_prof_dump_named(NULL, path);
    char line[sizeof(path) + 64];
    size_t n = 0;
    const char *parts[] = {err == 0 ? "heap profile written to " : "the heap profile could not be written to ", path};
    for (size_t i = 0; i < 2; i++)
      for (const char *c = parts[i]; *c != 0 && n < sizeof(line) - 1; c++) line[n++] = *c;
    line[n] = 0;
    _am_message(err == 0 ? "" : "warning: ", line, NULL);
  }
  if (am_option(AM_OPTION_PROF_LEAKS)) {
    pthread_mutex_lock(&am_g.prof_lock);
    am_prof_leak_report();
    pthread_mutex_unlock(&am_g.prof_lock);
  }
}
