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
    yaml_node_t *root_models; /* the top-level models list (NULL: none) */
    /* The input preparation of the zoo entries named so far (the first,
     * and another one that differs; NULL: none): data.preprocess's default. */
    const char *zoo_prep, *zoo_prep_other;
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

/* ---- the schema (plan_schema.c) ------------------------------------------
 * One table of keys per YAML mapping. A row drives the parsing of its key
 * (known keys, type, range, default), the messages (unknown keys list the
 * rows, with a near miss), the resolved YAML (clasp_plan_to_yaml, and so
 * the resume hash), the reference tables of experiments/README.md (a test
 * compares them) and the test that every parsed key reaches the hash. */

/* The YAML emitter of the resolved plan (plan_emit.c). */
typedef struct plan_em plan_em;
void pe_scalar(plan_em *m, const char *s);
void pe_map_start(plan_em *m, int flow);
void pe_map_end(plan_em *m);
void pe_seq_start(plan_em *m, int flow);
void pe_seq_end(plan_em *m);
void pe_num(plan_em *m, double v); /* shortest text reading back the same */
void pe_whole(plan_em *m, unsigned long long v);

typedef enum plan_kind {
    PK_WHOLE,  /* whole number in [min, max]: an int, or a size_t / uint64_t field */
    PK_REAL,   /* number in [min, max] (open ends by flag): a double field */
    PK_TEXT,   /* non-empty text: a char * field (malloc'd), or char[N] with PF_FIXED */
    PK_CHOICE, /* one of choices: the index in an int field, the text with PF_FIXED,
                  or nothing stored (off < 0: emitted as the default) */
    PK_BOOL,   /* true/false (yes/no, on/off): an int field */
    PK_MAP,    /* a mapping with its own table (sub) */
    PK_CUSTOM, /* parse and emit hooks do it all */
} plan_kind;

enum {
    PF_FIXED = 1,     /* PK_TEXT / PK_CHOICE stored in a char array */
    PF_OPEN_MIN = 2,  /* the range excludes min */
    PF_OPEN_MAX = 4,  /* ... and max */
    PF_REQUIRED = 8,  /* for the README check and the completeness test */
    PF_UNHASHED = 16, /* emitted with the output section only: not in the resume hash */
    PF_VIA = 32,      /* not emitted itself: its value is part of another key's (via) */
    PF_SKIP = 64,     /* parsed elsewhere (a plugin block): no generic parse or emit */
};

typedef struct plan_section plan_section;
typedef struct plan_key plan_key;

struct plan_key {
    const char *key;
    plan_kind kind;
    long off;    /* offsetof(clasp_plan, field); -1: none */
    size_t size; /* sizeof the field */
    unsigned flags;
    double min, max;
    double def;           /* PK_WHOLE, PK_REAL, PK_BOOL; PK_CHOICE: the index */
    const char *def_text; /* PK_TEXT's default (NULL: none) */
    const char *const *choices;
    const plan_section *sub; /* PK_MAP */
    /* Replaces the generic parse (called absent or not: v NULL); m is the
     * enclosing mapping, m->node NULL when that is absent. */
    clasp_status (*parse)(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v);
    /* Emits the value (the key is written already); NULL: by kind. */
    void (*emit)(plan_em *e, const clasp_plan *p, const plan_key *k);
    /* Emitted only when this says so (NULL: always). */
    int (*shown)(const clasp_plan *p);
    /* Given only where this says so (NULL: anywhere; checked after the
     * rows above it): elsewhere the key is an error saying it applies to
     * `applies_doc` only. */
    int (*applies)(const clasp_plan *p);
    const char *applies_doc;
    const char *via; /* PF_VIA: the key whose emitted value carries it */
    /* For the completeness test (test_plan: every key reaches the resolved
     * text): a value other than the default (YAML flow text), and what it
     * needs beside it: "key: value" pairs of the same mapping, separated by
     * "; ", a pair whose key starts with '/' being a path from the top of
     * the file ("/data.dataset: cifar10"). */
    const char *example, *with;
    /* The reference table of experiments/README.md: the type, default and
     * range as a reader sees them (NULL: written from kind, def and
     * min/max), and what the key means (Markdown, one line). */
    const char *type_doc, *def_doc, *range_doc, *doc;
};

struct plan_section {
    const char *path; /* "train.optimiser": the prefix of messages */
    const char *what; /* for ymap_open / ymap_only ("the experiment file") */
    int flow;         /* emitted as a {flow} mapping */
    int null_ok;      /* a null value gives the defaults, as an absent one */
    const plan_key *keys;
    int n;
    /* Replaces plan_parse_section's key loop (model, schedule, augment). */
    clasp_status (*parse)(pctx *c, yaml_node_t *n, const plan_section *s);
};

/* The tables: the file's top level, and the plugin-block mappings (parsed
 * by plan_plugins.c / plan_ensemble.c, listed for their known keys). */
extern const plan_section plan_schema_root, plan_schema_model_entry, plan_schema_defense,
    plan_schema_attack, plan_schema_eval_attack, plan_schema_ensemble, plan_schema_preset,
    plan_schema_preset_params;
/* Every table above and below the root, for the tests and the README. */
extern const plan_section *const plan_schema_all[];
const plan_key *plan_schema_find(const plan_section *s, const char *key);
/* The reference table of s as Markdown (the rows of its mappings as
 * "sub.key" rows after their own), as experiments/README.md holds it
 * between "<!-- schema PATH -->" and "<!-- end schema -->"; *out is
 * malloc'd. */
clasp_status plan_schema_markdown(const plan_section *s, char **out);
/* The "[1, 65536]" / "(0, 10]" / ">= 0" text of a number row's range. */
void plan_key_range(const plan_key *k, char *buf, size_t size);

/* ymap_only with a table's keys. */
clasp_status plan_only(const pctx *c, const ymap *m, const char *what, const plan_section *s);
/* Opens the mapping n of table s (null or absent: defaults, where allowed)
 * and parses every row in order. */
clasp_status plan_parse_section(pctx *c, yaml_node_t *n, const plan_section *s);
/* Typed values with messages naming sec.key (plan_schema.c). */
#define PLAN_MAX_EXACT 9007199254740991.0 /* the largest whole double: a seed's bound */
clasp_status plan_get_whole(const pctx *c, const ymap *m, const char *sec, const char *key,
                            double min, double max, double def, double *out);
clasp_status plan_get_real(const pctx *c, const ymap *m, const char *sec, const char *key,
                           double min, double max, int open_min, int open_max, double def,
                           double *out);
clasp_status plan_get_text(const pctx *c, const ymap *m, const char *sec, const char *key,
                           const char *def, char **out);
clasp_status plan_get_choice(const pctx *c, yaml_node_t *v, const char *sec, const char *key,
                             const char *const *choices, int def, int *out);
/* A number row of s (PK_WHOLE or PK_REAL) read from m with the row's
 * range; def is given by the caller where it depends on other keys. */
clasp_status plan_get_row(const pctx *c, const ymap *m, const plan_section *s, const char *key,
                          double def, double *out);
int plan_bool_text(const char *s, int *out);
/* The hooks of the tables' custom rows: parsing in plan.c, emission in
 * plan_emit.c. */
typedef clasp_status plan_parse_fn(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v);
typedef void plan_emit_fn(plan_em *e, const clasp_plan *p, const plan_key *k);
typedef clasp_status plan_section_fn(pctx *c, yaml_node_t *n, const plan_section *s);
plan_parse_fn plan_p_name, plan_p_device, plan_p_path, plan_p_exclude, plan_p_preprocess,
    plan_p_train, plan_p_train_models, plan_p_root_models, plan_p_l2_eps, plan_p_attacks,
    plan_p_output_dir;
/* data.groups (plan.c): reads the mapping file with the plan. */
plan_parse_fn plan_p_groups;
plan_section_fn plan_p_model, plan_p_schedule, plan_p_augment;
plan_emit_fn plan_e_exclude, plan_e_normalize, plan_e_milestones, plan_e_models, plan_e_l2_eps,
    plan_e_attacks;
/* Emits every shown row of s as a mapping (with_output: PF_UNHASHED rows too). */
void plan_emit_section(plan_em *e, const clasp_plan *p, const plan_section *s, int with_output);
/* Shortest text that reads back as the same double. */
void plan_fmt_double(double v, char *buf, size_t size);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
