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
    if (am_parse_option(d, s, &v)) am_g.options[i] = v;
    else am_option_warn(d->name, s, d->kind == AM_OPT_BOOL ? "is not 0 or 1"
                                    : d->kind == AM_OPT_PURGE_KIND ? "is not dontneed or free"
                                    : "is not a number in range");
  }
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
