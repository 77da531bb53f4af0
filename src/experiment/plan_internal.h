/* Internals of the experiment plan: walking a libyaml document with
 * file:line:col in every message, shared by plan.c (the fixed sections)
 * and plan_plugins.c (plugin blocks and grids). */
#ifndef CLASP_PLAN_INTERNAL_H
#define CLASP_PLAN_INTERNAL_H

#include <stddef.h>
#include <yaml.h>

#include "clasp/experiment.h"

/* Internal to libclasp: not exported from the shared library. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct pctx {
    yaml_document_t *doc;
    const char *file;
    const clasp_registry *reg;
    clasp_plan *plan;
} pctx;

/* A mapping with YAML merge keys ("<<: *base") flattened: the mapping's own
 * pairs first, in order, then merged pairs whose keys it does not have. */
typedef struct ypair {
    yaml_node_t *key, *value;
} ypair;

typedef struct ymap {
    yaml_node_t *node;
    ypair *p;
    int n, cap;
    int merged; /* mappings merged in so far, aliases counted each time */
    /* Open addressing over p by key (index + 1, 0 = empty; hcap a power
     * of two, at least twice n): duplicate checks and lookups in linear
     * time however many keys a file gives. */
    int *slot, hcap;
    /* The first key the mapping gives twice and its earlier occurrence
     * (NULL: none); reported by ymap_only after any unknown key, or by
     * ymap_no_dups. */
    yaml_node_t *dup, *dup_first;
} ymap;

/* "file:line:col" (1-based) of a node. */
void plan_loc(const pctx *c, const yaml_node_t *n, char *buf, size_t size);

/* CLASP_ERR_CONFIG with "file:line:col: " and the formatted text. */
clasp_status plan_err(const pctx *c, const yaml_node_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Re-raises the last error as CLASP_ERR_CONFIG prefixed with n's location
 * (and `what`, may be NULL). */
clasp_status plan_wrap(const pctx *c, const yaml_node_t *n, const char *what);

yaml_node_t *ynode(const pctx *c, int index);
/* The scalar's text, or NULL when n is not a scalar. */
const char *yscalar(const yaml_node_t *n);
/* A plain null: absent value, "~", "null". */
int yis_null(const yaml_node_t *n);
/* "a mapping", "a list", "a text value" — for type errors. */
const char *ykind(const yaml_node_t *n);
int yseq_len(const yaml_node_t *n);
yaml_node_t *yseq_item(const pctx *c, const yaml_node_t *n, int i);

/* Opens a mapping (what: "train", "a defense block" ... for messages);
 * refuses other kinds, duplicate keys and non-text keys. */
clasp_status ymap_open(const pctx *c, yaml_node_t *n, const char *what, ymap *m);
void ymap_close(ymap *m);
/* Unknown keys: the message lists the known ones (and a near miss); then
 * a key given twice. */
clasp_status ymap_only(const pctx *c, const ymap *m, const char *what, const char *const *known);
/* A key given twice, for a mapping whose keys ymap_only does not check. */
clasp_status ymap_no_dups(const pctx *c, const ymap *m);
yaml_node_t *ymap_get(const ymap *m, const char *key);     /* value or NULL */
yaml_node_t *ymap_keynode(const ymap *m, const char *key); /* key or NULL */

/* Edit distance for "did you mean" (short names only). */
size_t plan_edit_distance(const char *a, const char *b);

/* Plugin blocks (plan_plugins.c). */
clasp_status plan_parse_attacks(pctx *c, yaml_node_t *seq);
clasp_status plan_parse_models(pctx *c, yaml_node_t *seq);
/* The zoo entry a scalar names, for the plan's data set (threat may be
 * NULL); unknown, ambiguous and unsupported entries are errors at the
 * node, `what` naming the key. */
struct clasp_zoo_entry;
clasp_status plan_zoo_entry(pctx *c, yaml_node_t *zn, const char *what, const char *threat,
                            const struct clasp_zoo_entry **out);
void plan_plugin_clear(clasp_plan_plugin *p);
void plan_defense_free(clasp_plan_defense *d);
/* One plugin resolved from text pairs (defaults filled in, validated);
 * wh[i] is the location for pair i's messages; node locates the block. */
clasp_status plan_plugin_fill(pctx *c, const clasp_plugin_desc *desc, const char **keys,
                              const char **vals, char **wh, int n, const yaml_node_t *node,
                              clasp_plan_plugin *out);
/* One attack block ("name" or {name, params}) without grids. */
clasp_status plan_resolve_single(pctx *c, yaml_node_t *n, clasp_plan_plugin *out);
/* Ensembles and presets (plan_ensemble.c): whether an evaluate entry is
 * one, and its parsing (appends to c->plan->attacks). */
int plan_is_ensemble(const pctx *c, const yaml_node_t *item);
clasp_status plan_parse_ensemble(pctx *c, yaml_node_t *item);
void plan_attack_clear(clasp_plan_attack *a);
#define PLAN_MAX_PLANNED 1024
/* Shortest text that reads back as the same double. */
void plan_fmt_double(double v, char *buf, size_t size);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
