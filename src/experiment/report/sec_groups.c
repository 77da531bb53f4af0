/* Section "class groups": clean and robust accuracy aggregated over the
 * classes of each group, the groups of a user's mapping file (data.groups,
 * clasp/groups.h) or else CIFAR-100's superclasses (groups.c). Shown for
 * any number of classes; the built-in groups only exist at 100. */
#include "experiment/report/section.h"

#include "clasp/counts.h"
#include "clasp/groups.h"

void sec_groups_md(clasp_buf *b, const report_ctx *x)
{
    const class_groups *g = &x->f->groups;
    const clasp_model_report *m = x->m;
    if (g->n == 0 || m->n_attacks == 0) return;
    size_t na = (size_t)m->n_attacks;
    if (!g->file) {
        clasp_buf_printf(b,
                         "\n### By superclass\n\nCIFAR-100's %d superclasses, each the sum of its "
                         "classes' examples.\n\n",
                         g->n);
        report_md_attack_header(b, m, "| Superclass | classes | n | Clean |",
                                "\n|---|---|---:|---:|");
    } else {
        clasp_buf_printf(b, "\n### By class group\n\n%d groups from ", g->n);
        report_md_code(b, g->file);
        clasp_buf_puts(b, ", each the sum of its classes' examples.");
        if (g->n_unlisted == 1)
            clasp_buf_printf(b, " The class the file does not list forms the last group, %s.",
                             CLASP_GROUPS_UNLISTED);
        else if (g->n_unlisted)
            clasp_buf_printf(b, " The %d classes the file does not list form the last group, %s.",
                             g->n_unlisted, CLASP_GROUPS_UNLISTED);
        clasp_buf_puts(b, "\n\n");
        report_md_attack_header(b, m, "| Group | classes | n | Clean |", "\n|---|---|---:|---:|");
    }
    for (int gi = 0; gi < g->n; gi++) {
        clasp_buf_puts(b, "\n| ");
        report_md_text(b, g->names[gi]);
        clasp_buf_puts(b, " |");
        for (int c = 0, first = 1; c < x->r->num_classes; c++)
            if (g->group_of[c] == gi) {
                clasp_buf_puts(b, first ? " " : ", ");
                report_md_text(b, x->r->class_names[c]);
                first = 0;
            }
        clasp_buf_printf(b, " | %lld | %.1f |", (long long)g->count[gi],
                         100 * clasp_rate(g->clean[gi], g->count[gi]));
        for (size_t j = 0; j < na; j++)
            clasp_buf_printf(b, " %.1f |",
                             100 * clasp_rate(g->robust[(size_t)gi * na + j], g->count[gi]));
    }
    clasp_buf_puts(b, "\n");
}

void sec_groups_json(json_object *o, const report_ctx *x, int *bad)
{
    const class_groups *g = &x->f->groups;
    const clasp_model_report *m = x->m;
    if (g->n == 0 || m->n_attacks == 0) return;
    size_t na = (size_t)m->n_attacks;
    json_object *y = clasp_json_obj(bad), *arr = clasp_json_arr(bad);
    /* Where the groups come from: "builtin" (source names the table) or
     * "file" (source is the mapping file as given). */
    clasp_json_set(y, "kind", clasp_json_str(g->file ? "file" : "builtin", bad), bad);
    clasp_json_set(y, "source", clasp_json_str(g->file ? g->file : "cifar100 superclasses", bad),
                   bad);
    if (g->file) clasp_json_set(y, "unlisted_classes", clasp_json_int(g->n_unlisted, bad), bad);
    for (int gi = 0; gi < g->n; gi++) {
        json_object *z = clasp_json_obj(bad), *cls = clasp_json_arr(bad);
        json_object *rc = clasp_json_arr(bad), *ra = clasp_json_arr(bad);
        clasp_json_set(z, "name", clasp_json_str(g->names[gi], bad), bad);
        for (int c = 0; c < x->r->num_classes; c++)
            if (g->group_of[c] == gi) clasp_json_push(cls, clasp_json_int(c, bad), bad);
        clasp_json_set(z, "classes", cls, bad);
        clasp_json_set(z, "count", clasp_json_int(g->count[gi], bad), bad);
        clasp_json_set(z, "clean_correct", clasp_json_int(g->clean[gi], bad), bad);
        clasp_json_set(z, "clean_acc", clasp_json_num(clasp_rate(g->clean[gi], g->count[gi]), bad),
                       bad);
        for (size_t j = 0; j < na; j++) {
            int64_t v = g->robust[(size_t)gi * na + j];
            clasp_json_push(rc, clasp_json_int(v, bad), bad);
            clasp_json_push(ra, clasp_json_num(clasp_rate(v, g->count[gi]), bad), bad);
        }
        clasp_json_set(z, "robust_correct", rc, bad);
        clasp_json_set(z, "robust_acc", ra, bad);
        clasp_json_push(arr, z, bad);
    }
    clasp_json_set(y, "groups", arr, bad);
    clasp_json_set(o, "class_groups", y, bad);
}
