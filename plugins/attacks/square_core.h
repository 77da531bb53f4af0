/* Square Attack, L-infinity (Andriushchenko, Croce, Flammarion and Hein,
 * "Square Attack: a query-efficient black-box adversarial attack via random
 * search", ECCV 2020): score-based random search using logits only.
 *
 * Per example, with margin(x') = z_y(x') - max_{j != y} z_j(x'):
 *   1. one query on x itself; an example already misclassified is done;
 *   2. start from vertical stripes: every column of every channel gets
 *      x + eps or x - eps (one random sign per channel and column), clipped
 *      to [0,1];
 *   3. iteration i picks p(i) (p_init halved after iterations 10, 50, 200,
 *      500, 1000, 2000, 4000, 6000 and 8000; with n_queries > 10000 the
 *      iteration is first rescaled to i * 10000 / n_queries), a square side
 *      s = max(1, round(sqrt(p * H * W))) (at most min(H, W)), a random
 *      s x s window and one random sign per channel, and sets the window to
 *      clip(x + sign * eps, 0, 1). A window that would leave the point as
 *      it is takes the opposite signs (no query is spent on an unchanged
 *      point). The new point replaces the current one only when its margin
 *      is lower, or not positive;
 *   4. the example stops once its margin is <= 0 (misclassified).
 * All still-unflipped examples go to the model as one batch per iteration;
 * the batch shrinks as examples flip. Windows and signs are drawn on the
 * host from the caller's rng (the squares are small; the point is edited
 * in place and restored when the proposal is refused).
 *
 * Queries: the clean query, the stripes and the iterations together never
 * exceed n_queries per example and restart. Restarts (after the first) run
 * again from new stripes on the examples not flipped yet; each example
 * keeps the point of lowest margin over all restarts.
 *
 * Schedule and defaults as in the authors' code (fra31/auto-attack,
 * square.py, as AutoAttack's standard version runs it: p_init 0.8, 5000
 * queries, the schedule not rescaled at 5000). Differences: windows and
 * signs are drawn per example (the paper's algorithm; that code draws one
 * window per iteration for the whole batch), a window may sit anywhere in
 * the image, and the query budget counts the clean query and the start.
 *
 * Compiled once (square_core.c, in the static library clasp_attack_cores)
 * for the square plugin and the tests. */
#ifndef CLASP_SQUARE_CORE_H
#define CLASP_SQUARE_CORE_H

#include <stdint.h>

#include "host_oracle.h"

typedef struct square_cfg {
    float eps;
    int n_queries; /* per example and restart, the clean query included */
    double p_init;
    int restarts;
} square_cfg;

/* The fraction of pixels changed at iteration it (0-based). */
double square_p(double p_init, int it, int n_queries);

/* The side of the square at iteration it for H x W images. */
int square_side(double p_init, int it, int n_queries, int h, int w);

/* z_y minus the largest other of the k logits z; <= 0 is misclassified. */
float square_margin(const float *z, int k, int y);

/* Runs the attack on n examples x (host, n*d floats) with labels y; writes
 * the adversarial points into adv (n*d) and, when queries is not NULL, the
 * model queries spent on each example (n ints). o->vjp is not used and may
 * be NULL. */
clasp_status square_run(const square_cfg *cfg, const host_oracle *o, const float *x,
                        const int32_t *y, int n, clasp_rng *rng, float *adv, int *queries);

#endif
