/* vgcheck.c -- programs for test/valgrind.sh: memcheck over amalloc's valgrind build
 * (-Dvalgrind=true) must report what it reports over glibc's malloc.
 *   vgcheck uaf       read and write a freed 100-byte block
 *   vgcheck overflow  read and write past the end of a 64-byte block (into unallocated space)
 *   vgcheck leak      lose ten 1000-byte blocks
 *   vgcheck clean     correct use of the whole API: memcheck must report nothing
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile char sink;

static void *lose(void) {
  char *p = malloc(1000);
  memset(p, 1, 1000);
  return NULL;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "clean";
  if (!strcmp(what, "uaf")) {
    char *p = malloc(100);
    memset(p, 1, 100);
    free(p);
    sink = p[50];
    p[60] = 2;
  } else if (!strcmp(what, "overflow")) {
    char *p = malloc(64);
    memset(p, 1, 64);
    sink = p[64 + 24];
    p[64 * 3 + 40] = 1;
    free(p);
  } else if (!strcmp(what, "leak")) {
    for (int i = 0; i < 10; i++) lose();
  } else {
    char *v[200];
    for (int i = 0; i < 200; i++) {
      size_t n = (size_t)(i * 37 % 5000) + 1;
      v[i] = i % 3 == 0 ? calloc(1, n) : malloc(n);
      memset(v[i], i, n);
    }
    for (int i = 0; i < 200; i += 2) {
      v[i] = realloc(v[i], (size_t)(i % 7) * 1000 + 10);
      memset(v[i], 1, (size_t)(i % 7) * 1000 + 10);
    }
    void *a = NULL;
    if (posix_memalign(&a, 4096, 300) == 0) memset(a, 1, 300);
    free(a);
    char *big = malloc(3 << 20);
    memset(big, 2, 3 << 20);
    big = realloc(big, 9 << 20);
    memset(big, 3, 9 << 20);
    size_t u = malloc_usable_size(v[1]);
    memset(v[1], 4, u);
    free(big);
    for (int i = 0; i < 200; i++) free(v[i]);
  }
  return 0;
}
