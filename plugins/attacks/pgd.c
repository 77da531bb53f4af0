/* pgd: projected gradient descent in the L-infinity ball (Madry et al.
 * 2018), maximising the cross-entropy. The loop lives in pgd_core.c, shared
 * with tpgd. */
#include <clasp/plugin.h>

#include "pgd_core.h"

static clasp_status pgd_create(const clasp_params *p, void **state)
{
    return pgd_core_create(p, 1.0f, state);
}

static const clasp_param_spec pgd_params[] = {PGD_CORE_PARAMS};

static const clasp_attack_traits pgd_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .cost = pgd_core_cost,
};

static const clasp_attack_fns pgd_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = pgd_create,
    .perturb = pgd_core_perturb,
    .destroy = pgd_core_destroy,
    .traits = &pgd_traits,
};

static const clasp_plugin_desc pgd_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "pgd",
    .version = "1.0",
    .summary = "L-inf PGD with random start and restarts (Madry et al. 2018)",
    .n_params = (int)(sizeof pgd_params / sizeof pgd_params[0]),
    .params = pgd_params,
    .attack = &pgd_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &pgd_desc;
}
