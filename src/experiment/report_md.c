/* report.md: what a person reads first. The header here; then, model by
 * model, the sections of report/sections.c in their order. This file also
 * holds the Markdown primitives the sections share. */
#include "experiment/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "experiment/report/section.h"
#include "clasp/counts.h"

/* Markdown text: characters that would start formatting or break a table
 * cell are backslash-escaped; line breaks become spaces. */
void report_md_text(clasp_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') clasp_buf_puts(b, " ");
        else if (strchr("\\`*_[]<>|#", *p)) clasp_buf_printf(b, "\\%c", *p);
        else clasp_buf_printf(b, "%c", *p);
    }
}

/* A code span: backslash escapes do not work inside one, so backticks
 * become quotes instead. */
void report_md_code(clasp_buf *b, const char *s)
{
    clasp_buf_puts(b, "`");
    for (const char *p = s; *p; p++)
        clasp_buf_printf(b, "%c", *p == '`' ? '\'' : *p == '\n' || *p == '\r' ? ' ' : *p);
    clasp_buf_puts(b, "`");
}

/* A class name in running text, in italics so names with commas or
 * spaces stand apart from the sentence. */
void report_md_class(clasp_buf *b, const char *name)
{
    clasp_buf_puts(b, "*");
    report_md_text(b, name);
    clasp_buf_puts(b, "*");
}

void report_md_duration(clasp_buf *b, double s)
{
    if (!isfinite(s) || s < 0) clasp_buf_puts(b, "n/a");
    else if (s < 60) clasp_buf_printf(b, "%.1f s", s);
    else if (s < 3600) clasp_buf_printf(b, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else clasp_buf_printf(b, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void report_md_rho(clasp_buf *b, double rho)
{
    if (isfinite(rho)) clasp_buf_printf(b, "%+.2f", rho);
    else clasp_buf_puts(b, "\u2014");
}

void report_md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a)
{
    int k = r->num_classes;
    if (k > REPORT_SMALL_CLASSES) {
        clasp_buf_puts(b, k <= REPORT_HEATMAP_MAX_CLASSES
                              ? "Too many classes for a table: see the flow chart below and "
                                "report.json.\n"
                              : "Too many classes for a table or a heat map: see report.json.\n");
        return;
    }
    clasp_buf_puts(b, "Rows: true class; columns: prediction on the attacked example.\n\n"
                      "| true \\\\ predicted |");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, " ");
        report_md_text(b, r->class_names[c]);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|");
    for (int c = 0; c < k; c++) clasp_buf_puts(b, "---:|");
    for (int i = 0; i < k; i++) {
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, r->class_names[i]);
        clasp_buf_puts(b, " |");
        for (int j = 0; j < k; j++)
            clasp_buf_printf(b, " %lld |", (long long)a->flow[(size_t)i * k + j]);
    }
    clasp_buf_puts(b, "\n");
}

void report_md_attack_header(clasp_buf *b, const clasp_model_report *m, const char *lead,
                             const char *align)
{
    clasp_buf_puts(b, lead);
    for (int j = 0; j < m->n_attacks; j++) {
        clasp_buf_puts(b, " ");
        report_md_text(b, m->attacks[j].label);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, align);
    for (int j = 0; j < m->n_attacks; j++) clasp_buf_puts(b, "---:|");
}

void report_md_class_row(clasp_buf *b, const clasp_report *r, const clasp_model_report *m, int c)
{
    const clasp_attack_report *a0 = &m->attacks[0];
    clasp_buf_puts(b, "\n| ");
    report_md_text(b, r->class_names[c]);
    clasp_buf_printf(b, " | %lld | %.1f |", (long long)a0->per_class.count[c],
                     100 * clasp_rate(a0->per_class.clean_correct[c], a0->per_class.count[c]));
    for (int j = 0; j < m->n_attacks; j++)
        clasp_buf_printf(b, " %.1f |", 100 * report_class_robust(&m->attacks[j], c));
}

static void md_header(clasp_buf *b, const clasp_report *r)
{
    clasp_buf_puts(b, "# clasp report: ");
    report_md_text(b, r->experiment);
    clasp_buf_puts(b, "\n\n- **Device:** ");
    report_md_text(b, r->device);
    clasp_buf_printf(b, "\n- **Seed:** %llu\n- **Dataset:** ", (unsigned long long)r->seed);
    report_md_text(b, r->dataset);
    clasp_buf_printf(b, ", %d classes; train %zu, validation %zu, test %zu (evaluated)\n",
                     r->num_classes, r->train_size, r->val_size, r->test_size);
    clasp_buf_puts(b, "- **Started:** ");
    report_md_text(b, r->started);
    clasp_buf_puts(b, "; **wall time:** ");
    report_md_duration(b, r->wall_seconds);
    clasp_buf_puts(b, "\n- **clasp** ");
    report_md_text(b, r->clasp_version);
    if (r->config_path && *r->config_path) {
        clasp_buf_puts(b, "; config ");
        report_md_code(b, r->config_path);
        clasp_buf_puts(b, " (resolved in report.json)");
    }
    clasp_buf_puts(b, "\n\nAccuracies are in percent; *robust* is the accuracy on the "
                      "attacked test examples.\n");
}

clasp_status report_write_md(const clasp_report *r, const chart_plan *plan, const char *path)
{
    clasp_buf b = {0};
    md_header(&b, r);
    for (int i = 0; i < r->n_models; i++) {
        model_facts f;
        clasp_status s = report_facts_compute(r, i, &f);
        if (s != CLASP_OK) {
            clasp_buf_free(&b);
            return s;
        }
        report_ctx x = {r, &r->models[i], &f, plan, i};
        for (int j = 0; j < report_n_sections; j++)
            if (report_sections[j].md) report_sections[j].md(&b, &x);
        report_facts_free(&f);
    }
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
