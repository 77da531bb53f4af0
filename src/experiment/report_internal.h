/* Internals of the report writer (report*.c): the chart names and files
 * (report_charts.c) and one writer per output file (report_json.c,
 * report_csv.c, report_md.c). The numbers every output shares are the
 * facts (report/facts.h); report.md and report.json are printed by the
 * sections of report/sections.c. report.c checks the input and calls the
 * writers. */
#ifndef CLASP_REPORT_INTERNAL_H
#define CLASP_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/report.h"
#include "experiment/report/facts.h"
#include "experiment/svg.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

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

/* Which charts a report of k classes has: per attack, the bars of
 * per-class accuracy up to 20 classes and the flow heat map up to 100;
 * per model, the accuracy by epoch up to 100 classes and, past 20, the
 * sorted per-class curves and the histogram instead of the bars. */
#define REPORT_HEATMAP_MAX_CLASSES 100
int report_has_bars(const clasp_report *r);
int report_has_heatmap(const clasp_report *r);
int report_has_epochs_chart(const clasp_report *r, const clasp_model_report *m);
int report_has_curves(const clasp_report *r, const clasp_model_report *m);

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
