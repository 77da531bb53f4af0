/* Class-wise evaluation: clean and attacked predictions per batch, counted
 * on the host from the small int32 prediction vectors. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clasp/eval.h"
#include "util/util.h"

void clasp_eval_result_free(clasp_eval_result *r)
{
    if (!r) return;
    free(r->count);
    free(r->clean_correct);
    free(r->robust_correct);
    free(r->attack_success);
    free(r->confusion);
    free(r->flow);
    memset(r, 0, sizeof *r);
}

int64_t clasp_eval_sum(const clasp_eval_result *r, const int64_t *per_class)
{
    int64_t s = 0;
    for (int k = 0; per_class && k < r->num_classes; k++) s += per_class[k];
    return s;
}

static clasp_status result_alloc(clasp_eval_result *r, int k)
{
    memset(r, 0, sizeof *r);
    r->num_classes = k;
    size_t kk = (size_t)k * (size_t)k;
    r->count = calloc((size_t)k, sizeof(int64_t));
    r->clean_correct = calloc((size_t)k, sizeof(int64_t));
    r->robust_correct = calloc((size_t)k, sizeof(int64_t));
    r->attack_success = calloc((size_t)k, sizeof(int64_t));
    r->confusion = calloc(kk, sizeof(int64_t));
    r->flow = calloc(kk, sizeof(int64_t));
    if (!r->count || !r->clean_correct || !r->robust_correct || !r->attack_success ||
        !r->confusion || !r->flow) {
        clasp_eval_result_free(r);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    return CLASP_OK;
}

typedef struct eval_buffers {
    clasp_tensor *x_adv, *clean_pred, *adv_pred;
    int32_t *y, *cp, *ap;       /* host copies of labels and predictions */
    int cap;
} eval_buffers;

static void buffers_free(eval_buffers *b)
{
    clasp_tensor_free(b->x_adv);
    clasp_tensor_free(b->clean_pred);
    clasp_tensor_free(b->adv_pred);
    free(b->y), free(b->cp), free(b->ap);
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

/* One batch: predictions, attack, counting. */
static clasp_status eval_batch(clasp_model *m, const clasp_eval_options *opt, eval_buffers *B,
                               clasp_tensor *x, clasp_tensor *y, int n, size_t first,
                               uint64_t batch_index, clasp_eval_result *r)
{
    clasp_ctx *ctx = x->ctx;
    int k = r->num_classes;
    CLASP_TRY(buffers_fit(B, n));
    CLASP_TRY(clasp_tensor_ensure(ctx, &B->clean_pred, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_model_predict(m, x, B->clean_pred));
    const clasp_tensor *x_adv = x, *adv_pred = B->clean_pred;
    if (opt->attack) {
        CLASP_TRY(clasp_tensor_ensure(ctx, &B->x_adv, CLASP_F32, x->ndim, x->shape));
        CLASP_TRY(clasp_tensor_ensure(ctx, &B->adv_pred, CLASP_I32, 1, (int[]){n}));
        clasp_rng rng = clasp_rng_make(opt->seed, batch_index + 1);
        double t0 = clasp_now();
        CLASP_TRY(clasp_attack_run(opt->attack, m, x, y, &rng, B->x_adv, B->adv_pred));
        CLASP_TRY(clasp_ctx_finish(ctx));
        r->attack_seconds += clasp_now() - t0;
        x_adv = B->x_adv, adv_pred = B->adv_pred;
    }
    CLASP_TRY(clasp_tensor_read(y, B->y));
    CLASP_TRY(clasp_tensor_read(B->clean_pred, B->cp));
    if (opt->attack) CLASP_TRY(clasp_tensor_read(B->adv_pred, B->ap));
    else memcpy(B->ap, B->cp, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        int t = B->y[i], c = B->cp[i], a = B->ap[i];
        if (t < 0 || t >= k || c < 0 || c >= k || a < 0 || a >= k)
            return clasp_error(CLASP_ERR_INVALID,
                               "evaluation: example %zu has label %d / predictions %d, %d outside "
                               "the model's %d classes",
                               first + (size_t)i, t, c, a, k);
        r->count[t]++;
        r->confusion[(size_t)t * (size_t)k + (size_t)c]++;
        r->flow[(size_t)t * (size_t)k + (size_t)a]++;
        if (c == t) r->clean_correct[t]++;
        if (a == t) r->robust_correct[t]++;
        if (c == t && a != t) r->attack_success[t]++;
    }
    r->total += n;
    if (opt->on_batch)
        CLASP_TRY(opt->on_batch(opt->user, first, x, y, x_adv, B->clean_pred, adv_pred));
    return CLASP_OK;
}

clasp_status clasp_eval_run(clasp_model *m, clasp_batcher *b, const clasp_eval_options *opt,
                            clasp_eval_result *out)
{
    static const clasp_eval_options none = {0};
    if (!opt) opt = &none;
    CLASP_TRY(result_alloc(out, clasp_model_num_classes(m)));
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
        if (!total) total = batches * (size_t)n; /* the last batch may be smaller */
        st = eval_batch(m, opt, &B, x, y, n, first, bi, out);
        done += (size_t)n;
        if (st == CLASP_OK && opt->progress) opt->progress(opt->user, done, total < done ? done : total);
    }
    buffers_free(&B);
    clasp_model_set_train(m, train);
    if (st != CLASP_OK) {
        clasp_eval_result_free(out);
        return st;
    }
    out->seconds = clasp_now() - t0;
    return CLASP_OK;
}
