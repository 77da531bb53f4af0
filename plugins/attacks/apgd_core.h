/* The L∞ Auto-PGD loop shared by the apgd and apgd-t plugins.
 *
 * Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness
 * with an ensemble of diverse parameter-free attacks", ICML 2020,
 * Algorithm 1), per run on the examples not yet misclassified:
 *   x(0) uniform in the eps-ball around x, clipped to [0,1]; eta = 2 eps
 *   x(1) = P(x(0) + eta sign(g(0)))
 *   x(k+1) = P(x(k) + a (z - x(k)) + (1 - a)(x(k) - x(k-1))),
 *            z = P(x(k) + eta sign(g(k))), a = momentum (0.75)
 * where P projects onto the eps-ball and the [0,1] box and g is the
 * gradient of the loss (cross-entropy, DLR or targeted DLR). Each example
 * keeps its highest-loss point x_max. At the checkpoints w_j of
 * apgd_schedule.h the example's step size is halved, and it restarts from
 * x_max (with x_max's gradient), when
 *   1. the loss went up in fewer than rho * (w_j - w_{j-1}) of the steps
 *      since the last checkpoint (x(0) counts as the first point), or
 *   2. its step size was not halved at the last checkpoint and its best
 *      loss has not grown since then (also at the first checkpoint, where
 *      "the last" is the start).
 * Everything above is per example; the loss and prediction of each example
 * come back to the host once per step (N floats and N ints), the step
 * itself runs on the device (clasp_apgd_step).
 *
 * An example counts as flipped the first time the model misclassifies an
 * iterate; that iterate is its result and it leaves the batch (rows are
 * compacted on the device), so later steps cost only what is left. An
 * example never flipped gets the highest-loss point over all its runs.
 * Examples the model already misclassifies on x are returned unchanged.
 *
 * apgd runs `restarts` runs of the chosen loss. apgd-t ranks, per example,
 * the other classes by the clean logits and runs `restarts` runs of the
 * targeted DLR loss against each of the first n_target_classes of them in
 * turn, every run on the examples still correctly classified.
 *
 * This follows the paper; the authors' public code (auto-attack,
 * autopgd_base.py) differs in details that change no result by much: its
 * checkpoint intervals are int(0.22 N) shrinking by int(0.03 N) down to
 * int(0.06 N) (the same list as here for N = 100, not for every N); its
 * condition 1 is "at most" rho, not "fewer than", and compares the first
 * step's loss with 0 instead of the start's; its condition 2 is never met
 * at the first checkpoint; its random start is scaled so that one pixel
 * sits on the ball's surface; it keeps the last misclassified iterate
 * rather than the first. On clasp's quick PGD-AT Fashion-MNIST model
 * (eps 0.1, first 500 test images) both give 61.8% robust accuracy for
 * APGD-CE (the same examples robust) and 58.6% for APGD-T (two examples
 * differ, one each way).
 *
 * The loop is compiled once (apgd_core.c, in the static library
 * clasp_attack_cores, hidden visibility) and linked into both plugins. */
#ifndef CLASP_APGD_CORE_H
#define CLASP_APGD_CORE_H

#include <clasp/plugin.h>

/* An apgd or apgd-t instance: its parameters and scratch (opaque). */
typedef struct apgd_core apgd_core;

/* Makes the state of an instance into *state from the shared parameters
 * (APGD_CORE_PARAMS) and the plugin's choices: dlr (the DLR loss, else
 * cross-entropy), targeted (targeted DLR, which needs dlr) and n_targets
 * (the target classes per example; 0 when untargeted). name is the
 * plugin's, for messages: it is not copied and must outlive the state (a
 * string literal). The caller owns *state and frees it with
 * apgd_core_destroy. */
clasp_status apgd_core_create(const char *name, const clasp_params *p, int dlr, int targeted,
                              int n_targets, void **state);

/* clasp_attack_fns.perturb: the runs on x (labels y, random stream rng),
 * each example's result into x_adv and the model's prediction on it into
 * pred. Scratch stays in state for the next batch. */
clasp_status apgd_core_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                               const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                               clasp_tensor *pred);

/* clasp_attack_fns.destroy: frees a state of apgd_core_create; NULL is a
 * no-op. */
void apgd_core_destroy(void *state);

/* The parameters both plugins share, in the order `clasp plugins` shows. */
/* clang-format off */
#define APGD_CORE_PARAMS                                                                       \
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,                                          \
     "L-infinity radius of the allowed perturbation (pixels are in [0,1])"},                  \
    {"steps", CLASP_PARAM_INT, 100, 0, 100000, NULL,                                          \
     "iterations per run; the step size is checked at 22%, 41%, 57%, ... of them"},           \
    {"restarts", CLASP_PARAM_INT, 1, 1, 1000, NULL,                                           \
     "random restarts, each on the examples not yet misclassified"},                          \
    {"rho", CLASP_PARAM_FLOAT, 0.75, 0.0, 1.0, NULL,                                          \
     "halve the step when the loss rose in fewer than this fraction of steps"},               \
    {"momentum", CLASP_PARAM_FLOAT, 0.75, 0.0, 1.0, NULL,                                     \
     "weight of the new step against the last move (1 = no momentum)"}
/* clang-format on */

#endif
