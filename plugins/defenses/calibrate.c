/* calibrate: inference-time calibration for the worst class. Trains like
 * the defense it wraps (the experiment's "inner:", e.g. pgd-at or
 * reweight; without one, standard training), then after the last epoch
 * fits per-class logit offsets b (and optionally a temperature T). The
 * model applies the offsets from then on in eval mode, z → z + b, and its
 * checkpoints keep both: every later prediction, `clasp attack` included,
 * uses the offsets. T is kept for probabilities, softmax((z + b) / T), and
 * never scales the logits an attack differentiates: it cannot change a
 * prediction, and a small T would only saturate the softmax and hide the
 * gradient (masking, as defensive distillation does).
 *
 * The fit (finish hook):
 *   1. adversarial examples of the whole validation split with the defense
 *      block's attack, against the model WITHOUT calibration (any earlier
 *      one is cleared first), in batches of `batch`; their logits are kept
 *      on the host (N × K floats);
 *   2. b maximises the worst class's robust accuracy on those logits,
 *      subject to the overall robust accuracy dropping at most max_avg_drop
 *      below the uncalibrated one. Candidates compare by the worst class's
 *      accuracy, then by how many classes share it (fewer is better: with
 *      several classes tied at the bottom, e.g. all at 0, the worst
 *      accuracy can only rise once each is lifted, and this lets them
 *      rise one at a time), then by the overall accuracy; the constraint
 *      is checked in whole examples. Search:
 *      coordinate ascent from b = 0 on the grid {-max_offset, ...,
 *      max_offset} in steps of grid_step, one class at a time; when no
 *      single offset gains, the worst class moves together with one other
 *      class (within 10 grid steps of their values), since raising the
 *      worst class often pays only once a class it took examples from is
 *      raised too. A move needs a strict gain, so among equals the
 *      smallest change wins; at most `sweeps` rounds, fewer when one
 *      changes nothing. Deterministic for given logits; cost
 *      O(sweeps · K · grid · N) on the host, small next to the attack.
 *      The calibration is set even when every offset stays 0, so the
 *      checkpoint and the report show that it ran;
 *   3. with fit_temperature, T minimises the mean negative log-likelihood
 *      of softmax((z + b) / T) on the same examples (a log-spaced grid over
 *      [0.05, 20], then a finer one around the best). T never changes a
 *      prediction (argmax is scale-free); it only makes the confidences
 *      honest.
 *
 * Non-adaptive: the offsets are fitted on attacks against the uncalibrated
 * model. An attack run afterwards sees the calibrated model and may adapt
 * to it, so robust accuracy measured after calibration can differ from the
 * fitted one; the report's numbers after calibration are the ones to
 * trust. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clasp/plugin.h>
#include <clasp/registry.h>

#include "defense_common.h"

#define WHO "calibrate"

typedef struct calibrate {
    double max_avg_drop, max_offset, grid_step;
    int fit_temperature, batch, sweeps;
    clasp_tensor *w_sample;
} calibrate;

static clasp_status calibrate_create(const clasp_params *p, void **state)
{
    calibrate *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->max_avg_drop = clasp_params_num(p, "max_avg_drop");
    s->fit_temperature = clasp_params_num(p, "fit_temperature") != 0;
    s->batch = (int)clasp_params_num(p, "batch");
    s->max_offset = clasp_params_num(p, "max_offset");
    s->grid_step = clasp_params_num(p, "grid_step");
    s->sweeps = (int)clasp_params_num(p, "sweeps");
    *state = s;
    return CLASP_OK;
}

static clasp_status calibrate_step(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                                   const clasp_tensor *y, clasp_rng *rng, float *loss)
{
    calibrate *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    CLASP_TRY(def_check_batch(WHO, x, y));
    return def_inner_step(WHO, def_env_inner(env), env, x, y, rng, &s->w_sample, loss);
}

static clasp_status calibrate_epoch_end(void *state, const clasp_defense_env *env,
                                        const clasp_class_metrics *val)
{
    (void)state;
    clasp_defense_instance *inner = def_env_inner(env);
    if (!inner) return CLASP_OK;
    return clasp_defense_run_epoch_end(inner, env, val);
}

/* ---- adversarial logits of the validation split ------------------------- */

typedef struct adv_scratch {
    clasp_tensor *idx, *x, *y, *x_adv, *pred;
    int32_t *idx_h;
} adv_scratch;

static void adv_scratch_free(adv_scratch *a)
{
    clasp_tensor_free(a->idx);
    clasp_tensor_free(a->x);
    clasp_tensor_free(a->y);
    clasp_tensor_free(a->x_adv);
    clasp_tensor_free(a->pred);
    free(a->idx_h);
}

/* z_h[i*K + j]: logits of the attacked validation example i, uncalibrated
 * (the caller has cleared the calibration and set eval mode). */
static clasp_status adv_logits(const calibrate *s, const clasp_defense_env *env, clasp_rng *rng,
                               adv_scratch *a, float *z_h)
{
    clasp_model *m = env->model;
    const clasp_tensor *vx = env->val_x, *vy = env->val_y;
    clasp_ctx *ctx = vx->ctx;
    int n_all = vx->shape[0];
    a->idx_h = malloc((size_t)s->batch * sizeof *a->idx_h);
    if (!a->idx_h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    for (int first = 0; first < n_all; first += s->batch) {
        int n = n_all - first < s->batch ? n_all - first : s->batch;
        int xs[4] = {n, vx->shape[1], vx->shape[2], vx->shape[3]};
        const clasp_tensor *bx = vx, *by = vy;
        if (n != n_all) {
            /* A slice of the split, copied on the device by row index. */
            for (int i = 0; i < n; i++) a->idx_h[i] = first + i;
            CLASP_TRY(clasp_tensor_ensure(ctx, &a->idx, CLASP_I32, 1, &n));
            CLASP_TRY(clasp_tensor_write(a->idx, a->idx_h));
            CLASP_TRY(clasp_tensor_ensure(ctx, &a->x, CLASP_F32, 4, xs));
            CLASP_TRY(clasp_tensor_ensure(ctx, &a->y, CLASP_I32, 1, &n));
            CLASP_TRY(clasp_gather_rows(vx, a->idx, a->x));
            CLASP_TRY(clasp_gather_rows(vy, a->idx, a->y));
            bx = a->x, by = a->y;
        }
        CLASP_TRY(clasp_tensor_ensure(ctx, &a->x_adv, CLASP_F32, 4, xs));
        CLASP_TRY(clasp_tensor_ensure(ctx, &a->pred, CLASP_I32, 1, &n));
        CLASP_TRY(clasp_attack_run(env->attack, m, bx, by, rng, a->x_adv, a->pred));
        const clasp_tensor *z;
        CLASP_TRY(clasp_model_forward(m, a->x_adv, &z));
        CLASP_TRY(clasp_tensor_read(z, z_h + (size_t)first * (size_t)env->num_classes));
    }
    return CLASP_OK;
}

/* ---- the offset fit (host) ------------------------------------------- */

typedef struct fit {
    const float *z;   /* [n*k] adversarial logits */
    const int32_t *y; /* [n] labels */
    int n, k;
    double h, lim;    /* grid step and largest |offset| */
    int64_t *count;   /* [k] examples per class */
    int64_t *correct; /* [k] scratch */
    int64_t need;     /* least overall correct count allowed */
    int32_t *other;   /* [n] best class outside the moving ones, per example */
    float *other_v;   /* [n] its adjusted logit */
} fit;

/* How good a candidate is, compared in this order: feasible at all, the
 * worst class's accuracy, fewer classes at that accuracy (so several
 * classes stuck together at the bottom can be lifted one at a time), the
 * overall number correct. */
typedef struct fit_score {
    int feasible;
    double worst;
    int at_worst;
    int64_t total;
} fit_score;

static fit_score score(const fit *f)
{
    fit_score sc = {0, 2.0, 0, 0};
    for (int j = 0; j < f->k; j++) {
        sc.total += f->correct[j];
        if (f->count[j] <= 0) continue;
        double a = (double)f->correct[j] / (double)f->count[j];
        if (a < sc.worst - 1e-12) sc.worst = a, sc.at_worst = 1;
        else if (a <= sc.worst + 1e-12) sc.at_worst++;
    }
    sc.feasible = sc.total >= f->need;
    return sc;
}

/* Whether a is strictly better than b. */
static int score_better(fit_score a, fit_score b)
{
    if (a.feasible != b.feasible) return a.feasible;
    if (a.worst > b.worst + 1e-12) return 1;
    if (a.worst < b.worst - 1e-12) return 0;
    if (a.at_worst != b.at_worst) return a.at_worst < b.at_worst;
    return a.total > b.total;
}

/* Per-class correct counts of argmax(z + b), first index on ties (as
 * clasp_argmax_rows), summed in float like the device's logit adjust. */
static void count_correct(const fit *f, const float *b)
{
    memset(f->correct, 0, (size_t)f->k * sizeof *f->correct);
    for (int i = 0; i < f->n; i++) {
        const float *zi = f->z + (size_t)i * (size_t)f->k;
        int best = 0;
        float bv = zi[0] + b[0];
        for (int j = 1; j < f->k; j++) {
            float v = zi[j] + b[j];
            if (v > bv) bv = v, best = j;
        }
        if (best == f->y[i]) f->correct[f->y[i]]++;
    }
}

/* The class with the lowest accuracy (first on ties). */
static int worst_class(const fit *f, const float *b)
{
    count_correct(f, b);
    int w = -1;
    double wa = 2.0;
    for (int j = 0; j < f->k; j++) {
        if (f->count[j] <= 0) continue;
        double a = (double)f->correct[j] / (double)f->count[j];
        if (a < wa) wa = a, w = j;
    }
    return w;
}

/* Grid value t of the order 0, +h, -h, +2h, -2h, ... around the grid point
 * nearest to `centre`. Indices, not repeated additions, so every value is
 * exactly m·h for a whole m, whichever way the search reached it. */
static float grid_value(const fit *f, float centre, long t)
{
    long m = (t + 1) / 2;
    long at = lround((double)centre / f->h) + (t % 2 ? m : -m);
    return (float)((double)at * f->h);
}

/* Moves b[c1] (and b[c2] when c2 >= 0) to the best feasible grid values,
 * the others fixed. For each example the best class outside {c1, c2}
 * does not depend on the moving offsets, so it is found once and each
 * candidate costs one pass over the examples. c1 alone searches the whole
 * grid [-lim, lim]; a pair searches `window` steps around its current
 * values. Candidates go from the current values outward and a strict gain
 * is needed to move: among equals the smallest change wins. Returns
 * whether b changed. */
static int fit_move(const fit *f, float *b, int c1, int c2, long window)
{
    for (int i = 0; i < f->n; i++) {
        const float *zi = f->z + (size_t)i * (size_t)f->k;
        int best = -1;
        float bv = 0;
        for (int j = 0; j < f->k; j++) {
            if (j == c1 || j == c2) continue;
            float v = zi[j] + b[j];
            if (best < 0 || v > bv) bv = v, best = j;
        }
        f->other[i] = best, f->other_v[i] = bv;
    }
    long n1 = c2 < 0 ? 2 * (long)floor(f->lim / f->h + 1e-9) + 2 : 2 * window + 1;
    long n2 = c2 < 0 ? 1 : 2 * window + 1;
    fit_score best_score = {-1, 0, 0, 0}; /* below anything score() gives */
    float best1 = b[c1], best2 = c2 >= 0 ? b[c2] : 0.0f;
    for (long t1 = 0; t1 < n1; t1++) {
        /* Alone: the incumbent, then the absolute grid 0, +h, -h, ... */
        float v1 =
            c2 < 0 ? (t1 == 0 ? b[c1] : grid_value(f, 0.0f, t1 - 1)) : grid_value(f, b[c1], t1);
        if (fabsf(v1) > f->lim + 1e-6) continue;
        for (long t2 = 0; t2 < n2; t2++) {
            float v2 = c2 >= 0 ? grid_value(f, b[c2], t2) : 0.0f;
            if (c2 >= 0 && fabsf(v2) > f->lim + 1e-6) continue;
            memset(f->correct, 0, (size_t)f->k * sizeof *f->correct);
            for (int i = 0; i < f->n; i++) {
                const float *zi = f->z + (size_t)i * (size_t)f->k;
                /* argmax over {other, c1, c2}, first index on ties. */
                int p = f->other[i];
                float pv = f->other_v[i];
                float s1 = zi[c1] + v1;
                if (p < 0 || s1 > pv || (s1 == pv && c1 < p)) p = c1, pv = s1;
                if (c2 >= 0) {
                    float s2 = zi[c2] + v2;
                    if (s2 > pv || (s2 == pv && c2 < p)) p = c2, pv = s2;
                }
                if (p == f->y[i]) f->correct[p]++;
            }
            fit_score sc = score(f);
            if (best_score.feasible < 0 || score_better(sc, best_score))
                best_score = sc, best1 = v1, best2 = v2;
        }
    }
    int moved = best1 != b[c1] || (c2 >= 0 && best2 != b[c2]);
    b[c1] = best1;
    if (c2 >= 0) b[c2] = best2;
    return moved;
}

/* Coordinate ascent, see the top of the file. When no single offset can
 * gain, the worst class is tried together with each other class in turn
 * (raising one class often only pays once another is given back what it
 * lost), in a window of PAIR_WINDOW grid steps. */
#define PAIR_WINDOW 10
static clasp_status fit_offsets(const calibrate *s, const float *z, const int32_t *y, int n, int k,
                                float *b)
{
    fit f = {.z = z, .y = y, .n = n, .k = k, .h = s->grid_step, .lim = s->max_offset};
    f.count = calloc((size_t)k, sizeof *f.count);
    f.correct = calloc((size_t)k, sizeof *f.correct);
    f.other = malloc((size_t)n * sizeof *f.other);
    f.other_v = malloc((size_t)n * sizeof *f.other_v);
    if (!f.count || !f.correct || !f.other || !f.other_v) {
        free(f.count), free(f.correct), free(f.other), free(f.other_v);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) f.count[y[i]]++;
    for (int j = 0; j < k; j++) b[j] = 0.0f;
    count_correct(&f, b);
    int64_t base = 0;
    for (int j = 0; j < k; j++) base += f.correct[j];
    /* The floor in whole examples, so the check is exact integer arithmetic. */
    f.need = (int64_t)ceil(((double)base / n - s->max_avg_drop) * n - 1e-9);
    for (int sweep = 0; sweep < s->sweeps && k > 1; sweep++) {
        int moved = 0;
        for (int c = 0; c < k; c++) moved |= fit_move(&f, b, c, -1, 0);
        if (!moved) {
            int w = worst_class(&f, b);
            for (int j = 0; w >= 0 && j < k && !moved; j++)
                if (j != w) moved = fit_move(&f, b, w, j, PAIR_WINDOW);
        }
        if (!moved) break;
    }
    free(f.count), free(f.correct), free(f.other), free(f.other_v);
    return CLASP_OK;
}

/* Mean NLL of softmax((z + b) / t) (double, max-shifted). */
static double nll(const float *z, const int32_t *y, int n, int k, const float *b, double t)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * (size_t)k;
        double mx = -INFINITY;
        for (int j = 0; j < k; j++) {
            double v = ((double)zi[j] + b[j]) / t;
            if (v > mx) mx = v;
        }
        double se = 0;
        for (int j = 0; j < k; j++) se += exp(((double)zi[j] + b[j]) / t - mx);
        sum += mx + log(se) - ((double)zi[y[i]] + b[y[i]]) / t;
    }
    return sum / n;
}

static float fit_temperature(const float *z, const int32_t *y, int n, int k, const float *b)
{
    const double lo = log(0.05), hi = log(20.0);
    const int coarse = 120, fine = 40;
    double h = (hi - lo) / coarse, best_lt = 0, best = nll(z, y, n, k, b, 1.0);
    for (int i = 0; i <= coarse; i++) {
        double lt = lo + i * h, v = nll(z, y, n, k, b, exp(lt));
        if (v < best) best = v, best_lt = lt;
    }
    double centre = best_lt;
    for (int i = 0; i <= fine; i++) {
        double lt = centre - h + 2.0 * h * i / fine, v = nll(z, y, n, k, b, exp(lt));
        if (v < best) best = v, best_lt = lt;
    }
    return (float)exp(best_lt);
}

/* ---- finish -------------------------------------------------------------- */

static clasp_status check_val(const clasp_defense_env *env)
{
    if (!DEF_ENV_HAS(env, val_y) || !env->val_x || !env->val_y)
        return clasp_error(CLASP_ERR_CONFIG,
                           WHO " needs the validation split to fit its offsets: the experiment "
                               "must hold out a validation split");
    const clasp_tensor *vx = env->val_x, *vy = env->val_y;
    int c, h, w;
    clasp_model_input_shape(env->model, &c, &h, &w);
    if (vx->dtype != CLASP_F32 || vx->ndim != 4 || vx->shape[1] != c || vx->shape[2] != h ||
        vx->shape[3] != w || vy->dtype != CLASP_I32 || vy->numel != (size_t)vx->shape[0])
        return clasp_error(CLASP_ERR_INVALID,
                           WHO ": the validation split must be float [N,%d,%d,%d] with int32 "
                               "labels [N]",
                           c, h, w);
    if (vx->shape[0] < 1)
        return clasp_error(CLASP_ERR_CONFIG, WHO ": the validation split is empty");
    return CLASP_OK;
}

static clasp_status calibrate_finish(void *state, const clasp_defense_env *env, clasp_rng *rng)
{
    calibrate *s = state;
    CLASP_TRY(def_check_env(WHO, env));
    /* The wrapped defense finishes first: what it changes, we calibrate. */
    clasp_defense_instance *inner = def_env_inner(env);
    if (inner) {
        CLASP_TRY(clasp_defense_run_finish(inner, env, rng));
    }
    if (!def_env_attack(env))
        return clasp_error(CLASP_ERR_CONFIG,
                           WHO " needs an attack to make the adversarial validation examples its "
                               "offsets are fitted on: declare one in the defense block (e.g. "
                               "attack: {name: pgd, params: {eps: 0.1}})");
    CLASP_TRY(check_val(env));

    clasp_model *m = env->model;
    int n = env->val_x->shape[0], k = env->num_classes;
    float *z = malloc((size_t)n * (size_t)k * sizeof *z);
    int32_t *y = malloc((size_t)n * sizeof *y);
    float *b = malloc((size_t)k * sizeof *b), *old_b = malloc((size_t)k * sizeof *old_b);
    if (!z || !y || !b || !old_b) {
        free(z), free(y), free(b), free(old_b);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    clasp_status st = clasp_tensor_read(env->val_y, y);
    for (int i = 0; st == CLASP_OK && i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            st = clasp_error(CLASP_ERR_INVALID, WHO ": validation label %d at %d is not in [0, %d)",
                             (int)y[i], i, k);

    float old_t = 1.0f;
    int had_old = clasp_model_calibration(m, old_b, &old_t);
    int was_train = clasp_model_is_train(m);
    if (st == CLASP_OK) {
        clasp_model_set_train(m, 0);
        st = clasp_model_set_calibration(m, NULL, 1.0f);
        adv_scratch a = {0};
        if (st == CLASP_OK) st = adv_logits(s, env, rng, &a, z);
        adv_scratch_free(&a);
        clasp_model_set_train(m, was_train);
    }
    if (st == CLASP_OK) st = fit_offsets(s, z, y, n, k, b);
    if (st == CLASP_OK) {
        float t = s->fit_temperature ? fit_temperature(z, y, n, k, b) : 1.0f;
        st = clasp_model_set_calibration(m, b, t);
    }
    if (st != CLASP_OK && had_old) {
        /* Leave the model as it came; the first error is the one to tell. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        clasp_model_set_calibration(m, old_b, old_t);
        clasp_error(st, "%s", msg);
    }
    free(z), free(y), free(b), free(old_b);
    return st;
}

static void calibrate_destroy(void *state)
{
    calibrate *s = state;
    if (!s) return;
    clasp_tensor_free(s->w_sample);
    free(s);
}

static const clasp_param_spec calibrate_params[] = {
    {"max_avg_drop", CLASP_PARAM_FLOAT, 0.02, 0.0, 1.0, NULL,
     "largest allowed fall of overall robust accuracy (validation, absolute) for a better worst "
     "class"},
    {"fit_temperature", CLASP_PARAM_BOOL, 0, 0, 1, NULL,
     "also fit a temperature (min adversarial NLL; never changes a prediction)"},
    {"batch", CLASP_PARAM_INT, 256, 1, 65536, NULL,
     "batch size of the attack on the validation split"},
    {"max_offset", CLASP_PARAM_FLOAT, 3.0, 0.0, 20.0, NULL,
     "offsets are searched in [-max_offset, max_offset] (logit units)"},
    {"grid_step", CLASP_PARAM_FLOAT, 0.05, 0.001, 10.0, NULL, "spacing of the offset grid"},
    {"sweeps", CLASP_PARAM_INT, 20, 1, 1000, NULL,
     "coordinate-ascent passes over the classes at most (stops early when stable)"},
};

static const clasp_defense_fns calibrate_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = calibrate_create,
    .train_step = calibrate_step,
    .epoch_end = calibrate_epoch_end,
    .finish = calibrate_finish,
    .destroy = calibrate_destroy,
};

static const clasp_plugin_desc calibrate_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "calibrate",
    .version = "1.0",
    .summary = "per-class logit offsets fitted on adversarial validation examples for the worst "
               "class",
    .n_params = (int)(sizeof calibrate_params / sizeof calibrate_params[0]),
    .params = calibrate_params,
    .defense = &calibrate_fns,
};

CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &calibrate_desc;
}
