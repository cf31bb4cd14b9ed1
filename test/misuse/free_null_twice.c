/* free_null_twice: free(NULL) twice -- not a bug (the control case): must exit 0, quietly. */
#include "misuse.h"

int main(void) {
  keep(malloc(32));
  free(opaque(NULL));
  free(opaque(NULL));
  survived();
}
