/* An LD_PRELOAD library that counts malloc, calloc, realloc, free and
 * pthread_mutex_lock while armed.  It is armed from C, around one call of a
 * plugin's run function only (counted_run), so that nothing the calling
 * Python does between blocks is counted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { COUNT_MALLOC, COUNT_CALLOC, COUNT_REALLOC, COUNT_FREE, COUNT_LOCK, COUNT_KINDS };

static __thread int armed;
static uint64_t counts[COUNT_KINDS];

static void* (*real_malloc)(size_t);
static void* (*real_calloc)(size_t, size_t);
static void* (*real_realloc)(void*, size_t);
static void (*real_free)(void*);
static int (*real_lock)(pthread_mutex_t*);

/* dlsym may itself call calloc before real_calloc is known: serve it from here. */
static char bootstrap[4096];
static size_t bootstrap_used;

static void* bootstrap_alloc(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (bootstrap_used + size > sizeof bootstrap) {
        return NULL;
    }
    void* p = bootstrap + bootstrap_used;
    bootstrap_used += size;
    return p;
}

static void resolve(void) {
    static int resolving;
    if (real_malloc || resolving) {
        return;
    }
    resolving = 1;
    real_calloc = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_malloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_realloc = (void* (*)(void*, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void*))dlsym(RTLD_NEXT, "free");
    real_lock = (int (*)(pthread_mutex_t*))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    resolving = 0;
}

void* malloc(size_t size) {
    resolve();
    if (armed) __atomic_add_fetch(&counts[COUNT_MALLOC], 1, __ATOMIC_RELAXED);
    return real_malloc ? real_malloc(size) : bootstrap_alloc(size);
}

void* calloc(size_t n, size_t size) {
    if (!real_calloc) {
        resolve();
        if (!real_calloc) {
            void* p = bootstrap_alloc(n * size);
            if (p) memset(p, 0, n * size);
            return p;
        }
    }
    if (armed) __atomic_add_fetch(&counts[COUNT_CALLOC], 1, __ATOMIC_RELAXED);
    return real_calloc(n, size);
}

void* realloc(void* p, size_t size) {
    resolve();
    if (armed) __atomic_add_fetch(&counts[COUNT_REALLOC], 1, __ATOMIC_RELAXED);
    return real_realloc(p, size);
}

void free(void* p) {
    if ((char*)p >= bootstrap && (char*)p < bootstrap + sizeof bootstrap) {
        return;
    }
    resolve();
    if (armed) __atomic_add_fetch(&counts[COUNT_FREE], 1, __ATOMIC_RELAXED);
    if (real_free) real_free(p);
}

int pthread_mutex_lock(pthread_mutex_t* mutex) {
    resolve();
    if (armed) __atomic_add_fetch(&counts[COUNT_LOCK], 1, __ATOMIC_RELAXED);
    return real_lock(mutex);
}

typedef void (*run_function)(void* handle, uint32_t frames);

/* Calls run(handle, frames) with the counters armed on this thread only. */
void counted_run(run_function run, void* handle, uint32_t frames) {
    armed = 1;
    run(handle, frames);
    armed = 0;
}

/* The counts so far, in the order malloc, calloc, realloc, free, lock. */
void counts_read(uint64_t* out) {
    for (int i = 0; i < COUNT_KINDS; ++i) {
        out[i] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
    }
}
