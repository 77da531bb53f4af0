/* square: the Square Attack in L-infinity (Andriushchenko et al., ECCV
 * 2020), score-based: it only queries the model's logits, never its
 * gradients, so gradient masking does not stop it. The algorithm is in
 * square_core.c. */
#include <stdlib.h>

#include <clasp/plugin.h>

#include "square_core.h"

typedef struct square_state {
    square_cfg cfg;
    host_oracle_model om;
} square_state;

static clasp_status square_create(const clasp_params *p, void **state)
{
    square_state *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->cfg.eps = (float)clasp_params_num(p, "eps");
    s->cfg.n_queries = (int)clasp_params_num(p, "n_queries");
    s->cfg.p_init = clasp_params_num(p, "p_init");
    s->cfg.restarts = (int)clasp_params_num(p, "restarts");
    *state = s;
    return CLASP_OK;
}

/* The host attack behind host_oracle_perturb. */
static clasp_status square_host(const void *cfg, const host_oracle *o, const float *x,
                                const int32_t *y, int n, clasp_rng *rng, float *adv)
{
    const square_cfg *c = cfg;
    return square_run(c, o, x, y, n, rng, adv, NULL);
}

static clasp_status square_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                                   const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                                   clasp_tensor *pred)
{
    square_state *s = state;
    return host_oracle_perturb(&s->om, "square", 0, square_host, &s->cfg, m, x, y, rng, x_adv,
                               pred);
}

static void square_destroy(void *state)
{
    square_state *s = state;
    if (!s) return;
    host_oracle_model_free(&s->om);
    free(s);
}

static const clasp_param_spec square_params[] = {
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,
     "L-infinity radius of the allowed perturbation (pixels are in [0,1])"},
    {"n_queries", CLASP_PARAM_INT, 5000, 1, 10000000, NULL,
     "model queries per example and restart, the clean one included"},
    {"p_init", CLASP_PARAM_FLOAT, 0.8, 0.0, 1.0, NULL,
     "initial fraction of pixels in a square; halved after iterations 10, 50, 200, 500, 1000, "
     "2000, 4000, 6000, 8000 (times n_queries/10000 when n_queries > 10000)"},
    {"restarts", CLASP_PARAM_INT, 1, 1, 1000, NULL,
     "runs from new random stripes for the examples not flipped yet"},
};

static void square_cost(const clasp_params *p, clasp_attack_cost *c)
{
    c->forward = clasp_params_num(p, "n_queries") * clasp_params_num(p, "restarts");
    c->backward = 0;
}

static const clasp_attack_traits square_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .gradient_free = 1,
    .cost = square_cost,
};

static const clasp_attack_fns square_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = square_create,
    .perturb = square_perturb,
    .destroy = square_destroy,
    .traits = &square_traits,
};

static const clasp_plugin_desc square_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "square",
    .version = "1.0",
    .summary = "Square Attack: L-inf random search on the logits, no gradients "
               "(Andriushchenko et al. 2020)",
    .n_params = (int)(sizeof square_params / sizeof square_params[0]),
    .params = square_params,
    .attack = &square_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &square_desc;
}
