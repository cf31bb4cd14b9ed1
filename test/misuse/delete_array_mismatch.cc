// delete_array_mismatch: `delete q` of q = new T[8], T with a non-trivial destructor. new[]
// put the element count (the array cookie) in the block's first 8 bytes and returned the
// address after it, so the runtime hands operator delete a pointer 8 bytes into the block.
#include "misuse.h"
#include <new>

static long destroyed;

struct T {
  long v = 1;
  __attribute__((noinline)) ~T() { destroyed += v; }
};

int main() {
  keep(::operator new(72));
  T *q = new T[8];
  T *r = static_cast<T *>(opaque(q));
  aim(r);
  delete r;                          // the misuse: should have been delete[]
  say("detail: %ld destructor(s) ran\n", destroyed);
  survived();
}
