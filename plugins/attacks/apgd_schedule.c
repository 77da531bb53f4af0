/* The checkpoints of Auto-PGD (apgd_schedule.h says how they are made). */
#include "apgd_schedule.h"

int apgd_core_checkpoints(int steps, int *ck)
{
    int n = 0;
    long long prev = 0, p = 22, last = 0;
    while (p <= 100 && n < APGD_MAX_CHECKPOINTS) {
        long long w = (p * steps + 99) / 100;
        if (w > last) ck[n++] = (int)w, last = w;
        long long d = p - prev - 3;
        if (d < 6) d = 6;
        prev = p;
        p += d;
    }
    return n;
}
