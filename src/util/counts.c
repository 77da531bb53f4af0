/* Per-class counts: their sums, rates and copies, for every report, log
 * line and defense that needs them. */
#include <stdlib.h>
#include <string.h>

#include "clasp/counts.h"

int64_t clasp_class_sum(const int64_t *per_class, int num_classes)
{
    int64_t s = 0;
    for (int i = 0; per_class && i < num_classes; i++) s += per_class[i];
    return s;
}

double clasp_rate(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

int64_t clasp_counts_n(const clasp_class_counts *c)
{
    return clasp_class_sum(c->count, c->num_classes);
}

int64_t clasp_counts_clean(const clasp_class_counts *c)
{
    return clasp_class_sum(c->clean_correct, c->num_classes);
}

int64_t clasp_counts_robust(const clasp_class_counts *c)
{
    return clasp_class_sum(c->robust_correct, c->num_classes);
}

/* Class k's entry of v, or the sum over classes for k < 0. */
static int64_t at(const clasp_class_counts *c, const int64_t *v, int k)
{
    if (k < 0) return clasp_class_sum(v, c->num_classes);
    return v && k < c->num_classes ? v[k] : 0;
}

double clasp_counts_clean_acc(const clasp_class_counts *c, int k)
{
    return clasp_rate(at(c, c->clean_correct, k), at(c, c->count, k));
}

double clasp_counts_robust_acc(const clasp_class_counts *c, int k)
{
    return clasp_rate(at(c, c->robust_correct, k), at(c, c->count, k));
}

clasp_status clasp_counts_alloc(clasp_class_counts *c, int num_classes, int with_robust)
{
    size_t n = num_classes > 0 ? (size_t)num_classes : 1;
    memset(c, 0, sizeof *c);
    c->num_classes = num_classes;
    c->count = calloc(n, sizeof(int64_t));
    c->clean_correct = calloc(n, sizeof(int64_t));
    if (with_robust) c->robust_correct = calloc(n, sizeof(int64_t));
    if (!c->count || !c->clean_correct || (with_robust && !c->robust_correct)) {
        clasp_counts_free(c);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    return CLASP_OK;
}

static int64_t *dup64(const int64_t *v, int n)
{
    if (!v) return NULL;
    int64_t *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (d && n > 0) memcpy(d, v, (size_t)n * sizeof *d);
    return d;
}

clasp_status clasp_counts_copy(clasp_class_counts *dst, const clasp_class_counts *src,
                               int with_robust)
{
    clasp_class_counts c = {src->num_classes, NULL, NULL, NULL};
    int K = src->num_classes;
    c.count = dup64(src->count, K);
    c.clean_correct = dup64(src->clean_correct, K);
    if (with_robust && src->robust_correct) c.robust_correct = dup64(src->robust_correct, K);
    if ((src->count && !c.count) || (src->clean_correct && !c.clean_correct) ||
        (with_robust && src->robust_correct && !c.robust_correct)) {
        clasp_counts_free(&c);
        memset(dst, 0, sizeof *dst);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    *dst = c;
    return CLASP_OK;
}

void clasp_counts_free(clasp_class_counts *c)
{
    if (!c) return;
    free(c->count);
    free(c->clean_correct);
    free(c->robust_correct);
    memset(c, 0, sizeof *c);
}
