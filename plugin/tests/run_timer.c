/* Times a plugin's run function, call by call, on CLOCK_MONOTONIC, from C, so
 * that what is measured is run() and nothing of the caller around it
 * (scripts/bench_plugin.py).  Wall time, as a host's deadline sees it: run the
 * caller at a real-time priority, as hosts run their audio threads, or it
 * measures the other processes that preempt it.  (The thread CPU clock was
 * tried and dropped: on this virtual machine its maximum exceeded the wall
 * time's, so it measures its own accounting.) */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum { MAX_TIMINGS = 1 << 20 };

static uint64_t timings[MAX_TIMINGS];
static size_t timed;

typedef void (*run_function)(void* handle, uint32_t frames);

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void timed_run(run_function run, void* handle, uint32_t frames) {
    const uint64_t start = now_ns();
    run(handle, frames);
    const uint64_t took = now_ns() - start;
    if (timed < MAX_TIMINGS) {
        timings[timed++] = took;
    }
}

/* Copies the timings so far (nanoseconds) into out; returns how many. */
size_t timings_take(uint64_t* out, size_t capacity) {
    const size_t n = timed < capacity ? timed : capacity;
    for (size_t i = 0; i < n; ++i) {
        out[i] = timings[i];
    }
    timed = 0;
    return n;
}
