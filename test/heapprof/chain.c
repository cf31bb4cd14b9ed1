/* chain.c -- call chains for the stack walker's test (stacks.c), compiled without frame
 * pointers (-fomit-frame-pointer -O2), as Debian builds its programs: each function's frame is
 * found from its call frame information only. chain_vla keeps a variable-length array, so its
 * frame is addressed from rbp (the CFA rule "rbp + 16"), chain_fp keeps a frame pointer on
 * purpose, chain_big has a large frame, and chain_leaf allocates. Every call is followed by
 * other work, so that no call is a tail call and every function keeps its frame. */
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline, visibility("default"))) void *chain_leaf(size_t size) {
  void *p = malloc(size);
  KEEP(p);
  return p;
}

__attribute__((noinline, visibility("default"))) void *chain_big(size_t size) {
  char local[8192];
  memset(local, (int)size, sizeof(local));
  KEEP(local);
  void *p = chain_leaf(size);
  KEEP(local);
  return p;
}

__attribute__((noinline, visibility("default"))) void *chain_vla(size_t size, size_t n) {
  char vla[n];
  memset(vla, 1, n);
  KEEP(vla);
  void *p = chain_big(size);
  KEEP(vla);
  return p;
}

__attribute__((noinline, optimize("no-omit-frame-pointer"), visibility("default"))) void *chain_fp(size_t size) {
  void *p = chain_vla(size, 100 + size % 7);
  KEEP(p);
  return p;
}

__attribute__((noinline, visibility("default"))) void *chain_top(size_t size) {
  void *p = chain_fp(size);
  KEEP(p);
  return p;
}

/* depth calls of chain_recurse, then chain_leaf */
__attribute__((noinline, visibility("default"))) void *chain_recurse(size_t size, int depth) {
  void *p = depth > 0 ? chain_recurse(size, depth - 1) : chain_leaf(size);
  KEEP(p);
  return p;
}
