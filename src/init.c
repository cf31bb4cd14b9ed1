/* init.c -- process start-up, thread exit hook and fork handlers.
 *
 * Bootstrap rules: nothing here calls malloc through the public symbols, uses stdio or dlsym.
 * _am_process_init runs once, from the library constructor or from the first allocation,
 * whichever comes first (a preloaded library's allocator is called by libc before any
 * constructor runs). It reads the page size and the process secret (os.c), builds the
 * size-class tables, creates the thread key whose destructor abandons an exiting thread's heap,
 * and registers the fork handlers.
 *
 * fork: the prepare handler takes amalloc's three locks (heap pool, abandoned segments, segment
 * list), so the
 * child never inherits them held; everything else is owned by single threads. In the child
 * only the forking thread lives on; the other threads' heaps and segments stay as they were
 * (their blocks can still be freed, into remote lists), which is what every allocator does.
 * First-class heaps go on in the child as they were: those of the forking thread stay its own
 * (its thread token, the address of its am_tls_home, is the same in the child); the others'
 * owners are gone, so they can no longer be destroyed (their blocks can be freed).
 */
#include "internal.h"

#include <sched.h>

static AM_TLS bool am_initializing;     /* this thread is inside _am_process_init */

static void am_fork_prepare(void) { _am_lock_all(); }
static void am_fork_parent(void) { _am_unlock_all(); }
static void am_fork_child(void) {
  _am_prof_fork_child();
  pthread_mutex_init(&am_g.abandoned_lock, NULL);
  pthread_mutex_init(&am_g.heap_lock, NULL);
  pthread_mutex_init(&am_g.segments_lock, NULL);
  atomic_store_explicit(&am_g.large_lock, 0, memory_order_relaxed);
  for (am_heap_t *h = am_g.heaps; h != NULL; h = h->gnext)   /* (held by the prepare handler) */
    atomic_store_explicit(&h->large_lock, 0, memory_order_relaxed);
  _am_segment_fork_child();
#if AM_SECURE
  _am_secure_fork_child();
#endif
}

/* Lock order: prof_lock (a sample allocates from the profiler's heap under it, which may take
 * any of the others), heap_lock, abandoned_lock, segments_lock, then a segment's spin lock;
 * large_lock is never held with another but prof_lock; a first-class heap's large_lock
 * (types.h) is never held with another either (taken last here, with every heap's: a forked
 * child then finds each heap's list of large blocks whole). */
AM_INTERNAL void _am_lock_all(void) {
  pthread_mutex_lock(&am_g.prof_lock);
  pthread_mutex_lock(&am_g.heap_lock);
  pthread_mutex_lock(&am_g.abandoned_lock);
  pthread_mutex_lock(&am_g.segments_lock);
  am_spin_lock(&am_g.large_lock);
  for (am_heap_t *h = am_g.heaps; h != NULL; h = h->gnext) am_spin_lock(&h->large_lock);
}
AM_INTERNAL void _am_unlock_all(void) {
  for (am_heap_t *h = am_g.heaps; h != NULL; h = h->gnext) am_spin_unlock(&h->large_lock);
  am_spin_unlock(&am_g.large_lock);
  pthread_mutex_unlock(&am_g.segments_lock);
  pthread_mutex_unlock(&am_g.abandoned_lock);
  pthread_mutex_unlock(&am_g.heap_lock);
  pthread_mutex_unlock(&am_g.prof_lock);
}

AM_INTERNAL void _am_process_init(void) {
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) == 2) return;
  if (am_initializing) return;            /* re-entered from a call made during init */
  int expected = 0;
  if (!atomic_compare_exchange_strong(&am_g.init_state, &expected, 1)) {
    /* another thread is initialising: wait for it */
    while (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) sched_yield();
    return;
  }
  am_initializing = true;
  _am_options_init();
  _am_prof_init();
  _am_os_init();
  _am_sizeclass_init();
  _am_segment_layout_init();            /* (needs the page size and the classes) */
  if (pthread_key_create(&am_g.thread_key, _am_heap_thread_done) != 0)
    _am_fatal("cannot create the thread key", NULL);
  pthread_atfork(am_fork_prepare, am_fork_parent, am_fork_child);
  atomic_store_explicit(&am_g.init_state, 2, memory_order_release);
  am_initializing = false;
  /* a heap created while init was under way was not registered with the key yet */
  if (am_tls_heap != &am_heap_empty) pthread_setspecific(am_g.thread_key, am_tls_heap);
  _am_prof_start();                       /* (it may allocate: after init) */
}

/* Priority 101: before ordinary constructors, so that the fork handlers are registered
 * early (they then run last in prepare, after other libraries have taken their locks). From
 * here on the profiler may walk stacks: in a static program, glibc allocates while it sets up
 * the lookup the walker uses, before constructors run (unwind.c). */
__attribute__((constructor(101))) static void am_constructor(void) {
  _am_process_init();
  atomic_store_explicit(&am_g.unwind_ready, 1, memory_order_release);
}

/* A key that pthread_setspecific rejects (EINVAL: above PTHREAD_KEYS_MAX), for after the key is
 * deleted: heap.c may still register a new thread's heap at exit, and must not set the value of
 * a key that another library has created since with the same number. */
#define AM_NO_THREAD_KEY ((pthread_key_t)-1)

/* At process exit, and when amalloc is unloaded (dlclose of a plugin that links libamalloc.a
 * or libamalloc-api.a): AMALLOC_SHOW_STATS=1 prints the report; then nothing of amalloc may
 * run once its code is gone, while the program's threads, and threads that used amalloc, go
 * on. So the purge thread is stopped and joined, and the thread key deleted: a thread that
 * exits afterwards no longer calls _am_heap_thread_done (its heap, and the blocks it holds,
 * stay where they are; the program may still use them). The fork handlers need nothing:
 * pthread_atfork comes from libc_nonshared.a into every shared object and registers them with
 * that object's __dso_handle, and glibc's __cxa_finalize, which runs when the object is
 * unloaded, removes the handlers registered with it. At process exit a thread still running
 * goes on allocating as before; one that exits after this leaves its heap as it is. */
__attribute__((destructor)) static void am_destructor(void) {
  if (atomic_load_explicit(&am_g.init_state, memory_order_acquire) != 2) return;
  _am_prof_exit();                        /* (before the statistics: they may show its memory) */
  if (am_option(AM_OPTION_SHOW_STATS)) am_malloc_stats();
  _am_purge_thread_stop();
  pthread_key_t key = am_g.thread_key;
  __atomic_store_n(&am_g.thread_key, AM_NO_THREAD_KEY, __ATOMIC_RELAXED);
  pthread_key_delete(key);
}
