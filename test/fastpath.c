/* fastpath.c -- what the free fast path relies on (src/alloc.c am_free, internal.h), checked
 * through malloc and free (run with the library preloaded: the default and the secure build).
 *
 *   full-slab      blocks freed into a FULL slab (one the allocator parked in its full list: its
 *                  grid test fails on purpose, internal.h am_slab_set_state) come back: the slab
 *                  returns to its class queue and malloc hands them out again before it takes a
 *                  new slab; a double free and an interior pointer into a full slab are still
 *                  reported as such.
 *   trimmed-seg    the thread's am_tls_seg (the segment free took without the segment map) is
 *                  forgotten when the segment is unmapped: a free of a pointer into it after
 *                  malloc_trim unmapped it is reported ("not allocated by amalloc"), not a fault
 *                  (default build: the secure build's quarantine still holds the block then).
 *   sizes          every request size up to 1 KiB (malloc's direct table) gets a block of its
 *                  size class, writable, 16-byte aligned, and distinct blocks for distinct calls.
 */
#include "test.h"

#include <malloc.h>
#include <pthread.h>

#define SLAB (64 * 1024)               /* small slabs with 4 KiB pages (test only runs there) */
#define N_BLOCKS 12000                 /* of 16 bytes: three slabs of 4096 blocks, and more */

static uintptr_t slab_of(const void *p) { return (uintptr_t)p / SLAB; }

/* Allocates N_BLOCKS blocks of 16 bytes into v; returns the index of a block whose slab is full
 * (every block of its slab is in v, and a later block lies in another slab), or -1. */
static long fill(void **v) {
  for (long i = 0; i < N_BLOCKS; i++) {
    v[i] = malloc(16);
    memset(v[i], 0x5A, 16);
  }
  /* the first block's slab: the blocks of it are v[0 .. k) if the allocator went on to another
   * slab afterwards (a slab is parked FULL when malloc finds it without a free block) */
  long k = 0;
  while (k < N_BLOCKS && slab_of(v[k]) == slab_of(v[0])) k++;
  return k < N_BLOCKS && k > 1000 ? 0 : -1;
}

static void full_slab(void) {
  void **v = malloc(N_BLOCKS * sizeof(void *));
  long first = fill(v);
  if (!CHECK(first == 0)) return;
  uintptr_t s = slab_of(v[0]);
  /* free 10 blocks of the full slab: the first goes through the full-slab path */
  void *freed[10];
  long nf = 0;
  for (long i = 5; i < N_BLOCKS && nf < 10; i += 37)
    if (slab_of(v[i]) == s) {
      freed[nf++] = v[i];
      free(v[i]);
      v[i] = NULL;
    }
  CHECK_EQ(nf, 10);
  /* (the secure build holds freed blocks in a quarantine of 64: push them through it) */
  for (int i = 0; i < 128; i++) free(malloc(48));
  /* they come back before any new slab is needed: allocate until all 10 are seen (at most
   * what the current slab still has plus 10: bounded by 2 slabs here) */
  long seen = 0;
  void **w = malloc(2 * 4096 * sizeof(void *));
  long nw = 0;
  while (nw < 2 * 4096 && seen < nf) {
    void *p = w[nw++] = malloc(16);
    for (long j = 0; j < nf; j++)
      if (freed[j] == p) seen++;
  }
  CHECK_EQ(seen, nf);
  for (long i = 0; i < nw; i++) free(w[i]);
  for (long i = 0; i < N_BLOCKS; i++) free(v[i]);
  free(w);
  free(v);
}

/* ---- misuse in a full slab (in a child) ------------------------------------------------- */

static void *free_it(void *p) {
  free(p);
  return NULL;
}

static void double_free_full(void *arg) {
  (void)arg;
  void **v = malloc(N_BLOCKS * sizeof(void *));
  if (fill(v) != 0) _exit(3);
  /* another thread frees a block of the full slab (a remote free: the slab stays FULL), then
   * the owner frees it again */
  pthread_t t;
  pthread_create(&t, NULL, free_it, v[100]);
  pthread_join(t, NULL);
  free(opaque_ptr(v[100]));
  _exit(0);
}

static void interior_full(void *arg) {
  (void)arg;
  void **v = malloc(N_BLOCKS * sizeof(void *));
  if (fill(v) != 0) _exit(3);
  free(opaque_ptr((char *)v[100] + 8));
  _exit(0);
}

static void check_abort(void (*fn)(void *), const char *what, const char *message) {
  char err[1024];
  int status = test_in_child(fn, NULL, err, sizeof err);
  bool ok = test_died_of(status, SIGABRT) && strstr(err, message) != NULL;
  if (!CHECK(ok)) fprintf(stderr, "  %s: status 0x%x, stderr: %s\n", what, (unsigned)status, err);
}

/* ---- a trimmed segment (in a child) ------------------------------------------------------ */

static void *trim_then_free(void *arg) {
  (void)arg;
  /* a fresh thread: its heap has no segment yet; the block's segment becomes its am_tls_seg */
  void *p = malloc(16);
  free(p);
  malloc_trim(0);                      /* the segment is empty: unmapped */
  free(opaque_ptr(p));                 /* the misuse: its segment is gone */
  return NULL;
}

static void trimmed_seg(void *arg) {
  (void)arg;
  pthread_t t;
  pthread_create(&t, NULL, trim_then_free, NULL);
  pthread_join(t, NULL);
  _exit(0);
}

/* ---- every size up to 1 KiB -------------------------------------------------------------- */

static void sizes(void) {
  enum { PER = 3 };
  for (size_t size = 0; size <= 1024 + 32; size++) {
    unsigned char *p[PER];
    for (int i = 0; i < PER; i++) {
      p[i] = malloc(size);
      if (!CHECK(p[i] != NULL)) return;
      CHECK_ALIGNED(p[i], 16);
      CHECK_GE(malloc_usable_size(p[i]), size);
      memset(p[i], i + 1, size);
    }
    CHECK(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
    for (int i = 0; i < PER; i++) {
      CHECK(all_bytes(p[i], size, (uint8_t)(i + 1)));
      free(p[i]);
    }
  }
}

int main(int argc, char **argv) {
  test_init("fastpath");
  CHECK_AMALLOC_ACTIVE();
  if (sysconf(_SC_PAGESIZE) != 4096) {
    test_note("page size is not 4 KiB: slab layout differs, skipped");
    return 77;
  }
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "full-slab") == 0) {
    full_slab();
    check_abort(double_free_full, "double free into a full slab", "amalloc: error: free: double free");
    check_abort(interior_full, "interior pointer into a full slab",
                "amalloc: error: free: pointer inside a block");
  }
  if (all || strcmp(what, "trimmed-seg") == 0)
    check_abort(trimmed_seg, "free into a trimmed segment",
                "amalloc: error: free: pointer not allocated by amalloc");
  if (all || strcmp(what, "sizes") == 0) sizes();
  return test_summary();
}
