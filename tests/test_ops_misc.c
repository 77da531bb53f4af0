/* Losses, elementwise ops, reductions, optimisers and random numbers
 * against plain C references.
 *
 * Ops whose device arithmetic is exact or a single rounding (clamps,
 * projections, sign steps, scaling, copies, argmax, uniform random numbers)
 * must match the reference bit for bit; the rest (anything with exp, log,
 * sqrt, tanh, or a multiply-add the device may fuse) are compared with
 * double-precision references within a small tolerance. Loss gradients are
 * checked against central finite differences of the double-precision loss.
 * Sizes are odd on purpose (1, 3, 7, 31, 33, 1001) so that partial
 * work-groups are exercised. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"

/* All tests here share one context. */
#define g_ctx tu_shared_ctx

static const int k_sizes[] = {1, 3, 7, 31, 33, 1001};
#define N_SIZES (sizeof k_sizes / sizeof k_sizes[0])

static float *rnd(size_t n, uint32_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    tu_fill_random(x, n, seed, lo, hi);
    return x;
}

static clasp_tensor *vec(size_t n, const float *host)
{
    return tu_tensor(g_ctx, 1, (int[]){(int)n}, host);
}

static clasp_tensor *mat(int n, int k, const float *host)
{
    return tu_tensor(g_ctx, 2, (int[]){n, k}, host);
}

static clasp_tensor *ivec(size_t n, const int32_t *host)
{
    return tu_tensor_i32(g_ctx, 1, (int[]){(int)n}, host);
}

static void read_i32(const clasp_tensor *t, int32_t *out)
{
    assert_ok(clasp_tensor_read(t, out));
}

/* Fails with the first differing index when a and b differ in any bit. */
static void check_exact(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu is %.9g, expected %.9g", what, i, (double)got[i],
                     (double)want[i]);
}

/* |got - want| <= tol * max(1, |want|) everywhere. */
static void check_close(const char *what, const float *got, const double *want, size_t n,
                        double tol)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double s = fabs(want[i]) > 1 ? fabs(want[i]) : 1;
        if (!(d <= tol * s))
            fail_msg("%s: element %zu is %.9g, expected %.9g (tolerance %g)", what, i,
                     (double)got[i], want[i], tol);
    }
}

static float fsign(float g)
{
    return g > 0 ? 1.0f : g < 0 ? -1.0f : 0.0f;
}

/* ---- elementwise ------------------------------------------------------ */

static void test_clamp_project_sign(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = (size_t)k_sizes[s];
        float *x = rnd(n, 1 + (uint32_t)s, -2, 2), *x0 = rnd(n, 50 + (uint32_t)s, -1, 1);
        float *g = rnd(n, 100 + (uint32_t)s, -1, 1);
        for (size_t i = 0; i < n; i += 3) g[i] = 0; /* sign(0) = 0 */
        float *want = malloc(n * sizeof *want);
        assert_non_null(want);

        clasp_tensor *tx = vec(n, x), *t0 = vec(n, x0), *tg = vec(n, g);
        assert_ok(clasp_clamp(tx, -0.5f, 0.75f));
        for (size_t i = 0; i < n; i++) want[i] = fminf(fmaxf(x[i], -0.5f), 0.75f);
        float *got = tu_read(tx);
        check_exact("clamp", got, want, n);
        free(got);

        assert_ok(clasp_tensor_write(tx, x));
        assert_ok(clasp_project_linf(tx, t0, 0.3f));
        for (size_t i = 0; i < n; i++) want[i] = fminf(fmaxf(x[i], x0[i] - 0.3f), x0[i] + 0.3f);
        got = tu_read(tx);
        check_exact("project_linf", got, want, n);
        free(got);

        assert_ok(clasp_tensor_write(tx, x));
        assert_ok(clasp_sign_step(tx, tg, 0.01f));
        for (size_t i = 0; i < n; i++) want[i] = x[i] + 0.01f * fsign(g[i]);
        got = tu_read(tx);
        check_exact("sign_step", got, want, n);
        free(got);

        clasp_tensor_free(tx);
        clasp_tensor_free(t0);
        clasp_tensor_free(tg);
        free(x);
        free(x0);
        free(g);
        free(want);
    }
}

/* The fused step must equal the three separate ops exactly, and keep x in
 * [x0 - eps, x0 + eps] intersected with [lo, hi] over several steps. */
static void test_pgd_step(void **state)
{
    (void)state;
    const float alpha = 0.01f, eps = 0.03f, lo = 0.0f, hi = 1.0f;
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = (size_t)k_sizes[s];
        float *x0 = rnd(n, 7 + (uint32_t)s, 0, 1);
        /* Some pixels sit on the box edges, where the clamp matters. */
        for (size_t i = 0; i < n; i += 5) x0[i] = (i / 5) % 2 ? 1.0f : 0.0f;
        clasp_tensor *fused = vec(n, x0), *sep = vec(n, x0), *t0 = vec(n, x0);
        clasp_tensor *tg = vec(n, NULL);
        for (int step = 0; step < 4; step++) {
            float *g = rnd(n, 1000 + 17 * (uint32_t)step + (uint32_t)s, -1, 1);
            for (size_t i = (size_t)step; i < n; i += 4) g[i] = 0;
            assert_ok(clasp_tensor_write(tg, g));
            assert_ok(clasp_pgd_step(fused, tg, t0, alpha, eps, lo, hi));
            assert_ok(clasp_sign_step(sep, tg, alpha));
            assert_ok(clasp_project_linf(sep, t0, eps));
            assert_ok(clasp_clamp(sep, lo, hi));
            float *a = tu_read(fused), *b = tu_read(sep);
            check_exact("pgd_step vs sign_step+project+clamp", a, b, n);
            for (size_t i = 0; i < n; i++) {
                if (!(a[i] >= x0[i] - eps && a[i] <= x0[i] + eps && a[i] >= lo && a[i] <= hi))
                    fail_msg("pgd_step: x[%zu] = %.9g leaves the feasible set (x0 %.9g)", i,
                             (double)a[i], (double)x0[i]);
            }
            free(a);
            free(b);
            free(g);
        }
        clasp_tensor_free(fused);
        clasp_tensor_free(sep);
        clasp_tensor_free(t0);
        clasp_tensor_free(tg);
        free(x0);
    }
}

static void test_blas1(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = (size_t)k_sizes[s];
        float *a = rnd(n, 3 + (uint32_t)s, -2, 2), *b = rnd(n, 30 + (uint32_t)s, -2, 2);
        double *want = malloc(n * sizeof *want);
        float *wantf = malloc(n * sizeof *wantf);
        assert_non_null(want);
        assert_non_null(wantf);
        clasp_tensor *ta = vec(n, a), *tb = vec(n, b), *to = vec(n, NULL);

        assert_ok(clasp_axpy(ta, -0.7f, tb));
        for (size_t i = 0; i < n; i++) want[i] = (double)a[i] + -0.7 * (double)b[i];
        float *got = tu_read(ta);
        check_close("axpy", got, want, n, 1e-6);
        free(got);

        assert_ok(clasp_tensor_write(ta, a));
        assert_ok(clasp_scale(ta, 1.3f));
        for (size_t i = 0; i < n; i++) wantf[i] = a[i] * 1.3f;
        got = tu_read(ta);
        check_exact("scale", got, wantf, n);
        free(got);

        assert_ok(clasp_tensor_write(ta, a));
        assert_ok(clasp_add_scaled(ta, 2.5f, tb, to));
        for (size_t i = 0; i < n; i++) want[i] = (double)a[i] + 2.5 * (double)b[i];
        got = tu_read(to);
        check_close("add_scaled", got, want, n, 1e-6);
        free(got);
        /* out aliasing a, then b */
        assert_ok(clasp_add_scaled(ta, 2.5f, tb, ta));
        got = tu_read(ta);
        check_close("add_scaled (out = a)", got, want, n, 1e-6);
        free(got);
        assert_ok(clasp_tensor_write(ta, a));
        assert_ok(clasp_add_scaled(ta, 2.5f, tb, tb));
        got = tu_read(tb);
        check_close("add_scaled (out = b)", got, want, n, 1e-6);
        free(got);

        assert_ok(clasp_tensor_write(tb, b));
        assert_ok(clasp_mul(ta, tb, to));
        for (size_t i = 0; i < n; i++) wantf[i] = a[i] * b[i];
        got = tu_read(to);
        check_exact("mul", got, wantf, n);
        free(got);
        assert_ok(clasp_mul(ta, tb, tb));
        got = tu_read(tb);
        check_exact("mul (out = b)", got, wantf, n);
        free(got);

        clasp_tensor_free(ta);
        clasp_tensor_free(tb);
        clasp_tensor_free(to);
        free(a);
        free(b);
        free(want);
        free(wantf);
    }
}

static void test_per_sample(void **state)
{
    (void)state;
    static const int shapes[][4] = {{1, 1, 1, 1},
                                    {3, 1, 1, 7},
                                    {7, 3, 5, 5},
                                    {33, 1, 31, 1},
                                    {5, 3, 32, 32}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int *sh = shapes[c];
        int n = sh[0];
        size_t d = (size_t)sh[1] * (size_t)sh[2] * (size_t)sh[3], total = (size_t)n * d;
        float *x = rnd(total, 11 + (uint32_t)c, -1, 1), *sv = rnd((size_t)n, 12, -2, 2);
        clasp_tensor *tx = tu_tensor(g_ctx, 4, sh, x), *ts = vec((size_t)n, sv);
        clasp_tensor *to = vec((size_t)n, NULL);

        assert_ok(clasp_l2_norm_per_sample(tx, to));
        double *want = malloc(total * sizeof *want);
        float *wantf = malloc(total * sizeof *wantf);
        assert_non_null(want);
        assert_non_null(wantf);
        for (int i = 0; i < n; i++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++) acc += (double)x[i * d + j] * x[i * d + j];
            want[i] = sqrt(acc);
        }
        float *got = tu_read(to);
        check_close("l2_norm_per_sample", got, want, (size_t)n, 1e-5);
        free(got);

        assert_ok(clasp_scale_per_sample(tx, ts));
        for (size_t i = 0; i < total; i++) wantf[i] = x[i] * sv[i / d];
        got = tu_read(tx);
        check_exact("scale_per_sample", got, wantf, total);
        free(got);

        /* select_rows: every other example (and the last) replaced. */
        int32_t *mask = malloc((size_t)n * sizeof *mask);
        assert_non_null(mask);
        for (int i = 0; i < n; i++) mask[i] = (i % 2 == 0 || i == n - 1) ? (i + 1) * 3 : 0;
        float *src = rnd(total, 13 + (uint32_t)c, 5, 6);
        clasp_tensor *tsrc = tu_tensor(g_ctx, 4, sh, src), *tm = ivec((size_t)n, mask);
        assert_ok(clasp_tensor_write(tx, x));
        assert_ok(clasp_select_rows(tx, tsrc, tm));
        for (size_t i = 0; i < total; i++) wantf[i] = mask[i / d] ? src[i] : x[i];
        got = tu_read(tx);
        check_exact("select_rows", got, wantf, total);
        free(got);

        clasp_tensor_free(tx);
        clasp_tensor_free(ts);
        clasp_tensor_free(to);
        clasp_tensor_free(tsrc);
        clasp_tensor_free(tm);
        free(x);
        free(sv);
        free(src);
        free(mask);
        free(want);
        free(wantf);
    }
}

static void test_select_rows_i32(void **state)
{
    (void)state;
    int32_t dst[6] = {1, 2, 3, 4, 5, 6}, src[6] = {-1, -2, -3, -4, -5, -6}, mask[3] = {0, 1, 0};
    int sh[2] = {3, 2};
    clasp_tensor *td = tu_tensor_i32(g_ctx, 2, sh, dst), *ts = tu_tensor_i32(g_ctx, 2, sh, src);
    clasp_tensor *tm = ivec(3, mask);
    assert_ok(clasp_select_rows(td, ts, tm));
    int32_t got[6];
    read_i32(td, got);
    const int32_t want[6] = {1, 2, -3, -4, 5, 6};
    assert_memory_equal(got, want, sizeof want);
    clasp_tensor_free(td);
    clasp_tensor_free(ts);
    clasp_tensor_free(tm);
}

static void test_logit_adjust(void **state)
{
    (void)state;
    static const int ns[] = {1, 7, 1001};
    for (size_t c = 0; c < 3; c++) {
        int n = ns[c], k = 10;
        size_t total = (size_t)n * (size_t)k;
        float *z = rnd(total, 21, -5, 5), *b = rnd((size_t)k, 22, -1, 1);
        clasp_tensor *tz = mat(n, k, z), *tb = vec((size_t)k, b);
        assert_ok(clasp_logit_adjust(tz, tb, 1.0f));
        float *wantf = malloc(total * sizeof *wantf);
        double *want = malloc(total * sizeof *want);
        assert_non_null(wantf);
        assert_non_null(want);
        for (size_t i = 0; i < total; i++) wantf[i] = z[i] + b[i % (size_t)k];
        float *got = tu_read(tz);
        check_exact("logit_adjust t=1", got, wantf, total);
        free(got);
        assert_ok(clasp_tensor_write(tz, z));
        assert_ok(clasp_logit_adjust(tz, tb, 3.0f));
        for (size_t i = 0; i < total; i++) want[i] = ((double)z[i] + b[i % (size_t)k]) / 3.0;
        got = tu_read(tz);
        check_close("logit_adjust t=3", got, want, total, 1e-6);
        free(got);
        clasp_tensor_free(tz);
        clasp_tensor_free(tb);
        free(z);
        free(b);
        free(want);
        free(wantf);
    }
}

static void test_tanh_box(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = (size_t)k_sizes[s];
        float *w = rnd(n, 31 + (uint32_t)s, -4, 4), *dx = rnd(n, 32 + (uint32_t)s, -1, 1);
        float *x = rnd(n, 33 + (uint32_t)s, 0, 1);
        x[0] = 0.0f; /* the box edges hit the atanh clamp */
        if (n > 1) x[n - 1] = 1.0f;
        double *want = malloc(n * sizeof *want);
        assert_non_null(want);
        clasp_tensor *tw = vec(n, w), *tdx = vec(n, dx), *tx = vec(n, NULL), *tout = vec(n, NULL);

        assert_ok(clasp_tanh_to_box(tw, tx));
        for (size_t i = 0; i < n; i++) want[i] = (tanh((double)w[i]) + 1) / 2;
        float *got = tu_read(tx);
        check_close("tanh_to_box", got, want, n, 2e-6);
        free(got);

        assert_ok(clasp_tanh_to_box_backward(tw, tdx, tout));
        for (size_t i = 0; i < n; i++) {
            double t = tanh((double)w[i]);
            want[i] = dx[i] * (1 - t * t) / 2;
        }
        got = tu_read(tout);
        check_close("tanh_to_box_backward", got, want, n, 2e-6);
        free(got);

        assert_ok(clasp_tensor_write(tx, x));
        assert_ok(clasp_box_to_tanh(tx, tout));
        for (size_t i = 0; i < n; i++) {
            /* The clamp is applied in float on both sides; only atanh of the
             * same float argument is compared. */
            float v = 2.0f * x[i] - 1.0f;
            v = fminf(fmaxf(v, -1.0f + 1e-6f), 1.0f - 1e-6f);
            want[i] = atanh((double)v);
        }
        got = tu_read(tout);
        check_close("box_to_tanh", got, want, n, 1e-5);
        for (size_t i = 0; i < n; i++) assert_true(isfinite(got[i]));
        free(got);
        /* Round trip back into the box. */
        assert_ok(clasp_tanh_to_box(tout, tw));
        got = tu_read(tw);
        for (size_t i = 0; i < n; i++) want[i] = x[i];
        check_close("box_to_tanh then tanh_to_box", got, want, n, 2e-6);
        free(got);

        clasp_tensor_free(tw);
        clasp_tensor_free(tdx);
        clasp_tensor_free(tx);
        clasp_tensor_free(tout);
        free(w);
        free(dx);
        free(x);
        free(want);
    }
}

/* ---- reductions and indexing ----------------------------------------- */

static void test_sum(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 3, 7, 31, 33, 1001, 100003, (1u << 20) + 7};
    clasp_tensor *out = vec(1, NULL);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        size_t n = ns[c];
        /* An offset makes cancellation-free accumulation matter. */
        float *x = rnd(n, 41 + (uint32_t)c, 0.5f, 1.5f);
        clasp_tensor *tx = vec(n, x);
        double want = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            want += x[i];
            mag += fabs((double)x[i]);
        }
        assert_ok(clasp_sum(tx, out));
        float got1, got2;
        assert_ok(clasp_tensor_read(out, &got1));
        if (!(fabs((double)got1 - want) <= 1e-6 * mag + 1e-7))
            fail_msg("sum of %zu: %.9g, expected %.12g", n, (double)got1, want);
        /* Same device, same data: the same bits. */
        assert_ok(clasp_sum(tx, out));
        assert_ok(clasp_tensor_read(out, &got2));
        assert_memory_equal(&got1, &got2, sizeof got1);
        clasp_tensor_free(tx);
        free(x);
    }
    /* Signed data and an empty tensor. */
    float *x = rnd(1001, 49, -1, 1);
    clasp_tensor *tx = vec(1001, x);
    double want = 0;
    for (int i = 0; i < 1001; i++) want += x[i];
    float got;
    assert_ok(clasp_sum(tx, out));
    assert_ok(clasp_tensor_read(out, &got));
    assert_true(fabs((double)got - want) <= 1e-5);
    clasp_tensor *empty = vec(0, NULL);
    assert_ok(clasp_sum(empty, out));
    assert_ok(clasp_tensor_read(out, &got));
    assert_true(got == 0.0f);
    clasp_tensor_free(empty);
    clasp_tensor_free(tx);
    clasp_tensor_free(out);
    free(x);
}

static void test_argmax_rows(void **state)
{
    (void)state;
    static const int ns[] = {1, 7, 1001}, ks[] = {1, 3, 10, 33};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 4; b++) {
            int n = ns[a], k = ks[b];
            size_t total = (size_t)n * (size_t)k;
            float *z = rnd(total, 51 + (uint32_t)(a * 4 + b), -3, 3);
            /* Ties: some rows get their max copied to a later column, others
             * to an earlier one; a few rows are all equal. */
            for (int i = 0; i < n; i++) {
                float *r = z + (size_t)i * (size_t)k;
                if (i % 3 == 1 && k > 1) r[k - 1] = r[0] = 10.0f;
                if (i % 3 == 2 && k > 2) r[1] = r[k - 1] = 11.0f;
                if (i % 7 == 6)
                    for (int j = 0; j < k; j++) r[j] = -1.0f;
            }
            clasp_tensor *tz = mat(n, k, z), *to = ivec((size_t)n, NULL);
            assert_ok(clasp_argmax_rows(tz, to));
            int32_t *got = malloc((size_t)n * sizeof *got);
            assert_non_null(got);
            read_i32(to, got);
            for (int i = 0; i < n; i++) {
                const float *r = z + (size_t)i * (size_t)k;
                int best = 0;
                for (int j = 1; j < k; j++)
                    if (r[j] > r[best]) best = j;
                if (got[i] != best)
                    fail_msg("argmax_rows n=%d k=%d row %d: %d, expected %d", n, k, i, got[i],
                             best);
            }
            clasp_tensor_free(tz);
            clasp_tensor_free(to);
            free(z);
            free(got);
        }
}

static void test_gather(void **state)
{
    (void)state;
    /* float rows, 4-d source */
    int m = 7, d = 3 * 5;
    float *src = rnd((size_t)(m * d), 61, -1, 1);
    clasp_tensor *ts = tu_tensor(g_ctx, 4, (int[]){m, 3, 5, 1}, src);
    int32_t idx[9] = {6, 0, 0, 3, 6, 1, 2, 5, 4};
    clasp_tensor *ti = ivec(9, idx);
    clasp_tensor *td = tu_tensor(g_ctx, 4, (int[]){9, 3, 5, 1}, NULL);
    assert_ok(clasp_gather_rows(ts, ti, td));
    float *got = tu_read(td);
    float *want = malloc((size_t)(9 * d) * sizeof *want);
    assert_non_null(want);
    for (int i = 0; i < 9; i++) memcpy(want + i * d, src + idx[i] * d, (size_t)d * sizeof *want);
    check_exact("gather_rows f32", got, want, (size_t)(9 * d));
    free(got);

    /* int32 rows, and an out-of-range index giving zeros */
    int32_t isrc[4 * 3];
    for (int i = 0; i < 12; i++) isrc[i] = 100 * (i / 3) + i % 3;
    clasp_tensor *tis = tu_tensor_i32(g_ctx, 2, (int[]){4, 3}, isrc);
    int32_t idx2[5] = {3, 1, 99, -1, 3};
    clasp_tensor *ti2 = ivec(5, idx2);
    clasp_tensor *tid = tu_tensor_i32(g_ctx, 2, (int[]){5, 3}, NULL);
    assert_ok(clasp_gather_rows(tis, ti2, tid));
    int32_t igot[15];
    read_i32(tid, igot);
    const int32_t iwant[15] = {300, 301, 302, 100, 101, 102, 0, 0, 0, 0, 0, 0, 300, 301, 302};
    assert_memory_equal(igot, iwant, sizeof iwant);

    /* dtype mismatch is refused */
    assert_int_equal(clasp_gather_rows(ts, ti, tid), CLASP_ERR_INVALID);

    /* per-class weights to per-sample weights */
    float table[10];
    for (int i = 0; i < 10; i++) table[i] = 0.5f + (float)i;
    int32_t y[33];
    for (int i = 0; i < 33; i++) y[i] = (i * 7) % 10;
    clasp_tensor *tt = vec(10, table), *ty = ivec(33, y), *tw = vec(33, NULL);
    assert_ok(clasp_gather_class(tt, ty, tw));
    got = tu_read(tw);
    for (int i = 0; i < 33; i++) assert_true(got[i] == table[y[i]]);
    free(got);

    clasp_tensor_free(ts);
    clasp_tensor_free(ti);
    clasp_tensor_free(td);
    clasp_tensor_free(tis);
    clasp_tensor_free(ti2);
    clasp_tensor_free(tid);
    clasp_tensor_free(tt);
    clasp_tensor_free(ty);
    clasp_tensor_free(tw);
    free(src);
    free(want);
}

/* ---- losses ----------------------------------------------------------- */

/* Per-row reference in double: w * (logsumexp(z/t) - z_y/t). */
static double ref_xent(const double *z, int k, int y, double t, double w)
{
    double m = z[0];
    for (int j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
    double s = 0;
    for (int j = 0; j < k; j++) s += exp((z[j] - m) / t);
    return w * (log(s) - (z[y] - m) / t);
}

/* Plain cross-entropy without temperature or weights: -log softmax(z)_y,
 * written independently of ref_xent. */
static double ref_plain_ce(const double *z, int k, int y)
{
    double m = z[0];
    for (int j = 1; j < k; j++) m = fmax(m, z[j]);
    double s = 0;
    for (int j = 0; j < k; j++) s += exp(z[j] - m);
    return -log(exp(z[y] - m) / s);
}

/* Central differences of f over one row, written into g[k]. */
typedef double (*row_fn)(const double *z, int k, const void *ctx);

static void numeric_grad(row_fn f, const double *z, int k, const void *ctx, double *g)
{
    double zz[64];
    assert_true(k <= 64);
    memcpy(zz, z, (size_t)k * sizeof *zz);
    for (int j = 0; j < k; j++) {
        double h = 1e-5 * fmax(1.0, fabs(z[j]));
        zz[j] = z[j] + h;
        double fp = f(zz, k, ctx);
        zz[j] = z[j] - h;
        double fm = f(zz, k, ctx);
        zz[j] = z[j];
        g[j] = (fp - fm) / (2 * h);
    }
}

typedef struct xent_args {
    int y;
    double t, w;
} xent_args;

static double xent_fn(const double *z, int k, const void *ctx)
{
    const xent_args *a = ctx;
    return ref_xent(z, k, a->y, a->t, a->w);
}

static void test_softmax_xent(void **state)
{
    (void)state;
    static const int ns[] = {1, 7, 33, 1001};
    static const float ts[] = {0.5f, 1.0f, 3.0f};
    const int k = 10;
    const float gs = 0.25f;
    for (size_t a = 0; a < 4; a++) {
        int n = ns[a];
        size_t total = (size_t)n * (size_t)k;
        float *z = rnd(total, 71 + (uint32_t)a, -6, 6), *w = rnd((size_t)n, 72, 0.1f, 2.0f);
        int32_t *y = malloc((size_t)n * sizeof *y);
        assert_non_null(y);
        for (int i = 0; i < n; i++) y[i] = (i * 3 + 1) % k;
        clasp_tensor *tz = mat(n, k, z), *ty = ivec((size_t)n, y), *tw = vec((size_t)n, w);
        clasp_tensor *tl = vec((size_t)n, NULL), *tdz = mat(n, k, NULL);
        double *wl = malloc((size_t)n * sizeof *wl), *wdz = malloc(total * sizeof *wdz);
        assert_non_null(wl);
        assert_non_null(wdz);
        for (size_t ti = 0; ti < 3; ti++)
            for (int weighted = 0; weighted < 2; weighted++) {
                float t = ts[ti];
                assert_ok(clasp_softmax_xent(tz, ty, t, weighted ? tw : NULL, gs, tl, tdz));
                float *gl = tu_read(tl), *gdz = tu_read(tdz);
                for (int i = 0; i < n; i++) {
                    double zr[10];
                    for (int j = 0; j < k; j++) zr[j] = z[(size_t)i * (size_t)k + (size_t)j];
                    xent_args xa = {y[i], t, weighted ? w[i] : 1.0};
                    wl[i] = xent_fn(zr, k, &xa);
                    numeric_grad(xent_fn, zr, k, &xa, wdz + (size_t)i * (size_t)k);
                    for (int j = 0; j < k; j++) wdz[(size_t)i * (size_t)k + (size_t)j] *= gs;
                    if (t == 1.0f && !weighted) {
                        double ce = ref_plain_ce(zr, k, y[i]);
                        if (!(fabs(gl[i] - ce) <= 1e-5 * fmax(1, ce)))
                            fail_msg("softmax_xent T=1 row %d: %.9g, plain CE %.9g", i,
                                     (double)gl[i], ce);
                    }
                }
                char what[96];
                snprintf(what, sizeof what, "softmax_xent loss n=%d T=%g w=%d", n, (double)t,
                         weighted);
                check_close(what, gl, wl, (size_t)n, 1e-5);
                snprintf(what, sizeof what, "softmax_xent dz vs finite differences n=%d T=%g w=%d",
                         n, (double)t, weighted);
                check_close(what, gdz, wdz, total, 2e-5);
                free(gl);
                free(gdz);
            }
        /* Loss only and gradient only give the same numbers. */
        assert_ok(clasp_softmax_xent(tz, ty, 3.0f, tw, gs, tl, tdz));
        float *l_both = tu_read(tl), *d_both = tu_read(tdz);
        assert_ok(clasp_tensor_fill(tl, 0));
        assert_ok(clasp_tensor_fill(tdz, 0));
        assert_ok(clasp_softmax_xent(tz, ty, 3.0f, tw, gs, tl, NULL));
        assert_ok(clasp_softmax_xent(tz, ty, 3.0f, tw, gs, NULL, tdz));
        float *l_one = tu_read(tl), *d_one = tu_read(tdz);
        check_exact("softmax_xent loss alone", l_one, l_both, (size_t)n);
        check_exact("softmax_xent dz alone", d_one, d_both, total);
        free(l_both);
        free(d_both);
        free(l_one);
        free(d_one);

        clasp_tensor_free(tz);
        clasp_tensor_free(ty);
        clasp_tensor_free(tw);
        clasp_tensor_free(tl);
        clasp_tensor_free(tdz);
        free(z);
        free(w);
        free(y);
        free(wl);
        free(wdz);
    }
}

/* Logits far beyond exp's range still give finite, exact losses. */
static void test_softmax_xent_extreme(void **state)
{
    (void)state;
    const int n = 4, k = 3;
    float z[12] = {1e30f, -1e30f,   0.0f,   /* y = 1: loss 2e30 / T */
                   1e30f, -1e30f,   0.0f,   /* y = 0: loss 0 */
                   1e4f,  1e4f - 1, -1e4f,  /* y = 1 */
                   -1e4f, -1e4f,    -1e4f}; /* y = 2: log 3 */
    int32_t y[4] = {1, 0, 1, 2};
    clasp_tensor *tz = mat(n, k, z), *ty = ivec(4, y), *tl = vec(4, NULL), *tdz = mat(n, k, NULL);
    for (int ti = 0; ti < 2; ti++) {
        float t = ti ? 0.5f : 1.0f;
        assert_ok(clasp_softmax_xent(tz, ty, t, NULL, 1.0f, tl, tdz));
        float *gl = tu_read(tl), *gdz = tu_read(tdz);
        double want[4];
        for (int i = 0; i < n; i++) {
            double zr[3] = {z[3 * i], z[3 * i + 1], z[3 * i + 2]};
            want[i] = ref_xent(zr, k, y[i], t, 1.0);
        }
        check_close("softmax_xent extreme logits", gl, want, 4, 1e-6);
        for (int i = 0; i < 12; i++) assert_true(isfinite(gdz[i]));
        /* Row 0: all mass on class 0, so dz = (1, -1, 0) / T. */
        assert_true(fabs(gdz[0] - 1 / t) < 1e-6 && fabs(gdz[1] + 1 / t) < 1e-6);
        free(gl);
        free(gdz);
    }
    /* A label outside [0, K): NaN loss, zero gradient row. */
    int32_t bad[4] = {1, 3, -1, 2};
    assert_ok(clasp_tensor_write(ty, bad));
    assert_ok(clasp_softmax_xent(tz, ty, 1.0f, NULL, 1.0f, tl, tdz));
    float *gl = tu_read(tl), *gdz = tu_read(tdz);
    assert_true(isnan(gl[1]) && isnan(gl[2]) && isfinite(gl[0]) && isfinite(gl[3]));
    for (int j = 3; j < 9; j++) assert_true(gdz[j] == 0.0f);
    free(gl);
    free(gdz);
    clasp_tensor_free(tz);
    clasp_tensor_free(ty);
    clasp_tensor_free(tl);
    clasp_tensor_free(tdz);
}

static void ref_log_softmax(const double *z, int k, double *out)
{
    double m = z[0];
    for (int j = 1; j < k; j++) m = fmax(m, z[j]);
    double s = 0;
    for (int j = 0; j < k; j++) s += exp(z[j] - m);
    for (int j = 0; j < k; j++) out[j] = z[j] - m - log(s);
}

/* KL(softmax(zp) || softmax(zq)); zq is passed through ctx for the zp
 * gradient, and vice versa via kl_fn_q. */
static double ref_kl(const double *zp, const double *zq, int k)
{
    double lp[64], lq[64], kl = 0;
    ref_log_softmax(zp, k, lp);
    ref_log_softmax(zq, k, lq);
    for (int j = 0; j < k; j++) kl += exp(lp[j]) * (lp[j] - lq[j]);
    return kl;
}

static double kl_fn_p(const double *zp, int k, const void *ctx)
{
    return ref_kl(zp, ctx, k);
}

static double kl_fn_q(const double *zq, int k, const void *ctx)
{
    return ref_kl(ctx, zq, k);
}

static void test_kl_div(void **state)
{
    (void)state;
    static const int ns[] = {1, 7, 33};
    const int k = 10;
    const float gs = 0.5f;
    for (size_t a = 0; a < 3; a++) {
        int n = ns[a];
        size_t total = (size_t)n * (size_t)k;
        float *zp = rnd(total, 81 + (uint32_t)a, -4, 4), *zq = rnd(total, 82 + (uint32_t)a, -4, 4);
        clasp_tensor *tp = mat(n, k, zp), *tq = mat(n, k, zq), *tl = vec((size_t)n, NULL);
        clasp_tensor *tdp = mat(n, k, NULL), *tdq = mat(n, k, NULL);
        assert_ok(clasp_kl_div(tp, tq, gs, tl, tdp, tdq));
        float *gl = tu_read(tl), *gdp = tu_read(tdp), *gdq = tu_read(tdq);
        double *wl = malloc((size_t)n * sizeof *wl), *wdp = malloc(total * sizeof *wdp),
               *wdq = malloc(total * sizeof *wdq);
        assert_non_null(wl);
        assert_non_null(wdp);
        assert_non_null(wdq);
        for (int i = 0; i < n; i++) {
            double rp[10], rq[10];
            for (int j = 0; j < k; j++) {
                rp[j] = zp[(size_t)i * (size_t)k + (size_t)j];
                rq[j] = zq[(size_t)i * (size_t)k + (size_t)j];
            }
            wl[i] = ref_kl(rp, rq, k);
            numeric_grad(kl_fn_p, rp, k, rq, wdp + (size_t)i * (size_t)k);
            numeric_grad(kl_fn_q, rq, k, rp, wdq + (size_t)i * (size_t)k);
            for (int j = 0; j < k; j++) {
                wdp[(size_t)i * (size_t)k + (size_t)j] *= gs;
                wdq[(size_t)i * (size_t)k + (size_t)j] *= gs;
            }
        }
        check_close("kl_div loss", gl, wl, (size_t)n, 1e-5);
        check_close("kl_div d/dzp vs finite differences", gdp, wdp, total, 2e-5);
        check_close("kl_div d/dzq vs finite differences", gdq, wdq, total, 2e-5);
        free(gl);
        free(gdp);
        free(gdq);

        /* KL(p || p) = 0 exactly, with zero gradients. */
        assert_ok(clasp_kl_div(tp, tp, gs, tl, tdp, tdq));
        gl = tu_read(tl);
        gdp = tu_read(tdp);
        gdq = tu_read(tdq);
        for (int i = 0; i < n; i++) assert_true(gl[i] == 0.0f);
        for (size_t i = 0; i < total; i++) assert_true(gdp[i] == 0.0f && gdq[i] == 0.0f);
        free(gl);
        free(gdp);
        free(gdq);

        /* Outputs left out one at a time. */
        assert_ok(clasp_kl_div(tp, tq, gs, NULL, NULL, tdq));
        assert_ok(clasp_kl_div(tp, tq, gs, tl, NULL, NULL));
        gl = tu_read(tl);
        gdq = tu_read(tdq);
        check_close("kl_div loss alone", gl, wl, (size_t)n, 1e-5);
        check_close("kl_div d/dzq alone", gdq, wdq, total, 2e-5);
        free(gl);
        free(gdq);

        clasp_tensor_free(tp);
        clasp_tensor_free(tq);
        clasp_tensor_free(tl);
        clasp_tensor_free(tdp);
        clasp_tensor_free(tdq);
        free(zp);
        free(zq);
        free(wl);
        free(wdp);
        free(wdq);
    }
}

/* Reference CW margin and its (sub)gradient, using the first largest
 * competitor and treating the clamp as active only strictly below -kappa. */
static double ref_cw(const float *z, int k, int y, double kappa, double s, double *g)
{
    int jb = -1;
    for (int j = 0; j < k; j++)
        if (j != y && (jb < 0 || z[j] > z[jb])) jb = j;
    double m = (double)z[y] - (double)z[jb];
    for (int j = 0; j < k; j++) g[j] = 0;
    if (m < -kappa) return -kappa;
    g[y] = s;
    g[jb] = -s;
    return m;
}

typedef struct cw_args {
    int y;
    double kappa;
} cw_args;

static double cw_fn(const double *z, int k, const void *ctx)
{
    const cw_args *a = ctx;
    double best = -INFINITY;
    for (int j = 0; j < k; j++)
        if (j != a->y && z[j] > best) best = z[j];
    return fmax(z[a->y] - best, -a->kappa);
}

static void test_cw_margin(void **state)
{
    (void)state;
    const int n = 33, k = 10;
    size_t total = (size_t)n * (size_t)k;
    for (int kc = 0; kc < 2; kc++) {
        double kappa = kc ? 5.0 : 0.0;
        float *z = rnd(total, 91 + (uint32_t)kc, -3, 3), *sc = rnd((size_t)n, 92, 0.5f, 2);
        int32_t y[33];
        for (int i = 0; i < n; i++) {
            y[i] = (i * 7 + 2) % k;
            float *r = z + (size_t)i * (size_t)k;
            if (i % 5 == 1) r[y[i]] = -20; /* deep in the clamp region */
            if (i % 5 == 2) {              /* tie among competitors, label ahead of both */
                int a = (y[i] + 3) % k, b = (y[i] + 6) % k;
                r[a] = r[b] = 9;
                r[y[i]] = 9.5f;
            }
            if (i % 5 == 3) { /* label tied with the runner-up: margin 0 */
                int a = (y[i] + 1) % k;
                r[a] = r[y[i]] = 8;
            }
        }
        clasp_tensor *tz = mat(n, k, z), *ty = ivec((size_t)n, y), *ts = vec((size_t)n, sc);
        clasp_tensor *tf = vec((size_t)n, NULL), *tdz = mat(n, k, NULL);
        for (int scaled = 0; scaled < 2; scaled++) {
            assert_ok(clasp_cw_margin(tz, ty, (float)kappa, scaled ? ts : NULL, tf, tdz));
            float *gf = tu_read(tf), *gdz = tu_read(tdz);
            double wf[33], *wdz = malloc(total * sizeof *wdz);
            assert_non_null(wdz);
            for (int i = 0; i < n; i++) {
                const float *r = z + (size_t)i * (size_t)k;
                wf[i] =
                    ref_cw(r, k, y[i], kappa, scaled ? sc[i] : 1.0, wdz + (size_t)i * (size_t)k);
                /* Away from ties and the clamp boundary the subgradient is
                 * the gradient: confirm it by finite differences. */
                if (i % 5 == 0 || i % 5 == 4) {
                    double rd[10], num[10];
                    for (int j = 0; j < k; j++) rd[j] = r[j];
                    cw_args ca = {y[i], kappa};
                    numeric_grad(cw_fn, rd, k, &ca, num);
                    for (int j = 0; j < k; j++) {
                        double want = num[j] * (scaled ? sc[i] : 1.0);
                        if (fabs(want - wdz[(size_t)i * (size_t)k + (size_t)j]) > 1e-6)
                            fail_msg("cw reference row %d: grad %g vs numeric %g", i,
                                     wdz[(size_t)i * (size_t)k + (size_t)j], want);
                    }
                }
                if (i % 5 == 1) assert_true(gf[i] == (float)-kappa);
                if (i % 5 == 2) {
                    /* Of the two tied competitors only the first gets -s. */
                    int first = (y[i] + 3) % k < (y[i] + 6) % k ? (y[i] + 3) % k : (y[i] + 6) % k;
                    int second = (y[i] + 3) % k + (y[i] + 6) % k - first;
                    assert_true(gdz[(size_t)i * (size_t)k + (size_t)first] < 0.0f);
                    assert_true(gdz[(size_t)i * (size_t)k + (size_t)second] == 0.0f);
                }
                if (i % 5 == 3 && kappa == 0.0) {
                    /* Margin exactly 0 = -kappa: the gradient still flows. */
                    assert_true(gdz[(size_t)i * (size_t)k + (size_t)y[i]] != 0.0f);
                }
            }
            check_close("cw_margin f", gf, wf, (size_t)n, 1e-6);
            check_close("cw_margin dz", gdz, wdz, total, 0);
            free(gf);
            free(gdz);
            free(wdz);
        }
        clasp_tensor_free(tz);
        clasp_tensor_free(ty);
        clasp_tensor_free(ts);
        clasp_tensor_free(tf);
        clasp_tensor_free(tdz);
        free(z);
        free(sc);
    }

    /* One class: no competitor, refused. */
    clasp_tensor *z1 = mat(3, 1, NULL), *y1 = ivec(3, (int32_t[]){0, 0, 0}), *f1 = vec(3, NULL);
    assert_int_equal(clasp_cw_margin(z1, y1, 0, NULL, f1, NULL), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "clasp_cw_margin"));
    clasp_tensor_free(z1);
    clasp_tensor_free(y1);
    clasp_tensor_free(f1);
}

/* ---- optimisers ------------------------------------------------------- */

static void test_sgd(void **state)
{
    (void)state;
    const size_t n = 33;
    const float lr = 0.1f, mom = 0.9f, wd = 5e-4f;
    float *w = rnd(n, 101, -1, 1);
    clasp_tensor *tw = vec(n, w), *tg = vec(n, NULL), *tv = vec(n, NULL);
    assert_ok(clasp_tensor_fill(tv, 0));
    /* PyTorch by hand: d = g + wd*w; buf = d on the first step, then
     * buf = momentum*buf + d; w -= lr*buf. */
    double wr[33], buf[33];
    for (size_t i = 0; i < n; i++) wr[i] = w[i];
    for (int step = 0; step < 3; step++) {
        float *g = rnd(n, 110 + (uint32_t)step, -1, 1);
        assert_ok(clasp_tensor_write(tg, g));
        assert_ok(clasp_sgd_update(tw, tg, tv, lr, mom, wd));
        for (size_t i = 0; i < n; i++) {
            double d = g[i] + (double)wd * wr[i];
            buf[i] = step == 0 ? d : (double)mom * buf[i] + d;
            wr[i] -= (double)lr * buf[i];
        }
        free(g);
    }
    float *gw = tu_read(tw), *gv = tu_read(tv);
    check_close("sgd w after 3 steps", gw, wr, n, 1e-6);
    check_close("sgd momentum buffer", gv, buf, n, 1e-6);
    free(gw);
    free(gv);

    /* Plain SGD needs no buffer. */
    assert_ok(clasp_tensor_write(tw, w));
    float *g = rnd(n, 120, -1, 1);
    assert_ok(clasp_tensor_write(tg, g));
    assert_ok(clasp_sgd_update(tw, tg, NULL, lr, 0, 0));
    for (size_t i = 0; i < n; i++) wr[i] = (double)w[i] - (double)lr * g[i];
    gw = tu_read(tw);
    check_close("sgd without momentum", gw, wr, n, 1e-6);
    free(gw);
    assert_int_equal(clasp_sgd_update(tw, tg, NULL, lr, mom, 0), CLASP_ERR_INVALID);

    clasp_tensor_free(tw);
    clasp_tensor_free(tg);
    clasp_tensor_free(tv);
    free(w);
    free(g);
}

static void test_adam(void **state)
{
    (void)state;
    const size_t n = 31;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float *w = rnd(n, 131, -1, 1);
    clasp_tensor *tw = vec(n, w), *tg = vec(n, NULL), *tm = vec(n, NULL), *tv = vec(n, NULL);
    assert_ok(clasp_tensor_fill(tm, 0));
    assert_ok(clasp_tensor_fill(tv, 0));
    double wr[31], m[31] = {0}, v[31] = {0};
    for (size_t i = 0; i < n; i++) wr[i] = w[i];
    for (int t = 1; t <= 3; t++) {
        float *g = rnd(n, 140 + (uint32_t)t, -1, 1);
        assert_ok(clasp_tensor_write(tg, g));
        assert_ok(clasp_adam_update(tw, tg, tm, tv, lr, b1, b2, eps, t));
        for (size_t i = 0; i < n; i++) {
            m[i] = (double)b1 * m[i] + (1 - (double)b1) * g[i];
            v[i] = (double)b2 * v[i] + (1 - (double)b2) * g[i] * g[i];
            double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
            wr[i] -= (double)lr * mhat / (sqrt(vhat) + (double)eps);
        }
        free(g);
    }
    float *gw = tu_read(tw), *gm = tu_read(tm), *gv = tu_read(tv);
    check_close("adam w after 3 steps", gw, wr, n, 1e-6);
    check_close("adam m", gm, m, n, 1e-6);
    check_close("adam v", gv, v, n, 1e-6);
    free(gw);
    free(gm);
    free(gv);
    assert_int_equal(clasp_adam_update(tw, tg, tm, tv, lr, b1, b2, eps, 0), CLASP_ERR_INVALID);
    clasp_tensor_free(tw);
    clasp_tensor_free(tg);
    clasp_tensor_free(tm);
    clasp_tensor_free(tv);
    free(w);
}

/* ---- random numbers --------------------------------------------------- */

/* Random123's known answer for Philox4x32-10 with counter and key zero:
 * 6627e8d5 e169c58d bc57ac4c 9b00dbd8. Uniform [0, 1) numbers carry each
 * word's top 24 bits exactly. */
static void test_rng_known_answer(void **state)
{
    (void)state;
    static const uint32_t kat[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    clasp_rng r = {0, 0};
    float h[4];
    clasp_rng_uniform_host(&r, h, 4, 0.0f, 1.0f);
    assert_true(r.counter == 1);
    for (int j = 0; j < 4; j++) assert_true((uint32_t)(h[j] * 16777216.0f) == kat[j] >> 8);
    clasp_tensor *t = vec(4, NULL);
    clasp_rng rd = {0, 0};
    assert_ok(clasp_rng_uniform(&rd, t, 0.0f, 1.0f));
    float *d = tu_read(t);
    check_exact("rng device known answer", d, h, 4);
    free(d);
    clasp_tensor_free(t);
}

static void test_rng_uniform(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SIZES; s++) {
        size_t n = (size_t)k_sizes[s];
        clasp_rng a = clasp_rng_make(1234, 3), b = a, h = a;
        clasp_tensor *t = vec(n, NULL);
        float *host = malloc(n * sizeof *host), *host2 = malloc(n * sizeof *host2);
        assert_non_null(host);
        assert_non_null(host2);
        assert_ok(clasp_rng_uniform(&a, t, -2.0f, 3.0f));
        assert_true(a.counter == b.counter + (n + 3) / 4);
        float *d1 = tu_read(t);
        assert_ok(clasp_rng_uniform(&b, t, -2.0f, 3.0f));
        float *d2 = tu_read(t);
        check_exact("rng_uniform same state", d2, d1, n);
        clasp_rng_uniform_host(&h, host, n, -2.0f, 3.0f);
        assert_true(h.counter == a.counter);
        check_exact("rng_uniform device vs host", d1, host, n);
        for (size_t i = 0; i < n; i++) assert_true(d1[i] >= -2.0f && d1[i] < 3.0f);
        /* The next fill continues the stream rather than repeating it. */
        assert_ok(clasp_rng_uniform(&a, t, -2.0f, 3.0f));
        clasp_rng_uniform_host(&h, host2, n, -2.0f, 3.0f);
        float *d3 = tu_read(t);
        check_exact("rng_uniform second fill device vs host", d3, host2, n);
        if (n > 2) assert_true(memcmp(d3, d1, n * sizeof *d1) != 0);
        free(d1);
        free(d2);
        free(d3);
        free(host);
        free(host2);
        clasp_tensor_free(t);
    }

    /* Statistics, different seeds and streams. */
    const size_t n = 100000;
    clasp_tensor *t = vec(n, NULL);
    clasp_rng r = clasp_rng_make(7, 0);
    assert_ok(clasp_rng_uniform(&r, t, 0.0f, 1.0f));
    float *x = tu_read(t);
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    assert_true(fabs(mean - 0.5) < 0.01);
    clasp_rng r2 = clasp_rng_make(8, 0), r3 = clasp_rng_make(7, 1);
    float *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
    assert_non_null(y);
    assert_non_null(z);
    clasp_rng_uniform_host(&r2, y, n, 0.0f, 1.0f);
    clasp_rng_uniform_host(&r3, z, n, 0.0f, 1.0f);
    size_t same_seed = 0, same_stream = 0;
    for (size_t i = 0; i < n; i++) {
        same_seed += x[i] == y[i];
        same_stream += x[i] == z[i];
    }
    assert_true(same_seed < 100 && same_stream < 100);

    /* An interval one ulp wide: values that round up to hi are moved below
     * it, so everything equals lo, on both sides. */
    float lo = 1.0f, hi = nextafterf(1.0f, 2.0f);
    clasp_rng e = clasp_rng_make(99, 0), eh = e;
    clasp_tensor *te = vec(1001, NULL);
    assert_ok(clasp_rng_uniform(&e, te, lo, hi));
    clasp_rng_uniform_host(&eh, y, 1001, lo, hi);
    float *ge = tu_read(te);
    for (size_t i = 0; i < 1001; i++) assert_true(ge[i] == lo && y[i] == lo);
    free(ge);
    clasp_tensor_free(te);

    free(x);
    free(y);
    free(z);
    clasp_tensor_free(t);
}

/* Normal numbers: device and host agree to a few ulp (not necessarily
 * bit for bit: log, cos and sin may differ slightly), and 100k samples
 * have about the requested mean and standard deviation. */
static void test_rng_normal(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 3, 7, 33, 100000};
    const float mean = 0.5f, std = 2.0f;
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        size_t n = ns[c];
        clasp_rng a = clasp_rng_make(42, 5), b = a, h = a;
        clasp_tensor *t = vec(n, NULL);
        assert_ok(clasp_rng_normal(&a, t, mean, std));
        assert_true(a.counter == b.counter + (n + 3) / 4);
        float *d1 = tu_read(t);
        assert_ok(clasp_rng_normal(&b, t, mean, std));
        float *d2 = tu_read(t);
        check_exact("rng_normal same state", d2, d1, n);
        float *host = malloc(n * sizeof *host);
        double *hd = malloc(n * sizeof *hd);
        assert_non_null(host);
        assert_non_null(hd);
        clasp_rng_normal_host(&h, host, n, mean, std);
        assert_true(h.counter == a.counter);
        for (size_t i = 0; i < n; i++) hd[i] = host[i];
        check_close("rng_normal device vs host", d1, hd, n, 1e-5);
        if (n >= 100000) {
            double s = 0, s2 = 0;
            for (size_t i = 0; i < n; i++) {
                s += d1[i];
                s2 += (double)d1[i] * d1[i];
            }
            double m = s / (double)n, sd = sqrt(s2 / (double)n - m * m);
            if (fabs(m - mean) > 0.03 || fabs(sd - std) > 0.03)
                fail_msg("rng_normal: mean %g (want %g), std %g (want %g)", m, (double)mean, sd,
                         (double)std);
            /* Box-Muller with 24-bit uniforms reaches at most about 5.8 sigma. */
            size_t beyond3 = 0;
            for (size_t i = 0; i < n; i++) beyond3 += fabs(d1[i] - mean) > 3 * std;
            assert_true(beyond3 > 100 && beyond3 < 450); /* expected about 270 */
        }
        free(d1);
        free(d2);
        free(host);
        free(hd);
        clasp_tensor_free(t);
    }
}

/* ---- argument checks -------------------------------------------------- */

static void expect_invalid(clasp_status st, const char *op)
{
    assert_int_equal(st, CLASP_ERR_INVALID);
    if (!strstr(clasp_last_error(), op))
        fail_msg("message '%s' lacks '%s'", clasp_last_error(), op);
}

static void test_validation(void **state)
{
    (void)state;
    clasp_tensor *a = vec(7, NULL), *b = vec(8, NULL), *z = mat(4, 10, NULL);
    clasp_tensor *yi = ivec(4, (int32_t[]){0, 1, 2, 3}), *l3 = vec(3, NULL), *l4 = vec(4, NULL);
    clasp_tensor *one = vec(1, NULL), *zi = tu_tensor_i32(g_ctx, 2, (int[]){4, 10}, NULL);
    expect_invalid(clasp_axpy(a, 1, b), "clasp_axpy");
    expect_invalid(clasp_mul(a, a, b), "clasp_mul");
    expect_invalid(clasp_clamp(a, 1, 0), "clasp_clamp");
    expect_invalid(clasp_project_linf(a, b, 0.1f), "clasp_project_linf");
    expect_invalid(clasp_pgd_step(a, a, b, 0.1f, 0.1f, 0, 1), "clasp_pgd_step");
    expect_invalid(clasp_softmax_xent(z, yi, 0.0f, NULL, 1, l4, NULL), "clasp_softmax_xent");
    expect_invalid(clasp_softmax_xent(z, yi, 1.0f, NULL, 1, l3, NULL), "clasp_softmax_xent");
    expect_invalid(clasp_softmax_xent(z, l4, 1.0f, NULL, 1, l4, NULL), "clasp_softmax_xent");
    expect_invalid(clasp_softmax_xent(zi, yi, 1.0f, NULL, 1, l4, NULL), "clasp_softmax_xent");
    expect_invalid(clasp_kl_div(z, a, 1, l4, NULL, NULL), "clasp_kl_div");
    expect_invalid(clasp_cw_margin(z, yi, 0, l3, l4, NULL), "clasp_cw_margin");
    expect_invalid(clasp_sum(a, b), "clasp_sum");
    expect_invalid(clasp_argmax_rows(z, l4), "clasp_argmax_rows");
    expect_invalid(clasp_gather_class(one, yi, l3), "clasp_gather_class");
    expect_invalid(clasp_l2_norm_per_sample(z, l3), "clasp_l2_norm_per_sample");
    expect_invalid(clasp_scale_per_sample(z, a), "clasp_scale_per_sample");
    expect_invalid(clasp_logit_adjust(z, a, 1), "clasp_logit_adjust");
    expect_invalid(clasp_select_rows(z, z, l4), "clasp_select_rows");
    expect_invalid(clasp_tanh_to_box(a, b), "clasp_tanh_to_box");
    expect_invalid(clasp_sgd_update(a, b, NULL, 0.1f, 0, 0), "clasp_sgd_update");
    expect_invalid(clasp_adam_update(a, a, a, b, 0.1f, 0.9f, 0.999f, 1e-8f, 1),
                   "clasp_adam_update");
    clasp_rng r = clasp_rng_make(1, 0);
    expect_invalid(clasp_rng_uniform(&r, a, 1, 0), "clasp_rng_uniform");
    expect_invalid(clasp_rng_normal(&r, a, 0, -1), "clasp_rng_normal");
    assert_true(r.counter == clasp_rng_make(1, 0).counter);
    clasp_tensor_free(a);
    clasp_tensor_free(b);
    clasp_tensor_free(z);
    clasp_tensor_free(yi);
    clasp_tensor_free(l3);
    clasp_tensor_free(l4);
    clasp_tensor_free(one);
    clasp_tensor_free(zi);
}

/* Crop-and-flip augmentation: every example equals a plain C crop/flip of
 * itself for some shift in [-pad, pad]^2 and flip bit, the shifts and flips
 * vary over the batch, and the same rng state gives the same batch. */
static void test_augment_crop_flip(void **state)
{
    (void)state;
    enum { N = 64, C = 3, H = 5, W = 7, PAD = 2 };
    float x[N * C * H * W];
    tu_fill_random(x, sizeof x / sizeof x[0], 3, 0.1f, 1.0f); /* no zeros: padding is visible */
    clasp_tensor *xt = tu_tensor(g_ctx, 4, (int[]){N, C, H, W}, x);
    clasp_tensor *y1 = tu_tensor(g_ctx, 4, (int[]){N, C, H, W}, NULL),
                 *y2 = tu_tensor(g_ctx, 4, (int[]){N, C, H, W}, NULL);
    clasp_rng r1 = clasp_rng_make(9, 4), r2 = clasp_rng_make(9, 4);
    assert_ok(clasp_augment_crop_flip(xt, PAD, 1, &r1, y1));
    assert_ok(clasp_augment_crop_flip(xt, PAD, 1, &r2, y2));
    float *a = tu_read(y1), *b = tu_read(y2);
    assert_memory_equal(a, b, sizeof x);
    int seen_flip[2] = {0, 0}, seen_shift[2 * PAD + 1] = {0};
    for (int n = 0; n < N; n++) {
        int match = 0;
        for (int f = 0; f < 2 && !match; f++)
            for (int dy = -PAD; dy <= PAD && !match; dy++)
                for (int dx = -PAD; dx <= PAD && !match; dx++) {
                    int ok = 1;
                    for (int c = 0; c < C && ok; c++)
                        for (int r = 0; r < H && ok; r++)
                            for (int q = 0; q < W && ok; q++) {
                                int sq = (f ? W - 1 - q : q) + dx, sr = r + dy;
                                float want = sr >= 0 && sr < H && sq >= 0 && sq < W
                                                 ? x[((n * C + c) * H + sr) * W + sq]
                                                 : 0.0f;
                                ok = a[((n * C + c) * H + r) * W + q] == want;
                            }
                    if (ok) match = 1, seen_flip[f] = 1, seen_shift[dy + PAD] = 1;
                }
        if (!match) fail_msg("example %d is no crop/flip of its input", n);
    }
    assert_true(seen_flip[0] && seen_flip[1]);
    for (int k = 0; k < 2 * PAD + 1; k++) assert_true(seen_shift[k]);
    /* Another stream, another batch; pad 0 without flip is the identity. */
    clasp_rng r3 = clasp_rng_make(9, 5);
    assert_ok(clasp_augment_crop_flip(xt, PAD, 1, &r3, y2));
    free(b);
    b = tu_read(y2);
    assert_true(memcmp(a, b, sizeof x) != 0);
    assert_ok(clasp_augment_crop_flip(xt, 0, 0, &r3, y2));
    free(b);
    b = tu_read(y2);
    assert_memory_equal(b, x, sizeof x);
    assert_int_equal(clasp_augment_crop_flip(xt, 1, 1, &r3, xt), CLASP_ERR_INVALID);
    free(a), free(b);
    clasp_tensor_free(xt), clasp_tensor_free(y1), clasp_tensor_free(y2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clamp_project_sign),
        cmocka_unit_test(test_pgd_step),
        cmocka_unit_test(test_blas1),
        cmocka_unit_test(test_augment_crop_flip),
        cmocka_unit_test(test_per_sample),
        cmocka_unit_test(test_select_rows_i32),
        cmocka_unit_test(test_logit_adjust),
        cmocka_unit_test(test_tanh_box),
        cmocka_unit_test(test_sum),
        cmocka_unit_test(test_argmax_rows),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_softmax_xent_extreme),
        cmocka_unit_test(test_kl_div),
        cmocka_unit_test(test_cw_margin),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_rng_known_answer),
        cmocka_unit_test(test_rng_uniform),
        cmocka_unit_test(test_rng_normal),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, tu_setup_ctx, tu_teardown_ctx);
}
