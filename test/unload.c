/* unload.c -- a plugin that links libamalloc-api.a can be unloaded (dlclose) while threads that
 * used it still run (issue 13, defect 7: the thread key's destructor stayed registered and the
 * purge thread kept running, so the next thread exit, or the purge thread's next wake-up,
 * jumped into unmapped code).
 *
 *   unload PLUGIN.so     (run with AMALLOC_PURGE_THREAD=1: the plugin's amalloc starts its
 *                         purge thread; and AMALLOC_PURGE_DELAY_MS=4000, so that it sleeps a
 *                         second between passes and dlclose must wake it)
 *
 * Twice: load the plugin; a thread allocates through it (and keeps a block) and waits; the
 * plugin is unloaded (and must really be gone: dlopen RTLD_NOLOAD fails); 1.5 s pass (the
 * purge thread of the old code slept at most 1 s); the thread exits; other threads start, run
 * and exit; the process forks (its fork handlers must not be the plugin's) and exits 0.
 */
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int worked, may_exit;
static void *(*plugin_work)(void);

static void *user_thread(void *arg) {
  (void)arg;
  void *kept = plugin_work();
  pthread_mutex_lock(&lock);
  worked = kept != NULL ? 1 : -1;
  pthread_cond_broadcast(&cond);
  while (!may_exit) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  return NULL;                /* the thread exits after the plugin is gone */
}

static void *other_thread(void *arg) {
  size_t n = (size_t)(uintptr_t)arg;
  for (size_t i = 0; i < 10000; i++) free(malloc(16 + (i * n) % 5000));
  return arg;
}

static int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void round_trip(const char *path, int round) {
  int threads0 = thread_count();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!CHECK(h != NULL)) {
    fprintf(stderr, "unload: dlopen: %s\n", dlerror());
    return;
  }
  plugin_work = (void *(*)(void))dlsym(h, "unload_plugin_work");
  if (!CHECK(plugin_work != NULL)) return;
  worked = may_exit = 0;
  pthread_t user;
  CHECK_EQ(pthread_create(&user, NULL, user_thread, NULL), 0);
  pthread_mutex_lock(&lock);
  while (worked == 0) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  CHECK_EQ(worked, 1);
  /* the user thread, and the plugin's purge thread */
  bool purger = env_flag("AMALLOC_PURGE_THREAD");
  CHECK_EQ(thread_count(), threads0 + 1 + purger);

  double t0 = now_ms();
  CHECK_EQ(dlclose(h), 0);
  double took = now_ms() - t0;
  /* the purge thread is gone, and went at once (it sleeps up to a second between passes) */
  CHECK_EQ(thread_count(), threads0 + 1);
  if (!CHECK(took < 300)) fprintf(stderr, "unload: dlclose took %.0f ms\n", took);
  void *again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (!CHECK(again == NULL)) {           /* still loaded: the test would prove nothing */
    fprintf(stderr, "unload: round %d: the plugin was not unloaded\n", round);
    dlclose(again);
  }
  sleep_ms(1500);

  pthread_mutex_lock(&lock);
  may_exit = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  CHECK_EQ(pthread_join(user, NULL), 0);

  pthread_t others[4];
  for (uintptr_t i = 0; i < 4; i++) CHECK_EQ(pthread_create(&others[i], NULL, other_thread, (void *)(i + 1)), 0);
  for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(others[i], NULL), 0);

  pid_t pid = fork();
  if (pid == 0) {
    free(malloc(10));
    _exit(0);
  }
  int st = -1;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("unload: round %d: plugin used by a thread, unloaded (in %.1f ms), the thread exited\n",
         round, took);
}

int main(int argc, char **argv) {
  test_init("unload");
  if (!CHECK(argc > 1)) return test_summary();
  if (!env_flag("AMALLOC_PURGE_THREAD")) test_note("AMALLOC_PURGE_THREAD is not set: no purge thread");
  round_trip(argv[1], 1);
  round_trip(argv[1], 2);
  return test_summary();
}
