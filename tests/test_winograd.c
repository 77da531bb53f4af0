/* Winograd convolution (src/ops/winograd.c) against a double-precision C
 * reference and against the direct path (im2col + GEMM), forward and input
 * gradient, for every variant on odd sizes, 1x1 maps, padding 0..r-1, C
 * and K that are no multiple of anything, batch 1; and the cache of
 * transformed weights: reused while the weights keep their version,
 * recomputed after every write, optimiser step and load.
 *
 * Error bound (stated in winograd.c): |got - exact| <= tol * S per output,
 * S the sum of |w||x| over its window (|w||dy| for dx), tol 4e-6 for
 * F(2x2,3x3), 4e-5 for F(4x4,3x3) and 6e-5 for F(2x2,5x5). WINO_PRINT=1
 * in the environment prints the worst error of each comparison. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "clasp/ops.h"
#include "ops/conv_internal.h"

#define g_ctx tu_shared_ctx

typedef struct cfg {
    int n, c, h, w, o, k, pad;
} cfg;

static int out_h(const cfg *g)
{
    return g->h + 2 * g->pad - g->k + 1;
}
static int out_w(const cfg *g)
{
    return g->w + 2 * g->pad - g->k + 1;
}

/* y = conv(x, w) + b in double; with absolute values when abs. */
static void ref_fwd(const cfg *g, const float *x, const float *w, const float *b, int abs_,
                    double *y)
{
    int oh = out_h(g), ow = out_w(g), k = g->k;
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->o; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double acc = b ? (abs_ ? fabs(b[o]) : b[o]) : 0.0;
                    for (int c = 0; c < g->c; c++)
                        for (int a = 0; a < k; a++) {
                            int ih = i - g->pad + a;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int e = 0; e < k; e++) {
                                int iw = j - g->pad + e;
                                if (iw < 0 || iw >= g->w) continue;
                                double xv = x[((size_t)(n * g->c + c) * g->h + ih) * g->w + iw];
                                double wv = w[((size_t)(o * g->c + c) * k + a) * k + e];
                                acc += abs_ ? fabs(xv) * fabs(wv) : xv * wv;
                            }
                        }
                    y[((size_t)(n * g->o + o) * oh + i) * ow + j] = acc;
                }
}

/* dx of L = sum(dy * y) in double; with absolute values when abs. */
static void ref_dx(const cfg *g, const float *w, const float *dy, int abs_, double *dx)
{
    int oh = out_h(g), ow = out_w(g), k = g->k;
    memset(dx, 0, sizeof *dx * (size_t)g->n * g->c * g->h * g->w);
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->o; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double d = dy[((size_t)(n * g->o + o) * oh + i) * ow + j];
                    for (int c = 0; c < g->c; c++)
                        for (int a = 0; a < k; a++) {
                            int ih = i - g->pad + a;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int e = 0; e < k; e++) {
                                int iw = j - g->pad + e;
                                if (iw < 0 || iw >= g->w) continue;
                                double wv = w[((size_t)(o * g->c + c) * k + a) * k + e];
                                dx[((size_t)(n * g->c + c) * g->h + ih) * g->w + iw] +=
                                    abs_ ? fabs(d) * fabs(wv) : d * wv;
                            }
                        }
                }
}

static void set_conv(clasp_conv_path p)
{
    clasp_ctx_opts o = *clasp_ctx_options(g_ctx);
    o.conv = p;
    assert_ok(clasp_ctx_set_options(g_ctx, &o));
}

/* Worst |got - want| / scale over n values; fails above tol. */
static void check_bound(const char *what, const float *got, const double *want, const double *scale,
                        size_t n, double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (scale[i] > 1e-30 ? scale[i] : 1e-30);
        if (isnan(got[i])) e = INFINITY;
        if (e > worst) worst = e, at = i;
    }
    if (getenv("WINO_PRINT")) printf("%-60s %.3g\n", what, worst);
    if (worst > tol)
        fail_msg("%s: error %.3g of the |w||x| sum > %.3g at %zu (got %.9g, want %.9g)", what,
                 worst, tol, at, (double)got[at], want[at]);
}

static double variant_tol(clasp_conv_path p, int k)
{
    return k == 5 ? 6e-5 : p == CLASP_CONV_WINOGRAD_F2 ? 4e-6 : 4e-5;
}

static void run_case(const cfg *g, clasp_conv_path path, uint32_t seed)
{
    int oh = out_h(g), ow = out_w(g);
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->o * g->c * g->k * g->k;
    size_t ny = (size_t)g->n * g->o * oh * ow;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)g->o * 4),
          *dy = malloc(ny * 4);
    tu_fill_random(x, nx, seed, -1, 1);
    tu_fill_random(w, nw, seed + 1, -1, 1);
    tu_fill_random(b, (size_t)g->o, seed + 2, -1, 1);
    tu_fill_random(dy, ny, seed + 3, -1, 1);
    double *want = malloc(ny * sizeof *want), *scale = malloc(ny * sizeof *scale);
    double *dxw = malloc(nx * sizeof *dxw), *dxs = malloc(nx * sizeof *dxs);
    ref_fwd(g, x, w, b, 0, want);
    ref_fwd(g, x, w, b, 1, scale);
    ref_dx(g, w, dy, 0, dxw);
    ref_dx(g, w, dy, 1, dxs);

    clasp_tensor *tx = tu_tensor(g_ctx, 4, (int[]){g->n, g->c, g->h, g->w}, x);
    clasp_tensor *tw = tu_tensor(g_ctx, 4, (int[]){g->o, g->c, g->k, g->k}, w);
    clasp_tensor *tb = tu_tensor(g_ctx, 1, (int[]){g->o}, b);
    clasp_tensor *tdy = tu_tensor(g_ctx, 4, (int[]){g->n, g->o, oh, ow}, dy);
    clasp_tensor *ty = tu_tensor(g_ctx, 4, (int[]){g->n, g->o, oh, ow}, NULL);
    clasp_tensor *tdx = tu_tensor(g_ctx, 4, (int[]){g->n, g->c, g->h, g->w}, NULL);

    /* The variant must really run: it transforms the weights once for
     * the forward and once (flipped) for dx. */
    set_conv(path);
    assert_int_not_equal(clasp_wino_choose(g_ctx, g->k, g->k, 1, g->pad, 1), CLASP_WINO_NONE);
    unsigned long t0 = clasp_wino_transforms(g_ctx);
    assert_ok(clasp_conv2d_forward(tx, tw, tb, 1, g->pad, ty));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, g->pad, tdx, NULL, NULL));
    float *y1 = tu_read(ty), *dx1 = tu_read(tdx);
    assert_int_equal(clasp_wino_transforms(g_ctx), t0 + 2);
    set_conv(CLASP_CONV_DIRECT);
    assert_ok(clasp_conv2d_forward(tx, tw, tb, 1, g->pad, ty));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, g->pad, tdx, NULL, NULL));
    float *y0 = tu_read(ty), *dx0 = tu_read(tdx);
    set_conv(CLASP_CONV_AUTO);

    double tol = variant_tol(path, g->k);
    char what[160];
    snprintf(what, sizeof what, "winograd %s n%d c%d %dx%d o%d k%d p%d",
             path == CLASP_CONV_WINOGRAD_F2 ? "f2" : "f4", g->n, g->c, g->h, g->w, g->o, g->k,
             g->pad);
    char sub[200];
    snprintf(sub, sizeof sub, "%s forward vs double", what);
    check_bound(sub, y1, want, scale, ny, tol);
    snprintf(sub, sizeof sub, "%s dx vs double", what);
    check_bound(sub, dx1, dxw, dxs, nx, tol);
    /* Against the direct path: both within their bounds of the exact. */
    double *d0 = malloc((ny > nx ? ny : nx) * sizeof *d0);
    for (size_t i = 0; i < ny; i++) d0[i] = y0[i];
    snprintf(sub, sizeof sub, "%s forward vs direct", what);
    check_bound(sub, y1, d0, scale, ny, tol + 1e-6);
    for (size_t i = 0; i < nx; i++) d0[i] = dx0[i];
    snprintf(sub, sizeof sub, "%s dx vs direct", what);
    check_bound(sub, dx1, d0, dxs, nx, tol + 1e-6);
    free(d0);

    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tb);
    clasp_tensor_free(tdy), clasp_tensor_free(ty), clasp_tensor_free(tdx);
    free(x), free(w), free(b), free(dy), free(want), free(scale), free(dxw), free(dxs);
    free(y0), free(y1), free(dx0), free(dx1);
}

static const cfg shapes[] = {
    /* 1x1 maps (padding only), batch 1, one channel */
    {1, 1, 1, 1, 1, 3, 1},
    {2, 3, 1, 1, 2, 3, 2},
    /* odd sizes, C and K no multiple of a tile or a GEMM block */
    {2, 3, 7, 5, 5, 3, 1},
    {1, 4, 6, 6, 3, 3, 0},
    {3, 5, 9, 11, 7, 3, 1},
    {2, 17, 8, 8, 19, 3, 1},
    {1, 3, 3, 3, 2, 3, 2},
    {1, 6, 13, 2, 3, 3, 1},
    /* ResNet-like */
    {2, 32, 16, 16, 32, 3, 1},
    /* 5x5 (the default CNN's second layer: 32 -> 64 at 14x14, pad 2) */
    {1, 2, 13, 13, 3, 5, 2},
    {2, 3, 6, 7, 4, 5, 0},
    {1, 1, 2, 2, 1, 5, 4 - 2},
    {2, 32, 14, 14, 64, 5, 2},
};

static void test_f2_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_case(&shapes[i], CLASP_CONV_WINOGRAD_F2, 100 + 10 * (uint32_t)i);
}

static void test_f4_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_case(&shapes[i], CLASP_CONV_WINOGRAD, 400 + 10 * (uint32_t)i);
}

/* Enough images for several chunks of the scratch budget. */
static void test_chunked(void **state)
{
    (void)state;
    cfg g = {40, 64, 16, 16, 16, 3, 1};
    run_case(&g, CLASP_CONV_WINOGRAD, 900);
}

/* Which shapes take a Winograd path, and that auto and direct take none. */
static void test_choose(void **state)
{
    (void)state;
    set_conv(CLASP_CONV_WINOGRAD);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 1, 1, 1), CLASP_WINO_F4_3);
    assert_int_equal(clasp_wino_choose(g_ctx, 5, 5, 1, 2, 1), CLASP_WINO_F2_5);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 2, 1, 0), CLASP_WINO_NONE);
    assert_int_equal(clasp_wino_choose(g_ctx, 1, 1, 1, 0, 0), CLASP_WINO_NONE);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 1, 3, 1), CLASP_WINO_NONE);
    set_conv(CLASP_CONV_WINOGRAD_F2);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 1, 1, 0), CLASP_WINO_F2_3);
    set_conv(CLASP_CONV_DIRECT);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 1, 1, 0), CLASP_WINO_NONE);
    set_conv(CLASP_CONV_AUTO);
    assert_int_equal(clasp_wino_choose(g_ctx, 3, 3, 1, 1, 0), CLASP_WINO_NONE);
}

/* The transformed weights are reused while the weights keep their
 * version, and every write gives a new version: a stale transform would
 * give the old weights' output. */
static void test_cache_versions(void **state)
{
    (void)state;
    cfg g = {2, 4, 6, 6, 5, 3, 1};
    size_t nx = 2 * 4 * 36, nw = 5 * 4 * 9, ny = 2 * 5 * 36;
    float *x = malloc(nx * 4), *w = malloc(nw * 4);
    tu_fill_random(x, nx, 1, -1, 1);
    tu_fill_random(w, nw, 2, -1, 1);
    clasp_tensor *tx = tu_tensor(g_ctx, 4, (int[]){2, 4, 6, 6}, x);
    clasp_tensor *tw = tu_tensor(g_ctx, 4, (int[]){5, 4, 3, 3}, w);
    clasp_tensor *ty = tu_tensor(g_ctx, 4, (int[]){2, 5, 6, 6}, NULL);
    clasp_tensor *tg = tu_tensor(g_ctx, 4, (int[]){5, 4, 3, 3}, w);
    clasp_tensor *tv = tu_tensor(g_ctx, 4, (int[]){5, 4, 3, 3}, NULL);
    assert_ok(clasp_tensor_fill(tv, 0.0f));
    double *want = malloc(ny * sizeof *want), *scale = malloc(ny * sizeof *scale);
    set_conv(CLASP_CONV_WINOGRAD);

    unsigned long t0 = clasp_wino_transforms(g_ctx);
    uint64_t v0 = tw->version;
    for (int i = 0; i < 3; i++) assert_ok(clasp_conv2d_forward(tx, tw, NULL, 1, 1, ty));
    assert_int_equal(clasp_wino_transforms(g_ctx), t0 + 1); /* once for three calls */
    assert_true(tw->version == v0);

    /* Each way of changing the weights, then the output must be the new
     * weights' (from the host copy w kept in step). */
    for (int way = 0; way < 6; way++) {
        uint64_t before = tw->version;
        switch (way) {
        case 0: /* a write */
            for (size_t i = 0; i < nw; i++) w[i] *= -0.5f;
            assert_ok(clasp_tensor_write(tw, w));
            break;
        case 1: /* an SGD step, lr 0.1, no momentum: w -= 0.1 * g */
            assert_ok(clasp_sgd_update(tw, tg, NULL, 0.1f, 0.0f, 0.0f));
            break;
        case 2: /* axpy */ assert_ok(clasp_axpy(tw, 0.25f, tg)); break;
        case 3: /* scale */ assert_ok(clasp_scale(tw, 2.0f)); break;
        case 4: /* a copy (as loading a snapshot does) */
            assert_ok(clasp_tensor_copy(tw, tg));
            break;
        default: /* a fill */ assert_ok(clasp_tensor_fill(tw, 0.125f)); break;
        }
        assert_true(tw->version != before);
        float *now = tu_read(tw);
        assert_ok(clasp_conv2d_forward(tx, tw, NULL, 1, 1, ty));
        float *y = tu_read(ty);
        ref_fwd(&g, x, now, NULL, 0, want);
        ref_fwd(&g, x, now, NULL, 1, scale);
        check_bound("after a change of the weights", y, want, scale, ny, 4e-5);
        free(now), free(y);
    }
    set_conv(CLASP_CONV_AUTO);
    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(ty);
    clasp_tensor_free(tg), clasp_tensor_free(tv);
    free(x), free(w), free(want), free(scale);
}

/* Versions are never the same for two tensors. */
static void test_versions_unique(void **state)
{
    (void)state;
    clasp_tensor *a = tu_tensor(g_ctx, 1, (int[]){4}, NULL);
    uint64_t va = a->version;
    clasp_tensor_free(a);
    clasp_tensor *b = tu_tensor(g_ctx, 1, (int[]){4}, NULL);
    assert_true(b->version != va);
    uint64_t vb = b->version;
    clasp_tensor_touch(b);
    assert_true(b->version != vb);
    clasp_tensor_free(b);
}

/* dx of the model's loss under the given path. */
static float *model_dx(clasp_model *m, clasp_conv_path p, const clasp_tensor *x,
                       const clasp_tensor *y, clasp_tensor *dx)
{
    set_conv(p);
    assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL));
    set_conv(CLASP_CONV_AUTO);
    return tu_read(dx);
}

static void assert_same_dx(const char *what, const float *a, const float *b, size_t n)
{
    double e = tu_max_rel_err(a, b, n);
    if (e > 1e-3) fail_msg("%s: winograd dx differs from direct by %.3g", what, e);
}

/* A model's parameters change by optimiser steps and loads: the Winograd
 * path must follow (the direct path has no cache to go stale), and between
 * changes an attack's steps reuse the transformed weights. */
static void test_model_versions(void **state)
{
    (void)state;
    const char *arch = "conv3x3-8p1,relu,conv3x3-6p1,relu,conv5x5-4p2,relu,flatten,fc3";
    clasp_model *m = tu_model(g_ctx, arch, 2, 6, 6, 11);
    clasp_model *other = tu_model(g_ctx, arch, 2, 6, 6, 12);
    size_t nx = 4 * 2 * 6 * 6;
    float *xh = malloc(nx * 4);
    tu_fill_random(xh, nx, 5, 0, 1);
    clasp_tensor *x = tu_tensor(g_ctx, 4, (int[]){4, 2, 6, 6}, xh);
    clasp_tensor *y = tu_tensor_i32(g_ctx, 1, (int[]){4}, (int32_t[]){0, 1, 2, 1});
    clasp_tensor *dx = tu_tensor(g_ctx, 4, (int[]){4, 2, 6, 6}, NULL);
    clasp_sgd *opt;
    assert_ok(clasp_sgd_new(m, 0.5f, 0.9f, 0.0f, &opt));
    clasp_model_set_train(m, 0);

    float *a = model_dx(m, CLASP_CONV_WINOGRAD, x, y, dx);
    unsigned long t0 = clasp_wino_transforms(g_ctx);
    for (int i = 0; i < 3; i++) free(model_dx(m, CLASP_CONV_WINOGRAD, x, y, dx));
    assert_int_equal(clasp_wino_transforms(g_ctx), t0); /* the attack's steps reuse them */
    float *b = model_dx(m, CLASP_CONV_DIRECT, x, y, dx);
    assert_same_dx("before", a, b, nx);
    free(a), free(b);

    for (int step = 0; step < 3; step++) { /* optimiser steps */
        set_conv(CLASP_CONV_WINOGRAD);
        clasp_model_set_train(m, 1);
        assert_ok(clasp_train_step(m, opt, x, y, NULL, NULL));
        clasp_model_set_train(m, 0);
        unsigned long t1 = clasp_wino_transforms(g_ctx);
        a = model_dx(m, CLASP_CONV_WINOGRAD, x, y, dx);
        assert_true(clasp_wino_transforms(g_ctx) > t1); /* new weights: new transforms */
        b = model_dx(m, CLASP_CONV_DIRECT, x, y, dx);
        assert_same_dx("after an SGD step", a, b, nx);
        free(a), free(b);
    }

    /* A load: other's weights into m, whose transforms are cached. */
    char dir[512], path[600];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/other.safetensors", dir);
    assert_ok(clasp_model_save(other, NULL, NULL, 0, path));
    free(model_dx(m, CLASP_CONV_WINOGRAD, x, y, dx));
    assert_ok(clasp_model_load_weights(m, path, NULL, NULL));
    a = model_dx(m, CLASP_CONV_WINOGRAD, x, y, dx);
    b = model_dx(m, CLASP_CONV_DIRECT, x, y, dx);
    assert_same_dx("after a load", a, b, nx);
    clasp_model_set_train(other, 0);
    float *c = model_dx(other, CLASP_CONV_DIRECT, x, y, dx);
    assert_same_dx("loaded equals the saved model", a, c, nx);
    free(a), free(b), free(c);
    tu_rmdir(dir);

    clasp_sgd_free(opt);
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(dx);
    clasp_model_free(m), clasp_model_free(other);
    free(xh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose),         cmocka_unit_test(test_f2_shapes),
        cmocka_unit_test(test_f4_shapes),      cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_cache_versions), cmocka_unit_test(test_versions_unique),
        cmocka_unit_test(test_model_versions),
    };
    return cmocka_run_group_tests(tests, tu_setup_ctx, tu_teardown_ctx);
}
