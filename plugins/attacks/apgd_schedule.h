/* The checkpoints of Auto-PGD (Croce & Hein, ICML 2020, section 3.2): the
 * iterations after which the step size may be halved. With p_0 = 0,
 * p_1 = 0.22 and p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), the
 * checkpoints are w_j = ceil(p_j * steps) for the p_j <= 1; for 100 steps
 * 22, 41, 57, 70, 80, 87, 93, 99. The fractions are kept in hundredths so
 * the arithmetic is exact (0.22 + 0.19 is not 0.41 in binary floating
 * point, and the ceiling would notice). Checkpoints that coincide after
 * rounding (few steps) count once. Separate from apgd_core.h so the tests
 * can check the list on its own; defined in apgd_schedule.c. */
#ifndef CLASP_APGD_SCHEDULE_H
#define CLASP_APGD_SCHEDULE_H

/* The p_j <= 1 are 0.22 ... 0.99: never more than 8 checkpoints. */
#define APGD_MAX_CHECKPOINTS 8

/* Writes the checkpoints for `steps` (>= 0) into ck (room for
 * APGD_MAX_CHECKPOINTS) in increasing order; returns how many. */
int apgd_core_checkpoints(int steps, int *ck);

#endif
