/* secure.c -- the secure build's protections that the misuse suite does not show on its own:
 * random allocation order, encoded free lists, the quarantine, guard pages. Runs preloaded with
 * libamalloc-secure.so (test/meson.build); under any other malloc the checks fail, which is
 * the point: each one would fail without the protection it tests.
 *
 *   secure            all the checks
 */
#include "test.h"

#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>

#define SEG ((uintptr_t)4 << 20)
#define SLAB ((uintptr_t)64 << 10)



/* 1. A fresh slab hands out its blocks in a random order, not in address order. */
static void test_random_order(void) {
  enum { N = 300 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(200);   /* a class nothing else here uses */
  int up = 0;
  for (int i = 1; i < N; i++) up += (uintptr_t)p[i] > (uintptr_t)p[i - 1];
  printf("random order: %d of %d consecutive blocks at higher addresses\n", up, N - 1);
  CHECK(up > N / 5 && up < N - N / 5);               /* address order: N-1 (or 0) */
  for (int i = 0; i < N; i++) free(p[i]);
}

/* 2. Quarantine: a freed block is not handed out again by the next mallocs of its size. */
static void test_quarantine(void) {
  void *p = malloc(40);
  free(p);
  int again = 0;
  void *q[60];
  for (int i = 0; i < 60; i++) again += (q[i] = malloc(40)) == p;
  CHECK_EQ(again, 0);
  for (int i = 0; i < 60; i++) free(q[i]);
}

/* 2b. The quarantine's fill covers every word it claims: the first word, the mark, and bytes 16
 * up to min(usable size, 128). For blocks of several classes and each 8-byte word of that
 * range, a child writes one byte into the freed block and then frees 64 other blocks, which
 * pushes the block out of the quarantine: the check must stop it. */
typedef struct { size_t size, offset; } fill_case_t;
static void write_after_free_at(void *arg) {
  const fill_case_t *c = arg;
  unsigned char *p = malloc(c->size);
  free(p);
  /* flip bits, not store a constant: the second word is the block's mark, random per block, so
   * a constant byte equals what is there once in 256 (the test then failed about 3% of runs) */
  ((volatile unsigned char *)p)[c->offset] ^= 0x5A;
  for (int i = 0; i < 64; i++) free(malloc(c->size));
}
static void test_fill_coverage(void) {
  static const size_t sizes[] = {24, 40, 56, 72, 136, 200, 1000};
  int cases = 0, stopped = 0;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    void *p = malloc(sizes[k]);
    size_t usable = malloc_usable_size(p);
    free(p);
    size_t end = usable < 128 ? usable : 128;
    for (size_t off = 0; off < end; off += 8) {
      fill_case_t c = {sizes[k], off + 3};   /* a byte inside the word */
      char err[512];
      int status = test_in_child(write_after_free_at, &c, err, sizeof err);
      cases++;
      if (test_died_of(status, SIGABRT) && strstr(err, "amalloc: error: free: write to a freed block") != NULL)
        stopped++;
      else
        fprintf(stderr, "  size %zu, byte %zu: not stopped (%s)\n", sizes[k], c.offset, err);
    }
  }
  CHECK_EQ(stopped, cases);
  CHECK(cases >= 60);
}

/* 3. Encoded links: a block that left the quarantine is on its slab's free list, and its first
 * word (the link) does not point into the slab, as a plain link would. */
static void test_encoded_links(void) {
  enum { N = 200 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(56);
  for (int i = 0; i < N; i++) free(p[i]);          /* the first ones leave the quarantine */
  int plain = 0;
  for (int i = 0; i < 64; i++) {
    uintptr_t link;
    memcpy(&link, p[i], sizeof link);
    uintptr_t base = (uintptr_t)p[i] & ~(SEG - 1);
    plain += link == 0 || (link >= base && link < base + SEG);
  }
  printf("encoded links: %d of 64 free blocks hold a plain in-segment pointer (or 0)\n", plain);
  CHECK(plain <= 2);
}

/* 4. A free-list link overwritten after the block left the quarantine stops malloc. */
static void corrupt_link(void *arg) {
  (void)arg;
  enum { N = 200 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(88);
  for (int i = 0; i < N; i++) free(p[i]);
  /* the 136 released blocks are on the free list: plant the address of another block in each
   * one's link (a use after free that tries to steer malloc) */
  for (int i = 0; i < N - 64; i++) memcpy(p[i], &p[N - 1], sizeof(void *));
  for (int i = 0; i < N; i++) (void)malloc(88);
}
static void test_corrupt_link(void) {
  char err[512];
  int st = test_in_child(corrupt_link, NULL, err, sizeof err);
  CHECK(test_died_of(st, SIGABRT));
  CHECK(strstr(err, "amalloc: error: malloc: corrupted free list") != NULL);
  if (!test_died_of(st, SIGABRT)) printf("corrupt link: status %d, stderr: %s\n", st, err);
}

/* 5. Guard pages in a small-slab segment: the last page of each 64 KiB slot and one after the
 * header are mapped PROT_NONE (/proc/self/maps shows them as ---p ranges). */
static void test_segment_guards(void) {
  void *p = malloc(32);
  uintptr_t base = (uintptr_t)p & ~(SEG - 1);
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f != NULL);
  if (f == NULL) return;
  char line[512];
  size_t guard_pages = 0, ranges = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3) continue;
    if (hi <= base || lo >= base + SEG) continue;
    if (strcmp(perm, "---p") == 0) {
      ranges++;
      guard_pages += (hi - lo) / 4096;
    }
  }
  fclose(f);
  printf("segment guards: %zu PROT_NONE ranges, %zu pages\n", ranges, guard_pages);
  CHECK_EQ(ranges, 65);              /* 64 slot ends + 1 after the header */
  CHECK_EQ(guard_pages, 65);
  free(p);
}

/* 6. Touching a slot's last page (the guard) faults. */
static void touch_slot_guard(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  volatile char *g = (volatile char *)((p & ~(SLAB - 1)) + SLAB - 1);
  *g = 1;
}
/* 7. Large blocks: a guard page before the block and one after its usable end. */
static void touch_before_large(void *arg) { ((volatile char *)arg)[-1] = 1; }
static void touch_after_large(void *arg) {
  ((volatile char *)arg)[malloc_usable_size(arg)] = 1;
}
static void test_guard_faults(void) {
  char err[256];
  void *small = malloc(64);
  CHECK(test_died_of(test_in_child(touch_slot_guard, small, err, sizeof err), SIGSEGV));
  void *big = malloc(1 << 20);
  memset(big, 1, malloc_usable_size(big));       /* the whole usable size is usable */
  CHECK(test_died_of(test_in_child(touch_before_large, big, err, sizeof err), SIGSEGV));
  CHECK(test_died_of(test_in_child(touch_after_large, big, err, sizeof err), SIGSEGV));
  /* realloc keeps the guards (the secure build copies) */
  big = realloc(big, 3 << 20);
  CHECK(big != NULL);
  CHECK(test_died_of(test_in_child(touch_after_large, big, err, sizeof err), SIGSEGV));
  free(big);
  free(small);
}

int main(void) {
  test_init("secure");
  CHECK_AMALLOC_ACTIVE();
  test_random_order();
  test_quarantine();
  test_fill_coverage();
  test_encoded_links();
  test_corrupt_link();
  test_segment_guards();
  test_guard_faults();
  return test_summary();
}
