/* amalloc.h -- the public API of amalloc, a malloc replacement for Linux.
 *
 * amalloc is used three ways:
 *   - LD_PRELOAD=libamalloc.so (or `amalloc-run PROGRAM`): replaces malloc, free, ... and the
 *     C++ operators new/delete in an existing program;
 *   - linking libamalloc.a (or libamalloc.so) into a program: the same, at link time;
 *   - linking libamalloc-api.a: only the am_* functions below, beside the C library's own malloc.
 *
 * Every am_* function has the semantics of the glibc function of the same name without the
 * prefix (errno, alignment and NULL rules included); see README.md for the details.
 */
#ifndef AMALLOC_H
#define AMALLOC_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMALLOC_VERSION_MAJOR 0
#define AMALLOC_VERSION_MINOR 2
#define AMALLOC_VERSION_PATCH 0
/* major * 10000 + minor * 100 + patch */
#define AMALLOC_VERSION 200

#if defined(__GNUC__)
#define AM_API_ATTR_MALLOC __attribute__((malloc))
#define AM_API_ATTR_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define AM_API_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#else
#define AM_API_ATTR_MALLOC
#define AM_API_ATTR_ALLOC_SIZE(n)
#define AM_API_ATTR_ALLOC_SIZE2(n, m)
#endif

/* ---- the C allocation API ------------------------------------------------------------- */
void *am_malloc(size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(1);
void *am_calloc(size_t count, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE2(1, 2);
void *am_realloc(void *ptr, size_t size) AM_API_ATTR_ALLOC_SIZE(2);
void *am_reallocarray(void *ptr, size_t count, size_t size) AM_API_ATTR_ALLOC_SIZE2(2, 3);
void am_free(void *ptr);
/* C23: free a block whose requested size (and alignment) the caller knows. A size that does
 * not fit the block is reported as heap corruption. */
void am_free_sized(void *ptr, size_t size);
void am_free_aligned_sized(void *ptr, size_t alignment, size_t size);

int am_posix_memalign(void **out, size_t alignment, size_t size);
void *am_aligned_alloc(size_t alignment, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(2);
void *am_memalign(size_t alignment, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(2);
void *am_valloc(size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(1);
void *am_pvalloc(size_t size) AM_API_ATTR_MALLOC;

/* Bytes usable at ptr (>= the size asked for); 0 for NULL. */
size_t am_malloc_usable_size(const void *ptr);

/* ---- introspection (glibc shapes) ----------------------------------------------------- */
/* Same layout as glibc's struct mallinfo2 (all fields size_t). */
struct am_mallinfo2 {
  size_t arena;    /* bytes mapped for small and medium blocks (segments) */
  size_t ordblks;  /* number of segments */
  size_t smblks;   /* 0 */
  size_t hblks;    /* number of large blocks (each its own mapping) */
  size_t hblkhd;   /* bytes mapped for large blocks */
  size_t usmblks;  /* 0 */
  size_t fsmblks;  /* 0 */
  size_t uordblks; /* bytes in blocks handed out (small, medium and large) */
  size_t fordblks; /* bytes mapped in segments but not handed out */
  size_t keepcost; /* 0 */
};
struct am_mallinfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct am_mallinfo2 am_mallinfo2(void);
struct am_mallinfo am_mallinfo(void);
/* Returns free memory to the OS now. Returns 1 if anything was released, else 0. */
int am_malloc_trim(size_t pad);
/* Prints a summary to stderr. */
void am_malloc_stats(void);
/* Writes an XML report like glibc's; options must be 0 (else -1 with EINVAL). */
int am_malloc_info(int options, FILE *stream);
/* glibc's mallopt: M_MMAP_THRESHOLD sets the large-block threshold (clamped to 1 KiB..256 KiB),
 * M_TRIM_THRESHOLD -1 / 0 set the purge delay to never / at once; the others are ignored.
 * Returns what glibc's mallopt returns (man 3 amalloc, "GLIBC SETTINGS"). */
int am_mallopt(int param, int value);

/* ---- amalloc-specific ------------------------------------------------------------------ */
/* The version as AMALLOC_VERSION. */
int am_version(void);

/* Options. Each is read once from the environment variable AMALLOC_<NAME> at start-up (not in
 * setuid/setgid programs); a bad value prints `amalloc: warning: ...` and is ignored.
 * README.md documents each with its default. */
typedef enum am_option_e {
  AM_OPTION_PURGE_DELAY_MS = 0, /* ms before free memory goes back to the OS; 0 at once, -1 never */
  AM_OPTION_PURGE,              /* how: 0 = MADV_DONTNEED ("dontneed"), 1 = MADV_FREE ("free") */
  AM_OPTION_THP,                /* 1: advise segments with MADV_HUGEPAGE, purge whole huge pages */
  AM_OPTION_HUGETLB,            /* 1: segments from MAP_HUGETLB pages when the system has them */
  AM_OPTION_POPULATE,           /* 1: pre-fault new segments (MAP_POPULATE) */
  AM_OPTION_LARGE_THRESHOLD,    /* bytes: larger blocks get their own mapping (<= 256 KiB) */
  AM_OPTION_SHOW_STATS,         /* 1: print statistics to stderr at exit */
  AM_OPTION_VERBOSE,            /* 1: print the options in force, and fallbacks taken */
  AM_OPTION_PURGE_THREAD,       /* 1: a background thread purges on time even when every
                                   thread is idle */
  AM_OPTION_PURGE_DELAY_MAX_MS, /* ms: the purge delay grows up to this when purged memory is
                                   wanted again soon after (<= PURGE_DELAY_MS: a fixed delay) */
  AM_OPTION_PROF,               /* 1: the heap profiler samples allocations (read at start; see
                                   am_prof_set_sample) */
  AM_OPTION_PROF_SAMPLE,        /* bytes: the mean allocation bytes between two samples */
  AM_OPTION_PROF_LEAKS,         /* 1: print the sampled blocks still live at exit (a leak report) */
  AM_OPTION_COUNT
} am_option_t;
/* The value of an option; 0 for an unknown option. */
long am_option_get(am_option_t option);
/* Sets an option at run time. Returns 0, or EINVAL for an unknown option or a bad value.
 * THP, HUGETLB and POPULATE apply to segments mapped afterwards. */
int am_option_set(am_option_t option, long value);

/* The heap profiler (doc/heap-profiler.md). With AMALLOC_PROF=1 amalloc records,
 * on average, one allocation per AMALLOC_PROF_SAMPLE bytes (default 512 KiB; the gaps between
 * samples are random, exponentially distributed) with its call stack, and forgets it when it is
 * freed. A profile is gperftools' heap-profile text format: `google-pprof --text PROGRAM FILE`
 * and `amalloc-prof FILE` read it. AMALLOC_PROF_DUMP=<prefix> writes <prefix>.NNNN.heap at exit;
 * AMALLOC_PROF_LEAKS=1 prints the sampled blocks still live at exit, by stack.
 *
 * Writes a profile of the sampled blocks live now (and of all sampled since the start or the
 * last am_prof_reset) to `path`, or, when path is NULL, to the next <prefix>.NNNN.heap of
 * AMALLOC_PROF_DUMP. Returns 0, ENOTSUP when the profiler is not on (AMALLOC_PROF unset and
 * am_prof_set_sample never called with a size), EINVAL (path NULL without AMALLOC_PROF_DUMP), or
 * the errno of open/write. */
int am_prof_dump(const char *path);
/* Sets the mean sampling period in bytes and turns sampling on (bytes > 0) or off (0). It takes
 * effect at once in the calling thread, and in other threads at their next sample (while
 * sampling was off: within 2^20 allocations of each size class). Returns 0, or EINVAL. */
int am_prof_set_sample(size_t bytes);
/* Forgets every sampled block (live and freed): a profile written afterwards shows only
 * allocations made after this call. Returns 0, or ENOTSUP when the profiler is not on. */
int am_prof_reset(void);

/* Statistics (AMALLOC_SHOW_STATS=1 prints the same at exit). Figures of other threads are read
 * without stopping them, so a snapshot taken while they run is approximate. */
#define AM_STATS_VERSION 8           /* 8: 99 classes (the dense 24, 40, 56 of first-class heaps); 7: live_bytes; 6: purge_delay_ms, purge_regrets, purge_relaxes; 5: dirty_segments; 4: segments_converted; 3: 96 classes */
#define AM_STATS_CLASSES 99           /* 0..95: 16 bytes .. 256 KiB in size order; 96..98: 24,
                                        40, 56 bytes (first-class heaps' requests only) */
typedef struct am_class_stats_s {
  size_t block_size;    /* bytes per block */
  size_t mallocs;       /* blocks handed out, ever */
  size_t frees;         /* blocks given back (mallocs - live) */
  size_t live;          /* blocks in use now (including ones freed by other threads and not
                           yet collected by the owner) */
  size_t slabs;         /* slabs of this class now */
  size_t peak_slabs;    /* most slabs of this class at once */
} am_class_stats_t;
typedef struct am_stats_s {
  size_t size;                /* the caller sets sizeof(am_stats_t) */
  size_t version;             /* AM_STATS_VERSION */
  /* OS level */
  size_t mapped;              /* bytes mapped: segments + large blocks + the large-block cache
                                 (virtual) */
  size_t segments;            /* small and medium segments */
  size_t segment_bytes;
  size_t slab_bytes;          /* bytes of segment slots holding a slab */
  size_t resident;            /* process RSS from /proc/self/statm (0 if unreadable) */
  size_t purged_bytes;        /* bytes given back with madvise, ever */
  size_t thp_segments;        /* segments advised MADV_HUGEPAGE */
  size_t hugetlb_segments;    /* segments backed by MAP_HUGETLB pages */
  /* large blocks */
  size_t large_count;         /* live */
  size_t large_bytes;         /* mapped for live large blocks */
  size_t large_peak;          /* most bytes mapped for large blocks at once */
  size_t large_mallocs;       /* ever */
  size_t large_cached;        /* bytes of freed large mappings kept for reuse (for at most the
                                 purge delay) */
  /* threads */
  size_t threads_created;     /* heaps created */
  size_t threads_exited;      /* heaps abandoned at thread exit */
  size_t segments_abandoned;  /* ever */
  size_t segments_reclaimed;  /* ever */
  size_t segments_abandoned_now;
  size_t segments_converted;  /* empty segments reused for the other kind of slab (small <->
                                 medium), ever */
  size_t dirty_segments;      /* segments with free slots not purged yet: a purge pass is due
                                 while this is not 0 (hugetlb segments never count) */
  size_t purge_delay_ms;      /* the purge delay in force (ms; AMALLOC_PURGE_DELAY_MS when it is
                                 0 or -1, else between it and AMALLOC_PURGE_DELAY_MAX_MS) */
  size_t purge_regrets;       /* times purged memory was wanted again soon: the delay grew */
  size_t purge_relaxes;       /* times purged memory was not wanted again: the delay shrank */
  size_t live_bytes;          /* bytes of live blocks: class blocks x their size, plus large
                                 blocks' usable sizes (what a heap profile estimates) */
  am_class_stats_t classes[AM_STATS_CLASSES];
} am_stats_t;
/* Fills *out (out->size must be set to sizeof(am_stats_t); the smaller struct of version 7,
 * with 96 classes, is also taken, and filled as far as it goes). Returns 0, or EINVAL. */
int am_stats_get(am_stats_t *out);
/* Prints the statistics report to stderr. */
void am_stats_print(void);

/* ---- first-class heaps (doc/heaps.md) ----------------------
 * A heap a program creates, allocates from, and throws away whole: am_heap_destroy frees every
 * block still live in it at once, in time proportional to its slabs and large blocks, not to
 * its blocks (a request's or a compilation unit's objects, say).
 *
 * Ownership: a heap belongs to the thread that created it. Only that thread allocates from it
 * (am_heap_malloc & co.), makes it its default, resets, releases or destroys it; any other
 * thread doing so is stopped with "amalloc: error: FUNCTION: heap owned by another thread". Its
 * blocks are ordinary blocks: free, realloc, malloc_usable_size (and the am_* names) work on
 * them from any thread, up to the destroy or reset. A block of a heap freed (or reallocated) after the
 * heap destroyed or reset it is an error, reported as "amalloc: error: free: pointer to a block
 * of a destroyed heap (pointer 0x...)" while its memory has not been reused (doc/heaps.md says
 * exactly when). Using a destroyed heap's handle is reported ("heap destroyed") until
 * am_heap_new hands the same struct out again. A heap still live when its thread exits is
 * released (its blocks stay valid). Blocks of a first-class heap are never sampled by the
 * heap profiler. NULL stands for the calling thread's default heap in the allocation calls. */
typedef struct am_heap_s am_heap_t;

/* A new, empty heap owned by the calling thread; NULL (errno ENOMEM) without memory. */
am_heap_t *am_heap_new(void);
/* malloc, calloc, realloc, aligned_alloc and malloc_usable_size in `heap` (NULL: the calling
 * thread's default heap). am_heap_realloc returns a block of `heap`: a block of another heap
 * moves (copied) into it; a block of `heap` keeps realloc's rules (in place when it fits).
 * am_heap_aligned_alloc takes any power of two (EINVAL otherwise); am_heap_usable_size is
 * malloc_usable_size (the heap is only checked).
 * Alignment: am_heap_malloc, am_heap_calloc and am_heap_realloc on a first-class heap serve
 * requests of 17-24, 33-40 and 49-56 bytes from blocks of 24, 40 and 56 bytes, which are only
 * 8-byte aligned (as mimalloc's are); every other block is 16-byte aligned, like malloc's.
 * An object that needs 16 bytes (long double, __int128, SSE types) in such a block: use
 * am_heap_aligned_alloc(heap, 16, size), or round the size up to a multiple of 16. (The secure
 * build adds its 8-byte canary to the request first: 9-16, 25-32 and 41-48 bytes there.) */
void *am_heap_malloc(am_heap_t *heap, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(2);
void *am_heap_calloc(am_heap_t *heap, size_t count, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE2(2, 3);
void *am_heap_realloc(am_heap_t *heap, void *ptr, size_t size) AM_API_ATTR_ALLOC_SIZE(3);
void *am_heap_aligned_alloc(am_heap_t *heap, size_t alignment, size_t size) AM_API_ATTR_MALLOC AM_API_ATTR_ALLOC_SIZE(3);
size_t am_heap_usable_size(am_heap_t *heap, const void *ptr);
/* Frees every block of the heap (small and medium ones with their slabs, large ones one by
 * one) and deletes the heap. Its memory goes to the thread's own heap for reuse and back to
 * the OS after the purge delay (AMALLOC_PURGE_DELAY_MS). If the heap was the thread's default,
 * the thread's own heap is the default again. The secure build checks the canary of every live
 * block and the quarantined blocks of the heap first. NULL: nothing. */
void am_heap_destroy(am_heap_t *heap);
/* Frees every block of the heap, as am_heap_destroy, and keeps the heap (and its memory) for
 * more allocations. NULL: nothing. */
void am_heap_reset(am_heap_t *heap);
/* Deletes the heap and keeps its blocks: they pass to the thread's own heap and stay valid
 * (freed one by one as usual). NULL: nothing. */
void am_heap_release(am_heap_t *heap);
/* Makes `heap` the calling thread's default: its malloc, calloc, realloc (when a block moves),
 * C++ operator new ... allocate from it until the next am_heap_set_default (or its destroy).
 * NULL: the thread's own heap. Returns the previous default (NULL: the thread's own heap), to
 * restore it with. */
am_heap_t *am_heap_set_default(am_heap_t *heap);

#define AM_HEAP_STATS_VERSION 1
typedef struct am_heap_stats_s {
  size_t size;                /* the caller sets sizeof(am_heap_stats_t) */
  size_t version;             /* AM_HEAP_STATS_VERSION */
  size_t blocks;              /* small and medium blocks live (blocks freed by other threads
                                 are collected first: they do not count) */
  size_t block_bytes;         /* their block sizes summed */
  size_t large_blocks;        /* large blocks live */
  size_t large_bytes;         /* their usable bytes */
  size_t mallocs;             /* small and medium blocks handed out, ever */
  size_t large_mallocs;       /* large blocks handed out, ever */
  size_t slabs;               /* slabs held */
  size_t segments;            /* small and medium segments held */
  size_t resets;              /* am_heap_reset calls */
} am_heap_stats_t;
/* Fills *out for `heap` (the calling thread's own; out->size set by the caller). Returns 0, or
 * EINVAL (heap or out NULL, out->size too small). */
int am_heap_stats(am_heap_t *heap, am_heap_stats_t *out);

/* Testing only (fault injection): after this call, the OS mapping calls amalloc makes (mmap
 * and mremap; munmap and madvise are not affected) numbered after+1 .. after+count fail as if
 * the system had no memory (count < 0: every one after `after`); turning failures on also
 * unmaps the cache of freed large mappings, so that every large block needs the OS.
 * am_test_os_failures(0, 0) turns it off. Returns how many calls failed on purpose since the previous call. */
long am_test_os_failures(long after, long count);

#ifdef __cplusplus
}
#endif

#endif /* AMALLOC_H */
