/* An LD_PRELOAD library that counts malloc, calloc, realloc, free and
 * pthread_mutex_lock while armed.  A test arms it from C around the calls
 * it proves allocation-free (armed from Python it would count the
 * interpreter's own work), then reads the counts:
 *
 *   LD_PRELOAD=build/native/libcadenza_alloc_counter.so ./program
 *
 * The program finds the three functions with dlsym(RTLD_DEFAULT, ...). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* ptr, size_t size);
extern void __libc_free(void* ptr);

enum { COUNT_MALLOC, COUNT_CALLOC, COUNT_REALLOC, COUNT_FREE, COUNT_MUTEX, COUNT_KINDS };

static volatile int armed;
static long counts[COUNT_KINDS];
static int (*real_mutex_lock)(pthread_mutex_t*);

static void count(int kind) {
  if (armed) __atomic_fetch_add(&counts[kind], 1, __ATOMIC_RELAXED);
}

__attribute__((visibility("default"))) void cadenza_alloc_counter_arm(void) {
  for (int i = 0; i < COUNT_KINDS; ++i) counts[i] = 0;
  __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}

__attribute__((visibility("default"))) void cadenza_alloc_counter_disarm(void) {
  __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
}

/* Copies the five counts (malloc, calloc, realloc, free, mutex lock) to out. */
__attribute__((visibility("default"))) void cadenza_alloc_counter_counts(long* out) {
  for (int i = 0; i < COUNT_KINDS; ++i) out[i] = counts[i];
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
  count(COUNT_MUTEX);
  if (real_mutex_lock == NULL) {
    real_mutex_lock = (int (*)(pthread_mutex_t*))dlsym(RTLD_NEXT, "pthread_mutex_lock");
  }
  return real_mutex_lock(mutex);
}
