/* cfree_ok: cfree (the old SunOS name of free, still exported by glibc and amalloc) of a block
 * from malloc, of one from calloc and of NULL -- not a bug (a control). */
#include "misuse.h"

int main(void) {
  void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
  if (cf == NULL) not_available("cfree");
  keep(malloc(32));
  char *p = malloc(100);
  memset(p, 1, 100);
  cf(p);
  char *q = calloc(10, 100);
  cf(q);
  cf(NULL);
  char *r = malloc(100);             /* the heap still works */
  memset(r, 2, 100);
  free(r);
  survived();
}
