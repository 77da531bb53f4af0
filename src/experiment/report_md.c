/* report.md: what a person reads first. */
#include "experiment/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "experiment/report_relations.h"

/* Markdown text: characters that would start formatting or break a table
 * cell are backslash-escaped; line breaks become spaces. */
void report_md_text(clasp_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') clasp_buf_puts(b, " ");
        else if (strchr("\\`*_[]<>|#", *p)) clasp_buf_printf(b, "\\%c", *p);
        else clasp_buf_printf(b, "%c", *p);
    }
}

/* A code span: backslash escapes do not work inside one, so backticks
 * become quotes instead. */
static void md_code(clasp_buf *b, const char *s)
{
    clasp_buf_puts(b, "`");
    for (const char *p = s; *p; p++)
        clasp_buf_printf(b, "%c", *p == '`' ? '\'' : *p == '\n' || *p == '\r' ? ' ' : *p);
    clasp_buf_puts(b, "`");
}

/* A class name in running text, in italics so names with commas or
 * spaces stand apart from the sentence. */
static void md_class(clasp_buf *b, const char *name)
{
    clasp_buf_puts(b, "*");
    report_md_text(b, name);
    clasp_buf_puts(b, "*");
}

static void md_duration(clasp_buf *b, double s)
{
    if (!isfinite(s) || s < 0) clasp_buf_puts(b, "n/a");
    else if (s < 60) clasp_buf_printf(b, "%.1f s", s);
    else if (s < 3600) clasp_buf_printf(b, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else clasp_buf_printf(b, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void md_header(clasp_buf *b, const clasp_report *r)
{
    clasp_buf_puts(b, "# clasp report: ");
    report_md_text(b, r->experiment);
    clasp_buf_puts(b, "\n\n- **Device:** ");
    report_md_text(b, r->device);
    clasp_buf_printf(b, "\n- **Seed:** %llu\n- **Dataset:** ", (unsigned long long)r->seed);
    report_md_text(b, r->dataset);
    clasp_buf_printf(b, ", %d classes; train %zu, validation %zu, test %zu (evaluated)\n",
                     r->num_classes, r->train_size, r->val_size, r->test_size);
    clasp_buf_puts(b, "- **Started:** ");
    report_md_text(b, r->started);
    clasp_buf_puts(b, "; **wall time:** ");
    md_duration(b, r->wall_seconds);
    clasp_buf_puts(b, "\n- **clasp** ");
    report_md_text(b, r->clasp_version);
    if (r->config_path && *r->config_path) {
        clasp_buf_puts(b, "; config ");
        md_code(b, r->config_path);
        clasp_buf_puts(b, " (resolved in report.json)");
    }
    clasp_buf_puts(b, "\n\nAccuracies are in percent; *robust* is the accuracy on the "
                      "attacked test examples.\n");
}

static void md_model_intro(clasp_buf *b, const clasp_model_report *m)
{
    clasp_buf_puts(b, "\n## Model: ");
    report_md_text(b, m->name);
    clasp_buf_puts(b, "\n\n");
    if (m->source[0]) {
        clasp_buf_puts(b, "Existing model ");
        md_code(b, m->source);
        clasp_buf_puts(b, m->source_epochs ? ", fine-tuned; "
                          : m->defense[0]  ? ", fitted post hoc; "
                                           : ", evaluated as it is");
    }
    if (m->defense[0]) {
        clasp_buf_puts(b, "Defense ");
        md_code(b, m->defense);
        if (m->params[0]) {
            clasp_buf_puts(b, " (");
            report_md_text(b, m->params);
            clasp_buf_puts(b, ")");
        }
    } else if (!m->source[0] || m->source_epochs) {
        clasp_buf_puts(b, "Standard training");
    }
    if (m->checkpoint[0]) {
        clasp_buf_puts(b, "; checkpoint ");
        md_code(b, m->checkpoint);
    }
    clasp_buf_puts(b, ". Training took ");
    md_duration(b, m->train_seconds);
    clasp_buf_puts(b, ", evaluation ");
    md_duration(b, m->eval_seconds);
    clasp_buf_puts(b, ".\n");
}

/* Whether all attacks saw the same clean-correct counts, so one clean
 * column describes them all. */
static int clean_agrees(const clasp_model_report *m, int k)
{
    for (int j = 1; j < m->n_attacks; j++)
        for (int c = 0; c < k; c++)
            if (m->attacks[j].per_class.clean_correct[c] !=
                    m->attacks[0].per_class.clean_correct[c] ||
                m->attacks[j].per_class.count[c] != m->attacks[0].per_class.count[c])
                return 0;
    return 1;
}

static void md_class_table(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes;
    const clasp_attack_report *a0 = &m->attacks[0];
    clasp_buf_puts(b, "\n### Per-class accuracy\n\n| Class | n | Clean |");
    for (int j = 0; j < m->n_attacks; j++) {
        clasp_buf_puts(b, " ");
        report_md_text(b, m->attacks[j].label);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|---:|---:|");
    for (int j = 0; j < m->n_attacks; j++) clasp_buf_puts(b, "---:|");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, r->class_names[c]);
        clasp_buf_printf(b, " | %lld | %.1f |", (long long)a0->per_class.count[c],
                         100 * clasp_rate(a0->per_class.clean_correct[c], a0->per_class.count[c]));
        for (int j = 0; j < m->n_attacks; j++)
            clasp_buf_printf(b, " %.1f |", 100 * report_class_robust(&m->attacks[j], c));
    }
    attack_summary s0 = report_summarize(a0, k);
    clasp_buf_printf(b, "\n| **all** | %lld | %.1f |", (long long)s0.count, 100 * s0.clean_acc);
    for (int j = 0; j < m->n_attacks; j++)
        clasp_buf_printf(b, " %.1f |", 100 * report_summarize(&m->attacks[j], k).robust_acc);
    clasp_buf_puts(b, "\n");
    if (!clean_agrees(m, k)) {
        clasp_buf_puts(b, "\nThe attacks saw different clean counts; the n and Clean columns "
                          "are those of ");
        report_md_text(b, a0->label);
        clasp_buf_puts(b, " (each attack's own are in report.json).\n");
    }
}

static void md_attack_line(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a)
{
    attack_summary s = report_summarize(a, r->num_classes);
    clasp_buf_puts(b, "- **");
    report_md_text(b, a->label);
    clasp_buf_puts(b, a->unbounded ? "** (unbounded, see its L2 section" : "**");
    clasp_buf_printf(b, "%s: robust %.1f%% (clean %.1f%%), attack success %.1f%%",
                     a->unbounded ? ")" : "", 100 * s.robust_acc, 100 * s.clean_acc,
                     100 * s.success_rate);
    if (s.worst >= 0) {
        clasp_buf_puts(b, "; worst class ");
        md_class(b, r->class_names[s.worst]);
        clasp_buf_printf(b, " %.1f%%, best class ", 100 * report_class_robust(a, s.worst));
        md_class(b, r->class_names[s.best]);
        clasp_buf_printf(b, " %.1f%%, gap %.1f points", 100 * report_class_robust(a, s.best),
                         100 * s.gap);
    }
    clasp_buf_puts(b, "\n");
}

/* All pairs while there are few; past six columns only the pairs with the
 * strongest attack, so the table stays readable. */
static int md_pair_shown(const clasp_model_report *m, int i, int j, int strongest)
{
    /* Listed L-infinity pairs only: not the derived worst cases, not the
     * unbounded attacks. */
    if (m->attacks[i].derived || m->attacks[j].derived) return 0;
    if (m->attacks[i].unbounded || m->attacks[j].unbounded) return 0;
    int listed = 0;
    for (int a = 0; a < m->n_attacks; a++)
        listed += !m->attacks[a].derived && !m->attacks[a].unbounded;
    int pairs = listed * (listed - 1) / 2;
    return pairs <= 6 || i == strongest || j == strongest;
}

static void md_gains(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, strongest = report_strongest_attack(m, k);
    clasp_buf_puts(b, "\n### Gains of stronger attacks\n\nPoints of robust accuracy that "
                      "the stronger attack (b) removes beyond the weaker one (a), "
                      "as \"b over a\"; negative where a is stronger on that class. "
                      "L\u221e attacks only: unbounded ones (cw) have their own L2 section.\n\n"
                      "| Class |");
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++) {
            if (!md_pair_shown(m, i, j, strongest)) continue;
            attack_pair p = report_make_pair(&m->attacks[i], &m->attacks[j], k);
            clasp_buf_puts(b, " ");
            report_md_text(b, p.b->label);
            clasp_buf_puts(b, " over ");
            report_md_text(b, p.a->label);
            clasp_buf_puts(b, " |");
        }
    clasp_buf_puts(b, "\n|---|");
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++)
            if (md_pair_shown(m, i, j, strongest)) clasp_buf_puts(b, "---:|");
    for (int c = 0; c <= k; c++) {
        clasp_buf_puts(b, "\n| ");
        if (c < k) report_md_text(b, r->class_names[c]);
        else clasp_buf_puts(b, "**all**");
        clasp_buf_puts(b, " |");
        for (int i = 0; i < m->n_attacks; i++)
            for (int j = i + 1; j < m->n_attacks; j++) {
                if (!md_pair_shown(m, i, j, strongest)) continue;
                attack_pair p = report_make_pair(&m->attacks[i], &m->attacks[j], k);
                double g = c < k ? report_class_robust(p.a, c) - report_class_robust(p.b, c)
                                 : report_summarize(p.a, k).robust_acc -
                                       report_summarize(p.b, k).robust_acc;
                clasp_buf_printf(b, " %+.1f |", 100 * g);
            }
    }
    clasp_buf_puts(b, "\n");
}

/* Past this many classes the flow table is a wall of numbers; the heat map
 * and report.json carry it instead. */
#define MD_FLOW_MAX_CLASSES 20

static void md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a);

static void md_flow(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes;
    const clasp_attack_report *a = &m->attacks[report_strongest_attack(m, k)];
    clasp_buf_puts(b, "\n### Flow under the strongest attack (");
    report_md_text(b, a->label);
    clasp_buf_puts(b, ")\n\n");
    md_flow_table(b, r, a);
}

static void md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a)
{
    int k = r->num_classes;
    if (k > MD_FLOW_MAX_CLASSES) {
        clasp_buf_puts(b, "Too many classes for a table: see the flow chart below and "
                          "report.json.\n");
        return;
    }
    clasp_buf_puts(b, "Rows: true class; columns: prediction on the attacked example.\n\n"
                      "| true \\\\ predicted |");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, " ");
        report_md_text(b, r->class_names[c]);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|");
    for (int c = 0; c < k; c++) clasp_buf_puts(b, "---:|");
    for (int i = 0; i < k; i++) {
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, r->class_names[i]);
        clasp_buf_puts(b, " |");
        for (int j = 0; j < k; j++)
            clasp_buf_printf(b, " %lld |", (long long)a->flow[(size_t)i * k + j]);
    }
    clasp_buf_puts(b, "\n");
}

/* Ensembles and worst cases: per class, robust accuracy and which member
 * flipped the class's examples first, then the worst case's flow. */
static void md_worst(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, budgets = 0;
    double seen[16];
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (a->derived || a->linf_eps <= 0) continue;
        int known = 0;
        for (int i = 0; i < budgets; i++) known |= seen[i] == a->linf_eps;
        if (!known && budgets < 16) seen[budgets++] = a->linf_eps;
    }
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (!a->n_members) continue;
        attack_summary s = report_summarize(a, k);
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
            clasp_buf_puts(b,
                           ". An example counts as robust only if it is classified correctly clean "
                           "and none of them flipped it; \"flipped first\" credits the first in "
                           "list "
                           "order. Unbounded attacks (no eps, e.g. cw) are left out.");
            if (budgets > 1) {
                clasp_buf_puts(b, " The listed L-inf attacks use different budgets (eps");
                for (int i = 0; i < budgets; i++)
                    clasp_buf_printf(b, "%s %g", i ? "," : "", seen[i]);
                clasp_buf_puts(b, "), so worst cases are grouped by eps; a budget with a single "
                                  "attack has none.");
            }
            clasp_buf_puts(b, "\n\n");
        } else {
            clasp_buf_puts(b,
                           "A cascade: each attack runs only on the clean-correct examples that "
                           "every earlier one failed to flip; an example counts as robust only if "
                           "all failed. Time: ");
            md_duration(b, a->seconds);
            for (int i = 0; i < a->n_members; i++) {
                clasp_buf_puts(b, i ? ", " : " (");
                report_md_text(b, a->member_labels[i]);
                clasp_buf_puts(b, " ");
                md_duration(b, a->member_seconds ? a->member_seconds[i] : 0);
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
        for (int c = 0; c <= k; c++) {
            clasp_buf_puts(b, "\n| ");
            if (c < k) report_md_text(b, r->class_names[c]);
            else clasp_buf_puts(b, "**all**");
            if (c < k)
                clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)a->per_class.count[c],
                                 (long long)a->per_class.clean_correct[c],
                                 100 * report_class_robust(a, c));
            else
                clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)s.count,
                                 (long long)s.clean, 100 * s.robust_acc);
            for (int i = 0; i < a->n_members; i++) {
                int64_t v = 0;
                for (int cc = c < k ? c : 0; cc < (c < k ? c + 1 : k); cc++)
                    v += a->first_flip[(size_t)cc * (size_t)a->n_members + (size_t)i];
                clasp_buf_printf(b, " %lld |", (long long)v);
            }
        }
        clasp_buf_puts(b,
                       "\n\nFlow of the worst case (misclassified clean examples keep their clean "
                       "prediction):\n\n");
        md_flow_table(b, r, a);
    }
}

static void md_weights(clasp_buf *b, const clasp_report *r, const float *w, const char *fmt)
{
    for (int c = 0; c < r->num_classes; c++) {
        clasp_buf_puts(b, c ? ", " : "");
        md_class(b, r->class_names[c]);
        clasp_buf_printf(b, fmt, (double)w[c]);
    }
}

static void md_epoch(clasp_buf *b, const clasp_report *r, const clasp_epoch_report *e)
{
    int k = r->num_classes;
    clasp_buf_printf(b, "- Epoch %d: loss %.4f, lr %.4g, ", e->epoch, e->train_loss, e->lr);
    md_duration(b, e->seconds);
    if (report_epoch_has_val(e, k)) {
        int64_t n = clasp_class_sum(e->val.count, k);
        clasp_buf_printf(b, "; validation clean %.1f%%",
                         100 * clasp_rate(clasp_class_sum(e->val.clean_correct, k), n));
        if (e->val.robust_correct)
            clasp_buf_printf(b, ", robust %.1f%%",
                             100 * clasp_rate(clasp_class_sum(e->val.robust_correct, k), n));
        const int64_t *v = report_epoch_val_metric(e);
        int worst, best;
        report_extreme_classes(v, e->val.count, k, &worst, &best);
        clasp_buf_puts(b, ", worst class ");
        md_class(b, r->class_names[worst]);
        clasp_buf_printf(b, " (%.1f%% %s)", 100 * clasp_rate(v[worst], e->val.count[worst]),
                         e->val.robust_correct ? "robust" : "clean");
    }
    if (e->class_weights) {
        clasp_buf_puts(b, "; class weights: ");
        md_weights(b, r, e->class_weights, " %.2f");
    }
    clasp_buf_puts(b, "\n");
}

static void md_training(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    if (m->n_epochs > 0) {
        clasp_buf_puts(b, "\n### Training\n\n");
        for (int i = 0; i < m->n_epochs; i++) md_epoch(b, r, &m->epochs[i]);
    }
    if (m->calibrated) {
        clasp_buf_printf(b,
                         "\n### Calibration\n\nTemperature %.3f (for probabilities only: "
                         "predictions and every attack use the logits plus the offsets, never "
                         "divided by the temperature, so it cannot mask gradients)",
                         (double)m->calib_temperature);
        if (m->calib_offsets) {
            clasp_buf_puts(b, "; per-class logit offsets: ");
            md_weights(b, r, m->calib_offsets, " %+.3f");
        }
        clasp_buf_puts(b, ".\n");
    }
}

static void md_link(clasp_buf *b, const char *what, const char *label, const char *stem,
                    const char *kind)
{
    char rel[STEM_MAX + 32];
    report_chart_rel(rel, sizeof rel, stem, kind);
    clasp_buf_printf(b, "- %s", what);
    if (label) report_md_text(b, label);
    clasp_buf_printf(b, ": [%s](%s)\n", rel, rel);
}

static void md_charts(clasp_buf *b, const clasp_report *r, const clasp_model_report *m,
                      const chart_plan *plan, int mi)
{
    clasp_buf_puts(b, "\n### Charts\n\n");
    for (int j = 0; j < m->n_attacks; j++) {
        const char *stem = plan->pair[plan->first[mi] + j], *label = m->attacks[j].label;
        md_link(b, "Per-class clean and robust accuracy, ", label, stem, "classes");
        md_link(b, "Flow heat map, ", label, stem, "flow");
    }
    if (clasp_svg_epochs_wanted(r, m))
        md_link(b, "Per-class validation accuracy by epoch", NULL, plan->model[mi], "epochs");
}

static void md_model(clasp_buf *b, const clasp_report *r, const chart_plan *plan, int mi)
{
    const clasp_model_report *m = &r->models[mi];
    md_model_intro(b, m);
    if (m->n_attacks > 0) {
        md_class_table(b, r, m);
        clasp_buf_puts(b, "\n");
        for (int j = 0; j < m->n_attacks; j++) md_attack_line(b, r, &m->attacks[j]);
        int n_linf = 0;
        for (int j = 0; j < m->n_attacks; j++)
            n_linf += !m->attacks[j].unbounded && !m->attacks[j].derived;
        if (n_linf > 1) md_gains(b, r, m);
        md_flow(b, r, m);
        md_worst(b, r, m);
        report_md_masking(b, r, m);
        report_md_l2(b, r, m);
        report_md_relations(b, r, m);
    } else {
        clasp_buf_puts(b, "\nNo attacks were evaluated on this model.\n");
    }
    md_training(b, r, m);
    if (m->n_attacks > 0 || clasp_svg_epochs_wanted(r, m)) md_charts(b, r, m, plan, mi);
}

clasp_status report_write_md(const clasp_report *r, const chart_plan *plan, const char *path)
{
    clasp_buf b = {0};
    md_header(&b, r);
    for (int i = 0; i < r->n_models; i++) md_model(&b, r, plan, i);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
