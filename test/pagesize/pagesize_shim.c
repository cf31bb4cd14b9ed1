/* pagesize_shim.c -- makes a process believe its pages are AMALLOC_TEST_PAGE_SIZE bytes.
 *
 *   LD_PRELOAD="libpagesize_shim.so libamalloc.so" AMALLOC_TEST_PAGE_SIZE=65536 ./program
 *
 * Test-only. arm64 and ppc64le kernels run with 16 or 64 KiB pages; on x86-64 (4 KiB pages)
 * this shim lets the suite run amalloc as it would there: every place a Linux program can read
 * the page size from reports the given value:
 *   sysconf(_SC_PAGESIZE), sysconf(_SC_PAGE_SIZE)   (what amalloc reads, os.c)
 *   getpagesize()
 *   getauxval(AT_PAGESZ)                             (where glibc itself takes it from)
 * Every other query goes to the C library (its __sysconf / __getauxval entry points, so the
 * shim needs no dlsym, which may allocate, and works while amalloc is still initialising).
 *
 * The real pages stay 4 KiB, and every range amalloc derives from a larger power of two is also
 * 4 KiB aligned, so its mmap / madvise / mprotect calls behave as on such a kernel (a guard
 * "page" of 64 KiB is sixteen real pages made PROT_NONE). /proc/self/statm still counts real
 * pages, so a resident size computed as pages * page size reads too large under the shim.
 *
 * Without AMALLOC_TEST_PAGE_SIZE (or with an empty one) the shim changes nothing; any other
 * value is passed on as it is, even one amalloc must refuse (the tests of that refusal). The
 * variable is read on every call (getenv does not allocate): no constructor-order questions.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

extern long __sysconf(int name);
extern unsigned long __getauxval(unsigned long type);
extern int __getpagesize(void);

/* The page size to report, or 0 for the real one. */
static long shim_page_size(void) {
  const char *v = getenv("AMALLOC_TEST_PAGE_SIZE");
  if (v == NULL || *v == 0) return 0;
  long n = 0;
  for (; *v >= '0' && *v <= '9'; v++) n = n * 10 + (*v - '0');
  return n;
}

__attribute__((visibility("default"))) long sysconf(int name) {
  long ps = shim_page_size();
  if (ps != 0 && name == _SC_PAGESIZE) return ps;   /* (_SC_PAGE_SIZE is the same constant) */
  return __sysconf(name);
}

__attribute__((visibility("default"))) int getpagesize(void) {
  long ps = shim_page_size();
  return ps != 0 ? (int)ps : __getpagesize();
}

__attribute__((visibility("default"))) unsigned long getauxval(unsigned long type) {
  long ps = shim_page_size();
  if (ps != 0 && type == AT_PAGESZ) return (unsigned long)ps;
  return __getauxval(type);
}
