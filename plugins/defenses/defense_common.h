/* Helpers shared by the built-in defenses (pgd-at, trades, reweight,
 * calibrate). Everything here is static: each plugin gets its own copy and
 * exports nothing but its entry point. Only the public API is used, so the
 * same code would build out of tree. */
#ifndef CLASP_DEFENSE_COMMON_H
#define CLASP_DEFENSE_COMMON_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <clasp/plugin.h>

/* The host's clasp_defense_env may come from an older build with a shorter
 * struct (it is append-only and sized by env->size): a member the host did
 * not have reads as absent, never as whatever lies past its struct. */
#define DEF_ENV_HAS(env, member) CLASP_STRUCT_HAS(env, clasp_defense_env, member)

/* Checks what every hook needs from the env and the batch. */
static inline clasp_status def_check_env(const char *who, const clasp_defense_env *env)
{
    if (!env || !DEF_ENV_HAS(env, num_classes) || !env->model)
        return clasp_error(CLASP_ERR_INVALID, "%s: the host passed no model in the defense env",
                           who);
    int k = clasp_model_num_classes(env->model);
    if (env->num_classes != k)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: env->num_classes is %d but the model has %d outputs", who,
                           env->num_classes, k);
    return CLASP_OK;
}

static inline clasp_status def_check_batch(const char *who, const clasp_tensor *x,
                                           const clasp_tensor *y)
{
    if (x->ndim != 4 || x->dtype != CLASP_F32 || y->dtype != CLASP_I32 ||
        y->numel != (size_t)x->shape[0])
        return clasp_error(CLASP_ERR_INVALID, "%s: expected x float [N,C,H,W] and y int32 [N]",
                           who);
    return CLASP_OK;
}

static inline const clasp_tensor *def_env_class_weights(const clasp_defense_env *env)
{
    return DEF_ENV_HAS(env, class_weights) ? env->class_weights : NULL;
}

static inline clasp_attack_instance *def_env_attack(const clasp_defense_env *env)
{
    return DEF_ENV_HAS(env, attack) ? env->attack : NULL;
}

static inline clasp_defense_instance *def_env_inner(const clasp_defense_env *env)
{
    return DEF_ENV_HAS(env, inner) ? env->inner : NULL;
}

/* Per-sample loss weights w[i] = class_weights[y[i]] into *scratch (made or
 * resized here), or *w = NULL when the env has no class weights (then
 * every loss below runs unweighted, exactly as clasp_model_ce_grads with
 * w = NULL). */
static inline clasp_status def_sample_weights(const char *who, const clasp_defense_env *env,
                                              const clasp_tensor *y, clasp_tensor **scratch,
                                              const clasp_tensor **w)
{
    *w = NULL;
    const clasp_tensor *cw = def_env_class_weights(env);
    if (!cw) return CLASP_OK;
    if (cw->dtype != CLASP_F32 || cw->numel != (size_t)env->num_classes)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: class weights must be %d floats (one per class), got %zu", who,
                           env->num_classes, cw->numel);
    int n = (int)y->numel;
    CLASP_TRY(clasp_tensor_ensure(y->ctx, scratch, CLASP_F32, 1, &n));
    CLASP_TRY(clasp_gather_class(cw, y, *scratch));
    *w = *scratch;
    return CLASP_OK;
}

/* The training step of a wrapping defense: the wrapped one (`inner`, from
 * the wrapper's env) with inner_env (the wrapper's env or a
 * clasp_defense_env_copy of it; the host clears its `inner`) when there is
 * one, else standard (class-weighted) cross-entropy training. */
static inline clasp_status def_inner_step(const char *who, clasp_defense_instance *inner,
                                          const clasp_defense_env *inner_env, const clasp_tensor *x,
                                          const clasp_tensor *y, clasp_rng *rng,
                                          clasp_tensor **w_scratch, float *loss)
{
    if (inner) return clasp_defense_run_step(inner, inner_env, x, y, rng, loss);
    const clasp_tensor *w;
    CLASP_TRY(def_sample_weights(who, inner_env, y, w_scratch, &w));
    return clasp_model_ce_grads(inner_env->model, x, y, w, loss);
}

/* ---- a saved copy of the model's parameter gradients ----------------- */

/* Losses with two forward passes (clean and adversarial) need two backward
 * passes, and each backward overwrites the model's gradients: the first
 * pass's gradients wait here. */
typedef struct def_grads {
    int n;
    clasp_tensor **t;
} def_grads;

static inline void def_grads_free(def_grads *g)
{
    for (int i = 0; i < g->n; i++) clasp_tensor_free(g->t[i]);
    free(g->t);
    g->t = NULL;
    g->n = 0;
}

/* Copies the model's current gradients into g (buffers kept across calls). */
static inline clasp_status def_grads_save(def_grads *g, clasp_model *m)
{
    int n = clasp_model_num_params(m);
    if (g->n != n) {
        def_grads_free(g);
        g->t = calloc((size_t)n, sizeof *g->t);
        if (n && !g->t) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        g->n = n;
    }
    for (int i = 0; i < n; i++) {
        const clasp_tensor *src = clasp_model_grad(m, i);
        CLASP_TRY(clasp_tensor_ensure(src->ctx, &g->t[i], src->dtype, src->ndim, src->shape));
        CLASP_TRY(clasp_tensor_copy(g->t[i], src));
    }
    return CLASP_OK;
}

/* Model gradients = a * model gradients + b * saved ones. */
static inline clasp_status def_grads_combine(clasp_model *m, float a, const def_grads *g, float b)
{
    for (int i = 0; i < g->n; i++) {
        clasp_tensor *dst = clasp_model_grad(m, i);
        if (a != 1.0f) CLASP_TRY(clasp_scale(dst, a));
        CLASP_TRY(clasp_axpy(dst, b, g->t[i]));
    }
    return CLASP_OK;
}

/* Mean of a device float vector of n values (a host read), optionally
 * weighted per element by a second vector w (sum(w*v)/n; w may be NULL). */
static inline clasp_status def_mean(const clasp_tensor *v, const clasp_tensor *w, int n,
                                    double *out)
{
    *out = 0;
    if (n <= 0) return CLASP_OK;
    float *h = malloc((size_t)n * 2 * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st = clasp_tensor_read(v, h);
    if (st == CLASP_OK && w) st = clasp_tensor_read(w, h + n);
    double s = 0;
    for (int i = 0; st == CLASP_OK && i < n; i++) s += (double)h[i] * (w ? (double)h[n + i] : 1.0);
    free(h);
    CLASP_TRY(st);
    *out = s / n;
    return CLASP_OK;
}

#endif
