/* common.h -- shared helpers of the workload programs (header only).
 *
 * Every workload takes one optional argument, a scale factor (default 1.0 = full size, 1-10 s;
 * compare.sh --quick passes 0.1), prints "checksum N" computed only from the program's own
 * data (so it is the same under every allocator), and, when AMB_RSS_LOG names a file, samples
 * /proc/self/statm every AMB_RSS_MS milliseconds (default 10) from a thread that does not
 * allocate, writing "milliseconds RSS-KiB" lines there.
 */
#ifndef AMB_COMMON_H
#define AMB_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t mix(uint64_t h, uint64_t v) {
  return (h ^ v) * 0x100000001b3ull + (v >> 7);
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL && n != 0) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    abort();
  }
  return p;
}

static inline double scale_arg(int argc, char **argv) {
  double s = argc > 1 ? atof(argv[1]) : 1.0;
  return s > 0 ? s : 1.0;
}

static inline long scaled(double base, double scale) {
  long n = (long)(base * scale);
  return n > 0 ? n : 1;
}

/* ---- RSS sampler -------------------------------------------------------------------- */
static int amb_rss_fd = -1;
static volatile int amb_rss_stop;
static pthread_t amb_rss_thread;
static struct timespec amb_rss_t0;

static void amb_rss_sample(void) {
  char buf[128], line[64];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  char *sp = strchr(buf, ' ');
  if (!sp) return;
  long pages = strtol(sp + 1, NULL, 10);
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  long ms = (t.tv_sec - amb_rss_t0.tv_sec) * 1000 + (t.tv_nsec - amb_rss_t0.tv_nsec) / 1000000;
  int len = snprintf(line, sizeof line, "%ld %ld\n", ms, pages * (sysconf(_SC_PAGESIZE) / 1024));
  if (write(amb_rss_fd, line, (size_t)len) < 0) amb_rss_fd = amb_rss_fd;
}

static void *amb_rss_main(void *arg) {
  long ms = (long)(intptr_t)arg;
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000};
  while (!amb_rss_stop) {
    amb_rss_sample();
    nanosleep(&d, NULL);
  }
  amb_rss_sample();
  return NULL;
}

/* Starts the sampler if AMB_RSS_LOG is set; call once at the start of main. */
static inline void rss_start(void) {
  const char *path = getenv("AMB_RSS_LOG");
  if (path == NULL || *path == 0) return;
  amb_rss_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (amb_rss_fd < 0) return;
  const char *e = getenv("AMB_RSS_MS");
  long ms = e ? atol(e) : 10;
  if (ms < 1) ms = 1;
  clock_gettime(CLOCK_MONOTONIC, &amb_rss_t0);
  pthread_create(&amb_rss_thread, NULL, amb_rss_main, (void *)(intptr_t)ms);
}

/* Stops the sampler (if running) and prints the checksum; call at the end of main. */
static inline void finish(uint64_t checksum) {
  if (amb_rss_fd >= 0) {
    amb_rss_stop = 1;
    pthread_join(amb_rss_thread, NULL);
    close(amb_rss_fd);
  }
  printf("checksum %llu\n", (unsigned long long)checksum);
}

#endif
