/* Preloaded into ABC (through Yosys) by synth/tools.py: answers CPU-time clock reads from
 * the monotonic clock.
 *
 * Why: ABC times nearly every node it rewrites with clock_gettime(CLOCK_THREAD_CPUTIME_ID).
 * A CPU-time clock is always a system call (the vDSO serves only wall clocks): about 11
 * million of them in one block-16 MAC mapping, 9 s of a 42 s ABC run on a KVM guest. The
 * monotonic clock is read in user space. ABC uses the readings for its statistics and for
 * time limits the flow never sets, so the netlist is the same byte for byte
 * (tests/synth/test_fast_clock.py checks it); a single-threaded tool on an idle core sees
 * the two clocks advance alike anyway.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static clock_gettime_fn next;
    if (!next)
        next = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    if (id == CLOCK_THREAD_CPUTIME_ID || id == CLOCK_PROCESS_CPUTIME_ID)
        id = CLOCK_MONOTONIC;
    return next(id, ts);
}
