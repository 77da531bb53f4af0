/* Section "worst and best classes" (more than 20 classes): the 15 classes
 * the strongest attack leaves least robust and the 15 it leaves most, with
 * every attack's robust accuracy on them. */
#include "experiment/report/section.h"

#include "clasp/counts.h"

static void md_table(clasp_buf *b, const report_ctx *x, const int *cls, int n)
{
    report_md_attack_header(b, x->m, "| Class | n | Clean |", "\n|---|---:|---:|");
    for (int i = 0; i < n; i++) report_md_class_row(b, x->r, x->m, cls[i]);
    clasp_buf_puts(b, "\n");
}

/* The n worst (ascending) and n best (descending) of the ranking. */
static int list_n(const large_facts *lg)
{
    return lg->n_order < REPORT_LIST_N ? lg->n_order : REPORT_LIST_N;
}

void sec_ranking_md(clasp_buf *b, const report_ctx *x)
{
    const large_facts *lg = &x->f->lg;
    if (!x->f->large || x->m->n_attacks == 0 || lg->n_order == 0) return;
    int n = list_n(lg), best[REPORT_LIST_N];
    for (int i = 0; i < n; i++) best[i] = lg->order[lg->n_order - 1 - i];
    clasp_buf_printf(
        b, "\n### The %d worst classes\n\nBy robust accuracy under the strongest attack (", n);
    report_md_text(b, x->m->attacks[x->f->strongest].label);
    clasp_buf_puts(b, "), least robust first; ties by class order.\n\n");
    md_table(b, x, lg->order, n);
    clasp_buf_printf(b, "\n### The %d best classes\n\nMost robust first.\n\n", n);
    md_table(b, x, best, n);
}

static json_object *json_list(const report_ctx *x, const int *cls, int n, int step, int *bad)
{
    const clasp_attack_report *s = &x->m->attacks[x->f->strongest];
    json_object *arr = clasp_json_arr(bad);
    for (int i = 0; i < n; i++) {
        int c = cls[i * step];
        clasp_json_push(arr,
                        report_json_class(x->r, c, "robust_acc", report_class_robust(s, c), bad),
                        bad);
    }
    return arr;
}

void sec_ranking_json(json_object *o, const report_ctx *x, int *bad)
{
    const large_facts *lg = &x->f->lg;
    if (!x->f->large) return;
    if (x->m->n_attacks == 0 || lg->n_order == 0) {
        clasp_json_set(o, "class_ranking", NULL, bad);
        return;
    }
    int n = list_n(lg);
    json_object *y = clasp_json_obj(bad);
    clasp_json_set(y, "attack", clasp_json_str(x->m->attacks[x->f->strongest].label, bad), bad);
    clasp_json_set(y, "worst", json_list(x, lg->order, n, 1, bad), bad);
    clasp_json_set(y, "best", json_list(x, lg->order + lg->n_order - 1, n, -1, bad), bad);
    clasp_json_set(o, "class_ranking", y, bad);
}
