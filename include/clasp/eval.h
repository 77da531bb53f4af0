/* clasp — class-wise evaluation of a model, clean and under an attack.
 *
 * One pass over a batcher (in order) counts, per true class: examples,
 * clean-correct, robust-correct (prediction on the attacked input equals
 * the label) and attack successes (clean-correct examples whose attacked
 * prediction differs), plus two K×K count matrices: the clean confusion
 * and the "flow" (true class × prediction under attack). Only each batch's
 * int32 predictions come back to the host; images stay on the device. */
#ifndef CLASP_EVAL_H
#define CLASP_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/batch.h"
#include "clasp/counts.h"
#include "clasp/model.h"
#include "clasp/plugin.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

typedef struct clasp_eval_result {
    /* K = per_class.num_classes; per_class.robust_correct is always set
     * (it equals clean_correct without an attack). */
    clasp_class_counts per_class;
    int64_t total;           /* examples seen */
    int64_t *attack_success; /* [K]; zeros without an attack */
    int64_t *confusion;      /* [K*K] clean: confusion[true*K + predicted] */
    int64_t *flow;           /* [K*K] under attack: flow[true*K + predicted] */
    double seconds;          /* wall time of the whole pass */
    double attack_seconds;   /* of which inside the attack */
    /* Per example, in pass order (total entries): label, clean prediction
     * and prediction under the attack (an ensemble's worst case). */
    int32_t *ex_label, *ex_clean, *ex_adv;
    size_t ex_cap; /* (allocated entries) */
    /* Ensembles (n_members > 0): first_flip[class * n_members + j] counts
     * the clean-correct examples member j flipped first (they sum, per
     * class, to clean_correct - robust_correct); member_seconds[j] is the
     * time inside member j. */
    int n_members;
    int64_t *first_flip;
    double *member_seconds;
    /* With opt->l2: the L2 distance ||x_adv - x||_2 of every attack
     * success, grouped by true class (attack_success[0] values for class 0,
     * then class 1's, ...), ascending within a class; NULL otherwise. */
    float *l2_success;
} clasp_eval_result;

/* Called after each batch with examples done so far and the total. */
typedef void (*clasp_eval_progress_fn)(void *user, size_t done, size_t total);

/* Called after each batch with its device tensors (valid during the call
 * only): the batch's position `first` in the pass, inputs, labels, the
 * attacked inputs (x itself without an attack) and both predictions. For
 * callers that keep adversarial examples; may read them back. A non-OK
 * return stops the evaluation with that status. */
typedef clasp_status (*clasp_eval_batch_fn)(void *user, size_t first, const clasp_tensor *x,
                                            const clasp_tensor *y, const clasp_tensor *x_adv,
                                            const clasp_tensor *clean_pred,
                                            const clasp_tensor *adv_pred);

typedef struct clasp_eval_options {
    clasp_attack_instance *attack; /* NULL: clean evaluation only */
    /* n_members > 0: a cascade of these attacks instead of `attack` (see
     * clasp/ensemble.h): member 0 on the clean-correct examples, each later
     * one on those no earlier one flipped. robust_correct then counts the
     * clean-correct examples no member flipped, and the flow holds the
     * worst-case prediction (the clean one for misclassified examples);
     * on_batch gets the worst-case images (x itself where none flipped). */
    clasp_attack_instance *const *members;
    int n_members;
    /* Random numbers of batch b come from stream (seed, b + 1), so a batch's
     * result does not depend on the batches before it (each member of a
     * cascade starts that stream afresh). */
    uint64_t seed;
    clasp_eval_progress_fn progress; /* may be NULL */
    size_t total;                    /* examples in the pass, for progress
                                        (0: estimated from the first batch) */
    clasp_eval_batch_fn on_batch;    /* may be NULL */
    void *user;                      /* passed to both callbacks */
    /* A shard of a larger in-order pass (several processes): the batcher
     * holds that pass's examples from shard_first on, which begin its batch
     * shard_batch (same batch size). Random streams and the positions given
     * to on_batch and in errors are the whole pass's, so the shards' counts
     * add up to exactly the whole pass's. Zero for a whole pass. */
    uint64_t shard_batch;
    size_t shard_first;
    /* Non-zero: measure the L2 distance of each attack success (for
     * unbounded attacks such as CW, whose successes are only meaningful
     * with their size); the batch's images are read back to the host. */
    int l2;
} clasp_eval_options;

/* Evaluates m on one in-order pass of b (labels must be < the model's
 * number of classes). opt may be NULL (clean, no callbacks). The model runs
 * in eval mode; its mode is restored afterwards. *out is allocated here:
 * free it with clasp_eval_result_free; on failure it is left zeroed. */
clasp_status clasp_eval_run(clasp_model *m, clasp_batcher *b, const clasp_eval_options *opt,
                            clasp_eval_result *out);

/* Frees the arrays; safe on a zeroed result. */
void clasp_eval_result_free(clasp_eval_result *r);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
