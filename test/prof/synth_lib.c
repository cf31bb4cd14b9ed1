/* test/prof/synth_lib.c -- libsynth.so, the shared object of the synthetic profile (synth.c).
 * Each function appends its own return address after its callee has appended its own, so the
 * trace comes out innermost first: [in lib_inner, in lib_site, in the caller of lib_site]. */
#include "synth.h"

#define NOINLINE __attribute__((noinline))

/* exported, and placed before the static functions: in a stripped copy it is the nearest
 * symbol before lib_inner, which must not be taken for lib_inner's name (its size ends first) */
NOINLINE int lib_first(int x) { return x + 1; }

/* stands for malloc: its return address is the allocation site in lib_inner */
static NOINLINE void lib_fake_malloc(synth_trace_t *t) {
  t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
}

static NOINLINE void lib_inner(synth_trace_t *t) {
  lib_fake_malloc(t); /* LIB_INNER */
  t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
}

NOINLINE void lib_site(synth_trace_t *t) {
  lib_inner(t);
  t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
}
