/* clasp — the plugin registry: loading attack and defense plugins, checking
 * them, validating their parameters, and making instances.
 *
 * Where plugins come from, in this order (the first plugin of a name wins):
 *   1. the built-in plugins: the build tree's plugins folder when the
 *      running libclasp is the one of that build tree, else the install
 *      folder (<libdir>/clasp/plugins). Using one or the other, never both,
 *      keeps a build tree next to an installed copy from reporting every
 *      plugin twice;
 *   2. each folder of CLASP_PLUGIN_PATH (':'-separated), in order.
 * Each folder is scanned for *.so files, directly and one level down
 * (attacks/, defenses/), in name order so the result never depends on the
 * file system's listing order.
 *
 * A plugin that cannot be used is refused, never fatal: the registry records
 * the file and the reason (missing entry symbol, ABI version mismatch,
 * duplicate name, invalid descriptor or parameter schema) and goes on with
 * the others. `clasp plugins` lists both.
 *
 * Descriptors and instances point into the loaded objects: the registry
 * MUST outlive every instance made from it. A registry is not thread-safe. */
#ifndef CLASP_REGISTRY_H
#define CLASP_REGISTRY_H

#include <stddef.h>

#include "clasp/plugin.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

typedef struct clasp_registry clasp_registry;

/* Where a loaded plugin came from. */
typedef enum clasp_plugin_origin {
    CLASP_ORIGIN_BUILTIN = 1, /* build tree or install folder */
    CLASP_ORIGIN_PATH = 2,    /* a CLASP_PLUGIN_PATH folder (or a file given directly) */
} clasp_plugin_origin;

typedef struct clasp_plugin_info {
    const clasp_plugin_desc *desc;
    const char *path; /* the .so file as found */
    clasp_plugin_origin origin;
} clasp_plugin_info;

typedef struct clasp_plugin_refusal {
    const char *path;   /* the file refused */
    const char *reason; /* one line, names what was expected */
} clasp_plugin_refusal;

/* An empty registry. */
clasp_status clasp_registry_new(clasp_registry **out);

/* An empty registry filled from the built-in folder, then each folder of
 * `path` (':'-separated; NULL or "": none) in order. Fails only when out
 * of memory; refusals are recorded, not returned. Reads no environment. */
clasp_status clasp_registry_open_path(const char *path, clasp_registry **out);

/* clasp_registry_open_path with the CLASP_PLUGIN_PATH environment variable
 * (see the top of this file): for programs at their edge, like the clasp
 * command; the library never calls it. */
clasp_status clasp_registry_open(clasp_registry **out);

/* The built-in plugin folder clasp_registry_open uses (static string). */
const char *clasp_registry_builtin_dir(void);

/* Scans one folder (and its subfolders, one level deep) for *.so files and
 * loads each. A folder that does not exist is skipped silently (an unset
 * path entry is not an error); one that cannot be read, or a file given as
 * a folder, is a refusal. Returns CLASP_OK unless out of memory: refusals
 * are recorded, not returned. */
clasp_status clasp_registry_load_dir(clasp_registry *r, const char *dir,
                                     clasp_plugin_origin origin);

/* Loads one file. Returns CLASP_OK when loaded or when it is the very file
 * already loaded (same real path; then nothing happens), CLASP_ERR_PLUGIN
 * when refused (the refusal is recorded and is also the last error),
 * CLASP_ERR_NOMEM. */
clasp_status clasp_registry_load_file(clasp_registry *r, const char *path,
                                      clasp_plugin_origin origin);

/* Unloads every plugin; NULL is harmless. */
void clasp_registry_free(clasp_registry *r);

/* Loaded plugins, in load order. The returned structs stay valid until the
 * next load into r or clasp_registry_free (the descriptors until the free). */
int clasp_registry_count(const clasp_registry *r);
const clasp_plugin_info *clasp_registry_plugin(const clasp_registry *r, int i);

/* Refused files, in the order met. */
int clasp_registry_refusal_count(const clasp_registry *r);
const clasp_plugin_refusal *clasp_registry_refusal(const clasp_registry *r, int i);

/* The plugin of that name and kind. CLASP_ERR_NOT_FOUND, with a message
 * listing the plugins of that kind (and naming a refusal of that name, if
 * any), when there is none. */
clasp_status clasp_registry_find(const clasp_registry *r, const char *name, clasp_plugin_kind kind,
                                 const clasp_plugin_desc **out);

/* Text form of a kind: "attack", "defense". */
const char *clasp_plugin_kind_name(clasp_plugin_kind kind);
/* Text form of a parameter type: "float", "int", "bool", "string". */
const char *clasp_param_type_name(clasp_param_type type);

/* ---- parameters ------------------------------------------------------ */

/* Validates (key, text value) pairs against desc's schema and fills *out
 * with every schema parameter (defaults for those not given). where[i]
 * (where may be NULL, and so may each entry) prefixes the messages about
 * pair i, e.g. "exp.yaml:12:5". Errors (CLASP_ERR_CONFIG), each naming the
 * plugin and the parameter:
 *   unknown key (the known ones are listed), a key given twice,
 *   wrong type ("steps expects an integer, got '2.5'"),
 *   out of range (the range is given).
 * Numbers: C syntax for decimal floats; integers are whole decimal numbers;
 * bools are true/false/1/0 (also yes/no, on/off, any case). On success free
 * *out with clasp_params_free; on failure *out is empty. */
clasp_status clasp_params_build(const clasp_plugin_desc *desc, const char *const *keys,
                                const char *const *values, const char *const *where, int n,
                                clasp_params *out);

/* The same from "key=value" strings (as given to `--set`). Messages are
 * prefixed with `where` (may be NULL) and the pair's text. */
clasp_status clasp_params_parse_kv(const clasp_plugin_desc *desc, const char *const *pairs, int n,
                                   const char *where, clasp_params *out);

/* Frees what clasp_params_build made; safe on an empty or zeroed set. */
void clasp_params_free(clasp_params *p);

/* "eps=0.1, steps=20, rand_init=true" (every parameter, in schema order). */
void clasp_params_format(const clasp_params *p, char *buf, size_t size);

/* The traits the host uses for an attack (clasp_attack_traits in
 * clasp/plugin.h): those its plugin declares, members it lacks zeroed, and
 * for an undeclared threat the ABI-1 rule (L-infinity with budget "eps"
 * when the schema has a float parameter of that name, else unbounded).
 * out->size is this header's. desc may be NULL (then: unbounded). */
void clasp_attack_traits_of(const clasp_plugin_desc *desc, clasp_attack_traits *out);

/* 1 when the attack is bounded in L-infinity by a budget (its traits; see
 * clasp_attack_traits_of). Reports never rank an attack of another threat
 * (cw) next to L-infinity ones. */
int clasp_plugin_is_linf(const clasp_plugin_desc *desc);

/* The attack's declared cost for these validated parameters (passes per
 * example) into *out: 1, or 0 with *out zeroed when the plugin declares
 * none (or returns a negative or NaN figure). */
int clasp_attack_cost_of(const clasp_plugin_desc *desc, const clasp_params *params,
                         clasp_attack_cost *out);

/* Checks a descriptor the way the loader does (name, kind, functions,
 * parameter schema). On failure the last error says what is wrong. */
clasp_status clasp_plugin_desc_check(const clasp_plugin_desc *desc);

/* ---- instances --------------------------------------------------------- */

/* Makes an attack instance: finds `name` among the attacks, validates the
 * parameters as clasp_params_build does, and calls the plugin's create().
 * Run it with clasp_attack_run() (plugin.h). */
clasp_status clasp_attack_new(const clasp_registry *r, const char *name, const char *const *keys,
                              const char *const *values, const char *const *where, int n,
                              clasp_attack_instance **out);
/* The same from a descriptor (no registry needed; e.g. a statically linked
 * attack). desc must outlive the instance. */
clasp_status clasp_attack_new_desc(const clasp_plugin_desc *desc, const char *const *keys,
                                   const char *const *values, const char *const *where, int n,
                                   clasp_attack_instance **out);
/* Plugins keep device scratch buffers between calls: free an instance
 * before the context it ran on (and before the registry). NULL is harmless. */
void clasp_attack_free(clasp_attack_instance *a);
const clasp_plugin_desc *clasp_attack_desc(const clasp_attack_instance *a);
/* The validated parameters the instance was made with. */
const clasp_params *clasp_attack_params(const clasp_attack_instance *a);

/* Defense instances, likewise. The host makes the inner attack / wrapped
 * defense instances itself and passes them in clasp_defense_env. */
clasp_status clasp_defense_new(const clasp_registry *r, const char *name, const char *const *keys,
                               const char *const *values, const char *const *where, int n,
                               clasp_defense_instance **out);
clasp_status clasp_defense_new_desc(const clasp_plugin_desc *desc, const char *const *keys,
                                    const char *const *values, const char *const *where, int n,
                                    clasp_defense_instance **out);
/* Likewise before the context and the registry; NULL is harmless. */
void clasp_defense_free(clasp_defense_instance *d);
const clasp_plugin_desc *clasp_defense_desc(const clasp_defense_instance *d);
const clasp_params *clasp_defense_params(const clasp_defense_instance *d);

/* The optional hooks (doing nothing when the plugin has none). */
clasp_status clasp_defense_run_finish(clasp_defense_instance *d, const clasp_defense_env *env,
                                      clasp_rng *rng);
/* Whether the plugin has a finish hook (NULL: 0). */
int clasp_defense_has_finish(const clasp_defense_instance *d);
/* Returns 0 when the defense has no per-class weights. */
int clasp_defense_class_weights(clasp_defense_instance *d, float *out, int num_classes);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
