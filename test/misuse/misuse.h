/* misuse.h -- shared helpers of the heap-misuse programs (test/misuse/).
 *
 * Each program does exactly one bad thing to the heap. If the process survives it, the program
 * prints "SURVIVED" on stdout and exits 0; lines "detail: ..." before it say what was seen.
 * The programs are not linked with amalloc: run.sh runs them under LD_PRELOAD. Their own output
 * goes through write(2) from a stack buffer, so reporting never touches a possibly corrupt heap.
 * Exit status 77 means the function to misuse does not exist in this process (n/a).
 * Right before the misuse, aim(p) prints "pointer: 0x..." for the pointer it concerns.
 */
#ifndef MISUSE_H
#define MISUSE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define M_UNUSED __attribute__((unused))

/* Hides a pointer's provenance from the compiler: no folding or dead-store elimination of the
 * accesses through it, no warning about freeing a non-heap object. */
static M_UNUSED inline void *opaque(void *p) {
  __asm__ volatile("" : "+r"(p) : : "memory");
  return p;
}

/* Keeps a block live (and its slab in use) until exit. */
static M_UNUSED void *volatile m_keep[16];
static M_UNUSED void keep(void *p) {
  for (int i = 0; i < 16; i++)
    if (m_keep[i] == NULL) {
      m_keep[i] = p;
      return;
    }
}

static M_UNUSED __attribute__((format(printf, 1, 2))) void say(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
  ssize_t w = write(STDOUT_FILENO, buf, (size_t)n);
  (void)w;
}

/* Says which pointer the program is about to misuse ("pointer: 0x..." on stdout, before the
 * misuse): run.sh requires amalloc's message to name exactly this pointer. */
static M_UNUSED void aim(const void *p) { say("pointer: %p\n", p); }

/* The program survived its misuse. It exits normally (exit, not _exit), as a real program
 * would, so that an allocator's checks at exit (amalloc's secure build checks its quarantine)
 * still run; a message and abort there count as "stopped". */
static M_UNUSED __attribute__((noreturn)) void survived(void) {
  say("SURVIVED\n");
  exit(0);
}

/* The function to misuse is not in this process (e.g. free_sized under glibc 2.36). */
static M_UNUSED __attribute__((noreturn)) void not_available(const char *what) {
  say("n/a: %s is not available\n", what);
  _exit(77);
}

static M_UNUSED void (*m_sdallocx)(void *, size_t, int);
static M_UNUSED void m_sdallocx_shim(void *p, size_t size) { m_sdallocx(p, size, 0); }

/* After a double free that went unnoticed: does malloc hand out the same block twice? */
static M_UNUSED void report_reuse(size_t size) {
  void *a = malloc(size);
  void *b = malloc(size);
  say("detail: two mallocs of %zu after the double free returned %s\n", size,
      a == b ? "the same block twice" : "different blocks");
  keep(a);
  keep(b);
}

/* free_sized (C23; glibc 2.36 has neither the declaration nor the function), found at run
 * time; an allocator without it but with jemalloc's sdallocx(p, size, 0) gets that instead. */
typedef void (*sized_free_fn)(void *, size_t);
static M_UNUSED sized_free_fn find_free_sized(void) {
  sized_free_fn f = (sized_free_fn)dlsym(RTLD_DEFAULT, "free_sized");
  if (f != NULL) return f;
  void (*sdallocx)(void *, size_t, int) = (void (*)(void *, size_t, int))dlsym(RTLD_DEFAULT, "sdallocx");
  if (sdallocx == NULL) not_available("free_sized (and sdallocx)");
  say("detail: no free_sized; using sdallocx(p, size, 0)\n");
  m_sdallocx = sdallocx;
  return m_sdallocx_shim;
}

#endif
