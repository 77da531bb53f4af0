/* The numbers every output of the report shares, derived from the
 * counts (see report_internal.h). */
#include "experiment/report_internal.h"

#include "experiment/report_relations.h"

/* Lowest and highest per-class rate num/den among classes with den > 0;
 * ties go to the lower class index. */
void report_extreme_classes(const int64_t *num, const int64_t *den, int k, int *worst, int *best)
{
    *worst = *best = -1;
    for (int i = 0; i < k; i++) {
        if (den[i] <= 0) continue;
        double r = clasp_rate(num[i], den[i]);
        if (*worst < 0 || r < clasp_rate(num[*worst], den[*worst])) *worst = i;
        if (*best < 0 || r > clasp_rate(num[*best], den[*best])) *best = i;
    }
}

attack_summary report_summarize(const clasp_attack_report *a, int k)
{
    attack_summary s;
    s.count = clasp_class_sum(a->per_class.count, k);
    s.clean = clasp_class_sum(a->per_class.clean_correct, k);
    s.robust = clasp_class_sum(a->per_class.robust_correct, k);
    s.success = clasp_class_sum(a->success, k);
    s.clean_acc = clasp_rate(s.clean, s.count);
    s.robust_acc = clasp_rate(s.robust, s.count);
    s.success_rate = clasp_rate(s.success, s.clean);
    report_extreme_classes(a->per_class.robust_correct, a->per_class.count, k, &s.worst, &s.best);
    s.gap = s.worst < 0
                ? 0
                : clasp_rate(a->per_class.robust_correct[s.best], a->per_class.count[s.best]) -
                      clasp_rate(a->per_class.robust_correct[s.worst], a->per_class.count[s.worst]);
    return s;
}

double report_class_robust(const clasp_attack_report *a, int c)
{
    return clasp_rate(a->per_class.robust_correct[c], a->per_class.count[c]);
}

attack_pair report_make_pair(const clasp_attack_report *x, const clasp_attack_report *y, int k)
{
    double rx = report_summarize(x, k).robust_acc, ry = report_summarize(y, k).robust_acc;
    attack_pair p = {x, y, rx == ry};
    if (ry > rx) {
        p.a = y;
        p.b = x;
    }
    return p;
}

/* The attack with the lowest overall robust accuracy (first on a tie):
 * among the L-infinity attacks when there is one, since an unbounded
 * attack's robust accuracy is not on the same scale. */
int report_strongest_attack(const clasp_model_report *m, int k)
{
    int linf = report_strongest_linf(m, k);
    if (linf >= 0) return linf;
    int best = 0;
    for (int i = 1; i < m->n_attacks; i++)
        if (!m->attacks[i].derived && report_summarize(&m->attacks[i], k).robust_acc <
                                          report_summarize(&m->attacks[best], k).robust_acc)
            best = i;
    return best;
}

/* The metric an epoch's validation is judged by: robust when measured. */
const int64_t *report_epoch_val_metric(const clasp_epoch_report *e)
{
    return e->val.robust_correct ? e->val.robust_correct : e->val.clean_correct;
}

int report_epoch_has_val(const clasp_epoch_report *e, int k)
{
    return e->val.count && e->val.clean_correct && clasp_class_sum(e->val.count, k) > 0;
}
