/* Section "gradient-free check": a gradient-free attack (forward passes
 * only) that finds more than the strongest gradient attack at the same
 * budget means the gradients mislead (e.g. a saturated softmax); shown per
 * class whenever a model is attacked by both (facts.c picks the pair). */
#include "experiment/report/section.h"

/* Whether the gradient-free attack finds more in class c (same count). */
static int finds_more(const clasp_attack_report *S, const clasp_attack_report *G, int c)
{
    return S->per_class.robust_correct[c] < G->per_class.robust_correct[c] &&
           S->per_class.count[c] == G->per_class.count[c];
}

void sec_masking_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const model_facts *f = x->f;
    if (f->gf < 0) return;
    int k = r->num_classes;
    const clasp_attack_report *S = &x->m->attacks[f->gf], *G = &x->m->attacks[f->grad];
    double rs = f->sum[f->gf].robust_acc, rg = f->sum[f->grad].robust_acc;
    clasp_buf_puts(b, "\n### Gradient-free check\n\nThe gradient-free attack ");
    report_md_text(b, S->label);
    clasp_buf_printf(b, " leaves %.1f%% robust, the strongest gradient attack at the same eps (",
                     100 * rs);
    report_md_text(b, G->label);
    clasp_buf_printf(b, ") %.1f%%. ", 100 * rg);
    if (rs - rg < 0)
        clasp_buf_puts(b,
                       "An attack that never looks at a gradient finds more: the gradients mislead "
                       "(gradient masking), and the gradient attacks' numbers overstate "
                       "robustness.");
    else
        clasp_buf_puts(b, "No sign of gradient masking overall: the gradient attack finds at least "
                          "as much.");
    if (f->n_gf_more > 0 && f->large) {
        clasp_buf_printf(b,
                         " The gradient-free attack finds more in %d classes (report.json lists "
                         "them).",
                         f->n_gf_more);
    } else if (f->n_gf_more > 0) {
        clasp_buf_puts(b, " Classes where the gradient-free attack finds more:");
        for (int c = 0, first = 1; c < k; c++)
            if (finds_more(S, G, c)) {
                clasp_buf_puts(b, first ? " *" : ", *");
                report_md_text(b, r->class_names[c]);
                clasp_buf_printf(b, "* (%+.1f points)",
                                 100 * (report_class_robust(S, c) - report_class_robust(G, c)));
                first = 0;
            }
        clasp_buf_puts(b, ".");
    }
    clasp_buf_puts(b, "\n");
}

void sec_masking_json(json_object *o, const report_ctx *x, int *bad)
{
    const model_facts *f = x->f;
    if (f->gf < 0) {
        clasp_json_set(o, "gradient_free_check", NULL, bad);
        return;
    }
    int k = x->r->num_classes;
    const clasp_attack_report *S = &x->m->attacks[f->gf], *G = &x->m->attacks[f->grad];
    json_object *g = clasp_json_obj(bad), *diff = clasp_json_arr(bad), *more = clasp_json_arr(bad);
    clasp_json_set(g, "gradient_free", clasp_json_str(S->label, bad), bad);
    clasp_json_set(g, "gradient", clasp_json_str(G->label, bad), bad);
    for (int c = 0; c < k; c++) {
        clasp_json_push(diff,
                        clasp_json_num(report_class_robust(S, c) - report_class_robust(G, c), bad),
                        bad);
        if (finds_more(S, G, c)) clasp_json_push(more, clasp_json_int(c, bad), bad);
    }
    clasp_json_set(g, "robust_diff", diff, bad);
    clasp_json_set(g, "overall_diff",
                   clasp_json_num(f->sum[f->gf].robust_acc - f->sum[f->grad].robust_acc, bad), bad);
    clasp_json_set(g, "classes_gradient_free_finds_more", more, bad);
    clasp_json_set(o, "gradient_free_check", g, bad);
}
