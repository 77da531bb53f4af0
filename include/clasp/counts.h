/* clasp — per-class counts of one evaluation, and their sums and rates.
 *
 * One struct for what every class-wise result holds: an evaluation
 * (clasp_eval_result), an attack in the report (clasp_attack_report), an
 * epoch's validation (clasp_epoch_report) and the metrics a defense sees at
 * an epoch end (clasp_class_metrics). */
#ifndef CLASP_COUNTS_H
#define CLASP_COUNTS_H

#include <stdint.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* Arrays of num_classes entries, indexed by true class. Where a struct
 * holding one owns it, the arrays are malloc'd (clasp_counts_free). */
typedef struct clasp_class_counts {
    int num_classes;
    int64_t *count;          /* examples per class */
    int64_t *clean_correct;  /* clean prediction == label */
    int64_t *robust_correct; /* prediction under the attack == label; NULL: not measured */
} clasp_class_counts;

/* The total of a per-class vector (count, clean_correct, ...); NULL gives 0. */
int64_t clasp_class_sum(const int64_t *per_class, int num_classes);

/* num / den; 0 when den is 0 (a class without examples). */
double clasp_rate(int64_t num, int64_t den);

/* Totals over the classes: examples, clean correct, robust correct (0
 * when not measured). */
int64_t clasp_counts_n(const clasp_class_counts *c);
int64_t clasp_counts_clean(const clasp_class_counts *c);
int64_t clasp_counts_robust(const clasp_class_counts *c);

/* Clean and robust accuracy of class k, or over all classes for k < 0
 * (clasp_rate of the counts: 0 without examples or measurement). */
double clasp_counts_clean_acc(const clasp_class_counts *c, int k);
double clasp_counts_robust_acc(const clasp_class_counts *c, int k);

/* Zeroed arrays for num_classes classes into c (robust_correct only with
 * with_robust). On failure c is zeroed and CLASP_ERR_NOMEM returned. */
clasp_status clasp_counts_alloc(clasp_class_counts *c, int num_classes, int with_robust);

/* dst = a malloc'd copy of src's arrays (robust_correct only when src has
 * it and with_robust is non-zero; NULL otherwise). On failure dst is
 * zeroed and CLASP_ERR_NOMEM returned. */
clasp_status clasp_counts_copy(clasp_class_counts *dst, const clasp_class_counts *src,
                               int with_robust);

/* Frees the arrays and zeroes the struct; safe on a zeroed one. */
void clasp_counts_free(clasp_class_counts *c);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
