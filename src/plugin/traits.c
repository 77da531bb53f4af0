/* clasp — attack traits: what the host knows about an attack comes from the
 * traits its plugin declares (clasp_attack_traits in clasp/plugin.h), never
 * from its name. A plugin built before traits existed, or one that leaves
 * them out, gets the ABI-1 rule: L-infinity with budget "eps" when its schema
 * has such a float parameter, else unbounded; no other trait, no cost. */
#include <string.h>

#include "clasp/registry.h"
#include "plugin/plugin_internal.h"

static const clasp_attack_traits *declared(const clasp_plugin_desc *desc)
{
    if (!desc || desc->kind != CLASP_PLUGIN_ATTACK || !desc->attack) return NULL;
    const clasp_attack_fns *f = desc->attack;
    if (!CLASP_FNS_HAS(f, clasp_attack_fns, traits) || !f->traits) return NULL;
    return f->traits;
}

static const clasp_param_spec *float_param(const clasp_plugin_desc *desc, const char *name)
{
    for (int i = 0; name && i < desc->n_params; i++)
        if (desc->params[i].type == CLASP_PARAM_FLOAT && !strcmp(desc->params[i].name, name))
            return &desc->params[i];
    return NULL;
}

void clasp_attack_traits_of(const clasp_plugin_desc *desc, clasp_attack_traits *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    const clasp_attack_traits *t = declared(desc);
    if (t) {
        size_t n = t->size < sizeof *out ? t->size : sizeof *out;
        memcpy(out, t, n);
        out->size = sizeof *out;
    }
    if (out->threat == CLASP_THREAT_UNDECLARED && desc) {
        int linf = float_param(desc, "eps") != NULL;
        out->threat = linf ? CLASP_THREAT_LINF : CLASP_THREAT_UNBOUNDED;
        out->budget = linf ? "eps" : NULL;
    }
    if (out->threat == CLASP_THREAT_UNBOUNDED) out->budget = NULL;
}

int clasp_plugin_is_linf(const clasp_plugin_desc *desc)
{
    if (!desc || desc->kind != CLASP_PLUGIN_ATTACK) return 0;
    clasp_attack_traits t;
    clasp_attack_traits_of(desc, &t);
    return t.threat == CLASP_THREAT_LINF;
}

int clasp_attack_cost_of(const clasp_plugin_desc *desc, const clasp_params *params,
                         clasp_attack_cost *out)
{
    out->forward = out->backward = 0;
    const clasp_attack_traits *t = declared(desc);
    if (!t || !CLASP_STRUCT_HAS(t, clasp_attack_traits, cost) || !t->cost) return 0;
    plugin_misuse saved, bad;
    plugin_misuse_enter(&saved);
    t->cost(params, out);
    /* A cost function asking for a parameter its schema lacks is a plugin
     * bug: the estimate is then unknown, never made of neutral values. */
    if (plugin_misuse_leave(&saved, &bad) || !(out->forward >= 0) || !(out->backward >= 0)) {
        out->forward = out->backward = 0;
        return 0;
    }
    return 1;
}

clasp_status clasp_attack_traits_check(const clasp_plugin_desc *desc)
{
    const clasp_attack_traits *t = declared(desc);
    if (!t) return CLASP_OK;
    if (t->size < offsetof(clasp_attack_traits, threat) + sizeof t->threat)
        return clasp_error(CLASP_ERR_PLUGIN, "'%s': attack->traits->size %zu is too small",
                           desc->name, t->size);
    switch (t->threat) {
    case CLASP_THREAT_UNDECLARED:
    case CLASP_THREAT_UNBOUNDED: break;
    case CLASP_THREAT_LINF:
    case CLASP_THREAT_L2:
        if (!CLASP_STRUCT_HAS(t, clasp_attack_traits, budget) || !float_param(desc, t->budget))
            return clasp_error(CLASP_ERR_PLUGIN,
                               "'%s': traits: a bounded threat needs `budget` naming a float "
                               "parameter of the schema (got '%s')",
                               desc->name,
                               CLASP_STRUCT_HAS(t, clasp_attack_traits, budget) && t->budget
                                   ? t->budget
                                   : "(null)");
        break;
    default:
        return clasp_error(CLASP_ERR_PLUGIN,
                           "'%s': traits: unknown threat %d (expected CLASP_THREAT_LINF, _L2 or "
                           "_UNBOUNDED)",
                           desc->name, (int)t->threat);
    }
    if (CLASP_STRUCT_HAS(t, clasp_attack_traits, equals_at_one) && t->temperature) {
        if (!float_param(desc, t->temperature))
            return clasp_error(CLASP_ERR_PLUGIN,
                               "'%s': traits: `temperature` '%s' is not a float parameter of the "
                               "schema",
                               desc->name, t->temperature);
        if (!t->equals_at_one || !*t->equals_at_one || strlen(t->equals_at_one) > 63)
            return clasp_error(CLASP_ERR_PLUGIN,
                               "'%s': traits: a `temperature` needs `equals_at_one`, the attack "
                               "it equals at temperature 1",
                               desc->name);
    }
    return CLASP_OK;
}
