/* Section "unbounded attacks": an unbounded attack (cw) flips nearly every
 * example given no budget, so its robust accuracy says little next to the
 * L-infinity attacks'. What it does measure is how far each class's
 * examples are from a wrong class: per class, the median and mean L2
 * distance of its successes, and the robust accuracy at the L2 budgets of
 * evaluate.l2_eps (facts.c computes them; report.json has them in each
 * attack's record). */
#include "experiment/report/section.h"

#include <math.h>

#include "clasp/counts.h"

static void md_dist(clasp_buf *b, double d)
{
    if (isfinite(d)) clasp_buf_printf(b, " %.3f |", d);
    else clasp_buf_puts(b, " \u2014 |");
}

static void md_row(clasp_buf *b, const clasp_report *r, const l2_stats *s)
{
    clasp_buf_printf(b, " | %lld | %lld |", (long long)s->count, (long long)s->n);
    md_dist(b, s->median);
    md_dist(b, s->mean);
    for (int e = 0; e < r->n_l2_eps; e++)
        clasp_buf_printf(b, " %.1f |", 100 * clasp_rate(s->robust_at[e], s->count));
}

void sec_l2_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    int k = r->num_classes, any = 0;
    for (int j = 0; j < m->n_attacks; j++) any |= x->f->l2[j] != NULL;
    if (!any) return;
    clasp_buf_puts(b,
                   "\n### Unbounded attacks: L2 distances\n\n"
                   "An unbounded attack (one without an L\u221e budget `eps`, such as cw) is never "
                   "ranked against the L\u221e attacks, since its robust accuracy depends on how "
                   "long it searches rather than on a budget. What it measures is distance: per "
                   "class, the median and mean L2 distance \u2016x\u2032 \u2212 x\u2016\u2082 "
                   "(pixels in [0, 1]) of the examples it flipped (clean-correct, then "
                   "misclassified), where smaller means the class lies closer to a wrong one");
    if (r->n_l2_eps > 0)
        clasp_buf_puts(b,
                       "; and the robust accuracy at each L2 budget of `evaluate.l2_eps`, where an "
                       "example counts as robust unless it was misclassified already or the attack "
                       "flipped it within the budget (an upper bound: a stronger L2 attack can "
                       "only "
                       "lower it)");
    clasp_buf_puts(b, ". \u2014: no example flipped.\n");
    for (int j = 0; j < m->n_attacks; j++) {
        const l2_stats *l2 = x->f->l2[j];
        if (!l2) continue;
        clasp_buf_puts(b, "\n| Class (");
        report_md_text(b, m->attacks[j].label);
        clasp_buf_puts(b, ") | n | flipped | median L2 | mean L2 |");
        for (int e = 0; e < r->n_l2_eps; e++)
            clasp_buf_printf(b, " robust at L2 \u2264 %g |", r->l2_eps[e]);
        clasp_buf_puts(b, "\n|---|---:|---:|---:|---:|");
        for (int e = 0; e < r->n_l2_eps; e++) clasp_buf_puts(b, "---:|");
        /* Past 20 classes only the total (each class is in report.json). */
        for (int c = 0; !x->f->large && c < k; c++) {
            clasp_buf_puts(b, "\n| ");
            report_md_text(b, r->class_names[c]);
            md_row(b, r, &l2[c]);
        }
        clasp_buf_puts(b, "\n| **all**");
        md_row(b, r, &l2[k]);
        clasp_buf_puts(b, "\n");
    }
}
