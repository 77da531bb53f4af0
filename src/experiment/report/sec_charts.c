/* Section "charts": links to the model's SVG charts (report_charts.c
 * decides which there are, names and writes them). */
#include "experiment/report/section.h"

static void md_link(clasp_buf *b, const char *what, const char *label, const char *stem,
                    const char *kind)
{
    char rel[STEM_MAX + 32];
    report_chart_rel(rel, sizeof rel, stem, kind);
    clasp_buf_printf(b, "- %s", what);
    if (label) report_md_text(b, label);
    clasp_buf_printf(b, ": [%s](%s)\n", rel, rel);
}

void sec_charts_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    const chart_plan *plan = x->plan;
    const char *ms = plan->model[x->mi];
    int curves = report_has_curves(r, m), heat = report_has_heatmap(r);
    int epochs = report_has_epochs_chart(r, m);
    if (!curves && !epochs && !(m->n_attacks > 0 && (heat || report_has_bars(r)))) return;
    clasp_buf_puts(b, "\n### Charts\n\n");
    if (curves) {
        md_link(b, "Per-class robust accuracy, sorted, one line per attack", NULL, ms, "curve");
        md_link(b, "Histogram of per-class robust accuracy", NULL, ms, "histogram");
    }
    for (int j = 0; j < m->n_attacks; j++) {
        const char *stem = plan->pair[plan->first[x->mi] + j], *label = m->attacks[j].label;
        if (report_has_bars(r))
            md_link(b, "Per-class clean and robust accuracy, ", label, stem, "classes");
        if (heat) md_link(b, "Flow heat map, ", label, stem, "flow");
    }
    if (epochs) md_link(b, "Per-class validation accuracy by epoch", NULL, ms, "epochs");
}

/* A chart's path, or null when the report has no such chart. */
static json_object *chart(int has, const char *stem, const char *kind, int *bad)
{
    if (!has) return NULL;
    char rel[STEM_MAX + 32];
    report_chart_rel(rel, sizeof rel, stem, kind);
    return clasp_json_str(rel, bad);
}

void report_attack_charts_json(json_object *o, const report_ctx *x, int j, int *bad)
{
    const char *stem = x->plan->pair[x->plan->first[x->mi] + j];
    json_object *charts = clasp_json_obj(bad);
    clasp_json_set(charts, "classes", chart(report_has_bars(x->r), stem, "classes", bad), bad);
    clasp_json_set(charts, "flow", chart(report_has_heatmap(x->r), stem, "flow", bad), bad);
    clasp_json_set(o, "charts", charts, bad);
}

void sec_charts_json(json_object *o, const report_ctx *x, int *bad)
{
    const char *ms = x->plan->model[x->mi];
    json_object *charts = clasp_json_obj(bad);
    clasp_json_set(charts, "epochs", chart(report_has_epochs_chart(x->r, x->m), ms, "epochs", bad),
                   bad);
    if (x->r->num_classes > REPORT_SMALL_CLASSES) {
        int curves = report_has_curves(x->r, x->m);
        clasp_json_set(charts, "curve", chart(curves, ms, "curve", bad), bad);
        clasp_json_set(charts, "histogram", chart(curves, ms, "histogram", bad), bad);
    }
    clasp_json_set(o, "charts", charts, bad);
}
