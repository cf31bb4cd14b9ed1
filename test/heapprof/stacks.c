/* stacks.c -- the heap profiler's stack walker (src/unwind.c) on known call chains.
 *
 *   stacks PLUGIN_A PLUGIN_B     (AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1: every block sampled)
 *
 * Each check allocates a block, writes a profile with am_prof_dump, and names the frames of that
 * block's line with dladdr (the test is linked with
 * -rdynamic, the chains are exported): they must be exactly the calls that led to malloc,
 * innermost first, through
 *   - chain.c, built without frame pointers: frames found from call frame information only,
 *     one addressed from rbp (a variable-length array), one with a large frame;
 *   - a recursion deeper than the profile keeps: 64 frames, all of it;
 *   - a thread of its own (the walk ends at the thread's first frame, not with garbage);
 *   - a module loaded after the profiler started, unloaded, and another loaded in its place
 *     (the walker's cache must not answer for the unloaded module's code);
 * and no unwinder library (libunwind, and its liblzma) is mapped afterwards.
 */
#include "../test.h"
#include "amalloc.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>

void *chain_top(size_t size);
void *chain_recurse(size_t size, int depth);

#define MAX_FRAMES 80
static char buf[8 << 20];

static const char *name_of(uintptr_t a);

/* The frames of the profile line with one live block whose frame 0 is in function `leaf`, or -1.
 * (Each check frees its block before the next: one such line at a time.) */
static int frames_of(const char *leaf, uintptr_t *frames) {
  char path[128];
  snprintf(path, sizeof(path), "/tmp/amalloc-stacks-test.%d.heap", (int)getpid());
  if (!CHECK_EQ(am_prof_dump(path), 0)) return -1;
  int fd = open(path, O_RDONLY);
  size_t len = 0;
  ssize_t r;
  while (fd >= 0 && len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) len += (size_t)r;
  if (fd >= 0) close(fd);
  unlink(path);
  buf[len] = 0;
  int found = -1;
  for (char *line = strchr(buf, '\n'); line != NULL && line[1] != '\n' && line[1] != 0; line = strchr(line + 1, '\n')) {
    double n1, s1, n2, s2;
    int used = 0;
    if (sscanf(line + 1, " %lf: %lf [ %lf: %lf] @%n", &n1, &s1, &n2, &s2, &used) != 4 || used == 0) break;
    char *p = line + 1 + used;
    if (n1 != 1 || strcmp(name_of((uintptr_t)strtoull(p, NULL, 16)), leaf) != 0) continue;
    found = 0;
    while (found < MAX_FRAMES) {
      char *e;
      uintptr_t a = (uintptr_t)strtoull(p, &e, 16);
      if (e == p) break;
      frames[found++] = a;
      p = e;
    }
    break;
  }
  return found;
}

static const char *name_of(uintptr_t a) {
  Dl_info info;
  if (a == 0 || dladdr((void *)(a - 1), &info) == 0 || info.dli_sname == NULL) return "?";
  return info.dli_sname;
}

/* Checks that the block's stack starts with `names` (NULL-terminated), in that order. */
static int expect_stack(const char *what, const char *const *names) {
  uintptr_t frames[MAX_FRAMES];
  int n = frames_of(names[0], frames);
  if (!CHECK(n > 0)) {
    fprintf(stderr, "%s: no profile line with a live block allocated in %s\n", what, names[0]);
    return n;
  }
  int i = 0;
  for (; names[i] != NULL; i++) {
    const char *got = i < n ? name_of(frames[i]) : "(end)";
    if (!CHECK(strcmp(got, names[i]) == 0)) {
      fprintf(stderr, "%s: frame %d is %s, expected %s; the stack:", what, i, got, names[i]);
      for (int j = 0; j < n; j++) fprintf(stderr, " %s", name_of(frames[j]));
      fprintf(stderr, "\n");
      break;
    }
  }
  printf("%s: %d frames, the first %d as expected\n", what, n, i);
  return n;
}

__attribute__((noinline, visibility("default"))) void *stacks_main_chain(size_t size) {
  void *p = chain_top(size);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

static void *thread_fn(void *arg) {
  (void)arg;
  void *p = stacks_main_chain(5003);
  const char *const names[] = {"chain_leaf", "chain_big", "chain_vla", "chain_fp", "chain_top",
                               "stacks_main_chain", NULL};
  int n = expect_stack("thread", names);
  CHECK(n < 64);                        /* (the walk ended at the thread's first frame) */
  free(p);
  return NULL;
}

__attribute__((noinline, visibility("default"))) void *stacks_call_plugin(void *(*outer)(size_t), size_t size) {
  void *p = outer(size);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline, visibility("default"))) void stacks_plugin(const char *path, const char *name, size_t size,
                                                                   uintptr_t *base) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!CHECK(h != NULL)) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    return;
  }
  char outer_name[64], inner_name[64];
  snprintf(outer_name, sizeof(outer_name), "%s_outer", name);
  snprintf(inner_name, sizeof(inner_name), "%s_inner", name);
  void *(*outer)(size_t) = (void *(*)(size_t))dlsym(h, outer_name);
  if (CHECK(outer != NULL)) {
    Dl_info info;
    if (dladdr((void *)outer, &info) != 0) *base = (uintptr_t)info.dli_fbase;
    void *p = stacks_call_plugin(outer, size);
    const char *const names[] = {inner_name, outer_name, "stacks_call_plugin", "stacks_plugin", "main", NULL};
    expect_stack(name, names);
    free(p);
  }
  dlclose(h);
}

int main(int argc, char **argv) {
  test_init("stacks");
  CHECK_AMALLOC_ACTIVE();
  if (argc < 3 || !CHECK(am_option_get(AM_OPTION_PROF_SAMPLE) == 1)) {
    fprintf(stderr, "usage: AMALLOC_PROF=1 AMALLOC_PROF_SAMPLE=1 stacks PLUGIN_A PLUGIN_B\n");
    return test_summary();
  }
  /* the main thread, through frames without frame pointers */
  void *p = stacks_main_chain(5001);
  const char *const chain[] = {"chain_leaf", "chain_big", "chain_vla", "chain_fp", "chain_top",
                               "stacks_main_chain", "main", NULL};
  expect_stack("main thread", chain);
  free(p);

  /* deeper than the profile keeps */
  p = chain_recurse(5002, 100);
  uintptr_t frames[MAX_FRAMES];
  int n = frames_of("chain_leaf", frames);
  CHECK_EQ(n, 64);
  int recursions = 0;
  for (int i = 1; i < n; i++) recursions += strcmp(name_of(frames[i]), "chain_recurse") == 0;
  CHECK_EQ(recursions, 63);
  CHECK(n > 0 && strcmp(name_of(frames[0]), "chain_leaf") == 0);
  printf("recursion: %d frames, %d of them chain_recurse\n", n, recursions);
  free(p);

  pthread_t t;
  if (CHECK_EQ(pthread_create(&t, NULL, thread_fn, NULL), 0)) pthread_join(t, NULL);

  /* a module loaded now, unloaded, another loaded (most often at the same address) */
  uintptr_t base_a = 0, base_b = 0;
  stacks_plugin(argv[1], "plugin_a", 5004, &base_a);
  stacks_plugin(argv[2], "plugin_b", 5005, &base_b);
  stacks_plugin(argv[1], "plugin_a", 5006, &base_a);
  printf("plugin_b loaded %s plugin_a's address\n", base_a == base_b ? "at" : "away from");

  /* no unwinder library was loaded for all this (libunwind maps 256 KiB in each thread) */
  int fd = open("/proc/self/maps", O_RDONLY);
  ssize_t len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
  if (fd >= 0) close(fd);
  if (CHECK(len > 0)) {
    buf[len] = 0;
    CHECK(strstr(buf, "libunwind") == NULL);
    CHECK(strstr(buf, "liblzma") == NULL);
  }
  return test_summary();
}
