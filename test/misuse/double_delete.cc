// double_delete: `delete p` twice for p = new Obj (a class with a destructor: the compiler
// calls the sized operator delete(void *, size_t)).
#include "misuse.h"
#include <new>

struct Obj {
  long v[6] = {1, 2, 3, 4, 5, 6};
  __attribute__((noinline)) ~Obj() { v[0] = 0; }
};

int main() {
  keep(::operator new(sizeof(Obj)));
  Obj *p = new Obj;
  delete p;
  Obj *again = static_cast<Obj *>(opaque(p));
  aim(again);
  delete again;                      // the misuse
  report_reuse(sizeof(Obj));
  survived();
}
