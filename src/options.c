/* options.c -- run-time options, read once from the environment.
 *
 * One table (AM_OPTIONS below): name, default, smallest and largest value, and the kind of
 * value. AMALLOC_<NAME> overrides the default at start-up; setuid and setgid programs ignore
 * the environment (secure_getenv). Values:
 *   bool   1/0, yes/no, true/false, on/off (any case)
 *   int    a decimal number; sizes may end in k, m or g (KiB, MiB, GiB)
 *   enum   one of the names listed in the table
 * A bad value prints one line `amalloc: warning: ...` and keeps the default. AMALLOC_VERBOSE=1
 * prints every option in force. Programs read and change options with am_option_get/set.
 *
 * Defaults, and why:
 *   PURGE_DELAY_MS 25    long enough that a program which frees and at once allocates again
 *                        (a request loop) reuses its pages instead of paying madvise plus fresh
 *                        page faults; short enough that memory freed in one phase is back with
 *                        the OS before the next phase touches other memory, which sets the peak
 *                        RSS (2026-11-26, 3 interleaved runs, 100 -> 25 ms: workloads' peak RSS
 *                        1.036 -> 1.004 x glibc's). The cost: a program that swings between
 *                        phases of different block sizes faults memory in again each time (the
 *                        frag workload: 0.43 -> 0.62 x glibc's time).
 *   PURGE_DELAY_MAX_MS 1000   the delay grows up to this when purged memory is wanted
 *                        again soon after its purge (purge.c): a program that cycles through
 *                        the same memory stops paying page faults for it, and memory still goes
 *                        back within a second of its last use (mimalloc v3 keeps freed memory
 *                        1 s; the memory target is RSS back within 3 s).
 *   PURGE dontneed       MADV_DONTNEED makes RSS fall at once (MADV_FREE only under pressure,
 *                        which users read as a leak).
 *   THP 0, HUGETLB 0, POPULATE 0
 *                        opt-in tunings: huge pages cost memory on sparse heaps.
 *   LARGE_THRESHOLD 256 KiB   the largest size class.
 */
#include "internal.h"

#include <stdlib.h>
#include <limits.h>
#include <strings.h>

typedef enum { AM_OPT_BOOL, AM_OPT_INT, AM_OPT_SIZE, AM_OPT_PURGE_KIND } am_opt_kind_t;

typedef struct {
  const char *name;                   /* without the AMALLOC_ prefix */
  long dflt;
  long min, max;
  am_opt_kind_t kind;
} am_option_desc_t;

static const am_option_desc_t am_option_desc[AM_OPTION_COUNT] = {
  [AM_OPTION_PURGE_DELAY_MS] = {"PURGE_DELAY_MS", 25, -1, 3600 * 1000, AM_OPT_INT},
  [AM_OPTION_PURGE] = {"PURGE", 0, 0, 1, AM_OPT_PURGE_KIND},
  [AM_OPTION_THP] = {"THP", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_HUGETLB] = {"HUGETLB", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_POPULATE] = {"POPULATE", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_LARGE_THRESHOLD] = {"LARGE_THRESHOLD", (long)AM_MEDIUM_MAX, 1024, (long)AM_MEDIUM_MAX, AM_OPT_SIZE},
  [AM_OPTION_SHOW_STATS] = {"SHOW_STATS", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_VERBOSE] = {"VERBOSE", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_PURGE_THREAD] = {"PURGE_THREAD", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_PURGE_DELAY_MAX_MS] = {"PURGE_DELAY_MAX_MS", 1000, 0, 3600 * 1000, AM_OPT_INT},
  [AM_OPTION_PROF] = {"PROF", 0, 0, 1, AM_OPT_BOOL},
  [AM_OPTION_PROF_SAMPLE] = {"PROF_SAMPLE", 512 * 1024, 1, 1L << 40, AM_OPT_SIZE},
  [AM_OPTION_PROF_LEAKS] = {"PROF_LEAKS", 0, 0, 1, AM_OPT_BOOL},
};

/* AMALLOC_<NAME> was set (to a valid value): glibc's settings from the environment do not
 * override it. Written once by _am_options_init. */
static bool am_option_from_env[AM_OPTION_COUNT];

static void am_glibc_env_init(void);

static bool am_parse_option(const am_option_desc_t *d, const char *s, long *out) {
  switch (d->kind) {
  case AM_OPT_BOOL:
    if (!strcasecmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "on")) {
      *out = 1;
      return true;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "off")) {
      *out = 0;
      return true;
    }
    return false;
  case AM_OPT_PURGE_KIND:
    if (!strcasecmp(s, "dontneed")) *out = 0;
    else if (!strcasecmp(s, "free")) *out = 1;
    else return false;
    return true;
  case AM_OPT_INT:
  case AM_OPT_SIZE: {
    const char *p = s;
    bool neg = false;
    if (*p == '-') {
      neg = true;
      p++;
    }
    if (*p < '0' || *p > '9') return false;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
      if (v > (LONG_MAX - 9) / 10) return false;
      v = v * 10 + (*p++ - '0');
    }
    if (d->kind == AM_OPT_SIZE && *p != 0) {
      long mul = (*p == 'k' || *p == 'K') ? 1024L : (*p == 'm' || *p == 'M') ? 1024L * 1024
                 : (*p == 'g' || *p == 'G') ? 1024L * 1024 * 1024 : 0;
      if (mul == 0 || v > LONG_MAX / mul) return false;
      v *= mul;
      p++;
      if (*p == 'b' || *p == 'B') p++;
    }
    if (*p != 0) return false;
    *out = neg ? -v : v;
    return *out >= d->min && *out <= d->max;
  }
  }
  return false;
}

static void am_option_warn(const char *name, const char *value, const char *why) {
  char buf[256];
  size_t len = 0;
  const char *parts[] = {"AMALLOC_", name, "=", value, " ", why, "; ignored"};
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    for (const char *c = parts[i]; *c && len < sizeof(buf) - 1; c++) buf[len++] = *c;
  buf[len] = 0;
  _am_message("warning: ", buf, NULL);
}

static void am_option_show(const am_option_desc_t *d, long v) {
  char buf[128];
  size_t len = 0;
  for (const char *c = d->name; *c; c++) buf[len++] = *c;
  buf[len++] = '=';
  if (d->kind == AM_OPT_PURGE_KIND) {
    for (const char *c = v ? "free" : "dontneed"; *c; c++) buf[len++] = *c;
  } else {
    if (v < 0) {
      buf[len++] = '-';
      v = -v;
    }
    len += _am_fmt_size(buf + len, sizeof(buf) - len - 1, (size_t)v);
  }
  buf[len] = 0;
  _am_message("option ", buf, NULL);
}

/* Reads every AMALLOC_<NAME>; called once from _am_process_init (no allocation). */
AM_INTERNAL void _am_options_init(void) {
  for (size_t i = 0; i < AM_OPTION_COUNT; i++) {
    const am_option_desc_t *d = &am_option_desc[i];
    am_g.options[i] = d->dflt;
    char var[64] = "AMALLOC_";
    size_t len = 8;
    for (const char *c = d->name; *c && len < sizeof(var) - 1; c++) var[len++] = *c;
    var[len] = 0;
    const char *s = secure_getenv(var);
    if (s == NULL) continue;
    long v;
    if (am_parse_option(d, s, &v)) {
      am_g.options[i] = v;
      am_option_from_env[i] = true;
    } else am_option_warn(d->name, s, d->kind == AM_OPT_BOOL ? "is not 0 or 1"
                                    : d->kind == AM_OPT_PURGE_KIND ? "is not dontneed or free"
                                    : "is not a number in range");
  }
  am_glibc_env_init();
  if (am_g.options[AM_OPTION_VERBOSE]) {
    for (size_t i = 0; i < AM_OPTION_COUNT; i++) am_option_show(&am_option_desc[i], am_g.options[i]);
  }
}

AM_EXPORT long am_option_get(am_option_t option) {
  if ((unsigned)option >= AM_OPTION_COUNT) return 0;
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  return am_g.options[option];
}

AM_EXPORT int am_option_set(am_option_t option, long value) {
  if ((unsigned)option >= AM_OPTION_COUNT) return EINVAL;
  const am_option_desc_t *d = &am_option_desc[option];
  if (value < d->min || value > d->max) return EINVAL;
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  am_g.options[option] = value;
  if (option == AM_OPTION_PROF || option == AM_OPTION_PROF_SAMPLE) _am_prof_options_changed();
  return 0;
}

/* ---- glibc's malloc settings: mallopt, MALLOC_*_ and GLIBC_TUNABLES -------------------------
 *
 * Programs and users tune glibc's malloc with mallopt(3) and the environment, and keep those
 * settings when they switch allocators. amalloc gives each the meaning it has here, and returns
 * what glibc's mallopt returns (glibc 2.36, malloc/malloc.c __libc_mallopt), so a program that
 * checks the result sees what it would see with glibc:
 *
 *   M_MMAP_THRESHOLD   MALLOC_MMAP_THRESHOLD_   glibc.malloc.mmap_threshold
 *        the large-block threshold (AMALLOC_LARGE_THRESHOLD: blocks above it get a mapping of
 *        their own), clamped to amalloc's range 1 KiB .. 256 KiB (a negative value is a huge
 *        size to glibc: 256 KiB). Returns 1, as glibc 2.36 does for any value.
 *   M_TRIM_THRESHOLD   MALLOC_TRIM_THRESHOLD_   glibc.malloc.trim_threshold
 *        the purge policy: -1 (any negative value, or a size of 2^62 and more: glibc's "never
 *        trim") sets AMALLOC_PURGE_DELAY_MS=-1, free memory is kept until malloc_trim; 0 sets
 *        AMALLOC_PURGE_DELAY_MS=0, free memory goes back at once. Other sizes are ignored:
 *        amalloc returns memory by time, not by the size of a free top. Returns 1.
 *   glibc.malloc.hugetlb   1: AMALLOC_THP=1 (glibc: madvise transparent huge pages); 2:
 *        AMALLOC_HUGETLB=1 (glibc: MAP_HUGETLB pages); 0: nothing.
 *   M_TOP_PAD, M_PERTURB, M_ARENA_MAX, M_ARENA_TEST, M_MMAP_MAX, M_MXFAST, M_CHECK_ACTION, the
 *        tcache tunables, MALLOC_CHECK_, and numbers glibc does not know: ignored, with glibc's
 *        return value (M_MXFAST above 160 bytes: 0; everything else 1). amalloc has no heap top
 *        to pad, no arenas (a heap per thread), no fast bins or tcache; it does not fill blocks
 *        (M_PERTURB: doing so would put a test on malloc's and free's fast paths; the secure
 *        build fills freed blocks, the valgrind build finds reads of uninitialised memory).
 *
 * Order: the MALLOC_*_ variables, then GLIBC_TUNABLES (which glibc also lets win), and an
 * AMALLOC_* variable that is set wins over both; a mallopt call later on applies as made.
 * With AMALLOC_VERBOSE=1 each setting found prints one line "amalloc: glibc setting SOURCE:
 * WHAT BECAME OF IT". Read at start-up from _am_options_init: no allocation, no stdio. */

/* glibc's parameter numbers (malloc.h) */
enum {
  AM_GLIBC_M_MXFAST = 1, AM_GLIBC_M_TRIM_THRESHOLD = -1, AM_GLIBC_M_TOP_PAD = -2,
  AM_GLIBC_M_MMAP_THRESHOLD = -3, AM_GLIBC_M_MMAP_MAX = -4, AM_GLIBC_M_CHECK_ACTION = -5,
  AM_GLIBC_M_PERTURB = -6, AM_GLIBC_M_ARENA_TEST = -7, AM_GLIBC_M_ARENA_MAX = -8,
  AM_GLIBC_HUGETLB = 1000,             /* not a mallopt parameter: glibc.malloc.hugetlb only */
  AM_GLIBC_IGNORED = 1001,             /* a tunable amalloc has no use for */
};
#define AM_GLIBC_MXFAST_MAX 160ul                              /* glibc: MAX_FAST_SIZE */

/* v in decimal, with its sign */
static void am_gl_num(am_line_t *l, long v) {
  if (v < 0) am_line_str(l, "-");
  am_line_num(l, v < 0 ? 0 - (size_t)v : (size_t)v, 0);
}
static void am_gl_bytes(am_line_t *l, long v) {
  if (v >= 1024 && v % 1024 == 0) {
    am_gl_num(l, v / 1024);
    am_line_str(l, " KiB");
  } else {
    am_gl_num(l, v);
    am_line_str(l, " bytes");
  }
}

/* Sets option `o` to `v` for a glibc setting, unless it came from the environment and
 * AMALLOC_<NAME> was set; says which in the line. */
static void am_glibc_set(am_line_t *l, bool from_env, am_option_t o, long v) {
  if (from_env && am_option_from_env[o]) {
    am_line_str(l, " (AMALLOC_");
    am_line_str(l, am_option_desc[o].name);
    am_line_str(l, " is set: it wins)");
    return;
  }
  am_g.options[o] = v;
  am_line_str(l, " (AMALLOC_");
  am_line_str(l, am_option_desc[o].name);
  am_line_str(l, "=");
  am_gl_num(l, v);
  am_line_str(l, ")");
}

/* Applies glibc setting `param` = `value` (size_t values of 2^63 and more arrive negative) and
 * returns what glibc's mallopt returns for it; `l` holds the verbose line's start. */
static int am_glibc_apply(am_line_t *l, bool from_env, int param, long value) {
  switch (param) {
  case AM_GLIBC_M_MMAP_THRESHOLD: {
    const am_option_desc_t *d = &am_option_desc[AM_OPTION_LARGE_THRESHOLD];
    long t = value < 0 || value > d->max ? d->max : value < d->min ? d->min : value;
    am_line_str(l, "large-block threshold ");
    am_gl_bytes(l, t);
    if (t != value) am_line_str(l, t == d->max && value != d->max ? ", amalloc's largest" : ", amalloc's smallest");
    am_glibc_set(l, from_env, AM_OPTION_LARGE_THRESHOLD, t);
    return 1;
  }
  case AM_GLIBC_M_TRIM_THRESHOLD:
    if (value < 0 || value >= (1L << 62)) {
      am_line_str(l, "never purge: free memory is kept until malloc_trim");
      am_glibc_set(l, from_env, AM_OPTION_PURGE_DELAY_MS, -1);
    } else if (value == 0) {
      am_line_str(l, "purge at once");
      am_glibc_set(l, from_env, AM_OPTION_PURGE_DELAY_MS, 0);
    } else {
      am_line_str(l, "ignored: amalloc returns free memory after a delay (AMALLOC_PURGE_DELAY_MS), "
                   "not by size; only 0 and -1 map");
    }
    return 1;
  case AM_GLIBC_HUGETLB:
    if (value == 1) {
      am_line_str(l, "transparent huge pages");
      am_glibc_set(l, from_env, AM_OPTION_THP, 1);
    } else if (value == 2) {
      am_line_str(l, "huge pages from MAP_HUGETLB");
      am_glibc_set(l, from_env, AM_OPTION_HUGETLB, 1);
    } else {
      am_line_str(l, "ignored");
    }
    return 1;
  case AM_GLIBC_M_TOP_PAD:
    am_line_str(l, "ignored: amalloc maps whole segments, there is no heap top to pad");
    return 1;
  case AM_GLIBC_M_PERTURB:
    am_line_str(l, "ignored: amalloc does not fill new or freed blocks (the secure build fills "
                 "freed ones)");
    return 1;
  case AM_GLIBC_M_ARENA_MAX:
  case AM_GLIBC_M_ARENA_TEST:
    am_line_str(l, "ignored: amalloc has no arenas (a heap per thread)");
    return 1;
  case AM_GLIBC_M_MXFAST:
    am_line_str(l, "ignored: amalloc has no fast bins");
    return value < 0 || (unsigned long)value > AM_GLIBC_MXFAST_MAX ? 0 : 1;
  case AM_GLIBC_M_MMAP_MAX:
  case AM_GLIBC_M_CHECK_ACTION:
  case AM_GLIBC_IGNORED:
    am_line_str(l, "ignored");
    return 1;
  default:
    am_line_str(l, "ignored: not a glibc parameter");
    return 1;
  }
}

static void am_glibc_report(am_line_t *l) {
  if (am_g.options[AM_OPTION_VERBOSE]) _am_message("glibc setting ", l->buf, NULL);
}

/* glibc's number syntax for these settings: decimal, 0x hexadecimal or 0 octal, an optional
 * '-' (sizes of 2^63 and more, glibc's -1, come out negative). False if `s` is not a number. */
static bool am_glibc_parse(const char *s, size_t n, long *out) {
  size_t i = 0;
  bool neg = false;
  if (i < n && s[i] == '-') {
    neg = true;
    i++;
  }
  unsigned base = 10;
  if (i + 1 < n && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16;
    i += 2;
  } else if (i + 1 < n && s[i] == '0') {
    base = 8;
  }
  if (i >= n) return false;
  unsigned long v = 0;
  for (; i < n; i++) {
    unsigned c = (unsigned char)s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    if (d >= base) return false;
    if (v > (~0ul - d) / base) v = ~0ul;  /* saturates: "huge" */
    else v = v * base + d;
  }
  *out = (long)(neg ? 0 - v : v);
  return true;
}

/* One setting found in the environment: "SOURCE" is the variable (or tunable) as written. */
static void am_glibc_env_one(const char *source, size_t source_len, const char *val, size_t n,
                             int param) {
  am_line_t l = {.len = 0};
  size_t keep = source_len < sizeof(l.buf) - 80 ? source_len : sizeof(l.buf) - 80;
  am_line_mem(&l, source, keep);
  am_line_str(&l, "=");
  am_line_mem(&l, val, n < 24 ? n : 24);
  am_line_str(&l, ": ");
  long v;
  if (!am_glibc_parse(val, n, &v)) am_line_str(&l, "not a number: ignored");
  else am_glibc_apply(&l, true, param, v);
  am_glibc_report(&l);
}

static bool am_str_eq(const char *a, size_t n, const char *b) {
  size_t m = strlen(b);
  return n == m && memcmp(a, b, n) == 0;
}

static void am_glibc_env_init(void) {
  static const struct { const char *var; int param; } vars[] = {
    {"MALLOC_MMAP_THRESHOLD_", AM_GLIBC_M_MMAP_THRESHOLD},
    {"MALLOC_TRIM_THRESHOLD_", AM_GLIBC_M_TRIM_THRESHOLD},
    {"MALLOC_TOP_PAD_", AM_GLIBC_M_TOP_PAD},
    {"MALLOC_PERTURB_", AM_GLIBC_M_PERTURB},
    {"MALLOC_MMAP_MAX_", AM_GLIBC_M_MMAP_MAX},
    {"MALLOC_ARENA_MAX", AM_GLIBC_M_ARENA_MAX},
    {"MALLOC_ARENA_TEST", AM_GLIBC_M_ARENA_TEST},
    {"MALLOC_CHECK_", AM_GLIBC_M_CHECK_ACTION},
  };
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
    const char *s = secure_getenv(vars[i].var);
    if (s != NULL) am_glibc_env_one(vars[i].var, strlen(vars[i].var), s, strlen(s), vars[i].param);
  }
  /* GLIBC_TUNABLES=name=value:name=value...; only glibc.malloc.* concern malloc */
  static const struct { const char *name; int param; } tunables[] = {
    {"mmap_threshold", AM_GLIBC_M_MMAP_THRESHOLD},
    {"trim_threshold", AM_GLIBC_M_TRIM_THRESHOLD},
    {"top_pad", AM_GLIBC_M_TOP_PAD},
    {"perturb", AM_GLIBC_M_PERTURB},
    {"mmap_max", AM_GLIBC_M_MMAP_MAX},
    {"arena_max", AM_GLIBC_M_ARENA_MAX},
    {"arena_test", AM_GLIBC_M_ARENA_TEST},
    {"check", AM_GLIBC_M_CHECK_ACTION},
    {"mxfast", AM_GLIBC_M_MXFAST},
    {"hugetlb", AM_GLIBC_HUGETLB},
  };
  const char *t = secure_getenv("GLIBC_TUNABLES");
  if (t == NULL) return;
  static const char prefix[] = "glibc.malloc.";
  const size_t plen = sizeof(prefix) - 1;
  while (*t) {
    const char *end = t;
    while (*end && *end != ':') end++;
    const char *eq = t;
    while (eq < end && *eq != '=') eq++;
    if (eq < end && (size_t)(eq - t) > plen && memcmp(t, prefix, plen) == 0) {
      const char *name = t + plen;
      size_t nlen = (size_t)(eq - name);
      int param = AM_GLIBC_IGNORED;
      for (size_t i = 0; i < sizeof(tunables) / sizeof(tunables[0]); i++)
        if (am_str_eq(name, nlen, tunables[i].name)) param = tunables[i].param;
      am_glibc_env_one(t, (size_t)(eq - t), eq + 1, (size_t)(end - eq - 1), param);
    }
    t = *end ? end + 1 : end;
  }
}

/* mallopt(3): glibc's meaning where amalloc has one, glibc's return value always. */
AM_EXPORT int am_mallopt(int param, int value) {
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) _am_process_init();
  static const struct { int param; const char *name; } names[] = {
    {AM_GLIBC_M_MXFAST, "M_MXFAST"}, {AM_GLIBC_M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD"},
    {AM_GLIBC_M_TOP_PAD, "M_TOP_PAD"}, {AM_GLIBC_M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD"},
    {AM_GLIBC_M_MMAP_MAX, "M_MMAP_MAX"}, {AM_GLIBC_M_CHECK_ACTION, "M_CHECK_ACTION"},
    {AM_GLIBC_M_PERTURB, "M_PERTURB"}, {AM_GLIBC_M_ARENA_TEST, "M_ARENA_TEST"},
    {AM_GLIBC_M_ARENA_MAX, "M_ARENA_MAX"}, {2, "M_NLBLKS"}, {3, "M_GRAIN"}, {4, "M_KEEP"},
  };
  am_line_t l = {.len = 0};
  am_line_str(&l, "mallopt(");
  const char *name = NULL;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (names[i].param == param) name = names[i].name;
  if (name != NULL) am_line_str(&l, name);
  else am_gl_num(&l, param);
  am_line_str(&l, ", ");
  am_gl_num(&l, value);
  am_line_str(&l, "): ");
  /* glibc takes the value as a size_t for the thresholds: -1 is "huge" there too */
  int param_known = param == AM_GLIBC_HUGETLB || param == AM_GLIBC_IGNORED ? 0
                    : param >= 2 && param <= 4 ? AM_GLIBC_IGNORED    /* M_NLBLKS, M_GRAIN, M_KEEP */
                    : param;
  int r = am_glibc_apply(&l, false, param_known, value);
  am_line_str(&l, r ? " -> 1" : " -> 0");
  am_glibc_report(&l);
  return r;
}
