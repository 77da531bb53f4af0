/* Section "class-wise relations", after the class-wise study of
 * adversarial training (Tian et al., "Analysis and Applications of
 * Class-wise Robustness in Adversarial Training", KDD 2021, and its ICLR
 * 2021 version "Intriguing class-wise properties of adversarial
 * training"), each a Spearman rank correlation over the classes with test
 * examples (facts.c computes them):
 *   - the L2 norm of each class's row of the classifier's weight against
 *     the robust accuracy under the strongest L-infinity attack (the study
 *     finds them positively correlated);
 *   - for each pair of L-infinity attacks, a weaker and b stronger: a's
 *     per-class robust accuracy against b's per-class gain over a (the
 *     study finds stronger attacks more powerful on vulnerable classes,
 *     which reads as a negative correlation);
 *   - T-PGD against PGD at the same budget: the per-class difference of
 *     robust accuracy, per T. */
#include "experiment/report/section.h"

static double tpgd_diff(const clasp_model_report *m, const model_facts *f, const tpgd_pair *t,
                        int c)
{
    const clasp_attack_report *P = &m->attacks[t->pgd], *T = &m->attacks[t->tpgd];
    return c < f->k ? report_class_robust(T, c) - report_class_robust(P, c)
                    : f->sum[t->tpgd].robust_acc - f->sum[t->pgd].robust_acc;
}

void sec_relations_json(json_object *o, const report_ctx *x, int *bad)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    const model_facts *f = x->f;
    int k = r->num_classes, s = f->strongest_linf;
    json_object *rel = clasp_json_obj(bad);

    json_object *norm = clasp_json_obj(bad);
    clasp_json_set(norm, "class_weight_norms", clasp_json_floats(m->class_weight_norms, k, bad),
                   bad);
    clasp_json_set(norm, "attack", s >= 0 ? clasp_json_str(m->attacks[s].label, bad) : NULL, bad);
    clasp_json_set(norm, "spearman", clasp_json_num(f->weight_rho, bad), bad);
    clasp_json_set(rel, "weight_norm_vs_robust", norm, bad);

    json_object *pairs = clasp_json_arr(bad);
    for (int q = 0; q < f->n_pairs; q++) {
        const attack_pair *p = &f->pairs[q];
        json_object *y = clasp_json_obj(bad);
        clasp_json_set(y, "a", clasp_json_str(m->attacks[p->a].label, bad), bad);
        clasp_json_set(y, "b", clasp_json_str(m->attacks[p->b].label, bad), bad);
        clasp_json_set(y, "tie", clasp_json_bool(p->tie, bad), bad);
        clasp_json_set(y, "spearman_robust_a_vs_gain", clasp_json_num(p->rho, bad), bad);
        clasp_json_push(pairs, y, bad);
    }
    clasp_json_set(rel, "attack_pairs", pairs, bad);

    json_object *tp = clasp_json_arr(bad);
    for (int q = 0; q < f->n_tpgd; q++) {
        const tpgd_pair *t = &f->tpgd[q];
        json_object *y = clasp_json_obj(bad), *diff = clasp_json_arr(bad);
        clasp_json_set(y, "tpgd", clasp_json_str(m->attacks[t->tpgd].label, bad), bad);
        clasp_json_set(y, "pgd", clasp_json_str(m->attacks[t->pgd].label, bad), bad);
        clasp_json_set(y, "T", clasp_json_num(t->t, bad), bad);
        for (int c = 0; c < k; c++)
            clasp_json_push(diff, clasp_json_num(tpgd_diff(m, f, t, c), bad), bad);
        clasp_json_set(y, "robust_diff", diff, bad);
        clasp_json_set(y, "overall_diff", clasp_json_num(tpgd_diff(m, f, t, k), bad), bad);
        clasp_json_push(tp, y, bad);
    }
    clasp_json_set(rel, "tpgd_vs_pgd", tp, bad);
    json_object *ex = clasp_json_arr(bad);
    for (int c = 0; r->excluded && c < k; c++)
        if (r->excluded[c]) clasp_json_push(ex, clasp_json_int(c, bad), bad);
    clasp_json_set(rel, "classes_left_out", ex, bad);
    clasp_json_set(o, "relations", rel, bad);
}

static void md_norms(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    int k = r->num_classes, s = x->f->strongest_linf;
    clasp_buf_puts(b, "\n**Classifier weight norm and robustness.** Per class, the L2 norm of its "
                      "row of the last linear layer's weight, against its robust accuracy under "
                      "the "
                      "strongest L\u221e attack (");
    report_md_text(b, m->attacks[s].label);
    clasp_buf_puts(b, "): \u03c1 = ");
    report_md_rho(b, x->f->weight_rho);
    if (x->f->large) {
        clasp_buf_puts(b, " (the study finds a positive correlation; the norms are in "
                          "report.json).\n");
        return;
    }
    clasp_buf_puts(b, " (the study finds a positive correlation).\n\n| Class | weight norm | "
                      "robust |\n"
                      "|---|---:|---:|");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, r->class_names[c]);
        clasp_buf_printf(b, " | %.3f | %.1f |", (double)m->class_weight_norms[c],
                         100 * report_class_robust(&m->attacks[s], c));
    }
    clasp_buf_puts(b, "\n");
}

static void md_pairs(clasp_buf *b, const report_ctx *x)
{
    const clasp_model_report *m = x->m;
    const model_facts *f = x->f;
    clasp_buf_puts(b, "\n**Where stronger attacks win.** For each pair of L\u221e attacks, a the "
                      "weaker and b the stronger by overall robust accuracy: \u03c1 between a's "
                      "per-class robust accuracy and b's per-class gain over a (points a's robust "
                      "accuracy exceeds b's). The study finds stronger attacks more powerful on "
                      "vulnerable classes, which shows as a negative \u03c1.\n\n"
                      "| a (weaker) | b (stronger) | overall gain | \u03c1(robust under a, gain) "
                      "|\n"
                      "|---|---|---:|---:|");
    for (int q = 0; q < f->n_pairs; q++) {
        const attack_pair *p = &f->pairs[q];
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, m->attacks[p->a].label);
        clasp_buf_puts(b, " | ");
        report_md_text(b, m->attacks[p->b].label);
        clasp_buf_printf(b, "%s | %+.1f | ", p->tie ? " (tie)" : "", 100 * p->overall_gain);
        report_md_rho(b, p->rho);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n");
}

static void md_tpgd(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    const model_facts *f = x->f;
    int k = r->num_classes;
    clasp_buf_puts(b, "\n**T-PGD against PGD at the same budget.** Per class, points of robust "
                      "accuracy under T-PGD minus under PGD with the same eps, steps, alpha, "
                      "restarts and random start; negative where T-PGD finds more.\n\n| Class |");
    for (int q = 0; q < f->n_tpgd; q++) {
        clasp_buf_puts(b, " ");
        report_md_text(b, m->attacks[f->tpgd[q].tpgd].label);
        clasp_buf_puts(b, " \u2212 ");
        report_md_text(b, m->attacks[f->tpgd[q].pgd].label);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|");
    for (int q = 0; q < f->n_tpgd; q++) clasp_buf_puts(b, "---:|");
    for (int c = f->large ? k : 0; c <= k; c++) {
        clasp_buf_puts(b, "\n| ");
        if (c < k) report_md_text(b, r->class_names[c]);
        else clasp_buf_puts(b, "**all**");
        clasp_buf_puts(b, " |");
        for (int q = 0; q < f->n_tpgd; q++)
            clasp_buf_printf(b, " %+.1f |", 100 * tpgd_diff(m, f, &f->tpgd[q], c));
    }
    clasp_buf_puts(b, "\n");
}

void sec_relations_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    int k = r->num_classes;
    if (x->m->n_attacks == 0 || x->f->strongest_linf < 0) return;
    clasp_buf_puts(b,
                   "\n### Class-wise relations\n\n"
                   "The relations of the class-wise study of adversarial training (Tian et al., "
                   "KDD 2021; ICLR 2021 version) as Spearman rank correlations \u03c1 over the "
                   "classes with test examples (tied values share their average rank; \u2014 "
                   "where \u03c1 is undefined: fewer than two classes, or a column with one value "
                   "throughout). L\u221e attacks only.");
    if (r->excluded) {
        clasp_buf_puts(b, " Classes left out of training (data.exclude\\_classes) are left out of "
                          "every \u03c1 too:");
        for (int c = 0, first = 1; c < k; c++)
            if (r->excluded[c]) {
                clasp_buf_puts(b, first ? " *" : ", *");
                report_md_text(b, r->class_names[c]);
                clasp_buf_puts(b, "*");
                first = 0;
            }
        clasp_buf_puts(b, ".");
    }
    clasp_buf_puts(b, "\n");
    if (x->m->class_weight_norms) md_norms(b, x);
    if (x->f->n_pairs > 0) md_pairs(b, x);
    if (x->f->n_tpgd > 0) md_tpgd(b, x);
}
