/* clasp_gemm against a double-precision host reference: every transpose
 * combination, odd sizes, offsets and padded leading dimensions, alpha and
 * beta (beta = 0 must overwrite NaN), the CNN's shapes at a small batch,
 * and every implementation path, forced through gemm_internal.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"
#include "clasp/runtime.h"
#include "ops/gemm_internal.h"
#include "testutil.h"

/* One problem: sizes, transposes, scalars, and how the operands sit in
 * their buffers (offsets and extra row padding). */
typedef struct gemm_case {
    int ta, tb, m, n, k;
    float alpha, beta;
    size_t off_a, off_b, off_c;
    int pad_a, pad_b, pad_c;
} gemm_case;

/* Marks elements of C's buffer outside the matrix; a gemm must not touch
 * them. A finite value that no product can produce by accident. */
#define SENTINEL 12345.5f

static void reference(const gemm_case *g, const float *a, int lda, const float *b, int ldb,
                      const float *c0, float *c, int ldc)
{
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double s = 0;
            for (int p = 0; p < g->k; p++) {
                size_t ai = g->ta ? (size_t)p * lda + i : (size_t)i * lda + p;
                size_t bi = g->tb ? (size_t)j * ldb + p : (size_t)p * ldb + j;
                double av = a[g->off_a + ai], bv = b[g->off_b + bi];
                s += av * bv;
            }
            size_t ci = g->off_c + (size_t)i * ldc + j;
            double r = g->alpha * s;
            if (g->beta != 0) r += (double)g->beta * c0[ci];
            c[ci] = (float)r;
        }
}

/* Runs one case with params p (NULL: plain clasp_gemm). Returns 0 when the
 * path cannot run the shape (CLASP_ERR_UNSUPPORTED), 1 when checked. */
static int run_case(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_case *g)
{
    int arows = g->ta ? g->k : g->m, acols = g->ta ? g->m : g->k;
    int brows = g->tb ? g->n : g->k, bcols = g->tb ? g->k : g->n;
    int lda = acols + g->pad_a, ldb = bcols + g->pad_b, ldc = g->n + g->pad_c;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    size_t na = g->off_a + (size_t)arows * lda + 3, nb = g->off_b + (size_t)brows * ldb + 3;
    size_t nc = g->off_c + (size_t)g->m * ldc + 3;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c0 = malloc(nc * sizeof *c0), *want = malloc(nc * sizeof *want);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c0);
    assert_non_null(want);
    tu_fill_random(a, na, (uint32_t)(g->m * 7 + g->k), -1, 1);
    tu_fill_random(b, nb, (uint32_t)(g->n * 13 + g->k), -1, 1);
    tu_fill_random(c0, nc, (uint32_t)(g->m + g->n), -1, 1);
    for (size_t i = 0; i < nc; i++) {
        size_t rel = i - g->off_c; /* wraps for i < off_c, then fails r < m */
        int inside = i >= g->off_c && rel / ldc < (size_t)g->m && rel % ldc < (size_t)g->n;
        if (!inside) c0[i] = SENTINEL;
        else if (g->beta == 0) c0[i] = NAN; /* must be overwritten, not scaled */
    }
    memcpy(want, c0, nc * sizeof *want);
    reference(g, a, lda, b, ldb, c0, want, ldc);

    int sa[1] = {(int)na}, sb[1] = {(int)nb}, sc[1] = {(int)nc};
    clasp_tensor *ta = tu_tensor(ctx, 1, sa, a), *tb = tu_tensor(ctx, 1, sb, b);
    clasp_tensor *tc = tu_tensor(ctx, 1, sc, c0);
    clasp_status st =
        p ? clasp_gemm_with(ctx, p, g->ta, g->tb, g->m, g->n, g->k, g->alpha, ta, g->off_a, lda, tb,
                            g->off_b, ldb, g->beta, tc, g->off_c, ldc)
          : clasp_gemm(ctx, g->ta, g->tb, g->m, g->n, g->k, g->alpha, ta, g->off_a, lda, tb,
                       g->off_b, ldb, g->beta, tc, g->off_c, ldc);
    int ran = st != CLASP_ERR_UNSUPPORTED;
    if (ran) {
        assert_ok(st);
        float *got = tu_read(tc);
        double tol = 1e-4 * sqrt((double)(g->k > 1 ? g->k : 1)) *
                     (fabsf(g->alpha) > 1 ? fabsf(g->alpha) : 1);
        double err = tu_max_rel_err(got, want, nc);
        if (!(err <= tol)) {
            size_t worst = 0;
            double we = -1;
            for (size_t i = 0; i < nc; i++) {
                double e = fabs((double)got[i] - want[i]);
                if (isnan(e) || e > we) {
                    we = isnan(e) ? INFINITY : e;
                    worst = i;
                }
                if (isinf(we)) break;
            }
            fail_msg("path %s tm=%d tn=%d split=%d, trans %d%d m=%d n=%d k=%d alpha=%g beta=%g "
                     "offs %zu/%zu/%zu pads %d/%d/%d: rel err %g > %g "
                     "(element %zu: got %g want %g)",
                     p ? clasp_gemm_path_name(p->path) : "auto", p ? p->tm : 0, p ? p->tn : 0,
                     p ? p->splitk : 0, g->ta, g->tb, g->m, g->n, g->k, (double)g->alpha,
                     (double)g->beta, g->off_a, g->off_b, g->off_c, g->pad_a, g->pad_b, g->pad_c,
                     err, tol, worst, (double)got[worst], (double)want[worst]);
        }
        free(got);
    } else {
        clasp_error_clear();
    }
    clasp_tensor_free(ta);
    clasp_tensor_free(tb);
    clasp_tensor_free(tc);
    free(a);
    free(b);
    free(c0);
    free(want);
    return ran;
}

/* Paths and parameter sets the tests force; zero fields take defaults. */
static const clasp_gemm_params P_GENERAL = {.path = CLASP_GEMM_GENERAL};
static const clasp_gemm_params P_TILED = {.path = CLASP_GEMM_TILED, .splitk = 1};
static const clasp_gemm_params P_SPLIT = {.path = CLASP_GEMM_TILED, .splitk = 3, .order = 1};
static const clasp_gemm_params P_T4x32 =
    {.path = CLASP_GEMM_TILED, .tm = 4, .tn = 32, .wg = 2, .splitk = 1, .order = 2};
static const clasp_gemm_params P_T16x16 =
    {.path = CLASP_GEMM_TILED, .tm = 16, .tn = 16, .wg = 1, .splitk = 2, .order = 1};
static const clasp_gemm_params P_DOT = {.path = CLASP_GEMM_DOT, .splitk = 1, .order = 1};
static const clasp_gemm_params P_DOT_SPLIT = {.path = CLASP_GEMM_DOT,
                                              .tm = 2,
                                              .tn = 8,
                                              .splitk = 3,
                                              .order = 2};
static const clasp_gemm_params P_CLBLAST = {.path = CLASP_GEMM_CLBLAST};

static const int odd_shapes[][3] = {
    {1, 1, 1},     {3, 7, 31}, {33, 65, 7}, {65, 33, 129}, {129, 31, 65},
    {31, 129, 33}, {7, 1, 65}, {1, 33, 3},  {17, 40, 5},   {64, 96, 12},
};
#define N_ODD (sizeof odd_shapes / sizeof odd_shapes[0])

static void sweep(const clasp_gemm_params *p, int *ran, int *total)
{
    clasp_ctx *ctx = tu_ctx();
    for (size_t s = 0; s < N_ODD; s++)
        for (int t = 0; t < 4; t++) {
            gemm_case g = {t >> 1,     t & 1, odd_shapes[s][0], odd_shapes[s][1], odd_shapes[s][2],
                           1.0f,       0.0f,  (size_t)s,        2 * s + 1,        3,
                           (int)s % 3, 1,     (int)s % 2 * 5};
            *ran += run_case(ctx, p, &g);
            (*total)++;
        }
    clasp_ctx_free(ctx);
}

static void test_odd_general(void **state)
{
    (void)state;
    int ran = 0, total = 0;
    sweep(&P_GENERAL, &ran, &total);
    assert_int_equal(ran, total);
}

static void test_odd_tiled(void **state)
{
    (void)state;
    const clasp_gemm_params *ps[] = {&P_TILED, &P_SPLIT, &P_T4x32, &P_T16x16};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        int ran = 0, total = 0;
        sweep(ps[i], &ran, &total);
        /* Tiles fit most of these shapes; the rest must be refused cleanly. */
        assert_true(ran >= total / 3);
    }
}

static void test_odd_dot(void **state)
{
    (void)state;
    const clasp_gemm_params *ps[] = {&P_DOT, &P_DOT_SPLIT};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        int ran = 0, total = 0;
        sweep(ps[i], &ran, &total);
        /* Only NT products, and only those at least one tile large. */
        assert_true(ran >= total / 8 && ran <= total / 4);
    }
}

static void test_odd_auto(void **state)
{
    (void)state;
    int ran = 0, total = 0;
    sweep(NULL, &ran, &total);
    assert_int_equal(ran, total);
}

static void test_odd_clblast(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const int shapes[][3] = {{3, 7, 31}, {65, 33, 129}, {1, 33, 3}};
    for (size_t s = 0; s < 3; s++)
        for (int t = 0; t < 4; t++) {
            gemm_case g = {t >> 1,
                           t & 1,
                           shapes[s][0],
                           shapes[s][1],
                           shapes[s][2],
                           0.5f,
                           s == 1 ? 0.0f : 1.5f,
                           5,
                           2,
                           7,
                           3,
                           0,
                           2};
            assert_int_equal(run_case(ctx, &P_CLBLAST, &g), 1);
        }
    clasp_ctx_free(ctx);
}

/* alpha/beta combinations on every transpose and the main own paths. */
static void test_alpha_beta(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const float ab[][2] = {{1, 0}, {2, 0}, {1, 1}, {-0.5f, 0.25f}, {0, 2}, {0, 0}};
    const clasp_gemm_params *ps[] = {&P_GENERAL, &P_TILED, &P_SPLIT};
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++)
        for (int t = 0; t < 4; t++)
            for (size_t p = 0; p < 3; p++) {
                gemm_case g = {t >> 1, t & 1, 37, 70, 45, ab[i][0], ab[i][1], 11, 0, 29, 4, 9, 3};
                assert_int_equal(run_case(ctx, ps[p], &g), 1);
            }
    clasp_ctx_free(ctx);
}

/* m or n = 0 does nothing; k = 0 leaves beta*C (all zeros for beta = 0). */
static void test_degenerate(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    const clasp_gemm_params *ps[] = {NULL, &P_GENERAL, &P_TILED};
    for (size_t p = 0; p < 3; p++)
        for (int t = 0; t < 4; t++) {
            gemm_case g0 = {t >> 1, t & 1, 0, 5, 3, 1, 0, 0, 0, 0, 0, 0, 0};
            gemm_case g1 = {t >> 1, t & 1, 5, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0};
            gemm_case g2 = {t >> 1, t & 1, 20, 40, 0, 1, 0, 2, 2, 2, 0, 0, 1};
            gemm_case g3 = {t >> 1, t & 1, 20, 40, 0, 1, 0.5f, 2, 2, 2, 0, 0, 1};
            assert_int_equal(run_case(ctx, ps[p], &g0), 1);
            assert_int_equal(run_case(ctx, ps[p], &g1), 1);
            assert_int_equal(run_case(ctx, ps[p], &g2), 1);
            assert_int_equal(run_case(ctx, ps[p], &g3), 1);
        }
    clasp_ctx_free(ctx);
}

/* The Madry MNIST CNN's GEMMs (conv via im2col) at a small batch. */
static const struct cnn_shape {
    const char *name;
    int ta, tb, m, n, k;
} cnn[] = {
    {"conv1 fwd", 0, 0, 32, 784 * 2, 25},
    {"conv1 wgrad", 0, 1, 32, 25, 784 * 4}, /* long enough for the default split-K */
    {"conv2 fwd", 0, 0, 64, 196 * 2, 800},
    {"conv2 dgrad", 1, 0, 800, 196 * 2, 64},
    {"conv2 wgrad", 0, 1, 64, 800, 196 * 2},
    {"conv2 fwd 1 image", 0, 0, 64, 196, 800},
    {"fc1 fwd", 0, 1, 8, 1024, 3136},
    {"fc1 dgrad", 0, 0, 8, 3136, 1024},
    {"fc1 wgrad", 1, 0, 1024, 3136, 8},
    {"fc2 fwd", 0, 1, 8, 10, 1024},
    {"fc2 dgrad", 0, 0, 8, 1024, 10},
    {"fc2 wgrad", 1, 0, 10, 1024, 8},
};
#define N_CNN (sizeof cnn / sizeof cnn[0])

/* Runs every CNN shape through p; a path may refuse shapes it cannot run
 * unless need_all, but it must run some, or the sweep would test nothing. */
static void cnn_sweep(const clasp_gemm_params *p, int need_all)
{
    clasp_ctx *ctx = tu_ctx();
    int runs = 0;
    for (size_t i = 0; i < N_CNN; i++) {
        gemm_case g =
            {cnn[i].ta, cnn[i].tb, cnn[i].m, cnn[i].n, cnn[i].k, 1.0f, i % 2 ? 0.0f : 1.0f,
             0,         0,         0,        0,        0,        0};
        int ran = run_case(ctx, p, &g);
        if (need_all && !ran) fail_msg("%s refused by the forced path", cnn[i].name);
        runs += ran;
    }
    if (runs == 0) fail_msg("the forced path refused every CNN shape");
    clasp_ctx_free(ctx);
}

static void test_cnn_auto(void **state)
{
    (void)state;
    cnn_sweep(NULL, 1);
}

static void test_cnn_tiled(void **state)
{
    (void)state;
    cnn_sweep(&P_TILED, 0);
    cnn_sweep(&P_SPLIT, 0);
    static const clasp_gemm_params s16 =
        {.path = CLASP_GEMM_TILED, .tm = 8, .tn = 32, .wg = 4, .splitk = 16, .order = 2};
    cnn_sweep(&s16, 0);
    cnn_sweep(&P_DOT, 0);
    cnn_sweep(&P_DOT_SPLIT, 0);
}

static void test_cnn_general(void **state)
{
    (void)state;
    cnn_sweep(&P_GENERAL, 1);
}

/* A few shapes only: CLBlast builds its kernels at first use and keeps them
 * per process, which makes every shape class a slow first call on PoCL. */
static void test_cnn_clblast(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const int pick[] = {2, 3, 4, 9};
    for (size_t i = 0; i < sizeof pick / sizeof pick[0]; i++) {
        const struct cnn_shape *c = &cnn[pick[i]];
        gemm_case g = {c->ta, c->tb, c->m, c->n, c->k, 1.0f, 0.5f, 3, 1, 2, 0, 0, 0};
        assert_int_equal(run_case(ctx, &P_CLBLAST, &g), 1);
    }
    clasp_ctx_free(ctx);
}

/* Every candidate the autotuner would time must compute the same thing. */
static void test_candidates(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const int shapes[][5] = {{0, 1, 32, 25, 1568}, {1, 0, 100, 70, 40}, {1, 1, 20, 50, 33}};
    for (size_t s = 0; s < 3; s++) {
        clasp_gemm_params c[64];
        int n = clasp_gemm_candidates(ctx, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
                                      shapes[s][4], c, 64);
        assert_true(n >= 3 && n <= 64);
        assert_int_not_equal(c[0].path, CLASP_GEMM_AUTO);
        for (int i = 0; i < n; i++) {
            if (c[i].path == CLASP_GEMM_CLBLAST) continue; /* covered above; compiles are slow */
            gemm_case g = {shapes[s][0],
                           shapes[s][1],
                           shapes[s][2],
                           shapes[s][3],
                           shapes[s][4],
                           1.0f,
                           0.5f,
                           1,
                           2,
                           3,
                           1,
                           2,
                           3};
            assert_int_equal(run_case(ctx, &c[i], &g), 1);
        }
    }
    clasp_ctx_free(ctx);
}

/* clasp_gemm_force, clasp_gemm_set_choice and CLASP_GEMM steer clasp_gemm. */
static void test_choice_api(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_gemm_params got;
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 64, 392, 800, &got));
    assert_int_not_equal(got.path, CLASP_GEMM_AUTO);
    if (clasp_ctx_device(ctx)->is_cpu) assert_int_equal(got.path, CLASP_GEMM_TILED);

    clasp_gemm_params f =
        {.path = CLASP_GEMM_TILED, .tm = 16, .tn = 16, .wg = 2, .splitk = 5, .order = 1};
    assert_ok(clasp_gemm_force(ctx, &f));
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 64, 392, 800, &got));
    assert_memory_equal(&got, &f, sizeof f);
    gemm_case g = {0, 0, 64, 392, 800, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(run_case(ctx, NULL, &g), 1);
    /* A forced tile that does not fit falls back to the general kernel. */
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 3, 392, 800, &got));
    assert_int_equal(got.path, CLASP_GEMM_GENERAL);
    gemm_case g3 = {0, 0, 3, 392, 80, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(run_case(ctx, NULL, &g3), 1);
    assert_ok(clasp_gemm_force(ctx, NULL));

    clasp_gemm_params rec =
        {.path = CLASP_GEMM_TILED, .tm = 4, .tn = 32, .wg = 8, .splitk = 2, .order = 2};
    assert_ok(clasp_gemm_set_choice(ctx, 1, 0, 50, 60, 70, &rec));
    assert_ok(clasp_gemm_choose(ctx, 1, 0, 50, 60, 70, &got));
    assert_memory_equal(&got, &rec, sizeof rec);
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 50, 60, 70, &got)); /* other problem: heuristic */
    gemm_case g2 = {1, 0, 50, 60, 70, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(run_case(ctx, NULL, &g2), 1);

    clasp_gemm_params bad = {.path = CLASP_GEMM_TILED, .tm = 8, .tn = 24};
    assert_int_equal(clasp_gemm_force(ctx, &bad), CLASP_ERR_INVALID);
    clasp_ctx_free(ctx);

    /* The environment variable is read when a context first runs a gemm. */
    setenv("CLASP_GEMM", "general", 1);
    ctx = tu_ctx();
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 64, 392, 800, &got));
    assert_int_equal(got.path, CLASP_GEMM_GENERAL);
    clasp_ctx_free(ctx);
    setenv("CLASP_GEMM", "clblast", 1);
    ctx = tu_ctx();
    assert_ok(clasp_gemm_choose(ctx, 0, 0, 64, 392, 800, &got));
    assert_int_equal(got.path, CLASP_GEMM_CLBLAST);
    clasp_ctx_free(ctx);
    setenv("CLASP_GEMM", "fastest", 1);
    ctx = tu_ctx();
    assert_int_equal(clasp_gemm_choose(ctx, 0, 0, 64, 392, 800, &got), CLASP_ERR_CONFIG);
    clasp_ctx_free(ctx);
    unsetenv("CLASP_GEMM");
}

static void test_invalid(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_tensor *a = NULL, *b = NULL, *c = NULL, *ci = NULL;
    assert_ok(clasp_tensor_new2(ctx, 4, 5, &a));
    assert_ok(clasp_tensor_new2(ctx, 5, 6, &b));
    assert_ok(clasp_tensor_new2(ctx, 4, 6, &c));
    assert_ok(clasp_tensor_new(ctx, CLASP_I32, 2, (int[]){4, 6}, &ci));
    assert_ok(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 0, 5, b, 0, 6, 0, c, 0, 6));
    assert_int_equal(clasp_gemm(ctx, 0, 0, -1, 6, 5, 1, a, 0, 5, b, 0, 6, 0, c, 0, 6),
                     CLASP_ERR_INVALID);
    assert_int_equal(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 0, 4, b, 0, 6, 0, c, 0, 6),
                     CLASP_ERR_INVALID); /* lda < k */
    assert_int_equal(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 1, 5, b, 0, 6, 0, c, 0, 6),
                     CLASP_ERR_INVALID); /* a runs past its end */
    assert_int_equal(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 0, 5, b, 0, 6, 0, c, 0, 7),
                     CLASP_ERR_INVALID); /* c runs past its end */
    assert_int_equal(clasp_gemm(ctx, 0, 1, 4, 6, 5, 1, a, 0, 5, b, 0, 6, 0, c, 0, 6),
                     CLASP_ERR_INVALID); /* b^T is [6,5]: needs 30 elements at ld 6 -> 35 */
    assert_int_equal(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 0, 5, b, 0, 6, 0, NULL, 0, 6),
                     CLASP_ERR_INVALID);
    assert_int_equal(clasp_gemm(ctx, 0, 0, 4, 6, 5, 1, a, 0, 5, b, 0, 6, 0, ci, 0, 6),
                     CLASP_ERR_INVALID);
    assert_int_equal(clasp_gemm(ctx, 0, 0, 2, 2, 2, 1, c, 0, 2, b, 0, 6, 0, c, 2, 2),
                     CLASP_ERR_INVALID); /* c overlaps a */
    /* Disjoint parts of one buffer are fine. */
    assert_ok(clasp_gemm(ctx, 0, 0, 2, 2, 2, 1, c, 0, 2, b, 0, 6, 0, c, 10, 2));
    assert_ok(clasp_gemm(ctx, 0, 0, 0, 6, 5, 1, a, 0, 5, b, 0, 6, 0, c, 0, 6));
    assert_ok(clasp_ctx_finish(ctx));
    clasp_tensor_free(a);
    clasp_tensor_free(b);
    clasp_tensor_free(c);
    clasp_tensor_free(ci);
    clasp_ctx_free(ctx);
}

/* Plain operands that the tiled path packs into 16-column panels itself:
 * a transposed B written straight into panels (n a multiple of 16, k not),
 * and a plain B whose rows are a page or more apart (NN, TN and the
 * swapped TT product), with offsets, padded leading dimensions, alpha and
 * beta; tiled (also split-K) and the automatic choice. */
static void test_packed_inside(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const gemm_case cases[] = {
        {0, 1, 336, 64, 70, 1.0f, 0.0f, 0, 0, 0, 0, 0, 0},
        {0, 1, 130, 48, 37, 0.5f, 1.0f, 3, 5, 2, 1, 2, 3},
        {0, 0, 64, 1024, 40, 1.0f, 0.0f, 0, 0, 0, 0, 0, 0},
        {0, 0, 70, 1040, 33, 2.0f, 0.5f, 1, 7, 2, 2, 0, 1},
        {1, 0, 96, 1024, 19, 1.0f, 1.0f, 0, 3, 0, 0, 16, 0},
        {1, 1, 1024, 64, 20, 1.0f, 0.0f, 0, 0, 0, 0, 0, 0},
    };
    const clasp_gemm_params *ps[] = {NULL, &P_TILED, &P_SPLIT};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t p = 0; p < sizeof ps / sizeof ps[0]; p++) {
            gemm_case g = cases[i];
            if (!run_case(ctx, ps[p], &g))
                fail_msg("case %zu refused by path %zu (t%d%d %dx%dx%d)", i, p, g.ta, g.tb, g.m,
                         g.n, g.k);
        }
    clasp_ctx_free(ctx);
}

/* clasp_gemm_packed_b against the reference on B unpacked: both A
 * layouts, 16- and 32-wide tiles (n = 48 leaves half a 32-wide tile),
 * split-K (long k), alpha/beta with NaN in C for beta = 0, offsets, and
 * the refusal of n not a multiple of 16. */
static void test_packed_b(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    static const int shapes[][3] = {
        /* m   n    k */
        {1, 16, 1}, {3, 48, 7}, {17, 32, 33}, {64, 96, 576}, {40, 16, 3000}, {9, 160, 64},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int ta = 0; ta < 2; ta++) {
            gemm_case g = {ta,
                           0,
                           shapes[i][0],
                           shapes[i][1],
                           shapes[i][2],
                           ta ? 0.5f : 1.0f,
                           ta ? 2.0f : 0.0f,
                           3,
                           5,
                           2,
                           0,
                           0,
                           0};
            int lda = ta ? g.m : g.k, ldb = g.n, ldc = g.n;
            size_t na = g.off_a + (size_t)g.m * g.k, nb = g.off_b + (size_t)g.k * g.n;
            size_t nc = g.off_c + (size_t)g.m * g.n;
            float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
            float *bp = malloc(nb * sizeof *bp), *c0 = malloc(nc * sizeof *c0);
            float *want = malloc(nc * sizeof *want);
            assert_true(a && b && bp && c0 && want);
            tu_fill_random(a, na, 900 + (uint32_t)i, -1, 1);
            tu_fill_random(b, nb, 920 + (uint32_t)i, -1, 1);
            tu_fill_random(c0, nc, 940 + (uint32_t)i, -1, 1);
            if (g.beta == 0)
                for (size_t j = g.off_c; j < nc; j++) c0[j] = NAN;
            memcpy(bp, b, nb * sizeof *bp);
            for (int r = 0; r < g.k; r++)
                for (int j = 0; j < g.n; j++)
                    bp[g.off_b + (size_t)(j / 16) * 16 * g.k + (size_t)r * 16 + j % 16] =
                        b[g.off_b + (size_t)r * ldb + j];
            memcpy(want, c0, nc * sizeof *want);
            reference(&g, a, lda, b, ldb, c0, want, ldc);
            int sa[1] = {(int)na}, sb[1] = {(int)nb}, sc[1] = {(int)nc};
            clasp_tensor *tA = tu_tensor(ctx, 1, sa, a), *tB = tu_tensor(ctx, 1, sb, bp);
            clasp_tensor *tC = tu_tensor(ctx, 1, sc, c0);
            assert_ok(clasp_gemm_packed_b(ctx, ta, g.m, g.n, g.k, g.alpha, tA, g.off_a, lda, tB,
                                          g.off_b, g.beta, tC, g.off_c, ldc));
            float *got = tu_read(tC);
            double err = tu_max_rel_err(got + g.off_c, want + g.off_c, nc - g.off_c);
            if (!(err <= 1e-4 * sqrt((double)g.k)))
                fail_msg("packed B, trans_a %d m=%d n=%d k=%d: rel err %g", ta, g.m, g.n, g.k, err);
            /* Elements before C's offset are not touched. */
            assert_memory_equal(got, c0, g.off_c * sizeof *got);
            if (i == 0)
                assert_int_equal(clasp_gemm_packed_b(ctx, ta, g.m, 8, g.k, 1, tA, 0, lda, tB, 0, 0,
                                                     tC, 0, 8),
                                 CLASP_ERR_INVALID);
            clasp_error_clear();
            free(got);
            clasp_tensor_free(tA), clasp_tensor_free(tB), clasp_tensor_free(tC);
            free(a), free(b), free(bp), free(c0), free(want);
        }
    assert_ok(clasp_ctx_finish(ctx));
    clasp_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid),     cmocka_unit_test(test_odd_general),
        cmocka_unit_test(test_odd_tiled),   cmocka_unit_test(test_odd_dot),
        cmocka_unit_test(test_odd_auto),    cmocka_unit_test(test_alpha_beta),
        cmocka_unit_test(test_degenerate),  cmocka_unit_test(test_cnn_auto),
        cmocka_unit_test(test_cnn_tiled),   cmocka_unit_test(test_cnn_general),
        cmocka_unit_test(test_candidates),  cmocka_unit_test(test_choice_api),
        cmocka_unit_test(test_odd_clblast), cmocka_unit_test(test_cnn_clblast),
        cmocka_unit_test(test_packed_b),    cmocka_unit_test(test_packed_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
