/* per_class.csv: one row per model, attack and class, for spreadsheets. */
#include "experiment/report_internal.h"

#include <stdio.h>
#include <string.h>

/* RFC 4180: a field holding a comma, quote or line break is quoted, with
 * inner quotes doubled. */
static void csv_field(clasp_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        clasp_buf_puts(b, s);
        return;
    }
    clasp_buf_puts(b, "\"");
    for (const char *p = s; *p; p++) clasp_buf_printf(b, *p == '"' ? "\"\"" : "%c", *p);
    clasp_buf_puts(b, "\"");
}

static void csv_row(clasp_buf *b, const clasp_report *r, const clasp_model_report *m,
                    const clasp_attack_report *a, int c)
{
    csv_field(b, m->name);
    clasp_buf_puts(b, ",");
    csv_field(b, a->label);
    clasp_buf_printf(b, ",%d,", c);
    csv_field(b, r->class_names[c]);
    clasp_buf_printf(b, ",%lld,%lld,%.6f,%lld,%.6f,%lld,%.6f,", (long long)a->per_class.count[c],
                     (long long)a->per_class.clean_correct[c],
                     clasp_rate(a->per_class.clean_correct[c], a->per_class.count[c]),
                     (long long)a->per_class.robust_correct[c], report_class_robust(a, c),
                     (long long)a->success[c],
                     clasp_rate(a->success[c], a->per_class.clean_correct[c]));
    /* Ensembles and worst cases: "member=count;..." of the examples each
     * member flipped first. */
    clasp_buf ff = {0};
    for (int j = 0; j < a->n_members; j++)
        clasp_buf_printf(&ff, "%s%s=%lld", j ? ";" : "", a->member_labels[j],
                         (long long)a->first_flip[(size_t)c * (size_t)a->n_members + (size_t)j]);
    csv_field(b, ff.data ? ff.data : "");
    clasp_buf_free(&ff);
    clasp_buf_puts(b, "\n");
}

clasp_status report_write_csv(const clasp_report *r, const chart_plan *plan, const char *path)
{
    (void)plan;
    clasp_buf b = {0};
    clasp_buf_puts(&b, "model,attack,class_index,class,count,clean_correct,clean_acc,"
                       "robust_correct,robust_acc,success,success_rate,flipped_first_by\n");
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        for (int j = 0; j < m->n_attacks; j++)
            for (int c = 0; c < r->num_classes; c++) csv_row(&b, r, m, &m->attacks[j], c);
    }
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
