/* The sections of a model's report. Each section is one file (sec_*.c)
 * exporting its Markdown writer and its JSON writer; sections.c lists them
 * in one ordered table, which report.md and report.json both walk, model
 * by model. A writer reads the model's facts (facts.h) and formats them:
 * the Markdown writer appends to the report's text, the JSON writer adds
 * its keys to the model's object. Either may be NULL, and either may write
 * nothing for a model it does not concern. */
#ifndef CLASP_REPORT_SECTION_H
#define CLASP_REPORT_SECTION_H

#include "experiment/report/facts.h"
#include "experiment/report_internal.h"
#include "util/json.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct report_ctx {
    const clasp_report *r;
    const clasp_model_report *m;
    const model_facts *f;
    const chart_plan *plan;
    int mi; /* index of m in r->models */
} report_ctx;

typedef void (*section_md_fn)(clasp_buf *b, const report_ctx *x);
typedef void (*section_json_fn)(json_object *model, const report_ctx *x, int *bad);

typedef struct report_section {
    const char *name;
    section_md_fn md;
    section_json_fn json;
} report_section;

/* The table (sections.c), in report order. */
extern const report_section report_sections[];
extern const int report_n_sections;

/* ---- Markdown primitives (report_md.c) ---------------------------------- */

void report_md_code(clasp_buf *b, const char *s);
void report_md_class(clasp_buf *b, const char *name);
void report_md_duration(clasp_buf *b, double s);
/* A correlation, or a dash when undefined. */
void report_md_rho(clasp_buf *b, double rho);
/* A table's header: the leading columns, one column per attack, then the
 * alignment row (align, then one right-aligned column per attack). */
void report_md_attack_header(clasp_buf *b, const clasp_model_report *m, const char *lead,
                             const char *align);
/* A table row of class c: name, examples and clean accuracy (of the first
 * attack) and the robust accuracy under each attack. */
void report_md_class_row(clasp_buf *b, const clasp_report *r, const clasp_model_report *m, int c);
/* The flow table of a, or a pointer to the charts past 20 classes. */
void report_md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a);

/* ---- JSON primitives (report_json.c) ------------------------------------ */

/* {"index": c, "name": ..., vkey: v}; NULL (null) when c < 0. */
json_object *report_json_class(const clasp_report *r, int c, const char *vkey, double v, int *bad);

/* ---- the sections' writers (sec_*.c) -------------------------------------- */

void sec_model_md(clasp_buf *b, const report_ctx *x);
void sec_model_json(json_object *o, const report_ctx *x, int *bad);
void sec_timings_json(json_object *o, const report_ctx *x, int *bad);
void sec_calibration_json(json_object *o, const report_ctx *x, int *bad);
void sec_epochs_json(json_object *o, const report_ctx *x, int *bad);
void sec_training_md(clasp_buf *b, const report_ctx *x);
void sec_classes_md(clasp_buf *b, const report_ctx *x);
void sec_attacks_json(json_object *o, const report_ctx *x, int *bad);
void sec_gains_md(clasp_buf *b, const report_ctx *x);
void sec_gains_json(json_object *o, const report_ctx *x, int *bad);
void sec_flow_md(clasp_buf *b, const report_ctx *x);
void sec_worst_md(clasp_buf *b, const report_ctx *x);
void sec_masking_md(clasp_buf *b, const report_ctx *x);
void sec_masking_json(json_object *o, const report_ctx *x, int *bad);
void sec_l2_md(clasp_buf *b, const report_ctx *x);
void sec_relations_md(clasp_buf *b, const report_ctx *x);
void sec_relations_json(json_object *o, const report_ctx *x, int *bad);
void sec_distribution_md(clasp_buf *b, const report_ctx *x);
void sec_distribution_json(json_object *o, const report_ctx *x, int *bad);
void sec_ranking_md(clasp_buf *b, const report_ctx *x);
void sec_ranking_json(json_object *o, const report_ctx *x, int *bad);
void sec_groups_md(clasp_buf *b, const report_ctx *x);
void sec_groups_json(json_object *o, const report_ctx *x, int *bad);
void sec_top_gains_md(clasp_buf *b, const report_ctx *x);
void sec_top_gains_json(json_object *o, const report_ctx *x, int *bad);
void sec_top_flows_md(clasp_buf *b, const report_ctx *x);
void sec_top_flows_json(json_object *o, const report_ctx *x, int *bad);
void sec_charts_md(clasp_buf *b, const report_ctx *x);
void sec_charts_json(json_object *o, const report_ctx *x, int *bad);
/* The "charts" object of attack j's record in report.json. */
void report_attack_charts_json(json_object *o, const report_ctx *x, int j, int *bad);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
