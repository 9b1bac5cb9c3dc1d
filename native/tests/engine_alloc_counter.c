/* An LD_PRELOAD counter of malloc, calloc, realloc, free and
 * pthread_mutex_lock, armed from C around the calls being checked
 * (arming from Python would count the interpreter's own). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);

static __thread int armed;
static __thread long counts[5]; /* malloc, calloc, realloc, free, mutex_lock */

void cadenza_alloc_arm(void) {
  for (int i = 0; i < 5; ++i) counts[i] = 0;
  armed = 1;
}

/* Disarms; writes the five counts; returns their total. */
long cadenza_alloc_disarm(long* out) {
  armed = 0;
  long total = 0;
  for (int i = 0; i < 5; ++i) {
    if (out) out[i] = counts[i];
    total += counts[i];
  }
  return total;
}

void* malloc(size_t n) {
  if (armed) ++counts[0];
  return __libc_malloc(n);
}

void* calloc(size_t a, size_t b) {
  if (armed) ++counts[1];
  return __libc_calloc(a, b);
}

void* realloc(void* p, size_t n) {
  if (armed) ++counts[2];
  return __libc_realloc(p, n);
}

void free(void* p) {
  if (armed) ++counts[3];
  __libc_free(p);
}

int pthread_mutex_lock(pthread_mutex_t* m) {
  static int (*next)(pthread_mutex_t*);
  if (!next) next = (int (*)(pthread_mutex_t*))dlsym(RTLD_NEXT, "pthread_mutex_lock");
  if (armed) ++counts[4];
  return next(m);
}
