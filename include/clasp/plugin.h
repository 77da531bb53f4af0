/* clasp — the plugin ABI for attacks and defenses.
 *
 * A plugin is a shared object exporting ONE symbol, CLASP_PLUGIN_ENTRY_NAME
 * ("clasp_plugin_entry"), of type clasp_plugin_entry_fn. The host calls it
 * once after dlopen and gets a descriptor that MUST stay valid (static
 * storage) until the object is unloaded.
 *
 * Build a plugin out of tree with
 *     cc -shared -fPIC my_attack.c $(pkg-config --cflags --libs clasp) -o my_attack.so
 * and put it in a folder on CLASP_PLUGIN_PATH (':'-separated).
 *
 * Rules:
 * - The host validates every parameter against the descriptor's schema
 *   before create(): a plugin never sees an unknown key, a wrong type or a
 *   value outside [min, max]. Every schema parameter is present (defaults
 *   filled in).
 * - Calls on one instance come from one thread, in the order
 *   create → (perturb | train_step | epoch_end | finish)* → destroy.
 * - Functions return clasp_status; on failure they SHOULD set a message with
 *   clasp_error(). The host then destroys the instance; it never calls other
 *   functions on an instance whose create() failed.
 * - Tensors passed in belong to the host and MUST NOT be freed or kept past
 *   the call; `x` passed to perturb MUST NOT be written.
 * - One attack instance is reused: across batches of different sizes and
 *   across models (every model of an experiment, and a defense's inner
 *   attack at every training step). Keep nothing in the state that belongs
 *   to one model or one batch size, or check and remake it on each call.
 * - perturb MUST NOT change the model: not its parameters, gradients it
 *   did not make, buffers, calibration or mode (the host restores the mode
 *   only as a convenience; BatchNorm's running statistics would be
 *   corrupted by a forward pass in train mode).
 * - Scratch tensors go on the model's context: clasp_model_ctx(model).
 * - A plugin can ask the host what it runs: clasp_plugin_host_abi_version()
 *   and clasp_version().
 * - Structs here are append-only: new members only at the end, guarded by
 *   the `size` fields (read them with CLASP_STRUCT_HAS), and the ABI
 *   version changes only for breaking changes. Structs without a `size`
 *   say at their definition why they never grow.
 */
#ifndef CLASP_PLUGIN_H
#define CLASP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clasp/counts.h"
#include "clasp/model.h"
#include "clasp/ops.h"
#include "clasp/status.h"
#include "clasp/tensor.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

#define CLASP_PLUGIN_ABI_VERSION 1
#define CLASP_PLUGIN_ENTRY_NAME "clasp_plugin_entry"

#if defined(__GNUC__)
#define CLASP_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define CLASP_PLUGIN_EXPORT
#endif

/* Whether a struct that carries its own `size` (the sizeof the side that
 * made it was built with) covers `member`: structs are append-only, so an
 * older host or plugin has a shorter one, and nothing past it may be read.
 * E.g. CLASP_STRUCT_HAS(env, clasp_defense_env, inner). */
#define CLASP_STRUCT_HAS(p, type, member) \
    ((p)->size >= offsetof(type, member) + sizeof((p)->member))

/* The plugin ABI version of the running host (the library), which may be
 * newer than the CLASP_PLUGIN_ABI_VERSION the plugin was built with. */
uint32_t clasp_plugin_host_abi_version(void);

/* The running library's version, e.g. "0.1.0". */
const char *clasp_version(void);

/* Values are fixed: they cross the boundary as numbers. */
typedef enum clasp_plugin_kind {
    CLASP_PLUGIN_ATTACK = 1,
    CLASP_PLUGIN_DEFENSE = 2,
} clasp_plugin_kind;

/* ---- parameters ------------------------------------------------------ */

typedef enum clasp_param_type {
    CLASP_PARAM_FLOAT = 1,  /* double, within [min, max] */
    CLASP_PARAM_INT = 2,    /* integer-valued, within [min, max] */
    CLASP_PARAM_BOOL = 3,   /* 0 or 1 (YAML true/false) */
    CLASP_PARAM_STRING = 4, /* free text, e.g. the name of an inner attack */
} clasp_param_type;

/* No `size`: plugins hand the host an array of these, so the element size
 * is part of the ABI; a new kind of information about a parameter would be
 * a new array beside it, under a new ABI version. */
typedef struct clasp_param_spec {
    const char *name; /* [A-Za-z][A-Za-z0-9_]*, unique within the plugin
                                (case matters: tpgd's temperature is "T") */
    clasp_param_type type;
    double def;             /* default for FLOAT/INT/BOOL */
    double min, max;        /* inclusive range for FLOAT/INT */
    const char *def_string; /* default for STRING (may be NULL = "") */
    const char *doc;        /* one line */
} clasp_param_spec;

/* No `size`: an array element made by the host (as clasp_param_spec). */
typedef struct clasp_param_value {
    double num;      /* FLOAT, INT, BOOL */
    const char *str; /* STRING */
} clasp_param_value;

/* The validated parameters handed to create(): values[i] belongs to
 * schema[i]. Owned by the host; valid only during create() (copy what
 * you keep). No `size`: it never grows; plugins read it through
 * clasp_params_num/str, and anything new comes as a new function. */
typedef struct clasp_params {
    int n;
    const clasp_param_spec *schema;
    const clasp_param_value *values;
} clasp_params;

/* Lookups by name, for use inside create() (where `p` is valid).
 * clasp_params_num reads a FLOAT, INT or BOOL parameter, clasp_params_str a
 * STRING one (the string is owned by the host, valid as long as `p`).
 *
 * Asking for a name the schema does not declare (or NULL), or for a
 * parameter of the other kind, is a bug in the plugin, and it never stops
 * the host: the lookup returns a neutral value (0.0, or "" — never NULL)
 * and is recorded for this thread. When the plugin function that made it
 * returns, the host fails that call with CLASP_ERR_PLUGIN, even if the
 * plugin returned CLASP_OK, and a message naming the plugin, the name asked
 * for and the schema, e.g. "attack plugin pgd asked for unknown parameter
 * 'epss' in create (clasp_params_num; the schema has: eps (float), ...)".
 * A create() that returned CLASP_OK before failing this way gets its
 * state passed to destroy() (when set) at once. */
double clasp_params_num(const clasp_params *p, const char *name);
const char *clasp_params_str(const clasp_params *p, const char *name);

/* ---- attacks --------------------------------------------------------- */

/* What an attack constrains. Values are fixed: they cross the boundary. */
typedef enum clasp_threat {
    /* Not declared: the ABI-1 rule applies (L-infinity with budget "eps"
     * when the schema has such a float parameter, else unbounded). */
    CLASP_THREAT_UNDECLARED = 0,
    CLASP_THREAT_LINF = 1,      /* ||x_adv - x||_inf <= the budget parameter */
    CLASP_THREAT_L2 = 2,        /* ||x_adv - x||_2 <= the budget parameter */
    CLASP_THREAT_UNBOUNDED = 3, /* minimises the distance instead (e.g. cw) */
} clasp_threat;

/* The cost of an attack, per example of a batch, in model passes: a
 * forward pass, and a backward pass to the input (each costs about as much
 * as a forward pass). Upper bounds are fine: the host uses them for time
 * estimates (`clasp check --time`) and never for results. */
typedef struct clasp_attack_cost {
    double forward;
    double backward;
} clasp_attack_cost;

/* What an attack is, for the host's reports and estimates: the host reads
 * these and never an attack's name. Static storage, like the descriptor.
 * Example (an L-infinity attack with a budget parameter "eps" that costs
 * `steps` forward and backward passes):
 *     static void my_cost(const clasp_params *p, clasp_attack_cost *c)
 *     { c->forward = c->backward = clasp_params_num(p, "steps"); }
 *     static const clasp_attack_traits my_traits = {
 *         .size = sizeof(clasp_attack_traits), .threat = CLASP_THREAT_LINF,
 *         .budget = "eps", .cost = my_cost};
 */
typedef struct clasp_attack_traits {
    size_t size; /* sizeof(clasp_attack_traits) the plugin was built with */
    clasp_threat threat;
    /* LINF and L2: the name of the FLOAT parameter holding the budget
     * (e.g. "eps"); the host checks it exists. NULL otherwise. */
    const char *budget;
    /* 1: the attack uses forward passes only, never a gradient (e.g. a
     * score-based search). Reports compare such attacks with the strongest
     * gradient-based one at the same budget: a gradient-free attack that
     * wins hints at gradient masking. */
    int gradient_free;
    /* A FLOAT parameter by which the attack divides the logits in its loss
     * (Temperature-PGD's "T"), and the attack it equals when that
     * parameter is 1 (e.g. "pgd", whose other parameters it shares). The
     * report then relates the two per class. NULL when neither. */
    const char *temperature;
    const char *equals_at_one;
    /* MAY be NULL (cost unknown). Passes per example for these validated
     * parameters; called by the host outside any run, so it must not
     * touch any state. */
    void (*cost)(const clasp_params *params, clasp_attack_cost *out);
} clasp_attack_traits;

typedef struct clasp_attack_fns {
    size_t size; /* sizeof(clasp_attack_fns) the plugin was built with */
    /* MUST be set. *state may be any pointer (or NULL). */
    clasp_status (*create)(const clasp_params *params, void **state);
    /* MUST be set. Writes an adversarial batch for (x [N,C,H,W], labels y
     * int32 [N]) into x_adv (same shape as x; the host allocates it) and the
     * model's predictions on x_adv into pred (int32 [N]). MUST NOT write x.
     * The host puts the model in eval mode before the call and restores the
     * mode after. Random numbers come from rng (advance it; never reseed). */
    clasp_status (*perturb)(void *state, clasp_model *model, const clasp_tensor *x,
                            const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                            clasp_tensor *pred);
    /* MAY be NULL. */
    void (*destroy)(void *state);
    /* SHOULD be set (NULL: undeclared, see clasp_threat). Appended in
     * version 0.2 of the library; read through CLASP_STRUCT_HAS. */
    const clasp_attack_traits *traits;
} clasp_attack_fns;

/* ---- defenses -------------------------------------------------------- */

/* An attack instance the host made for a defense (its inner maximisation),
 * used through clasp_attack_run(). */
typedef struct clasp_attack_instance clasp_attack_instance;
/* Runs an attack instance (handles eval mode and the batch tensors). */
clasp_status clasp_attack_run(clasp_attack_instance *a, clasp_model *model, const clasp_tensor *x,
                              const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                              clasp_tensor *pred);
/* The same with the model in train mode when train is non-zero (BatchNorm
 * then normalises with each attack batch's statistics and updates its
 * running ones, as some adversarial-training recipes run their inner
 * attack); clasp_attack_run is this with train = 0. The model's mode is
 * restored afterwards either way. */
clasp_status clasp_attack_run_mode(clasp_attack_instance *a, clasp_model *model,
                                   const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                   clasp_tensor *x_adv, clasp_tensor *pred, int train);

/* Whether the host asks the run under way to stop (a SIGTERM from a batch
 * scheduler, Ctrl-C). Attacks SHOULD call it between steps, restarts or
 * queries (it reads one flag) and, when it is non-zero, return
 * CLASP_ERR_INTERRUPTED at once: the host then saves its position and a
 * resumed run repeats the attack's pass, so results do not change. Without
 * such calls the stop waits for the end of the batch. */
int clasp_stop_requested(void);

/* A defense instance the host made for another defense (e.g. reweight wraps
 * pgd-at or trades). */
typedef struct clasp_defense_instance clasp_defense_instance;

/* Class-wise metrics of one evaluation (validation split at epoch end):
 * the per-class counts of clasp/counts.h, robust_correct under the
 * defense's attack (NULL without one). The arrays are the host's: read
 * them, never write or keep them. No `size`: it never grows; other metrics
 * would reach a defense through a new hook appended to clasp_defense_fns,
 * with a struct of their own. */
typedef clasp_class_counts clasp_class_metrics;

/* What the host gives a defense at each call. */
typedef struct clasp_defense_env {
    size_t size; /* sizeof(clasp_defense_env) of the host */
    clasp_model *model;
    int num_classes;
    /* The inner attack declared in the experiment's defense block
     * ("attack:" with its own name and parameters), or NULL when none. */
    clasp_attack_instance *attack;
    /* The wrapped defense declared in the defense block ("inner:"), or NULL
     * (then a wrapping defense falls back to standard training,
     * clasp_model_ce_grads). A wrapper passes its env (or a copy made with
     * clasp_defense_env_copy, e.g. with other class weights) to
     * clasp_defense_run_*: the host builds the wrapped defense's own env
     * from it, with `inner` cleared, so a wrapper never calls itself. */
    clasp_defense_instance *inner;
    /* Per-class loss weights for the step (NULL = all ones); a wrapping
     * defense sets these for its inner one with clasp_defense_run_step. */
    const clasp_tensor *class_weights;
    /* The validation split, for defenses that fit something after training
     * (calibration). Whole split on the device; labels int32. */
    const clasp_tensor *val_x;
    const clasp_tensor *val_y;
    int epoch;  /* 0-based */
    int epochs; /* total planned */
    uint64_t seed;
} clasp_defense_env;

/* A copy of the host's env that a wrapping defense may change (e.g. its
 * class weights) before passing it on: members the host's struct lacks
 * (an older host) are zero, and the copy's size is this header's. */
static inline clasp_defense_env clasp_defense_env_copy(const clasp_defense_env *env)
{
    clasp_defense_env e;
    memset(&e, 0, sizeof e);
    size_t n = env->size < sizeof e ? env->size : sizeof e;
    memcpy(&e, env, n);
    e.size = sizeof e;
    return e;
}

typedef struct clasp_defense_fns {
    size_t size; /* sizeof(clasp_defense_fns) the plugin was built with */
    /* MUST be set. */
    clasp_status (*create)(const clasp_params *params, void **state);
    /* MUST be set. One training batch: overwrite the model's parameter
     * gradients (clasp_model_grad) with those of this defense's loss, mean
     * over the batch. The host applies the optimiser step afterwards and
     * leaves the model in train mode before the call. *loss (host float,
     * may be NULL: then avoid reading it back) receives the mean loss. */
    clasp_status (*train_step)(void *state, const clasp_defense_env *env, const clasp_tensor *x,
                               const clasp_tensor *y, clasp_rng *rng, float *loss);
    /* MAY be NULL. After each epoch, with class-wise validation metrics. */
    clasp_status (*epoch_end)(void *state, const clasp_defense_env *env,
                              const clasp_class_metrics *val);
    /* MAY be NULL. After the last epoch (e.g. to fit a calibration with
     * clasp_model_set_calibration, which checkpoints then keep). */
    clasp_status (*finish)(void *state, const clasp_defense_env *env, clasp_rng *rng);
    /* MAY be NULL. Per-class weights the defense currently uses (for the
     * report); writes num_classes floats, returns 0 when it has none. */
    int (*class_weights)(void *state, float *out, int num_classes);
    /* MAY be NULL. */
    void (*destroy)(void *state);
} clasp_defense_fns;

/* For wrapping defenses: run the inner defense's hooks. `env` is the
 * wrapper's (or a clasp_defense_env_copy of it); the inner defense gets
 * the host's copy of it with `inner` cleared when it names d. */
clasp_status clasp_defense_run_step(clasp_defense_instance *d, const clasp_defense_env *env,
                                    const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                    float *loss);
clasp_status clasp_defense_run_epoch_end(clasp_defense_instance *d, const clasp_defense_env *env,
                                         const clasp_class_metrics *val);

/* ---- the descriptor -------------------------------------------------- */

/* No `size`: abi_version, always first, tells the host which layout
 * follows; what may grow lives in the function tables, which have sizes. */
typedef struct clasp_plugin_desc {
    /* MUST be CLASP_PLUGIN_ABI_VERSION. Stays the first member in every
     * ABI version, so a host can read it from any plugin and refuse a
     * mismatch before touching anything else. */
    uint32_t abi_version;
    clasp_plugin_kind kind;
    const char *name;    /* [a-z][a-z0-9_-]*, unique among loaded plugins */
    const char *version; /* the plugin's own version, e.g. "1.0" */
    const char *summary; /* one line */
    int n_params;
    const clasp_param_spec *params;
    const clasp_attack_fns *attack;   /* kind == ATTACK: MUST be set */
    const clasp_defense_fns *defense; /* kind == DEFENSE: MUST be set */
} clasp_plugin_desc;

typedef const clasp_plugin_desc *(*clasp_plugin_entry_fn)(void);

/* The entry point every plugin defines (declared here so that the
 * compiler checks its type; the header's visibility marks export it):
 *     const clasp_plugin_desc *clasp_plugin_entry(void) { return &desc; } */
const clasp_plugin_desc *clasp_plugin_entry(void);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
