/* reweight: class-reweighted training. Wraps another defense (the
 * experiment's "inner:", e.g. pgd-at or trades; without one, standard
 * training) and gives it per-class loss weights that move toward the
 * classes the last validation found least robust.
 *
 * Weights start at 1. After each epoch, from the class-wise validation
 * metrics (robust when the host measured them, else clean):
 *     e_k = 1 - correct_k / count_k                  (class k's error)
 *     t_k ∝ exp(strength · e_k),    mean_k t_k = 1   (target weights)
 *     w_k ← momentum · w_k + (1 - momentum) · t_k,  then mean_k w_k = 1.
 * The exponential form is chosen over a power of the error because it is
 * positive for every class (a class at zero error keeps a weight, so it is
 * never dropped from training) and depends only on error differences: a
 * class with 0.1 more error than another gets exp(0.1 · strength) times its
 * target weight. strength = 0 keeps every weight at 1 (plain inner defense).
 * momentum damps the epoch-to-epoch noise of a small validation split. A
 * class without validation examples is given the mean error of the others
 * (no evidence either way).
 *
 * When the host (or an outer wrapper) already sets class weights, the inner
 * defense gets their product with these. The mean-1 normalisation keeps the
 * loss scale, so the learning rate means the same as without reweighting. */
#include <math.h>
#include <stdlib.h>

#include <clasp/plugin.h>
#include <clasp/registry.h>

#include "defense_common.h"

#define WHO "reweight"

typedef struct reweight {
    double strength, momentum;
    int k;     /* classes; 0 until the first hook tells */
    float *w;  /* [k] current weights (host) */
    int dirty; /* w changed since the last upload */
    clasp_tensor *w_dev, *w_prod, *w_sample;
} reweight;

static clasp_status reweight_create(const clasp_params *p, void **state)
{
    reweight *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->strength = clasp_params_num(p, "strength");
    s->momentum = clasp_params_num(p, "momentum");
    *state = s;
    return CLASP_OK;
}

/* Learns the number of classes from the first hook; all ones to start. */
static clasp_status ensure_classes(reweight *s, int k)
{
    if (k <= 0) return clasp_error(CLASP_ERR_INVALID, WHO ": %d classes", k);
    if (s->k == k) return CLASP_OK;
    if (s->k)
        return clasp_error(CLASP_ERR_INVALID, WHO ": was used with %d classes, now %d", s->k, k);
    s->w = malloc((size_t)k * sizeof *s->w);
    if (!s->w) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) s->w[i] = 1.0f;
    s->k = k;
    s->dirty = 1;
    return CLASP_OK;
}

/* The env for the wrapped defense (or for standard training): ours with
 * the class weights set. */
static clasp_status inner_env(reweight *s, const clasp_defense_env *env, clasp_ctx *ctx,
                              clasp_defense_env *out)
{
    CLASP_TRY(ensure_classes(s, env->num_classes));
    int k = s->k;
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->w_dev, CLASP_F32, 1, &k));
    if (s->dirty) {
        CLASP_TRY(clasp_tensor_write(s->w_dev, s->w));
        s->dirty = 0;
    }
    *out = clasp_defense_env_copy(env);
    const clasp_tensor *outer = def_env_class_weights(env);
    if (outer) {
        if (outer->dtype != CLASP_F32 || outer->numel != (size_t)k)
            return clasp_error(CLASP_ERR_INVALID,
                               WHO ": the host's class weights must be %d floats", k);
        CLASP_TRY(clasp_tensor_ensure(ctx, &s->w_prod, CLASP_F32, 1, &k));
        CLASP_TRY(clasp_mul(s->w_dev, outer, s->w_prod));
        out->class_weights = s->w_prod;
    } else {
        out->class_weights = s->w_dev;
    }
    return CLASP_OK;
}

static clasp_status reweight_step(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                                  const clasp_tensor *y, clasp_rng *rng, float *loss)
{
    reweight *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    CLASP_TRY(def_check_batch(WHO, x, y));
    clasp_defense_env e;
    CLASP_TRY(inner_env(s, env, x->ctx, &e));
    return def_inner_step(WHO, def_env_inner(env), &e, x, y, rng, &s->w_sample, loss);
}

/* The update at the top of the file, in double on the host. */
static clasp_status update_weights(reweight *s, const clasp_class_metrics *val)
{
    int k = s->k;
    const int64_t *correct = val->robust_correct ? val->robust_correct : val->clean_correct;
    if (!val->count || !correct)
        return clasp_error(CLASP_ERR_INVALID, WHO ": epoch_end metrics lack counts");
    double *e = malloc((size_t)k * sizeof *e);
    if (!e) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    double known = 0;
    int n_known = 0;
    for (int i = 0; i < k; i++) {
        e[i] = NAN;
        if (val->count[i] > 0) {
            e[i] = 1.0 - (double)correct[i] / (double)val->count[i];
            known += e[i];
            n_known++;
        }
    }
    if (!n_known) {
        free(e); /* nothing measured: keep the weights */
        return CLASP_OK;
    }
    double emax = -INFINITY, mean_e = known / n_known;
    for (int i = 0; i < k; i++) {
        if (isnan(e[i])) e[i] = mean_e;
        if (e[i] > emax) emax = e[i];
    }
    /* Shifting by the largest error keeps exp() at most 1: no overflow for
     * any strength, and the normalisation below removes the shift. */
    double tsum = 0;
    for (int i = 0; i < k; i++) tsum += e[i] = exp(s->strength * (e[i] - emax));
    double wsum = 0;
    for (int i = 0; i < k; i++) {
        double t = e[i] * k / tsum;
        e[i] = s->momentum * s->w[i] + (1.0 - s->momentum) * t;
        wsum += e[i];
    }
    for (int i = 0; i < k; i++) s->w[i] = (float)(e[i] * k / wsum);
    free(e);
    s->dirty = 1;
    return CLASP_OK;
}

static clasp_status reweight_epoch_end(void *state, const clasp_defense_env *env,
                                       const clasp_class_metrics *val)
{
    reweight *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    CLASP_TRY(ensure_classes(s, env->num_classes));
    if (val) {
        if (val->num_classes != s->k)
            return clasp_error(CLASP_ERR_INVALID, WHO ": metrics for %d classes, the model has %d",
                               val->num_classes, s->k);
        CLASP_TRY(update_weights(s, val));
    }
    clasp_defense_instance *inner = def_env_inner(env);
    if (!inner) return CLASP_OK;
    /* The inner defense sees the weights it will train with next epoch. */
    clasp_ctx *ctx = clasp_model_ctx(env->model);
    clasp_defense_env e;
    CLASP_TRY(inner_env(s, env, ctx, &e));
    return clasp_defense_run_epoch_end(inner, &e, val);
}

/* A wrapped defense that fits something at the end (calibrate) still
 * gets to. */
static clasp_status reweight_finish(void *state, const clasp_defense_env *env, clasp_rng *rng)
{
    reweight *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    clasp_defense_instance *inner = def_env_inner(env);
    if (!inner) return CLASP_OK;
    clasp_ctx *ctx = clasp_model_ctx(env->model);
    clasp_defense_env e;
    CLASP_TRY(inner_env(s, env, ctx, &e));
    return clasp_defense_run_finish(inner, &e, rng);
}

static int reweight_class_weights(void *state, float *out, int num_classes)
{
    reweight *s = state;
    if (s->k && s->k != num_classes) return 0;
    for (int i = 0; i < num_classes; i++) out[i] = s->k ? s->w[i] : 1.0f;
    return 1;
}

static void reweight_destroy(void *state)
{
    reweight *s = state;
    if (!s) return;
    clasp_tensor_free(s->w_dev);
    clasp_tensor_free(s->w_prod);
    clasp_tensor_free(s->w_sample);
    free(s->w);
    free(s);
}

static const clasp_param_spec reweight_params[] = {
    {"strength", CLASP_PARAM_FLOAT, 1.0, 0.0, 100.0, NULL,
     "target weights grow as exp(strength * class error); 0 = uniform weights"},
    {"momentum", CLASP_PARAM_FLOAT, 0.5, 0.0, 1.0, NULL,
     "share of the previous weights kept at each epoch end (1 = weights frozen at 1)"},
};

static const clasp_defense_fns reweight_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = reweight_create,
    .train_step = reweight_step,
    .epoch_end = reweight_epoch_end,
    .finish = reweight_finish,
    .class_weights = reweight_class_weights,
    .destroy = reweight_destroy,
};

static const clasp_plugin_desc reweight_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "reweight",
    .version = "1.0",
    .summary = "class-reweighted training: weights from last epoch's class-wise robust error",
    .n_params = (int)(sizeof reweight_params / sizeof reweight_params[0]),
    .params = reweight_params,
    .defense = &reweight_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &reweight_desc;
}
