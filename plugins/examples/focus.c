/* focus: a defense that wraps another one, written the way a plugin outside
 * the clasp tree is written (installed headers only). It trains the wrapped
 * defense with one class's loss weighted up by `boost`, on top of any class
 * weights the host gives, so that a weak class gets more of the training
 * signal; with no wrapped defense it trains plain weighted cross-entropy.
 *
 * Build it and use it as any other defense, with the wrapped one under
 * "inner:" in the experiment's defense block:
 *     cc -shared -fPIC focus.c $(pkg-config --cflags --libs clasp) -o focus.so
 *     defense: {name: focus, class: 6, boost: 2, inner: {name: pgd-at}} */
#include <stdlib.h>

#include <clasp/plugin.h>

typedef struct focus_state {
    int cls;
    float boost;
    clasp_tensor *w;        /* class weights handed on, [num_classes] */
    clasp_tensor *w_sample; /* per-example weights when nothing is wrapped */
} focus_state;

static clasp_status focus_create(const clasp_params *params, void **state)
{
    focus_state *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "focus: out of memory");
    s->cls = (int)clasp_params_num(params, "class");
    s->boost = (float)clasp_params_num(params, "boost");
    *state = s;
    return CLASP_OK;
}

/* The host's env is sized: read what it may lack through CLASP_STRUCT_HAS. */
static clasp_status focus_train_step(void *state, const clasp_defense_env *env,
                                     const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                     float *loss)
{
    focus_state *s = state;
    if (!CLASP_STRUCT_HAS(env, clasp_defense_env, class_weights) || !env->model)
        return clasp_error(CLASP_ERR_INVALID, "focus: the host's env is too old");
    int k = env->num_classes;
    if (s->cls >= k)
        return clasp_error(CLASP_ERR_INVALID, "focus: class %d, but the model has %d classes",
                           s->cls, k);
    float *h = malloc((size_t)k * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "focus: out of memory");
    clasp_status st = CLASP_OK;
    if (env->class_weights) st = clasp_tensor_read(env->class_weights, h);
    else
        for (int c = 0; c < k; c++) h[c] = 1.0f;
    h[s->cls] *= s->boost;
    clasp_ctx *ctx = clasp_model_ctx(env->model);
    if (st == CLASP_OK) st = clasp_tensor_ensure(ctx, &s->w, CLASP_F32, 1, &k);
    if (st == CLASP_OK) st = clasp_tensor_write(s->w, h);
    free(h);
    CLASP_TRY(st);

    /* A copy of the env with our weights; the host clears its `inner` for
     * the wrapped defense. */
    clasp_defense_env e = clasp_defense_env_copy(env);
    e.class_weights = s->w;
    if (e.inner) return clasp_defense_run_step(e.inner, &e, x, y, rng, loss);
    int n = (int)y->numel;
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->w_sample, CLASP_F32, 1, &n));
    CLASP_TRY(clasp_gather_class(s->w, y, s->w_sample));
    return clasp_model_ce_grads(env->model, x, y, s->w_sample, loss);
}

static clasp_status focus_epoch_end(void *state, const clasp_defense_env *env,
                                    const clasp_class_metrics *val)
{
    (void)state;
    if (!CLASP_STRUCT_HAS(env, clasp_defense_env, inner) || !env->inner) return CLASP_OK;
    return clasp_defense_run_epoch_end(env->inner, env, val);
}

static void focus_destroy(void *state)
{
    focus_state *s = state;
    if (!s) return;
    clasp_tensor_free(s->w);
    clasp_tensor_free(s->w_sample);
    free(s);
}

static const clasp_param_spec focus_params[] = {
    /* name, type, default, min, max, string default, doc */
    {"class", CLASP_PARAM_INT, 0, 0, 1000, NULL, "the class whose loss is weighted up"},
    {"boost", CLASP_PARAM_FLOAT, 2.0, 0.0, 100.0, NULL, "its loss weight factor"},
};

static const clasp_defense_fns focus_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = focus_create,
    .train_step = focus_train_step,
    .epoch_end = focus_epoch_end,
    .destroy = focus_destroy,
};

static const clasp_plugin_desc focus_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "focus",
    .version = "1.0",
    .summary = "wraps a defense and weights one class's loss up",
    .n_params = 2,
    .params = focus_params,
    .defense = &focus_fns,
};

/* The one symbol clasp looks for; its prototype is in clasp/plugin.h. */
const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &focus_desc;
}
