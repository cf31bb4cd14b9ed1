/* fuzz_api.c -- a libFuzzer harness for the am_* API.
 *
 * The input is a sequence of operations on the am_* API (malloc, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, free, free_sized
 * (malloc'ed blocks) and free_aligned_sized (aligned ones) with the requested size,
 * malloc_usable_size, malloc_trim, options (purge delay, large threshold), bulk allocations and
 * frees of up to 64 blocks, impossible requests, and hand-offs of blocks to a helper thread
 * that checks and frees them: cross-thread frees). Each operation is an opcode byte, a slot
 * byte and its arguments (sizes: 1-3 bytes, biased to small ones); a short input reads zeros. A shadow model of up to 256 live
 * blocks (pointer, requested size, usable size, alignment, fill byte) checks every result:
 *   - a sane request (<= 2 MiB) never fails; an impossible one fails with errno == ENOMEM
 *     (EINVAL for a bad alignment) and leaves the block of a failed realloc as it was;
 *   - alignment (16 from 16 bytes up, 8 below; the requested one for the aligned calls);
 *   - malloc_usable_size >= the requested size, and all usable bytes are writable: every block
 *     is filled over its whole usable size with a pattern derived from its fill byte, and the
 *     pattern is verified before realloc/free, after malloc_trim, and after realloc for the
 *     kept prefix;
 *   - calloc returns zeroed memory;
 *   - a new block's usable range overlaps no live block's usable range.
 * On a mismatch it prints what went wrong and calls abort(), which libFuzzer reports.
 * Everything is freed at the end of each input (the helper thread's queue is drained too).
 *
 * amalloc manages its own mmap'ed memory, so ASan does not see overflows inside its blocks;
 * the shadow model and UBSan are what catch amalloc's bugs here.
 *
 * Build (test/fuzz/run-fuzz.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -DAM_OVERRIDE=0 -DAM_DEBUG=2 -D_GNU_SOURCE -I include src/unity.c \
 *         test/fuzz/fuzz_api.c -o fuzz_api -pthread
 * (AM_DEBUG=2: amalloc's internal consistency asserts are on as well), and again with
 * -DAM_SECURE=1 for the secure build. run-fuzz.sh runs both also on 64 KiB pages (the
 * test/pagesize shim preloaded): the harness's page-size bounds read sysconf(_SC_PAGESIZE).
 * Define FUZZ_STANDALONE_MAIN to get a main() that runs the files named on the command line
 * (or stdin) through the harness without libFuzzer (for reproducing with gcc, valgrind...).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amalloc.h"

#define MAX_SLOTS 256
#define SANE_MAX ((size_t)2 << 20) /* 2 MiB: every request up to this must succeed */
#define PAT_PERIOD 4096            /* the fill pattern repeats every 4 KiB */

/* ---- failure reporting ----------------------------------------------------------------- */

static unsigned long op_index; /* operation number within the current input */
static const char *op_name = "";

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_api: FAILURE at operation %lu (%s): ", op_index, op_name);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

/* ---- the input --------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *p;
  size_t n;
} input_t;

static uint8_t in_byte(input_t *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}
static uint16_t in_u16(input_t *in) { return (uint16_t)(in_byte(in) | in_byte(in) << 8); }

/* A size in 0..2 MiB with a bias to small sizes:
 *   1/2: 0..511   1/4: 0..8191   1/8: 0..~320 KiB (medium classes and the large threshold)
 *   1/8: 0..2 MiB */
static size_t in_size(input_t *in) {
  uint8_t b = in_byte(in);
  unsigned sel = b >> 5;
  if (sel < 4) return (size_t)in_byte(in) | ((size_t)(b & 1) << 8);
  if (sel < 6) return ((size_t)(b & 31) << 8 | in_byte(in)) & 8191;
  if (sel < 7) return (size_t)in_u16(in) * 5 + (b & 31);
  return ((size_t)in_u16(in) << 5 | (b & 31)) % (SANE_MAX + 1);
}

/* A power of two from 1 (min_shift 0) to 1 MiB. */
static size_t in_align(input_t *in, unsigned min_shift) {
  unsigned s = in_byte(in) % 21;
  if (s < min_shift) s = min_shift;
  return (size_t)1 << s;
}

/* ---- patterns ---------------------------------------------------------------------------- */

/* pattern[f][i]: byte i (mod 4 KiB) of a block with fill byte f. Two different fill bytes
 * differ at every position (31 is odd), and a shift by less than 4 KiB shows. */
static uint8_t pattern[256][PAT_PERIOD];
static uint8_t zeros[PAT_PERIOD];

static void patterns_init(void) {
  for (unsigned f = 0; f < 256; f++)
    for (unsigned i = 0; i < PAT_PERIOD; i++)
      pattern[f][i] = (uint8_t)(f * 31u + i * 151u + (i >> 8) * 7u);
}

static void pat_fill(void *p, size_t n, uint8_t f) {
  uint8_t *b = p;
  for (size_t off = 0; off < n; off += PAT_PERIOD)
    memcpy(b + off, pattern[f], n - off < PAT_PERIOD ? n - off : PAT_PERIOD);
}

/* Returns the offset of the first byte that differs from the pattern, or n. */
static size_t pat_first_bad(const void *p, size_t n, const uint8_t *ref, bool periodic) {
  const uint8_t *b = p;
  for (size_t off = 0; off < n; off += PAT_PERIOD) {
    size_t len = n - off < PAT_PERIOD ? n - off : PAT_PERIOD;
    if (memcmp(b + off, periodic ? ref : ref + off, len) != 0) {
      for (size_t i = 0; i < len; i++)
        if (b[off + i] != ref[i]) return off + i;
    }
  }
  return n;
}

static void pat_verify(const void *p, size_t n, uint8_t f, const char *what) {
  size_t bad = pat_first_bad(p, n, pattern[f], true);
  if (bad != n)
    fail("%s: block %p (%zu bytes checked, fill %u): byte %zu is 0x%02x, expected 0x%02x", what, p,
         n, f, bad, ((const uint8_t *)p)[bad], pattern[f][bad % PAT_PERIOD]);
}

static void zero_verify(const void *p, size_t n, const char *what) {
  size_t bad = pat_first_bad(p, n, zeros, true);
  if (bad != n)
    fail("%s: block %p of %zu bytes: byte %zu is 0x%02x, not zero", what, p, n, bad,
         ((const uint8_t *)p)[bad]);
}

/* ---- the shadow model ------------------------------------------------------------------- */

typedef struct {
  uint8_t *p;      /* NULL: free slot */
  size_t size;     /* requested */
  size_t usable;   /* am_malloc_usable_size at allocation */
  size_t align;    /* requested alignment (0: plain malloc & co.) */
  uint8_t fill;
} slot_t;

static slot_t slots[MAX_SLOTS];
static uint8_t next_fill;

static uint8_t new_fill(void) { return next_fill++; }

static void slot_verify(const slot_t *s, const char *what) {
  pat_verify(s->p, s->usable, s->fill, what);
}

/* Checks a block just returned for `size` bytes with alignment `align` (0: the default) and
 * records it in slot s (which must be free). Fills it unless `zeroed` must be checked first. */
static void slot_take(slot_t *s, void *p, size_t size, size_t align, bool zeroed) {
  if (p == NULL) fail("NULL for a sane request of %zu bytes (alignment %zu, errno %d)", size, align, errno);
  uintptr_t a = (uintptr_t)p;
  size_t min_align = size >= 16 ? 16 : 8;
  if (a & (min_align - 1)) fail("%p for %zu bytes is not %zu-aligned", p, size, min_align);
  if (align && (a & (align - 1))) fail("%p for %zu bytes is not %zu-aligned as asked", p, size, align);
  size_t usable = am_malloc_usable_size(p);
  if (usable < size) fail("usable size %zu of %p is below the %zu bytes asked", usable, p, size);
  /* not absurdly large either: a block kept by an in-place realloc may be twice the size; a
   * large block is page-rounded (and an aligned one may sit on a class of its alignment) */
  size_t page = (size_t)sysconf(_SC_PAGESIZE);   /* (64 KiB under run-fuzz.sh's page shim) */
  if (usable > 2 * size + 2 * page && usable > ((size + page - 1) & ~(page - 1)) + align + page)
    fail("usable size %zu of %p is far above the %zu bytes asked", usable, p, size);
  size_t range = usable ? usable : 1; /* malloc(0) is a unique pointer: give it one byte */
  for (int i = 0; i < MAX_SLOTS; i++) {
    const slot_t *o = &slots[i];
    if (o->p == NULL || o == s) continue;
    size_t orange = o->usable ? o->usable : 1;
    if (a < (uintptr_t)o->p + orange && (uintptr_t)o->p < a + range)
      fail("new block %p (%zu usable) overlaps live block %p (%zu usable, slot %d)", p, usable,
           (void *)o->p, o->usable, i);
  }
  if (zeroed) zero_verify(p, size, "calloc");
  s->p = p;
  s->size = size;
  s->usable = usable;
  s->align = align;
  s->fill = new_fill();
  pat_fill(p, usable, s->fill);
}

/* ---- the helper thread: frees blocks handed to it (cross-thread frees) -------------------- */

#define QUEUE_LEN 32
typedef struct {
  void *p;
  size_t usable;
  uint8_t fill;
} handoff_t;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;  /* items queued */
static pthread_cond_t q_idle = PTHREAD_COND_INITIALIZER;  /* queue drained */
static handoff_t q_items[QUEUE_LEN];
static unsigned q_head, q_count;
static bool q_busy;             /* the helper is freeing an item it took */
static pthread_once_t helper_once = PTHREAD_ONCE_INIT;

static void *helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&q_lock);
  for (;;) {
    while (q_count == 0) pthread_cond_wait(&q_cond, &q_lock);
    handoff_t h = q_items[q_head];
    q_head = (q_head + 1) % QUEUE_LEN;
    q_count--;
    q_busy = true;
    pthread_mutex_unlock(&q_lock);
    size_t bad = pat_first_bad(h.p, h.usable, pattern[h.fill], true);
    if (bad != h.usable)
      fail("helper thread: block %p (%zu usable, fill %u) corrupted at byte %zu before its free",
           h.p, h.usable, h.fill, bad);
    am_free(h.p);
    pthread_mutex_lock(&q_lock);
    q_busy = false;
    if (q_count == 0) pthread_cond_broadcast(&q_idle);
  }
  return NULL;
}

static void helper_start(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, helper_main, NULL) != 0) {
    fprintf(stderr, "fuzz_api: cannot create the helper thread\n");
    abort();
  }
  pthread_detach(t);
}

/* Hands the block to the helper; false when its queue is full. */
static bool helper_give(void *p, size_t usable, uint8_t fill) {
  pthread_once(&helper_once, helper_start);
  pthread_mutex_lock(&q_lock);
  bool ok = q_count < QUEUE_LEN;
  if (ok) {
    q_items[(q_head + q_count) % QUEUE_LEN] = (handoff_t){p, usable, fill};
    q_count++;
    pthread_cond_signal(&q_cond);
  }
  pthread_mutex_unlock(&q_lock);
  return ok;
}

static void helper_drain(void) {
  pthread_mutex_lock(&q_lock);
  while (q_count != 0 || q_busy) pthread_cond_wait(&q_idle, &q_lock);
  pthread_mutex_unlock(&q_lock);
}

/* ---- operations -------------------------------------------------------------------------- */

/* Verifies and frees the block of slot s, with one of the free functions chosen by how. */
static void slot_free(slot_t *s, unsigned how) {
  slot_verify(s, "before free");
  switch (how % 4) {
  case 0:
    am_free(s->p);
    break;
  case 1:
  case 2: /* C23: free_sized for malloc/calloc/realloc blocks, free_aligned_sized for aligned ones */
    if (s->align) am_free_aligned_sized(s->p, s->align, s->size);
    else am_free_sized(s->p, s->size);
    break;
  case 3: /* realloc to 0 frees and returns NULL */
    errno = 0;
    if (am_realloc(s->p, 0) != NULL) fail("realloc(%p, 0) did not return NULL", (void *)s->p);
    break;
  }
  s->p = NULL;
}

static void slot_clear(slot_t *s) {
  if (s->p) slot_free(s, 0);
}

/* realloc / reallocarray of slot s to `size` bytes (given as count * elem). */
static void op_realloc(slot_t *s, size_t count, size_t elem, bool array) {
  size_t size = count * elem;
  if (s->p == NULL) { /* realloc(NULL, n) is malloc(n) */
    void *p = array ? am_reallocarray(NULL, count, elem) : am_realloc(NULL, size);
    slot_take(s, p, size, 0, false);
    return;
  }
  slot_verify(s, "before realloc");
  if (size == 0 && !array) {
    if (am_realloc(s->p, 0) != NULL) fail("realloc(%p, 0) did not return NULL", (void *)s->p);
    s->p = NULL;
    return;
  }
  uint8_t *old = s->p;
  size_t keep = s->size < size ? s->size : size;
  uint8_t fill = s->fill;
  void *q = array ? am_reallocarray(old, count, elem) : am_realloc(old, size);
  if (q == NULL) {
    if (size == 0) { /* reallocarray(p, 0, n) is realloc(p, 0): freed */
      s->p = NULL;
      return;
    }
    fail("realloc(%p, %zu) failed (errno %d)", (void *)old, size, errno);
  }
  s->p = NULL; /* the old block is gone: no overlap check against it */
  pat_verify(q, keep, fill, "after realloc (kept prefix)");
  slot_take(s, q, size, 0, false);
}

/* Hides a size from the compiler (no warnings about the deliberately impossible ones). */
static size_t opaque(size_t x) {
  __asm__ volatile("" : "+r"(x));
  return x;
}

/* Requests that must fail: sizes above PTRDIFF_MAX, overflowing products, bad alignments. */
static void op_impossible(input_t *in) {
  uint8_t v = in_byte(in);
  size_t huge = (size_t)PTRDIFF_MAX + 1 + ((size_t)in_u16(in) << 12);
  if (in_byte(in) & 1) huge = SIZE_MAX - in_u16(in);
  huge = opaque(huge);
  slot_t *s = &slots[in_byte(in)];
  void *p = (void *)1;
  int expect = ENOMEM;
  errno = 0;
  switch (v % 10) {
  case 0:
    op_name = "malloc(huge)";
    p = am_malloc(huge);
    break;
  case 1: {
    op_name = "calloc(overflow)";
    size_t n = (size_t)1 << (33 + v % 20);
    p = am_calloc(n, huge / n + 2 + v); /* the product overflows or is > PTRDIFF_MAX */
    break;
  }
  case 2:
  case 3: {
    op_name = "realloc(p, huge)";
    if (s->p == NULL) return;
    slot_verify(s, "before a failing realloc");
    p = (v & 1) ? am_realloc(s->p, huge) : am_reallocarray(s->p, opaque(huge / 2 + 1), 2 + v % 7);
    if (p == NULL) slot_verify(s, "after a failed realloc (the block must stay as it was)");
    break;
  }
  case 4: {
    op_name = "posix_memalign(huge)";
    void *out = (void *)0x5a5a;
    int saved = errno = 12345;
    int r = am_posix_memalign(&out, in_align(in, 3), huge);
    if (r != ENOMEM) fail("posix_memalign(huge) returned %d, not ENOMEM", r);
    if (out != (void *)0x5a5a) fail("posix_memalign(huge) changed *memptr to %p", out);
    if (errno != saved) fail("posix_memalign(huge) changed errno to %d", errno);
    return;
  }
  case 5:
    op_name = "aligned_alloc(huge)";
    p = am_aligned_alloc(in_align(in, 0), huge);
    break;
  case 6:
    op_name = "memalign/valloc/pvalloc(huge)";
    p = (v & 16) ? am_memalign(in_align(in, 0), huge) : (v & 32) ? am_valloc(huge) : am_pvalloc(huge);
    break;
  case 7: {
    op_name = "posix_memalign(bad alignment)";
    void *out = (void *)0x5a5a;
    size_t align = (v & 16) ? 2 + 2 * (size_t)in_byte(in) * 3 : (size_t)(in_byte(in) % 8); /* 0..7 or not a power of 2 */
    if ((align & (align - 1)) == 0 && align >= sizeof(void *)) align = 24;
    int saved = errno = 4321;
    int r = am_posix_memalign(&out, align, 64);
    if (r != EINVAL) fail("posix_memalign(align %zu) returned %d, not EINVAL", align, r);
    if (out != (void *)0x5a5a) fail("posix_memalign(align %zu) changed *memptr", align);
    if (errno != saved) fail("posix_memalign(align %zu) changed errno to %d", align, errno);
    return;
  }
  case 8: {
    op_name = "aligned_alloc(bad alignment)";
    size_t align = 3 + 2 * (size_t)in_byte(in); /* odd, > 1: never a power of two */
    p = am_aligned_alloc(align, 8 + in_byte(in));
    expect = EINVAL;
    break;
  }
  case 9:
    op_name = "reallocarray(NULL, overflow)";
    p = am_reallocarray(NULL, opaque((size_t)1 << 40), opaque((size_t)1 << 30));
    break;
  }
  if (p != NULL) fail("an impossible request returned %p", p);
  if (errno != expect) fail("errno %d after the failure, expected %d", errno, expect);
}

enum {
  OP_MALLOC, OP_MALLOC2, OP_CALLOC, OP_REALLOC, OP_REALLOC2, OP_REALLOCARRAY, OP_POSIX_MEMALIGN,
  OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_VALLOC, OP_FREE, OP_FREE2, OP_USABLE, OP_TRIM, OP_HANDOFF,
  OP_IMPOSSIBLE, OP_OPTION, OP_BULK_ALLOC, OP_BULK_FREE, OP_COUNT
};

/* Bulk operations reach the slow paths (full slabs, empty slabs given back, segments mapped
 * and unmapped) with short inputs: up to 64 blocks of one size into consecutive slots, or the
 * blocks of up to 64 consecutive slots freed, forwards, backwards or every other one first. */
static void op_bulk_alloc(input_t *in, int first) {
  unsigned count = 1 + in_byte(in) % 64;
  size_t n = in_size(in);
  for (unsigned i = 0; i < count; i++) {
    slot_t *s = &slots[(first + (int)i) % MAX_SLOTS];
    slot_clear(s);
    slot_take(s, am_malloc(n), n, 0, false);
  }
}

static void op_bulk_free(input_t *in, int first) {
  uint8_t b = in_byte(in);
  unsigned count = 1 + b % 64, order = b >> 6;
  for (unsigned pass = 0; pass < (order >= 2 ? 2u : 1u); pass++)
    for (unsigned i = 0; i < count; i++) {
      unsigned k = order == 1 ? count - 1 - i : i;
      if (order >= 2 && (k & 1) != pass) continue;
      slot_t *s = &slots[(first + (int)k) % MAX_SLOTS];
      if (s->p) slot_free(s, order == 3 ? 1 : 0);
    }
}

static void run_op(input_t *in) {
  uint8_t code = in_byte(in);
  slot_t *s = &slots[in_byte(in)];
  int slot_index = (int)(s - slots);
  switch (code % OP_COUNT) {
  case OP_MALLOC:
  case OP_MALLOC2: {
    op_name = "malloc";
    slot_clear(s);
    size_t n = in_size(in);
    slot_take(s, am_malloc(n), n, 0, false);
    break;
  }
  case OP_CALLOC: {
    op_name = "calloc";
    slot_clear(s);
    size_t n = in_size(in);
    size_t count = 1 + in_byte(in) % 16, elem = n / count;
    slot_take(s, am_calloc(count, elem), count * elem, 0, true);
    break;
  }
  case OP_REALLOC:
  case OP_REALLOC2: {
    op_name = "realloc";
    uint8_t how = in_byte(in);
    size_t n;
    if (how < 64 && s->p) n = s->size + (how & 15) * 8;          /* grow a little */
    else if (how < 96 && s->p) n = s->size / (2 + (how & 7));   /* shrink */
    else if (how < 100) n = 0;                                   /* to 0: frees */
    else n = in_size(in);
    op_realloc(s, n, 1, false);
    break;
  }
  case OP_REALLOCARRAY: {
    op_name = "reallocarray";
    size_t n = in_size(in);
    size_t elem = 1 + in_byte(in) % 24;
    op_realloc(s, n / elem, elem, true);
    break;
  }
  case OP_POSIX_MEMALIGN: {
    op_name = "posix_memalign";
    slot_clear(s);
    size_t align = in_align(in, 3), n = in_size(in);
    void *out = NULL;
    int r = am_posix_memalign(&out, align, n);
    if (r != 0) fail("posix_memalign(align %zu, %zu) returned %d", align, n, r);
    slot_take(s, out, n, align, false);
    break;
  }
  case OP_ALIGNED_ALLOC: {
    op_name = "aligned_alloc";
    slot_clear(s);
    size_t align = in_align(in, 0), n = in_size(in);
    slot_take(s, am_aligned_alloc(align, n), n, align, false);
    break;
  }
  case OP_MEMALIGN: {
    op_name = "memalign";
    slot_clear(s);
    size_t align = in_align(in, 0), n = in_size(in);
    slot_take(s, am_memalign(align, n), n, align, false);
    break;
  }
  case OP_VALLOC: {
    slot_clear(s);
    size_t n = in_size(in), page = (size_t)sysconf(_SC_PAGESIZE);
    if (in_byte(in) & 1) {
      op_name = "valloc";
      slot_take(s, am_valloc(n), n, page, false);
    } else {
      op_name = "pvalloc";
      void *p = am_pvalloc(n);
      slot_take(s, p, n, page, false);
      size_t rounded = n ? (n + page - 1) & ~(page - 1) : page;
      if (s->usable < rounded) fail("pvalloc(%zu): usable size %zu below %zu", n, s->usable, rounded);
    }
    break;
  }
  case OP_FREE:
  case OP_FREE2:
    op_name = "free";
    if (s->p) slot_free(s, in_byte(in));
    else am_free(NULL);
    break;
  case OP_USABLE: {
    op_name = "malloc_usable_size";
    if (s->p == NULL) {
      if (am_malloc_usable_size(NULL) != 0) fail("malloc_usable_size(NULL) is not 0");
      break;
    }
    size_t u = am_malloc_usable_size(s->p);
    if (u != s->usable) fail("usable size of %p changed from %zu to %zu", (void *)s->p, s->usable, u);
    slot_verify(s, "usable-size check");
    break;
  }
  case OP_TRIM: {
    op_name = "malloc_trim";
    am_malloc_trim(in_byte(in));
    for (int i = 0; i < MAX_SLOTS; i++)
      if (slots[i].p) slot_verify(&slots[i], "after malloc_trim");
    break;
  }
  case OP_HANDOFF:
    op_name = "hand-off to the helper thread";
    if (s->p == NULL) break;
    slot_verify(s, "before the hand-off");
    if (helper_give(s->p, s->usable, s->fill)) s->p = NULL;
    break;
  case OP_IMPOSSIBLE:
    op_impossible(in);
    break;
  case OP_OPTION: {
    op_name = "option";
    uint8_t v = in_byte(in);
    static const long delays[] = {0, 1, 100, -1};
    static const long thresholds[] = {1024, 8192, 65536, 262144};
    if (v & 1) am_option_set(AM_OPTION_PURGE_DELAY_MS, delays[(v >> 1) & 3]);
    else am_option_set(AM_OPTION_LARGE_THRESHOLD, thresholds[(v >> 1) & 3]);
    break;
  }
  case OP_BULK_ALLOC:
    op_name = "bulk malloc";
    op_bulk_alloc(in, slot_index);
    break;
  case OP_BULK_FREE:
    op_name = "bulk free";
    op_bulk_free(in, slot_index);
    break;
  }
}

/* ---- libFuzzer entry points ------------------------------------------------------------- */

static long default_delay, default_threshold;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  patterns_init();
  default_delay = am_option_get(AM_OPTION_PURGE_DELAY_MS);
  default_threshold = am_option_get(AM_OPTION_LARGE_THRESHOLD);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in = {data, size};
  next_fill = data && size ? data[0] : 0;
  op_index = 0;
  while (in.n > 0) {
    run_op(&in);
    op_index++;
  }
  op_name = "cleanup";
  for (int i = 0; i < MAX_SLOTS; i++) slot_clear(&slots[i]);
  helper_drain();
  am_option_set(AM_OPTION_PURGE_DELAY_MS, default_delay);
  am_option_set(AM_OPTION_LARGE_THRESHOLD, default_threshold);
  return 0;
}

#ifdef FUZZ_STANDALONE_MAIN
/* Runs each file named on the command line (or stdin) as one input. */
static void run_file(FILE *f, const char *name) {
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fprintf(stderr, "fuzz_api: running %s (%zu bytes)\n", name, n);
  LLVMFuzzerTestOneInput(buf, n);
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) run_file(stdin, "<stdin>");
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      perror(argv[i]);
      return 2;
    }
    run_file(f, argv[i]);
    fclose(f);
  }
  fprintf(stderr, "fuzz_api: ok\n");
  return 0;
}
#endif
