/* pgd-at: adversarial training (Madry et al. 2018, "Towards Deep Learning
 * Models Resistant to Adversarial Attacks"): train on the worst case the
 * inner attack finds,
 *     min_θ  E[ (1 - mix) · CE(f(x'), y) + mix · CE(f(x), y) ],
 *     x' = attack(x, y)  (the attack declared in the defense block, e.g. pgd),
 * with per-sample weights w[i] = class_weights[y[i]] on both terms when the
 * host (or a wrapping defense such as reweight) sets class weights.
 *
 * mix = 0 is Madry's pure adversarial loss; mix = 1 is standard training
 * (the attack is then not run at all). The attack runs in eval mode
 * (BatchNorm on running statistics) unless attack_train_mode is set, as
 * recipes differ there; the loss in the host's train mode. */
#include <stdlib.h>

#include <clasp/plugin.h>

#include "defense_common.h"

#define WHO "pgd-at"

typedef struct pgd_at {
    float mix;
    int attack_train_mode;
    /* Device scratch, reused across batches (clasp_tensor_ensure). */
    clasp_tensor *x_adv, *pred, *w;
    def_grads clean; /* the clean term's gradients while the adversarial ones are made */
} pgd_at;

static clasp_status pgd_at_create(const clasp_params *p, void **state)
{
    pgd_at *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->mix = (float)clasp_params_num(p, "mix");
    s->attack_train_mode = clasp_params_num(p, "attack_train_mode") != 0;
    *state = s;
    return CLASP_OK;
}

static clasp_status pgd_at_step(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                                const clasp_tensor *y, clasp_rng *rng, float *loss)
{
    pgd_at *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    CLASP_TRY(def_check_batch(WHO, x, y));
    clasp_model *m = env->model;
    const clasp_tensor *w;
    CLASP_TRY(def_sample_weights(WHO, env, y, &s->w, &w));
    if (s->mix >= 1.0f) return clasp_model_ce_grads(m, x, y, w, loss);

    clasp_attack_instance *attack = def_env_attack(env);
    if (!attack)
        return clasp_error(CLASP_ERR_CONFIG,
                           WHO " needs an attack for its inner maximisation: declare one in the "
                               "defense block (e.g. attack: {name: pgd, params: {eps: 0.1, steps: "
                               "10}})");
    int n = x->shape[0];
    CLASP_TRY(clasp_tensor_ensure(x->ctx, &s->x_adv, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_tensor_ensure(x->ctx, &s->pred, CLASP_I32, 1, &n));
    CLASP_TRY(clasp_attack_run_mode(attack, m, x, y, rng, s->x_adv, s->pred, s->attack_train_mode));

    float loss_clean = 0, loss_adv = 0;
    if (s->mix > 0.0f) {
        CLASP_TRY(clasp_model_ce_grads(m, x, y, w, loss ? &loss_clean : NULL));
        CLASP_TRY(def_grads_save(&s->clean, m));
    }
    CLASP_TRY(clasp_model_ce_grads(m, s->x_adv, y, w, loss ? &loss_adv : NULL));
    if (s->mix > 0.0f) CLASP_TRY(def_grads_combine(m, 1.0f - s->mix, &s->clean, s->mix));
    if (loss) *loss = (1.0f - s->mix) * loss_adv + s->mix * loss_clean;
    return CLASP_OK;
}

static void pgd_at_destroy(void *state)
{
    pgd_at *s = state;
    if (!s) return;
    clasp_tensor_free(s->x_adv);
    clasp_tensor_free(s->pred);
    clasp_tensor_free(s->w);
    def_grads_free(&s->clean);
    free(s);
}

static const clasp_param_spec pgd_at_params[] = {
    {"mix", CLASP_PARAM_FLOAT, 0.0, 0.0, 1.0, NULL,
     "share of the clean loss: (1-mix)*CE(x_adv) + mix*CE(x); 0 = pure adversarial, "
     "1 = standard training"},
    {"attack_train_mode", CLASP_PARAM_BOOL, 0, 0, 1, NULL,
     "run the inner attack with the model in train mode (BatchNorm on each attack batch's "
     "statistics, updating the running ones) instead of eval mode"},
};

static const clasp_defense_fns pgd_at_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = pgd_at_create,
    .train_step = pgd_at_step,
    .destroy = pgd_at_destroy,
};

static const clasp_plugin_desc pgd_at_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "pgd-at",
    .version = "1.0",
    .summary = "adversarial training on the declared attack's examples (Madry et al. 2018)",
    .n_params = (int)(sizeof pgd_at_params / sizeof pgd_at_params[0]),
    .params = pgd_at_params,
    .defense = &pgd_at_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &pgd_at_desc;
}
