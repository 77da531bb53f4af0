/* tpgd: Temperature-PGD. PGD (pgd_core.c, the very code of the pgd plugin)
 * maximising CE(softmax(z / T), y): the logits are divided by a temperature
 * T before the softmax. T > 1 flattens the softmax, so the gradient keeps
 * pointing at other classes even where the model is confidently right
 * (where plain CE saturates); T < 1 sharpens it. T = 1 is exactly pgd:
 * same seed and parameters give bit-identical results. */
#include <clasp/plugin.h>

#include "pgd_core.h"

static clasp_status tpgd_create(const clasp_params *p, void **state)
{
    return pgd_core_create(p, (float)clasp_params_num(p, "T"), state);
}

static const clasp_param_spec tpgd_params[] = {
    PGD_CORE_PARAMS,
    {"T", CLASP_PARAM_FLOAT, 1.0, 1e-3, 1e3, NULL,
     "softmax temperature of the attacked loss (> 0; 1 = plain pgd)"},
};

static const clasp_attack_traits tpgd_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .temperature = "T",
    .equals_at_one = "pgd",
    .cost = pgd_core_cost,
};

static const clasp_attack_fns tpgd_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = tpgd_create,
    .perturb = pgd_core_perturb,
    .destroy = pgd_core_destroy,
    .traits = &tpgd_traits,
};

static const clasp_plugin_desc tpgd_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "tpgd",
    .version = "1.0",
    .summary = "Temperature-PGD: L-inf PGD on CE(softmax(z/T), y); T = 1 is pgd",
    .n_params = (int)(sizeof tpgd_params / sizeof tpgd_params[0]),
    .params = tpgd_params,
    .attack = &tpgd_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &tpgd_desc;
}
