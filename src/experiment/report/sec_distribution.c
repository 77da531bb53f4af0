/* Section "distribution" (more than 20 classes): per attack, the quantiles
 * of per-class robust accuracy and how many classes it leaves at 0 %. */
#include "experiment/report/section.h"

#include <math.h>

static void md_pct(clasp_buf *b, double v)
{
    if (isfinite(v)) clasp_buf_printf(b, " %.1f |", 100 * v);
    else clasp_buf_puts(b, " \u2014 |");
}

void sec_distribution_md(clasp_buf *b, const report_ctx *x)
{
    const model_facts *f = x->f;
    if (!f->large || x->m->n_attacks == 0) return;
    clasp_buf_printf(b,
                     "\n### Per-class robust accuracy: distribution\n\n"
                     "%d classes: too many for a row each here (per_class.csv and report.json "
                     "have every class). Quantiles of the per-class robust accuracy over the "
                     "classes with test examples, and how many classes each attack leaves at "
                     "0%%.\n\n| Attack | classes | at 0%% | min | 10%% | 25%% | median | 75%% "
                     "| 90%% | max | mean |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                     "---:|",
                     x->r->num_classes);
    for (int j = 0; j < x->m->n_attacks; j++) {
        const class_dist *d = &f->lg.dist[j];
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, x->m->attacks[j].label);
        clasp_buf_printf(b, " | %d | %d |", d->n, d->at_zero);
        for (int i = 0; i < REPORT_N_QUANTILES; i++) md_pct(b, d->q[i]);
        md_pct(b, d->mean);
    }
    clasp_buf_puts(b, "\n");
}

void sec_distribution_json(json_object *o, const report_ctx *x, int *bad)
{
    const model_facts *f = x->f;
    if (!f->large) return;
    json_object *arr = clasp_json_arr(bad);
    for (int j = 0; j < x->m->n_attacks; j++) {
        const class_dist *d = &f->lg.dist[j];
        json_object *y = clasp_json_obj(bad), *qs = clasp_json_arr(bad);
        clasp_json_set(y, "attack", clasp_json_str(x->m->attacks[j].label, bad), bad);
        clasp_json_set(y, "classes", clasp_json_int(d->n, bad), bad);
        clasp_json_set(y, "classes_at_zero", clasp_json_int(d->at_zero, bad), bad);
        for (int i = 0; i < REPORT_N_QUANTILES; i++) {
            json_object *q = clasp_json_obj(bad);
            clasp_json_set(q, "p", clasp_json_num(report_quantile_at[i], bad), bad);
            clasp_json_set(q, "robust_acc", clasp_json_num(d->q[i], bad), bad);
            clasp_json_push(qs, q, bad);
        }
        clasp_json_set(y, "quantiles", qs, bad);
        clasp_json_set(y, "mean", clasp_json_num(d->mean, bad), bad);
        clasp_json_push(arr, y, bad);
    }
    clasp_json_set(o, "class_distribution", arr, bad);
}
