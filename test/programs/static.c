/* static.c -- a C program linked with libamalloc.a, dynamically (static-c) or fully statically
 * with -static (static-full-c). It checks that amalloc is the malloc in force, then exercises it
 * through the C library (strdup, stdio, qsort, opendir), threads and fork.
 *
 * Exit status 0 if all is well; every failed check prints a line "FAIL: ..." and the program
 * exits 1. */
#define _GNU_SOURCE
#include <amalloc.h>

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* weak: if the library was not linked in, &am_malloc is NULL and the check below says so
 * (instead of a link error) */
extern void *am_malloc(size_t) __attribute__((weak));

#ifdef AM_FULL_STATIC
#define KIND "fully static"
#else
#define KIND "dynamic, libamalloc.a"
#endif

static int failures;
#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
      printf(__VA_ARGS__);                                                                    \
      printf("\n");                                                                           \
      fflush(stdout);                                                                         \
      failures++;                                                                             \
    }                                                                                         \
  } while (0)

static void check_identity(void) {
  /* volatile: the compiler must not fold the comparison of two distinct symbols */
  void *volatile m = (void *)&malloc;
  void *volatile a = (void *)&am_malloc;
  CHECK(a != NULL, "am_malloc is not linked in");
  CHECK(m == a, "malloc (%p) is not am_malloc (%p)", m, a);
  CHECK(am_version() == AMALLOC_VERSION, "am_version() = %d, header says %d", am_version(),
        AMALLOC_VERSION);
}

static void check_accounting(void) {
  struct am_mallinfo2 before = am_mallinfo2();
  char *p = malloc(1 << 20);
  CHECK(p != NULL, "malloc(1 MiB) failed");
  memset(p, 0x5a, 1 << 20);
  struct am_mallinfo2 during = am_mallinfo2();
  CHECK(during.uordblks >= before.uordblks + (1 << 20),
        "am_mallinfo2().uordblks grew from %zu to %zu after malloc(1 MiB)", before.uordblks,
        during.uordblks);
  CHECK(malloc_usable_size(p) >= (1 << 20), "malloc_usable_size = %zu", malloc_usable_size(p));
  CHECK(am_malloc_usable_size(p) == malloc_usable_size(p), "am_/malloc_usable_size differ");
  free(p);
  struct am_mallinfo2 after = am_mallinfo2();
  CHECK(after.uordblks + (1 << 20) <= during.uordblks,
        "am_mallinfo2().uordblks went from %zu to %zu after free", during.uordblks,
        after.uordblks);
  /* glibc's own mallinfo2 is amalloc's too */
  struct mallinfo2 g = mallinfo2();
  CHECK(g.uordblks == am_mallinfo2().uordblks, "mallinfo2().uordblks %zu != am_ %zu",
        g.uordblks, am_mallinfo2().uordblks);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_libc_users(void) {
  /* blocks that the C library allocates internally must be amalloc's (free() takes them) */
  char *s = strdup("a string duplicated by the C library");
  CHECK(s && am_malloc_usable_size(s) >= strlen(s) + 1, "strdup block not amalloc's");
  free(s);
  char *line = NULL;
  int n = asprintf(&line, "%s-%d-%0100d", "asprintf", 42, 7);
  CHECK(n > 100 && am_malloc_usable_size(line) >= (size_t)n + 1, "asprintf block");
  free(line);
  /* qsort of a big array mallocs its temporary buffer */
  enum { N = 50000 };
  char **v = calloc(N, sizeof *v);
  CHECK(v != NULL, "calloc");
  for (int i = 0; i < N; i++) {
    v[i] = malloc(16);
    snprintf(v[i], 16, "%09d", (i * 7919) % N);
  }
  qsort(v, N, sizeof *v, cmp_str);
  for (int i = 0; i < N; i++) {
    char want[16];
    snprintf(want, sizeof want, "%09d", i);
    if (strcmp(v[i], want) != 0) { CHECK(0, "qsort result wrong at %d", i); break; }
  }
  for (int i = 0; i < N; i++) free(v[i]);
  free(v);
  /* stdio buffers and opendir */
  FILE *f = tmpfile();
  CHECK(f != NULL, "tmpfile: %s", strerror(errno));
  if (f) {
    for (int i = 0; i < 10000; i++) fprintf(f, "line %d\n", i);
    rewind(f);
    char *buf = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&buf, &cap, f) > 0) lines++;
    CHECK(lines == 10000, "read %d lines", lines);
    free(buf);
    fclose(f);
  }
  DIR *d = opendir("/");
  CHECK(d != NULL, "opendir");
  if (d) {
    int entries = 0;
    while (readdir(d)) entries++;
    CHECK(entries > 2, "readdir found %d entries", entries);
    closedir(d);
  }
}

struct targ {
  int id;
  uint64_t sum;
  void *handoff; /* a block allocated here and freed by main */
};

static void *thread_main(void *arg) {
  struct targ *t = arg;
  void *ptrs[256] = {0};
  for (int round = 0; round < 20000; round++) {
    int slot = (round * 31 + t->id) & 255;
    free(ptrs[slot]);
    size_t size = 1 + (size_t)((round * 2654435761u + (unsigned)t->id) % (round % 100 ? 512 : 70000));
    ptrs[slot] = malloc(size);
    if (!ptrs[slot]) return NULL;
    memset(ptrs[slot], t->id, size < 64 ? size : 64);
    t->sum += ((unsigned char *)ptrs[slot])[0];
  }
  for (int i = 0; i < 256; i++) free(ptrs[i]);
  t->handoff = malloc(1000 + (size_t)t->id);
  return NULL;
}

static void check_threads(void) {
  enum { T = 4 };
  pthread_t th[T];
  struct targ args[T];
  for (int i = 0; i < T; i++) {
    args[i] = (struct targ){.id = i + 1};
    CHECK(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < T; i++) {
    pthread_join(th[i], NULL);
    CHECK(args[i].sum == 20000u * (unsigned)(i + 1), "thread %d sum %llu", i,
          (unsigned long long)args[i].sum);
    CHECK(args[i].handoff != NULL, "thread %d handoff", i);
    free(args[i].handoff); /* freed by another thread, after that thread exited */
  }
}

/* a thread that keeps allocating while main forks */
static volatile int stop_churn;
static void *churn(void *arg) {
  (void)arg;
  while (!stop_churn) {
    void *p = malloc(48);
    void *q = malloc(5000);
    free(p);
    free(q);
  }
  return NULL;
}

static void check_fork(void) {
  pthread_t th;
  CHECK(pthread_create(&th, NULL, churn, NULL) == 0, "pthread_create churn");
  char *parent_block = malloc(100);
  strcpy(parent_block, "from the parent");
  for (int i = 0; i < 20; i++) {
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      /* the child: the allocator must work (no lock left held by the churning thread) */
      int ok = strcmp(parent_block, "from the parent") == 0;
      free(parent_block);
      for (int j = 0; j < 1000; j++) {
        void *p = malloc((size_t)(j * 37 % 3000) + 1);
        if (!p) ok = 0;
        free(p);
      }
      void *big = malloc(1 << 20);
      ok = ok && big != NULL;
      free(big);
      _exit(ok ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork child %d status %#x", i, status);
  }
  stop_churn = 1;
  pthread_join(th, NULL);
  CHECK(strcmp(parent_block, "from the parent") == 0, "parent block changed");
  free(parent_block);
}

int main(void) {
  check_identity();
  check_accounting();
  check_libc_users();
  check_threads();
  check_fork();
  if (failures) {
    printf("%d check(s) failed (%s)\n", failures, KIND);
    return 1;
  }
  printf("ok: amalloc %d is malloc in this %s program (threads, fork, libc users)\n",
         am_version(), KIND);
  return 0;
}
