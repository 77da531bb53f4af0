/* The L∞ PGD loop shared by the pgd and tpgd plugins.
 *
 * Both plugins link the one compiled copy (pgd_core.c, in the static
 * library clasp_attack_cores), so Temperature-PGD with T = 1 runs literally
 * the same instructions as PGD (the temperature is only an argument of the
 * loss): same seed and parameters give bit-identical adversarial examples.
 * The library is built with hidden visibility: a plugin linking it still
 * exports nothing but its entry point.
 *
 * Algorithm (Madry et al. 2018, "Towards Deep Learning Models Resistant to
 * Adversarial Attacks"), per restart:
 *   x' = clamp(x + U(-eps, eps), 0, 1)            (when rand_init)
 *   repeat steps times:
 *     x' = clamp(proj_{x,eps}(x' + alpha * sign(∇x' CE(softmax(z(x')/T), y))), 0, 1)
 * With several restarts each example keeps its most damaging result:
 * misclassified beats correctly classified, then the higher loss wins. */
#ifndef CLASP_PGD_CORE_H
#define CLASP_PGD_CORE_H

#include <clasp/plugin.h>

/* A pgd or tpgd instance: its parameters and scratch (opaque). */
typedef struct pgd_core pgd_core;

/* Makes the state of an instance into *state from the shared parameters
 * (PGD_CORE_PARAMS; alpha = 0 picks 2.5 * eps / steps) and the softmax
 * temperature t: tpgd passes its T, pgd passes 1. The caller owns *state
 * and frees it with pgd_core_destroy. */
clasp_status pgd_core_create(const clasp_params *p, float t, void **state);

/* clasp_attack_fns.perturb: runs the restarts' walks from x (labels y,
 * random stream rng), each example's most damaging result into x_adv and
 * the model's prediction on it into pred. Scratch stays in state for the
 * next batch. */
clasp_status pgd_core_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                              const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                              clasp_tensor *pred);

/* clasp_attack_fns.destroy: frees a state of pgd_core_create; NULL is a
 * no-op. */
void pgd_core_destroy(void *state);

/* clasp_attack_traits.cost: one forward and one backward pass per step and
 * restart. */
void pgd_core_cost(const clasp_params *p, clasp_attack_cost *c);

/* The parameters both plugins share, in the order `clasp plugins` shows. */
/* clang-format off */
#define PGD_CORE_PARAMS                                                                        \
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,                                          \
     "L-infinity radius of the allowed perturbation (pixels are in [0,1])"},                  \
    {"alpha", CLASP_PARAM_FLOAT, 0.01, 0.0, 1.0, NULL,                                        \
     "step size per iteration; 0 = relative step 2.5*eps/steps"},                             \
    {"steps", CLASP_PARAM_INT, 20, 0, 100000, NULL, "gradient steps per restart"},             \
    {"restarts", CLASP_PARAM_INT, 1, 1, 1000, NULL,                                           \
     "random restarts; each example keeps its most damaging one"},                            \
    {"rand_init", CLASP_PARAM_BOOL, 1, 0, 1, NULL,                                            \
     "start from a uniform random point of the eps-ball (else from x)"}
/* clang-format on */

#endif
