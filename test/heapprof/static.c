/* static.c -- the heap profiler in a fully static program (gcc -static -Wl,--eh-frame-hdr with
 * libamalloc.a; static.sh names the frames from the binary's symbol table): a sampled block's
 * stack is walked from the executable's own unwind table, which glibc's _dl_find_object does
 * not give in a static program (src/unwind.c reads it from the program headers).
 *
 *   static PROFILE     (AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1) writes the profile to PROFILE
 */
#include <amalloc.h>
#include <stdio.h>
#include <stdlib.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline)) void *static_leaf(size_t n) {
  void *p = malloc(n);
  KEEP(p);
  return p;
}
__attribute__((noinline)) void *static_mid(size_t n) {
  void *p = static_leaf(n);
  KEEP(p);
  return p;
}
__attribute__((noinline)) void *static_top(size_t n) {
  void *p = static_mid(n);
  KEEP(p);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  void *p = static_top(5000);
  int err = am_prof_dump(argv[1]);
  free(p);
  if (err != 0) {
    fprintf(stderr, "am_prof_dump: %d\n", err);
    return 1;
  }
  return 0;
}
