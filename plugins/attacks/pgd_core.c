/* The L-infinity PGD loop of the pgd and tpgd plugins (pgd_core.h says
 * what it computes). Both plugins link this one object, so tpgd with T = 1
 * runs the very instructions of pgd. */
#include "pgd_core.h"

#include <stdlib.h>

struct pgd_core {
    float eps, alpha, t;
    int steps, restarts, rand_init;
    /* Device scratch, reused across batches (clasp_tensor_ensure). */
    clasp_tensor *cur, *grad, *noise, *loss, *cur_pred, *mask;
    /* Host scratch for restarts: one value per example. */
    float *best_loss, *loss_h;
    int32_t *best_wrong, *best_pred, *pred_h, *y_h, *mask_h;
    int cap;
};

static void pgd_core_free(pgd_core *s)
{
    if (!s) return;
    clasp_tensor_free(s->cur);
    clasp_tensor_free(s->grad);
    clasp_tensor_free(s->noise);
    clasp_tensor_free(s->loss);
    clasp_tensor_free(s->cur_pred);
    clasp_tensor_free(s->mask);
    free(s->best_loss), free(s->loss_h);
    free(s->best_wrong), free(s->best_pred), free(s->pred_h), free(s->y_h), free(s->mask_h);
    free(s);
}

clasp_status pgd_core_create(const clasp_params *p, float t, void **state)
{
    pgd_core *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->eps = (float)clasp_params_num(p, "eps");
    s->steps = (int)clasp_params_num(p, "steps");
    s->restarts = (int)clasp_params_num(p, "restarts");
    s->rand_init = clasp_params_num(p, "rand_init") != 0;
    s->t = t;
    /* alpha = 0 asks for the step relative to the budget, 2.5 * eps / steps,
     * which lets a walk from one side of the ball reach the other side
     * within the step budget while leaving room to move back. */
    double alpha = clasp_params_num(p, "alpha");
    if (alpha == 0 && s->steps > 0) alpha = 2.5 * s->eps / s->steps;
    s->alpha = (float)alpha;
    *state = s;
    return CLASP_OK;
}

static clasp_status pgd_core_host_fit(pgd_core *s, int n)
{
    if (n <= s->cap) return CLASP_OK;
    free(s->best_loss), free(s->loss_h);
    free(s->best_wrong), free(s->best_pred), free(s->pred_h), free(s->y_h), free(s->mask_h);
    size_t f = (size_t)n * sizeof(float), i = (size_t)n * sizeof(int32_t);
    s->best_loss = malloc(f), s->loss_h = malloc(f);
    s->best_wrong = malloc(i), s->best_pred = malloc(i), s->pred_h = malloc(i);
    s->y_h = malloc(i), s->mask_h = malloc(i);
    s->cap = n;
    if (!s->best_loss || !s->loss_h || !s->best_wrong || !s->best_pred || !s->pred_h || !s->y_h ||
        !s->mask_h) {
        s->cap = 0;
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    return CLASP_OK;
}

/* One restart from x into c: random start, then the steps. */
static clasp_status pgd_core_walk(pgd_core *s, clasp_model *m, const clasp_tensor *x,
                                  const clasp_tensor *y, clasp_rng *rng, clasp_tensor *c)
{
    if (s->rand_init && s->eps > 0) {
        CLASP_TRY(clasp_tensor_ensure(x->ctx, &s->noise, CLASP_F32, x->ndim, x->shape));
        CLASP_TRY(clasp_rng_uniform(rng, s->noise, -s->eps, s->eps));
        CLASP_TRY(clasp_add_scaled(x, 1.0f, s->noise, c));
        CLASP_TRY(clasp_clamp(c, 0.0f, 1.0f));
    } else {
        CLASP_TRY(clasp_tensor_copy(c, x));
    }
    if (s->steps > 0)
        CLASP_TRY(clasp_tensor_ensure(x->ctx, &s->grad, CLASP_F32, x->ndim, x->shape));
    for (int i = 0; i < s->steps; i++) {
        if (clasp_stop_requested()) return clasp_error(CLASP_ERR_INTERRUPTED, "stopped");
        CLASP_TRY(clasp_model_input_grad(m, c, y, s->t, s->grad, NULL, NULL));
        CLASP_TRY(clasp_pgd_step(c, s->grad, x, s->alpha, s->eps, 0.0f, 1.0f));
    }
    return CLASP_OK;
}

clasp_status pgd_core_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                              const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                              clasp_tensor *pred)
{
    pgd_core *s = state;
    int n = x->shape[0];
    if (s->restarts <= 1) {
        /* One walk: work in x_adv directly. */
        CLASP_TRY(pgd_core_walk(s, m, x, y, rng, x_adv));
        return clasp_model_predict(m, x_adv, pred);
    }
    clasp_ctx *ctx = x->ctx;
    CLASP_TRY(pgd_core_host_fit(s, n));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->cur, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->loss, CLASP_F32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->cur_pred, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->mask, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_read(y, s->y_h));
    for (int r = 0; r < s->restarts; r++) {
        CLASP_TRY(pgd_core_walk(s, m, x, y, rng, s->cur));
        /* Judge the result by the attack's own objective (loss at T). Only
         * N losses and N predictions come back; the choice is applied on
         * the device with a row mask. */
        const clasp_tensor *z;
        CLASP_TRY(clasp_model_forward(m, s->cur, &z));
        CLASP_TRY(clasp_softmax_xent(z, y, s->t, NULL, 1.0f, s->loss, NULL));
        CLASP_TRY(clasp_argmax_rows(z, s->cur_pred));
        CLASP_TRY(clasp_tensor_read(s->loss, s->loss_h));
        CLASP_TRY(clasp_tensor_read(s->cur_pred, s->pred_h));
        for (int i = 0; i < n; i++) {
            int wrong = s->pred_h[i] != s->y_h[i];
            int better = r == 0 || (wrong && !s->best_wrong[i]) ||
                         (wrong == s->best_wrong[i] && s->loss_h[i] > s->best_loss[i]);
            s->mask_h[i] = better;
            if (better) {
                s->best_wrong[i] = wrong;
                s->best_loss[i] = s->loss_h[i];
                s->best_pred[i] = s->pred_h[i];
            }
        }
        CLASP_TRY(clasp_tensor_write(s->mask, s->mask_h));
        CLASP_TRY(clasp_select_rows(x_adv, s->cur, s->mask));
    }
    return clasp_tensor_write(pred, s->best_pred);
}

void pgd_core_destroy(void *state)
{
    pgd_core_free(state);
}

void pgd_core_cost(const clasp_params *p, clasp_attack_cost *c)
{
    double n = clasp_params_num(p, "steps") * clasp_params_num(p, "restarts");
    c->forward = n;
    c->backward = n;
}
