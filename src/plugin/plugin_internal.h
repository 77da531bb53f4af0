/* Internals shared by the registry, parameter and instance code. */
#ifndef CLASP_PLUGIN_INTERNAL_H
#define CLASP_PLUGIN_INTERNAL_H

#include <stddef.h>

#include "clasp/plugin.h"

/* Internal to libclasp: not exported from the shared library. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Whether a function table the plugin built with its own sizeof covers
 * `member` (CLASP_STRUCT_HAS of clasp/plugin.h, the rule plugins use too). */
#define CLASP_FNS_HAS(fns, type, member) CLASP_STRUCT_HAS(fns, type, member)

/* Bad lookups (clasp_params_num / clasp_params_str with a name the schema
 * lacks, or of the wrong type) made during one call into a plugin. The
 * lookup returns a neutral value and records itself here, per thread;
 * the host turns the record into the call's failure, so a plugin bug never
 * takes the host process down. */
typedef struct plugin_misuse {
    int count;        /* bad lookups during the call; 0: none */
    char what[160];   /* the first: "asked for unknown parameter 'epss'" */
    char detail[320]; /* "clasp_params_num; the schema has: eps (float), ..." */
} plugin_misuse;

/* Around every call into a plugin: enter saves the record of an enclosing
 * call (a defense's train_step runs its inner attack) into *saved and
 * starts an empty one; leave moves this call's record into *out, restores
 * the saved one and returns out->count. */
void plugin_misuse_enter(plugin_misuse *saved);
int plugin_misuse_leave(const plugin_misuse *saved, plugin_misuse *out);

/* Checks the traits an attack declares (called by clasp_plugin_desc_check):
 * a known threat, a budget naming a float parameter for a bounded one, a
 * temperature naming a float parameter with the attack it equals at 1. */
clasp_status clasp_attack_traits_check(const clasp_plugin_desc *desc);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
