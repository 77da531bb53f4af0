/* Class-wise evaluation: clean and attacked predictions per batch, counted
 * on the host from the small int32 prediction vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clasp/eval.h"
#include "experiment/eval_internal.h"
#include "util/util.h"

void clasp_eval_result_free(clasp_eval_result *r)
{
    if (!r) return;
    clasp_counts_free(&r->per_class);
    free(r->attack_success);
    free(r->confusion);
    free(r->flow);
    free(r->ex_label), free(r->ex_clean), free(r->ex_adv);
    free(r->first_flip);
    free(r->member_seconds);
    free(r->l2_success);
    memset(r, 0, sizeof *r);
}

static clasp_status result_alloc(clasp_eval_result *r, int k, int members)
{
    memset(r, 0, sizeof *r);
    size_t kk = (size_t)k * (size_t)k;
    if (clasp_counts_alloc(&r->per_class, k, 1) != CLASP_OK) return CLASP_ERR_NOMEM;
    r->attack_success = calloc((size_t)k, sizeof(int64_t));
    r->confusion = calloc(kk, sizeof(int64_t));
    r->flow = calloc(kk, sizeof(int64_t));
    if (members > 0) {
        r->n_members = members;
        r->first_flip = calloc((size_t)k * (size_t)members, sizeof(int64_t));
        r->member_seconds = calloc((size_t)members, sizeof(double));
    }
    if (!r->attack_success || !r->confusion || !r->flow ||
        (members > 0 && (!r->first_flip || !r->member_seconds))) {
        clasp_eval_result_free(r);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    return CLASP_OK;
}

static void buffers_free(eval_buffers *b)
{
    cascade_free(&b->cascade);
    clasp_tensor_free(b->x_adv);
    clasp_tensor_free(b->clean_pred);
    clasp_tensor_free(b->adv_pred);
    free(b->y), free(b->cp), free(b->ap);
    free(b->xh), free(b->xah), free(b->l2);
}

/* The L2 distances of the batch's attack successes, appended to B->l2. */
static clasp_status measure_l2(eval_buffers *B, const clasp_tensor *x, const clasp_tensor *x_adv,
                               int n, int k)
{
    size_t numel = x->numel, d = numel / (size_t)n;
    if (numel > B->img_cap) {
        free(B->xh), free(B->xah);
        B->xh = malloc(numel * sizeof(float));
        B->xah = malloc(numel * sizeof(float));
        B->img_cap = B->xh && B->xah ? numel : 0;
        if (!B->img_cap) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    CLASP_TRY(clasp_tensor_read(x, B->xh));
    CLASP_TRY(clasp_tensor_read(x_adv, B->xah));
    for (int i = 0; i < n; i++) {
        int t = B->y[i];
        if (B->cp[i] != t || B->ap[i] == t || t < 0 || t >= k) continue;
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            double e = (double)B->xah[(size_t)i * d + j] - (double)B->xh[(size_t)i * d + j];
            s += e * e;
        }
        if (B->n_l2 == B->l2_cap) {
            size_t cap = B->l2_cap ? 2 * B->l2_cap : 256;
            l2_item *p = realloc(B->l2, cap * sizeof *p);
            if (!p) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
            B->l2 = p, B->l2_cap = cap;
        }
        B->l2[B->n_l2++] = (l2_item){t, (float)sqrt(s)};
    }
    return CLASP_OK;
}

static int l2_item_cmp(const void *a, const void *b)
{
    const l2_item *x = a, *y = b;
    if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
    return (x->dist > y->dist) - (x->dist < y->dist);
}

/* The result's l2_success from the collected items. */
static clasp_status finish_l2(eval_buffers *B, clasp_eval_result *r)
{
    r->l2_success = malloc((B->n_l2 ? B->n_l2 : 1) * sizeof(float));
    if (!r->l2_success) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (B->n_l2) qsort(B->l2, B->n_l2, sizeof *B->l2, l2_item_cmp);
    for (size_t i = 0; i < B->n_l2; i++) r->l2_success[i] = B->l2[i].dist;
    return CLASP_OK;
}

static clasp_status buffers_fit(eval_buffers *b, int n)
{
    if (n <= b->cap) return CLASP_OK;
    free(b->y), free(b->cp), free(b->ap);
    b->y = malloc((size_t)n * sizeof(int32_t));
    b->cp = malloc((size_t)n * sizeof(int32_t));
    b->ap = malloc((size_t)n * sizeof(int32_t));
    b->cap = (b->y && b->cp && b->ap) ? n : 0;
    return b->cap ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
}

/* Appends the batch's labels and predictions to the per-example arrays. */
static clasp_status keep_examples(clasp_eval_result *r, const eval_buffers *B, int n)
{
    size_t need = (size_t)r->total + (size_t)n;
    if (need > r->ex_cap) {
        size_t cap = r->ex_cap ? r->ex_cap : 256;
        while (cap < need) cap *= 2;
        int32_t *a = realloc(r->ex_label, cap * sizeof *a);
        if (a) r->ex_label = a;
        int32_t *b = a ? realloc(r->ex_clean, cap * sizeof *b) : NULL;
        if (b) r->ex_clean = b;
        int32_t *c = b ? realloc(r->ex_adv, cap * sizeof *c) : NULL;
        if (!c) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        r->ex_adv = c;
        r->ex_cap = cap;
    }
    memcpy(r->ex_label + r->total, B->y, (size_t)n * sizeof(int32_t));
    memcpy(r->ex_clean + r->total, B->cp, (size_t)n * sizeof(int32_t));
    memcpy(r->ex_adv + r->total, B->ap, (size_t)n * sizeof(int32_t));
    return CLASP_OK;
}

/* One batch: predictions, attack, counting. */
static clasp_status eval_batch(clasp_model *m, const clasp_eval_options *opt, eval_buffers *B,
                               clasp_tensor *x, clasp_tensor *y, int n, size_t first,
                               uint64_t batch_index, clasp_eval_result *r)
{
    clasp_ctx *ctx = x->ctx;
    int k = r->per_class.num_classes;
    CLASP_TRY(buffers_fit(B, n));
    CLASP_TRY(clasp_tensor_ensure(ctx, &B->clean_pred, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_model_predict(m, x, B->clean_pred));
    const clasp_tensor *x_adv = x, *adv_pred = B->clean_pred;
    if (opt->n_members > 0) {
        CLASP_TRY(clasp_tensor_read(y, B->y));
        CLASP_TRY(clasp_tensor_read(B->clean_pred, B->cp));
        CLASP_TRY(eval_cascade_batch(m, opt, B, x, n, opt->shard_batch + batch_index, r));
        x_adv = B->x_adv, adv_pred = B->adv_pred;
    } else if (opt->attack) {
        CLASP_TRY(clasp_tensor_ensure(ctx, &B->x_adv, CLASP_F32, x->ndim, x->shape));
        CLASP_TRY(clasp_tensor_ensure(ctx, &B->adv_pred, CLASP_I32, 1, (int[]){n}));
        clasp_rng rng = clasp_rng_make(opt->seed, opt->shard_batch + batch_index + 1);
        double t0 = clasp_now();
        CLASP_TRY(clasp_attack_run(opt->attack, m, x, y, &rng, B->x_adv, B->adv_pred));
        CLASP_TRY(clasp_ctx_finish(ctx));
        r->attack_seconds += clasp_now() - t0;
        x_adv = B->x_adv, adv_pred = B->adv_pred;
    }
    if (opt->n_members <= 0) {
        CLASP_TRY(clasp_tensor_read(y, B->y));
        CLASP_TRY(clasp_tensor_read(B->clean_pred, B->cp));
        if (opt->attack) CLASP_TRY(clasp_tensor_read(B->adv_pred, B->ap));
        else memcpy(B->ap, B->cp, (size_t)n * sizeof(int32_t));
    }
    for (int i = 0; i < n; i++) {
        int t = B->y[i], c = B->cp[i], a = B->ap[i];
        if (t < 0 || t >= k || c < 0 || c >= k || a < 0 || a >= k)
            return clasp_error(CLASP_ERR_INVALID,
                               "evaluation: example %zu has label %d / predictions %d, %d outside "
                               "the model's %d classes",
                               first + (size_t)i, t, c, a, k);
        r->per_class.count[t]++;
        r->confusion[(size_t)t * (size_t)k + (size_t)c]++;
        r->flow[(size_t)t * (size_t)k + (size_t)a]++;
        if (c == t) r->per_class.clean_correct[t]++;
        if (a == t) r->per_class.robust_correct[t]++;
        if (c == t && a != t) r->attack_success[t]++;
    }
    CLASP_TRY(keep_examples(r, B, n));
    r->total += n;
    if (opt->l2 && opt->attack) CLASP_TRY(measure_l2(B, x, x_adv, n, k));
    if (opt->on_batch)
        CLASP_TRY(opt->on_batch(opt->user, first, x, y, x_adv, B->clean_pred, adv_pred));
    return CLASP_OK;
}

clasp_status clasp_eval_run(clasp_model *m, clasp_batcher *b, const clasp_eval_options *opt,
                            clasp_eval_result *out)
{
    static const clasp_eval_options none = {0};
    if (!opt) opt = &none;
    CLASP_TRY(result_alloc(out, clasp_model_num_classes(m), opt->n_members));
    double t0 = clasp_now();
    int train = clasp_model_is_train(m);
    clasp_model_set_train(m, 0);
    clasp_batcher_start(b, 0, 0, 0);
    size_t batches = clasp_batcher_count(b), total = opt->total, done = 0;
    eval_buffers B = {0};
    clasp_status st = CLASP_OK;
    for (uint64_t bi = 0; st == CLASP_OK; bi++) {
        clasp_tensor *x, *y;
        int n;
        size_t first;
        st = clasp_batcher_next(b, &x, &y, &n, &first);
        if (st != CLASP_OK || n == 0) break;
        first += opt->shard_first;
        if (!total) total = batches * (size_t)n; /* the last batch may be smaller */
        st = eval_batch(m, opt, &B, x, y, n, first, bi, out);
        done += (size_t)n;
        if (st == CLASP_OK && opt->progress)
            opt->progress(opt->user, done, total < done ? done : total);
    }
    if (st == CLASP_OK && opt->l2 && opt->attack) st = finish_l2(&B, out);
    buffers_free(&B);
    clasp_model_set_train(m, train);
    if (st != CLASP_OK) {
        clasp_eval_result_free(out);
        return st;
    }
    out->seconds = clasp_now() - t0;
    return CLASP_OK;
}
