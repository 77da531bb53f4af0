/* Section "ensembles and worst cases": per class, robust accuracy and
 * which member flipped the class's examples first, then the flow (the
 * entries themselves are in report.json's attack records). */
#include "experiment/report/section.h"

static void md_entry(clasp_buf *b, const report_ctx *x, const clasp_attack_report *a,
                     const attack_summary *s)
{
    const clasp_report *r = x->r;
    const model_facts *f = x->f;
    int k = r->num_classes;
    clasp_buf_puts(b, "\n### ");
    clasp_buf_puts(b, a->derived ? "Worst case per example: " : "Ensemble: ");
    report_md_text(b, a->label);
    clasp_buf_puts(b, "\n\n");
    if (a->derived) {
        clasp_buf_printf(b, "Over every listed L-inf attack with eps = %g: ", a->linf_eps);
        for (int i = 0; i < a->n_members; i++) {
            clasp_buf_puts(b, i ? ", " : "");
            report_md_text(b, a->member_labels[i]);
        }
        clasp_buf_puts(b, ". An example counts as robust only if it is classified correctly clean "
                          "and none of them flipped it; \"flipped first\" credits the first in "
                          "list "
                          "order. Unbounded attacks (no eps, e.g. cw) are left out.");
        if (f->n_budgets > 1) {
            clasp_buf_puts(b, " The listed L-inf attacks use different budgets (eps");
            for (int i = 0; i < f->n_budgets; i++)
                clasp_buf_printf(b, "%s %g", i ? "," : "", f->budgets[i]);
            clasp_buf_puts(b, "), so worst cases are grouped by eps; a budget with a single "
                              "attack has none.");
        }
        clasp_buf_puts(b, "\n\n");
    } else {
        clasp_buf_puts(b, "A cascade: each attack runs only on the clean-correct examples that "
                          "every earlier one failed to flip; an example counts as robust only if "
                          "all failed. Time: ");
        report_md_duration(b, a->seconds);
        for (int i = 0; i < a->n_members; i++) {
            clasp_buf_puts(b, i ? ", " : " (");
            report_md_text(b, a->member_labels[i]);
            clasp_buf_puts(b, " ");
            report_md_duration(b, a->member_seconds ? a->member_seconds[i] : 0);
        }
        clasp_buf_puts(b, ").\n\n");
    }
    clasp_buf_puts(b, "| Class | n | Clean-correct | Robust |");
    for (int i = 0; i < a->n_members; i++) {
        clasp_buf_puts(b, " flipped first by ");
        report_md_text(b, a->member_labels[i]);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|---:|---:|---:|");
    for (int i = 0; i < a->n_members; i++) clasp_buf_puts(b, "---:|");
    /* Past 20 classes only the total (each class is in report.json). */
    for (int c = f->large ? k : 0; c <= k; c++) {
        clasp_buf_puts(b, "\n| ");
        if (c < k) report_md_text(b, r->class_names[c]);
        else clasp_buf_puts(b, "**all**");
        if (c < k)
            clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)a->per_class.count[c],
                             (long long)a->per_class.clean_correct[c],
                             100 * report_class_robust(a, c));
        else
            clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)s->count, (long long)s->clean,
                             100 * s->robust_acc);
        for (int i = 0; i < a->n_members; i++) {
            int64_t v = 0;
            for (int cc = c < k ? c : 0; cc < (c < k ? c + 1 : k); cc++)
                v += a->first_flip[(size_t)cc * (size_t)a->n_members + (size_t)i];
            clasp_buf_printf(b, " %lld |", (long long)v);
        }
    }
    clasp_buf_puts(b, "\n\nFlow of the worst case (misclassified clean examples keep their clean "
                      "prediction):\n\n");
    report_md_flow_table(b, r, a);
}

void sec_worst_md(clasp_buf *b, const report_ctx *x)
{
    for (int j = 0; j < x->m->n_attacks; j++)
        if (x->m->attacks[j].n_members) md_entry(b, x, &x->m->attacks[j], &x->f->sum[j]);
}
