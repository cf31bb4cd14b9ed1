/* runner.c -- runs one command and reports its wall time, peak RSS and minor page faults (used
 * by compare.sh).
 *
 *   runner RESULT-FILE PRELOAD COMMAND [ARG...]
 *
 * Runs COMMAND with LD_PRELOAD=PRELOAD (unset when PRELOAD is empty; the runner itself is never
 * preloaded), waits with wait4 and writes "SECONDS MAXRSS-KIB EXIT-STATUS MINOR-FAULTS" to
 * RESULT-FILE. The peak RSS is ru_maxrss of the child, which on Linux includes its waited-for
 * descendants (the largest of them: for g++ that is cc1plus); the minor faults (ru_minflt: faults
 * served without I/O, here nearly all first touches of fresh anonymous pages) are the sum over
 * the child and those descendants. stdin/stdout/stderr are inherited.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: runner RESULT-FILE PRELOAD COMMAND [ARG...]\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) { perror("runner: fork"); return 2; }
  if (pid == 0) {
    if (argv[2][0]) setenv("LD_PRELOAD", argv[2], 1); else unsetenv("LD_PRELOAD");
    execvp(argv[3], argv + 3);
    perror("runner: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) { perror("runner: wait4"); return 2; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *f = fopen(argv[1], "w");
  if (!f) { perror(argv[1]); return 2; }
  fprintf(f, "%.4f %ld %d %ld\n", secs, ru.ru_maxrss, code, ru.ru_minflt);
  fclose(f);
  return code;
}
