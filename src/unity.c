/* unity.c -- amalloc as one translation unit.
 *
 * Every file of src/ is #included here, in dependency order, so that cross-file calls on the
 * hot paths inline and the glibc names in preload/override.c can be aliases of the am_*
 * functions (an alias must be in the same translation unit as its target).
 * AM_OVERRIDE=1 (libamalloc.so/.a) adds the overrides; AM_OVERRIDE=0 is the am_* API only.
 * secure.c (AM_SECURE) comes before heap.c: its hooks are steps of the one allocation path.
 * compose.c comes after the valgrind wrappers, whose am_free/am_realloc it calls.
 */
#include "internal.h"

#include "globals.c"
#include "message.c"
#include "options.c"
#include "os.c"
#include "sizeclass.c"
#include "purge.c"
#include "segment.c"
#if AM_SECURE
#include "secure.c"     /* its hooks are inlined into heap.c's and alloc.c's paths */
#endif
#include "heap.c"
#include "large.c"
#include "alloc.c"
#include "heapapi.c"    /* (first-class heaps: on alloc.c's paths) */
#include "unwind.c"     /* the profiler's stack walker */
#include "prof.c"       /* (after alloc.c: it puts blocks back with am_slab_push) */
#include "stats.c"
#include "init.c"

#if AM_VALGRIND
#include "valgrind.c"
#endif

#include "compose.c"

#if AM_OVERRIDE
#include "../preload/override.c"
#endif
