/* Layer ops (conv2d, linear, relu, maxpool, bias_grad) against plain C
 * references computed in double precision.
 *
 * Forward passes are compared with the reference on odd shapes. Backward
 * passes are checked two ways: against central finite differences of the
 * double-precision reference forward (a gradient of L = sum(r * y) for a
 * random r, which is what the device backward gets as dy = r), and against
 * the reference's analytic gradient on larger shapes, including the Madry
 * MNIST CNN's layer shapes and a batch large enough to be split into
 * chunks. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"

/* All tests here share one context. */
#define g_ctx tu_shared_ctx

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
    if (worst > tol)
        fail_msg("%s: max rel err %.3g > %.3g at %zu (got %.7g, want %.7g)", what, worst, tol, at,
                 (double)got[at], want[at]);
}

/* ---- references -------------------------------------------------------- */

typedef struct conv_cfg {
    int n, c, h, w, o, kh, kw, stride, pad;
} conv_cfg;

static int conv_oh(const conv_cfg *c)
{
    return (c->h + 2 * c->pad - c->kh) / c->stride + 1;
}
static int conv_ow(const conv_cfg *c)
{
    return (c->w + 2 * c->pad - c->kw) / c->stride + 1;
}

static void conv_ref(const conv_cfg *g, const double *x, const double *w, const double *b,
                     double *y)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->o; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < g->c; c++)
                        for (int kh = 0; kh < g->kh; kh++) {
                            int ih = i * g->stride - g->pad + kh;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int kw = 0; kw < g->kw; kw++) {
                                int iw = j * g->stride - g->pad + kw;
                                if (iw < 0 || iw >= g->w) continue;
                                acc += x[((size_t)(n * g->c + c) * g->h + ih) * g->w + iw] *
                                       w[((size_t)(o * g->c + c) * g->kh + kh) * g->kw + kw];
                            }
                        }
                    y[((size_t)(n * g->o + o) * oh + i) * ow + j] = acc;
                }
}

/* Analytic gradients of L = sum(dy * y). */
static void conv_bwd_ref(const conv_cfg *g, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    memset(dx, 0, sizeof *dx * (size_t)g->n * g->c * g->h * g->w);
    memset(dw, 0, sizeof *dw * (size_t)g->o * g->c * g->kh * g->kw);
    memset(db, 0, sizeof *db * (size_t)g->o);
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->o; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double d = dy[((size_t)(n * g->o + o) * oh + i) * ow + j];
                    db[o] += d;
                    for (int c = 0; c < g->c; c++)
                        for (int kh = 0; kh < g->kh; kh++) {
                            int ih = i * g->stride - g->pad + kh;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int kw = 0; kw < g->kw; kw++) {
                                int iw = j * g->stride - g->pad + kw;
                                if (iw < 0 || iw >= g->w) continue;
                                size_t xi = ((size_t)(n * g->c + c) * g->h + ih) * g->w + iw;
                                size_t wi = ((size_t)(o * g->c + c) * g->kh + kh) * g->kw + kw;
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                        }
                }
}

static void linear_ref(int n, int in, int out, const double *x, const double *w, const double *b,
                       double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++) acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = acc;
        }
}

static void linear_bwd_ref(int n, int in, int out, const double *x, const double *w,
                           const double *dy, double *dx, double *dw, double *db)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < in; k++) {
            double acc = 0;
            for (int o = 0; o < out; o++) acc += dy[(size_t)i * out + o] * w[(size_t)o * in + k];
            dx[(size_t)i * in + k] = acc;
        }
    for (int o = 0; o < out; o++) {
        for (int k = 0; k < in; k++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + o] * x[(size_t)i * in + k];
            dw[(size_t)o * in + k] = acc;
        }
        double acc = 0;
        for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + o];
        db[o] = acc;
    }
}

/* Max pool over `planes` planes; idx as in ops.h (first maximum). */
/* pad: rows and columns of -inf around each plane (PyTorch's padding of
 * max_pool2d); the scan visits the whole padded window, so a padded
 * position can never be the maximum. */
static void pool_ref_pad(int planes, int h, int w, int k, int s, int pad, const double *x,
                         double *y, int32_t *idx)
{
    int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int bi = -1;
                double best = -INFINITY;
                for (int a = 0; a < k; a++)
                    for (int c = 0; c < k; c++) {
                        int r = i * s + a - pad, q = j * s + c - pad;
                        if (r < 0 || r >= h || q < 0 || q >= w) continue;
                        double v = x[(size_t)p * h * w + r * w + q];
                        if (bi < 0 || v > best) best = v, bi = r * w + q;
                    }
                y[((size_t)p * oh + i) * ow + j] = best;
                if (idx) idx[((size_t)p * oh + i) * ow + j] = bi;
            }
}

static void pool_ref(int planes, int h, int w, int k, int s, const double *x, double *y,
                     int32_t *idx)
{
    pool_ref_pad(planes, h, w, k, s, 0, x, y, idx);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- device helpers ---------------------------------------------------- */

static clasp_tensor *t4(int a, int b, int c, int d, const float *host)
{
    return tu_tensor(g_ctx, 4, (int[]){a, b, c, d}, host);
}

static clasp_tensor *t2(int a, int b, const float *host)
{
    return tu_tensor(g_ctx, 2, (int[]){a, b}, host);
}

static clasp_tensor *t1(int a, const float *host)
{
    return tu_tensor(g_ctx, 1, (int[]){a}, host);
}

/* ---- conv forward ------------------------------------------------------ */

static void conv_forward_case(const conv_cfg *g, int with_bias, uint32_t seed)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->o * g->c * g->kh * g->kw;
    size_t ny = (size_t)g->n * g->o * oh * ow;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(nw, seed + 1, -1, 1), *b = rnd(g->o, seed + 2, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *bd = to_double(b, g->o);
    double *yd = malloc(ny * sizeof *yd);
    conv_ref(g, xd, wd, with_bias ? bd : NULL, yd);

    clasp_tensor *tx = t4(g->n, g->c, g->h, g->w, x), *tw = t4(g->o, g->c, g->kh, g->kw, w);
    clasp_tensor *tb = t1(g->o, b), *ty = t4(g->n, g->o, oh, ow, NULL);
    assert_ok(clasp_conv2d_forward(tx, tw, with_bias ? tb : NULL, g->stride, g->pad, ty));
    float *y = tu_read(ty);
    char what[160];
    snprintf(what, sizeof what, "conv fwd n%d c%d %dx%d o%d k%dx%d s%d p%d bias%d", g->n, g->c,
             g->h, g->w, g->o, g->kh, g->kw, g->stride, g->pad, with_bias);
    check_close(what, y, yd, ny, 1e-5 * sqrt((double)g->c * g->kh * g->kw) + 1e-6);

    clasp_tensor_free(tx);
    clasp_tensor_free(tw);
    clasp_tensor_free(tb);
    clasp_tensor_free(ty);
    free(x), free(w), free(b), free(xd), free(wd), free(bd), free(yd), free(y);
}

static void test_conv_forward_shapes(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        /* n  c   h   w  o kh kw s p */
        {1, 1, 5, 5, 1, 1, 1, 1, 0},   {1, 1, 5, 5, 2, 3, 3, 1, 0},   {3, 1, 7, 7, 4, 3, 3, 1, 1},
        {1, 3, 7, 5, 5, 5, 5, 1, 2},   {3, 7, 5, 7, 3, 3, 3, 2, 1},   {1, 3, 31, 31, 4, 5, 5, 2, 2},
        {3, 3, 33, 31, 2, 3, 3, 2, 0}, {1, 7, 33, 33, 3, 1, 1, 2, 0}, {3, 1, 1, 1, 3, 1, 1, 1, 0},
        {1, 3, 1, 1, 2, 3, 3, 1, 1},   {1, 1, 1, 1, 1, 5, 5, 1, 2},   {3, 7, 7, 7, 5, 3, 5, 1, 1},
        {1, 1, 7, 31, 2, 5, 3, 2, 2},  {3, 3, 5, 5, 7, 5, 5, 2, 0},   {1, 3, 31, 33, 7, 3, 3, 1, 2},
        {3, 7, 33, 33, 1, 5, 5, 1, 1},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        conv_forward_case(&cfgs[i], 1, 100 + (uint32_t)i);
        conv_forward_case(&cfgs[i], 0, 200 + (uint32_t)i);
    }
}

/* ---- conv backward ----------------------------------------------------- */

typedef struct conv_grads {
    float *dx, *dw, *db;
} conv_grads;

/* Runs the device backward for dy = r; returns host copies of the grads. */
static conv_grads conv_device_backward(const conv_cfg *g, const float *x, const float *w,
                                       const float *r)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    clasp_tensor *tx = t4(g->n, g->c, g->h, g->w, x), *tw = t4(g->o, g->c, g->kh, g->kw, w);
    clasp_tensor *tdy = t4(g->n, g->o, oh, ow, r);
    clasp_tensor *tdx = t4(g->n, g->c, g->h, g->w, NULL), *tdw = t4(g->o, g->c, g->kh, g->kw, NULL);
    clasp_tensor *tdb = t1(g->o, NULL);
    /* Poison the outputs: they must be overwritten, not accumulated. */
    assert_ok(clasp_tensor_fill(tdx, 7.0f));
    assert_ok(clasp_tensor_fill(tdw, 7.0f));
    assert_ok(clasp_tensor_fill(tdb, 7.0f));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, g->stride, g->pad, tdx, tdw, tdb));
    conv_grads out = {tu_read(tdx), tu_read(tdw), tu_read(tdb)};
    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tdy);
    clasp_tensor_free(tdx), clasp_tensor_free(tdw), clasp_tensor_free(tdb);
    return out;
}

static void conv_grads_free(conv_grads *gr)
{
    free(gr->dx), free(gr->dw), free(gr->db);
}

/* Device backward against central differences of the double reference. */
static void conv_fd_case(const conv_cfg *g, uint32_t seed)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->o * g->c * g->kh * g->kw;
    size_t ny = (size_t)g->n * g->o * oh * ow;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(nw, seed + 1, -1, 1), *b = rnd(g->o, seed + 2, -1, 1);
    float *r = rnd(ny, seed + 3, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *bd = to_double(b, g->o);
    double *rd = to_double(r, ny), *y = malloc(ny * sizeof *y);
    double *fdx = malloc(nx * sizeof *fdx), *fdw = malloc(nw * sizeof *fdw);
    double *fdb = malloc((size_t)g->o * sizeof *fdb);
    const double h = 1e-4;
    struct {
        double *p, *grad;
        size_t n;
    } params[3] = {{xd, fdx, nx}, {wd, fdw, nw}, {bd, fdb, (size_t)g->o}};
    for (int q = 0; q < 3; q++)
        for (size_t i = 0; i < params[q].n; i++) {
            double keep = params[q].p[i];
            params[q].p[i] = keep + h;
            conv_ref(g, xd, wd, bd, y);
            double lp = dot(rd, y, ny);
            params[q].p[i] = keep - h;
            conv_ref(g, xd, wd, bd, y);
            double lm = dot(rd, y, ny);
            params[q].p[i] = keep;
            params[q].grad[i] = (lp - lm) / (2 * h);
        }
    conv_grads gr = conv_device_backward(g, x, w, r);
    char what[160];
    snprintf(what, sizeof what, "conv FD n%d c%d %dx%d o%d k%dx%d s%d p%d", g->n, g->c, g->h, g->w,
             g->o, g->kh, g->kw, g->stride, g->pad);
    check_close(what, gr.dx, fdx, nx, 1e-4);
    check_close(what, gr.dw, fdw, nw, 1e-4);
    check_close(what, gr.db, fdb, (size_t)g->o, 1e-4);
    conv_grads_free(&gr);
    free(x), free(w), free(b), free(r), free(xd), free(wd), free(bd), free(rd), free(y);
    free(fdx), free(fdw), free(fdb);
}

static void test_conv_backward_fd(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        {1, 1, 5, 5, 1, 3, 3, 1, 0}, {3, 1, 7, 7, 2, 3, 3, 1, 1}, {1, 3, 5, 7, 3, 5, 5, 1, 2},
        {3, 3, 7, 5, 2, 3, 3, 2, 1}, {1, 7, 5, 5, 2, 1, 1, 2, 0}, {1, 1, 1, 1, 2, 3, 3, 1, 1},
        {3, 1, 7, 7, 2, 5, 3, 2, 2}, {1, 3, 5, 5, 7, 3, 3, 2, 0},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        conv_fd_case(&cfgs[i], 300 + 10 * (uint32_t)i);
}

/* Device backward against the analytic reference gradient. */
static void conv_grad_case(const conv_cfg *g, uint32_t seed)
{
    int oh = conv_oh(g), ow = conv_ow(g);
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->o * g->c * g->kh * g->kw;
    size_t ny = (size_t)g->n * g->o * oh * ow;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(nw, seed + 1, -1, 1), *r = rnd(ny, seed + 3, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *rd = to_double(r, ny);
    double *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *db = malloc((size_t)g->o * sizeof *db);
    conv_bwd_ref(g, xd, wd, rd, dx, dw, db);
    conv_grads gr = conv_device_backward(g, x, w, r);
    char what[160];
    snprintf(what, sizeof what, "conv grad n%d c%d %dx%d o%d k%dx%d s%d p%d", g->n, g->c, g->h,
             g->w, g->o, g->kh, g->kw, g->stride, g->pad);
    /* dw and db sum over N*OH*OW terms; dx over O*KH*KW. */
    double tol = 2e-5 * sqrt((double)g->n * oh * ow + (double)g->o * g->kh * g->kw) + 1e-5;
    check_close(what, gr.dx, dx, nx, tol);
    check_close(what, gr.dw, dw, nw, tol);
    check_close(what, gr.db, db, (size_t)g->o, tol);
    conv_grads_free(&gr);
    free(x), free(w), free(r), free(xd), free(wd), free(rd), free(dx), free(dw), free(db);
}

static void test_conv_backward_larger(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        {3, 7, 33, 31, 5, 3, 3, 2, 1},
        {3, 3, 31, 33, 7, 5, 5, 1, 2},
        {1, 7, 33, 33, 4, 5, 5, 2, 0},
        {3, 1, 31, 31, 3, 1, 1, 1, 0},
        /* Output planes above 1024 elements: split over several groups. */
        {2, 3, 33, 33, 4, 3, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        conv_grad_case(&cfgs[i], 500 + 10 * (uint32_t)i);
}

/* Enough images that one batch does not fit the op's scratch budget, so
 * forward and backward run in several chunks (dw accumulates across them). */
static void test_conv_chunked(void **state)
{
    (void)state;
    conv_cfg g = {11, 64, 32, 32, 8, 5, 5, 1, 2};
    conv_forward_case(&g, 1, 700);
    conv_grad_case(&g, 710);
}

/* 1x1 convolutions of stride 1 without padding on planes of at least 196
 * positions are per-image matrix products (conv1x1_plain); beside them
 * the narrow planes and the strided or padded 1x1s that keep im2col. */
static void test_conv_1x1(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        {3, 5, 14, 14, 7, 1, 1, 1, 0}, {2, 9, 17, 19, 4, 1, 1, 1, 0}, {1, 3, 13, 13, 6, 1, 1, 1, 0},
        {2, 4, 15, 15, 3, 1, 1, 2, 0}, {2, 4, 14, 14, 3, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        conv_forward_case(&cfgs[i], 1, 800 + 10 * (uint32_t)i);
        conv_forward_case(&cfgs[i], 0, 801 + 10 * (uint32_t)i);
        conv_grad_case(&cfgs[i], 805 + 10 * (uint32_t)i);
    }
    conv_cfg small = {1, 2, 14, 14, 2, 1, 1, 1, 0};
    conv_fd_case(&small, 890);
}

/* Backward runs twice give bit-identical results (no atomics). */
static void test_conv_backward_deterministic(void **state)
{
    (void)state;
    conv_cfg g = {3, 7, 31, 33, 5, 3, 3, 2, 1};
    int oh = conv_oh(&g), ow = conv_ow(&g);
    size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.o * g.c * g.kh * g.kw;
    size_t ny = (size_t)g.n * g.o * oh * ow;
    float *x = rnd(nx, 1, -1, 1), *w = rnd(nw, 2, -1, 1), *r = rnd(ny, 3, -1, 1);
    conv_grads a = conv_device_backward(&g, x, w, r), b = conv_device_backward(&g, x, w, r);
    assert_memory_equal(a.dx, b.dx, nx * sizeof(float));
    assert_memory_equal(a.dw, b.dw, nw * sizeof(float));
    assert_memory_equal(a.db, b.db, (size_t)g.o * sizeof(float));
    conv_grads_free(&a), conv_grads_free(&b);
    free(x), free(w), free(r);
}

/* Only some gradients requested: the others are left alone. */
static void test_conv_backward_partial(void **state)
{
    (void)state;
    conv_cfg g = {3, 3, 7, 7, 4, 3, 3, 1, 1};
    size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.o * g.c * g.kh * g.kw;
    size_t ny = (size_t)g.n * g.o * g.h * g.w;
    float *x = rnd(nx, 11, -1, 1), *w = rnd(nw, 12, -1, 1), *r = rnd(ny, 13, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *rd = to_double(r, ny);
    double *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *db = malloc(4 * sizeof *db);
    conv_bwd_ref(&g, xd, wd, rd, dx, dw, db);
    clasp_tensor *tx = t4(g.n, g.c, g.h, g.w, x), *tw = t4(g.o, g.c, g.kh, g.kw, w);
    clasp_tensor *tdy = t4(g.n, g.o, g.h, g.w, r);
    clasp_tensor *tdx = t4(g.n, g.c, g.h, g.w, NULL), *tdw = t4(g.o, g.c, g.kh, g.kw, NULL);
    clasp_tensor *tdb = t1(g.o, NULL);

    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, 1, tdx, NULL, NULL));
    float *h = tu_read(tdx);
    check_close("conv dx only", h, dx, nx, 1e-4);
    free(h);
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, 1, NULL, tdw, NULL));
    h = tu_read(tdw);
    check_close("conv dw only", h, dw, nw, 1e-4);
    free(h);
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, 1, NULL, NULL, tdb));
    h = tu_read(tdb);
    check_close("conv db only", h, db, 4, 1e-4);
    free(h);

    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tdy);
    clasp_tensor_free(tdx), clasp_tensor_free(tdw), clasp_tensor_free(tdb);
    free(x), free(w), free(r), free(xd), free(wd), free(rd), free(dx), free(dw), free(db);
}

/* ---- direct and vector paths ------------------------------------------- */

/* Shapes whose column matrices the vector path writes packed in 16-column
 * panels for the GEMM (clasp_gemm_packed_b): rows of 16 or 32 columns,
 * rows of 8, 4 and 2 columns that share a panel (also across images),
 * rows of 14, 10, 7 and 20 columns whose 16-wide runs cross from one panel
 * into the next (the default CNN's 14x14 planes), stride 2 (the scalar
 * im2col), 1x1 windows, and a column count that leaves half a 32-wide
 * tile. Forward, all gradients (dy stays plain for the weight gradient)
 * and the input gradient alone (dy packed). */
static void test_conv_packed(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        /* n  c   h   w  o kh kw s p */
        {3, 4, 16, 16, 5, 3, 3, 1, 1},  {2, 3, 16, 16, 4, 3, 3, 2, 1},
        {3, 2, 8, 8, 3, 3, 3, 2, 1},    {4, 3, 4, 4, 2, 3, 3, 2, 1},
        {2, 5, 8, 8, 17, 1, 1, 2, 0},   {1, 2, 3, 16, 3, 3, 3, 1, 1},
        {2, 2, 32, 32, 20, 3, 3, 1, 1}, {4, 3, 14, 14, 5, 5, 5, 1, 2},
        {4, 2, 10, 10, 3, 3, 3, 1, 1},  {16, 2, 7, 7, 3, 3, 3, 1, 1},
        {1, 2, 20, 20, 4, 3, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        const conv_cfg *g = &cfgs[i];
        conv_forward_case(g, 1, 1400 + (uint32_t)i);
        conv_grad_case(g, 1420 + (uint32_t)i);
        int oh = conv_oh(g), ow = conv_ow(g);
        size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->o * g->c * g->kh * g->kw;
        size_t ny = (size_t)g->n * g->o * oh * ow;
        float *x = rnd(nx, 1440 + (uint32_t)i, -1, 1), *w = rnd(nw, 1460 + (uint32_t)i, -1, 1);
        float *r = rnd(ny, 1480 + (uint32_t)i, -1, 1);
        double *xd = to_double(x, nx), *wd = to_double(w, nw), *rd = to_double(r, ny);
        double *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
        double *db = malloc((size_t)g->o * sizeof *db);
        conv_bwd_ref(g, xd, wd, rd, dx, dw, db);
        clasp_tensor *tx = t4(g->n, g->c, g->h, g->w, x), *tw = t4(g->o, g->c, g->kh, g->kw, w);
        clasp_tensor *tdy = t4(g->n, g->o, oh, ow, r), *tdx = t4(g->n, g->c, g->h, g->w, NULL);
        assert_ok(clasp_tensor_fill(tdx, 7.0f));
        assert_ok(clasp_conv2d_backward(tx, tw, tdy, g->stride, g->pad, tdx, NULL, NULL));
        float *h = tu_read(tdx);
        char what[160];
        snprintf(what, sizeof what, "conv dx only n%d c%d %dx%d o%d k%dx%d s%d p%d", g->n, g->c,
                 g->h, g->w, g->o, g->kh, g->kw, g->stride, g->pad);
        check_close(what, h, dx, nx, 2e-5 * sqrt((double)g->o * g->kh * g->kw) + 1e-5);
        free(h);
        clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tdy);
        clasp_tensor_free(tdx);
        free(x), free(w), free(r), free(xd), free(wd), free(rd), free(dx), free(dw), free(db);
    }
}

/* One input channel with stride 1 runs the direct kernels (conv1_fwd,
 * conv1_bwd_dx; dw stays im2col + GEMM). The shapes cover output-channel
 * counts that leave a partial group of 16, rows narrower than, equal to
 * and wider than the 16-lane strips and 32-column blocks, row counts that
 * are not multiples of the 4-row blocks, and several paddings. */
static void test_conv_one_channel_direct(void **state)
{
    (void)state;
    static const conv_cfg fwd[] = {
        /* n  c   h   w   o kh kw s p */
        {2, 1, 28, 28, 32, 5, 5, 1, 2}, {3, 1, 9, 16, 17, 3, 3, 1, 1},
        {2, 1, 33, 35, 16, 5, 3, 1, 2}, {1, 1, 6, 40, 33, 3, 5, 1, 0},
        {3, 1, 17, 15, 1, 1, 1, 1, 0},  {2, 1, 5, 70, 5, 5, 5, 1, 3},
    };
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
        conv_forward_case(&fwd[i], 1, 1100 + (uint32_t)i);
        conv_forward_case(&fwd[i], 0, 1120 + (uint32_t)i);
        conv_grad_case(&fwd[i], 1140 + (uint32_t)i);
    }
    /* Finite differences through the direct input gradient, including
     * blocks that reach the first and last rows of the tensor (where the
     * kernel loads lane by lane) and a row wider than one 32-column block. */
    static const conv_cfg fd[] = {
        {2, 1, 6, 7, 3, 3, 3, 1, 1},
        {1, 1, 5, 34, 2, 3, 5, 1, 2},
        {3, 1, 9, 5, 2, 5, 3, 1, 0},
    };
    for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++)
        conv_fd_case(&fd[i], 1160 + 10 * (uint32_t)i);
}

/* The input gradient alone (what attacks ask for) and the weight gradient
 * alone on the direct path. */
static void test_conv_one_channel_partial(void **state)
{
    (void)state;
    conv_cfg g = {5, 1, 28, 28, 32, 5, 5, 1, 2};
    int oh = conv_oh(&g), ow = conv_ow(&g);
    size_t nx = (size_t)g.n * g.h * g.w, nw = (size_t)g.o * g.kh * g.kw;
    size_t ny = (size_t)g.n * g.o * oh * ow;
    float *x = rnd(nx, 21, -1, 1), *w = rnd(nw, 22, -1, 1), *r = rnd(ny, 23, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *rd = to_double(r, ny);
    double *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *db = malloc((size_t)g.o * sizeof *db);
    conv_bwd_ref(&g, xd, wd, rd, dx, dw, db);
    clasp_tensor *tx = t4(g.n, 1, g.h, g.w, x), *tw = t4(g.o, 1, g.kh, g.kw, w);
    clasp_tensor *tdy = t4(g.n, g.o, oh, ow, r);
    clasp_tensor *tdx = t4(g.n, 1, g.h, g.w, NULL), *tdw = t4(g.o, 1, g.kh, g.kw, NULL);
    assert_ok(clasp_tensor_fill(tdx, 7.0f));
    assert_ok(clasp_tensor_fill(tdw, 7.0f));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, 2, tdx, NULL, NULL));
    float *h = tu_read(tdx), *hw = tu_read(tdw);
    check_close("conv1 dx only", h, dx, nx, 1e-4);
    for (size_t i = 0; i < nw; i++) assert_true(hw[i] == 7.0f); /* untouched */
    free(h), free(hw);
    assert_ok(clasp_tensor_fill(tdx, 7.0f));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, 1, 2, NULL, tdw, NULL));
    h = tu_read(tdx), hw = tu_read(tdw);
    check_close("conv1 dw only", hw, dw, nw, 1e-3);
    for (size_t i = 0; i < nx; i++) assert_true(h[i] == 7.0f);
    free(h), free(hw);
    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tdy);
    clasp_tensor_free(tdx), clasp_tensor_free(tdw);
    free(x), free(w), free(r), free(xd), free(wd), free(rd), free(dx), free(dw), free(db);
}

/* Images large enough that the direct forward's padded planes do not fit
 * the op's scratch budget at once (several chunks on CPU devices). */
static void test_conv_one_channel_chunked(void **state)
{
    (void)state;
    conv_cfg g = {3, 1, 600, 600, 2, 3, 3, 1, 1};
    conv_forward_case(&g, 1, 1200);
}

/* Stride 1 with several channels runs im2col_s1 and col2im_s1 (vector
 * copies and masked vector gathers): rows narrower and wider than the
 * 16-lane vectors, no padding (the planes are still copied), padding wider
 * than the window's reach, and odd windows. */
static void test_conv_stride1_vector(void **state)
{
    (void)state;
    static const conv_cfg cfgs[] = {
        /* n  c   h   w  o kh kw s p */
        {2, 3, 14, 14, 5, 5, 5, 1, 2}, {1, 2, 9, 40, 3, 3, 5, 1, 0}, {3, 4, 16, 16, 2, 3, 3, 1, 1},
        {2, 3, 5, 33, 4, 1, 1, 1, 0},  {1, 2, 7, 17, 3, 5, 3, 1, 3}, {2, 5, 3, 3, 2, 3, 3, 1, 2},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        conv_forward_case(&cfgs[i], 1, 1300 + (uint32_t)i);
        conv_grad_case(&cfgs[i], 1320 + (uint32_t)i);
    }
    static const conv_cfg fd[] = {
        {1, 2, 5, 18, 2, 3, 3, 1, 1},
        {2, 3, 4, 4, 2, 3, 3, 1, 0},
        {1, 2, 6, 5, 3, 5, 5, 1, 3},
    };
    for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++)
        conv_fd_case(&fd[i], 1340 + 10 * (uint32_t)i);
}

/* ---- linear ------------------------------------------------------------ */

static void linear_case(int n, int in, int out, int with_bias, int fd, uint32_t seed)
{
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(nw, seed + 1, -1, 1), *b = rnd(out, seed + 2, -1, 1);
    float *r = rnd(ny, seed + 3, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(w, nw), *bd = to_double(b, out);
    double *rd = to_double(r, ny), *yd = malloc(ny * sizeof *yd);
    double *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *db = malloc(out * sizeof *db);
    linear_ref(n, in, out, xd, wd, with_bias ? bd : NULL, yd);
    if (fd) {
        const double h = 1e-4;
        double *ys = malloc(ny * sizeof *ys);
        struct {
            double *p, *grad;
            size_t n;
        } params[3] = {{xd, dx, nx}, {wd, dw, nw}, {bd, db, (size_t)out}};
        for (int q = 0; q < 3; q++)
            for (size_t i = 0; i < params[q].n; i++) {
                double keep = params[q].p[i];
                params[q].p[i] = keep + h;
                linear_ref(n, in, out, xd, wd, bd, ys);
                double lp = dot(rd, ys, ny);
                params[q].p[i] = keep - h;
                linear_ref(n, in, out, xd, wd, bd, ys);
                double lm = dot(rd, ys, ny);
                params[q].p[i] = keep;
                params[q].grad[i] = (lp - lm) / (2 * h);
            }
        free(ys);
    } else {
        linear_bwd_ref(n, in, out, xd, wd, rd, dx, dw, db);
    }

    clasp_tensor *tx = t2(n, in, x), *tw = t2(out, in, w), *tb = t1(out, b);
    clasp_tensor *ty = t2(n, out, NULL), *tdy = t2(n, out, r);
    clasp_tensor *tdx = t2(n, in, NULL), *tdw = t2(out, in, NULL), *tdb = t1(out, NULL);
    assert_ok(clasp_tensor_fill(tdw, 3.0f));
    assert_ok(clasp_linear_forward(tx, tw, with_bias ? tb : NULL, ty));
    assert_ok(clasp_linear_backward(tx, tw, tdy, tdx, tdw, tdb));
    float *y = tu_read(ty), *gx = tu_read(tdx), *gw = tu_read(tdw), *gb = tu_read(tdb);
    char what[96];
    snprintf(what, sizeof what, "linear n%d %d->%d bias%d %s", n, in, out, with_bias,
             fd ? "FD" : "analytic");
    double tol = 2e-5 * sqrt((double)in + n + out) + 1e-5;
    check_close(what, y, yd, ny, tol);
    check_close(what, gx, dx, nx, fd ? 1e-4 : tol);
    check_close(what, gw, dw, nw, fd ? 1e-4 : tol);
    check_close(what, gb, db, out, fd ? 1e-4 : tol);

    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tb), clasp_tensor_free(ty);
    clasp_tensor_free(tdy), clasp_tensor_free(tdx), clasp_tensor_free(tdw), clasp_tensor_free(tdb);
    free(x), free(w), free(b), free(r), free(xd), free(wd), free(bd), free(rd), free(yd);
    free(dx), free(dw), free(db), free(y), free(gx), free(gw), free(gb);
}

static void test_linear(void **state)
{
    (void)state;
    linear_case(1, 1, 1, 1, 1, 800);
    linear_case(3, 7, 5, 1, 1, 810);
    linear_case(1, 33, 3, 0, 1, 820);
    linear_case(3, 5, 31, 1, 1, 830);
    linear_case(3, 131, 67, 1, 0, 840);
    linear_case(7, 257, 129, 0, 0, 850);
}

/* A 4-d input is flattened per example: [N,C,H,W] feeds [O, C*H*W]. */
static void test_linear_flattens(void **state)
{
    (void)state;
    int n = 3, c = 4, h = 3, w = 5, in = c * h * w, out = 7;
    size_t nx = (size_t)n * in;
    float *x = rnd(nx, 900, -1, 1), *wt = rnd((size_t)out * in, 901, -1, 1);
    float *b = rnd(out, 902, -1, 1);
    double *xd = to_double(x, nx), *wd = to_double(wt, (size_t)out * in), *bd = to_double(b, out);
    double *yd = malloc((size_t)n * out * sizeof *yd);
    linear_ref(n, in, out, xd, wd, bd, yd);
    clasp_tensor *tx = t4(n, c, h, w, x), *tw = t2(out, in, wt), *tb = t1(out, b);
    clasp_tensor *ty = t2(n, out, NULL), *tdx = t4(n, c, h, w, NULL);
    assert_ok(clasp_linear_forward(tx, tw, tb, ty));
    float *y = tu_read(ty);
    check_close("linear 4-d", y, yd, (size_t)n * out, 1e-5);
    assert_ok(clasp_linear_backward(tx, tw, ty, tdx, NULL, NULL));
    clasp_tensor_free(tx), clasp_tensor_free(tw), clasp_tensor_free(tb);
    clasp_tensor_free(ty), clasp_tensor_free(tdx);
    free(x), free(wt), free(b), free(xd), free(wd), free(bd), free(yd), free(y);
}

/* ---- relu -------------------------------------------------------------- */

static void relu_case(int n, uint32_t seed)
{
    float *x = rnd((size_t)n, seed, -1, 1);
    float *r = rnd((size_t)n, seed + 1, -1, 1);
    /* Keep away from the kink so central differences are exact. */
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) < 0.05f) x[i] = x[i] < 0 ? -0.05f : 0.05f;
    double *want = malloc((size_t)n * sizeof *want), *fd = malloc((size_t)n * sizeof *fd);
    const double h = 1e-3;
    for (int i = 0; i < n; i++) {
        want[i] = x[i] > 0 ? x[i] : 0;
        double xp = x[i] + h, xm = x[i] - h;
        fd[i] = r[i] * ((xp > 0 ? xp : 0) - (xm > 0 ? xm : 0)) / (2 * h);
    }
    clasp_tensor *tx = t1(n, x), *ty = t1(n, NULL), *tdy = t1(n, r), *tdx = t1(n, NULL);
    assert_ok(clasp_relu_forward(tx, ty));
    float *y = tu_read(ty);
    check_close("relu fwd", y, want, (size_t)n, 0);
    assert_ok(clasp_relu_backward(ty, tdy, tdx));
    float *g = tu_read(tdx);
    check_close("relu bwd FD", g, fd, (size_t)n, 1e-9);
    /* In place: y = x and dx = dy. */
    assert_ok(clasp_relu_forward(tx, tx));
    float *yi = tu_read(tx);
    check_close("relu fwd in place", yi, want, (size_t)n, 0);
    assert_ok(clasp_relu_backward(ty, tdy, tdy));
    float *gi = tu_read(tdy);
    check_close("relu bwd in place", gi, fd, (size_t)n, 1e-9);
    clasp_tensor_free(tx), clasp_tensor_free(ty);
    clasp_tensor_free(tdy), clasp_tensor_free(tdx);
    free(x), free(r), free(want), free(fd), free(y), free(g), free(yi), free(gi);
}

static void test_relu(void **state)
{
    (void)state;
    static const int sizes[] = {1, 5, 255, 256, 257, 1025, 3 * 7 * 33 * 31};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        relu_case(sizes[s], 40 + 2 * (uint32_t)s);
}

/* ---- swish ------------------------------------------------------------- */

static double swish_ref(double x)
{
    return x / (1.0 + exp(-x));
}

static void swish_case(int n, uint32_t seed)
{
    float *x = rnd((size_t)n, seed, -6, 6);
    float *r = rnd((size_t)n, seed + 1, -1, 1);
    double *want = malloc((size_t)n * sizeof *want), *grad = malloc((size_t)n * sizeof *grad);
    double *fd = malloc((size_t)n * sizeof *fd);
    const double h = 1e-4;
    for (int i = 0; i < n; i++) {
        double v = x[i], sg = 1.0 / (1.0 + exp(-v));
        want[i] = swish_ref(v);
        grad[i] = r[i] * sg * (1.0 + v * (1.0 - sg));
        fd[i] = r[i] * (swish_ref(v + h) - swish_ref(v - h)) / (2 * h);
    }
    clasp_tensor *tx = t1(n, x), *ty = t1(n, NULL), *tdy = t1(n, r), *tdx = t1(n, NULL);
    assert_ok(clasp_swish_forward(tx, ty));
    float *y = tu_read(ty);
    check_close("swish fwd", y, want, (size_t)n, 1e-6);
    assert_ok(clasp_swish_backward(tx, tdy, tdx));
    float *g = tu_read(tdx);
    check_close("swish bwd", g, grad, (size_t)n, 1e-6);
    check_close("swish bwd FD", g, fd, (size_t)n, 1e-5);
    /* dx = dy in place. */
    assert_ok(clasp_swish_backward(tx, tdy, tdy));
    float *gi = tu_read(tdy);
    check_close("swish bwd in place", gi, grad, (size_t)n, 1e-6);
    /* y = x in place. */
    assert_ok(clasp_swish_forward(tx, tx));
    float *yi = tu_read(tx);
    check_close("swish fwd in place", yi, want, (size_t)n, 1e-6);
    clasp_tensor_free(tx), clasp_tensor_free(ty);
    clasp_tensor_free(tdy), clasp_tensor_free(tdx);
    free(x), free(r), free(want), free(grad), free(fd), free(y), free(g), free(yi), free(gi);
}

static void test_swish(void **state)
{
    (void)state;
    static const int sizes[] = {1, 5, 255, 256, 257, 1025, 3 * 7 * 33 * 31};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        swish_case(sizes[s], 60 + 2 * (uint32_t)s);
}

/* ---- zero padding ------------------------------------------------------ */

/* Pre-fills an output with NaN: a kernel that leaves an element unwritten fails. */
static void fill_nan(clasp_tensor *t)
{
    float *h = malloc(t->numel * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < t->numel; i++) h[i] = NAN;
    assert_ok(clasp_tensor_write(t, h));
    free(h);
}

/* Pads [n,c,h,w] by p = {l,r,t,b}; the gradient of sum(r * pad(x)) is r's
 * crop, checked against central differences of that sum (exact: linear). */
static void pad_case(int n, int c, int h, int w, const int p[4], uint32_t seed)
{
    int oh = h + p[2] + p[3], ow = w + p[0] + p[1];
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
    float *x = rnd(nx, seed, -1, 1), *r = rnd(ny, seed + 1, -1, 1);
    double *want = calloc(ny, sizeof *want), *fd = malloc(nx * sizeof *fd);
    for (size_t pl = 0; pl < (size_t)n * c; pl++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                want[(pl * oh + i + p[2]) * ow + j + p[0]] = x[(pl * h + i) * w + j];
    const double eps = 0.5;
    for (size_t k = 0; k < nx; k++) {
        /* d/dx_k sum(r * pad(x)): only the output holding x_k moves. */
        size_t pl = k / ((size_t)h * w), i = k / w % h, j = k % w;
        double rk = r[(pl * oh + i + p[2]) * ow + j + p[0]];
        fd[k] = (rk * (x[k] + eps) - rk * (x[k] - eps)) / (2 * eps);
    }
    clasp_tensor *tx = t4(n, c, h, w, x), *ty = t4(n, c, oh, ow, NULL);
    clasp_tensor *tdy = t4(n, c, oh, ow, r), *tdx = t4(n, c, h, w, NULL);
    fill_nan(ty), fill_nan(tdx);
    assert_ok(clasp_pad2d_forward(tx, p, ty));
    float *y = tu_read(ty);
    check_close("pad fwd", y, want, ny, 0);
    assert_ok(clasp_pad2d_backward(tdy, p, tdx));
    float *g = tu_read(tdx);
    check_close("pad bwd FD", g, fd, nx, 1e-6);
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(tdy), clasp_tensor_free(tdx);
    free(x), free(r), free(want), free(fd), free(y), free(g);
}

static void test_pad(void **state)
{
    (void)state;
    static const int pads[][4] = {{0, 1, 0, 1}, {1, 1, 1, 1}, {0, 0, 0, 0}, {3, 0, 2, 5}};
    for (int k = 0; k < 4; k++) pad_case(2, 3, 5, 7, pads[k], 70 + 2 * (uint32_t)k);
    pad_case(1, 1, 1, 1, pads[3], 80);
    pad_case(3, 16, 33, 31, pads[0], 82);
}

/* ---- max pool ---------------------------------------------------------- */

/* Distinct values (a shuffled ramp) so the argmax is unique and finite
 * differences never cross a switch of the maximum. */
static float *distinct_values(size_t n, uint32_t seed)
{
    float *x = malloc(n * sizeof *x), *key = rnd(n, seed, 0, 1);
    for (size_t i = 0; i < n; i++) x[i] = (float)i / (float)n * 2.0f - 1.0f;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(key[i - 1] * (float)i);
        if (j >= i) j = i - 1;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    free(key);
    return x;
}

static void pool_case_pad(int n, int c, int h, int w, int k, int s, int pad, int fd, uint32_t seed)
{
    int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1, planes = n * c;
    size_t nx = (size_t)planes * h * w, ny = (size_t)planes * oh * ow;
    float *x = distinct_values(nx, seed), *r = rnd(ny, seed + 1, -1, 1);
    double *xd = to_double(x, nx), *rd = to_double(r, ny);
    double *yd = malloc(ny * sizeof *yd), *dx = calloc(nx, sizeof *dx);
    int32_t *idx = malloc(ny * sizeof *idx);
    pool_ref_pad(planes, h, w, k, s, pad, xd, yd, idx);
    if (fd) {
        /* The spacing of the ramp is 2/nx; stay well inside it. */
        double hstep = 0.25 / (double)nx;
        double *ys = malloc(ny * sizeof *ys);
        for (size_t i = 0; i < nx; i++) {
            double keep = xd[i];
            xd[i] = keep + hstep;
            pool_ref_pad(planes, h, w, k, s, pad, xd, ys, NULL);
            double lp = dot(rd, ys, ny);
            xd[i] = keep - hstep;
            pool_ref_pad(planes, h, w, k, s, pad, xd, ys, NULL);
            double lm = dot(rd, ys, ny);
            xd[i] = keep;
            dx[i] = (lp - lm) / (2 * hstep);
        }
        free(ys);
    } else {
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh * ow; i++)
                dx[(size_t)p * h * w + idx[(size_t)p * oh * ow + i]] += rd[(size_t)p * oh * ow + i];
    }
    clasp_tensor *tx = t4(n, c, h, w, x), *ty = t4(n, c, oh, ow, NULL);
    clasp_tensor *ti = tu_tensor_i32(g_ctx, 4, (int[]){n, c, oh, ow}, NULL);
    clasp_tensor *tdy = t4(n, c, oh, ow, r), *tdx = t4(n, c, h, w, NULL);
    assert_ok(clasp_tensor_fill(tdx, 5.0f));
    assert_ok(clasp_maxpool2d_forward_pad(tx, k, s, pad, ty, ti));
    assert_ok(clasp_maxpool2d_backward(tdy, ti, tdx));
    float *y = tu_read(ty), *g = tu_read(tdx);
    int32_t *gi = malloc(ny * sizeof *gi);
    assert_ok(clasp_tensor_read(ti, gi));
    char what[96];
    snprintf(what, sizeof what, "maxpool n%d c%d %dx%d k%d s%d p%d", n, c, h, w, k, s, pad);
    check_close(what, y, yd, ny, 0);
    assert_memory_equal(gi, idx, ny * sizeof *gi);
    check_close(what, g, dx, nx, fd ? 1e-6 : 1e-6);
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(ti);
    clasp_tensor_free(tdy), clasp_tensor_free(tdx);
    free(x), free(r), free(xd), free(rd), free(yd), free(dx), free(idx), free(y), free(g), free(gi);
}

static void pool_case(int n, int c, int h, int w, int k, int s, int fd, uint32_t seed)
{
    pool_case_pad(n, c, h, w, k, s, 0, fd, seed);
}

static void test_maxpool(void **state)
{
    (void)state;
    /* Finite differences on small shapes, both window kinds. */
    pool_case(1, 1, 5, 5, 2, 2, 1, 60);
    pool_case(3, 3, 7, 7, 3, 2, 1, 61);
    pool_case(1, 7, 5, 7, 3, 2, 1, 62);
    pool_case(3, 1, 7, 5, 2, 2, 1, 63);
    pool_case(1, 1, 3, 3, 3, 2, 1, 64);
    pool_case(1, 3, 5, 5, 2, 1, 1, 65);
    /* Larger, against the reference gradient. */
    pool_case(3, 7, 31, 33, 2, 2, 0, 66);
    pool_case(3, 7, 33, 31, 3, 2, 0, 67);
    pool_case(1, 3, 33, 33, 3, 3, 0, 68);
    pool_case(2, 3, 1, 1, 1, 1, 0, 69);
}

/* Padded windows, as ImageNet ResNets' stem (3x3, stride 2, padding 1):
 * finite differences on small planes, odd and even sizes, then a stem-sized
 * map against the reference gradient. */
static void test_maxpool_pad(void **state)
{
    (void)state;
    pool_case_pad(1, 1, 5, 5, 3, 2, 1, 1, 70);
    pool_case_pad(2, 3, 6, 7, 3, 2, 1, 1, 71);
    pool_case_pad(1, 2, 4, 4, 2, 2, 1, 1, 72);
    pool_case_pad(1, 1, 1, 1, 3, 1, 1, 1, 73);
    pool_case_pad(1, 2, 7, 5, 5, 1, 2, 1, 74);
    pool_case_pad(2, 8, 56, 56, 3, 2, 1, 0, 75);
    pool_case_pad(1, 4, 57, 55, 3, 2, 1, 0, 76);
}

/* 2x2 windows with stride 2 run maxpool2_fwd (vectors of 16 outputs):
 * rows of fewer, exactly and more than 16 outputs, odd input sizes (the
 * last row or column is not pooled), planes that do not fill the last
 * group, and the tensor's last rows, where loads go lane by lane. */
static void test_maxpool_2x2(void **state)
{
    (void)state;
    pool_case(1, 1, 2, 2, 2, 2, 1, 80);
    pool_case(2, 3, 5, 35, 2, 2, 1, 81);
    pool_case(2, 32, 28, 28, 2, 2, 0, 82);
    pool_case(3, 7, 14, 14, 2, 2, 0, 83);
    pool_case(1, 5, 9, 32, 2, 2, 0, 84);
    pool_case(2, 3, 11, 71, 2, 2, 0, 85);
    pool_case(1, 1, 64, 65, 2, 2, 0, 86);
}

/* maxpool2_fwd on ties and NaN: the first maximum in scan order, and a NaN
 * never replaces the current best (maxpool_fwd's semantics). */
static void test_maxpool_2x2_ties(void **state)
{
    (void)state;
    enum { H = 4, W = 36, OH = 2, OW = 18 };
    float x[H * W];
    for (int i = 0; i < H * W; i++) x[i] = 1.0f;
    /* Window 1: the later positions tie the first. Window 2: the maximum
     * twice, second row. Window 3: NaN first, then larger values. Window
     * 17 (second vector): maximum at (1, 1). */
    x[0 * W + 3] = 2.0f, x[1 * W + 2] = 2.0f, x[1 * W + 3] = 2.0f;
    x[0 * W + 4] = 0.0f, x[0 * W + 5] = 0.0f, x[1 * W + 4] = 3.0f, x[1 * W + 5] = 3.0f;
    x[0 * W + 6] = NAN, x[0 * W + 7] = 5.0f;
    x[1 * W + 35] = 9.0f;
    clasp_tensor *tx = t4(1, 1, H, W, x), *ty = t4(1, 1, OH, OW, NULL);
    clasp_tensor *ti = tu_tensor_i32(g_ctx, 4, (int[]){1, 1, OH, OW}, NULL);
    assert_ok(clasp_maxpool2d_forward(tx, 2, 2, ty, ti));
    int32_t idx[OH * OW];
    float y[OH * OW];
    assert_ok(clasp_tensor_read(ti, idx));
    assert_ok(clasp_tensor_read(ty, y));
    int32_t want[OH * OW];
    float *xs = malloc(sizeof x);
    memcpy(xs, x, sizeof x);
    double *xd = to_double(xs, H * W), yd[OH * OW];
    pool_ref(1, H, W, 2, 2, xd, yd, want);
    assert_memory_equal(idx, want, sizeof idx);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 0 * W + 3);
    assert_int_equal(idx[2], 1 * W + 4);
    assert_int_equal(idx[3], 0 * W + 6);
    assert_true(isnan(y[3]));
    assert_int_equal(idx[17], 1 * W + 35);
    assert_true(y[17] == 9.0f);
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(ti);
    free(xs), free(xd);
}

/* Ties keep the first maximum in scan order. */
static void test_maxpool_ties(void **state)
{
    (void)state;
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = 1.0f;
    clasp_tensor *tx = t4(1, 1, 5, 5, x), *ty = t4(1, 1, 2, 2, NULL);
    clasp_tensor *ti = tu_tensor_i32(g_ctx, 4, (int[]){1, 1, 2, 2}, NULL);
    assert_ok(clasp_maxpool2d_forward(tx, 3, 2, ty, ti));
    int32_t idx[4];
    assert_ok(clasp_tensor_read(ti, idx));
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 2);
    assert_int_equal(idx[2], 10);
    assert_int_equal(idx[3], 12);
    /* idx 2, 10 and 12 are shared by two or four windows: they sum. */
    float dy[4] = {1, 2, 4, 8}, dx[25];
    clasp_tensor *tdy = t4(1, 1, 2, 2, dy), *tdx = t4(1, 1, 5, 5, NULL);
    int32_t shared[4] = {12, 12, 12, 12};
    clasp_tensor *ts = tu_tensor_i32(g_ctx, 4, (int[]){1, 1, 2, 2}, shared);
    assert_ok(clasp_maxpool2d_backward(tdy, ts, tdx));
    assert_ok(clasp_tensor_read(tdx, dx));
    for (int i = 0; i < 25; i++) assert_true(dx[i] == (i == 12 ? 15.0f : 0.0f));
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(ti);
    clasp_tensor_free(tdy), clasp_tensor_free(tdx), clasp_tensor_free(ts);
}

/* ---- bias grad --------------------------------------------------------- */

static void bias_grad_case(int ndim, const int *shape, uint32_t seed)
{
    clasp_tensor *tdy = tu_tensor(g_ctx, ndim, shape, NULL);
    size_t n = tdy->numel;
    float *dy = rnd(n, seed, -1, 1);
    assert_ok(clasp_tensor_write(tdy, dy));
    int o = shape[1];
    size_t p = n / ((size_t)shape[0] * o);
    double *want = calloc((size_t)o, sizeof *want);
    for (int i = 0; i < shape[0]; i++)
        for (int j = 0; j < o; j++)
            for (size_t q = 0; q < p; q++) want[j] += dy[((size_t)i * o + j) * p + q];
    clasp_tensor *tdb = t1(o, NULL);
    assert_ok(clasp_bias_grad(tdy, tdb));
    float *got = tu_read(tdb);
    check_close("bias_grad", got, want, (size_t)o, 1e-5 * sqrt((double)shape[0] * p) + 1e-6);
    clasp_tensor_free(tdy), clasp_tensor_free(tdb);
    free(dy), free(want), free(got);
}

static void test_bias_grad(void **state)
{
    (void)state;
    bias_grad_case(2, (int[]){1, 1}, 70);
    bias_grad_case(2, (int[]){3, 7}, 71);
    bias_grad_case(2, (int[]){128, 1024}, 72);
    bias_grad_case(4, (int[]){1, 1, 1, 1}, 73);
    bias_grad_case(4, (int[]){3, 7, 5, 7}, 74);
    bias_grad_case(4, (int[]){3, 3, 33, 31}, 75);
    bias_grad_case(4, (int[]){7, 1, 64, 65}, 76);
}

/* ---- the Madry MNIST CNN at batch 2 ----------------------------------- */

static void test_cnn_shapes(void **state)
{
    (void)state;
    conv_cfg c1 = {2, 1, 28, 28, 32, 5, 5, 1, 2}, c2 = {2, 32, 14, 14, 64, 5, 5, 1, 2};
    conv_forward_case(&c1, 1, 1000);
    conv_grad_case(&c1, 1010);
    conv_forward_case(&c2, 1, 1020);
    conv_grad_case(&c2, 1030);
    relu_case(2 * 32 * 28 * 28, 1035);
    pool_case(2, 32, 28, 28, 2, 2, 0, 1040);
    relu_case(2 * 64 * 14 * 14, 1045);
    pool_case(2, 64, 14, 14, 2, 2, 0, 1050);
    relu_case(2 * 1024, 1055);
    linear_case(2, 3136, 1024, 1, 0, 1060);
    linear_case(2, 1024, 10, 1, 0, 1070);
}

/* ---- the generic kernels ----------------------------------------------- */

/* GPUs run the per-element kernels where CPUs run the vector ones (direct
 * one-channel conv, im2col_s1, col2im_s1, maxpool2_fwd, ...);
 * the generic kernel set selects them here so both sets stay tested. */
static void test_generic_kernels(void **state)
{
    (void)state;
    tu_set_kernels(g_ctx, CLASP_KERNELS_GENERIC);
    conv_cfg c1 = {2, 1, 28, 28, 32, 5, 5, 1, 2}, c2 = {2, 32, 14, 14, 64, 5, 5, 1, 2};
    conv_forward_case(&c1, 1, 1400);
    conv_grad_case(&c1, 1410);
    conv_forward_case(&c2, 1, 1420);
    conv_grad_case(&c2, 1430);
    conv_cfg fd = {2, 2, 6, 7, 3, 3, 3, 1, 1};
    conv_fd_case(&fd, 1440);
    pool_case(2, 3, 5, 35, 2, 2, 1, 1450);
    pool_case(2, 32, 28, 28, 2, 2, 0, 1460);
    tu_set_kernels(g_ctx, CLASP_KERNELS_AUTO);
}

/* ---- shape errors ------------------------------------------------------ */

static void expect_invalid(clasp_status st, const char *needle)
{
    assert_int_equal(st, CLASP_ERR_INVALID);
    if (!strstr(clasp_last_error(), needle))
        fail_msg("error '%s' does not mention '%s'", clasp_last_error(), needle);
}

static void test_shape_errors(void **state)
{
    (void)state;
    clasp_tensor *x = t4(2, 1, 8, 8, NULL), *w = t4(4, 3, 3, 3, NULL), *w1 = t4(4, 1, 3, 3, NULL);
    clasp_tensor *b = t1(4, NULL), *b5 = t1(5, NULL), *y = t4(2, 4, 8, 8, NULL);
    clasp_tensor *ybad = t4(2, 4, 6, 6, NULL), *x3 = t2(2, 64, NULL);
    expect_invalid(clasp_conv2d_forward(x, w, b, 1, 1, y), "w has 3 input channels, x has 1");
    expect_invalid(clasp_conv2d_forward(x, w1, b5, 1, 1, y), "b has 5 elements, expected 4");
    expect_invalid(clasp_conv2d_forward(x, w1, b, 1, 1, ybad),
                   "y has shape [2,4,6,6], expected [2,4,8,8]");
    expect_invalid(clasp_conv2d_forward(x, w1, b, 0, 1, y), "stride");
    expect_invalid(clasp_conv2d_forward(x, w1, b, 1, -1, y), "pad");
    expect_invalid(clasp_conv2d_forward(x3, w1, b, 1, 1, y), "x has 2 dimensions");
    expect_invalid(clasp_conv2d_backward(x, w1, ybad, 1, 1, NULL, NULL, NULL), "dy has shape");
    expect_invalid(clasp_conv2d_backward(x, w1, y, 1, 1, y, NULL, NULL), "dx has shape");
    expect_invalid(clasp_conv2d_backward(x, w1, y, 1, 1, NULL, w, NULL), "dw has shape");
    expect_invalid(clasp_conv2d_backward(x, w1, y, 1, 1, NULL, NULL, b5), "db has 5 elements");

    clasp_tensor *lx = t2(3, 10, NULL), *lw = t2(6, 11, NULL), *lw2 = t2(6, 10, NULL);
    clasp_tensor *ly = t2(3, 6, NULL), *ly2 = t2(3, 5, NULL), *lb = t1(6, NULL);
    expect_invalid(clasp_linear_forward(lx, lw, lb, ly), "w has 11 inputs, x has 10 features");
    expect_invalid(clasp_linear_forward(lx, lw2, b, ly), "b has 4 elements, expected 6");
    expect_invalid(clasp_linear_forward(lx, lw2, lb, ly2), "y is [3,5], expected [3,6]");
    expect_invalid(clasp_linear_backward(lx, lw2, ly2, NULL, NULL, NULL), "dy is [3,5]");
    expect_invalid(clasp_linear_backward(lx, lw2, ly, ly, NULL, NULL),
                   "dx is [3,6], expected [3,10]");
    expect_invalid(clasp_linear_backward(lx, lw2, ly, NULL, lw, NULL), "dw is [6,11]");

    expect_invalid(clasp_relu_forward(lx, ly), "relu: x has 30 elements, y has 18");
    expect_invalid(clasp_relu_backward(ly, lx, ly), "relu_backward");

    clasp_tensor *py = t4(2, 1, 4, 4, NULL);
    clasp_tensor *pi = tu_tensor_i32(g_ctx, 4, (int[]){2, 1, 4, 4}, NULL);
    clasp_tensor *pi3 = tu_tensor_i32(g_ctx, 4, (int[]){2, 1, 3, 3}, NULL);
    expect_invalid(clasp_maxpool2d_forward(x, 3, 2, py, pi), "y is [2,1,4,4], expected [2,1,3,3]");
    expect_invalid(clasp_maxpool2d_forward(x, 2, 2, py, py), "idx must be int32");
    expect_invalid(clasp_maxpool2d_forward(x, 2, 2, py, pi3), "idx must have y's shape");
    expect_invalid(clasp_maxpool2d_forward(x, 0, 2, py, pi), "window");
    expect_invalid(clasp_maxpool2d_forward_pad(x, 3, 2, 2, py, pi), "padding 2 must be");
    expect_invalid(clasp_maxpool2d_backward(py, pi3, x), "dy and idx shapes differ");
    expect_invalid(clasp_maxpool2d_backward(py, pi, y), "dx is [2,4,...], dy is [2,1,...]");

    expect_invalid(clasp_bias_grad(y, b5), "db has 5 elements, expected 4");
    expect_invalid(clasp_bias_grad(b, b), "dy has 1 dimensions");

    clasp_tensor *all[] = {x, w, w1, b, b5, y, ybad, x3, lx, lw, lw2, ly, ly2, lb, py, pi, pi3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    /* Zero padding. */
    int bad[4] = {0, -1, 0, 0};
    clasp_tensor *pa = t4(1, 1, 2, 2, NULL), *pb = t4(1, 1, 3, 3, NULL);
    expect_invalid(clasp_pad2d_forward(pa, bad, pb), "padding 0,-1,0,0 must be >= 0");
    int one[4] = {1, 1, 1, 1};
    expect_invalid(clasp_pad2d_forward(pa, one, pb), "y is [1,1,3,3], expected [1,1,4,4]");
    expect_invalid(clasp_pad2d_backward(pb, one, pa), "dy is [1,1,3,3], expected [1,1,4,4]");
    clasp_tensor_free(pa), clasp_tensor_free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_shapes),
        cmocka_unit_test(test_conv_backward_fd),
        cmocka_unit_test(test_conv_backward_larger),
        cmocka_unit_test(test_conv_backward_partial),
        cmocka_unit_test(test_conv_backward_deterministic),
        cmocka_unit_test(test_conv_chunked),
        cmocka_unit_test(test_conv_one_channel_direct),
        cmocka_unit_test(test_conv_one_channel_partial),
        cmocka_unit_test(test_conv_one_channel_chunked),
        cmocka_unit_test(test_conv_stride1_vector),
        cmocka_unit_test(test_conv_packed),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_flattens),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_swish),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_ties),
        cmocka_unit_test(test_maxpool_pad),
        cmocka_unit_test(test_conv_1x1),
        cmocka_unit_test(test_maxpool_2x2),
        cmocka_unit_test(test_maxpool_2x2_ties),
        cmocka_unit_test(test_bias_grad),
        cmocka_unit_test(test_cnn_shapes),
        cmocka_unit_test(test_generic_kernels),
        cmocka_unit_test(test_shape_errors),
    };
    return cmocka_run_group_tests(tests, tu_setup_ctx, tu_teardown_ctx);
}
