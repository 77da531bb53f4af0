/* A batch under a cascade of attacks (clasp/ensemble.h). The rows still to
 * attack are gathered on the host into a smaller batch for each member:
 * a batch of images is small next to an attack's hundreds of passes over
 * it, and the host copy also assembles the worst-case images. */
#include <stdlib.h>
#include <string.h>

#include "experiment/eval_internal.h"

void cascade_free(cascade_buffers *c)
{
    free(c->x), free(c->x_adv), free(c->sub_x);
    free(c->sub_y), free(c->sub_pred), free(c->idx);
    clasp_tensor_free(c->tx);
    clasp_tensor_free(c->ty);
    clasp_tensor_free(c->tx_adv);
    clasp_tensor_free(c->tpred);
    memset(c, 0, sizeof *c);
}

static clasp_status cascade_fit(cascade_buffers *c, size_t floats, int n)
{
    if (floats > c->cap_x) {
        free(c->x), free(c->x_adv), free(c->sub_x);
        c->x = malloc(floats * sizeof(float));
        c->x_adv = malloc(floats * sizeof(float));
        c->sub_x = malloc(floats * sizeof(float));
        c->cap_x = c->x && c->x_adv && c->sub_x ? floats : 0;
        if (!c->cap_x) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    if (n > c->cap_n) {
        free(c->sub_y), free(c->sub_pred), free(c->idx);
        c->sub_y = malloc((size_t)n * sizeof(int32_t));
        c->sub_pred = malloc((size_t)n * sizeof(int32_t));
        c->idx = malloc((size_t)n * sizeof(int));
        c->cap_n = c->sub_y && c->sub_pred && c->idx ? n : 0;
        if (!c->cap_n) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    return CLASP_OK;
}

clasp_status eval_cascade_batch(clasp_model *m, const clasp_eval_options *opt, eval_buffers *B,
                                const clasp_tensor *x, int n, uint64_t batch_index,
                                clasp_eval_result *r)
{
    clasp_ctx *ctx = x->ctx;
    cascade_buffers *C = &B->cascade;
    size_t per = x->numel / (size_t)n;
    CLASP_TRY(cascade_fit(C, per * (size_t)n, n));
    CLASP_TRY(clasp_tensor_read(x, C->x));
    memcpy(C->x_adv, C->x, per * (size_t)n * sizeof(float));
    /* Misclassified clean examples are not robust and not attacked: their
     * worst case is the clean prediction. (A prediction is a class index,
     * so the labels of the examples kept are valid ones.) */
    int left = 0;
    for (int i = 0; i < n; i++) {
        B->ap[i] = B->cp[i];
        if (B->cp[i] == B->y[i]) C->idx[left++] = i;
    }
    int shape[CLASP_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    for (int j = 0; j < opt->n_members && left > 0; j++) {
        for (int s = 0; s < left; s++) {
            memcpy(C->sub_x + (size_t)s * per, C->x + (size_t)C->idx[s] * per, per * sizeof(float));
            C->sub_y[s] = B->y[C->idx[s]];
        }
        shape[0] = left;
        CLASP_TRY(clasp_tensor_ensure(ctx, &C->tx, CLASP_F32, x->ndim, shape));
        CLASP_TRY(clasp_tensor_ensure(ctx, &C->tx_adv, CLASP_F32, x->ndim, shape));
        CLASP_TRY(clasp_tensor_ensure(ctx, &C->ty, CLASP_I32, 1, (int[]){left}));
        CLASP_TRY(clasp_tensor_ensure(ctx, &C->tpred, CLASP_I32, 1, (int[]){left}));
        CLASP_TRY(clasp_tensor_write(C->tx, C->sub_x));
        CLASP_TRY(clasp_tensor_write(C->ty, C->sub_y));
        /* Every member starts the batch's stream afresh: a member's numbers
         * do not depend on what the members before it drew. */
        clasp_rng rng = clasp_rng_make(opt->seed, batch_index + 1);
        double t0 = clasp_now();
        CLASP_TRY(clasp_attack_run(opt->members[j], m, C->tx, C->ty, &rng, C->tx_adv, C->tpred));
        CLASP_TRY(clasp_ctx_finish(ctx));
        double dt = clasp_now() - t0;
        r->member_seconds[j] += dt;
        r->attack_seconds += dt;
        CLASP_TRY(clasp_tensor_read(C->tpred, C->sub_pred));
        int flipped = 0;
        for (int s = 0; s < left; s++) flipped += C->sub_pred[s] != C->sub_y[s];
        if (flipped) CLASP_TRY(clasp_tensor_read(C->tx_adv, C->sub_x));
        int kept = 0;
        for (int s = 0; s < left; s++) {
            int i = C->idx[s];
            if (C->sub_pred[s] == C->sub_y[s]) {
                C->idx[kept++] = i;
                continue;
            }
            B->ap[i] = C->sub_pred[s];
            r->first_flip[(size_t)C->sub_y[s] * (size_t)opt->n_members + (size_t)j]++;
            memcpy(C->x_adv + (size_t)i * per, C->sub_x + (size_t)s * per, per * sizeof(float));
        }
        left = kept;
    }
    CLASP_TRY(clasp_tensor_ensure(ctx, &B->x_adv, CLASP_F32, x->ndim, x->shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &B->adv_pred, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_write(B->x_adv, C->x_adv));
    return clasp_tensor_write(B->adv_pred, B->ap);
}
