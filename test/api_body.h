/* api_body.h -- the API contract tests, shared by api.c (through the standard names: malloc,
 * free, ... as overridden by libamalloc) and am_api.c (through the am_* names, linked with
 * libamalloc-api.a beside glibc's malloc).
 *
 * The includer defines:
 *   F(name)        the function to call for the standard name `name` (name or am_##name)
 *   MI2_T          the struct type returned by F(mallinfo2)
 *   MI_T           the struct type returned by F(mallinfo)
 *   STRICT         true when the amalloc contract is checked where glibc 2.36 knowingly
 *                  differs (non-power-of-two alignments for aligned_alloc)
 *   HAVE_FREE_SIZED true when F(free_sized) and F(free_aligned_sized) exist (they may be NULL
 *                  weak symbols in api.c; see have_free_sized())
 * and includes test.h first.
 */
#ifndef AMALLOC_API_BODY_H
#define AMALLOC_API_BODY_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* ---- malloc(0), free(NULL), errno preserved by free ------------------------------------- */
static void test_malloc_zero_free_null(void) {
  enum { N = 16 };
  void *z[N];
  for (int i = 0; i < N; i++) {
    z[i] = F(malloc)(opaque_size(0));
    CHECK(z[i] != NULL);
  }
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++) CHECK(z[i] == NULL || z[i] != z[j]);
  for (int i = 0; i < N; i++) F(free)(z[i]);

  errno = 77;
  F(free)(opaque_ptr(NULL));
  CHECK_ERRNO(77);
  CHECK_EQ(F(malloc_usable_size)(NULL), 0);

  /* free keeps errno: small, medium, large (8 MiB) and many 64 KiB blocks (segment release) */
  static const size_t sizes[] = {1, 16, 100, 1000, 5000, 40000, 200 * KiB, 1 * MiB, 8 * MiB,
                                 33 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = F(malloc)(sizes[i]);
    CHECK(p != NULL);
    if (!p) continue;
    memset(p, 0x5a, sizes[i]);
    errno = 1234;
    F(free)(p);
    CHECK_ERRNO(1234);
  }
  enum { M = 600 };
  static void *blk[M];
  for (int i = 0; i < M; i++) {
    blk[i] = F(malloc)(64 * KiB);
    CHECK(blk[i] != NULL);
    if (blk[i]) memset(blk[i], i & 0xff, 64 * KiB);
  }
  int bad = 0;
  for (int i = 0; i < M; i++) {
    errno = 1234;
    F(free)(blk[i]);
    if (errno != 1234) bad++;
  }
  CHECK_EQ(bad, 0);
  /* calloc'd and realloc'd large blocks too */
  void *p = F(calloc)(3, 4 * MiB);
  CHECK(p != NULL);
  p = F(realloc)(p, 20 * MiB);
  CHECK(p != NULL);
  errno = 1234;
  F(free)(p);
  CHECK_ERRNO(1234);
}

/* ---- overflow and impossible sizes: NULL with ENOMEM ------------------------------------ */
static void test_overflow(void) {
  void *p;
  errno = 0;
  p = F(calloc)(opaque_size(SIZE_MAX / 2 + 1), opaque_size(2));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(calloc)(opaque_size((size_t)1 << 33), opaque_size((size_t)1 << 33));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(calloc)(opaque_size(1), opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(calloc)(opaque_size(SIZE_MAX), opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);

  errno = 0;
  p = F(reallocarray)(NULL, opaque_size(SIZE_MAX / 3 + 1), opaque_size(3));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);

  errno = 0;
  p = F(malloc)(opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(malloc)(opaque_size((size_t)PTRDIFF_MAX + 1));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(malloc)(opaque_size(SIZE_MAX - 4096));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);

  /* a failed realloc / reallocarray leaves the old block intact */
  static const size_t old_sizes[] = {24, 3000, 100 * KiB, 2 * MiB};
  for (size_t i = 0; i < sizeof old_sizes / sizeof old_sizes[0]; i++) {
    size_t n = old_sizes[i];
    void *q = F(malloc)(n);
    CHECK(q != NULL);
    if (!q) continue;
    wpat_fill(q, n, 42 + i);
    errno = 0;
    p = F(realloc)(opaque_ptr(q), opaque_size(SIZE_MAX));
    CHECK(p == NULL);
    CHECK_ERRNO(ENOMEM);
    errno = 0;
    p = F(realloc)(opaque_ptr(q), opaque_size((size_t)PTRDIFF_MAX + 1));
    CHECK(p == NULL);
    CHECK_ERRNO(ENOMEM);
    errno = 0;
    p = F(reallocarray)(opaque_ptr(q), opaque_size(SIZE_MAX / 2), opaque_size(4));
    CHECK(p == NULL);
    CHECK_ERRNO(ENOMEM);
    CHECK(wpat_check(q, n, 42 + i));
    CHECK_GE(F(malloc_usable_size)(q), n);
    /* still usable: a normal realloc works and keeps the contents */
    p = F(realloc)(q, n + 100);
    CHECK(p != NULL);
    if (p) {
      CHECK(wpat_check(p, n, 42 + i));
      F(free)(p);
    } else {
      F(free)(q);
    }
  }

  /* reallocarray that does not overflow works like realloc */
  p = F(reallocarray)(NULL, 10, 100);
  CHECK(p != NULL);
  if (p) {
    memset(p, 7, 1000);
    void *q = F(reallocarray)(p, 100, 100);
    CHECK(q != NULL);
    if (q) {
      CHECK(all_bytes(q, 1000, 7));
      p = q;
    }
    F(free)(p);
  }

  /* aligned allocators with impossible sizes */
  void *m = (void *)&m;
  int r = F(posix_memalign)(&m, 64, opaque_size(SIZE_MAX));
  CHECK_EQ(r, ENOMEM);
  CHECK(m == (void *)&m);
  r = F(posix_memalign)(&m, 4096, opaque_size(SIZE_MAX - 100));
  CHECK_EQ(r, ENOMEM);
  errno = 0;
  p = F(aligned_alloc)(64, opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(memalign)(4096, opaque_size(SIZE_MAX - 100));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(valloc)(opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(pvalloc)(opaque_size(SIZE_MAX));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  p = F(pvalloc)(opaque_size(SIZE_MAX - page_size() + 2));
  CHECK(p == NULL);
  CHECK_ERRNO(ENOMEM);
}

/* ---- malloc alignment ------------------------------------------------------------------- */
/* README: "Alignment: 16 bytes for every block", also for requests under 16 bytes. */
static void check_malloc_align(void *p, size_t n) {
  if (!CHECK_ALIGNED(p, 16)) fprintf(stderr, "    request of %zu bytes\n", n);
}

static void test_malloc_alignment(void) {
  enum { N = 4096 };
  static void *ps[N + 1];
  int bad = 0;
  for (size_t n = 1; n <= N; n++) {
    void *p = ps[n] = F(malloc)(n);
    CHECK(p != NULL);
    if (!p) continue;
    if (((uintptr_t)p & 15) != 0) {
      if (!bad++) check_malloc_align(p, n); /* report the first one in detail */
    }
    ((volatile char *)p)[0] = 1;
    ((volatile char *)p)[n - 1] = 2;
  }
  CHECK_EQ(bad, 0);
  for (size_t n = 1; n <= N; n++) F(free)(ps[n]);

  static const size_t larger[] = {4097, 5000, 6000, 8191, 8192, 8193, 10000, 12345, 16383,
                                  16384, 16385, 20000, 32767, 32768, 32769, 50000, 65535,
                                  100000, 131071, 131072, 131073, 250000, 262143, 262145,
                                  500000, 524288, 1000000, 1048577, 3 * MiB + 5, 7 * MiB - 3};
  for (size_t i = 0; i < sizeof larger / sizeof larger[0]; i++) {
    void *p = F(malloc)(larger[i]);
    void *q = F(malloc)(larger[i]);
    CHECK(p && q);
    check_malloc_align(p, larger[i]);
    check_malloc_align(q, larger[i]);
    if (p) memset(p, 1, larger[i]);
    F(free)(p);
    F(free)(q);
  }
  for (size_t n = 64 * KiB; n <= 32 * MiB; n *= 2) {
    size_t ns[3] = {n - 1, n, n + 1};
    for (int k = 0; k < 3; k++) {
      void *p = F(malloc)(ns[k]);
      CHECK(p != NULL);
      check_malloc_align(p, ns[k]);
      if (p) {
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[ns[k] - 1] = 1;
      }
      F(free)(p);
    }
  }
}

/* ---- posix_memalign / aligned_alloc / memalign ------------------------------------------ */
static void fill_or_sample(void *p, size_t n, uint64_t seed) {
  /* written over fully, except very large blocks in quick mode (valgrind) */
  if (!test_quick() || n <= 4 * MiB)
    wpat_fill(p, n, seed);
  else
    pat_fill(p, n, seed, 0);
}
static bool check_fill_or_sample(void *p, size_t n, uint64_t seed) {
  if (!test_quick() || n <= 4 * MiB) return wpat_check(p, n, seed);
  return pat_check(p, n, seed, 0);
}

static void test_memalign_family(void) {
  for (size_t a = 1; a <= 64 * MiB; a *= 2) {
    size_t sizes[4] = {1, a / 2 + 1, a + a / 2 + 8, 3 * a + 1};
    int nsizes = a >= 8 * MiB ? 3 : 4; /* keep the biggest runs modest */
    for (int k = 0; k < nsizes; k++) {
      size_t n = sizes[k];
      void *pm = NULL, *aa, *ma;
      int r = -1;
      if (a >= sizeof(void *)) {
        r = F(posix_memalign)(&pm, a, n);
        CHECK_EQ(r, 0);
        CHECK(pm != NULL);
        CHECK_ALIGNED(pm, a);
      }
      errno = 0;
      aa = F(aligned_alloc)(a, n);
      CHECK(aa != NULL);
      CHECK_ALIGNED(aa, a);
      ma = F(memalign)(a, n);
      CHECK(ma != NULL);
      CHECK_ALIGNED(ma, a);
      /* all three live at once, each written over fully with its own pattern */
      void *blocks[3] = {pm, aa, ma};
      for (int b = 0; b < 3; b++)
        if (blocks[b]) {
          CHECK_GE(F(malloc_usable_size)(blocks[b]), n);
          fill_or_sample(blocks[b], n, a * 7 + (size_t)k * 3 + (size_t)b);
        }
      for (int b = 0; b < 3; b++)
        if (blocks[b]) CHECK(check_fill_or_sample(blocks[b], n, a * 7 + (size_t)k * 3 + (size_t)b));
      F(free)(pm);
      F(free)(aa);
      F(free)(ma);
    }
  }
  /* many small aligned blocks at once (aligned blocks inside small size classes) */
  static const size_t aligns[] = {16, 32, 64, 128, 256, 512, 1024, 4096};
  enum { K = 200 };
  static void *bl[K];
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    size_t a = aligns[i];
    for (int j = 0; j < K; j++) {
      size_t n = 1 + (size_t)(j * 37) % (3 * a);
      bl[j] = F(aligned_alloc)(a, n);
      CHECK(bl[j] != NULL);
      CHECK_ALIGNED(bl[j], a);
      if (bl[j]) pat_fill(bl[j], n, (uint64_t)(a + (size_t)j), 1 << 20);
    }
    for (int j = 0; j < K; j++) {
      size_t n = 1 + (size_t)(j * 37) % (3 * a);
      if (bl[j]) CHECK(pat_check(bl[j], n, (uint64_t)(a + (size_t)j), 1 << 20));
      F(free)(bl[j]);
    }
  }
}

/* ---- bad alignments --------------------------------------------------------------------- */
static void test_bad_alignment(void) {
  void *sentinel = (void *)(uintptr_t)0x1234;
  static const size_t bad_pm[] = {0, 1, 2, 3, 4, 5, 12, 24, 48, 4095, 4097, 65536 + 8};
  for (size_t i = 0; i < sizeof bad_pm / sizeof bad_pm[0]; i++) {
    size_t a = bad_pm[i];
    if (a >= sizeof(void *) && a % sizeof(void *) == 0 && (a & (a - 1)) == 0) continue;
    void *p = sentinel;
    errno = 4321;
    int r = F(posix_memalign)(&p, opaque_size(a), 8);
    CHECK_EQ(r, EINVAL);
    CHECK(p == sentinel); /* *memptr not written */
    CHECK_ERRNO(4321);     /* posix_memalign does not set errno */
  }
  /* success does not touch errno either */
  void *p = NULL;
  errno = 4321;
  int r = F(posix_memalign)(&p, 64, 100);
  CHECK_EQ(r, 0);
  CHECK_ERRNO(4321);
  F(free)(p);
  /* an impossible size is reported by the return value, not errno */
  p = sentinel;
  errno = 4321;
  r = F(posix_memalign)(&p, 64, opaque_size(SIZE_MAX));
  CHECK_EQ(r, ENOMEM);
  CHECK(p == sentinel);
  if (STRICT) CHECK_ERRNO(4321); /* glibc sets errno here too */

  if (STRICT) {
    errno = 0;
    p = F(aligned_alloc)(opaque_size(3), 8);
    CHECK(p == NULL);
    CHECK_ERRNO(EINVAL);
    errno = 0;
    p = F(aligned_alloc)(opaque_size(24), 8);
    CHECK(p == NULL);
    CHECK_ERRNO(EINVAL);
    /* memalign follows glibc: 3 is malloc's alignment, 48 rounds up to 64 (memalign_glibc.c) */
    p = F(memalign)(opaque_size(3), 8);
    CHECK(p != NULL);
    F(free)(p);
    p = F(memalign)(opaque_size(48), 8);
    CHECK(p != NULL);
    CHECK_ALIGNED(p, 64);
    F(free)(p);
  } else {
    test_note("glibc: not checking aligned_alloc with non-power-of-two alignments");
  }
}

/* ---- valloc / pvalloc ------------------------------------------------------------------- */
static void test_valloc(void) {
  size_t ps = page_size();
  static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 65536, 100000, 1 * MiB + 1};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *v = F(valloc)(n);
    CHECK(v != NULL);
    CHECK_ALIGNED(v, ps);
    if (v) {
      CHECK_GE(F(malloc_usable_size)(v), n);
      memset(v, 0x11, n);
    }
    void *pv = F(pvalloc)(n);
    CHECK(pv != NULL);
    CHECK_ALIGNED(pv, ps);
    if (pv) {
      size_t whole = (n + ps - 1) / ps * ps;
      size_t us = F(malloc_usable_size)(pv);
      CHECK_GE(us, whole);
      CHECK_GE(us, ps);
      memset(pv, 0x22, whole); /* pvalloc gives whole pages */
      if (v) CHECK(all_bytes(v, n, 0x11));
    }
    F(free)(v);
    F(free)(pv);
  }
}

/* ---- malloc_usable_size: >= requested, all of it writable ------------------------------- */
static void test_usable_size(void) {
  enum { B = 12 };
  void *bl[B];
  size_t us[B];
  int bad_size = 0, bad_pat = 0;
  size_t maxn = test_quick() ? 2048 : 8192;
  for (size_t n = 1; n <= maxn; n += (n < 1024 ? 1 : 7)) {
    for (int j = 0; j < B; j++) {
      bl[j] = F(malloc)(n);
      us[j] = bl[j] ? F(malloc_usable_size)(bl[j]) : 0;
      if (!bl[j] || us[j] < n) bad_size++;
      else pat_fill(bl[j], us[j], n * B + (size_t)j, SIZE_MAX);
    }
    for (int j = 0; j < B; j++)
      if (bl[j] && us[j] >= n && !pat_check(bl[j], us[j], n * B + (size_t)j, SIZE_MAX)) bad_pat++;
    for (int j = 0; j < B; j++) F(free)(bl[j]);
  }
  CHECK_EQ(bad_size, 0);
  CHECK_EQ(bad_pat, 0);
  static const size_t big[] = {10000, 16384, 30000, 65536, 65537, 100000, 200000, 262144,
                               300000, 1 * MiB, 1 * MiB + 1, 3 * MiB + 17, 8 * MiB + 1};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    size_t n = big[i];
    for (int j = 0; j < 4; j++) {
      bl[j] = F(malloc)(n);
      CHECK(bl[j] != NULL);
      us[j] = bl[j] ? F(malloc_usable_size)(bl[j]) : 0;
      CHECK_GE(us[j], n);
      if (bl[j]) wpat_fill(bl[j], us[j], n + (size_t)j);
    }
    for (int j = 0; j < 4; j++)
      if (bl[j]) CHECK(wpat_check(bl[j], us[j], n + (size_t)j));
    for (int j = 0; j < 4; j++) F(free)(bl[j]);
  }
}

/* ---- calloc zeroes, also when reusing freed blocks -------------------------------------- */
static void test_calloc_zero(void) {
  enum { N = 2000 };
  static void *bl[N + 1];
  int rounds = test_quick() ? 1 : 3;
  for (int round = 0; round < rounds; round++) {
    for (size_t n = 1; n <= N; n++) {
      bl[n] = F(malloc)(n);
      CHECK(bl[n] != NULL);
      if (bl[n]) memset(bl[n], 0xAB, F(malloc_usable_size)(bl[n]));
    }
    for (size_t n = 1; n <= N; n++) F(free)(bl[n]);
    int bad = 0;
    for (size_t n = 1; n <= N; n++) {
      /* alternate the count/size split */
      bl[n] = (n & 1) ? F(calloc)(n, 1) : F(calloc)(1, n);
      CHECK(bl[n] != NULL);
      if (bl[n] && !all_bytes(bl[n], n, 0)) bad++;
    }
    CHECK_EQ(bad, 0);
    for (size_t n = 1; n <= N; n++) F(free)(bl[n]);
  }
  static const size_t big[] = {4096, 8000, 20000, 64 * KiB, 100 * KiB, 256 * KiB + 8, 1 * MiB,
                               4 * MiB, 16 * MiB + 1};
  for (int round = 0; round < rounds; round++)
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
      size_t n = big[i];
      void *p = F(malloc)(n);
      CHECK(p != NULL);
      if (p) memset(p, 0xAB, F(malloc_usable_size)(p));
      F(free)(p);
      p = F(calloc)(n / 8, 8);
      CHECK(p != NULL);
      if (p) CHECK(all_bytes(p, n / 8 * 8, 0));
      F(free)(p);
      p = F(calloc)(1, n);
      CHECK(p != NULL);
      if (p) CHECK(all_bytes(p, n, 0));
      F(free)(p);
    }
  void *p = F(calloc)(0, 0);
  CHECK(p != NULL);
  F(free)(p);
  p = F(calloc)(0, 100);
  CHECK(p != NULL);
  F(free)(p);
}

/* ---- realloc ---------------------------------------------------------------------------- */
static void test_realloc(void) {
  /* realloc(NULL, n) is malloc; realloc(NULL, 0) is non-NULL */
  void *p = F(realloc)(NULL, 100);
  CHECK(p != NULL);
  if (p) {
    CHECK_GE(F(malloc_usable_size)(p), 100);
    memset(p, 1, 100);
  }
  F(free)(p);
  p = F(realloc)(NULL, 0);
  CHECK(p != NULL);
  F(free)(p);
  /* realloc(p, 0) frees p and returns NULL (glibc behaviour) */
  p = F(malloc)(50);
  CHECK(p != NULL);
  p = F(realloc)(p, opaque_size(0));
  CHECK(p == NULL);
  F(free)(p);
  p = F(malloc)(5 * MiB);
  CHECK(p != NULL);
  p = F(realloc)(p, opaque_size(0));
  CHECK(p == NULL);

  /* a chain across small, medium and large */
  static const size_t chain[] = {100, 300 * KiB, 4 * MiB, 64 * MiB, 1 * KiB, 17, 70000, 1,
                                 2 * MiB, 3 * MiB, 100 * KiB, 40, 0};
  size_t cur = 0;
  p = NULL;
  for (size_t i = 0; chain[i]; i++) {
    size_t n = chain[i];
    if (test_quick() && n > 8 * MiB) n = 8 * MiB;
    void *q = F(realloc)(p, n);
    CHECK(q != NULL);
    if (!q) break;
    if (p) CHECK(wpat_check(q, cur < n ? cur : n, 1000 + i - 1));
    CHECK_GE(F(malloc_usable_size)(q), n);
    check_malloc_align(q, n);
    wpat_fill(q, n, 1000 + i);
    p = q;
    cur = n;
  }
  F(free)(p);

  /* grow by ~12% steps through every size class up to 1 MiB, then shrink back */
  size_t limit = test_quick() ? 256 * KiB : 2 * MiB;
  p = NULL;
  cur = 0;
  uint64_t seed = 5000;
  int bad = 0;
  for (size_t n = 1; n <= limit; n += n / 8 + 1) {
    void *q = F(realloc)(p, n);
    if (!q) { bad++; break; }
    if (p && !wpat_check(q, cur, seed)) bad++;
    wpat_fill(q, n, ++seed);
    p = q;
    cur = n;
  }
  for (size_t n = cur; n >= 1; n -= n / 8 + 1) {
    void *q = F(realloc)(p, n);
    if (!q) { bad++; break; }
    if (!wpat_check(q, n, seed)) bad++;
    wpat_fill(q, n, ++seed);
    p = q;
    cur = n;
    if (n == 1) break;
  }
  CHECK_EQ(bad, 0);
  F(free)(p);

  /* in-place shrink and regrow with neighbours around (contents of neighbours unharmed) */
  for (size_t n = 16; n <= 256 * KiB; n *= 4) {
    void *a = F(malloc)(n), *b = F(malloc)(n), *c = F(malloc)(n);
    CHECK(a && b && c);
    if (!a || !b || !c) { F(free)(a); F(free)(b); F(free)(c); continue; }
    wpat_fill(a, n, 1), wpat_fill(b, n, 2), wpat_fill(c, n, 3);
    void *b2 = F(realloc)(b, n / 2);
    CHECK(b2 != NULL);
    if (b2) b = b2;
    CHECK(wpat_check(b, n / 2, 2));
    b2 = F(realloc)(b, n * 3);
    CHECK(b2 != NULL);
    if (b2) b = b2;
    CHECK(wpat_check(b, n / 2, 2));
    memset(b, 0x77, b2 ? n * 3 : n / 2);
    CHECK(wpat_check(a, n, 1));
    CHECK(wpat_check(c, n, 3));
    F(free)(a), F(free)(b), F(free)(c);
  }
}

/* 64 MiB grown to 128 MiB and more in a loop (the mremap path), contents kept */
static void test_realloc_large(void) {
  size_t base = test_quick() ? 8 * MiB : 64 * MiB;
  size_t step = test_quick() ? 8 * MiB : 48 * MiB;
  int steps = 5;
  void *p = F(malloc)(base);
  CHECK(p != NULL);
  if (!p) return;
  wpat_fill(p, base, 77);
  size_t cur = base;
  void *blockers[8] = {0};
  for (int i = 0; i < steps; i++) {
    size_t n = (i == 0 ? 2 * base : cur + step) + (size_t)i * 4096 + 123;
    void *q = F(realloc)(p, n);
    CHECK(q != NULL);
    if (!q) break;
    p = q;
    CHECK(wpat_check(p, base, 77));
    /* the grown part: one word every 64 KiB (keeps RSS down), checked at every later step */
    for (size_t off = base; off + 8 <= cur; off += 64 * KiB)
      CHECK_EQ(*(uint64_t *)((char *)p + off), off * 3 + 1);
    for (size_t off = base; off + 8 <= n; off += 64 * KiB) *(uint64_t *)((char *)p + off) = off * 3 + 1;
    ((char *)p)[n - 1] = 9;
    cur = n;
    blockers[i] = F(malloc)(1 * MiB + 1); /* something right after, sometimes */
  }
  /* and shrink back down */
  void *q = F(realloc)(p, base + 5);
  CHECK(q != NULL);
  if (q) p = q;
  CHECK(wpat_check(p, base, 77));
  F(free)(p);
  for (int i = 0; i < 8; i++) F(free)(blockers[i]);
}

/* ---- free_sized / free_aligned_sized ---------------------------------------------------- */
static void test_free_sized(void) {
  if (!HAVE_FREE_SIZED) {
    test_note("free_sized/free_aligned_sized not available: skipped");
    return;
  }
  static const size_t sizes[] = {1, 8, 15, 16, 17, 100, 1000, 4096, 5000, 65536, 100000,
                                 300000, 1 * MiB, 5 * MiB + 3};
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      void *p = F(malloc)(n);
      CHECK(p != NULL);
      if (p) memset(p, 1, n);
      F(free_sized)(p, n);
      p = F(calloc)(n, 1);
      CHECK(p != NULL);
      if (p) CHECK(all_bytes(p, n, 0));
      F(free_sized)(p, n);
      p = F(realloc)(NULL, n);
      CHECK(p != NULL);
      void *q = F(realloc)(p, n * 2 + 1);
      CHECK(q != NULL);
      if (q) {
        memset(q, 3, n * 2 + 1);
        F(free_sized)(q, n * 2 + 1);
      } else {
        F(free)(p);
      }
      static const size_t aligns[] = {8, 16, 64, 256, 4096, 65536, 1 << 20};
      for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        size_t a = aligns[k];
        void *b = F(aligned_alloc)(a, n);
        CHECK(b != NULL);
        CHECK_ALIGNED(b, a);
        if (b) memset(b, 2, n);
        F(free_aligned_sized)(b, a, n);
      }
    }
  F(free_sized)(NULL, 0);
  F(free_sized)(NULL, 100);
  F(free_aligned_sized)(NULL, 64, 0);
  /* memory is reusable afterwards */
  void *p = F(malloc)(100);
  CHECK(p != NULL);
  if (p) memset(p, 4, 100);
  F(free)(p);
}

/* ---- mallinfo2 / mallinfo --------------------------------------------------------------- */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_mallinfo(void) {
  enum { NS = 3000 };
  static void *small[NS];
  MI2_T m0 = F(mallinfo2)();
  MI_T i0 = F(mallinfo)();
  void *big = F(malloc)(1 * MiB);
  CHECK(big != NULL);
  if (big) memset(big, 1, 1 * MiB);
  for (int i = 0; i < NS; i++) {
    small[i] = F(malloc)(16 + (size_t)(i % 200));
    CHECK(small[i] != NULL);
  }
  MI2_T m1 = F(mallinfo2)();
  MI_T i1 = F(mallinfo)();
  size_t used0 = m0.hblkhd + m0.uordblks, used1 = m1.hblkhd + m1.uordblks;
  /* (the large block's bytes: slab bytes may fall meanwhile, as idle slabs go back) */
  CHECK_GE(m1.hblkhd, m0.hblkhd + 1 * MiB);
  (void)used0;
  CHECK(m1.arena + m1.hblkhd > 0);
  long long iu0 = (long long)i0.hblkhd, iu1 = (long long)i1.hblkhd;
  CHECK(iu1 > iu0);
  CHECK(iu1 - iu0 >= (long long)MiB);
  if (STRICT) {
    /* doc/reference.md's definitions: hblks/hblkhd = live large blocks and their bytes (the 1 MiB
     * block is one), uordblks = slab bytes + large bytes, fordblks = arena - slab bytes */
    CHECK_EQ(m1.hblks, m0.hblks + 1);
    CHECK_GE(m1.hblkhd, m0.hblkhd + 1 * MiB);
    /* (the mapping: a header page, the block, and in the secure build two guard pages) */
    CHECK(m1.hblkhd < m0.hblkhd + 1 * MiB + 4 * (size_t)sysconf(_SC_PAGESIZE));
    CHECK_EQ(i1.hblks, i0.hblks + 1);
    MI2_T ms[2] = {m0, m1};
    for (int k = 0; k < 2; k++) {
      CHECK_GE(ms[k].uordblks, ms[k].hblkhd);
      CHECK_GE(ms[k].arena, ms[k].uordblks - ms[k].hblkhd);
      CHECK_EQ(ms[k].fordblks, ms[k].arena - (ms[k].uordblks - ms[k].hblkhd));
      CHECK_EQ(ms[k].arena % (4 * MiB), 0);                /* whole 4 MiB segments */
    }
  }
  F(free)(big);
  for (int i = 0; i < NS; i++) F(free)(small[i]);
  MI2_T m2 = F(mallinfo2)();
  MI_T i2 = F(mallinfo)();
  size_t used2 = m2.hblkhd + m2.uordblks;
  CHECK(used2 < used1);
  CHECK(used1 - used2 >= 1 * MiB);
  long long iu2 = (long long)i2.hblkhd;
  CHECK(iu2 < iu1);
  if (STRICT) {
    CHECK_EQ(m2.hblks, m0.hblks);
    CHECK_EQ(m2.hblkhd, m0.hblkhd);
    CHECK_EQ(m2.fordblks, m2.arena - (m2.uordblks - m2.hblkhd));
    /* more 4 KiB blocks than the free part of the segments (fordblks) can hold, plus 8 MiB:
     * new slabs come out of fordblks or out of newly mapped segments, so arena must grow */
    size_t nf = (m2.fordblks + 8 * MiB) / (4 * KiB);
    void **fill = (void **)F(malloc)(nf * sizeof(void *));
    CHECK(fill != NULL);
    for (size_t i = 0; fill && i < nf; i++) {
      fill[i] = F(malloc)(4 * KiB);
      CHECK(fill[i] != NULL);
      if (fill[i]) memset(fill[i], 5, 64);
    }
    MI2_T mf = F(mallinfo2)();
    size_t slabs2 = m2.uordblks - m2.hblkhd, slabsf = mf.uordblks - mf.hblkhd;
    /* (at least the fill's own bytes: not slabs2 + those, as the other classes' empty slabs may
     * go back as idle while the fill runs, which on a loaded machine with 64 KiB pages took 1.5
     * MiB: api-64k failed 1 run in 5) */
    CHECK_GE(slabsf, nf * 4 * KiB);
    CHECK_GE(mf.arena + m2.fordblks, m2.arena + (slabsf - slabs2));
    CHECK_GE(mf.arena, m2.arena + 4 * MiB);
    CHECK_EQ(mf.fordblks, mf.arena - slabsf);
    CHECK_EQ(mf.hblks, m2.hblks + (nf * sizeof(void *) > 256 * KiB));
    for (size_t i = 0; fill && i < nf; i++) F(free)(fill[i]);
    F(free)(fill);
  }
}
#pragma GCC diagnostic pop

/* ---- malloc_trim, malloc_stats, malloc_info, mallopt ------------------------------------ */
static void test_trim_stats_info(void) {
  /* README: malloc_trim "returns 1 when it released something": 1 after freeing memory that
   * can go back, 0 when there is nothing (left) to release. glibc's answers differ. */
  int r = F(malloc_trim)(0);
  CHECK(r == 0 || r == 1);              /* whatever the earlier tests left */
  r = F(malloc_trim)(0);
  if (STRICT) CHECK_EQ(r, 0);           /* the first call released it all */
  enum { NB = 200, NS = 20000 };
  static void *bl[NB], *sm[NS];
  for (int i = 0; i < NB; i++) {
    bl[i] = F(malloc)(256 * KiB);
    if (bl[i]) memset(bl[i], 1, 256 * KiB);
  }
  for (int i = 0; i < NS; i++) {
    sm[i] = F(malloc)(48);
    if (sm[i]) memset(sm[i], 2, 48);
  }
  if (STRICT) CHECK_EQ(F(malloc_trim)(0), 0);   /* everything is live */
  for (int i = 0; i < NB; i++) F(free)(bl[i]);
  for (int i = 0; i < NS; i += 2) F(free)(sm[i]); /* fragmented */
  r = F(malloc_trim)(0);
  if (STRICT) CHECK_EQ(r, 1);           /* 50 MiB of 256 KiB blocks went back */
  else CHECK(r == 0 || r == 1);
  r = F(malloc_trim)(0);
  if (STRICT) CHECK_EQ(r, 0);
  for (int i = 1; i < NS; i += 2) {
    if (sm[i]) CHECK(all_bytes(sm[i], 48, 2)); /* live blocks survive a trim */
    F(free)(sm[i]);
  }
  r = F(malloc_trim)(1 * MiB);
  if (STRICT) CHECK_EQ(r, 1);           /* the 48-byte slabs are empty now */
  else CHECK(r == 0 || r == 1);
  if (STRICT) CHECK_EQ(F(malloc_trim)(1 * MiB), 0);
  void *p = F(malloc)(1000); /* still works after trim */
  CHECK(p != NULL);
  if (p) memset(p, 3, 1000);
  F(free)(p);

  fprintf(stderr, "--- malloc_stats output follows ---\n");
  F(malloc_stats)();
  fprintf(stderr, "--- end of malloc_stats output ---\n");

  FILE *f = tmpfile();
  CHECK(f != NULL);
  if (f) {
    r = F(malloc_info)(0, f);
    CHECK_EQ(r, 0);
    fflush(f);
    rewind(f);
    char buf[64] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    CHECK(got >= 7);
    CHECK(strncmp(buf, "<malloc", 7) == 0);
    errno = 0;
    r = F(malloc_info)(1, f);
    if (STRICT) {
      CHECK_EQ(r, -1);
      CHECK_ERRNO(EINVAL);
    } else {
      CHECK(r != 0); /* glibc 2.36 returns EINVAL itself */
    }
    fclose(f);
  }
}

/* ---- random stress in one thread -------------------------------------------------------- */
static size_t random_size(rng_t *r) {
  size_t k = rng_below(r, 1000);
  if (k < 800) return 1 + rng_below(r, 512);
  if (k < 950) return 513 + rng_below(r, 16 * KiB);
  if (k < 995) return 16 * KiB + rng_below(r, 240 * KiB);
  return 256 * KiB + rng_below(r, 768 * KiB + 1);
}

static void test_random_stress(void) {
  enum { SLOTS = 4096 };
  static struct { void *p; size_t n; uint64_t seed; } s[SLOTS];
  rng_t r;
  rng_seed(&r, 12345);
  unsigned long ops = scaled(1000000);
  unsigned long bad = 0, fails = 0;
  for (unsigned long op = 0; op < ops; op++) {
    size_t i = rng_below(&r, SLOTS);
    if (s[i].p) {
      if (!pat_check(s[i].p, s[i].n, s[i].seed, 4096)) bad++;
      if (rng_below(&r, 10) == 0) { /* realloc */
        size_t n = random_size(&r);
        void *q = F(realloc)(s[i].p, n);
        if (!q) { fails++; continue; }
        size_t keep = n < s[i].n ? n : s[i].n;
        if (s[i].n > 4096 && keep > 256) keep = 256; /* only the head was written fully */
        if (!pat_check(q, keep, s[i].seed, SIZE_MAX)) bad++;
        s[i].p = q;
        s[i].n = n;
        s[i].seed = op;
        pat_fill(q, n, op, 4096);
      } else {
        F(free)(s[i].p);
        s[i].p = NULL;
      }
    } else {
      size_t n = random_size(&r);
      void *p;
      size_t k = rng_below(&r, 20);
      if (k == 0) {
        p = F(calloc)(1, n);
        if (p && !all_bytes(p, n < 4096 ? n : 4096, 0)) bad++;
      } else if (k == 1) {
        size_t a = (size_t)16 << rng_below(&r, 9);
        p = F(aligned_alloc)(a, n);
        if (p && ((uintptr_t)p & (a - 1))) bad++;
      } else {
        p = F(malloc)(n);
      }
      if (!p) { fails++; continue; }
      if (F(malloc_usable_size)(p) < n) bad++;
      pat_fill(p, n, op, 4096);
      s[i].p = p;
      s[i].n = n;
      s[i].seed = op;
    }
  }
  for (size_t i = 0; i < SLOTS; i++)
    if (s[i].p) {
      if (!pat_check(s[i].p, s[i].n, s[i].seed, 4096)) bad++;
      F(free)(s[i].p);
      s[i].p = NULL;
    }
  CHECK_EQ(bad, 0);
  CHECK_EQ(fails, 0);
}

/* All of the above, in an order that keeps the introspection tests early. */
static void run_api_body(void) {
  test_malloc_zero_free_null();
  test_mallinfo();
  test_overflow();
  test_malloc_alignment();
  test_memalign_family();
  test_bad_alignment();
  test_valloc();
  test_usable_size();
  test_calloc_zero();
  test_realloc();
  test_realloc_large();
  test_free_sized();
  test_trim_stats_info();
  test_random_stress();
}

#endif /* AMALLOC_API_BODY_H */
