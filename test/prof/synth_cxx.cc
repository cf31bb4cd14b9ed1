// test/prof/synth_cxx.cc -- a C++ allocation site for the synthetic profile (synth.c): its
// name must come out demangled, and its '<' '>' escaped in the SVG.
#include "synth.h"

namespace {
__attribute__((noinline)) void cxx_fake_malloc(synth_trace_t *t) {
  t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
}
} // namespace

namespace ns {
template <typename T> struct Box {
  __attribute__((noinline)) static void grow(synth_trace_t *t) {
    cxx_fake_malloc(t); /* CXX_SITE */
    t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
  }
};
} // namespace ns

extern "C" __attribute__((noinline)) void cxx_site(synth_trace_t *t) {
  ns::Box<int>::grow(t);
  t->pc[t->n++] = (uintptr_t)__builtin_return_address(0);
}
