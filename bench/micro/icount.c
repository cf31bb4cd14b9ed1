/* icount.c -- the loop that bench/compare.sh measures with valgrind --tool=callgrind to count
 * instructions per malloc+free pair.
 *
 *   icount --list                      print the allocators that load and pass their check
 *   icount ALLOC ITERATIONS SIZE...    for each size: a ring of 64 live blocks, each iteration
 *                                      frees the oldest and allocates a new one
 *
 * Under callgrind each size's loop is bracketed by CALLGRIND_ZERO_STATS and
 * CALLGRIND_DUMP_STATS_AT("size-N"), so each dump holds that loop only; compare.sh runs two
 * iteration counts and divides the difference, so set-up and first-touch costs cancel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "alloctab.h"

#define RING 64

int main(int argc, char **argv) {
  amb_alloc *t;
  if (!RUNNING_ON_VALGRIND) amb_reexec_with_static_tls(argv);
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    int n = amb_load(NULL, &t);
    for (int i = 0; i < n; i++) printf("%s\n", t[i].name);
    return 0;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: icount --list | icount ALLOC ITERATIONS SIZE...\n");
    return 2;
  }
  if (amb_load(argv[1], &t) != 1) {
    fprintf(stderr, "icount: allocator %s not available\n", argv[1]);
    return 1;
  }
  long iters = atol(argv[2]);
  unsigned long sum = 0;
  for (int s = 3; s < argc; s++) {
    size_t size = (size_t)atol(argv[s]);
    void *ring[RING];
    for (int i = 0; i < RING; i++) ring[i] = t->malloc(size);
    char label[64];
    snprintf(label, sizeof label, "size-%zu", size);
    CALLGRIND_ZERO_STATS;
    for (long i = 0; i < iters; i++) {
      unsigned char **slot = (unsigned char **)&ring[i & (RING - 1)];
      t->free(*slot);
      *slot = t->malloc(size);
      (*slot)[0] = (unsigned char)i;
      sum += (*slot)[0];
    }
    CALLGRIND_DUMP_STATS_AT(label);
    for (int i = 0; i < RING; i++) t->free(ring[i]);
  }
  printf("%lu\n", sum);
  return 0;
}
