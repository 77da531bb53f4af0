/* BatchNorm (train and eval), average pooling and the per-channel affine
 * map against plain C references computed in double precision.
 *
 * Forward passes are compared with the reference on odd shapes and on
 * ResNet's first-block shape, with outputs pre-filled with NaN and followed
 * by sentinels (the op must write every element and nothing past the end).
 * Backward passes are compared with central finite differences of the
 * double reference for the scalar loss L = sum(w * y) (the device backward
 * gets dy = w). Each check prints its measured error. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"

#define g_ctx tu_shared_ctx

/* Follows every output in its buffer; no op result can produce it. */
#define SENTINEL 12345.5f
#define GUARD 17

static float *rnd(size_t n, uint32_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    tu_fill_random(x, n, seed, lo, hi);
    return x;
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double *dalloc(size_t n)
{
    double *d = calloc(n ? n : 1, sizeof *d);
    assert_non_null(d);
    return d;
}

/* Max |got - want| / max(1, |want|); fails above tol, prints it always. */
static void check_close(const char *what, const float *got, const double *want, size_t n,
                        double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double s = fabs(want[i]);
        double e = d / (s > 1 ? s : 1);
        if (isnan(got[i])) e = INFINITY;
        if (e > worst) worst = e, at = i;
    }
    printf("    %-52s max rel err %.3g\n", what, worst);
    if (worst > tol)
        fail_msg("%s: max rel err %.3g > %.3g at %zu (got %.7g, want %.7g)", what, worst, tol, at,
                 (double)got[at], n ? want[at] : 0.0);
}

static clasp_tensor *t4(int a, int b, int c, int d, const float *host)
{
    return tu_tensor(g_ctx, 4, (int[]){a, b, c, d}, host);
}

static clasp_tensor *t1(int a, const float *host)
{
    return tu_tensor(g_ctx, 1, (int[]){a}, host);
}

/* ---- guarded outputs ------------------------------------------------------ */

/* An output tensor that is a view of the start of a larger buffer: NaN where
 * the op must write, SENTINEL after it. */
typedef struct guarded {
    clasp_tensor *whole;
    clasp_tensor view;
    size_t n;
} guarded;

static void guarded_new(guarded *g, int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *h = malloc((n + GUARD) * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n + GUARD; i++) h[i] = i < n ? NAN : SENTINEL;
    g->whole = t1((int)(n + GUARD), h);
    free(h);
    g->view = *g->whole;
    g->view.ndim = ndim;
    for (int i = 0; i < ndim; i++) g->view.shape[i] = shape[i];
    g->view.numel = n;
    g->n = n;
}

static void guarded4(guarded *g, int a, int b, int c, int d)
{
    guarded_new(g, 4, (int[]){a, b, c, d});
}

static void guarded1(guarded *g, int a)
{
    guarded_new(g, 1, (int[]){a});
}

/* The written part (malloc'd); fails when a sentinel was overwritten. */
static float *guarded_read(const char *what, guarded *g)
{
    float *h = tu_read(g->whole);
    for (size_t i = g->n; i < g->n + GUARD; i++)
        if (h[i] != SENTINEL)
            fail_msg("%s: wrote past the end (element %zu = %g)", what, i, (double)h[i]);
    return h;
}

static void guarded_free(guarded *g)
{
    clasp_tensor_free(g->whole);
    g->whole = NULL;
}

/* ---- references ----------------------------------------------------------- */

typedef struct shape4 {
    int n, c, h, w;
} shape4;

static size_t numel4(const shape4 *s)
{
    return (size_t)s->n * s->c * s->h * s->w;
}

/* Batch mean and biased variance per channel (two passes). */
static void bn_stats_ref(const shape4 *s, const double *x, double *mean, double *var)
{
    size_t p = (size_t)s->h * s->w, m = (size_t)s->n * p;
    for (int c = 0; c < s->c; c++) {
        double acc = 0;
        for (int n = 0; n < s->n; n++)
            for (size_t i = 0; i < p; i++) acc += x[((size_t)n * s->c + c) * p + i];
        mean[c] = acc / (double)m;
        double v = 0;
        for (int n = 0; n < s->n; n++)
            for (size_t i = 0; i < p; i++) {
                double d = x[((size_t)n * s->c + c) * p + i] - mean[c];
                v += d * d;
            }
        var[c] = v / (double)m;
    }
}

/* y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]. */
static void bn_apply_ref(const shape4 *s, const double *x, const double *mean, const double *var,
                         const double *gamma, const double *beta, double eps, double *y)
{
    size_t p = (size_t)s->h * s->w;
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++) {
            double inv = 1.0 / sqrt(var[c] + eps);
            for (size_t i = 0; i < p; i++) {
                size_t j = ((size_t)n * s->c + c) * p + i;
                y[j] = (x[j] - mean[c]) * inv * gamma[c] + beta[c];
            }
        }
}

/* Train-mode forward: batch statistics. */
static void bn_train_ref(const shape4 *s, const double *x, const double *gamma, const double *beta,
                         double eps, double *y)
{
    double *mean = dalloc((size_t)s->c), *var = dalloc((size_t)s->c);
    bn_stats_ref(s, x, mean, var);
    bn_apply_ref(s, x, mean, var, gamma, beta, eps, y);
    free(mean), free(var);
}

static void avgpool_ref(const shape4 *s, int k, int st, const double *x, double *y)
{
    int oh = (s->h - k) / st + 1, ow = (s->w - k) / st + 1;
    for (int pl = 0; pl < s->n * s->c; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double acc = 0;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++)
                        acc += x[((size_t)pl * s->h + i * st + a) * s->w + j * st + b];
                y[((size_t)pl * oh + i) * ow + j] = acc / (k * k);
            }
}

static void affine_ref(const shape4 *s, const double *x, const double *scale, const double *shift,
                       double *y)
{
    size_t p = (size_t)s->h * s->w;
    for (size_t j = 0; j < numel4(s); j++) {
        int c = (int)(j / p % (size_t)s->c);
        y[j] = x[j] * scale[c] + (shift ? shift[c] : 0.0);
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- BatchNorm train forward ---------------------------------------------- */

static const float EPS = 1e-5f;

/* One train step on the device against the reference: y, save_mean,
 * save_invstd and the running statistics (from rm0, rv0). x is offset by
 * `offset` so the mean is not near zero. */
static void bn_train_case(const shape4 *s, uint32_t seed, float offset, double tol)
{
    size_t nx = numel4(s), c = (size_t)s->c, p = (size_t)s->h * s->w;
    float *x = rnd(nx, seed, -1, 1), *gamma = rnd(c, seed + 1, 0.5f, 1.5f);
    float *beta = rnd(c, seed + 2, -0.5f, 0.5f), *rm0 = rnd(c, seed + 3, -1, 1);
    float *rv0 = rnd(c, seed + 4, 0.5f, 2);
    for (size_t j = 0; j < nx; j++) x[j] = x[j] * (float)(1 + j / p % c) + offset;
    double *xd = to_double(x, nx), *gd = to_double(gamma, c), *bd = to_double(beta, c);
    double *mean = dalloc(c), *var = dalloc(c), *yd = dalloc(nx), *inv = dalloc(c);
    double *rm = dalloc(c), *rv = dalloc(c);
    bn_stats_ref(s, xd, mean, var);
    bn_apply_ref(s, xd, mean, var, gd, bd, EPS, yd);
    double m = (double)s->n * (double)p;
    for (size_t i = 0; i < c; i++) {
        inv[i] = 1.0 / sqrt(var[i] + EPS);
        rm[i] = 0.9 * rm0[i] + 0.1 * mean[i];
        rv[i] = 0.9 * rv0[i] + 0.1 * var[i] * m / (m - 1);
    }

    clasp_tensor *tx = t4(s->n, s->c, s->h, s->w, x), *tg = t1(s->c, gamma), *tb = t1(s->c, beta);
    clasp_tensor *trm = t1(s->c, rm0), *trv = t1(s->c, rv0);
    guarded gy, gm, gi;
    guarded4(&gy, s->n, s->c, s->h, s->w);
    guarded1(&gm, s->c);
    guarded1(&gi, s->c);
    assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, &gm.view, &gi.view,
                                            &gy.view));
    char what[128];
    snprintf(what, sizeof what, "bn train y n%d c%d %dx%d off%g", s->n, s->c, s->h, s->w,
             (double)offset);
    float *y = guarded_read(what, &gy), *sm = guarded_read(what, &gm);
    float *si = guarded_read(what, &gi), *grm = tu_read(trm), *grv = tu_read(trv);
    check_close(what, y, yd, nx, tol);
    check_close("  save_mean", sm, mean, c, tol);
    /* invstd is relative to 1/std, which may be far from 1. */
    for (size_t i = 0; i < c; i++) si[i] /= (float)inv[i], inv[i] = 1;
    check_close("  save_invstd (relative)", si, inv, c, tol);
    check_close("  running_mean", grm, rm, c, tol);
    check_close("  running_var", grv, rv, c, tol);

    clasp_tensor_free(tx), clasp_tensor_free(tg), clasp_tensor_free(tb);
    clasp_tensor_free(trm), clasp_tensor_free(trv);
    guarded_free(&gy), guarded_free(&gm), guarded_free(&gi);
    free(x), free(gamma), free(beta), free(rm0), free(rv0), free(xd), free(gd), free(bd);
    free(mean), free(var), free(yd), free(inv), free(rm), free(rv);
    free(y), free(sm), free(si), free(grm), free(grv);
}

static void test_bn_train_forward(void **state)
{
    (void)state;
    static const shape4 shapes[] = {
        {7, 5, 9, 9},   {1, 3, 5, 7},   {3, 4, 1, 1}, {2, 1, 3, 3},
        {5, 3, 17, 15}, {1, 2, 33, 31}, {9, 7, 4, 4}, {2, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        bn_train_case(&shapes[i], 10 + 10 * (uint32_t)i, 0.0f, 1e-5);
        bn_train_case(&shapes[i], 15 + 10 * (uint32_t)i, 3.0f, 1e-5);
    }
}

/* ResNet's first block at batch 64. */
static void test_bn_train_forward_large(void **state)
{
    (void)state;
    shape4 s = {64, 64, 32, 32};
    bn_train_case(&s, 500, 0.5f, 1e-5);
}

/* Three train steps on different batches: the running statistics follow
 * running = 0.9 * running + 0.1 * batch_stat with the unbiased variance.
 * The first case is small enough to check by hand: per channel x = 1, 2,
 * 3, 4 in every step (mean 2.5, unbiased variance 5/3), from mean 0 and
 * variance 1: mean 2.5 * (1 - 0.9^3) = 0.6775, variance
 * 0.9^3 + 5/3 * (1 - 0.9^3) = 1.1806667. */
static void test_bn_running_stats(void **state)
{
    (void)state;
    {
        float x[] = {1, 2, 3, 4}, one = 1, zero = 0;
        clasp_tensor *tx = t4(2, 1, 1, 2, x), *tg = t1(1, &one), *tb = t1(1, &zero);
        clasp_tensor *trm = t1(1, &zero), *trv = t1(1, &one), *sm = t1(1, NULL);
        clasp_tensor *si = t1(1, NULL), *ty = t4(2, 1, 1, 2, NULL);
        for (int step = 0; step < 3; step++)
            assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, sm, si, ty));
        float rm, rv;
        assert_ok(clasp_tensor_read(trm, &rm));
        assert_ok(clasp_tensor_read(trv, &rv));
        double want_m = 0.6775, want_v = 1.1806667;
        check_close("running_mean by hand", &rm, &want_m, 1, 1e-6);
        check_close("running_var by hand", &rv, &want_v, 1, 1e-6);
        clasp_tensor *all[] = {tx, tg, tb, trm, trv, sm, si, ty};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    }
    shape4 s = {5, 3, 7, 9};
    size_t nx = numel4(&s), c = (size_t)s.c;
    double m = (double)s.n * s.h * s.w;
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1}, mean[3], var[3];
    float *g = rnd(c, 1, 0.5f, 1.5f), *b = rnd(c, 2, -1, 1);
    clasp_tensor *tg = t1(s.c, g), *tb = t1(s.c, b), *trm = t1(s.c, NULL), *trv = t1(s.c, NULL);
    clasp_tensor *sm = t1(s.c, NULL), *si = t1(s.c, NULL), *ty = t4(s.n, s.c, s.h, s.w, NULL);
    assert_ok(clasp_tensor_fill(trm, 0.0f));
    assert_ok(clasp_tensor_fill(trv, 1.0f));
    for (int step = 0; step < 3; step++) {
        float *x = rnd(nx, 40 + (uint32_t)step, -2, 3);
        double *xd = to_double(x, nx);
        bn_stats_ref(&s, xd, mean, var);
        for (size_t i = 0; i < c; i++) {
            rm[i] = 0.9 * rm[i] + 0.1 * mean[i];
            rv[i] = 0.9 * rv[i] + 0.1 * var[i] * m / (m - 1);
        }
        clasp_tensor *tx = t4(s.n, s.c, s.h, s.w, x);
        assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, sm, si, ty));
        clasp_tensor_free(tx);
        free(x), free(xd);
    }
    float *grm = tu_read(trm), *grv = tu_read(trv);
    check_close("running_mean after 3 steps", grm, rm, c, 1e-6);
    check_close("running_var after 3 steps", grv, rv, c, 1e-6);
    clasp_tensor *all[] = {tg, tb, trm, trv, sm, si, ty};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    free(g), free(b), free(grm), free(grv);
}

/* Bit-identical results on a repeated run (no atomics, fixed order). */
static void test_bn_deterministic(void **state)
{
    (void)state;
    shape4 s = {16, 8, 32, 32};
    size_t nx = numel4(&s);
    float *x = rnd(nx, 7, -1, 2), *w = rnd(nx, 8, -1, 1);
    clasp_tensor *tx = t4(s.n, s.c, s.h, s.w, x), *tw = t4(s.n, s.c, s.h, s.w, w);
    clasp_tensor *tg = t1(s.c, NULL), *tb = t1(s.c, NULL), *trm = t1(s.c, NULL);
    clasp_tensor *trv = t1(s.c, NULL), *sm = t1(s.c, NULL), *si = t1(s.c, NULL);
    clasp_tensor *ty = t4(s.n, s.c, s.h, s.w, NULL), *tdx = t4(s.n, s.c, s.h, s.w, NULL);
    clasp_tensor *tdg = t1(s.c, NULL), *tdb = t1(s.c, NULL);
    assert_ok(clasp_tensor_fill(tg, 1.0f));
    assert_ok(clasp_tensor_fill(tb, 0.0f));
    float *out[2][5];
    for (int r = 0; r < 2; r++) {
        assert_ok(clasp_tensor_fill(trm, 0.0f));
        assert_ok(clasp_tensor_fill(trv, 1.0f));
        assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, sm, si, ty));
        assert_ok(clasp_batchnorm_backward_train(tx, tw, tg, sm, si, tdx, tdg, tdb));
        out[r][0] = tu_read(ty), out[r][1] = tu_read(si), out[r][2] = tu_read(tdx);
        out[r][3] = tu_read(tdg), out[r][4] = tu_read(trv);
    }
    size_t sizes[5] = {nx, (size_t)s.c, nx, (size_t)s.c, (size_t)s.c};
    for (int i = 0; i < 5; i++) {
        assert_memory_equal(out[0][i], out[1][i], sizes[i] * sizeof(float));
        free(out[0][i]), free(out[1][i]);
    }
    clasp_tensor *all[] = {tx, tw, tg, tb, trm, trv, sm, si, ty, tdx, tdg, tdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    free(x), free(w);
}

/* ---- BatchNorm eval forward ----------------------------------------------- */

static void test_bn_eval_forward(void **state)
{
    (void)state;
    static const shape4 shapes[] = {{7, 5, 9, 9}, {1, 3, 5, 7}, {3, 4, 1, 1}, {2, 1, 17, 3}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape4 *s = &shapes[k];
        size_t nx = numel4(s), c = (size_t)s->c;
        uint32_t seed = 60 + 10 * (uint32_t)k;
        float *x = rnd(nx, seed, -2, 3), *g = rnd(c, seed + 1, 0.5f, 1.5f);
        float *b = rnd(c, seed + 2, -1, 1), *rm = rnd(c, seed + 3, -1, 1);
        float *rv = rnd(c, seed + 4, 0.5f, 2);
        double *xd = to_double(x, nx), *gd = to_double(g, c), *bd = to_double(b, c);
        double *rmd = to_double(rm, c), *rvd = to_double(rv, c), *yd = dalloc(nx);
        bn_apply_ref(s, xd, rmd, rvd, gd, bd, EPS, yd);
        clasp_tensor *tx = t4(s->n, s->c, s->h, s->w, x), *tg = t1(s->c, g), *tb = t1(s->c, b);
        clasp_tensor *trm = t1(s->c, rm), *trv = t1(s->c, rv);
        guarded gy;
        guarded4(&gy, s->n, s->c, s->h, s->w);
        assert_ok(clasp_batchnorm_forward_eval(tx, tg, tb, trm, trv, EPS, &gy.view));
        char what[96];
        snprintf(what, sizeof what, "bn eval y n%d c%d %dx%d", s->n, s->c, s->h, s->w);
        float *y = guarded_read(what, &gy), *grm = tu_read(trm);
        check_close(what, y, yd, nx, 1e-5);
        assert_memory_equal(grm, rm, c * sizeof(float)); /* left alone */
        clasp_tensor_free(tx), clasp_tensor_free(tg), clasp_tensor_free(tb);
        clasp_tensor_free(trm), clasp_tensor_free(trv), guarded_free(&gy);
        free(x), free(g), free(b), free(rm), free(rv), free(xd), free(gd), free(bd);
        free(rmd), free(rvd), free(yd), free(y), free(grm);
    }
}

/* Eval with the running statistics set to the batch statistics (biased
 * variance) gives train mode's output. */
static void test_bn_eval_matches_train(void **state)
{
    (void)state;
    shape4 s = {7, 5, 9, 9};
    size_t nx = numel4(&s), c = (size_t)s.c;
    float *x = rnd(nx, 90, -1, 2), *g = rnd(c, 91, 0.5f, 1.5f), *b = rnd(c, 92, -1, 1);
    double *xd = to_double(x, nx), *mean = dalloc(c), *var = dalloc(c);
    bn_stats_ref(&s, xd, mean, var);
    float *rm = malloc(c * sizeof *rm), *rv = malloc(c * sizeof *rv);
    for (size_t i = 0; i < c; i++) rm[i] = (float)mean[i], rv[i] = (float)var[i];
    clasp_tensor *tx = t4(s.n, s.c, s.h, s.w, x), *tg = t1(s.c, g), *tb = t1(s.c, b);
    clasp_tensor *trm = t1(s.c, rm), *trv = t1(s.c, rv), *sm = t1(s.c, NULL);
    clasp_tensor *si = t1(s.c, NULL), *ty = t4(s.n, s.c, s.h, s.w, NULL);
    clasp_tensor *te = t4(s.n, s.c, s.h, s.w, NULL), *urm = t1(s.c, NULL), *urv = t1(s.c, NULL);
    assert_ok(clasp_tensor_fill(urm, 0.0f));
    assert_ok(clasp_tensor_fill(urv, 1.0f));
    assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, urm, urv, 0.1f, EPS, sm, si, ty));
    assert_ok(clasp_batchnorm_forward_eval(tx, tg, tb, trm, trv, EPS, te));
    float *yt = tu_read(ty), *ye = tu_read(te);
    double *ytd = to_double(yt, nx);
    check_close("bn eval vs train", ye, ytd, nx, 1e-5);
    clasp_tensor *all[] = {tx, tg, tb, trm, trv, sm, si, ty, te, urm, urv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    free(x), free(g), free(b), free(xd), free(mean), free(var), free(rm), free(rv);
    free(yt), free(ye), free(ytd);
}

/* ---- BatchNorm backward --------------------------------------------------- */

/* Central differences of L = sum(w * f(params)) for each element of p. */
typedef void (*fwd_fn)(const void *ctx, double *y);

static void fd_grad(fwd_fn f, const void *ctx, double *p, size_t np, const double *w, size_t ny,
                    double h, double *grad)
{
    double *y = dalloc(ny);
    for (size_t i = 0; i < np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        f(ctx, y);
        double lp = dot(w, y, ny);
        p[i] = keep - h;
        f(ctx, y);
        double lm = dot(w, y, ny);
        p[i] = keep;
        grad[i] = (lp - lm) / (2 * h);
    }
    free(y);
}

typedef struct bn_fd {
    shape4 s;
    double *x, *gamma, *beta, *rm, *rv;
} bn_fd;

static void bn_train_fwd(const void *ctx, double *y)
{
    const bn_fd *b = ctx;
    bn_train_ref(&b->s, b->x, b->gamma, b->beta, EPS, y);
}

static void bn_eval_fwd(const void *ctx, double *y)
{
    const bn_fd *b = ctx;
    bn_apply_ref(&b->s, b->x, b->rm, b->rv, b->gamma, b->beta, EPS, y);
}

/* Device backward (train or eval) against finite differences. */
static void bn_backward_case(const shape4 *s, int train, uint32_t seed)
{
    size_t nx = numel4(s), c = (size_t)s->c;
    float *x = rnd(nx, seed, -1, 2), *g = rnd(c, seed + 1, 0.5f, 1.5f);
    float *b = rnd(c, seed + 2, -1, 1), *w = rnd(nx, seed + 3, -1, 1);
    float *rm = rnd(c, seed + 4, -1, 1), *rv = rnd(c, seed + 5, 0.5f, 2);
    bn_fd ref = {*s,
                 to_double(x, nx),
                 to_double(g, c),
                 to_double(b, c),
                 to_double(rm, c),
                 to_double(rv, c)};
    double *wd = to_double(w, nx), *fdx = dalloc(nx), *fdg = dalloc(c), *fdb = dalloc(c);
    fwd_fn f = train ? bn_train_fwd : bn_eval_fwd;
    fd_grad(f, &ref, ref.x, nx, wd, nx, 1e-4, fdx);
    fd_grad(f, &ref, ref.gamma, c, wd, nx, 1e-4, fdg);
    fd_grad(f, &ref, ref.beta, c, wd, nx, 1e-4, fdb);

    clasp_tensor *tx = t4(s->n, s->c, s->h, s->w, x), *tg = t1(s->c, g), *tb = t1(s->c, b);
    clasp_tensor *tw = t4(s->n, s->c, s->h, s->w, w), *trm = t1(s->c, rm), *trv = t1(s->c, rv);
    clasp_tensor *sm = t1(s->c, NULL), *si = t1(s->c, NULL), *ty = t4(s->n, s->c, s->h, s->w, NULL);
    guarded gdx, gdg, gdb;
    guarded4(&gdx, s->n, s->c, s->h, s->w);
    guarded1(&gdg, s->c);
    guarded1(&gdb, s->c);
    char what[128];
    snprintf(what, sizeof what, "bn %s FD n%d c%d %dx%d", train ? "train" : "eval", s->n, s->c,
             s->h, s->w);
    if (train) {
        assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, sm, si, ty));
        assert_ok(
            clasp_batchnorm_backward_train(tx, tw, tg, sm, si, &gdx.view, &gdg.view, &gdb.view));
    } else {
        assert_ok(clasp_batchnorm_backward_eval(tx, tw, tg, trm, trv, EPS, &gdx.view, &gdg.view,
                                                &gdb.view));
    }
    float *dx = guarded_read(what, &gdx), *dg = guarded_read(what, &gdg);
    float *db = guarded_read(what, &gdb);
    check_close(what, dx, fdx, nx, 1e-5);
    check_close("  dgamma", dg, fdg, c, 1e-5);
    check_close("  dbeta", db, fdb, c, 1e-5);

    /* Each output alone: the others are not needed. */
    guarded only;
    guarded1(&only, s->c);
    if (train)
        assert_ok(clasp_batchnorm_backward_train(tx, tw, tg, sm, si, NULL, &only.view, NULL));
    else
        assert_ok(clasp_batchnorm_backward_eval(tx, tw, tg, trm, trv, EPS, NULL, &only.view, NULL));
    float *dg2 = guarded_read(what, &only);
    assert_memory_equal(dg2, dg, c * sizeof(float));
    guarded_free(&only);
    guarded4(&only, s->n, s->c, s->h, s->w);
    if (train)
        assert_ok(clasp_batchnorm_backward_train(tx, tw, tg, sm, si, &only.view, NULL, NULL));
    else
        assert_ok(clasp_batchnorm_backward_eval(tx, tw, tg, trm, trv, EPS, &only.view, NULL, NULL));
    float *dx2 = guarded_read(what, &only);
    assert_memory_equal(dx2, dx, nx * sizeof(float));
    guarded_free(&only);

    clasp_tensor *all[] = {tx, tg, tb, tw, trm, trv, sm, si, ty};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    guarded_free(&gdx), guarded_free(&gdg), guarded_free(&gdb);
    free(x), free(g), free(b), free(w), free(rm), free(rv);
    free(ref.x), free(ref.gamma), free(ref.beta), free(ref.rm), free(ref.rv);
    free(wd), free(fdx), free(fdg), free(fdb), free(dx), free(dg), free(db), free(dg2), free(dx2);
}

static void test_bn_backward_fd(void **state)
{
    (void)state;
    static const shape4 shapes[] = {{3, 4, 5, 5}, {1, 3, 3, 7}, {5, 2, 1, 1}, {2, 3, 9, 9}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        bn_backward_case(&shapes[i], 1, 100 + 10 * (uint32_t)i);
        bn_backward_case(&shapes[i], 0, 150 + 10 * (uint32_t)i);
    }
}

/* The train backward on ResNet's first-block shape against the analytic
 * gradient in double: dx = gamma * invstd / M * (M dy - sum dy - xhat *
 * sum(dy xhat)). */
static void test_bn_backward_large(void **state)
{
    (void)state;
    shape4 s = {64, 64, 32, 32};
    size_t nx = numel4(&s), c = (size_t)s.c, p = (size_t)s.h * s.w;
    double m = (double)s.n * p;
    float *x = rnd(nx, 200, -1, 2), *g = rnd(c, 201, 0.5f, 1.5f), *w = rnd(nx, 203, -1, 1);
    double *mean = dalloc(c), *var = dalloc(c), *sdy = dalloc(c), *sdxh = dalloc(c);
    double *dx = dalloc(nx);
    double *xd = to_double(x, nx);
    bn_stats_ref(&s, xd, mean, var);
    for (size_t j = 0; j < nx; j++) {
        size_t k = j / p % c;
        sdy[k] += w[j];
        sdxh[k] += w[j] * (xd[j] - mean[k]) / sqrt(var[k] + EPS);
    }
    for (size_t j = 0; j < nx; j++) {
        size_t k = j / p % c;
        double inv = 1 / sqrt(var[k] + EPS), xh = (xd[j] - mean[k]) * inv;
        dx[j] = g[k] * inv / m * (m * w[j] - sdy[k] - xh * sdxh[k]);
    }
    clasp_tensor *tx = t4(s.n, s.c, s.h, s.w, x), *tw = t4(s.n, s.c, s.h, s.w, w);
    clasp_tensor *tg = t1(s.c, g), *tb = t1(s.c, NULL), *trm = t1(s.c, NULL), *trv = t1(s.c, NULL);
    clasp_tensor *sm = t1(s.c, NULL), *si = t1(s.c, NULL), *ty = t4(s.n, s.c, s.h, s.w, NULL);
    clasp_tensor *tdx = t4(s.n, s.c, s.h, s.w, NULL), *tdg = t1(s.c, NULL), *tdb = t1(s.c, NULL);
    assert_ok(clasp_tensor_fill(tb, 0.0f));
    assert_ok(clasp_tensor_fill(trm, 0.0f));
    assert_ok(clasp_tensor_fill(trv, 1.0f));
    assert_ok(clasp_batchnorm_forward_train(tx, tg, tb, trm, trv, 0.1f, EPS, sm, si, ty));
    assert_ok(clasp_batchnorm_backward_train(tx, tw, tg, sm, si, tdx, tdg, tdb));
    float *gdx = tu_read(tdx), *gdg = tu_read(tdg), *gdb = tu_read(tdb);
    check_close("bn train grad n64 c64 32x32 dx", gdx, dx, nx, 1e-5);
    /* dgamma, dbeta sum 65536 terms of size ~1; relative to their size. */
    double scale_g = 0, scale_b = 0;
    for (size_t i = 0; i < c; i++) scale_g += fabs(sdxh[i]) / c, scale_b += fabs(sdy[i]) / c;
    for (size_t i = 0; i < c; i++) {
        gdg[i] /= (float)scale_g, sdxh[i] /= scale_g;
        gdb[i] /= (float)scale_b, sdy[i] /= scale_b;
    }
    check_close("  dgamma (relative to its mean size)", gdg, sdxh, c, 1e-5);
    check_close("  dbeta (relative to its mean size)", gdb, sdy, c, 1e-5);
    clasp_tensor *all[] = {tx, tw, tg, tb, trm, trv, sm, si, ty, tdx, tdg, tdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    free(x), free(g), free(w), free(mean), free(var), free(sdy), free(sdxh), free(dx), free(xd);
    free(gdx), free(gdg), free(gdb);
}

/* ---- average pooling ------------------------------------------------------ */

typedef struct pool_fd {
    shape4 s;
    int k, st;
    double *x;
} pool_fd;

static void pool_fwd(const void *ctx, double *y)
{
    const pool_fd *p = ctx;
    avgpool_ref(&p->s, p->k, p->st, p->x, y);
}

static void avgpool_case(const shape4 *s, int k, int st, uint32_t seed)
{
    int oh = (s->h - k) / st + 1, ow = (s->w - k) / st + 1;
    size_t nx = numel4(s), ny = (size_t)s->n * s->c * oh * ow;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(ny, seed + 1, -1, 1);
    pool_fd ref = {*s, k, st, to_double(x, nx)};
    double *yd = dalloc(ny), *wd = to_double(w, ny), *fdx = dalloc(nx);
    avgpool_ref(s, k, st, ref.x, yd);
    fd_grad(pool_fwd, &ref, ref.x, nx, wd, ny, 1e-3, fdx);
    clasp_tensor *tx = t4(s->n, s->c, s->h, s->w, x), *tw = t4(s->n, s->c, oh, ow, w);
    guarded gy, gdx;
    guarded4(&gy, s->n, s->c, oh, ow);
    guarded4(&gdx, s->n, s->c, s->h, s->w);
    assert_ok(clasp_avgpool2d_forward(tx, k, st, &gy.view));
    assert_ok(clasp_avgpool2d_backward(tw, k, st, &gdx.view));
    char what[96];
    snprintf(what, sizeof what, "avgpool n%d c%d %dx%d k%d s%d", s->n, s->c, s->h, s->w, k, st);
    float *y = guarded_read(what, &gy), *dx = guarded_read(what, &gdx);
    check_close(what, y, yd, ny, 1e-6);
    check_close("  dx vs FD", dx, fdx, nx, 1e-5);
    clasp_tensor_free(tx), clasp_tensor_free(tw), guarded_free(&gy), guarded_free(&gdx);
    free(x), free(w), free(ref.x), free(yd), free(wd), free(fdx), free(y), free(dx);
}

static void test_avgpool(void **state)
{
    (void)state;
    static const struct {
        shape4 s;
        int k, st;
    } cases[] = {
        {{3, 5, 8, 8}, 2, 2}, {{2, 3, 9, 7}, 2, 2},   {{1, 2, 9, 9}, 3, 3}, {{2, 3, 9, 11}, 3, 2},
        {{1, 2, 7, 7}, 3, 1}, {{3, 2, 8, 8}, 2, 3},   {{2, 7, 4, 4}, 4, 4}, {{3, 5, 7, 7}, 7, 1},
        {{1, 1, 1, 1}, 1, 1}, {{2, 3, 13, 13}, 5, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        avgpool_case(&cases[i].s, cases[i].k, cases[i].st, 300 + 10 * (uint32_t)i);
}

/* ---- channel affine ------------------------------------------------------- */

typedef struct affine_fd {
    shape4 s;
    double *x, *scale, *shift;
} affine_fd;

static void affine_fwd(const void *ctx, double *y)
{
    const affine_fd *a = ctx;
    affine_ref(&a->s, a->x, a->scale, a->shift, y);
}

static void channel_affine_case(const shape4 *s, uint32_t seed)
{
    size_t nx = numel4(s), c = (size_t)s->c;
    float *x = rnd(nx, seed, -2, 3), *sc = rnd(c, seed + 1, 0.2f, 4);
    float *sh = rnd(c, seed + 2, -2, 2), *w = rnd(nx, seed + 3, -1, 1);
    affine_fd ref = {*s, to_double(x, nx), to_double(sc, c), to_double(sh, c)};
    double *yd = dalloc(nx), *y0 = dalloc(nx), *wd = to_double(w, nx), *fdx = dalloc(nx);
    affine_ref(s, ref.x, ref.scale, ref.shift, yd);
    affine_ref(s, ref.x, ref.scale, NULL, y0);
    fd_grad(affine_fwd, &ref, ref.x, nx, wd, nx, 1e-3, fdx);
    clasp_tensor *tx = t4(s->n, s->c, s->h, s->w, x), *tsc = t1(s->c, sc);
    clasp_tensor *tsh = t1(s->c, sh), *tw = t4(s->n, s->c, s->h, s->w, w);
    guarded gy, gy0, gdx;
    guarded4(&gy, s->n, s->c, s->h, s->w);
    guarded4(&gy0, s->n, s->c, s->h, s->w);
    guarded4(&gdx, s->n, s->c, s->h, s->w);
    assert_ok(clasp_channel_affine(tx, tsc, tsh, &gy.view));
    assert_ok(clasp_channel_affine(tx, tsc, NULL, &gy0.view));
    assert_ok(clasp_channel_affine(tw, tsc, NULL, &gdx.view));
    char what[96];
    snprintf(what, sizeof what, "channel_affine n%d c%d %dx%d", s->n, s->c, s->h, s->w);
    float *y = guarded_read(what, &gy), *yz = guarded_read(what, &gy0);
    float *dx = guarded_read(what, &gdx);
    check_close(what, y, yd, nx, 1e-6);
    check_close("  shift NULL", yz, y0, nx, 1e-6);
    check_close("  dx vs FD", dx, fdx, nx, 1e-5);
    /* In place gives the same bits. */
    assert_ok(clasp_channel_affine(tx, tsc, tsh, tx));
    float *yi = tu_read(tx);
    assert_memory_equal(yi, y, nx * sizeof(float));
    clasp_tensor_free(tx), clasp_tensor_free(tsc), clasp_tensor_free(tsh);
    clasp_tensor_free(tw), guarded_free(&gy), guarded_free(&gy0), guarded_free(&gdx);
    free(x), free(sc), free(sh), free(w), free(ref.x), free(ref.scale), free(ref.shift);
    free(yd), free(y0), free(wd), free(fdx), free(y), free(yz), free(dx), free(yi);
}

static void test_channel_affine(void **state)
{
    (void)state;
    static const shape4 shapes[] = {{7, 5, 9, 9}, {1, 3, 5, 7}, {3, 4, 1, 1}, {2, 3, 32, 32}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        channel_affine_case(&shapes[k], 400 + 10 * (uint32_t)k);
}

/* ---- the generic kernels -------------------------------------------------- */

/* GPUs run the elementwise kernels on float4s where CPUs use float16s;
 * the generic kernel set selects the former here so both stay tested, on
 * planes that are and are not a multiple of the vector width. */
static void test_generic_kernels(void **state)
{
    (void)state;
    tu_set_kernels(g_ctx, CLASP_KERNELS_GENERIC);
    static const shape4 shapes[] = {{7, 5, 9, 9}, {3, 2, 4, 4}, {2, 3, 1, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        uint32_t seed = 800 + 10 * (uint32_t)i;
        bn_train_case(&shapes[i], seed, 1.0f, 1e-5);
        bn_backward_case(&shapes[i], 1, seed + 1);
        bn_backward_case(&shapes[i], 0, seed + 2);
        channel_affine_case(&shapes[i], seed + 3);
    }
    tu_set_kernels(g_ctx, CLASP_KERNELS_AUTO);
}

/* ---- refusals ------------------------------------------------------------- */

static void expect_invalid(clasp_status st, const char *needle)
{
    assert_int_equal(st, CLASP_ERR_INVALID);
    if (!strstr(clasp_last_error(), needle))
        fail_msg("error '%s' does not mention '%s'", clasp_last_error(), needle);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    clasp_tensor *x = t4(2, 3, 4, 4, NULL), *y = t4(2, 3, 4, 4, NULL), *y5 = t4(2, 3, 5, 4, NULL);
    clasp_tensor *c3 = t1(3, NULL), *c3b = t1(3, NULL), *c3c = t1(3, NULL), *c3d = t1(3, NULL);
    clasp_tensor *c3e = t1(3, NULL), *c3f = t1(3, NULL), *c4 = t1(4, NULL);
    clasp_tensor *x2 = tu_tensor(g_ctx, 2, (int[]){2, 3}, NULL);
    clasp_tensor *xi = tu_tensor_i32(g_ctx, 4, (int[]){2, 3, 4, 4}, NULL);
    clasp_tensor *one = t4(1, 3, 1, 1, NULL), *one_y = t4(1, 3, 1, 1, NULL);
    clasp_tensor *p2 = t4(2, 3, 2, 2, NULL), *p3 = t4(2, 3, 3, 3, NULL);
    static const char tr[] = "clasp_batchnorm_forward_train: ";
    char msg[160];

    snprintf(msg, sizeof msg, "%sx has 2 dimensions, expected 4", tr);
    expect_invalid(clasp_batchnorm_forward_train(x2, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f, y),
                   msg);
    expect_invalid(clasp_batchnorm_forward_train(xi, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f, y),
                   "x must be float32");
    expect_invalid(clasp_batchnorm_forward_train(x, c4, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f, y),
                   "gamma has 4 elements, expected 3");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c4, 0.1f, EPS, c3e, c3f, y),
                   "running_var has 4 elements");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, NULL, y),
                   "save_invstd is NULL");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f, y5),
                   "y has shape [2,3,5,4], expected [2,3,4,4]");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f, x),
                   "y may not alias x");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c3d, 0.1f, 0.0f, c3e, c3f, y),
                   "eps must be > 0");
    expect_invalid(clasp_batchnorm_forward_train(x, c3, c3b, c3c, c3d, 1.5f, EPS, c3e, c3f, y),
                   "momentum");
    expect_invalid(clasp_batchnorm_forward_train(one, c3, c3b, c3c, c3d, 0.1f, EPS, c3e, c3f,
                                                 one_y),
                   "at least 2");
    expect_invalid(clasp_batchnorm_forward_eval(x, c3, c4, c3c, c3d, EPS, y),
                   "clasp_batchnorm_forward_eval: beta has 4 elements");
    expect_invalid(clasp_batchnorm_forward_eval(x, c3, c3b, c3c, NULL, EPS, y),
                   "running_var is NULL");
    expect_invalid(clasp_batchnorm_backward_train(x, y5, c3, c3c, c3d, y, NULL, NULL),
                   "clasp_batchnorm_backward_train: dy has shape [2,3,5,4]");
    expect_invalid(clasp_batchnorm_backward_train(x, y, c3, c3c, c3d, y5, NULL, NULL),
                   "dx has shape");
    expect_invalid(clasp_batchnorm_backward_train(x, y, c3, c3c, c3d, y, NULL, NULL),
                   "dx may not alias");
    expect_invalid(clasp_batchnorm_backward_train(x, y, c3, c3c, c3d, NULL, c4, NULL),
                   "dgamma has 4 elements");
    expect_invalid(clasp_batchnorm_backward_eval(x, y, c3, c3c, c3d, EPS, NULL, NULL, c4),
                   "clasp_batchnorm_backward_eval: dbeta has 4 elements");

    expect_invalid(clasp_avgpool2d_forward(x, 2, 2, p3),
                   "clasp_avgpool2d_forward: y is [2,3,3,3], expected [2,3,2,2]");
    expect_invalid(clasp_avgpool2d_forward(x, 5, 1, p2), "window 5 larger than the input 4x4");
    expect_invalid(clasp_avgpool2d_forward(x, 2, 0, p2), "stride 0 must be >= 1");
    expect_invalid(clasp_avgpool2d_forward(x2, 2, 2, p2), "x has 2 dimensions");
    expect_invalid(clasp_avgpool2d_backward(p3, 2, 2, x),
                   "clasp_avgpool2d_backward: dy is [2,3,3,3], expected [2,3,2,2]");

    expect_invalid(clasp_channel_affine(x, c4, NULL, y),
                   "clasp_channel_affine: scale has 4 elements, expected 3");
    expect_invalid(clasp_channel_affine(x, c3, c4, y), "shift has 4 elements");
    expect_invalid(clasp_channel_affine(x, c3, NULL, y5), "y has shape");
    expect_invalid(clasp_channel_affine(x, NULL, NULL, y), "scale and shift are both NULL");

    clasp_tensor *all[] = {x, y, y5, c3, c3b, c3c, c3d, c3e, c3f, c4, x2, xi, one, one_y, p2, p3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_train_forward), cmocka_unit_test(test_bn_train_forward_large),
        cmocka_unit_test(test_bn_running_stats), cmocka_unit_test(test_bn_deterministic),
        cmocka_unit_test(test_bn_eval_forward),  cmocka_unit_test(test_bn_eval_matches_train),
        cmocka_unit_test(test_bn_backward_fd),   cmocka_unit_test(test_bn_backward_large),
        cmocka_unit_test(test_avgpool),          cmocka_unit_test(test_channel_affine),
        cmocka_unit_test(test_generic_kernels),  cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, tu_setup_ctx, tu_teardown_ctx);
}
