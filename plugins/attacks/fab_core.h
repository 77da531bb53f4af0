/* FAB, the fast adaptive boundary attack in L-infinity (Croce and Hein,
 * "Minimally distorted adversarial examples with a fast adaptive boundary
 * attack", ICML 2020), targeted (FAB-T, as AutoAttack's standard version
 * runs it) or untargeted.
 *
 * For a correctly classified example x0 with label y and a class t, each
 * step linearises g = z_t - z_y at the current point x1 (one backward with
 * dlogits e_t - e_y gives its gradient w), which gives the hyperplane
 *     H = { u : <w, u> = <w, x1> - g(x1) },
 * and projects both x1 and x0 onto H intersected with the box [0,1]^d in
 * L-infinity (fab_project_linf: the smallest change that reaches H inside
 * the box): d1 from x1, d2 from x0. With a1 = ||d1||, a2 = ||d2|| and
 * alpha = min(a1 / (a1 + a2), alpha_max) the next point is
 *     x1 = clip((x1 + eta d1)(1 - alpha) + (x0 + eta d2) alpha, 0, 1)
 * (eta > 1 overshoots the boundary; alpha biases the step towards x0).
 * Whenever x1 is misclassified it is recorded when it is the closest such
 * point so far, and x1 moves back towards x0: x1 = x0 + beta (x1 - x0).
 *
 * FAB-T runs this for the n_target_classes most likely wrong classes of
 * the clean logits in turn (the second, third, ... largest logit), each
 * with `restarts` runs (the first from x0, later ones from a random point
 * at L-infinity distance eps/2), and each run only on the examples that no
 * earlier run flipped within eps. The untargeted version takes, at every
 * step, the class whose linearised boundary is nearest (|g| / ||w||_1).
 * Each example's result is the closest misclassified point found within
 * eps, or x0 itself when none was.
 *
 * Defaults (steps 100, alpha_max 0.1, eta 1.05, beta 0.9, 9 target classes,
 * 1 restart) and the projection are those of the authors' code
 * (fra31/auto-attack: fab_base.py, fab_projections.py) as AutoAttack's
 * standard version runs FAB-T. The check for a misclassified point reuses
 * the forward pass of the next step's linearisation where x1 did not move
 * back; a point that stepped back is evaluated again, alone with the
 * others that did when they are at most half of the batch (the rest keep
 * the gradients of the first pass).
 *
 * Compiled once (fab_core.c, in the static library clasp_attack_cores) for
 * the fab plugin and the tests. */
#ifndef CLASP_FAB_CORE_H
#define CLASP_FAB_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "host_oracle.h"

typedef struct fab_cfg {
    float eps;
    int steps;
    int n_target_classes;
    int restarts;
    double alpha_max, eta, beta;
    int targeted;
    int reforward_all; /* evaluate every row again after any stepped back
                          (the plain order; slower, same result) */
} fab_cfg;

typedef struct fab_room {
    float p;  /* how far the coordinate can move towards the hyperplane inside the box */
    float aw; /* |w_i| */
} fab_room;

/* The L-infinity projection of t onto { u : <w, u> = b } intersected with
 * [0,1]^d: delta of smallest max-norm with <w, t + delta> = b and
 * t + delta in the box. Moving coordinate i by lambda towards the
 * hyperplane changes <w, u> by |w_i| min(lambda, room_i), so lambda solves
 * sum_i |w_i| min(lambda, room_i) = |<w, t> - b|, a piecewise-linear
 * equation solved over the sorted rooms. When the box cannot reach the
 * hyperplane, delta moves t to the box corner nearest to it. Coordinates
 * with w_i = 0 stay. delta gets d entries; scratch has room for d (its
 * contents are overwritten). */
void fab_project_linf(const float *t, const float *w, double b, size_t d, float *delta,
                      fab_room *scratch);

/* The index of the largest of the k (>= 1) values z, the first on ties. */
int fab_argmax(const float *z, int k);

/* max_i |a_i - b_i| over d entries. */
float fab_linf(const float *a, const float *b, size_t d);

/* Runs FAB on n examples x (host, n*d floats) with labels y; writes the
 * results into adv (n*d) and, when dist is not NULL, each example's
 * L-infinity distance to its result where that result is misclassified
 * within eps (INFINITY where no such point was found; 0 where x itself is
 * misclassified). o->vjp must not be NULL. */
clasp_status fab_attack(const fab_cfg *cfg, const host_oracle *o, const float *x, const int32_t *y,
                        int n, clasp_rng *rng, float *adv, float *dist);

#endif
