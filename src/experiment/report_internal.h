/* Internals of the report writer (report*.c): the numbers every output
 * shares (report_metrics.c), the chart names and files
 * (report_charts.c), and one writer per output file (report_json.c,
 * report_csv.c, report_md.c). report.c checks the input and calls them. */
#ifndef CLASP_REPORT_INTERNAL_H
#define CLASP_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/report.h"
#include "experiment/svg.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- numbers derived from the counts (report_metrics.c) ---------------- */

typedef struct attack_summary {
    int64_t count, clean, robust, success;
    double clean_acc, robust_acc, success_rate;
    int worst, best; /* by robust accuracy among classes with examples; -1: none */
    double gap;      /* robust accuracy of best minus worst */
} attack_summary;

/* A pair of attacks on one model, ordered so that b is the stronger one
 * (lower overall robust accuracy); on a tie they keep their order and
 * `tie` is set. The gain of b over a in class c is robust_a - robust_b. */
typedef struct attack_pair {
    const clasp_attack_report *a, *b;
    int tie;
} attack_pair;

/* Lowest and highest per-class rate num/den among classes with den > 0;
 * ties go to the lower class index. */
void report_extreme_classes(const int64_t *num, const int64_t *den, int k, int *worst, int *best);
attack_summary report_summarize(const clasp_attack_report *a, int k);
/* Robust accuracy of class c. */
double report_class_robust(const clasp_attack_report *a, int c);
attack_pair report_make_pair(const clasp_attack_report *x, const clasp_attack_report *y, int k);
/* The attack with the lowest overall robust accuracy (first on a tie),
 * among the L-infinity attacks when there is one. */
int report_strongest_attack(const clasp_model_report *m, int k);
/* The metric an epoch's validation is judged by: robust when measured. */
const int64_t *report_epoch_val_metric(const clasp_epoch_report *e);
int report_epoch_has_val(const clasp_epoch_report *e, int k);

/* ---- chart names and files (report_charts.c) --------------------------- */

/* Slugs are cut so that "<model>-<attack>-NN-classes.svg" stays well
 * below the usual 255-byte file-name limit. */
#define STEM_MODEL 80
#define STEM_ATTACK 110
#define STEM_MAX 224

typedef char chart_stem[STEM_MAX];

typedef struct chart_plan {
    chart_stem *pair;  /* per (model, attack), models' attacks one after another */
    chart_stem *model; /* per model, for the epochs chart */
    int *first;        /* index in pair of each model's first attack */
} chart_plan;

/* Names every chart of r, unique within the report. */
clasp_status report_plan_charts(const clasp_report *r, chart_plan *p);
void report_plan_free(chart_plan *p);
/* "charts/<stem>-<kind>.svg", relative to the report folder. */
void report_chart_rel(char *out, size_t size, const char *stem, const char *kind);
/* "<dir>/<name>" in a new string; NULL when out of memory. */
char *report_join_path(const char *dir, const char *name);
/* Every chart of the plan under <dir>/charts (created when missing). */
clasp_status report_write_charts(const clasp_report *r, const chart_plan *plan, const char *dir);

/* ---- the output files ---------------------------------------------------- */

clasp_status report_write_json(const clasp_report *r, const chart_plan *plan, const char *path);
clasp_status report_write_csv(const clasp_report *r, const chart_plan *plan, const char *path);
clasp_status report_write_md(const clasp_report *r, const chart_plan *plan, const char *path);

/* Markdown text: characters that would start formatting or break a table
 * cell are backslash-escaped; line breaks become spaces (report_md.c). */
void report_md_text(clasp_buf *b, const char *s);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
