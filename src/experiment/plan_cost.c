/* clasp — estimates of an experiment's work for `clasp check`: an attack's
 * cost is what its plugin declares (clasp_attack_traits.cost), never read
 * off parameter names. */
#include <stdlib.h>
#include <string.h>

#include "clasp/registry.h"
#include "plan_internal.h"

static double param_or(const clasp_plan_plugin *a, const char *name, double def)
{
    for (int i = 0; i < a->n_params; i++)
        if (!strcmp(a->keys[i], name)) return strtod(a->values[i], NULL);
    return def;
}

/* The plugin's declared cost of a in forward+backward pairs into *pairs;
 * 0 when it declares none (or a's parameters do not validate). */
static int declared_pairs(const clasp_plan_plugin *a, double *pairs)
{
    clasp_params params;
    if (clasp_params_build(a->desc, (const char *const *)a->keys, (const char *const *)a->values,
                           NULL, a->n_params, &params) != CLASP_OK)
        return 0;
    clasp_attack_cost c;
    int known = clasp_attack_cost_of(a->desc, &params, &c);
    clasp_params_free(&params);
    *pairs = (c.forward + c.backward) / 2;
    return known;
}

double clasp_plan_attack_cost(const clasp_plan_plugin *a)
{
    if (!a || !a->desc) return 0;
    double pairs = 1;
    if (!declared_pairs(a, &pairs)) return 1;
    return pairs < 1 ? 1 : pairs;
}

int clasp_plan_attack_cost_known(const clasp_plan_plugin *a)
{
    double pairs;
    return !a || !a->desc || declared_pairs(a, &pairs);
}

/* Training passes per example beyond the plain step: the inner attack and
 * a defense's own inner loop (trades' "steps": defenses declare no cost
 * yet, so this one name is still read). */
static double defense_cost(const clasp_plan_model *m)
{
    double c = clasp_plan_attack_cost(clasp_plan_model_attack(m));
    for (const clasp_plan_defense *d = m->defense; d; d = d->inner)
        c += param_or(&d->plugin, "steps", 0);
    return c;
}

void clasp_plan_estimate(const clasp_plan *p, size_t train_n, size_t val_n, size_t test_n,
                         clasp_plan_work *out)
{
    memset(out, 0, sizeof *out);
    if (p->val_eval_size && p->val_eval_size < val_n) val_n = p->val_eval_size;
    if (p->test_size && p->test_size < test_n) test_n = p->test_size;
    double per_test = 0;
    for (int a = 0; a < p->n_attacks; a++) {
        const clasp_plan_attack *pa = &p->attacks[a];
        /* An ensemble: every member on every example, an upper bound (later
         * members see only what the earlier ones left). */
        per_test += 1;
        if (!pa->n_members) per_test += clasp_plan_attack_cost(&pa->plugin);
        for (int j = 0; j < pa->n_members; j++) per_test += clasp_plan_attack_cost(&pa->members[j]);
    }
    for (int i = 0; i < p->n_models; i++) {
        double atk = clasp_plan_attack_cost(clasp_plan_model_attack(&p->models[i]));
        double epochs = p->models[i].epochs;
        out->train += epochs * (double)train_n * (1 + defense_cost(&p->models[i]));
        out->validate += epochs * (double)val_n * (1 + atk);
        out->evaluate += (double)test_n * per_test;
    }
}
