// sized_delete_mismatch: ::operator delete(p, 10) of a block from ::operator new(1000).
#include "misuse.h"
#include <new>

int main() {
  keep(::operator new(1000));
  char *p = static_cast<char *>(::operator new(1000));
  memset(p, 1, 1000);
  aim(p);
  ::operator delete(opaque(p), 10);  // the misuse
  survived();
}
