/* noise: a random-noise baseline attack, written the way a plugin outside
 * the clasp tree is written. It adds uniform noise from the L-infinity
 * ball of radius eps and clamps to [0,1]: what a model loses to this is
 * what it loses to chance, not to an adversary.
 *
 * Build it and use it:
 *     cc -shared -fPIC noise.c $(pkg-config --cflags --libs clasp) -o noise.so
 *     mkdir -p ~/clasp-plugins && mv noise.so ~/clasp-plugins/
 *     export CLASP_PLUGIN_PATH=~/clasp-plugins
 *     clasp plugins                      # lists "noise" with its parameters
 *     clasp attack --model m.safetensors --attack noise --set eps=0.2 */
#include <stdlib.h>

#include <clasp/plugin.h>

typedef struct noise_state {
    float eps;
} noise_state;

/* The host has checked eps against the schema below: it is in [0, 1]. */
static clasp_status noise_create(const clasp_params *params, void **state)
{
    noise_state *s = malloc(sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "noise: out of memory");
    s->eps = (float)clasp_params_num(params, "eps");
    *state = s;
    return CLASP_OK;
}

static clasp_status noise_perturb(void *state, clasp_model *model, const clasp_tensor *x,
                                  const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                                  clasp_tensor *pred)
{
    (void)y; /* the labels do not matter to noise */
    noise_state *s = state;
    /* x_adv = clamp(U(-eps, eps) + x, 0, 1), all on the device; x is only
     * read. The host's rng makes the noise reproducible for a seed. */
    CLASP_TRY(clasp_rng_uniform(rng, x_adv, -s->eps, s->eps));
    CLASP_TRY(clasp_axpy(x_adv, 1.0f, x));
    CLASP_TRY(clasp_clamp(x_adv, 0.0f, 1.0f));
    return clasp_model_predict(model, x_adv, pred);
}

static void noise_destroy(void *state)
{
    free(state);
}

static const clasp_param_spec noise_params[] = {
    /* name, type, default, min, max, string default, doc */
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL, "L-infinity radius of the uniform noise"},
};

/* What the attack is, for clasp's reports and estimates: bounded in
 * L-infinity by "eps", and gradient-free (one forward pass an example), so
 * reports compare it with the gradient-based attacks at the same eps. */
static void noise_cost(const clasp_params *params, clasp_attack_cost *cost)
{
    (void)params;
    cost->forward = 1;
    cost->backward = 0;
}

static const clasp_attack_traits noise_traits = {
    .size = sizeof(clasp_attack_traits),
    .threat = CLASP_THREAT_LINF,
    .budget = "eps",
    .gradient_free = 1,
    .cost = noise_cost,
};

static const clasp_attack_fns noise_fns = {
    .size = sizeof(clasp_attack_fns),
    .create = noise_create,
    .perturb = noise_perturb,
    .destroy = noise_destroy,
    .traits = &noise_traits,
};

static const clasp_plugin_desc noise_desc = {
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "noise",
    .version = "1.0",
    .summary = "random-noise baseline: uniform noise in the eps-ball, clamped to [0,1]",
    .n_params = 1,
    .params = noise_params,
    .attack = &noise_fns,
};

/* The one symbol clasp looks for. */
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &noise_desc;
}
