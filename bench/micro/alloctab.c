/* alloctab.c -- see alloctab.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "alloctab.h"

#include <unistd.h>

#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amalloc.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"
#define MAX_ALLOCS 12
#define MAX_EXTRA 4

static amb_alloc table[MAX_ALLOCS];
static int ntable;

/* ---- glibc ------------------------------------------------------------------------------ */
static void *glibc_aligned(size_t al, size_t n) { return aligned_alloc(al, n); }
static void glibc_free_sized(void *p, size_t n) { (void)n; free(p); }
static size_t glibc_usable(void *p) { return malloc_usable_size(p); }

/* ---- amalloc (am_* API) ----------------------------------------------------------------- */
static size_t am_usable(void *p) { return am_malloc_usable_size(p); }

/* ---- mimalloc --------------------------------------------------------------------------- */
static int (*mi_check_owned_fn)(const void *);

/* ---- jemalloc (unprefixed names from its own handle) ------------------------------------ */
static void (*je_sdallocx)(void *, size_t, int);
static int (*je_mallctl)(const char *, void *, size_t *, void *, size_t);
static void je_free_sized(void *p, size_t n) { je_sdallocx(p, n, 0); }

/* ---- tcmalloc --------------------------------------------------------------------------- */
static int (*tc_ownership)(const void *);

/* ---- extra libraries by path: C23 free_sized if exported, else free ------------------- */
static void (*extra_free[MAX_EXTRA])(void *);
static void (*extra_fsized[MAX_EXTRA])(void *, size_t);
#define EXTRA_WRAP(i) \
  static void extra_free_sized##i(void *p, size_t n) { \
    if (extra_fsized[i]) extra_fsized[i](p, n); else extra_free[i](p); \
  }
EXTRA_WRAP(0) EXTRA_WRAP(1) EXTRA_WRAP(2) EXTRA_WRAP(3)
static void (*const extra_free_sized[MAX_EXTRA])(void *, size_t) = {
  extra_free_sized0, extra_free_sized1, extra_free_sized2, extra_free_sized3};

static int wanted(const char *only, const char *name) {
  if (only == NULL || *only == 0) return 1;
  size_t n = strlen(name);
  for (const char *s = only; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == n && strncmp(s, name, n) == 0) return 1;
    if (!e) break;
    s = e + 1;
  }
  return 0;
}

static void *sym(void *h, const char *name, const char *lib, int *ok) {
  void *f = dlsym(h, name);
  if (f == NULL) {
    fprintf(stderr, "alloctab: %s: no symbol %s\n", lib, name);
    *ok = 0;
  }
  return f;
}

static void *open_lib(const char *name, const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (h == NULL) fprintf(stderr, "alloctab: %s not available (%s), skipped\n", name, dlerror());
  return h;
}

static size_t glibc_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Checks that the entry works and really reaches its allocator: glibc's counters must not
 * move when another allocator allocates (and must move for glibc), and the allocator's own
 * introspection must recognize the block where it has any. */
static int verify(const amb_alloc *a) {
  enum { N = 32 };
  void *p[N + 1];
  int is_glibc = strcmp(a->name, "glibc") == 0;
  size_t before = glibc_in_use();
  size_t am_before = am_mallinfo2().uordblks;
  uint64_t je_before = 0, je_after = 0;
  size_t sz = sizeof je_before;
  if (je_mallctl && strcmp(a->name, "jemalloc") == 0) je_mallctl("thread.allocated", &je_before, &sz, NULL, 0);
  for (int i = 0; i < N; i++) p[i] = a->malloc(1000);
  p[N] = a->malloc(256 * 1024);
  size_t after = glibc_in_use();
  size_t am_after = am_mallinfo2().uordblks;
  if (je_mallctl && strcmp(a->name, "jemalloc") == 0) je_mallctl("thread.allocated", &je_after, &sz, NULL, 0);
  int ok = 1;
  const char *why = "";
  for (int i = 0; i <= N; i++)
    if (p[i] == NULL || a->usable(p[i]) < (i < N ? 1000u : 256u * 1024)) { ok = 0; why = "usable size"; }
  if (ok && is_glibc != (after > before)) { ok = 0; why = "glibc counters"; }
  if (ok && strcmp(a->name, "amalloc") == 0 && am_after <= am_before) { ok = 0; why = "am_mallinfo2"; }
  if (ok && strcmp(a->name, "amalloc") != 0 && am_after != am_before) { ok = 0; why = "am_mallinfo2 moved"; }
  if (ok && strcmp(a->name, "mimalloc") == 0 && !mi_check_owned_fn(p[0])) { ok = 0; why = "mi_check_owned"; }
  if (ok && strcmp(a->name, "tcmalloc") == 0 && tc_ownership(p[0]) != 1) { ok = 0; why = "tc ownership"; }
  if (ok && strcmp(a->name, "jemalloc") == 0 && je_after < je_before + N * 1000) { ok = 0; why = "thread.allocated"; }
  for (int i = 0; i <= N; i++) a->free(p[i]);
  /* the other entry points, once */
  unsigned char *c = a->calloc(100, 10);
  for (int i = 0; c && i < 1000; i++) if (c[i]) { ok = 0; why = "calloc"; }
  c = a->realloc(c, 100000);
  void *al = a->aligned(4096, 8192);
  if (c == NULL || al == NULL || ((uintptr_t)al & 4095)) { ok = 0; why = "realloc/aligned"; }
  a->free(c);
  a->free(al);
  void *s = a->malloc(48);
  a->free_sized(s, 48);
  if (!ok) fprintf(stderr, "alloctab: %s failed its check (%s), skipped\n", a->name, why);
  return ok;
}

static void add(const char *only, amb_alloc a, int ok) {
  if (!ok || !wanted(only, a.name) || ntable >= MAX_ALLOCS) return;
  if (verify(&a)) table[ntable++] = a;
}

int amb_load(const char *only, amb_alloc **out) {
  ntable = 0;
  add(only, (amb_alloc){"glibc", malloc, free, calloc, realloc, glibc_aligned, glibc_free_sized,
                        glibc_usable}, 1);
  add(only, (amb_alloc){"amalloc", am_malloc, am_free, am_calloc, am_realloc, am_aligned_alloc,
                        am_free_sized, am_usable}, 1);
  void *h;
  int ok;
  if (wanted(only, "mimalloc") && (h = open_lib("mimalloc", LIBDIR "libmimalloc.so.2"))) {
    const char *l = "mimalloc";
    ok = 1;
    amb_alloc a = {"mimalloc", sym(h, "mi_malloc", l, &ok), sym(h, "mi_free", l, &ok),
                   sym(h, "mi_calloc", l, &ok), sym(h, "mi_realloc", l, &ok),
                   sym(h, "mi_aligned_alloc", l, &ok), sym(h, "mi_free_size", l, &ok),
                   sym(h, "mi_usable_size", l, &ok)};
    mi_check_owned_fn = sym(h, "mi_check_owned", l, &ok);
    add(only, a, ok);
  }
  if (wanted(only, "jemalloc") && (h = open_lib("jemalloc", LIBDIR "libjemalloc.so.2"))) {
    const char *l = "jemalloc";
    ok = 1;
    je_sdallocx = sym(h, "sdallocx", l, &ok);
    je_mallctl = sym(h, "mallctl", l, &ok);
    amb_alloc a = {"jemalloc", sym(h, "malloc", l, &ok), sym(h, "free", l, &ok),
                   sym(h, "calloc", l, &ok), sym(h, "realloc", l, &ok),
                   sym(h, "aligned_alloc", l, &ok), je_free_sized,
                   sym(h, "malloc_usable_size", l, &ok)};
    add(only, a, ok);
  }
  if (wanted(only, "tcmalloc") && (h = open_lib("tcmalloc", LIBDIR "libtcmalloc_minimal.so.4"))) {
    const char *l = "tcmalloc";
    ok = 1;
    amb_alloc a = {"tcmalloc", sym(h, "tc_malloc", l, &ok), sym(h, "tc_free", l, &ok),
                   sym(h, "tc_calloc", l, &ok), sym(h, "tc_realloc", l, &ok),
                   sym(h, "tc_memalign", l, &ok), sym(h, "tc_free_sized", l, &ok),
                   sym(h, "tc_malloc_size", l, &ok)};
    tc_ownership = sym(h, "MallocExtension_GetOwnership", l, &ok);
    add(only, a, ok);
  }
  /* AMB_EXTRA=name=/path.so,... : unprefixed names from the library's own handle */
  const char *extra = getenv("AMB_EXTRA");
  static char names[MAX_EXTRA][64];
  int nextra = 0;
  while (extra && *extra && nextra < MAX_EXTRA) {
    const char *e = strchr(extra, ',');
    size_t len = e ? (size_t)(e - extra) : strlen(extra);
    char item[512];
    snprintf(item, sizeof item, "%.*s", (int)len, extra);
    extra = e ? e + 1 : NULL;
    char *eq = strchr(item, '=');
    if (!eq) continue;
    *eq = 0;
    snprintf(names[nextra], sizeof names[nextra], "%.63s", item);
    if (!wanted(only, names[nextra]) || !(h = open_lib(names[nextra], eq + 1))) continue;
    ok = 1;
    const char *l = names[nextra];
    extra_free[nextra] = sym(h, "free", l, &ok);
    extra_fsized[nextra] = dlsym(h, "free_sized");
    amb_alloc a = {names[nextra], sym(h, "malloc", l, &ok), extra_free[nextra],
                   sym(h, "calloc", l, &ok), sym(h, "realloc", l, &ok),
                   sym(h, "aligned_alloc", l, &ok), extra_free_sized[nextra],
                   sym(h, "malloc_usable_size", l, &ok)};
    add(only, a, ok);
    nextra++;
  }
  *out = table;
  return ntable;
}

const amb_alloc *amb_find(const char *name) {
  for (int i = 0; i < ntable; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

void amb_reexec_with_static_tls(char **argv) {
  const char *t = getenv("GLIBC_TUNABLES");
  if (t && strstr(t, "optional_static_tls")) return;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%sglibc.rtld.optional_static_tls=16384", t ? t : "", t ? ":" : "");
  setenv("GLIBC_TUNABLES", buf, 1);
  execv("/proc/self/exe", argv);
  /* if that fails, go on: jemalloc may then fail to load and be skipped */
}
