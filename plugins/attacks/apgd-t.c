/* apgd-t: Auto-PGD (Croce & Hein, ICML 2020) on the targeted DLR loss,
 * run against each of the n_target_classes classes with the highest clean
 * logits other than the label, every run on the examples still correctly
 * classified. The loop lives in apgd_core.c, shared with apgd. */
#include <clasp/plugin.h>

#include "apgd_core.h"

static clasp_status apgd_t_create(const clasp_params *p, void **state)
{
    return apgd_core_create("apgd-t", p, 1, 1, (int)clasp_params_num(p, "n_target_classes"), state);
}

static const clasp_param_spec apgd_t_params[] = {
    APGD_CORE_PARAMS,
    {"n_target_classes", CLASP_PARAM_INT, 9, 1, 1000, NULL,
     "target classes tried, most likely first (at most num_classes - 1 are used)"},
};

static void apgd_t_cost(const clasp_params *p, clasp_attack_cost *c)
{
    double n = clasp_params_num(p, "steps") * clasp_params_num(p, "restarts") *
               clasp_params_num(p, "n_target_classes");
    c->forward = n;
    c->backward = n;
}

static const clasp_attack_traits apgd_t_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .cost = apgd_t_cost,
};

static const clasp_attack_fns apgd_t_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = apgd_t_create,
    .perturb = apgd_core_perturb,
    .destroy = apgd_core_destroy,
    .traits = &apgd_t_traits,
};

static const clasp_plugin_desc apgd_t_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "apgd-t",
    .version = "1.0",
    .summary = "L-inf Auto-PGD on the targeted DLR loss over the top classes (Croce & Hein 2020)",
    .n_params = (int)(sizeof apgd_t_params / sizeof apgd_t_params[0]),
    .params = apgd_t_params,
    .attack = &apgd_t_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &apgd_t_desc;
}
