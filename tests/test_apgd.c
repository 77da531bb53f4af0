/* Auto-PGD: the DLR loss op (against a plain C reference and by finite
 * differences), the fused APGD step op, the checkpoint schedule, known
 * answers on linear models, and the attack invariants of apgd and apgd-t
 * (budget, box, x untouched, pred, reproducibility, never weaker than the
 * clean point). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "clasp/ops.h"
#include "clasp/registry.h"

#include "apgd_schedule.h"

/* ---- the DLR loss ------------------------------------------------------- */

/* Plain reference in double: value and gradient of one row (t < 0:
 * untargeted). Sorting by selection, first index first on ties. */
static double dlr_ref(const float *z, int k, int y, int t, double *g)
{
    int p[4], used[64] = {0};
    for (int q = 0; q < 4 && q < k; q++) {
        int b = -1;
        for (int j = 0; j < k; j++)
            if (!used[j] && (b < 0 || z[j] > z[b])) b = j;
        used[b] = 1;
        p[q] = b;
    }
    int c = t;
    if (t < 0)
        for (int j = 0; j < k; j++)
            if (j != y && (c < 0 || z[j] > z[c])) c = j;
    int p4 = k > 3 ? p[3] : p[2];
    double num = (double)z[y] - z[c];
    double den = t < 0 ? (double)z[p[0]] - z[p[2]] + 1e-12
                       : (double)z[p[0]] - 0.5 * ((double)z[p[2]] + z[p4]) + 1e-12;
    for (int j = 0; j < k; j++) g[j] = 0;
    double s = num / (den * den);
    g[y] -= 1 / den, g[c] += 1 / den, g[p[0]] += s;
    if (t < 0) {
        g[p[2]] -= s;
    } else {
        g[p[2]] -= 0.5 * s;
        g[p4] -= 0.5 * s;
    }
    return -num / den;
}

/* Logits with gaps of at least 0.3 between any two, so a finite-difference
 * step never reorders them. */
static void spread_logits(float *z, int n, int k, uint32_t seed)
{
    float noise[64 * 16];
    tu_fill_random(noise, (size_t)n * (size_t)k, seed, -0.2f, 0.2f);
    uint32_t s = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        int perm[64];
        for (int j = 0; j < k; j++) perm[j] = j;
        for (int j = k - 1; j > 0; j--) {
            s = s * 1664525u + 1013904223u;
            int r = (int)((s >> 8) % (uint32_t)(j + 1)), tmp = perm[j];
            perm[j] = perm[r], perm[r] = tmp;
        }
        for (int j = 0; j < k; j++) z[i * k + j] = 0.7f * (float)perm[j] + noise[i * k + j];
    }
}

static void check_dlr(int k, int targeted)
{
    enum { N = 6 };
    float z[N * 64];
    int32_t y[N], t[N];
    spread_logits(z, N, k, 100u + (uint32_t)k + 7u * (uint32_t)targeted);
    for (int i = 0; i < N; i++) {
        y[i] = (i * 5) % k;
        t[i] = (y[i] + 1 + i % (k - 1)) % k;
    }
    /* Make the label the top logit in one row and the runner-up in another,
     * so both branches of "largest other than the label" are exercised. */
    float top = z[0];
    for (int j = 1; j < k; j++) top = fmaxf(top, z[j]);
    z[y[0]] = top + 1.0f;
    clasp_tensor *zt = tu_tensor(tu_shared_ctx, 2, (int[]){N, k}, z);
    clasp_tensor *yt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){N}, y);
    clasp_tensor *tt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){N}, t);
    clasp_tensor *lt = tu_tensor(tu_shared_ctx, 1, (int[]){N}, NULL);
    clasp_tensor *gt = tu_tensor(tu_shared_ctx, 2, (int[]){N, k}, NULL);
    assert_ok(clasp_dlr_loss(zt, yt, targeted ? tt : NULL, lt, gt));
    float *l = tu_read(lt), *g = tu_read(gt);
    for (int i = 0; i < N; i++) {
        double gr[64];
        double lr = dlr_ref(z + i * k, k, y[i], targeted ? t[i] : -1, gr);
        if (fabs(l[i] - lr) > 1e-5 * fmax(1, fabs(lr)))
            fail_msg("dlr k=%d targeted=%d row %d: loss %.7f, reference %.7f", k, targeted, i,
                     (double)l[i], lr);
        for (int j = 0; j < k; j++)
            if (fabs(g[i * k + j] - gr[j]) > 1e-5 * fmax(1, fabs(gr[j])))
                fail_msg("dlr k=%d targeted=%d row %d: dz[%d] %.7f, reference %.7f", k, targeted, i,
                         j, (double)g[i * k + j], gr[j]);
    }
    /* Finite differences of the op itself: rows z +- h e_j. */
    const float h = 1e-3f;
    int m = N * k * 2;
    float *zp = malloc((size_t)m * (size_t)k * sizeof *zp);
    int32_t *yp = malloc((size_t)m * sizeof *yp), *tp = malloc((size_t)m * sizeof *tp);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < k; j++)
            for (int sgn = 0; sgn < 2; sgn++) {
                int r = (i * k + j) * 2 + sgn;
                memcpy(zp + (size_t)r * (size_t)k, z + i * k, (size_t)k * sizeof *zp);
                zp[(size_t)r * (size_t)k + (size_t)j] += sgn ? -h : h;
                yp[r] = y[i], tp[r] = t[i];
            }
    clasp_tensor *zpt = tu_tensor(tu_shared_ctx, 2, (int[]){m, k}, zp);
    clasp_tensor *ypt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){m}, yp);
    clasp_tensor *tpt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){m}, tp);
    clasp_tensor *lpt = tu_tensor(tu_shared_ctx, 1, (int[]){m}, NULL);
    assert_ok(clasp_dlr_loss(zpt, ypt, targeted ? tpt : NULL, lpt, NULL));
    float *lp = tu_read(lpt);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < k; j++) {
            int r = (i * k + j) * 2;
            double fd = ((double)lp[r] - lp[r + 1]) / (2.0 * h);
            if (fabs(fd - g[i * k + j]) > 2e-3 * fmax(1, fabs(fd)))
                fail_msg("dlr k=%d targeted=%d row %d: dz[%d] %.6f, finite difference %.6f", k,
                         targeted, i, j, (double)g[i * k + j], fd);
        }
    free(l), free(g), free(zp), free(yp), free(tp), free(lp);
    clasp_tensor_free(zt), clasp_tensor_free(yt), clasp_tensor_free(tt);
    clasp_tensor_free(lt), clasp_tensor_free(gt), clasp_tensor_free(zpt);
    clasp_tensor_free(ypt), clasp_tensor_free(tpt), clasp_tensor_free(lpt);
}

static void test_dlr_loss(void **state)
{
    (void)state;
    const int ks[] = {3, 4, 10, 17};
    for (int i = 0; i < 4; i++) {
        check_dlr(ks[i], 0);
        check_dlr(ks[i], 1);
    }
}

static void test_dlr_loss_bad_input(void **state)
{
    (void)state;
    /* Two classes: no third logit for the denominator. */
    clasp_tensor *z2 = tu_tensor(tu_shared_ctx, 2, (int[]){2, 2}, (const float[]){1, 2, 3, 4});
    clasp_tensor *y = tu_tensor_i32(tu_shared_ctx, 1, (int[]){2}, (const int32_t[]){0, 1});
    clasp_tensor *l = tu_tensor(tu_shared_ctx, 1, (int[]){2}, NULL);
    assert_int_equal(clasp_dlr_loss(z2, y, NULL, l, NULL), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "at least 3 classes"));
    /* A target equal to the label, and a label out of range: NaN loss and
     * a zero gradient row; the other rows are unaffected. */
    clasp_tensor *z = tu_tensor(tu_shared_ctx, 2, (int[]){2, 3}, (const float[]){1, 2, 3, 3, 1, 2});
    clasp_tensor *yy = tu_tensor_i32(tu_shared_ctx, 1, (int[]){2}, (const int32_t[]){0, 0});
    clasp_tensor *t = tu_tensor_i32(tu_shared_ctx, 1, (int[]){2}, (const int32_t[]){0, 2});
    clasp_tensor *g = tu_tensor(tu_shared_ctx, 2, (int[]){2, 3}, NULL);
    assert_ok(clasp_dlr_loss(z, yy, t, l, g));
    float lh[2], gh[6];
    assert_ok(clasp_tensor_read(l, lh));
    assert_ok(clasp_tensor_read(g, gh));
    assert_true(isnan(lh[0]));
    for (int j = 0; j < 3; j++) assert_true(gh[j] == 0.0f);
    /* Row 1: z = (3,1,2), y 0, t 2: -(3-2)/(3-1) = -0.5. */
    assert_true(fabsf(lh[1] + 0.5f) < 1e-6f);
    clasp_tensor *ybad = tu_tensor_i32(tu_shared_ctx, 1, (int[]){2}, (const int32_t[]){5, 0});
    assert_ok(clasp_dlr_loss(z, ybad, NULL, l, NULL));
    assert_ok(clasp_tensor_read(l, lh));
    assert_true(isnan(lh[0]) && !isnan(lh[1]));
    clasp_tensor_free(z2), clasp_tensor_free(y), clasp_tensor_free(l), clasp_tensor_free(z);
    clasp_tensor_free(yy), clasp_tensor_free(t), clasp_tensor_free(g), clasp_tensor_free(ybad);
}

/* ---- the fused step ----------------------------------------------------- */

static float clip(float v, float c, float eps)
{
    return fminf(fmaxf(fminf(fmaxf(v, c - eps), c + eps), 0.0f), 1.0f);
}

static void test_apgd_step_op(void **state)
{
    (void)state;
    enum { N = 5, D = 37 };
    float x[N * D], xp[N * D], g[N * D], x0[N * D], eta[N] = {0.2f, 0.1f, 0.05f, 0.0f, 0.3f};
    const float eps = 0.1f, a = 0.75f;
    tu_fill_random(x0, N * D, 1, 0.0f, 1.0f);
    tu_fill_random(x, N * D, 2, -0.1f, 0.1f);
    tu_fill_random(xp, N * D, 3, -0.1f, 0.1f);
    tu_fill_random(g, N * D, 4, -1.0f, 1.0f);
    for (int i = 0; i < N * D; i++) {
        x[i] = clip(x0[i] + x[i], x0[i], eps);
        xp[i] = clip(x0[i] + xp[i], x0[i], eps);
    }
    g[3] = 0.0f; /* sign(0) = 0 */
    clasp_tensor *xt = tu_tensor(tu_shared_ctx, 2, (int[]){N, D}, x);
    clasp_tensor *pt = tu_tensor(tu_shared_ctx, 2, (int[]){N, D}, xp);
    clasp_tensor *gt = tu_tensor(tu_shared_ctx, 2, (int[]){N, D}, g);
    clasp_tensor *ot = tu_tensor(tu_shared_ctx, 2, (int[]){N, D}, x0);
    clasp_tensor *et = tu_tensor(tu_shared_ctx, 1, (int[]){N}, eta);
    assert_ok(clasp_apgd_step(xt, pt, gt, ot, et, a, eps, 0.0f, 1.0f));
    float *xn = tu_read(xt), *pn = tu_read(pt);
    for (int i = 0; i < N * D; i++) {
        float s = g[i] > 0 ? 1.0f : g[i] < 0 ? -1.0f : 0.0f;
        float z = clip(x[i] + eta[i / D] * s, x0[i], eps);
        float want = clip(x[i] + (z - x[i]) * a + (x[i] - xp[i]) * (1.0f - a), x0[i], eps);
        if (fabsf(xn[i] - want) > 1e-6f)
            fail_msg("apgd_step x[%d] = %.7f, expected %.7f", i, (double)xn[i], (double)want);
        assert_true(pn[i] == x[i]);
        assert_true(fabsf(xn[i] - x0[i]) <= eps + 1e-6f && xn[i] >= 0.0f && xn[i] <= 1.0f);
    }
    /* Mismatched eta, bad momentum: clear errors. */
    clasp_tensor *bad = tu_tensor(tu_shared_ctx, 1, (int[]){N + 1}, NULL);
    assert_int_equal(clasp_apgd_step(xt, pt, gt, ot, bad, a, eps, 0, 1), CLASP_ERR_INVALID);
    assert_int_equal(clasp_apgd_step(xt, pt, gt, ot, et, 1.5f, eps, 0, 1), CLASP_ERR_INVALID);
    free(xn), free(pn);
    clasp_tensor_free(xt), clasp_tensor_free(pt), clasp_tensor_free(gt), clasp_tensor_free(ot);
    clasp_tensor_free(et), clasp_tensor_free(bad);
}

/* ---- the checkpoint schedule -------------------------------------------- */

static void test_checkpoints(void **state)
{
    (void)state;
    int ck[APGD_MAX_CHECKPOINTS];
    /* Gaps max(last gap - 0.03, 0.06): 0.22, 0.19, 0.16, 0.13, 0.10, 0.07,
     * 0.06, 0.06, so p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99
     * (then 1.05 > 1). */
    const int want100[] = {22, 41, 57, 70, 80, 87, 93, 99};
    assert_int_equal(apgd_core_checkpoints(100, ck), 8);
    assert_memory_equal(ck, want100, sizeof want100);
    /* ceil(p * 1000) */
    const int want1000[] = {220, 410, 570, 700, 800, 870, 930, 990};
    assert_int_equal(apgd_core_checkpoints(1000, ck), 8);
    assert_memory_equal(ck, want1000, sizeof want1000);
    /* ceil of 2.2, 4.1, 5.7, 7, 8, 8.7, 9.3, 9.9: the last two coincide. */
    const int want10[] = {3, 5, 6, 7, 8, 9, 10};
    assert_int_equal(apgd_core_checkpoints(10, ck), 7);
    assert_memory_equal(ck, want10, sizeof want10);
    /* 41% of 50 is 20.5: rounded up. */
    const int want50[] = {11, 21, 29, 35, 40, 44, 47, 50};
    assert_int_equal(apgd_core_checkpoints(50, ck), 8);
    assert_memory_equal(ck, want50, sizeof want50);
    assert_int_equal(apgd_core_checkpoints(1, ck), 1);
    assert_int_equal(ck[0], 1);
    assert_int_equal(apgd_core_checkpoints(0, ck), 0);
}

/* ---- attacks ------------------------------------------------------------ */

/* An attack from "k=v" strings (NULL-terminated); NULL when create fails
 * and want_fail is set. */
static clasp_attack_instance *attack_or(const char *name, const char *const *kv, int want_fail)
{
    const char *keys[16], *vals[16];
    char buf[16][64];
    int n = 0;
    for (; kv && kv[n]; n++) {
        snprintf(buf[n], sizeof buf[n], "%s", kv[n]);
        char *eq = strchr(buf[n], '=');
        assert_non_null(eq);
        *eq = '\0';
        keys[n] = buf[n], vals[n] = eq + 1;
    }
    clasp_attack_instance *a = NULL;
    clasp_status s = clasp_attack_new(tu_shared_reg, name, keys, vals, NULL, n, &a);
    if (want_fail) {
        assert_int_not_equal(s, CLASP_OK);
        return NULL;
    }
    assert_ok(s);
    return a;
}

static clasp_attack_instance *attack(const char *name, const char *const *kv)
{
    return attack_or(name, kv, 0);
}

/* Runs an attack on host data; checks x is untouched and pred is the
 * model's prediction on x_adv; returns x_adv and pred (malloc'd). */
static clasp_status run_st(clasp_attack_instance *a, clasp_model *m, const float *xh,
                           const int32_t *yh, int n, uint64_t seed, float **adv, int32_t **pred_out)
{
    return tu_attack_run(tu_shared_ctx, a, m, xh, yh, n, seed, adv, pred_out);
}

static void run(clasp_attack_instance *a, clasp_model *m, const float *xh, const int32_t *yh, int n,
                uint64_t seed, float **adv, int32_t **pred_out)
{
    assert_ok(run_st(a, m, xh, yh, n, seed, adv, pred_out));
}

/* flatten + fc(k) on 1x2x2 inputs with weights [k,4] and biases [k]. */
static clasp_model *linear_model(int k, const float *w, const float *b)
{
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_FLATTEN}, {.kind = CLASP_LAYER_LINEAR, .out = k}};
    clasp_model *m;
    assert_ok(clasp_model_new(tu_shared_ctx, ls, 2, 1, 2, 2, &m));
    assert_ok(clasp_tensor_write(clasp_model_param(m, 0), w));
    assert_ok(clasp_tensor_write(clasp_model_param(m, 1), b));
    return m;
}

/* The L-inf vertex minimising z_y - z_c for a linear model: each pixel
 * moves eps against sign(w_y - w_c), within [0,1]. */
static float vertex(float x, float wy, float wc, float eps)
{
    float d = wy - wc;
    float v = d > 0 ? x - eps : d < 0 ? x + eps : x;
    return fminf(fmaxf(v, 0.0f), 1.0f);
}

/* Whether example x (4 pixels) of label y can be misclassified within eps:
 * for a linear model, iff some class c wins at its own vertex. */
static int flippable(const float *w, const float *b, int k, const float *x, int y, float eps)
{
    for (int c = 0; c < k; c++) {
        if (c == y) continue;
        double m = (double)b[y] - b[c];
        for (int j = 0; j < 4; j++)
            m += ((double)w[y * 4 + j] - w[c * 4 + j]) *
                 vertex(x[j], w[y * 4 + j], w[c * 4 + j], eps);
        if (m < 0) return 1;
    }
    return 0;
}

static void check_budget(const char *what, const float *xh, const float *adv, size_t n, float eps)
{
    for (size_t i = 0; i < n; i++) {
        if (!(adv[i] >= 0.0f && adv[i] <= 1.0f))
            fail_msg("%s: x_adv[%zu] = %g outside [0,1]", what, i, (double)adv[i]);
        if (fabsf(adv[i] - xh[i]) > eps + 1e-6f)
            fail_msg("%s: |x_adv - x| = %g > eps %g at %zu", what, (double)fabsf(adv[i] - xh[i]),
                     (double)eps, i);
    }
}

/* Two classes, cross-entropy: the loss only grows with the margin
 * a.x = (w_1 - w_0).x, so the best point of an example that cannot be
 * flipped is the vertex x - eps sign(w_0 - w_1) (in the box), and APGD
 * must end exactly there; the ones that can be flipped must be. */
static void test_apgd_ce_linear(void **state)
{
    (void)state;
    const float w[8] = {1, -2, 0.5f, -1, -1, 2, -0.5f, 1};
    const float b[2] = {0.3f, -0.3f};
    clasp_model *m = linear_model(2, w, b);
    /* margin z0 - z1 = 2 (x0 - 2 x1 + 0.5 x2 - x3) + 0.6; at eps 0.1 the
     * vertex lowers x0 - 2 x1 + 0.5 x2 - x3 by 0.45 (less at the box). */
    enum { N = 6 };
    const float xh[N * 4] = {
        0.5f,  0.5f,  0.5f, 0.5f, /* 2(-0.75)+0.6 < 0: already class 1 */
        0.9f,  0.1f,  0.5f, 0.1f, /* 2(0.85)+0.6 = 2.3, at the vertex 1.4: robust */
        0.8f,  0.3f,  0.4f, 0.2f, /* 2(0.2)+0.6 = 1.0, at the vertex 0.1: robust */
        0.7f,  0.3f,  0.4f, 0.2f, /* 2(0.1)+0.6 = 0.8, at the vertex -0.1: flippable */
        0.05f, 0.98f, 0.3f, 0.2f, /* class 1 far from the boundary */
        0.0f,  0.0f,  1.0f, 0.0f, /* 1.6; the box stops pixel 0: 2(0.15)+0.6 = 0.9 */
    };
    const int32_t yh[N] = {0, 0, 0, 0, 1, 0};
    const float eps = 0.1f;
    clasp_attack_instance *a = attack("apgd", (const char *[]){"eps=0.1", "steps=20", NULL});
    float *adv;
    int32_t *pred;
    run(a, m, xh, yh, N, 5, &adv, &pred);
    check_budget("apgd ce linear", xh, adv, N * 4, eps);
    for (int i = 0; i < N; i++) {
        int can = flippable(w, b, 2, xh + 4 * i, yh[i], eps);
        /* Example 0 is misclassified already: returned unchanged. */
        if (i == 0) {
            assert_memory_equal(adv, xh, 4 * sizeof(float));
            assert_int_equal(pred[0], 1);
            continue;
        }
        if (can != (pred[i] != yh[i]))
            fail_msg("example %d: flippable %d but pred %d (label %d)", i, can, pred[i], yh[i]);
        if (!can) {
            int o = 1 - yh[i];
            for (int j = 0; j < 4; j++) {
                float want = vertex(xh[4 * i + j], w[yh[i] * 4 + j], w[o * 4 + j], eps);
                if (fabsf(adv[4 * i + j] - want) > 1e-6f)
                    fail_msg("example %d pixel %d: %.7f, optimum %.7f", i, j,
                             (double)adv[4 * i + j], (double)want);
            }
        }
    }
    free(adv), free(pred);
    clasp_attack_free(a);
    clasp_model_free(m);
}

/* Three and four classes: apgd (ce and dlr) and apgd-t flip exactly the
 * examples some class can win within eps. */
static void test_apgd_multiclass_linear(void **state)
{
    (void)state;
    const float w[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    const float b[4] = {0, 0, 0, 0};
    /* z_c = x_c: class = the brightest pixel; flippable iff the runner-up
     * is within 2 eps (the box allowing). */
    enum { N = 8 };
    const float xh[N * 4] = {
        0.60f, 0.45f, 0.10f, 0.05f, /* gap 0.15 < 0.2: flippable to 1 */
        0.60f, 0.35f, 0.30f, 0.20f, /* gap 0.25: robust */
        0.20f, 0.90f, 0.80f, 0.10f, /* gap 0.10: flippable */
        0.10f, 0.20f, 0.95f, 0.60f, /* gap 0.35: robust */
        0.30f, 0.35f, 0.50f, 0.55f, /* label 3, gap 0.05: flippable */
        0.98f, 0.75f, 0.77f, 0.70f, /* gap 0.21: robust */
        0.98f, 0.79f, 0.70f, 0.10f, /* gap 0.19: flippable */
        0.05f, 0.00f, 0.00f, 0.30f, /* gap 0.25: robust */
    };
    const int32_t yh[N] = {0, 0, 1, 2, 3, 0, 0, 3};
    const float eps = 0.1f;
    for (int k = 3; k <= 4; k++) {
        clasp_model *m = linear_model(k, w, b);
        /* With three classes pixel 3 is ignored; example 4 (label 3) and
         * example 7 are then left out by giving them a valid label. */
        int32_t y[N];
        memcpy(y, yh, sizeof y);
        if (k == 3) y[4] = 2, y[7] = 0;
        struct {
            const char *name;
            const char *kv[4];
        } cases[] = {
            {"apgd", {"eps=0.1", "steps=30", "loss=ce", NULL}},
            {"apgd", {"eps=0.1", "steps=30", "loss=dlr", NULL}},
            {"apgd-t", {"eps=0.1", "steps=30", NULL}},
        };
        for (int c = 0; c < 3; c++) {
            clasp_attack_instance *a = attack(cases[c].name, cases[c].kv);
            float *adv;
            int32_t *pred;
            run(a, m, xh, y, N, 9, &adv, &pred);
            check_budget(cases[c].name, xh, adv, N * 4, eps);
            for (int i = 0; i < N; i++) {
                /* Only examples the model gets right are in question. */
                int clean = 0;
                for (int j = 1; j < k; j++)
                    if (xh[4 * i + j] > xh[4 * i + clean]) clean = j;
                if (clean != y[i]) continue;
                int can = flippable(w, b, k, xh + 4 * i, y[i], eps);
                if (can != (pred[i] != y[i]))
                    fail_msg("%s (k=%d, %s) example %d: flippable %d but pred %d, label %d",
                             cases[c].name, k, cases[c].kv[2] ? cases[c].kv[2] : "", i, can,
                             pred[i], y[i]);
            }
            free(adv), free(pred);
            clasp_attack_free(a);
        }
        clasp_model_free(m);
    }
}

/* A small CNN with random weights on 1x8x8 inputs, three classes. */
static clasp_model *small_cnn(uint64_t seed)
{
    return tu_model(tu_shared_ctx, "conv3x3-4p1,relu,maxpool2,flatten,fc16,relu,fc3", 1, 8, 8,
                    seed);
}

enum { NB = 12, DB = 64 };

static void test_invariants(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(5);
    float xh[NB * DB];
    int32_t yh[NB], clean[NB];
    tu_fill_random(xh, NB * DB, 11, 0.0f, 1.0f);
    xh[0] = 0.0f, xh[1] = 1.0f, xh[DB + 5] = 0.0f; /* box edges */
    /* Labels: the model's own clean predictions, except two, so some
     * examples start misclassified and most start right. */
    clasp_tensor *xt = tu_tensor(tu_shared_ctx, 4, (int[]){NB, 1, 8, 8}, xh);
    clasp_tensor *pt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){NB}, NULL);
    clasp_model_set_train(m, 0);
    assert_ok(clasp_model_predict(m, xt, pt));
    clasp_model_set_train(m, 1);
    assert_ok(clasp_tensor_read(pt, clean));
    memcpy(yh, clean, sizeof yh);
    yh[3] = (clean[3] + 1) % 3, yh[8] = (clean[8] + 2) % 3;
    clasp_tensor_free(xt), clasp_tensor_free(pt);
    struct {
        const char *name;
        const char *kv[6];
        float eps;
    } cases[] = {
        {"apgd", {"eps=0.05", "steps=12", NULL}, 0.05f},
        {"apgd", {"eps=0.1", "steps=10", "loss=dlr", "restarts=2", NULL}, 0.1f},
        {"apgd", {"eps=0.03", "steps=15", "rho=0.5", "momentum=1", NULL}, 0.03f},
        {"apgd-t", {"eps=0.05", "steps=8", NULL}, 0.05f},
        {"apgd-t", {"eps=0.08", "steps=6", "n_target_classes=1", "restarts=2", NULL}, 0.08f},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        clasp_attack_instance *a = attack(cases[t].name, cases[t].kv);
        float *a1, *a2, *a3;
        int32_t *p1, *p2, *p3;
        run(a, m, xh, yh, NB, 42, &a1, &p1);
        run(a, m, xh, yh, NB, 42, &a2, &p2);
        run(a, m, xh, yh, NB, 43, &a3, &p3);
        char what[64];
        snprintf(what, sizeof what, "%s case %zu", cases[t].name, t);
        check_budget(what, xh, a1, NB * DB, cases[t].eps);
        check_budget(what, xh, a3, NB * DB, cases[t].eps);
        if (memcmp(a1, a2, sizeof xh) != 0) fail_msg("%s: same seed, different x_adv", what);
        assert_memory_equal(p1, p2, sizeof yh);
        /* The random start depends on the seed. */
        assert_true(memcmp(a1, a3, sizeof xh) != 0);
        int robust = 0, correct = 0;
        for (int i = 0; i < NB; i++) {
            robust += p1[i] == yh[i];
            correct += clean[i] == yh[i];
            /* Misclassified on x: returned as x. */
            if (clean[i] != yh[i]) {
                assert_memory_equal(a1 + i * DB, xh + i * DB, DB * sizeof(float));
                assert_int_equal(p1[i], clean[i]);
            }
        }
        if (robust > correct) fail_msg("%s: robust %d > clean %d", what, robust, correct);
        free(a1), free(a2), free(a3), free(p1), free(p2), free(p3);
        clasp_attack_free(a);
    }
    /* eps = 0: nothing moves. */
    clasp_attack_instance *a = attack("apgd", (const char *[]){"eps=0", "steps=5", NULL});
    float *adv;
    int32_t *pred;
    run(a, m, xh, yh, NB, 1, &adv, &pred);
    assert_memory_equal(adv, xh, sizeof xh);
    free(adv), free(pred);
    clasp_attack_free(a);
    clasp_model_free(m);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    attack_or("apgd", (const char *[]){"loss=hinge", NULL}, 1);
    assert_non_null(strstr(clasp_last_error(), "'ce' or 'dlr'"));
    /* DLR on a two-class model: a clear error, not a crash. */
    const float w[8] = {1, 0, 0, 0, 0, 1, 0, 0}, b[2] = {0, 0};
    clasp_model *m = linear_model(2, w, b);
    const float xh[4] = {0.5f, 0.2f, 0.1f, 0.1f};
    const int32_t yh[1] = {0};
    const char *names[] = {"apgd", "apgd-t"};
    const char *kv[][3] = {{"loss=dlr", NULL}, {NULL}};
    for (int t = 0; t < 2; t++) {
        clasp_attack_instance *a = attack(names[t], kv[t]);
        float *adv = NULL;
        int32_t *pred = NULL;
        assert_int_equal(run_st(a, m, xh, yh, 1, 1, &adv, &pred), CLASP_ERR_INVALID);
        assert_non_null(strstr(clasp_last_error(), "at least 3 classes"));
        clasp_attack_free(a);
    }
    clasp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dlr_loss),       cmocka_unit_test(test_dlr_loss_bad_input),
        cmocka_unit_test(test_apgd_step_op),   cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_apgd_ce_linear), cmocka_unit_test(test_apgd_multiclass_linear),
        cmocka_unit_test(test_invariants),     cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, tu_setup_plugins, tu_teardown_plugins);
}
