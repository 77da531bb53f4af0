/* fab: the fast adaptive boundary attack in L-infinity (Croce and Hein,
 * ICML 2020), targeted by default (FAB-T, as in AutoAttack's standard
 * version). It needs a model of at least 2 classes. The algorithm is in
 * fab_core.c. */
#include <stdlib.h>

#include <clasp/plugin.h>

#include "fab_core.h"

typedef struct fab_state {
    fab_cfg cfg;
    host_oracle_model om;
} fab_state;

static clasp_status fab_create(const clasp_params *p, void **state)
{
    fab_state *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->cfg.eps = (float)clasp_params_num(p, "eps");
    s->cfg.steps = (int)clasp_params_num(p, "steps");
    s->cfg.n_target_classes = (int)clasp_params_num(p, "n_target_classes");
    s->cfg.restarts = (int)clasp_params_num(p, "restarts");
    s->cfg.alpha_max = clasp_params_num(p, "alpha_max");
    s->cfg.eta = clasp_params_num(p, "eta");
    s->cfg.beta = clasp_params_num(p, "beta");
    s->cfg.targeted = clasp_params_num(p, "targeted") != 0;
    *state = s;
    return CLASP_OK;
}

/* The host attack behind host_oracle_perturb. */
static clasp_status fab_host(const void *cfg, const host_oracle *o, const float *x,
                             const int32_t *y, int n, clasp_rng *rng, float *adv)
{
    const fab_cfg *c = cfg;
    return fab_attack(c, o, x, y, n, rng, adv, NULL);
}

static clasp_status fab_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                                const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                                clasp_tensor *pred)
{
    fab_state *s = state;
    return host_oracle_perturb(&s->om, "fab", 2, fab_host, &s->cfg, m, x, y, rng, x_adv, pred);
}

static void fab_destroy(void *state)
{
    fab_state *s = state;
    if (!s) return;
    host_oracle_model_free(&s->om);
    free(s);
}

static const clasp_param_spec fab_params[] = {
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,
     "L-infinity radius: only misclassified points this close count (pixels are in [0,1])"},
    {"steps", CLASP_PARAM_INT, 100, 0, 100000, NULL, "iterations per target class and restart"},
    {"n_target_classes", CLASP_PARAM_INT, 9, 1, 100000, NULL,
     "targeted: the most likely wrong classes tried in turn (at most classes - 1)"},
    {"restarts", CLASP_PARAM_INT, 1, 1, 1000, NULL,
     "runs per target class; the first from x, later ones from a random point at eps/2"},
    {"alpha_max", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL,
     "largest weight of the step from x in the biased step"},
    {"eta", CLASP_PARAM_FLOAT, 1.05, 1.0, 10.0, NULL,
     "overshoot of the projection onto the linearised boundary"},
    {"beta", CLASP_PARAM_FLOAT, 0.9, 0.0, 1.0, NULL,
     "backward step: a misclassified point moves to x + beta (x' - x)"},
    {"targeted", CLASP_PARAM_BOOL, 1, 0, 1, NULL,
     "FAB-T (true): target the top wrong classes in turn; false: the nearest boundary each step"},
};

static void fab_cost(const clasp_params *p, clasp_attack_cost *c)
{
    /* one forward and one backward pass per step and target (the targeted
     * version needs two logits' gradients, taken as one pass) */
    double t = clasp_params_num(p, "targeted") != 0 ? clasp_params_num(p, "n_target_classes") : 1;
    double n = clasp_params_num(p, "steps") * clasp_params_num(p, "restarts") * t;
    c->forward = n;
    c->backward = n;
}

static const clasp_attack_traits fab_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .cost = fab_cost,
};

static const clasp_attack_fns fab_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = fab_create,
    .perturb = fab_perturb,
    .destroy = fab_destroy,
    .traits = &fab_traits,
};

static const clasp_plugin_desc fab_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fab",
    .version = "1.0",
    .summary = "FAB-T: L-inf fast adaptive boundary attack, targeted (Croce & Hein 2020)",
    .n_params = (int)(sizeof fab_params / sizeof fab_params[0]),
    .params = fab_params,
    .attack = &fab_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &fab_desc;
}
