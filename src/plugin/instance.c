/* Attack and defense instances: validated parameters plus the plugin's
 * state, and the host side of every call into a plugin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/registry.h"
#include "plugin/plugin_internal.h"

struct clasp_attack_instance {
    const clasp_plugin_desc *desc;
    clasp_params params;
    void *state;
};

struct clasp_defense_instance {
    const clasp_plugin_desc *desc;
    clasp_params params;
    void *state;
};

/* Prefixes the plugin's own message with what was running, and covers for
 * a plugin that failed without saying why. clasp_error_clear() runs before
 * every call into a plugin, so an empty message here is the plugin's. */
static clasp_status plugin_failed(clasp_status st, const clasp_plugin_desc *d, const char *call)
{
    static const char none[] = "no error message recorded";
    char msg[900];
    snprintf(msg, sizeof msg, "%s", clasp_last_error());
    if (!strcmp(msg, none))
        return clasp_error(st, "%s %s: %s failed (%s) without a message",
                           clasp_plugin_kind_name(d->kind), d->name, call, clasp_status_string(st));
    return clasp_error(st, "%s %s: %s", clasp_plugin_kind_name(d->kind), d->name, msg);
}

/* Every call into a plugin goes between these two: the start clears the
 * error message and the record of bad parameter lookups; the end fails the
 * call when the plugin looked up a parameter its schema lacks, even if the
 * plugin then returned CLASP_OK (it worked with a made-up 0 or ""). */
static void call_start(plugin_misuse *saved)
{
    clasp_error_clear();
    plugin_misuse_enter(saved);
}

static clasp_status call_end(clasp_status st, const plugin_misuse *saved,
                             const clasp_plugin_desc *d, const char *call)
{
    plugin_misuse bad;
    if (!plugin_misuse_leave(saved, &bad))
        return st == CLASP_OK ? CLASP_OK : plugin_failed(st, d, call);
    char own[600] = "";
    if (st != CLASP_OK) snprintf(own, sizeof own, "; %s then failed: %s", call, clasp_last_error());
    char more[64] = "";
    if (bad.count > 1) snprintf(more, sizeof more, " (and %d more bad lookups)", bad.count - 1);
    return clasp_error(CLASP_ERR_PLUGIN, "%s plugin %s %s in %s (%s)%s%s",
                       clasp_plugin_kind_name(d->kind), d->name, bad.what, call, bad.detail, more,
                       own);
}

static clasp_status make(const clasp_plugin_desc *desc, clasp_plugin_kind kind,
                         const char *const *keys, const char *const *values,
                         const char *const *where, int n, clasp_params *params, void **state)
{
    *state = NULL;
    if (!desc) return clasp_error(CLASP_ERR_INVALID, "no plugin descriptor");
    if (desc->kind != kind)
        return clasp_error(CLASP_ERR_INVALID, "'%s' is a %s plugin, not %s %s", desc->name,
                           clasp_plugin_kind_name(desc->kind),
                           kind == CLASP_PLUGIN_ATTACK ? "an" : "a", clasp_plugin_kind_name(kind));
    CLASP_TRY(clasp_params_build(desc, keys, values, where, n, params));
    plugin_misuse saved;
    call_start(&saved);
    clasp_status made = kind == CLASP_PLUGIN_ATTACK ? desc->attack->create(params, state)
                                                    : desc->defense->create(params, state);
    clasp_status st = call_end(made, &saved, desc, "create");
    if (st != CLASP_OK) {
        /* A failed create() leaves no state of ours (plugin.h); one that
         * succeeded after a bad lookup did, and nothing else will free it. */
        if (made == CLASP_OK) {
            if (kind == CLASP_PLUGIN_ATTACK &&
                CLASP_FNS_HAS(desc->attack, clasp_attack_fns, destroy) && desc->attack->destroy)
                desc->attack->destroy(*state);
            if (kind == CLASP_PLUGIN_DEFENSE &&
                CLASP_FNS_HAS(desc->defense, clasp_defense_fns, destroy) && desc->defense->destroy)
                desc->defense->destroy(*state);
        }
        clasp_params_free(params);
        *state = NULL;
    }
    return st;
}

clasp_status clasp_attack_new_desc(const clasp_plugin_desc *desc, const char *const *keys,
                                   const char *const *values, const char *const *where, int n,
                                   clasp_attack_instance **out)
{
    *out = NULL;
    clasp_attack_instance *a = calloc(1, sizeof *a);
    if (!a) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st =
        make(desc, CLASP_PLUGIN_ATTACK, keys, values, where, n, &a->params, &a->state);
    if (st != CLASP_OK) {
        free(a);
        return st;
    }
    a->desc = desc;
    *out = a;
    return CLASP_OK;
}

clasp_status clasp_attack_new(const clasp_registry *r, const char *name, const char *const *keys,
                              const char *const *values, const char *const *where, int n,
                              clasp_attack_instance **out)
{
    *out = NULL;
    const clasp_plugin_desc *d;
    CLASP_TRY(clasp_registry_find(r, name, CLASP_PLUGIN_ATTACK, &d));
    return clasp_attack_new_desc(d, keys, values, where, n, out);
}

void clasp_attack_free(clasp_attack_instance *a)
{
    if (!a) return;
    const clasp_attack_fns *f = a->desc->attack;
    if (CLASP_FNS_HAS(f, clasp_attack_fns, destroy) && f->destroy) f->destroy(a->state);
    clasp_params_free(&a->params);
    free(a);
}

const clasp_plugin_desc *clasp_attack_desc(const clasp_attack_instance *a)
{
    return a->desc;
}
const clasp_params *clasp_attack_params(const clasp_attack_instance *a)
{
    return &a->params;
}

static int same_shape(const clasp_tensor *a, const clasp_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

clasp_status clasp_attack_run(clasp_attack_instance *a, clasp_model *model, const clasp_tensor *x,
                              const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                              clasp_tensor *pred)
{
    return clasp_attack_run_mode(a, model, x, y, rng, x_adv, pred, 0);
}

clasp_status clasp_attack_run_mode(clasp_attack_instance *a, clasp_model *model,
                                   const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                   clasp_tensor *x_adv, clasp_tensor *pred, int train_mode)
{
    if (!a || !model || !x || !y || !rng || !x_adv || !pred)
        return clasp_error(CLASP_ERR_INVALID, "clasp_attack_run: NULL argument");
    int c, h, w;
    clasp_model_input_shape(model, &c, &h, &w);
    const char *name = a->desc->name;
    if (x->dtype != CLASP_F32 || x->ndim != 4 || x->shape[1] != c || x->shape[2] != h ||
        x->shape[3] != w)
        return clasp_error(CLASP_ERR_INVALID, "attack %s: x must be float [N,%d,%d,%d]", name, c, h,
                           w);
    size_t n = (size_t)x->shape[0];
    if (y->dtype != CLASP_I32 || y->numel != n || pred->dtype != CLASP_I32 || pred->numel != n)
        return clasp_error(CLASP_ERR_INVALID, "attack %s: y and pred must be int32 [%zu]", name, n);
    if (x_adv->dtype != CLASP_F32 || !same_shape(x, x_adv))
        return clasp_error(CLASP_ERR_INVALID, "attack %s: x_adv must have x's shape", name);
    if (x_adv == x || x_adv->buf == x->buf)
        return clasp_error(CLASP_ERR_INVALID, "attack %s: x_adv must not be x", name);
    int train = clasp_model_is_train(model);
    clasp_model_set_train(model, train_mode);
    plugin_misuse saved;
    call_start(&saved);
    clasp_status st = a->desc->attack->perturb(a->state, model, x, y, rng, x_adv, pred);
    clasp_model_set_train(model, train);
    return call_end(st, &saved, a->desc, "perturb");
}

/* ---- defenses ---------------------------------------------------------- */

clasp_status clasp_defense_new_desc(const clasp_plugin_desc *desc, const char *const *keys,
                                    const char *const *values, const char *const *where, int n,
                                    clasp_defense_instance **out)
{
    *out = NULL;
    clasp_defense_instance *d = calloc(1, sizeof *d);
    if (!d) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st =
        make(desc, CLASP_PLUGIN_DEFENSE, keys, values, where, n, &d->params, &d->state);
    if (st != CLASP_OK) {
        free(d);
        return st;
    }
    d->desc = desc;
    *out = d;
    return CLASP_OK;
}

clasp_status clasp_defense_new(const clasp_registry *r, const char *name, const char *const *keys,
                               const char *const *values, const char *const *where, int n,
                               clasp_defense_instance **out)
{
    *out = NULL;
    const clasp_plugin_desc *d;
    CLASP_TRY(clasp_registry_find(r, name, CLASP_PLUGIN_DEFENSE, &d));
    return clasp_defense_new_desc(d, keys, values, where, n, out);
}

void clasp_defense_free(clasp_defense_instance *d)
{
    if (!d) return;
    const clasp_defense_fns *f = d->desc->defense;
    if (CLASP_FNS_HAS(f, clasp_defense_fns, destroy) && f->destroy) f->destroy(d->state);
    clasp_params_free(&d->params);
    free(d);
}

const clasp_plugin_desc *clasp_defense_desc(const clasp_defense_instance *d)
{
    return d->desc;
}
const clasp_params *clasp_defense_params(const clasp_defense_instance *d)
{
    return &d->params;
}

/* The env a defense gets from a clasp_defense_run_* call: the caller's
 * (the runner's, or a wrapper's) as far as its size reaches, and `inner`
 * cleared when it names d itself: a wrapper passes on the env it was
 * given, and the wrapped defense would otherwise find itself there and,
 * if it wraps too, call itself forever. */
static clasp_defense_env env_for(const clasp_defense_instance *d, const clasp_defense_env *env)
{
    clasp_defense_env e = clasp_defense_env_copy(env);
    if (e.inner == d) e.inner = NULL;
    return e;
}

clasp_status clasp_defense_run_step(clasp_defense_instance *d, const clasp_defense_env *env,
                                    const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                    float *loss)
{
    if (!d || !env || !x || !y || !rng)
        return clasp_error(CLASP_ERR_INVALID, "clasp_defense_run_step: NULL argument");
    plugin_misuse saved;
    call_start(&saved);
    clasp_defense_env e = env_for(d, env);
    clasp_status st = d->desc->defense->train_step(d->state, &e, x, y, rng, loss);
    return call_end(st, &saved, d->desc, "train_step");
}

clasp_status clasp_defense_run_epoch_end(clasp_defense_instance *d, const clasp_defense_env *env,
                                         const clasp_class_metrics *val)
{
    if (!d || !env)
        return clasp_error(CLASP_ERR_INVALID, "clasp_defense_run_epoch_end: NULL argument");
    const clasp_defense_fns *f = d->desc->defense;
    if (!CLASP_FNS_HAS(f, clasp_defense_fns, epoch_end) || !f->epoch_end) return CLASP_OK;
    plugin_misuse saved;
    call_start(&saved);
    clasp_defense_env e = env_for(d, env);
    clasp_status st = f->epoch_end(d->state, &e, val);
    return call_end(st, &saved, d->desc, "epoch_end");
}

clasp_status clasp_defense_run_finish(clasp_defense_instance *d, const clasp_defense_env *env,
                                      clasp_rng *rng)
{
    if (!d || !env || !rng)
        return clasp_error(CLASP_ERR_INVALID, "clasp_defense_run_finish: NULL argument");
    const clasp_defense_fns *f = d->desc->defense;
    if (!CLASP_FNS_HAS(f, clasp_defense_fns, finish) || !f->finish) return CLASP_OK;
    plugin_misuse saved;
    call_start(&saved);
    clasp_defense_env e = env_for(d, env);
    clasp_status st = f->finish(d->state, &e, rng);
    return call_end(st, &saved, d->desc, "finish");
}

int clasp_defense_has_finish(const clasp_defense_instance *d)
{
    if (!d) return 0;
    const clasp_defense_fns *f = d->desc->defense;
    return CLASP_FNS_HAS(f, clasp_defense_fns, finish) && f->finish;
}

int clasp_defense_class_weights(clasp_defense_instance *d, float *out, int num_classes)
{
    if (!d || !out || num_classes <= 0) return 0;
    const clasp_defense_fns *f = d->desc->defense;
    if (!CLASP_FNS_HAS(f, clasp_defense_fns, class_weights) || !f->class_weights) return 0;
    return f->class_weights(d->state, out, num_classes);
}
