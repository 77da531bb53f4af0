/* apgd: Auto-PGD (Croce & Hein, ICML 2020) in the L-infinity ball,
 * untargeted, on the cross-entropy or the DLR loss. The loop lives in
 * apgd_core.c, shared with apgd-t. */
#include <string.h>

#include <clasp/plugin.h>

#include "apgd_core.h"

static clasp_status apgd_create(const clasp_params *p, void **state)
{
    const char *loss = clasp_params_str(p, "loss");
    int dlr;
    if (!strcmp(loss, "ce")) dlr = 0;
    else if (!strcmp(loss, "dlr")) dlr = 1;
    else return clasp_error(CLASP_ERR_INVALID, "apgd: loss must be 'ce' or 'dlr', got '%s'", loss);
    return apgd_core_create("apgd", p, dlr, 0, 0, state);
}

static const clasp_param_spec apgd_params[] = {
    APGD_CORE_PARAMS,
    {"loss", CLASP_PARAM_STRING, 0, 0, 0, "ce",
     "ce (cross-entropy) or dlr (difference of logits ratio; needs >= 3 classes)"},
};

static void apgd_cost(const clasp_params *p, clasp_attack_cost *c)
{
    double n = clasp_params_num(p, "steps") * clasp_params_num(p, "restarts");
    c->forward = n;
    c->backward = n;
}

static const clasp_attack_traits apgd_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .cost = apgd_cost,
};

static const clasp_attack_fns apgd_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = apgd_create,
    .perturb = apgd_core_perturb,
    .destroy = apgd_core_destroy,
    .traits = &apgd_traits,
};

static const clasp_plugin_desc apgd_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "apgd",
    .version = "1.0",
    .summary = "L-inf Auto-PGD, CE or DLR loss, step-size halving (Croce & Hein 2020)",
    .n_params = (int)(sizeof apgd_params / sizeof apgd_params[0]),
    .params = apgd_params,
    .attack = &apgd_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &apgd_desc;
}
