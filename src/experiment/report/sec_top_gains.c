/* Section "largest gains" (more than 20 classes): for each pair of listed
 * L-infinity attacks, the classes where the stronger one gains most. */
#include "experiment/report/section.h"

static double gain(const clasp_model_report *m, const attack_pair *p, int c)
{
    return report_class_robust(&m->attacks[p->a], c) - report_class_robust(&m->attacks[p->b], c);
}

void sec_top_gains_md(clasp_buf *b, const report_ctx *x)
{
    const model_facts *f = x->f;
    const clasp_model_report *m = x->m;
    if (!f->large || f->n_pairs == 0) return;
    clasp_buf_printf(b,
                     "\n### Largest per-class gains of stronger attacks\n\nFor each pair of "
                     "L\u221e attacks, the (up to) %d classes where the stronger (b) removes "
                     "the most points of robust accuracy beyond the weaker (a); every class's "
                     "gain is in report.json.\n",
                     REPORT_LIST_N);
    for (int q = 0; q < f->n_pairs; q++) {
        const attack_pair *p = &f->pairs[q];
        if (!p->shown) continue;
        clasp_buf_puts(b, "\n- **");
        report_md_text(b, m->attacks[p->b].label);
        clasp_buf_puts(b, "** over **");
        report_md_text(b, m->attacks[p->a].label);
        clasp_buf_printf(b, "** (overall %+.1f):", 100 * p->overall_gain);
        int n = f->lg.n_top_gain[q];
        if (n == 0) clasp_buf_puts(b, " no class with a positive gain");
        for (int i = 0; i < n; i++) {
            int c = f->lg.top_gain[q][i];
            clasp_buf_puts(b, i ? ", " : " ");
            report_md_class(b, x->r->class_names[c]);
            clasp_buf_printf(b, " %+.1f", 100 * gain(m, p, c));
        }
    }
    clasp_buf_puts(b, "\n");
}

void sec_top_gains_json(json_object *o, const report_ctx *x, int *bad)
{
    const model_facts *f = x->f;
    const clasp_model_report *m = x->m;
    if (!f->large) return;
    json_object *arr = clasp_json_arr(bad);
    for (int q = 0; q < f->n_pairs; q++) {
        const attack_pair *p = &f->pairs[q];
        json_object *y = clasp_json_obj(bad), *cls = clasp_json_arr(bad);
        clasp_json_set(y, "a", clasp_json_str(m->attacks[p->a].label, bad), bad);
        clasp_json_set(y, "b", clasp_json_str(m->attacks[p->b].label, bad), bad);
        for (int i = 0; i < f->lg.n_top_gain[q]; i++) {
            int c = f->lg.top_gain[q][i];
            clasp_json_push(cls, report_json_class(x->r, c, "gain", gain(m, p, c), bad), bad);
        }
        clasp_json_set(y, "classes", cls, bad);
        clasp_json_push(arr, y, bad);
    }
    clasp_json_set(o, "largest_gains", arr, bad);
}
