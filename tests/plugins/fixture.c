/* Test plugins, good and deliberately broken: one source, one variant per
 * FIXTURE_* define (see meson.build). Built like any plugin, never
 * installed, and kept out of the folders clasp searches by default. */
#include <math.h>

#include <clasp/plugin.h>

#include <stdlib.h>

#if defined(FIXTURE_MISUSE)
/* A plugin with typos in its lookups: it reads a parameter its schema
 * lacks and a number as text, then reports success with state to free. The
 * host must fail the call, name the parameter, free the state through
 * destroy() (the leak checker watches) and keep running. */
static clasp_status fx_create(const clasp_params *p, void **state)
{
    *state = malloc(16);
    if (!*state) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    double eps = clasp_params_num(p, "epss");
    const char *steps = clasp_params_str(p, "steps");
    return eps == 0.0 && steps && !*steps ? CLASP_OK : CLASP_ERR_INVALID;
}

static void fx_destroy(void *state)
{
    free(state);
}
#else
static clasp_status fx_create(const clasp_params *p, void **state)
{
    *state = NULL;
    if (clasp_params_num(p, "fail") != 0)
        return clasp_error(CLASP_ERR_INVALID, "create asked to fail (mode '%s')",
                           clasp_params_str(p, "mode"));
    return CLASP_OK;
}
#endif

#if !defined(FIXTURE_NULLFNS)
/* Copies x and predicts: the identity attack. */
static clasp_status fx_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                               const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                               clasp_tensor *pred)
{
    (void)state, (void)y, (void)rng;
    CLASP_TRY(clasp_tensor_copy(x_adv, x));
    return clasp_model_predict(m, x_adv, pred);
}
#endif

static clasp_status fx_train_step(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                                  const clasp_tensor *y, clasp_rng *rng, float *loss)
{
    (void)state, (void)env, (void)x, (void)y, (void)rng;
    if (loss) *loss = 0.0f;
    return CLASP_OK;
}

/* clang-format off */
#define GOOD_PARAMS                                                                  \
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL, "a float in [0,1]"},             \
    {"steps", CLASP_PARAM_INT, 10, 0, 100, NULL, "an int in [0,100]"},               \
    {"lo", CLASP_PARAM_FLOAT, 1.0, 0.5, INFINITY, NULL, "a float >= 0.5"},           \
    {"fail", CLASP_PARAM_BOOL, 0, 0, 1, NULL, "make create() fail"},                 \
    {"mode", CLASP_PARAM_STRING, 0, 0, 0, "fast", "a string"}
/* clang-format on */

#if defined(FIXTURE_SCHEMA_DUP)
static const clasp_param_spec params[] = {
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL, "first"},
    {"eps", CLASP_PARAM_FLOAT, 0.1, 0.0, 1.0, NULL, "second"},
};
#elif defined(FIXTURE_SCHEMA_MINMAX)
static const clasp_param_spec params[] = {
    {"eps", CLASP_PARAM_FLOAT, 0.5, 1.0, 0.0, NULL, "min > max"},
};
#elif defined(FIXTURE_SCHEMA_DEFAULT)
static const clasp_param_spec params[] = {
    {"steps", CLASP_PARAM_INT, 500, 0, 100, NULL, "default out of range"},
};
#elif defined(FIXTURE_SCHEMA_TYPE)
static const clasp_param_spec params[] = {
    {"eps", (clasp_param_type)9, 0.1, 0.0, 1.0, NULL, "no such type"},
};
#else
static const clasp_param_spec params[] = {GOOD_PARAMS};
#endif

#if defined(FIXTURE_TRAITS_BUDGET)
/* An L2 attack whose budget names a parameter the schema lacks. */
static const clasp_attack_traits traits = {.size = sizeof(clasp_attack_traits),
                                           .threat = CLASP_THREAT_L2,
                                           .budget = "radius"};
#elif defined(FIXTURE_TRAITS_TEMPERATURE)
/* A temperature without the attack it equals at 1. */
static const clasp_attack_traits traits = {.size = sizeof(clasp_attack_traits),
                                           .threat = CLASP_THREAT_LINF,
                                           .budget = "eps",
                                           .temperature = "lo"};
#elif defined(FIXTURE_TRAITS_COST)
/* A cost function that asks for a parameter the schema lacks: the
 * estimate must come out unknown, not made of neutral values. */
static void bad_cost(const clasp_params *p, clasp_attack_cost *c)
{
    c->forward = clasp_params_num(p, "iterations");
    c->backward = 0;
}
static const clasp_attack_traits traits = {.size = sizeof(clasp_attack_traits),
                                           .threat = CLASP_THREAT_UNBOUNDED,
                                           .cost = bad_cost};
#endif

static const clasp_attack_fns attack_fns = {
    .size = sizeof(clasp_attack_fns),
#if defined(FIXTURE_TRAITS_BUDGET) || defined(FIXTURE_TRAITS_TEMPERATURE) || \
    defined(FIXTURE_TRAITS_COST)
    .traits = &traits,
#endif
    .create = fx_create,
#if !defined(FIXTURE_NULLFNS)
    .perturb = fx_perturb,
#endif
#if defined(FIXTURE_MISUSE)
    .destroy = fx_destroy,
#endif
};

static const clasp_defense_fns defense_fns = {
    .size = sizeof(clasp_defense_fns),
    .create = fx_create,
    .train_step = fx_train_step,
};

static const clasp_plugin_desc desc = {
#if defined(FIXTURE_BADABI)
    .abi_version = CLASP_PLUGIN_ABI_VERSION + 41,
#else
    .abi_version = CLASP_PLUGIN_ABI_VERSION,
#endif
#if defined(FIXTURE_DEFENSE)
    .kind = CLASP_PLUGIN_DEFENSE,
    .name = "fixture-defense",
#elif defined(FIXTURE_SHADOW)
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fgsm", /* the name of a built-in */
#elif defined(FIXTURE_MISUSE)
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fixture-misuse",
#elif defined(FIXTURE_TRAITS_COST)
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fixture-cost",
#elif defined(FIXTURE_BADNAME)
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "Bad Name",
#else
    .kind = CLASP_PLUGIN_ATTACK,
    .name = "fixture-good", /* also FIXTURE_DUP: a second file, same name */
#endif
    .version = "0.1",
    .summary = "test fixture",
    .n_params = (int)(sizeof params / sizeof params[0]),
    .params = params,
    .attack = &attack_fns,
    .defense = &defense_fns,
};

#if defined(FIXTURE_NOSYM)
/* Exported, but under the wrong name. */
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry_typo(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry_typo(void)
{
    return &desc;
}
#else
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void);
CLASP_PLUGIN_EXPORT const clasp_plugin_desc *clasp_plugin_entry(void)
{
    return &desc;
}
#endif
