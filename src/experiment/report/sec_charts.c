/* Section "charts": links to the model's SVG charts (report_charts.c
 * names and writes them). */
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
    const clasp_model_report *m = x->m;
    const chart_plan *plan = x->plan;
    if (m->n_attacks == 0 && !clasp_svg_epochs_wanted(x->r, m)) return;
    clasp_buf_puts(b, "\n### Charts\n\n");
    for (int j = 0; j < m->n_attacks; j++) {
        const char *stem = plan->pair[plan->first[x->mi] + j], *label = m->attacks[j].label;
        md_link(b, "Per-class clean and robust accuracy, ", label, stem, "classes");
        md_link(b, "Flow heat map, ", label, stem, "flow");
    }
    if (clasp_svg_epochs_wanted(x->r, m))
        md_link(b, "Per-class validation accuracy by epoch", NULL, plan->model[x->mi], "epochs");
}

void report_attack_charts_json(json_object *o, const report_ctx *x, int j, int *bad)
{
    const char *stem = x->plan->pair[x->plan->first[x->mi] + j];
    char rel[STEM_MAX + 32];
    json_object *charts = clasp_json_obj(bad);
    report_chart_rel(rel, sizeof rel, stem, "classes");
    clasp_json_set(charts, "classes", clasp_json_str(rel, bad), bad);
    report_chart_rel(rel, sizeof rel, stem, "flow");
    clasp_json_set(charts, "flow", clasp_json_str(rel, bad), bad);
    clasp_json_set(o, "charts", charts, bad);
}

void sec_charts_json(json_object *o, const report_ctx *x, int *bad)
{
    json_object *charts = clasp_json_obj(bad);
    if (clasp_svg_epochs_wanted(x->r, x->m)) {
        char rel[STEM_MAX + 32];
        report_chart_rel(rel, sizeof rel, x->plan->model[x->mi], "epochs");
        clasp_json_set(charts, "epochs", clasp_json_str(rel, bad), bad);
    } else {
        clasp_json_set(charts, "epochs", NULL, bad);
    }
    clasp_json_set(o, "charts", charts, bad);
}
