/* test/prof/synth.h -- the trace that synth.c and its library fill, innermost frame first. */
#ifndef SYNTH_H
#define SYNTH_H
#include <stdint.h>

#define SYNTH_MAX_FRAMES 160

typedef struct {
  uintptr_t pc[SYNTH_MAX_FRAMES]; /* return addresses, innermost first, as a profile has them */
  int n;
} synth_trace_t;

/* libsynth.so: an allocation site in a shared object; lib_inner is static (not exported), so a
 * stripped copy of the library names lib_site from .dynsym but not lib_inner. */
#ifdef __cplusplus
extern "C" {
#endif
void lib_site(synth_trace_t *t);
int lib_first(int x);

/* synth_cxx.cc: ns::Box<int>::grow (a C++ name to demangle) <- cxx_site */
void cxx_site(synth_trace_t *t);
#ifdef __cplusplus
}
#endif

#endif
