/* large_os.c -- how amalloc's large blocks and segments use the OS (issue 13, defects 10, 11).
 *
 *   large_os hint   One failed huge request (malloc(2^62), realloc(p, PTRDIFF_MAX)) must not
 *                   turn the address hints off: mappings keep being placed at the hint (one
 *                   mmap, no trimming munmaps) and a large realloc still grows in place.
 *   large_os race   A large realloc that moves its mapping (mremap MREMAP_FIXED) must not clear
 *                   the segment-map bit of another thread's mapping that the kernel placed at
 *                   the old address meanwhile: a stress run of moves against threads that map
 *                   and free large blocks and segments; a lost bit aborts a free with "pointer
 *                   not allocated by amalloc". Address hints never reuse an address, so the test
 *                   first takes the hint range away (below) and amalloc falls back to the
 *                   kernel's placement, which does reuse freed ranges.
 *
 * Linked with libamalloc-api.a, and this file defines mmap, munmap and mremap: the static
 * library's calls bind to these (the C library's own calls do not), which count the calls and
 * pass them on with syscall(2). In `race`, mremap pauses briefly after a move, as a preemption
 * at that point would: it widens the window the race needs, it does not create it (NOPAUSE=1
 * turns the pause off; the unfixed code aborted without it too).
 */
#include "test.h"

#include <amalloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define SEGMENT ((uintptr_t)4 << 20)

static _Atomic long n_mmap, n_munmap, n_moves;
static _Atomic int pause_after_move;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  atomic_fetch_add(&n_mmap, 1);
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
int munmap(void *addr, size_t len) {
  atomic_fetch_add(&n_munmap, 1);
  return (int)syscall(SYS_munmap, addr, len);
}
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
  void *target = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    target = va_arg(ap, void *);
    va_end(ap);
  }
  long r = syscall(SYS_mremap, old, old_len, new_len, flags, target);
  if (r != -1 && (flags & MREMAP_FIXED)) {
    atomic_fetch_add(&n_moves, 1);
    if (atomic_load(&pause_after_move)) {
      struct timespec ts = {0, 200 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return (void *)r;
}

/* ---- hint --------------------------------------------------------------------------------- */

/* `n` large blocks of 1 MiB, allocated then freed (the purge delay is 0: a freed large block is
 * unmapped at once). With hints each costs one mmap and one munmap; without, the mmap of size +
 * 4 MiB is trimmed by one or two more munmaps. Also checks that consecutive blocks are placed
 * close together, above `after` (the hints are a bump pointer). */
static void alloc_free_round(const char *when, uintptr_t after) {
  enum { N = 8 };
  void *b[N];
  long m0 = atomic_load(&n_mmap), u0 = atomic_load(&n_munmap);
  for (int i = 0; i < N; i++) {
    b[i] = am_malloc(MiB);
    CHECK(b[i] != NULL);
  }
  long maps = atomic_load(&n_mmap) - m0, unmaps_alloc = atomic_load(&n_munmap) - u0;
  for (int i = 0; i < N; i++) am_free(b[i]);
  long unmaps = atomic_load(&n_munmap) - u0;
  printf("hint: %s: %d blocks: %ld mmap, %ld munmap while allocating, %ld in all\n", when, N, maps,
         unmaps_alloc, unmaps);
  if (!CHECK_EQ(maps, N) || !CHECK_EQ(unmaps_alloc, 0) || !CHECK_EQ(unmaps, N))
    fprintf(stderr, "  %s: mappings are not placed at the hint any more\n", when);
  for (int i = 0; i < N; i++) {
    uintptr_t s = (uintptr_t)b[i] & ~(SEGMENT - 1);
    if (!CHECK(s > after && s - after < ((uintptr_t)1 << 30)))
      fprintf(stderr, "  %s: block %d at %p, the one before at %p\n", when, i, b[i], (void *)after);
    after = s;
  }
}

/* A large realloc grows in place: the hints leave a gap after every mapping. */
static void grow_in_place(const char *when) {
  char *p = am_malloc(MiB);
  long moves = atomic_load(&n_moves);
  char *q = am_realloc(p, 3 * MiB);
  if (!CHECK(q == p) || !CHECK_EQ(atomic_load(&n_moves) - moves, 0))
    fprintf(stderr, "  %s: realloc of 1 MiB to 3 MiB moved the block\n", when);
  am_free(q);
}

static void test_hint(void) {
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, 0), 0);
  void *a = am_malloc(MiB);
  CHECK(a != NULL);
  uintptr_t last = (uintptr_t)a & ~(SEGMENT - 1);
  alloc_free_round("at start", last);
  grow_in_place("at start");

  errno = 0;
  CHECK(am_malloc(opaque_size((size_t)1 << 62)) == NULL);
  CHECK_ERRNO(ENOMEM);
  void *b = am_malloc(MiB);
  alloc_free_round("after malloc(2^62)", (uintptr_t)b & ~(SEGMENT - 1));
  grow_in_place("after malloc(2^62)");
  am_free(b);

  char *r = am_malloc(MiB);
  r[0] = 42;
  errno = 0;
  CHECK(am_realloc(r, opaque_size(PTRDIFF_MAX)) == NULL);
  CHECK_ERRNO(ENOMEM);
  CHECK_EQ(r[0], 42);
  b = am_malloc(MiB);
  alloc_free_round("after realloc(p, PTRDIFF_MAX)", (uintptr_t)b & ~(SEGMENT - 1));
  grow_in_place("after realloc(p, PTRDIFF_MAX)");
  am_free(b);
  am_free(r);
  am_free(a);
}

/* ---- race --------------------------------------------------------------------------------- */

static _Atomic int stop;
static _Atomic long mover_reallocs, mapper_frees;

static void *mover(void *arg) {
  rng_t rng;
  rng_seed(&rng, (uintptr_t)arg);
  while (!atomic_load(&stop)) {
    size_t size = 300 * 1024 + rng_below(&rng, MiB);
    uint64_t *p = am_malloc(size);
    if (!CHECK(p != NULL)) break;
    p[0] = size;
    for (int k = 0; k < 4; k++) {
      size *= 2;
      uint64_t *q = am_realloc(p, size);
      if (!CHECK(q != NULL)) break;
      p = q;
      atomic_fetch_add(&mover_reallocs, 1);
    }
    am_free(p);
  }
  return NULL;
}

static void *mapper(void *arg) {
  rng_t rng;
  rng_seed(&rng, (uintptr_t)arg);
  enum { LARGE = 6, SMALL = 3000 };
  void *large[LARGE];
  static _Thread_local void *small[SMALL];
  while (!atomic_load(&stop)) {
    for (int i = 0; i < LARGE; i++) {
      large[i] = am_malloc(300 * 1024 + rng_below(&rng, 3 * MiB));
      CHECK(large[i] != NULL);
    }
    /* 3000 blocks of 2 KiB: a segment and a half of small slabs (mapped, then unmapped once
     * empty: the purge delay is 0) */
    for (int i = 0; i < SMALL; i++) small[i] = am_malloc(2048);
    for (int i = 0; i < LARGE; i++) {
      CHECK_GE(am_malloc_usable_size(large[i]), 300 * 1024);   /* (checks the segment map) */
      am_free(large[i]);
    }
    for (int i = 0; i < SMALL; i++) am_free(small[i]);
    atomic_fetch_add(&mapper_frees, LARGE + SMALL);
  }
  return NULL;
}

static void test_race(void) {
  /* Take the hint range (2 TiB + a random offset below 1 TiB, bumped by every mapping: os.c)
   * away, so that amalloc's hints miss and it uses the kernel's placement. */
  void *want = (void *)((uintptr_t)2 << 40);
  size_t len = (size_t)2 << 40;
  void *res = mmap(want, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (!CHECK(res == want)) return;
  CHECK_EQ(am_option_set(AM_OPTION_PURGE_DELAY_MS, 0), 0);
  /* the hints miss 16 times, then amalloc stops using them */
  for (int i = 0; i < 40; i++) am_free(am_malloc(MiB));
  /* hints off: a mapping is made larger and trimmed (at least one munmap while allocating);
   * with hints in use (if os.c's hint range moved away from the reserved one) there would be
   * none, and this test could not find the race */
  long u0 = atomic_load(&n_munmap);
  void *probe = am_malloc(MiB);
  if (!CHECK_GE(atomic_load(&n_munmap) - u0, 1)) test_note("address hints are still in use");
  CHECK((uintptr_t)probe < (uintptr_t)want || (uintptr_t)probe >= (uintptr_t)want + len);
  am_free(probe);

  atomic_store(&pause_after_move, getenv("NOPAUSE") == NULL);
  long moves0 = atomic_load(&n_moves);
  pthread_t th[3];
  pthread_create(&th[0], NULL, mover, (void *)1);
  pthread_create(&th[1], NULL, mapper, (void *)2);
  pthread_create(&th[2], NULL, mapper, (void *)3);
  struct timespec ts = {test_quick() ? 1 : 3, 0};
  nanosleep(&ts, NULL);
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  long moves = atomic_load(&n_moves) - moves0;
  printf("race: %ld large reallocs, %ld of them moved; %ld frees by the mappers\n",
         atomic_load(&mover_reallocs), moves, atomic_load(&mapper_frees));
  CHECK_GE(moves, 100);                 /* the race needs moves */
  munmap(res, len);
}

int main(int argc, char **argv) {
  test_init("large_os");
  const char *which = argc > 1 ? argv[1] : "hint";
  if (strcmp(which, "hint") == 0) test_hint();
  else if (strcmp(which, "race") == 0) test_race();
  else CHECK(!"unknown test");
  return test_summary();
}
