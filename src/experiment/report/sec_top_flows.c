/* Section "frequent flows" (more than 20 classes): the most frequent
 * (true -> adversarial) pairs under the strongest attack, in place of the
 * flow table; the whole matrix is in report.json. */
#include "experiment/report/section.h"

#include "clasp/counts.h"

void sec_top_flows_md(clasp_buf *b, const report_ctx *x)
{
    const model_facts *f = x->f;
    if (!f->large || x->m->n_attacks == 0) return;
    const clasp_attack_report *a = &x->m->attacks[f->strongest];
    clasp_buf_puts(b, "\n### Most frequent flows under the strongest attack (");
    report_md_text(b, a->label);
    clasp_buf_printf(b,
                     ")\n\nThe (up to) %d most frequent pairs of true class and prediction on "
                     "the attacked example, off the diagonal; the whole matrix is in "
                     "report.json",
                     REPORT_LIST_N);
    clasp_buf_puts(b, x->r->num_classes <= REPORT_HEATMAP_MAX_CLASSES
                          ? " and its heat map among the charts.\n\n"
                          : ".\n\n");
    if (f->lg.n_flows == 0) {
        clasp_buf_puts(b, "No example changed class.\n");
        return;
    }
    clasp_buf_puts(b, "| True class | Predicted | examples | of the true class |\n"
                      "|---|---|---:|---:|");
    for (int i = 0; i < f->lg.n_flows; i++) {
        const flow_entry *e = &f->lg.flows[i];
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, x->r->class_names[e->from]);
        clasp_buf_puts(b, " | ");
        report_md_text(b, x->r->class_names[e->to]);
        clasp_buf_printf(b, " | %lld | %.1f |", (long long)e->n,
                         100 * clasp_rate(e->n, a->per_class.count[e->from]));
    }
    clasp_buf_puts(b, "\n");
}

void sec_top_flows_json(json_object *o, const report_ctx *x, int *bad)
{
    const model_facts *f = x->f;
    if (!f->large) return;
    if (x->m->n_attacks == 0) {
        clasp_json_set(o, "top_flows", NULL, bad);
        return;
    }
    json_object *y = clasp_json_obj(bad), *arr = clasp_json_arr(bad);
    clasp_json_set(y, "attack", clasp_json_str(x->m->attacks[f->strongest].label, bad), bad);
    for (int i = 0; i < f->lg.n_flows; i++) {
        const flow_entry *e = &f->lg.flows[i];
        json_object *z = clasp_json_obj(bad);
        clasp_json_set(z, "true", clasp_json_int(e->from, bad), bad);
        clasp_json_set(z, "true_name", clasp_json_str(x->r->class_names[e->from], bad), bad);
        clasp_json_set(z, "predicted", clasp_json_int(e->to, bad), bad);
        clasp_json_set(z, "predicted_name", clasp_json_str(x->r->class_names[e->to], bad), bad);
        clasp_json_set(z, "count", clasp_json_int(e->n, bad), bad);
        clasp_json_push(arr, z, bad);
    }
    clasp_json_set(y, "flows", arr, bad);
    clasp_json_set(o, "top_flows", y, bad);
}
