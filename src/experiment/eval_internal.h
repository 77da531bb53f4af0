/* Internals of the evaluation, shared by eval.c (the pass and the
 * counting) and eval_cascade.c (ensembles). */
#ifndef CLASP_EVAL_INTERNAL_H
#define CLASP_EVAL_INTERNAL_H

#include "clasp/eval.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* A cascade's scratch: the batch and its worst case on the host, the
 * gathered sub-batch on the device. */
typedef struct cascade_buffers {
    float *x, *x_adv, *sub_x;
    int32_t *sub_y, *sub_pred;
    int *idx;
    size_t cap_x; /* floats in x, x_adv, sub_x */
    int cap_n;    /* entries in sub_y, sub_pred, idx */
    clasp_tensor *tx, *ty, *tx_adv, *tpred;
} cascade_buffers;

/* One attack success's L2 distance, kept until the pass ends. */
typedef struct l2_item {
    int32_t cls;
    float dist;
} l2_item;

typedef struct eval_buffers {
    clasp_tensor *x_adv, *clean_pred, *adv_pred;
    int32_t *y, *cp, *ap; /* host copies of labels and predictions */
    int cap;
    cascade_buffers cascade;
    float *xh, *xah; /* host images (opt->l2 only) */
    size_t img_cap;
    l2_item *l2; /* successes so far (opt->l2 only) */
    size_t n_l2, l2_cap;
} eval_buffers;

/* One batch under opt's cascade: B->y and B->cp hold the labels and clean
 * predictions on entry; fills B->ap (worst-case predictions), B->x_adv and
 * B->adv_pred (the same on the device), and r's first_flip and
 * member_seconds. */
clasp_status eval_cascade_batch(clasp_model *m, const clasp_eval_options *opt, eval_buffers *B,
                                const clasp_tensor *x, int n, uint64_t batch_index,
                                clasp_eval_result *r);
void cascade_free(cascade_buffers *c);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
