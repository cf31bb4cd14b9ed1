/* alloctab.h -- one C interface over several allocators, all in the same process.
 *
 * Each allocator is a table of function pointers. amalloc is reached through its am_* API
 * (libamalloc-api.a, which does not override malloc), glibc through its own entry points, and
 * the peers through dlopen(RTLD_LOCAL | RTLD_DEEPBIND): their prefixed entry points where they
 * have them (mi_*, tc_*), otherwise the unprefixed names looked up in the library's own handle
 * (jemalloc, and any library given by path), which does not replace the process's malloc.
 *
 * Used by micro.cc (google-benchmark) and icount.c (callgrind instruction counts).
 */
#ifndef AMB_ALLOCTAB_H
#define AMB_ALLOCTAB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amb_alloc {
  const char *name;
  void *(*malloc)(size_t size);
  void (*free)(void *p);
  void *(*calloc)(size_t n, size_t size);
  void *(*realloc)(void *p, size_t size);
  void *(*aligned)(size_t alignment, size_t size); /* size is a multiple of alignment */
  void (*free_sized)(void *p, size_t size);        /* free of a block of known size */
  size_t (*usable)(void *p);                       /* usable size */
} amb_alloc;

/* Builds the table: glibc, amalloc, then mimalloc, jemalloc, tcmalloc if installed, then the
 * extra libraries listed in the environment variable AMB_EXTRA ("name=/path.so,name2=/p2.so").
 * Only the allocators named in `only` (comma-separated; NULL or "" = all) are kept. Each entry
 * is checked to really reach its allocator; an entry that fails the check is dropped with a
 * message on stderr, as is a peer that is not installed. Returns the number of entries. */
int amb_load(const char *only, amb_alloc **out);

/* jemalloc's libjemalloc.so.2 uses initial-exec TLS, which dlopen can only place in the static
 * TLS surplus; glibc's default surplus is too small ("cannot allocate memory in static TLS
 * block"). Re-executes the program with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384
 * unless that tunable is set already. Call first thing in main. */
void amb_reexec_with_static_tls(char **argv);

/* The entry of that name, or NULL. */
const amb_alloc *amb_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif
