/* faults.c -- out of memory: amalloc under injected mmap/mremap failures and under RLIMIT_AS.
 *
 * Built twice (test/faults/meson.build):
 *   faults-am   with -DFAULTS_AM: the am_* API from libamalloc-api.a, beside glibc's malloc;
 *   faults-std  the standard names (malloc, realloc, calloc, posix_memalign, ...) linked with
 *               libamalloc.so, so that those names are what is tested.
 *
 *   faults MODE     MODE: calls | nth | threads | rlimit | all
 *
 * calls    for each API (malloc small/medium/large, calloc, realloc small->small/medium/large
 *          and large->larger, reallocarray, posix_memalign, aligned_alloc, memalign, valloc,
 *          pvalloc): failures on (am_test_os_failures(0, -1)); the call with a size that needs
 *          fresh memory (small and medium sizes: allocate until NULL, which exhausts the
 *          slabs in place) must give NULL and errno == ENOMEM (posix_memalign: ENOMEM returned,
 *          *memptr and errno untouched; realloc: the old block intact, still freeable); failures
 *          off: the same call succeeds, and a few thousand blocks are allocated and freed with
 *          their contents checked. First of all, the process's very first allocation under
 *          failure (its thread heap cannot be created: NULL + ENOMEM).
 * nth      for N in 0..40 only mapping call N+1 fails (am_test_os_failures(N, 1)) during a
 *          workload of mixed sizes and calls: every result is a valid block or NULL + ENOMEM,
 *          a failed realloc leaves its block intact, every live block keeps its contents.
 * threads  4 threads run that workload (handing blocks to each other) while the main thread
 *          turns failures on for short windows; then a new thread's first allocations under
 *          failure.
 * rlimit   in a forked child: RLIMIT_AS = VmSize + 64 MiB; small blocks, then large blocks,
 *          until NULL (ENOMEM); free half; allocating again succeeds.
 */
#include "test.h"

#include <amalloc.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#ifdef FAULTS_AM
#define A(name) am_##name
#define BUILD_NAME "faults-am"
#else
#define A(name) name
#define BUILD_NAME "faults-std"
#endif

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static size_t page_size;

/* ---- bookkeeping outside the allocator under test (mmap) -------------------------------- */

typedef struct {
  void **v;
  size_t n, cap;
} vec_t;

static void vec_init(vec_t *v, size_t cap) {
  v->v = mmap(NULL, cap * sizeof(void *), PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (v->v == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  v->n = 0;
  v->cap = cap;
}
static void vec_done(vec_t *v) { munmap(v->v, v->cap * sizeof(void *)); }

/* A block's tag: its index in its first word (blocks of 8 bytes or more). */
static void tag_set(void *p, size_t i) { memcpy(p, &i, sizeof i); }
static bool tag_ok(const void *p, size_t i) {
  size_t t;
  memcpy(&t, p, sizeof t);
  return t == i;
}

/* Frees the blocks of v (checking their tags). */
static void vec_free_all(vec_t *v, const char *what) {
  size_t bad = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (!tag_ok(v->v[i], i)) bad++;
    A(free)(v->v[i]);
  }
  if (!CHECK_EQ(bad, 0)) fprintf(stderr, "    %s: %zu of %zu blocks lost their tag\n", what, bad, v->n);
  v->n = 0;
}

/* ---- contents: a word pattern, complete up to 64 KiB, one word every 512 bytes above -------- */

#define FULL_FILL (64 * KIB)

static void fill(void *p, size_t n, uint64_t seed) {
  if (n <= FULL_FILL) {
    wpat_fill(p, n, seed);
    return;
  }
  uint8_t *b = p;
  for (size_t off = 0; off + 16 <= n; off += 512) { /* (clear of the last word) */
    uint64_t w = wpat_word(seed, off / 8);
    memcpy(b + off, &w, 8);
  }
  uint64_t last = wpat_word(seed, ~(uint64_t)0);
  memcpy(b + n - 8, &last, 8);
}

/* The first `keep` bytes of a block filled with fill(p, filled, seed) are intact. */
static bool filled_ok(const void *p, size_t keep, size_t filled, uint64_t seed) {
  if (filled <= FULL_FILL) return wpat_check(p, keep, seed);
  const uint8_t *b = p;
  for (size_t off = 0; off + 8 <= keep && off + 16 <= filled; off += 512) {
    uint64_t w = wpat_word(seed, off / 8);
    if (memcmp(b + off, &w, 8) != 0) return false;
  }
  if (keep == filled) {
    uint64_t last = wpat_word(seed, ~(uint64_t)0);
    if (memcmp(b + filled - 8, &last, 8) != 0) return false;
  }
  return true;
}

/* ---- the calls -------------------------------------------------------------------------- */

typedef enum {
  K_MALLOC, K_CALLOC, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC, K_MEMALIGN, K_VALLOC, K_PVALLOC, K_COUNT
} kind_t;
static const char *const kind_names[K_COUNT] = {"malloc", "calloc", "posix_memalign",
                                                "aligned_alloc", "memalign", "valloc", "pvalloc"};

/* Calls `k` for `size` bytes (alignment `align` where the call takes one). Returns the block, or
 * NULL with *err = the error reported (errno; posix_memalign's return value, after checking
 * that it left *memptr and errno alone). */
static void *call(kind_t k, size_t align, size_t size, int *err) {
  void *p = NULL;
  errno = 0;
  switch (k) {
  case K_MALLOC:
    p = A(malloc)(opaque_size(size));
    break;
  case K_CALLOC:
    p = A(calloc)(2, opaque_size(size / 2));
    break;
  case K_POSIX_MEMALIGN: {
    static char sentinel;
    void *out = &sentinel;
    errno = 7777;
    int r = A(posix_memalign)(&out, align, opaque_size(size));
    if (r != 0) {
      CHECK(out == &sentinel);      /* *memptr untouched */
      CHECK_ERRNO(7777);            /* errno untouched */
      *err = r;
      return NULL;
    }
    errno = 0;
    p = out;
    break;
  }
  case K_ALIGNED_ALLOC:
    p = A(aligned_alloc)(align, opaque_size(size));
    break;
  case K_MEMALIGN:
    p = A(memalign)(align, opaque_size(size));
    break;
  case K_VALLOC:
    p = A(valloc)(opaque_size(size));
    break;
  case K_PVALLOC:
    p = A(pvalloc)(opaque_size(size));
    break;
  default:
    abort();
  }
  *err = p ? 0 : errno;
  return p;
}

/* The size `k` actually asked for. */
static size_t call_size(kind_t k, size_t size) {
  if (k == K_CALLOC) return size / 2 * 2;
  if (k == K_PVALLOC) return size ? (size + page_size - 1) & ~(page_size - 1) : page_size;
  return size;
}
static size_t call_align(kind_t k, size_t align, size_t size) {
  switch (k) {
  case K_POSIX_MEMALIGN:
  case K_ALIGNED_ALLOC:
  case K_MEMALIGN:
    return align > 16 ? align : (size >= 16 ? 16 : 8);
  case K_VALLOC:
  case K_PVALLOC:
    return page_size;
  default:
    return size >= 16 ? 16 : 8;
  }
}

/* A block just returned by a successful call: alignment, usable size, calloc zeroing. */
static bool block_ok(kind_t k, void *p, size_t align, size_t size) {
  size_t n = call_size(k, size);
  bool ok = CHECK(p != NULL);
  if (!ok) return false;
  ok &= CHECK_ALIGNED(p, call_align(k, align, size));
  ok &= CHECK_GE(A(malloc_usable_size)(p), n);
  if (k == K_CALLOC) ok &= CHECK(all_bytes(p, n, 0));
  return ok;
}

/* ---- a workload with failures off: everything must succeed -------------------------------- */

/* mixed sizes: mostly small, some medium, a few large */
static size_t mixed_size(rng_t *r, bool large) {
  unsigned c = (unsigned)rng_below(r, 100);
  if (c < 50) return rng_below(r, 1025);
  if (c < 75) return rng_below(r, 64 * KIB);
  if (c < 88 || !large) return 64 * KIB + rng_below(r, 240 * KIB);
  return 256 * KIB + rng_below(r, 2 * MIB);
}

/* `ops` allocations and frees over 256 slots, contents checked; everything freed at the end. */
static void workload_ok(uint64_t seed, size_t ops) {
  enum { SLOTS = 256 };
  static struct { void *p; size_t n; } s[SLOTS];
  rng_t r;
  rng_seed(&r, seed);
  size_t fails = 0, bad = 0;
  for (size_t i = 0; i < ops; i++) {
    size_t j = rng_below(&r, SLOTS);
    if (s[j].p) {
      if (!filled_ok(s[j].p, s[j].n, s[j].n, seed + j)) bad++;
      A(free)(s[j].p);
      s[j].p = NULL;
      continue;
    }
    size_t n = mixed_size(&r, (i & 15) == 0);
    void *p = A(malloc)(n);
    if (!p) {
      fails++;
      continue;
    }
    fill(p, n, seed + j);
    s[j].p = p;
    s[j].n = n;
  }
  for (size_t j = 0; j < SLOTS; j++)
    if (s[j].p) {
      if (!filled_ok(s[j].p, s[j].n, s[j].n, seed + j)) bad++;
      A(free)(s[j].p);
      s[j].p = NULL;
    }
  bool ok = CHECK_EQ(fails, 0);
  ok = CHECK_EQ(bad, 0) && ok;
  if (!ok)
    fprintf(stderr, "    workload after recovery (seed %ju): %zu NULLs, %zu corrupted blocks\n",
            (uintmax_t)seed, fails, bad);
}

/* ---- calls: fail, then recover ------------------------------------------------------------- */

static uint64_t case_seed = 1000;

/* With failures on, call k (allocating until NULL when `exhaust`): NULL + ENOMEM, twice; with
 * failures off: the call succeeds and the allocator keeps working. */
static void fail_then_recover(kind_t k, size_t align, size_t size, bool exhaust) {
  uint64_t seed = case_seed++;
  vec_t got;
  vec_init(&got, (size_t)8 << 20);
  int err = 0, err2 = 0;
  void *p;
  am_test_os_failures(0, -1);
  for (;;) {
    p = call(k, align, size, &err);
    if (p == NULL || !exhaust) break;
    if (size >= 8) tag_set(p, got.n);
    else *(volatile char *)p = 1;
    got.v[got.n++] = p;
    if (got.n == got.cap) break;
  }
  void *p2 = call(k, align, size, &err2); /* still failing */
  long failed = am_test_os_failures(0, 0);
  bool ok = true;
  ok &= CHECK(p == NULL);
  ok &= CHECK_EQ(err, ENOMEM);
  ok &= CHECK(p2 == NULL);
  ok &= CHECK_EQ(err2, ENOMEM);
  ok &= CHECK(failed >= 2);
  if (!ok)
    fprintf(stderr, "    ^ %s(size %zu, alignment %zu)%s: %zu blocks before the failure, "
            "%ld mapping calls failed\n", kind_names[k], size, align,
            exhaust ? " after exhausting the slabs" : "", got.n, failed);
  if (p) A(free)(p);
  if (p2) A(free)(p2);

  /* failures off: the same call works */
  p = call(k, align, size, &err);
  if (block_ok(k, p, align, size)) {
    size_t n = call_size(k, size);
    fill(p, n, seed);
    CHECK(filled_ok(p, n, n, seed));
    A(free)(p);
  } else {
    fprintf(stderr, "    ^ %s(size %zu, alignment %zu) after the failures were turned off: "
            "errno %d\n", kind_names[k], size, align, err);
  }
  size_t exhausted = got.n;
  if (size >= 8) vec_free_all(&got, kind_names[k]);
  else {
    for (size_t i = 0; i < got.n; i++) A(free)(got.v[i]);
    got.n = 0;
  }
  vec_done(&got);
  workload_ok(seed, 4000);
  printf("%s: %s(size %zu, alignment %zu)%s: ENOMEM after %zu blocks, %ld mapping calls failed; "
         "recovered\n", BUILD_NAME, kind_names[k], size, align, exhaust ? " [exhausting]" : "",
         exhausted, failed);
}

/* Allocates blocks of `size` with malloc until NULL (failures must be on); returns them in v. */
static void exhaust_class(vec_t *v, size_t size) {
  for (;;) {
    void *p = A(malloc)(size);
    if (p == NULL) break;
    tag_set(p, v->n);
    v->v[v->n++] = p;
    if (v->n == v->cap) break;
  }
}

/* realloc (or reallocarray when `array`) of blocks of `from` bytes (memalign'ed to `align` when
 * nonzero) to `to` bytes under failure: NULL + ENOMEM, the blocks intact; one is freed as it
 * is, the other reallocated once failures are off. `exhaust` first uses up the slabs of the
 * class of `to`. */
static void realloc_case(size_t from, size_t align, size_t to, bool exhaust, bool array) {
  uint64_t seed = case_seed++;
  const char *fn = array ? "reallocarray" : "realloc";
  void *b[2];
  /* no cached large mapping (which may be larger than a block needs, and then lets realloc
   * grow without the OS) */
  A(malloc_trim)(0);
  for (int i = 0; i < 2; i++) {
    b[i] = align ? A(memalign)(align, from) : A(malloc)(from);
    if (!CHECK(b[i] != NULL)) return;
    fill(b[i], from, seed + (uint64_t)i);
  }
  size_t usable0 = A(malloc_usable_size)(b[0]);
  vec_t got;
  vec_init(&got, (size_t)8 << 20);
  am_test_os_failures(0, -1);
  if (exhaust) exhaust_class(&got, to);
  void *q[2];
  int err[2];
  for (int i = 0; i < 2; i++) {
    errno = 0;
    q[i] = array ? A(reallocarray)(b[i], to / 16, 16) : A(realloc)(b[i], opaque_size(to));
    err[i] = errno;
  }
  long failed = am_test_os_failures(0, 0);
  bool ok = true;
  for (int i = 0; i < 2; i++) {
    ok &= CHECK(q[i] == NULL);
    ok &= CHECK_EQ(err[i], ENOMEM);
    if (q[i] != NULL) { /* it worked after all: carry on with the new block */
      CHECK(filled_ok(q[i], from < to ? from : to, from, seed + (uint64_t)i));
      b[i] = q[i];
      fill(b[i], to, seed + (uint64_t)i);
      from = to;
    }
  }
  ok &= CHECK(failed >= 1);
  ok &= CHECK(filled_ok(b[0], from, from, seed));
  ok &= CHECK(filled_ok(b[1], from, from, seed + 1));
  ok &= CHECK_EQ(A(malloc_usable_size)(b[0]), usable0);
  if (!ok)
    fprintf(stderr, "    ^ %s(%zu-byte block%s, %zu)%s: %ld mapping calls failed\n", fn, from,
            align ? " (memalign'ed)" : "", to, exhaust ? " after exhausting the slabs" : "", failed);
  /* b[1] can be freed as it is */
  A(free)(b[1]);
  /* b[0] can be reallocated now */
  errno = 0;
  void *r = array ? A(reallocarray)(b[0], to / 16, 16) : A(realloc)(b[0], opaque_size(to));
  size_t n = array ? to / 16 * 16 : to;
  if (CHECK(r != NULL)) {
    CHECK(filled_ok(r, from < n ? from : n, from, seed));
    CHECK_GE(A(malloc_usable_size)(r), n);
    fill(r, n, seed + 7);
    CHECK(filled_ok(r, n, n, seed + 7));
    A(free)(r);
  } else {
    fprintf(stderr, "    ^ %s to %zu after the failures were turned off: errno %d\n", fn, to, errno);
    A(free)(b[0]);
  }
  size_t exhausted = got.n;
  vec_free_all(&got, fn);
  vec_done(&got);
  workload_ok(seed, 4000);
  printf("%s: %s(%zu%s -> %zu)%s: ENOMEM, blocks intact, %ld mapping calls failed; "
         "recovered\n", BUILD_NAME, fn, from, align ? " memalign'ed" : "", to,
         exhaust ? " [exhausting]" : "", failed);
  if (exhaust) printf("%s:   (%zu blocks of %zu bytes before ENOMEM)\n", BUILD_NAME, exhausted, to);
}

/* Shrinking a large block needs no new memory: it works under failure. Shrinking it to a
 * small size may need a slab: a valid block, or NULL + ENOMEM with the block intact. */
static void realloc_shrink_case(void) {
  uint64_t seed = case_seed++;
  size_t from = 8 * MIB;
  void *p = A(malloc)(from);
  if (!CHECK(p != NULL)) return;
  fill(p, from, seed);
  am_test_os_failures(0, -1);
  errno = 0;
  void *q = A(realloc)(p, 4 * MIB);
  int e = errno;
  void *s = NULL;
  int e2 = 0;
  bool intact = false;
  if (q != NULL) {
    intact = filled_ok(q, 4 * MIB, from, seed);
    errno = 0;
    s = A(realloc)(q, 1000);
    e2 = errno;
  }
  long failed = am_test_os_failures(0, 0);
  if (!CHECK(q != NULL))
    fprintf(stderr, "    ^ realloc(8 MiB block, 4 MiB) under failure: NULL, errno %d (shrinking "
            "needs no new memory)\n", e);
  if (q == NULL) {
    CHECK(filled_ok(p, from, from, seed));
    A(free)(p);
    return;
  }
  CHECK(intact);
  if (s == NULL) {
    CHECK_EQ(e2, ENOMEM);
    CHECK(filled_ok(q, 4 * MIB, from, seed));
    A(free)(q);
  } else {
    CHECK(filled_ok(s, 1000, from, seed));
    A(free)(s);
  }
  printf("%s: realloc(8 MiB -> 4 MiB -> 1000) under failure: %s, %s; %ld mapping calls failed\n",
         BUILD_NAME, q ? "shrunk" : "NULL", s ? "moved to a slab" : "NULL (ENOMEM)", failed);
}

/* The process's first allocation under failure: its thread heap cannot be created. In
 * faults-am nothing called am_* before, so this must fail; in faults-std the C library may have
 * called malloc before main, so a valid block is accepted too. */
static void first_allocation(void) {
  am_test_os_failures(0, -1);
  errno = 0;
  void *p = A(malloc)(16);
  int e = errno;
  void *out = NULL;
  int r = A(posix_memalign)(&out, 64, 64);
  long failed = am_test_os_failures(0, 0);
#ifdef FAULTS_AM
  bool strict = true;
#else
  bool strict = false;
#endif
  if (strict || p == NULL) {
    CHECK(p == NULL);
    CHECK_EQ(e, ENOMEM);
    CHECK(failed >= 1);
  }
  if (strict || r != 0) {
    CHECK_EQ(r, ENOMEM);
    CHECK(out == NULL);
  }
  if (p) A(free)(p);
  if (r == 0) A(free)(out);
  void *q = A(malloc)(16);
  CHECK(q != NULL);
  A(free)(q);
  workload_ok(1, 4000);
  printf("%s: the first allocation of the process under failure: %s (errno %d), %ld mapping "
         "calls failed; recovered\n", BUILD_NAME, p ? "a block" : "NULL", e, failed);
  /* from here on the thread heap exists: the small cases below exhaust slabs */
  A(free)(A(malloc)(48));
}

static void test_calls(void) {
  first_allocation();
  /* malloc: small, medium (exhausting the slabs in place first), large */
  fail_then_recover(K_MALLOC, 0, 48, true);
  fail_then_recover(K_MALLOC, 0, 3000, true);
  fail_then_recover(K_MALLOC, 0, 100 * KIB, true);
  fail_then_recover(K_MALLOC, 0, 300 * KIB, false);
  fail_then_recover(K_MALLOC, 0, 64 * MIB, false);
  /* calloc */
  fail_then_recover(K_CALLOC, 0, 64, true);
  fail_then_recover(K_CALLOC, 0, 3 * MIB, false);
  /* realloc / reallocarray */
  realloc_case(100, 0, 1 * MIB, false, false);       /* small -> large */
  realloc_case(24, 0, 500, true, false);             /* small -> small, slabs exhausted */
  realloc_case(40, 0, 20000, true, false);           /* small -> medium, slabs exhausted */
  realloc_case(1 * MIB, 0, 1 * MIB + 4096, false, false); /* large -> a page larger */
  realloc_case(1 * MIB, 0, 32 * MIB, false, false);  /* large -> much larger */
  realloc_case(512 * KIB, 1 * MIB, 2 * MIB, false, false); /* over-aligned large: copies */
  realloc_case(64, 0, 1 * MIB, false, true);         /* reallocarray */
  realloc_case(64, 0, 4096, true, true);
  realloc_shrink_case();
  /* aligned allocation */
  fail_then_recover(K_POSIX_MEMALIGN, 64, 64, true);
  fail_then_recover(K_POSIX_MEMALIGN, 64, 1 * MIB, false);
  fail_then_recover(K_POSIX_MEMALIGN, 1 * MIB, 64, false);
  fail_then_recover(K_ALIGNED_ALLOC, 256, 256, true);
  fail_then_recover(K_ALIGNED_ALLOC, 4096, 1 * MIB, false);
  fail_then_recover(K_MEMALIGN, 65536, 100, false);
  fail_then_recover(K_MEMALIGN, 128, 512 * KIB, false);
  fail_then_recover(K_MEMALIGN, 2048, 2000, true);
  fail_then_recover(K_VALLOC, 0, 100, true);
  fail_then_recover(K_VALLOC, 0, 1 * MIB, false);
  fail_then_recover(K_PVALLOC, 0, 5000, true);
  fail_then_recover(K_PVALLOC, 0, 1 * MIB + 1, false);
  CHECK_EQ(am_test_os_failures(0, 0), 0);
}

/* ---- a workload where calls may fail ------------------------------------------------------ */

typedef struct {
  void *p;
  size_t n;      /* bytes filled (= requested) */
  uint64_t seed;
} live_t;

typedef struct {
  size_t ops, nulls, bad;
} wstats_t;

/* Blocks handed between threads (the threaded variant). */
static pthread_mutex_t xchg_lock = PTHREAD_MUTEX_INITIALIZER;
static live_t xchg[32];

/* One operation on slot s: a free, a realloc or a check of a live block, or an allocation with
 * one of the calls. Every result must be a valid block or NULL + ENOMEM. */
static void maybe_op(rng_t *r, live_t *s, wstats_t *st, bool exchange) {
  st->ops++;
  if (s->p) {
    unsigned c = (unsigned)rng_below(r, 100);
    if (!filled_ok(s->p, s->n, s->n, s->seed)) {
      st->bad++;
      CHECK(!"a live block lost its contents");
    }
    if (c < 45) {
      A(free)(s->p);
      s->p = NULL;
    } else if (c < 80) {
      size_t n = c < 50 ? s->n + 1 + rng_below(r, 64) : mixed_size(r, true);
      if (n == 0) n = 1;
      errno = 0;
      void *q = A(realloc)(s->p, n);
      if (q == NULL) {
        st->nulls++;
        CHECK_ERRNO(ENOMEM);
        if (!filled_ok(s->p, s->n, s->n, s->seed)) {
          st->bad++;
          CHECK(!"a failed realloc changed the block");
        }
      } else {
        if (!filled_ok(q, s->n < n ? s->n : n, s->n, s->seed)) {
          st->bad++;
          CHECK(!"realloc lost the contents");
        }
        CHECK_GE(A(malloc_usable_size)(q), n);
        s->p = q;
        s->n = n;
        s->seed = rng_next(r);
        fill(q, n, s->seed);
      }
    } else if (c < 90 && exchange) {
      pthread_mutex_lock(&xchg_lock);
      size_t j = rng_below(r, 32);
      live_t t = xchg[j];
      xchg[j] = *s;
      *s = t;
      pthread_mutex_unlock(&xchg_lock);
    }
    return;
  }
  kind_t k = (kind_t)rng_below(r, K_COUNT);
  size_t align = (size_t)1 << rng_below(r, 17);
  if (k == K_POSIX_MEMALIGN && align < sizeof(void *)) align = sizeof(void *);
  size_t size = mixed_size(r, true);
  if (k == K_CALLOC) size &= ~(size_t)1;
  int err = 0;
  void *p = call(k, align, size, &err);
  if (p == NULL) {
    st->nulls++;
    CHECK_EQ(err, ENOMEM);
    return;
  }
  size_t n = call_size(k, size);
  CHECK_ALIGNED(p, call_align(k, align, size));
  CHECK_GE(A(malloc_usable_size)(p), n);
  if (k == K_CALLOC && !CHECK(all_bytes(p, n, 0))) st->bad++;
  s->p = p;
  s->n = n;
  s->seed = rng_next(r);
  fill(p, n, s->seed);
}

static size_t check_free_all(live_t *s, size_t count) {
  size_t bad = 0;
  for (size_t i = 0; i < count; i++)
    if (s[i].p) {
      if (!filled_ok(s[i].p, s[i].n, s[i].n, s[i].seed)) bad++;
      A(free)(s[i].p);
      s[i].p = NULL;
    }
  return bad;
}

/* ---- nth: only mapping call N+1 fails -------------------------------------------------------- */

static void test_nth(void) {
  enum { SLOTS = 128, OPS = 1500 };
  static live_t s[SLOTS];
  size_t total_nulls = 0, hit = 0;
  for (long n = 0; n <= 40; n++) {
    rng_t r;
    rng_seed(&r, 500 + (uint64_t)n);
    wstats_t st = {0, 0, 0};
    am_test_os_failures(n, 1);
    for (size_t i = 0; i < OPS; i++) maybe_op(&r, &s[rng_below(&r, SLOTS)], &st, false);
    long failed = am_test_os_failures(0, 0);
    size_t bad = check_free_all(s, SLOTS);
    CHECK_EQ(bad, 0);
    if (!CHECK_EQ(failed, 1))
      fprintf(stderr, "    ^ N = %ld: %ld mapping calls failed (the workload makes more than 41)\n",
              n, failed);
    if (!CHECK(st.nulls <= 1))
      fprintf(stderr, "    ^ N = %ld: %zu calls returned NULL for one failed mapping call\n", n,
              st.nulls);
    if (st.bad) fprintf(stderr, "    ^ N = %ld: %zu corrupted blocks\n", n, st.bad);
    total_nulls += st.nulls;
    hit += (size_t)failed;
    A(malloc_trim)(0); /* give the segments back: the next round maps again */
  }
  workload_ok(77, 4000);
  printf("%s: nth: 41 rounds of %d operations, %zu injected failures, %zu calls returned "
         "NULL + ENOMEM\n", BUILD_NAME, OPS, hit, total_nulls);
  CHECK(total_nulls > 0);
}

/* ---- threads ---------------------------------------------------------------------------------- */

static int stop_flag;

typedef struct {
  int id;
  wstats_t st;
} targ_t;

static void *worker(void *arg) {
  targ_t *t = arg;
  enum { SLOTS = 64 };
  live_t s[SLOTS];
  memset(s, 0, sizeof s);
  rng_t r;
  rng_seed(&r, 900 + (uint64_t)t->id);
  while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE))
    for (int i = 0; i < 64; i++) maybe_op(&r, &s[rng_below(&r, SLOTS)], &t->st, true);
  t->st.bad += check_free_all(s, SLOTS);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A thread whose first allocations happen while mapping calls fail. */
static pthread_barrier_t fresh_barrier;
static void *fresh_thread(void *arg) {
  (void)arg;
  pthread_barrier_wait(&fresh_barrier);     /* failures are on */
  errno = 0;
  void *a = A(malloc)(64);
  int ea = errno;
  errno = 0;
  void *b = A(malloc)(1 * MIB);
  int eb = errno;
  pthread_barrier_wait(&fresh_barrier);     /* the main thread turns them off */
  pthread_barrier_wait(&fresh_barrier);
  if (!CHECK(a != NULL || ea == ENOMEM)) fprintf(stderr, "    ^ malloc(64): errno %d\n", ea);
  CHECK(b == NULL);
  CHECK_EQ(eb, ENOMEM);
  A(free)(a);
  A(free)(b);
  void *c = A(malloc)(64), *d = A(malloc)(1 * MIB);
  CHECK(c != NULL && d != NULL);
  A(free)(c);
  A(free)(d);
  workload_ok(99, 4000);
  return NULL;
}

static void test_threads(void) {
  enum { THREADS = 4, WINDOWS = 40 };
  pthread_t th[THREADS];
  targ_t args[THREADS];
  __atomic_store_n(&stop_flag, 0, __ATOMIC_RELEASE);
  for (int i = 0; i < THREADS; i++) {
    args[i] = (targ_t){i, {0, 0, 0}};
    if (pthread_create(&th[i], NULL, worker, &args[i]) != 0) {
      CHECK(!"pthread_create");
      return;
    }
  }
  rng_t r;
  rng_seed(&r, 4242);
  long injected = 0;
  for (int w = 0; w < WINDOWS; w++) {
    sleep_ms(25);
    /* every call in the window fails, or a few calls a little later */
    if (w % 2 == 0) am_test_os_failures(0, -1);
    else am_test_os_failures((long)rng_below(&r, 8), 1 + (long)rng_below(&r, 4));
    sleep_ms(10);
    injected += am_test_os_failures(0, 0);
  }
  __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
  wstats_t sum = {0, 0, 0};
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    sum.ops += args[i].st.ops;
    sum.nulls += args[i].st.nulls;
    sum.bad += args[i].st.bad;
  }
  sum.bad += check_free_all(xchg, 32);
  CHECK_EQ(sum.bad, 0);
  CHECK(injected > 0);
  CHECK(sum.nulls > 0);
  printf("%s: threads: %zu operations in 4 threads, %ld injected failures, %zu calls returned "
         "NULL + ENOMEM, %zu corrupted blocks\n", BUILD_NAME, sum.ops, injected, sum.nulls, sum.bad);
  A(malloc_trim)(0);
  workload_ok(98, 4000);

  /* a new thread's first allocations under failure */
  pthread_t t;
  pthread_barrier_init(&fresh_barrier, NULL, 2);
  if (CHECK(pthread_create(&t, NULL, fresh_thread, NULL) == 0)) {
    am_test_os_failures(0, -1);
    pthread_barrier_wait(&fresh_barrier);
    pthread_barrier_wait(&fresh_barrier);
    long failed = am_test_os_failures(0, 0);
    pthread_barrier_wait(&fresh_barrier);
    pthread_join(t, NULL);
    CHECK(failed >= 1);
    printf("%s: a new thread's first allocations under failure: %ld mapping calls failed\n",
           BUILD_NAME, failed);
  }
  pthread_barrier_destroy(&fresh_barrier);
}

/* ---- rlimit: RLIMIT_AS in a forked child ------------------------------------------------------ */

static size_t vm_size_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmSize:", 7) == 0) {
      kib = (size_t)strtoull(line + 7, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

/* Allocates blocks of `size` until NULL (appending to v); returns how many, and the errno of
 * the NULL in *err. */
static size_t fill_up(vec_t *v, size_t size, int *err) {
  size_t n = 0;
  for (;;) {
    errno = 0;
    void *p = A(malloc)(size);
    if (p == NULL) {
      *err = errno;
      return n;
    }
    tag_set(p, v->n);
    v->v[v->n++] = p;
    n++;
    if (v->n == v->cap) {
      *err = 0;
      return n;
    }
  }
}

/* Frees every other block of v (checking tags) and compacts v, retagging. */
static size_t free_half(vec_t *v) {
  size_t bad = 0, k = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (!tag_ok(v->v[i], i)) bad++;
    if (i % 2) A(free)(v->v[i]);
    else v->v[k++] = v->v[i];
  }
  v->n = k;
  for (size_t i = 0; i < k; i++) tag_set(v->v[i], i);
  return bad;
}

static void rlimit_phase(vec_t *v, size_t size, const char *what) {
  int err = 0, err2 = 0;
  size_t n = fill_up(v, size, &err);
  CHECK_EQ(err, ENOMEM);
  CHECK_GE(n * size, 8 * MIB);          /* most of the 64 MiB of headroom */
  CHECK_EQ(free_half(v), 0);
  size_t n2 = fill_up(v, size, &err2);
  CHECK_EQ(err2, ENOMEM);
  bool ok = CHECK(n2 > 0);
  ok = CHECK_GE(n2, n / 4) && ok;
  if (!ok)
    fprintf(stderr, "    ^ %s: %zu blocks, then %zu after freeing half\n", what, n, n2);
  printf("%s: rlimit: %s: %zu blocks of %zu bytes until ENOMEM; after freeing half, %zu more\n",
         BUILD_NAME, what, n, size, n2);
  vec_free_all(v, what);
}

static void rlimit_child(void) {
  vec_t v;
  vec_init(&v, (size_t)1 << 20);
  /* warm up (the thread heap, stdio) before the limit */
  void *w = A(malloc)(100);
  A(free)(w);
  printf("%s: rlimit: VmSize %zu KiB before the limit\n", BUILD_NAME, vm_size_kib());
  size_t vm = vm_size_kib();
  if (vm == 0) {
    CHECK(!"cannot read VmSize");
    return;
  }
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(vm * KIB + 64 * MIB);
  if (!CHECK(setrlimit(RLIMIT_AS, &rl) == 0)) return;
  rlimit_phase(&v, 1000, "small");
  A(malloc_trim)(0);
  rlimit_phase(&v, 40 * KIB, "medium");
  A(malloc_trim)(0);
  rlimit_phase(&v, 1 * MIB, "large");
  A(malloc_trim)(0);
  /* and everything works again */
  void *p = A(malloc)(10 * MIB), *q = A(calloc)(1000, 100);
  CHECK(p != NULL && q != NULL);
  A(free)(p);
  A(free)(q);
  vec_done(&v);
}

static void test_rlimit(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    CHECK(!"fork");
    return;
  }
  if (pid == 0) {
    rlimit_child();
    fflush(stdout);
    _exit(__atomic_load_n(&t_failed, __ATOMIC_SEQ_CST) ? 1 : 0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    fprintf(stderr, "    ^ the rlimit child: status 0x%x\n", status);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  test_init(BUILD_NAME);
  page_size = (size_t)sysconf(_SC_PAGESIZE);
#ifndef FAULTS_AM
  CHECK_AMALLOC_ACTIVE();
#endif
  const char *mode = argc > 1 ? argv[1] : "all";
  bool all = strcmp(mode, "all") == 0;
  bool known = all;
  if (all || strcmp(mode, "calls") == 0) {
    test_calls();
    known = true;
  }
  if (all || strcmp(mode, "nth") == 0) {
    test_nth();
    known = true;
  }
  if (all || strcmp(mode, "threads") == 0) {
    test_threads();
    known = true;
  }
  if (all || strcmp(mode, "rlimit") == 0) {
    test_rlimit();
    known = true;
  }
  if (!known) {
    fprintf(stderr, "usage: %s [calls|nth|threads|rlimit|all]\n", argv[0]);
    return 2;
  }
  CHECK_EQ(am_test_os_failures(0, 0), 0);
  return test_summary();
}
