/* The zero-allocation proof's counter, one for the model step, the engine
 * and the plugin: an LD_PRELOAD library that counts malloc, calloc,
 * realloc, free and pthread_mutex_lock made on a thread while that thread
 * is armed.  It is armed from C around the calls being proved (armed from
 * Python it would count the interpreter's own work):
 *
 *   LD_PRELOAD=build/native/libcadenza_alloc_counter.so ./program
 *
 * A C or C++ program finds the functions with dlsym(RTLD_DEFAULT, ...);
 * Python loads the library itself with ctypes and calls
 * cadenza_alloc_counted_run, which arms the thread around one call.
 * glibc's own __libc_* functions do the work, so nothing here allocates
 * (dlsym(RTLD_NEXT, "malloc") can itself call calloc). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* ptr, size_t size);
extern void __libc_free(void* ptr);

enum { COUNT_MALLOC, COUNT_CALLOC, COUNT_REALLOC, COUNT_FREE, COUNT_MUTEX, COUNT_KINDS };

static __thread int armed;
static long counts[COUNT_KINDS];

#define EXPORTED __attribute__((visibility("default")))

static void count(int kind) {
  if (armed) __atomic_fetch_add(&counts[kind], 1, __ATOMIC_RELAXED);
}

/* Zeroes the counts and arms this thread. */
EXPORTED void cadenza_alloc_arm(void) {
  for (int i = 0; i < COUNT_KINDS; ++i) __atomic_store_n(&counts[i], 0, __ATOMIC_RELAXED);
  armed = 1;
}

/* Copies the counts so far (malloc, calloc, realloc, free, mutex lock) to out. */
EXPORTED void cadenza_alloc_counts(long* out) {
  for (int i = 0; i < COUNT_KINDS; ++i) out[i] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
}

/* Disarms this thread; copies the five counts to out (if not NULL); returns their total. */
EXPORTED long cadenza_alloc_disarm(long* out) {
  armed = 0;
  long got[COUNT_KINDS], total = 0;
  cadenza_alloc_counts(got);
  for (int i = 0; i < COUNT_KINDS; ++i) {
    if (out) out[i] = got[i];
    total += got[i];
  }
  return total;
}

typedef void (*counted_function)(void* handle, uint32_t frames);

/* Calls run(handle, frames) with this thread armed, adding to the counts
 * (a plugin's run(), called block by block from Python). */
EXPORTED void cadenza_alloc_counted_run(counted_function run, void* handle, uint32_t frames) {
  armed = 1;
  run(handle, frames);
  armed = 0;
}

void* malloc(size_t size) {
  count(COUNT_MALLOC);
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  count(COUNT_CALLOC);
  return __libc_calloc(n, size);
}

void* realloc(void* ptr, size_t size) {
  count(COUNT_REALLOC);
  return __libc_realloc(ptr, size);
}

void free(void* ptr) {
  count(COUNT_FREE);
  __libc_free(ptr);
}

int pthread_mutex_lock(pthread_mutex_t* mutex) {
  static int (*next)(pthread_mutex_t*);
  if (next == NULL) next = (int (*)(pthread_mutex_t*))dlsym(RTLD_NEXT, "pthread_mutex_lock");
  count(COUNT_MUTEX);
  return next(mutex);
}
