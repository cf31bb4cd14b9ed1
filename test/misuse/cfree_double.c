/* cfree_double: cfree of a 64-B block twice (cfree is free: a double free). */
#include "misuse.h"

int main(void) {
  void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
  if (cf == NULL) not_available("cfree");
  keep(malloc(64));
  char *p = malloc(64);
  memset(p, 1, 64);
  cf(p);
  aim(p);
  cf(opaque(p));                     /* the misuse */
  report_reuse(64);
  survived();
}
