/* The monotonic clock, for durations (wall-clock jumps never show). */
#include <time.h>

#include "clasp/runtime.h"

double clasp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
