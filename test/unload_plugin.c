/* unload_plugin.c -- a plugin (a shared module) that links libamalloc-api.a and allocates with
 * the am_* API; loaded and unloaded by test/unload.c (issue 13, defect 7). */
#include <amalloc.h>
#include <stdint.h>
#include <string.h>

/* Allocates and frees small, medium and large blocks from the calling thread (which gets a heap
 * and the thread key's value); returns a small block that stays live. */
__attribute__((visibility("default"))) void *unload_plugin_work(void) {
  void *blocks[2000];
  for (size_t i = 0; i < 2000; i++) {
    blocks[i] = am_malloc(16 + i * 8);
    if (blocks[i] != NULL) memset(blocks[i], 1, 16);
  }
  for (size_t i = 0; i < 2000; i += 2) am_free(blocks[i]);
  for (size_t i = 1; i < 2000; i += 2) am_free(blocks[i]);
  void *large = am_malloc((size_t)1 << 20);
  am_free(large);
  void *medium = am_malloc(100000);
  am_free(medium);
  return am_malloc(100);
}
