/* plugin.c -- a module the stack walker's test (stacks.c) loads, walks through, unloads, and
 * loads again as another module (built twice: PLUGIN_NAME plugin_a or plugin_b; b has more
 * code before its functions, so the same addresses hold other code). */
#include <stdlib.h>

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

#ifdef PLUGIN_PAD
/* code that shifts the functions below */
__attribute__((noinline, visibility("default"))) long CAT(PLUGIN_NAME, pad)(long x) {
  for (int i = 0; i < 50; i++) {
    x = x * 31 + i;
    KEEP(x);
  }
  return x;
}
#endif

__attribute__((noinline, visibility("default"))) void *CAT(PLUGIN_NAME, inner)(size_t size) {
  char local[300];
  local[size % 300] = 1;
  KEEP(local);
  void *p = malloc(size);
  KEEP(p);
  return p;
}

__attribute__((noinline, visibility("default"))) void *CAT(PLUGIN_NAME, outer)(size_t size) {
  void *p = CAT(PLUGIN_NAME, inner)(size);
  KEEP(p);
  return p;
}
