/* test/prof/synth.c -- writes a synthetic heap profile for the amalloc-prof tests (check.py).
 *
 *   synth OUT.heap PERIOD NAME:LIVE_N:LIVE_BYTES:ALLOC_N:ALLOC_BYTES ...
 *
 * The profile has the contract's format (gperftools' heap profile, heap_v2/PERIOD), with the
 * counts given on the command line and stacks made of this process's real return addresses,
 * taken with __builtin_return_address(0) in known functions, and this process's own
 * /proc/self/maps, so amalloc-prof symbolises them as it would an allocator's profile. Built
 * at -O0 with -g (test/meson.build) so every function below exists and has line numbers.
 *
 * Stack NAMEs (innermost frame first, each then <- build <- main <- the C library; the site is
 * what the table should show):
 *   a      site_a                                           site: site_a
 *   b      site_b <- mid_b                                  site: site_b
 *   wrap   libc's malloc <- site_c                          site: site_c (malloc is dropped)
 *   lib    lib_inner <- lib_site (libsynth.so)              site: lib_inner
 *   cxx    ns::Box<int>::grow <- cxx_site (synth_cxx.cc)    site: ns::Box<int>::grow(...)
 *   deep   deep x 125 (128 addresses in all)                site: deep
 *   wild   libamalloc (fake) <- libgone.so.1 (a missing file) <- [vdso] <- an unmapped address
 *                                                           site: libgone.so.1+0x1100
 *   none   no address at all                               site: [unknown]
 * Two fake mappings are appended to the maps for `wild`: /nonexistent/libamalloc.so at
 * 0x10000 (its frames are dropped) and /nonexistent/libgone.so.1 at 0x20000, file offset 0x1000.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "synth.h"

#define NOINLINE __attribute__((noinline))
#define DEEP_LEVELS 125 /* + build, main and the C library: 128 addresses */

static synth_trace_t trace;

static void push(uintptr_t pc) {
  if (trace.n < SYNTH_MAX_FRAMES)
    trace.pc[trace.n++] = pc;
}

/* stands for malloc: its return address is the allocation site in its caller */
static NOINLINE void fake_malloc(void) { push((uintptr_t)__builtin_return_address(0)); }

static NOINLINE void site_a(void) {
  fake_malloc(); /* SITE_A */
  push((uintptr_t)__builtin_return_address(0));
}

static NOINLINE void site_b(void) {
  fake_malloc(); /* SITE_B */
  push((uintptr_t)__builtin_return_address(0));
}

static NOINLINE void mid_b(void) {
  site_b();
  push((uintptr_t)__builtin_return_address(0));
}

/* the allocation passes through a C library function: the profile's first frame is in malloc */
static NOINLINE void site_c(void) {
  void *real_malloc = dlsym(RTLD_NEXT, "malloc");
  if (!real_malloc) {
    fprintf(stderr, "synth: dlsym(malloc): %s\n", dlerror());
    exit(2);
  }
  push((uintptr_t)real_malloc + 0x11);
  fake_malloc(); /* SITE_C */
  push((uintptr_t)__builtin_return_address(0));
}

static NOINLINE void deep(int n) {
  if (n == 0)
    fake_malloc(); /* DEEP */
  else
    deep(n - 1);
  push((uintptr_t)__builtin_return_address(0));
}

/* maps: /proc/self/maps read whole (it is read before any stack, so it shows the library) */
static char *read_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) {
    perror("synth: /proc/self/maps");
    exit(2);
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 4096 > cap)
      buf = realloc(buf, cap *= 2);
    size_t got = fread(buf + len, 1, cap - len - 1, f);
    if (got == 0)
      break;
    len += got;
  }
  buf[len] = 0;
  fclose(f);
  return buf;
}

/* a mapping of the real process at [lo, hi)? (the fake ones must not collide with one) */
static int maps_overlap(const char *maps, uintptr_t lo, uintptr_t hi) {
  for (const char *p = maps; *p;) {
    unsigned long s, e;
    if (sscanf(p, "%lx-%lx", &s, &e) == 2 && s < hi && lo < e)
      return 1;
    p = strchr(p, '\n');
    if (!p)
      break;
    p++;
  }
  return 0;
}

static NOINLINE void build(const char *name) {
  trace.n = 0;
  if (strcmp(name, "a") == 0) {
    site_a();
  } else if (strcmp(name, "b") == 0) {
    mid_b();
  } else if (strcmp(name, "wrap") == 0) {
    site_c();
  } else if (strcmp(name, "lib") == 0) {
    lib_site(&trace);
  } else if (strcmp(name, "cxx") == 0) {
    cxx_site(&trace);
  } else if (strcmp(name, "deep") == 0) {
    deep(DEEP_LEVELS - 1);
  } else if (strcmp(name, "wild") == 0) {
    push(0x10101);                                      /* in the fake libamalloc.so */
    push(0x20101);                                      /* in the fake libgone.so.1 */
    push((uintptr_t)getauxval(AT_SYSINFO_EHDR) + 0x801); /* in [vdso] */
    push(0x48);                                         /* in no mapping */
  } else if (strcmp(name, "none") == 0) {
    return;
  } else {
    fprintf(stderr, "synth: unknown stack %s\n", name);
    exit(2);
  }
  /* the frame in build's caller, main; main adds its own caller's, in the C library */
  push((uintptr_t)__builtin_return_address(0));
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: synth OUT.heap PERIOD NAME:LN:LB:AN:AB ...\n");
    return 2;
  }
  char *maps = read_maps();
  if (maps_overlap(maps, 0x10000, 0x30000) || maps_overlap(maps, 0, 0x1000)) {
    fprintf(stderr, "synth: the fake mappings' range is in use\n");
    return 2;
  }
  uintptr_t main_ret = (uintptr_t)__builtin_return_address(0);

  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 2;
  }
  int nstacks = argc - 3;
  unsigned long long (*v)[4] = calloc((size_t)nstacks + 1, sizeof *v);
  unsigned long long tot[4] = {0, 0, 0, 0};
  char **names = calloc((size_t)nstacks + 1, sizeof *names);
  for (int i = 0; i < nstacks; i++) {
    char name[32];
    if (sscanf(argv[3 + i], "%31[^:]:%llu:%llu:%llu:%llu", name, &v[i][0], &v[i][1], &v[i][2],
               &v[i][3]) != 5) {
      fprintf(stderr, "synth: bad stack spec %s\n", argv[3 + i]);
      return 2;
    }
    names[i] = strdup(name);
    for (int k = 0; k < 4; k++)
      tot[k] += v[i][k];
  }
  fprintf(out, "heap profile: %6llu: %8llu [%6llu: %8llu] @ heap_v2/%s\n", tot[0], tot[1],
          tot[2], tot[3], argv[2]);
  for (int i = 0; i < nstacks; i++) {
    /* `wild`'s frame in main: an address in main, like the others' (build's return address) */
    build(names[i]);
    fprintf(out, "%6llu: %8llu [%6llu: %8llu] @", v[i][0], v[i][1], v[i][2], v[i][3]);
    for (int k = 0; k < trace.n; k++)
      fprintf(out, " 0x%lx", (unsigned long)trace.pc[k]);
    if (strcmp(names[i], "none") != 0)
      fprintf(out, " 0x%lx", (unsigned long)main_ret);
    fputc('\n', out);
  }
  fprintf(out, "\nMAPPED_LIBRARIES:\n%s", maps);
  fprintf(out, "00010000-00020000 r-xp 00000000 00:00 0                          "
               "/nonexistent/libamalloc.so\n");
  fprintf(out, "00020000-00030000 r-xp 00001000 00:00 0                          "
               "/nonexistent/libgone.so.1\n");
  if (fclose(out) != 0) {
    perror(argv[1]);
    return 2;
  }
  return 0;
}
