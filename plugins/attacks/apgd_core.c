/* The L-infinity Auto-PGD loop of the apgd and apgd-t plugins
 * (apgd_core.h says what it computes and where it follows the paper). */
#include "apgd_core.h"
#include "apgd_schedule.h"

#include <stdlib.h>

struct apgd_core {
    const char *name; /* the plugin's name, for messages */
    float eps, rho, momentum;
    int steps, restarts, dlr, targeted, n_targets;
    int ck[APGD_MAX_CHECKPOINTS], n_ck;
    /* Device scratch, reused across runs and batches (clasp_tensor_ensure).
     * Rows are the examples of the current run still unflipped. */
    clasp_tensor *x0, *y, *tgt, *cur, *old, *grad, *xbest, *gbest, *eta, *loss, *pred, *mask, *dz,
        *idx, *tmp, *tmp_i, *full, *fidx, *fmask, *ytmp_full;
    /* Host scratch: per row (cap) and per example of the batch (cap_full). */
    float *loss_h, *prev_h, *best_h, *best_ck_h, *eta_h;
    int32_t *pred_h, *y_h, *tgt_h, *row_h, *inc_h, *red_h, *mask_h, *keep_h;
    float *kept_h; /* best loss over earlier runs, per example */
    int32_t *done_h, *fidx_h, *fmask_h, *yfull_h, *rank_h, *has_kept_h;
    float *logits_h;
    int cap, cap_full, cap_rank;
};

static void apgd_host_free(apgd_core *s)
{
    free(s->loss_h), free(s->prev_h), free(s->best_h), free(s->best_ck_h), free(s->eta_h);
    free(s->pred_h), free(s->y_h), free(s->tgt_h), free(s->row_h), free(s->inc_h);
    free(s->red_h), free(s->mask_h), free(s->keep_h);
    free(s->kept_h), free(s->done_h), free(s->fidx_h), free(s->fmask_h), free(s->yfull_h);
    free(s->has_kept_h);
    s->cap = 0;
}

static void apgd_core_free(apgd_core *s)
{
    if (!s) return;
    clasp_tensor *t[] = {s->x0,    s->y,     s->tgt,  s->cur,  s->old,   s->grad,     s->xbest,
                         s->gbest, s->eta,   s->loss, s->pred, s->mask,  s->dz,       s->idx,
                         s->tmp,   s->tmp_i, s->full, s->fidx, s->fmask, s->ytmp_full};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) clasp_tensor_free(t[i]);
    apgd_host_free(s);
    free(s->rank_h), free(s->logits_h);
    free(s);
}

clasp_status apgd_core_create(const char *name, const clasp_params *p, int dlr, int targeted,
                              int n_targets, void **state)
{
    apgd_core *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    s->name = name;
    s->eps = (float)clasp_params_num(p, "eps");
    s->steps = (int)clasp_params_num(p, "steps");
    s->restarts = (int)clasp_params_num(p, "restarts");
    s->rho = (float)clasp_params_num(p, "rho");
    s->momentum = (float)clasp_params_num(p, "momentum");
    s->dlr = dlr;
    s->targeted = targeted;
    s->n_targets = n_targets;
    s->n_ck = apgd_core_checkpoints(s->steps, s->ck);
    *state = s;
    return CLASP_OK;
}

static clasp_status apgd_host_fit(apgd_core *s, int n)
{
    if (n <= s->cap) return CLASP_OK;
    apgd_host_free(s);
    size_t f = (size_t)n * sizeof(float), i = (size_t)n * sizeof(int32_t);
    s->loss_h = malloc(f), s->prev_h = malloc(f), s->best_h = malloc(f);
    s->best_ck_h = malloc(f), s->eta_h = malloc(f), s->kept_h = malloc(f);
    s->pred_h = malloc(i), s->y_h = malloc(i), s->tgt_h = malloc(i), s->row_h = malloc(i);
    s->inc_h = malloc(i), s->red_h = malloc(i), s->mask_h = malloc(i), s->keep_h = malloc(i);
    s->done_h = malloc(i), s->fidx_h = malloc(i), s->fmask_h = malloc(i);
    s->yfull_h = malloc(i), s->has_kept_h = malloc(i);
    if (!s->loss_h || !s->prev_h || !s->best_h || !s->best_ck_h || !s->eta_h || !s->kept_h ||
        !s->pred_h || !s->y_h || !s->tgt_h || !s->row_h || !s->inc_h || !s->red_h || !s->mask_h ||
        !s->keep_h || !s->done_h || !s->fidx_h || !s->fmask_h || !s->yfull_h || !s->has_kept_h) {
        apgd_host_free(s);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    s->cap = n;
    return CLASP_OK;
}

/* [rows, per-example shape of x] */
static void apgd_shape(const clasp_tensor *x, int rows, int *shape)
{
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = rows;
}

/* Loss, prediction and input gradient at s->cur for the current rows. */
static clasp_status apgd_eval(apgd_core *s, clasp_model *m, int rows)
{
    if (!s->dlr) return clasp_model_input_grad(m, s->cur, s->y, 1.0f, s->grad, s->pred, s->loss);
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, s->cur, &z));
    CLASP_TRY(clasp_tensor_ensure(z->ctx, &s->dz, CLASP_F32, 2,
                                  (int[]){rows, (int)(z->numel / (size_t)rows)}));
    CLASP_TRY(clasp_dlr_loss(z, s->y, s->targeted ? s->tgt : NULL, s->loss, s->dz));
    CLASP_TRY(clasp_argmax_rows(z, s->pred));
    return clasp_model_backward(m, s->dz, 0, s->grad);
}

/* Writes the rows with mask_h set (local row r, example row_h[r]) of src
 * into x_adv: a gather to the batch's layout, then a masked copy. */
static clasp_status apgd_write_out(apgd_core *s, const clasp_tensor *src, int rows,
                                   clasp_tensor *x_adv)
{
    int n = x_adv->shape[0];
    for (int o = 0; o < n; o++) s->fidx_h[o] = 0, s->fmask_h[o] = 0;
    for (int r = 0; r < rows; r++)
        if (s->mask_h[r]) s->fidx_h[s->row_h[r]] = r, s->fmask_h[s->row_h[r]] = 1;
    clasp_ctx *ctx = x_adv->ctx;
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->full, CLASP_F32, x_adv->ndim, x_adv->shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->fidx, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->fmask, CLASP_I32, 1, (int[]){n}));
    CLASP_TRY(clasp_tensor_write(s->fidx, s->fidx_h));
    CLASP_TRY(clasp_tensor_write(s->fmask, s->fmask_h));
    CLASP_TRY(clasp_gather_rows(src, s->fidx, s->full));
    return clasp_select_rows(x_adv, s->full, s->fmask);
}

/* Gathers rows idx of *t into scratch *spare and swaps the two. */
static clasp_status apgd_compact_one(clasp_tensor **t, clasp_tensor **spare,
                                     const clasp_tensor *idx, int rows)
{
    int shape[CLASP_MAX_DIMS];
    apgd_shape(*t, rows, shape);
    CLASP_TRY(clasp_tensor_ensure((*t)->ctx, spare, (*t)->dtype, (*t)->ndim, shape));
    CLASP_TRY(clasp_gather_rows(*t, idx, *spare));
    clasp_tensor *swap = *t;
    *t = *spare;
    *spare = swap;
    return CLASP_OK;
}

/* Keeps the rows with keep_h set, in order; returns the new row count. */
static clasp_status apgd_compact(apgd_core *s, int rows, int *out_rows)
{
    int k = 0;
    for (int r = 0; r < rows; r++) {
        if (!s->keep_h[r]) continue;
        s->fidx_h[k] = r;
        s->row_h[k] = s->row_h[r], s->y_h[k] = s->y_h[r], s->tgt_h[k] = s->tgt_h[r];
        s->prev_h[k] = s->prev_h[r], s->best_h[k] = s->best_h[r];
        s->best_ck_h[k] = s->best_ck_h[r], s->eta_h[k] = s->eta_h[r];
        s->inc_h[k] = s->inc_h[r], s->red_h[k] = s->red_h[r];
        k++;
    }
    *out_rows = k;
    if (k == rows || k == 0) return CLASP_OK;
    clasp_ctx *ctx = s->cur->ctx;
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->idx, CLASP_I32, 1, (int[]){k}));
    CLASP_TRY(clasp_tensor_write(s->idx, s->fidx_h));
    clasp_tensor **f[] = {&s->x0, &s->cur, &s->old, &s->grad, &s->xbest, &s->gbest};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        CLASP_TRY(apgd_compact_one(f[i], &s->tmp, s->idx, k));
    CLASP_TRY(apgd_compact_one(&s->y, &s->tmp_i, s->idx, k));
    if (s->targeted) CLASP_TRY(apgd_compact_one(&s->tgt, &s->tmp_i, s->idx, k));
    int one[1] = {k};
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->eta, CLASP_F32, 1, one));
    CLASP_TRY(clasp_tensor_write(s->eta, s->eta_h));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->loss, CLASP_F32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->pred, CLASP_I32, 1, one));
    return clasp_tensor_ensure(ctx, &s->mask, CLASP_I32, 1, one);
}

/* After an evaluation at s->cur: flags the rows the model now
 * misclassifies, writes their points out, and drops them. */
static clasp_status apgd_take_flips(apgd_core *s, int *rows, clasp_tensor *x_adv)
{
    int any = 0;
    for (int r = 0; r < *rows; r++) {
        int flip = s->pred_h[r] != s->y_h[r];
        s->mask_h[r] = flip;
        s->keep_h[r] = !flip;
        if (flip) s->done_h[s->row_h[r]] = 1, any = 1;
    }
    if (!any) return CLASP_OK;
    CLASP_TRY(apgd_write_out(s, s->cur, *rows, x_adv));
    return apgd_compact(s, *rows, rows);
}

/* Reads the current rows' losses and predictions. */
static clasp_status apgd_read(apgd_core *s)
{
    CLASP_TRY(clasp_tensor_read(s->loss, s->loss_h));
    return clasp_tensor_read(s->pred, s->pred_h);
}

/* One run on the examples not done; with targets, example o is attacked
 * towards rank_h[o * n_targets + t]. */
static clasp_status apgd_run(apgd_core *s, clasp_model *m, const clasp_tensor *x, clasp_rng *rng,
                             clasp_tensor *x_adv, int t)
{
    clasp_ctx *ctx = x->ctx;
    int n = x->shape[0], rows = 0;
    for (int o = 0; o < n; o++) {
        if (s->done_h[o]) continue;
        s->row_h[rows] = o;
        s->y_h[rows] = s->yfull_h[o];
        s->tgt_h[rows] = s->targeted ? s->rank_h[(size_t)o * (size_t)s->n_targets + (size_t)t] : 0;
        rows++;
    }
    if (!rows) return CLASP_OK;
    int shape[CLASP_MAX_DIMS], one[1] = {rows};
    apgd_shape(x, rows, shape);
    clasp_tensor **f[] = {&s->x0, &s->cur, &s->old, &s->grad, &s->xbest, &s->gbest};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        CLASP_TRY(clasp_tensor_ensure(ctx, f[i], CLASP_F32, x->ndim, shape));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->eta, CLASP_F32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->loss, CLASP_F32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->pred, CLASP_I32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->mask, CLASP_I32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->idx, CLASP_I32, 1, one));
    CLASP_TRY(clasp_tensor_ensure(ctx, &s->y, CLASP_I32, 1, one));
    CLASP_TRY(clasp_tensor_write(s->idx, s->row_h));
    CLASP_TRY(clasp_tensor_write(s->y, s->y_h));
    if (s->targeted) {
        CLASP_TRY(clasp_tensor_ensure(ctx, &s->tgt, CLASP_I32, 1, one));
        CLASP_TRY(clasp_tensor_write(s->tgt, s->tgt_h));
    }
    CLASP_TRY(clasp_gather_rows(x, s->idx, s->x0));

    /* Start: uniform in the eps-ball, clipped to the box. */
    if (s->eps > 0) {
        CLASP_TRY(clasp_rng_uniform(rng, s->cur, -s->eps, s->eps));
        CLASP_TRY(clasp_add_scaled(s->x0, 1.0f, s->cur, s->cur));
        CLASP_TRY(clasp_clamp(s->cur, 0.0f, 1.0f));
    } else {
        CLASP_TRY(clasp_tensor_copy(s->cur, s->x0));
    }
    CLASP_TRY(apgd_eval(s, m, rows));
    CLASP_TRY(apgd_read(s));
    for (int r = 0; r < rows; r++) {
        s->prev_h[r] = s->best_h[r] = s->best_ck_h[r] = s->loss_h[r];
        s->eta_h[r] = 2.0f * s->eps;
        s->inc_h[r] = 0, s->red_h[r] = 0;
    }
    CLASP_TRY(clasp_tensor_write(s->eta, s->eta_h));
    CLASP_TRY(clasp_tensor_copy(s->xbest, s->cur));
    CLASP_TRY(clasp_tensor_copy(s->gbest, s->grad));
    CLASP_TRY(clasp_tensor_copy(s->old, s->cur));
    CLASP_TRY(apgd_take_flips(s, &rows, x_adv));

    int j = 0, last_ck = 0;
    for (int k = 1; k <= s->steps && rows > 0; k++) {
        if (clasp_stop_requested()) return clasp_error(CLASP_ERR_INTERRUPTED, "stopped");
        float a = k == 1 ? 1.0f : s->momentum;
        CLASP_TRY(clasp_apgd_step(s->cur, s->old, s->grad, s->x0, s->eta, a, s->eps, 0.0f, 1.0f));
        CLASP_TRY(apgd_eval(s, m, rows));
        CLASP_TRY(apgd_read(s));
        int better = 0;
        for (int r = 0; r < rows; r++) {
            float l = s->loss_h[r];
            s->inc_h[r] += l > s->prev_h[r];
            s->prev_h[r] = l;
            s->mask_h[r] = l > s->best_h[r];
            if (s->mask_h[r]) s->best_h[r] = l, better = 1;
        }
        if (better) {
            CLASP_TRY(clasp_tensor_write(s->mask, s->mask_h));
            CLASP_TRY(clasp_select_rows(s->xbest, s->cur, s->mask));
            CLASP_TRY(clasp_select_rows(s->gbest, s->grad, s->mask));
        }
        /* Flips first: their point is this iterate, before any reset. */
        CLASP_TRY(apgd_take_flips(s, &rows, x_adv));
        if (j < s->n_ck && k == s->ck[j]) {
            float need = s->rho * (float)(k - last_ck);
            int any = 0;
            for (int r = 0; r < rows; r++) {
                int c1 = (float)s->inc_h[r] < need;
                int c2 = !s->red_h[r] && s->best_h[r] <= s->best_ck_h[r];
                int halve = c1 || c2;
                s->mask_h[r] = halve;
                s->red_h[r] = halve;
                if (halve) s->eta_h[r] *= 0.5f, any = 1;
                s->inc_h[r] = 0;
                s->best_ck_h[r] = s->best_h[r];
            }
            if (any && rows > 0) {
                CLASP_TRY(clasp_tensor_write(s->eta, s->eta_h));
                CLASP_TRY(clasp_tensor_write(s->mask, s->mask_h));
                CLASP_TRY(clasp_select_rows(s->cur, s->xbest, s->mask));
                CLASP_TRY(clasp_select_rows(s->grad, s->gbest, s->mask));
            }
            last_ck = k;
            j++;
        }
    }
    /* Not flipped: keep the highest-loss point over this and earlier runs. */
    int any = 0;
    for (int r = 0; r < rows; r++) {
        int o = s->row_h[r];
        s->mask_h[r] = !s->has_kept_h[o] || s->best_h[r] > s->kept_h[o];
        if (s->mask_h[r]) s->kept_h[o] = s->best_h[r], s->has_kept_h[o] = 1, any = 1;
    }
    if (any) CLASP_TRY(apgd_write_out(s, s->xbest, rows, x_adv));
    return CLASP_OK;
}

/* apgd-t: per example, the classes other than its label in decreasing
 * order of its clean logits (first index first on ties), the first
 * n_targets of them into rank_h. */
static clasp_status apgd_rank_targets(apgd_core *s, const clasp_tensor *z, int n, int k)
{
    size_t need = (size_t)n * (size_t)k;
    if (need > (size_t)s->cap_rank) {
        free(s->rank_h), free(s->logits_h);
        s->rank_h = malloc(need * sizeof *s->rank_h);
        s->logits_h = malloc(need * sizeof *s->logits_h);
        s->cap_rank = (int)need;
        if (!s->rank_h || !s->logits_h) {
            s->cap_rank = 0;
            return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        }
    }
    CLASP_TRY(clasp_tensor_read(z, s->logits_h));
    for (int o = 0; o < n; o++) {
        const float *zr = s->logits_h + (size_t)o * (size_t)k;
        int32_t *rk = s->rank_h + (size_t)o * (size_t)s->n_targets;
        int y = s->yfull_h[o];
        for (int t = 0; t < s->n_targets; t++) {
            int best = -1;
            for (int c = 0; c < k; c++) {
                if (c == y) continue;
                int used = 0;
                for (int u = 0; u < t; u++) used |= rk[u] == c;
                if (used) continue;
                if (best < 0 || zr[c] > zr[best]) best = c;
            }
            rk[t] = best;
        }
    }
    return CLASP_OK;
}

clasp_status apgd_core_perturb(void *state, clasp_model *m, const clasp_tensor *x,
                               const clasp_tensor *y, clasp_rng *rng, clasp_tensor *x_adv,
                               clasp_tensor *pred)
{
    apgd_core *s = state;
    clasp_ctx *ctx = x->ctx;
    int n = x->shape[0], k = clasp_model_num_classes(m);
    if (s->dlr && k < 3)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: the DLR loss needs at least 3 classes, the model has %d%s", s->name,
                           k, s->targeted ? "" : " (use loss=ce)");
    if (n == 0) return CLASP_OK;
    int n_targets = s->n_targets;
    if (s->targeted && n_targets > k - 1) s->n_targets = k - 1;
    clasp_status st = apgd_host_fit(s, n);
    if (st != CLASP_OK) goto out;
    /* The clean pass: examples already misclassified are returned as they
     * are (and apgd-t ranks its targets on these logits). */
    st = clasp_tensor_copy(x_adv, x);
    if (st == CLASP_OK) st = clasp_tensor_read(y, s->yfull_h);
    if (st == CLASP_OK) st = clasp_tensor_ensure(ctx, &s->ytmp_full, CLASP_I32, 1, (int[]){n});
    const clasp_tensor *z = NULL;
    if (st == CLASP_OK) st = clasp_model_forward(m, x, &z);
    if (st == CLASP_OK) st = clasp_argmax_rows(z, s->ytmp_full);
    if (st == CLASP_OK && s->targeted) st = apgd_rank_targets(s, z, n, k);
    if (st == CLASP_OK) st = clasp_tensor_read(s->ytmp_full, s->pred_h);
    if (st != CLASP_OK) goto out;
    for (int o = 0; o < n; o++) s->done_h[o] = s->pred_h[o] != s->yfull_h[o], s->has_kept_h[o] = 0;
    int rounds = s->targeted ? s->n_targets : 1;
    for (int t = 0; t < rounds && st == CLASP_OK; t++)
        for (int r = 0; r < s->restarts && st == CLASP_OK; r++)
            st = apgd_run(s, m, x, rng, x_adv, t);
    if (st == CLASP_OK) st = clasp_model_predict(m, x_adv, pred);
out:
    s->n_targets = n_targets;
    return st;
}

void apgd_core_destroy(void *state)
{
    apgd_core_free(state);
}
