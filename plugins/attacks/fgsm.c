/* fgsm: the fast gradient sign method (Goodfellow et al. 2015, "Explaining
 * and Harnessing Adversarial Examples"): one step of size eps along the
 * sign of the input gradient of the cross-entropy,
 *     x_adv = clamp(x + eps * sign(∇x CE(z(x), y)), 0, 1). */
#include <stdlib.h>

#include <clasp/plugin.h>

typedef struct fgsm_state {
    float eps;
    clasp_tensor *grad; /* reused across batches */
} fgsm_state;

static clasp_status fgsm_create(const clasp_params *p, void **state)
{
    fgsm_state *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->eps = (float)clasp_params_num(p, "eps");
    *state = s;
    return CLASP_OK;
}

static clasp_status fgsm_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                                 const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                                 clasp_tensor *pred)
{
    (void)rng; /* deterministic */
    fgsm_state *s = state;
    CLASP_TRY(clasp_tensor_ensure(x->ctx, &s->grad, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_model_input_grad(m, x, y, 1.0f, s->grad, NULL, NULL));
    CLASP_TRY(clasp_tensor_copy(x_adv, x));
    CLASP_TRY(clasp_sign_step(x_adv, s->grad, s->eps));
    CLASP_TRY(clasp_clamp(x_adv, 0.0f, 1.0f));
    return clasp_model_predict(m, x_adv, pred);
}

static void fgsm_destroy(void *state)
{
    fgsm_state *s = state;
    if (!s) return;
    clasp_tensor_free(s->grad);
    free(s);
}

static const clasp_param_spec fgsm_params[] = {
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,
     "L-infinity size of the step (pixels are in [0,1])"},
};

static void fgsm_cost(const clasp_params *p, clasp_attack_cost *c)
{
    (void)p;
    c->forward = 1;
    c->backward = 1;
}

static const clasp_attack_traits fgsm_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .cost = fgsm_cost,
};

static const clasp_attack_fns fgsm_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = fgsm_create,
    .perturb = fgsm_perturb,
    .destroy = fgsm_destroy,
    .traits = &fgsm_traits,
};

static const clasp_plugin_desc fgsm_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fgsm",
    .version = "1.0",
    .summary = "fast gradient sign method: one L-inf step (Goodfellow et al. 2015)",
    .n_params = (int)(sizeof fgsm_params / sizeof fgsm_params[0]),
    .params = fgsm_params,
    .attack = &fgsm_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &fgsm_desc;
}
