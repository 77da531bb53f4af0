/* clasp — attack ensembles: several attack plugins run by the host as a
 * cascade (plugins never load each other).
 *
 * The first member attacks the clean-correct examples of a batch; each
 * later member attacks only the examples every earlier member failed to
 * flip, gathered into a smaller batch. An example is robust under the
 * ensemble only when every member failed; its worst-case prediction is the
 * one of the member that flipped it first (its clean prediction when it was
 * misclassified clean, since such an example is not attacked).
 *
 * `autoattack` is a named list of members (a preset), written out in full
 * wherever it is used, so a resolved experiment shows every parameter. */
#ifndef CLASP_ENSEMBLE_H
#define CLASP_ENSEMBLE_H

#include "clasp/registry.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

#define CLASP_PRESET_MAX_PARAMS 4

/* One member of a preset: the plugin and the parameters the preset sets
 * (a parameter the plugin's schema lacks is left to the plugin). */
typedef struct clasp_preset_member {
    const char *plugin;
    int n;
    const char *keys[CLASP_PRESET_MAX_PARAMS], *values[CLASP_PRESET_MAX_PARAMS];
} clasp_preset_member;

/* The name every preset is used by. */
#define CLASP_AUTOATTACK "autoattack"
/* Its versions, for messages. */
#define CLASP_AUTOATTACK_VERSIONS "standard (apgd, apgd-t, fab, square) or fast (apgd, apgd-t)"

/* The members of autoattack's version ("standard", "fast") into *out;
 * returns their number, 0 for an unknown version. */
int clasp_autoattack_members(const char *version, const clasp_preset_member **out);

/* Finds a preset member's plugin. CLASP_ERR_NOT_FOUND with "autoattack
 * needs the attack plugin 'NAME', which is not loaded; ..." when missing. */
clasp_status clasp_autoattack_find(const clasp_registry *r, const char *version, const char *plugin,
                                   const clasp_plugin_desc **out);

/* Labels of an ensemble's members from their plugin names: the name, with
 * "#2", "#3" ... on repeats ("pgd", "pgd#2"). */
void clasp_ensemble_member_labels(const char *const *plugins, int n, char (*labels)[64]);

/* An ensemble of attack instances (what `clasp attack --attack a,b` and
 * the runner hold). */
typedef struct clasp_ensemble {
    int n;
    clasp_attack_instance **members;
    char (*labels)[64];
} clasp_ensemble;

/* Builds the instances for a command-line spec: "autoattack" (the preset;
 * the pair version=standard|fast picks its version), "a,b,c" (a cascade
 * of those plugins) or one plugin name (n = 1). Each key=value pair goes to
 * every member whose schema has that key; a key no member has is an error
 * (CLASP_ERR_CONFIG), as is a bad value (named by where[i]). */
clasp_status clasp_ensemble_from_spec(const clasp_registry *r, const char *spec,
                                      const char *const *keys, const char *const *values,
                                      const char *const *where, int n, clasp_ensemble *out);
void clasp_ensemble_free(clasp_ensemble *e);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
