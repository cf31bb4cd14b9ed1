/* test.h -- a tiny test harness for the amalloc test programs (C11 and C++17).
 *
 *   test_init("name");             once, at the start of main()
 *   CHECK(expr);                   records a failure (file:line and the expression), keeps going;
 *                                  evaluates to the truth value of expr
 *   CHECK_EQ(a, b) / CHECK_ERRNO(e) / CHECK_ALIGNED(p, a)
 *                                  the same, printing the values on failure
 *   CHECK_AMALLOC_ACTIVE();        the process's malloc must be amalloc's (skipped with
 *                                  AMALLOC_TEST_EXPECT_GLIBC=1, to validate the tests on glibc)
 *   return test_summary();         prints "<name>: N checks, M failed"; 0 if none failed, else 1
 *
 * Environment:
 *   AMALLOC_TEST_EXPECT_GLIBC=1    the tests run against glibc's malloc: skip the "amalloc is in
 *                                  force" checks and the few checks where glibc 2.36 knowingly
 *                                  differs from amalloc's contract (see expect_glibc()).
 *   AMALLOC_TEST_QUICK=1           cut the workloads about 10x (valgrind, sanitizers).
 *
 * The counters are updated atomically, so CHECK may be used from any thread.
 */
#ifndef AMALLOC_TEST_H
#define AMALLOC_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif
/* Defined by libamalloc (the overriding builds and libamalloc-api.a); weak so the tests also
 * link and run without it (LD_PRELOAD builds, glibc validation). */
extern void *am_malloc(size_t) __attribute__((weak));
extern int am_version(void) __attribute__((weak));
#ifdef __cplusplus
}
#endif

#define T_UNUSED __attribute__((unused))

static const char *t_name = "test";
static unsigned long t_checks;
static unsigned long t_failed;
static unsigned long t_printed;
enum { T_MAX_PRINTED = 200 };

static T_UNUSED void test_init(const char *name) {
  t_name = name;
  /* stderr is unbuffered; make stdout line buffered so the output interleaves sensibly */
  setvbuf(stdout, NULL, _IOLBF, 0);
}

static T_UNUSED bool t_check(bool ok, const char *expr, const char *file, int line) {
  __atomic_add_fetch(&t_checks, 1, __ATOMIC_RELAXED);
  if (!ok) {
    __atomic_add_fetch(&t_failed, 1, __ATOMIC_RELAXED);
    unsigned long n = __atomic_add_fetch(&t_printed, 1, __ATOMIC_RELAXED);
    if (n <= T_MAX_PRINTED)
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    else if (n == T_MAX_PRINTED + 1)
      fprintf(stderr, "%s: too many failures, not printing more\n", t_name);
  }
  return ok;
}

/* Comparison checks: each operand is evaluated exactly once. */
enum { T_EQ, T_GE, T_ALIGNED };
static T_UNUSED bool t_check_cmp(int op, uintmax_t a, uintmax_t b, const char *expr,
                                 const char *file, int line) {
  bool ok = op == T_EQ ? a == b : op == T_GE ? a >= b : (a & (b - 1)) == 0;
  if (!t_check(ok, expr, file, line) &&
      __atomic_load_n(&t_printed, __ATOMIC_RELAXED) <= T_MAX_PRINTED)
    fprintf(stderr, "    values: %ju (0x%jx) vs %ju (0x%jx)\n", a, a, b, b);
  return ok;
}

/* A note on stderr, e.g. for a skipped check. */
static T_UNUSED void test_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: note: ", t_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Runs fn(arg) in a forked child (which then exits 0); returns the child's wait status, with
 * what it wrote to stderr in err (at most cap - 1 bytes, NUL-terminated). For checks of aborts
 * and faults. */
static T_UNUSED int test_in_child(void (*fn)(void *), void *arg, char *err, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fds[0], err + n, cap - 1 - n)) > 0) n += (size_t)r;
  err[n] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}
static T_UNUSED bool test_died_of(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

#define CHECK(expr) t_check((expr) ? true : false, #expr, __FILE__, __LINE__)
#define CHECK_EQ(a, b)                                                                        \
  t_check_cmp(T_EQ, (uintmax_t)(a), (uintmax_t)(b), #a " == " #b, __FILE__, __LINE__)
#define CHECK_GE(a, b)                                                                        \
  t_check_cmp(T_GE, (uintmax_t)(a), (uintmax_t)(b), #a " >= " #b, __FILE__, __LINE__)
/* Reads errno once, before anything else can change it. */
#define CHECK_ERRNO(expected)                                                                 \
  do {                                                                                        \
    int t_errno_ = errno;                                                                     \
    t_check_cmp(T_EQ, (uintmax_t)t_errno_, (uintmax_t)(expected), "errno == " #expected,      \
                __FILE__, __LINE__);                                                          \
  } while (0)
#define CHECK_ALIGNED(p, a)                                                                   \
  t_check_cmp(T_ALIGNED, (uintmax_t)(uintptr_t)(p), (uintmax_t)(a), #p " aligned to " #a,     \
              __FILE__, __LINE__)

static T_UNUSED bool env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

/* Running against glibc on purpose (validation of the tests themselves). */
static T_UNUSED bool expect_glibc(void) { return env_flag("AMALLOC_TEST_EXPECT_GLIBC"); }
/* Reduced workload (valgrind, sanitizers). */
static T_UNUSED bool test_quick(void) { return env_flag("AMALLOC_TEST_QUICK"); }
/* n, or n/10 (at least 1) in quick mode */
static T_UNUSED unsigned long scaled(unsigned long n) {
  if (!test_quick()) return n;
  return n / 10 ? n / 10 : 1;
}

/* True when the process's malloc is amalloc's. libamalloc defines malloc as an alias of
 * am_malloc, so both names have the same address when it is in force (dynamic link, LD_PRELOAD,
 * static link). The dlsym comparison is a fallback for when the weak reference to am_malloc
 * could not be bound by the dynamic linker (non-PIE executables). */
static T_UNUSED bool amalloc_active(void) {
  void *(*volatile m)(size_t) = &malloc; /* volatile: no folding of the comparison */
  if (am_malloc && (void *)m == (void *)am_malloc) return true;
  void *dm = dlsym(RTLD_DEFAULT, "malloc");
  void *da = dlsym(RTLD_DEFAULT, "am_malloc");
  return dm && da && dm == da;
}

#define CHECK_AMALLOC_ACTIVE()                                                                \
  do {                                                                                        \
    if (expect_glibc())                                                                       \
      test_note("AMALLOC_TEST_EXPECT_GLIBC set: not checking that amalloc is in force");      \
    else if (!CHECK(amalloc_active()))                                                        \
      fprintf(stderr, "%s: malloc is not amalloc's (am_malloc=%p): the override did not "     \
              "happen\n", t_name, (void *)(uintptr_t)am_malloc);                              \
  } while (0)

static T_UNUSED int test_summary(void) {
  unsigned long c = __atomic_load_n(&t_checks, __ATOMIC_SEQ_CST);
  unsigned long f = __atomic_load_n(&t_failed, __ATOMIC_SEQ_CST);
  printf("%s: %lu checks, %lu failed\n", t_name, c, f);
  fflush(stdout);
  return f ? 1 : 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

/* xorshift64*: a deterministic PRNG. */
typedef struct { uint64_t s; } rng_t;
static T_UNUSED void rng_seed(rng_t *r, uint64_t seed) {
  r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  if (!r->s) r->s = 1;
}
static T_UNUSED uint64_t rng_next(rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}
/* uniform in [0, n) (n > 0; slightly biased, fine for tests) */
static T_UNUSED size_t rng_below(rng_t *r, size_t n) { return (size_t)(rng_next(r) % n); }

/* Hide a value from the optimiser (sizes such as SIZE_MAX, pointers whose use must stay). */
static inline T_UNUSED size_t opaque_size(size_t x) {
  __asm__ volatile("" : "+r"(x));
  return x;
}
static inline T_UNUSED void *opaque_ptr(void *p) {
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

/* Fill / verify a byte pattern derived from seed. Blocks up to `full` bytes are filled
 * completely; bigger ones only at the head, the tail and one word every 512 bytes (enough to
 * catch overlapping blocks without making the tests memory-bandwidth bound). */
static inline T_UNUSED uint8_t pat_byte(uint64_t seed, size_t i) {
  return (uint8_t)((seed * 0x9E3779B1u) >> 24 ^ (i * 131u) ^ (i >> 8));
}
static T_UNUSED void pat_fill(void *p, size_t n, uint64_t seed, size_t full) {
  uint8_t *b = (uint8_t *)p;
  if (n <= full || n < 1024) {
    for (size_t i = 0; i < n; i++) b[i] = pat_byte(seed, i);
    return;
  }
  for (size_t i = 0; i < 256; i++) b[i] = pat_byte(seed, i);
  for (size_t i = 256; i + 8 <= n - 256; i += 512)
    for (size_t j = i; j < i + 8; j++) b[j] = pat_byte(seed, j);
  for (size_t i = n - 256; i < n; i++) b[i] = pat_byte(seed, i);
}
static T_UNUSED bool pat_check(const void *p, size_t n, uint64_t seed, size_t full) {
  const uint8_t *b = (const uint8_t *)p;
  if (n <= full || n < 1024) {
    for (size_t i = 0; i < n; i++)
      if (b[i] != pat_byte(seed, i)) return false;
    return true;
  }
  for (size_t i = 0; i < 256; i++)
    if (b[i] != pat_byte(seed, i)) return false;
  for (size_t i = 256; i + 8 <= n - 256; i += 512)
    for (size_t j = i; j < i + 8; j++)
      if (b[j] != pat_byte(seed, j)) return false;
  for (size_t i = n - 256; i < n; i++)
    if (b[i] != pat_byte(seed, i)) return false;
  return true;
}

/* Word pattern: byte i of a block is byte (i % 8) of wpat_word(seed, i / 8). Any prefix of a
 * filled block can be checked (realloc tests). p must be 8-aligned. */
static inline T_UNUSED uint64_t wpat_word(uint64_t seed, size_t w) {
  uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)w * 0xD6E8FEB86659FD93ull);
  return x ^ (x >> 29);
}
static T_UNUSED void wpat_fill(void *p, size_t n, uint64_t seed) {
  uint64_t *w = (uint64_t *)p;
  size_t nw = n / 8;
  for (size_t i = 0; i < nw; i++) w[i] = wpat_word(seed, i);
  if (n % 8) {
    uint64_t v = wpat_word(seed, nw);
    memcpy((uint8_t *)p + nw * 8, &v, n % 8); /* little-endian byte order either way */
  }
}
static T_UNUSED bool wpat_check(const void *p, size_t n, uint64_t seed) {
  const uint64_t *w = (const uint64_t *)p;
  size_t nw = n / 8;
  for (size_t i = 0; i < nw; i++)
    if (w[i] != wpat_word(seed, i)) return false;
  if (n % 8) {
    uint64_t v = wpat_word(seed, nw);
    if (memcmp((const uint8_t *)p + nw * 8, &v, n % 8) != 0) return false;
  }
  return true;
}

/* All n bytes at p equal c. */
static T_UNUSED bool all_bytes(const void *p, size_t n, uint8_t c) {
  const uint8_t *b = (const uint8_t *)p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != c) return false;
  return true;
}

/* A field of /proc/self/smaps_rollup in KiB (e.g. "AnonHugePages", "LazyFree"), 0 if unknown. */
static T_UNUSED size_t smaps_kib(const char *field) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f) return 0;
  char line[256];
  size_t kib = 0, len = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0 && line[len] == ':') kib = (size_t)strtoull(line + len + 1, NULL, 10);
  fclose(f);
  return kib;
}

/* VmRSS of this process in KiB (from /proc/self/status), 0 if unknown. */
static T_UNUSED size_t vm_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = (size_t)strtoull(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

#endif /* AMALLOC_TEST_H */
