/* Section "per-class accuracy": report.md's table of clean and robust
 * accuracy per class and one line per attack; report.json's record of
 * every attack (per-class counts, flow, summary, L2 distances, charts). */
#include "experiment/report/section.h"

#include "clasp/counts.h"

static void md_class_table(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    int k = r->num_classes;
    const clasp_attack_report *a0 = &m->attacks[0];
    report_md_attack_header(b, m, "\n### Per-class accuracy\n\n| Class | n | Clean |",
                            "\n|---|---:|---:|");
    for (int c = 0; c < k; c++) report_md_class_row(b, r, m, c);
    const attack_summary *s0 = &x->f->sum[0];
    clasp_buf_printf(b, "\n| **all** | %lld | %.1f |", (long long)s0->count, 100 * s0->clean_acc);
    for (int j = 0; j < m->n_attacks; j++)
        clasp_buf_printf(b, " %.1f |", 100 * x->f->sum[j].robust_acc);
    clasp_buf_puts(b, "\n");
    if (!x->f->clean_agrees) {
        clasp_buf_puts(b, "\nThe attacks saw different clean counts; the n and Clean columns "
                          "are those of ");
        report_md_text(b, a0->label);
        clasp_buf_puts(b, " (each attack's own are in report.json).\n");
    }
}

static void md_attack_line(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a,
                           const attack_summary *s)
{
    clasp_buf_puts(b, "- **");
    report_md_text(b, a->label);
    clasp_buf_puts(b, a->unbounded ? "** (unbounded, see its L2 section" : "**");
    clasp_buf_printf(b, "%s: robust %.1f%% (clean %.1f%%), attack success %.1f%%",
                     a->unbounded ? ")" : "", 100 * s->robust_acc, 100 * s->clean_acc,
                     100 * s->success_rate);
    if (s->worst >= 0) {
        clasp_buf_puts(b, "; worst class ");
        report_md_class(b, r->class_names[s->worst]);
        clasp_buf_printf(b, " %.1f%%, best class ", 100 * report_class_robust(a, s->worst));
        report_md_class(b, r->class_names[s->best]);
        clasp_buf_printf(b, " %.1f%%, gap %.1f points", 100 * report_class_robust(a, s->best),
                         100 * s->gap);
    }
    clasp_buf_puts(b, "\n");
}

void sec_classes_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_model_report *m = x->m;
    if (m->n_attacks == 0) {
        clasp_buf_puts(b, "\nNo attacks were evaluated on this model.\n");
        return;
    }
    /* Past 20 classes the distribution and the worst and best classes
     * take the table's place. */
    if (!x->f->large) md_class_table(b, x);
    clasp_buf_puts(b, "\n");
    for (int j = 0; j < m->n_attacks; j++) md_attack_line(b, x->r, &m->attacks[j], &x->f->sum[j]);
}

/* ---- report.json ---------------------------------------------------------- */

static json_object *json_class_row(const clasp_report *r, const clasp_attack_report *a, int c,
                                   int *bad)
{
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "class_index", clasp_json_int(c, bad), bad);
    clasp_json_set(o, "class", clasp_json_str(r->class_names[c], bad), bad);
    clasp_json_set(o, "count", clasp_json_int(a->per_class.count[c], bad), bad);
    clasp_json_set(o, "clean_correct", clasp_json_int(a->per_class.clean_correct[c], bad), bad);
    clasp_json_set(o, "clean_acc",
                   clasp_json_num(clasp_rate(a->per_class.clean_correct[c], a->per_class.count[c]),
                                  bad),
                   bad);
    clasp_json_set(o, "robust_correct", clasp_json_int(a->per_class.robust_correct[c], bad), bad);
    clasp_json_set(o, "robust_acc", clasp_json_num(report_class_robust(a, c), bad), bad);
    clasp_json_set(o, "success", clasp_json_int(a->success[c], bad), bad);
    clasp_json_set(o, "success_rate",
                   clasp_json_num(clasp_rate(a->success[c], a->per_class.clean_correct[c]), bad),
                   bad);
    return o;
}

static json_object *json_summary(const clasp_report *r, const clasp_attack_report *a,
                                 const attack_summary *s, int *bad)
{
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "count", clasp_json_int(s->count, bad), bad);
    clasp_json_set(o, "clean_correct", clasp_json_int(s->clean, bad), bad);
    clasp_json_set(o, "robust_correct", clasp_json_int(s->robust, bad), bad);
    clasp_json_set(o, "success", clasp_json_int(s->success, bad), bad);
    clasp_json_set(o, "clean_acc", clasp_json_num(s->clean_acc, bad), bad);
    clasp_json_set(o, "robust_acc", clasp_json_num(s->robust_acc, bad), bad);
    clasp_json_set(o, "success_rate", clasp_json_num(s->success_rate, bad), bad);
    clasp_json_set(o, "worst_class",
                   report_json_class(r, s->worst, "robust_acc",
                                     s->worst < 0 ? 0 : report_class_robust(a, s->worst), bad),
                   bad);
    clasp_json_set(o, "best_class",
                   report_json_class(r, s->best, "robust_acc",
                                     s->best < 0 ? 0 : report_class_robust(a, s->best), bad),
                   bad);
    clasp_json_set(o, "gap", clasp_json_num(s->gap, bad), bad);
    return o;
}

/* Past this many classes the flow matrix is written sparse: 1000 classes
 * make a million mostly-zero counts per attack (tens of MB of JSON). */
enum { FLOW_DENSE_MAX = 100 };

static json_object *json_flow(const clasp_attack_report *a, int k, int *bad)
{
    json_object *rows = clasp_json_arr(bad);
    for (int i = 0; i < k; i++)
        clasp_json_push(rows, clasp_json_ints(a->flow + (size_t)i * k, k, bad), bad);
    return rows;
}

/* The nonzero cells [true class, prediction, count], row by row. */
static json_object *json_flow_nonzero(const clasp_attack_report *a, int k, int *bad)
{
    json_object *cells = clasp_json_arr(bad);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            int64_t v = a->flow[(size_t)i * k + j];
            if (!v) continue;
            int64_t cell[3] = {i, j, v};
            clasp_json_push(cells, clasp_json_ints(cell, 3, bad), bad);
        }
    return cells;
}

/* An ensemble's or worst case's members: in order, with the per-class
 * counts of clean-correct examples each flipped first (and, for an
 * ensemble run as a cascade, the time inside each). */
static json_object *json_members(const clasp_report *r, const clasp_attack_report *a, int *bad)
{
    int k = r->num_classes, n = a->n_members;
    json_object *arr = clasp_json_arr(bad);
    for (int j = 0; j < n; j++) {
        json_object *o = clasp_json_obj(bad);
        clasp_json_set(o, "label", clasp_json_str(a->member_labels[j], bad), bad);
        json_object *ff = clasp_json_arr(bad);
        int64_t total = 0;
        for (int c = 0; c < k; c++) {
            int64_t v = a->first_flip[(size_t)c * (size_t)n + (size_t)j];
            total += v;
            clasp_json_push(ff, clasp_json_int(v, bad), bad);
        }
        clasp_json_set(o, "flipped_first", ff, bad);
        clasp_json_set(o, "flipped_first_total", clasp_json_int(total, bad), bad);
        if (a->member_seconds)
            clasp_json_set(o, "seconds", clasp_json_num(a->member_seconds[j], bad), bad);
        clasp_json_push(arr, o, bad);
    }
    return arr;
}

static json_object *json_at_budget(const clasp_report *r, const l2_stats *s, int *bad)
{
    json_object *at = clasp_json_arr(bad);
    for (int e = 0; e < r->n_l2_eps; e++) {
        json_object *y = clasp_json_obj(bad);
        clasp_json_set(y, "l2_eps", clasp_json_num(r->l2_eps[e], bad), bad);
        clasp_json_set(y, "robust_correct", clasp_json_int(s->robust_at[e], bad), bad);
        clasp_json_set(y, "robust_acc", clasp_json_num(clasp_rate(s->robust_at[e], s->count), bad),
                       bad);
        clasp_json_push(at, y, bad);
    }
    return at;
}

/* The "l2" object of an unbounded attack: per-class median and mean L2
 * distance of its successes, robust accuracy at each budget. */
static json_object *json_l2(const clasp_report *r, const l2_stats *l2, int *bad)
{
    int k = r->num_classes;
    json_object *o = clasp_json_obj(bad), *rows = clasp_json_arr(bad);
    for (int c = 0; c < k; c++) {
        const l2_stats *s = &l2[c];
        json_object *x = clasp_json_obj(bad);
        clasp_json_set(x, "class_index", clasp_json_int(c, bad), bad);
        clasp_json_set(x, "class", clasp_json_str(r->class_names[c], bad), bad);
        clasp_json_set(x, "successes", clasp_json_int(s->n, bad), bad);
        clasp_json_set(x, "median", clasp_json_num(s->median, bad), bad);
        clasp_json_set(x, "mean", clasp_json_num(s->mean, bad), bad);
        clasp_json_set(x, "at_budget", json_at_budget(r, s, bad), bad);
        clasp_json_push(rows, x, bad);
    }
    clasp_json_set(o, "per_class", rows, bad);
    const l2_stats *s = &l2[k];
    json_object *all = clasp_json_obj(bad);
    clasp_json_set(all, "successes", clasp_json_int(s->n, bad), bad);
    clasp_json_set(all, "median", clasp_json_num(s->median, bad), bad);
    clasp_json_set(all, "mean", clasp_json_num(s->mean, bad), bad);
    clasp_json_set(all, "at_budget", json_at_budget(r, s, bad), bad);
    clasp_json_set(o, "summary", all, bad);
    return o;
}

static json_object *json_attack(const report_ctx *x, int j, int *bad)
{
    const clasp_report *r = x->r;
    const clasp_attack_report *a = &x->m->attacks[j];
    int k = r->num_classes;
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "label", clasp_json_str(a->label, bad), bad);
    clasp_json_set(o, "plugin", clasp_json_str(a->plugin, bad), bad);
    clasp_json_set(o, "params", clasp_json_str(a->params, bad), bad);
    clasp_json_set(o, "seconds", clasp_json_num(a->seconds, bad), bad);
    clasp_json_set(o, "linf_eps", a->linf_eps > 0 ? clasp_json_num(a->linf_eps, bad) : NULL, bad);
    clasp_json_set(o, "derived", clasp_json_bool(a->derived, bad), bad);
    if (a->n_members) clasp_json_set(o, "ensemble", json_members(r, a, bad), bad);
    json_object *rows = clasp_json_arr(bad);
    for (int c = 0; c < k; c++) clasp_json_push(rows, json_class_row(r, a, c, bad), bad);
    clasp_json_set(o, "per_class", rows, bad);
    if (k <= FLOW_DENSE_MAX) clasp_json_set(o, "flow", json_flow(a, k, bad), bad);
    else {
        clasp_json_set(o, "flow", NULL, bad);
        clasp_json_set(o, "flow_nonzero", json_flow_nonzero(a, k, bad), bad);
    }
    clasp_json_set(o, "summary", json_summary(r, a, &x->f->sum[j], bad), bad);
    clasp_json_set(o, "unbounded", clasp_json_bool(a->unbounded, bad), bad);
    clasp_json_set(o, "l2", x->f->l2[j] ? json_l2(r, x->f->l2[j], bad) : NULL, bad);
    report_attack_charts_json(o, x, j, bad);
    return o;
}

void sec_attacks_json(json_object *o, const report_ctx *x, int *bad)
{
    json_object *attacks = clasp_json_arr(bad);
    for (int j = 0; j < x->m->n_attacks; j++) clasp_json_push(attacks, json_attack(x, j, bad), bad);
    clasp_json_set(o, "attacks", attacks, bad);
}
