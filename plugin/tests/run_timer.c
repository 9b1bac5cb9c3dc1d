/* Times a plugin's run function, call by call, from C, so that what is
 * measured is run() and nothing of the caller around it
 * (scripts/bench_plugin.py): wall time on CLOCK_MONOTONIC, which includes any
 * time the thread was preempted, and the thread's own CPU time, which does not. */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum { MAX_TIMINGS = 1 << 20 };

static uint64_t timings[MAX_TIMINGS];
static uint64_t cpu_timings[MAX_TIMINGS];
static size_t timed;

typedef void (*run_function)(void* handle, uint32_t frames);

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void timed_run(run_function run, void* handle, uint32_t frames) {
    const uint64_t cpu_start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    const uint64_t start = now_ns(CLOCK_MONOTONIC);
    run(handle, frames);
    const uint64_t took = now_ns(CLOCK_MONOTONIC) - start;
    const uint64_t cpu_took = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
    if (timed < MAX_TIMINGS) {
        cpu_timings[timed] = cpu_took;
        timings[timed++] = took;
    }
}

/* Copies the wall and CPU timings so far (nanoseconds) out; returns how many. */
size_t timings_take(uint64_t* wall, uint64_t* cpu, size_t capacity) {
    const size_t n = timed < capacity ? timed : capacity;
    for (size_t i = 0; i < n; ++i) {
        wall[i] = timings[i];
        cpu[i] = cpu_timings[i];
    }
    timed = 0;
    return n;
}
