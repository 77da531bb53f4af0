/* Section "gains of stronger attacks": per class, the points of robust
 * accuracy the stronger attack of each pair of listed L-infinity attacks
 * removes beyond the weaker one. */
#include "experiment/report/section.h"

void sec_gains_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    const model_facts *f = x->f;
    int k = r->num_classes;
    if (m->n_attacks == 0 || f->n_listed < 2 || f->large) return;
    clasp_buf_puts(b, "\n### Gains of stronger attacks\n\nPoints of robust accuracy that "
                      "the stronger attack (b) removes beyond the weaker one (a), "
                      "as \"b over a\"; negative where a is stronger on that class. "
                      "L\u221e attacks only: unbounded ones (cw) have their own L2 section.\n\n"
                      "| Class |");
    for (int q = 0; q < f->n_pairs; q++) {
        const attack_pair *p = &f->pairs[q];
        if (!p->shown) continue;
        clasp_buf_puts(b, " ");
        report_md_text(b, m->attacks[p->b].label);
        clasp_buf_puts(b, " over ");
        report_md_text(b, m->attacks[p->a].label);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|");
    for (int q = 0; q < f->n_pairs; q++)
        if (f->pairs[q].shown) clasp_buf_puts(b, "---:|");
    for (int c = 0; c <= k; c++) {
        clasp_buf_puts(b, "\n| ");
        if (c < k) report_md_text(b, r->class_names[c]);
        else clasp_buf_puts(b, "**all**");
        clasp_buf_puts(b, " |");
        for (int q = 0; q < f->n_pairs; q++) {
            const attack_pair *p = &f->pairs[q];
            if (!p->shown) continue;
            double g = c < k ? report_class_robust(&m->attacks[p->a], c) -
                                   report_class_robust(&m->attacks[p->b], c)
                             : p->overall_gain;
            clasp_buf_printf(b, " %+.1f |", 100 * g);
        }
    }
    clasp_buf_puts(b, "\n");
}

/* Per-class gain of the stronger attack b over a: robust_a - robust_b. */
void sec_gains_json(json_object *o, const report_ctx *x, int *bad)
{
    const clasp_model_report *m = x->m;
    int k = x->r->num_classes;
    json_object *pairs = clasp_json_arr(bad);
    for (int q = 0; q < x->f->n_pairs; q++) {
        const attack_pair *p = &x->f->pairs[q];
        const clasp_attack_report *A = &m->attacks[p->a], *B = &m->attacks[p->b];
        json_object *y = clasp_json_obj(bad);
        clasp_json_set(y, "a", clasp_json_str(A->label, bad), bad);
        clasp_json_set(y, "b", clasp_json_str(B->label, bad), bad);
        clasp_json_set(y, "stronger", p->tie ? NULL : clasp_json_str(B->label, bad), bad);
        json_object *gain = clasp_json_arr(bad);
        for (int c = 0; c < k; c++)
            clasp_json_push(gain,
                            clasp_json_num(report_class_robust(A, c) - report_class_robust(B, c),
                                           bad),
                            bad);
        clasp_json_set(y, "gain", gain, bad);
        clasp_json_set(y, "overall_gain", clasp_json_num(p->overall_gain, bad), bad);
        clasp_json_push(pairs, y, bad);
    }
    clasp_json_set(o, "attack_pairs", pairs, bad);
}
