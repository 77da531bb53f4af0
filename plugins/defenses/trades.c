/* trades: TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off
 * between Robustness and Accuracy"):
 *     min_θ  E[ CE(f(x), y) + β · KL(softmax f(x) ‖ softmax f(x')) ],
 *     x' ≈ argmax_{‖x'-x‖∞ ≤ eps} KL(softmax f(x) ‖ softmax f(x')).
 *
 * The inner maximisation is TRADES' own, not an attack plugin (the defense
 * block's attack, if any, is ignored): x' starts at x + 0.001·N(0,1), then
 * `steps` sign-gradient steps of size step_size on the KL, each projected
 * onto the eps-ball around x and onto [0,1]. It runs in eval mode against
 * the clean logits as a fixed target; the loss is taken in train mode with
 * x' held fixed (no gradient flows through the inner loop), as in the
 * reference implementation.
 *
 * Both terms see the parameters, through two forward passes: the model
 * keeps one forward's activations, so the step is
 *     forward x' → backward β·∂KL/∂z' → gradients saved;
 *     forward x  → backward ∂CE/∂z + β·∂KL/∂z → plus the saved gradients.
 * Per-sample weights w[i] = class_weights[y[i]] multiply both terms when
 * set. Means are over the batch (KL as "batchmean").
 *
 * β = 0 is exactly standard training: the step is then clasp_model_ce_grads
 * on (x, y) and nothing else (no inner loop, no KL pass, no random numbers
 * drawn), so its gradients are bit-identical to standard training. */
#include <stdlib.h>

#include <clasp/plugin.h>

#include "defense_common.h"

#define WHO "trades"

typedef struct trades {
    float beta, eps, step_size;
    int steps;
    /* Device scratch, reused across batches (clasp_tensor_ensure). */
    clasp_tensor *x_adv, *dx, *z_target, *z_clean, *dzp, *dzq, *dce, *kl, *ce, *w;
    def_grads adv; /* the adversarial branch's parameter gradients */
} trades;

static clasp_status trades_create(const clasp_params *p, void **state)
{
    trades *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->beta = (float)clasp_params_num(p, "beta");
    s->eps = (float)clasp_params_num(p, "eps");
    s->steps = (int)clasp_params_num(p, "steps");
    s->step_size = (float)clasp_params_num(p, "step_size");
    *state = s;
    return CLASP_OK;
}

/* Copies the logits of a forward pass of x (they belong to the model and
 * die with its next forward). */
static clasp_status forward_copy(clasp_model *m, const clasp_tensor *x, clasp_tensor *out)
{
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, x, &z));
    return clasp_tensor_copy(out, z);
}

/* x' for the batch, in eval mode (the caller restores the mode). */
static clasp_status inner_max(trades *s, clasp_model *m, const clasp_tensor *x, clasp_rng *rng)
{
    clasp_model_set_train(m, 0);
    CLASP_TRY(forward_copy(m, x, s->z_target));
    CLASP_TRY(clasp_rng_normal(rng, s->x_adv, 0.0f, 0.001f));
    CLASP_TRY(clasp_add_scaled(x, 1.0f, s->x_adv, s->x_adv));
    CLASP_TRY(clasp_project_linf(s->x_adv, x, s->eps));
    CLASP_TRY(clasp_clamp(s->x_adv, 0.0f, 1.0f));
    for (int i = 0; i < s->steps; i++) {
        const clasp_tensor *z;
        CLASP_TRY(clasp_model_forward(m, s->x_adv, &z));
        /* Only the sign of the input gradient is used: any positive scale
         * does; 1 keeps the numbers away from underflow. */
        CLASP_TRY(clasp_kl_div(s->z_target, z, 1.0f, NULL, NULL, s->dzq));
        CLASP_TRY(clasp_model_backward(m, s->dzq, 0, s->dx));
        CLASP_TRY(clasp_pgd_step(s->x_adv, s->dx, x, s->step_size, s->eps, 0.0f, 1.0f));
    }
    return CLASP_OK;
}

static clasp_status trades_loss_grads(trades *s, clasp_model *m, const clasp_tensor *x,
                                      const clasp_tensor *y, const clasp_tensor *w, float *loss)
{
    int n = x->shape[0];
    clasp_model_set_train(m, 1);
    /* The clean logits in train mode. The layers act the same in both
     * modes; only an inference calibration (eval mode) can tell them apart,
     * so the inner loop's target is reused unless one is set. */
    clasp_tensor *z_clean = s->z_target;
    if (clasp_model_calibration(m, NULL, NULL)) {
        CLASP_TRY(forward_copy(m, x, s->z_clean));
        z_clean = s->z_clean;
    }

    /* Adversarial branch: β/N · ∂KL/∂z' (and the clean side ∂KL/∂z, kept
     * for the clean branch), through the forward of x'. */
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, s->x_adv, &z));
    CLASP_TRY(clasp_kl_div(z_clean, z, s->beta / (float)n, loss ? s->kl : NULL, s->dzp, s->dzq));
    if (w) {
        CLASP_TRY(clasp_scale_per_sample(s->dzp, w));
        CLASP_TRY(clasp_scale_per_sample(s->dzq, w));
    }
    CLASP_TRY(clasp_model_backward(m, s->dzq, 1, NULL));
    CLASP_TRY(def_grads_save(&s->adv, m));

    /* Clean branch: ∂CE/∂z / N (weighted) + β/N · ∂KL/∂z. */
    CLASP_TRY(clasp_model_forward(m, x, &z));
    CLASP_TRY(clasp_softmax_xent(z, y, 1.0f, w, 1.0f / (float)n, loss ? s->ce : NULL, s->dce));
    CLASP_TRY(clasp_axpy(s->dce, 1.0f, s->dzp));
    CLASP_TRY(clasp_model_backward(m, s->dce, 1, NULL));
    CLASP_TRY(def_grads_combine(m, 1.0f, &s->adv, 1.0f));

    if (loss) {
        double ce, kl;
        CLASP_TRY(def_mean(s->ce, NULL, n, &ce)); /* already weighted by softmax_xent */
        CLASP_TRY(def_mean(s->kl, w, n, &kl));
        *loss = (float)(ce + (double)s->beta * kl);
    }
    return CLASP_OK;
}

static clasp_status trades_step(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                                const clasp_tensor *y, clasp_rng *rng, float *loss)
{
    trades *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    CLASP_TRY(def_check_batch(WHO, x, y));
    clasp_model *m = env->model;
    const clasp_tensor *w;
    CLASP_TRY(def_sample_weights(WHO, env, y, &s->w, &w));
    /* β = 0: standard training, bit for bit (see the top of the file). */
    if (s->beta == 0.0f) return clasp_model_ce_grads(m, x, y, w, loss);

    clasp_ctx *ctx = x->ctx;
    int n = x->shape[0], k = env->num_classes;
    int zs[2] = {n, k};
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->x_adv, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->dx, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->z_target, CLASP_F32, 2, zs));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->z_clean, CLASP_F32, 2, zs));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->dzp, CLASP_F32, 2, zs));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->dzq, CLASP_F32, 2, zs));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->dce, CLASP_F32, 2, zs));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->kl, CLASP_F32, 1, &n));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->ce, CLASP_F32, 1, &n));

    int was_train = clasp_model_is_train(m);
    clasp_status st = inner_max(s, m, x, rng);
    if (st == CLASP_OK) st = trades_loss_grads(s, m, x, y, w, loss);
    clasp_model_set_train(m, was_train);
    return st;
}

static void trades_destroy(void *state)
{
    trades *s = state;
    if (!s) return;
    clasp_tensor *t[] = {s->x_adv, s->dx,  s->z_target, s->z_clean, s->dzp,
                         s->dzq,   s->dce, s->kl,       s->ce,      s->w};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) clasp_tensor_free(t[i]);
    def_grads_free(&s->adv);
    free(s);
}

static const clasp_param_spec trades_params[] = {
    {"beta", CLASP_PARAM_FLOAT, 6.0, 0.0, 1000.0, NULL,
     "weight of the KL robustness term; 0 = standard training exactly"},
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,
     "L-infinity radius of the inner maximisation (pixels are in [0,1])"},
    {"steps", CLASP_PARAM_INT, 10, 0, 10000, NULL,
     "sign-gradient steps of the inner maximisation of the KL"},
    {"step_size", CLASP_PARAM_FLOAT, 0.01, 0.0, 1.0, NULL, "size of each inner step (L-infinity)"},
};

static const clasp_defense_fns trades_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = trades_create,
    .train_step = trades_step,
    .destroy = trades_destroy,
};

static const clasp_plugin_desc trades_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "trades",
    .version = "1.0",
    .summary = "TRADES: CE + beta*KL(f(x)||f(x')) with its own KL inner loop (Zhang et al. 2019)",
    .n_params = (int)(sizeof trades_params / sizeof trades_params[0]),
    .params = trades_params,
    .defense = &trades_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &trades_desc;
}
