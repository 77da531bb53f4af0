/* The square and fab attacks: their cores (square_core.c, fab_core.c)
 * driven by plain C linear models that count every query, the L-infinity
 * projection onto a hyperplane inside the box against a bisection
 * reference, known answers on linear models (where the smallest L-infinity
 * perturbation that flips an example is known in closed form), and the
 * plugins through the registry: budgets, boxes, x left alone,
 * reproducibility, pred = the model's prediction. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "clasp/registry.h"

#include "fab_core.h"
#include "square_core.h"

/* ---- a linear model on the host that counts queries --------------------- */

typedef struct lin_model {
    int d, k;
    const float *w; /* [k,d] */
    const float *b; /* [k] */
    long rows;      /* examples queried so far */
} lin_model;

static clasp_status lin_logits(void *self, const float *x, int n, float *z)
{
    lin_model *m = self;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m->k; j++) {
            double s = m->b[j];
            for (int e = 0; e < m->d; e++)
                s += (double)m->w[j * m->d + e] * x[(size_t)i * m->d + e];
            z[(size_t)i * m->k + j] = (float)s;
        }
    m->rows += n;
    return CLASP_OK;
}

static clasp_status lin_vjp(void *self, const float *dz, int n, float *dx)
{
    lin_model *m = self;
    for (int i = 0; i < n; i++)
        for (int e = 0; e < m->d; e++) {
            double s = 0;
            for (int j = 0; j < m->k; j++)
                s += (double)dz[(size_t)i * m->k + j] * m->w[j * m->d + e];
            dx[(size_t)i * m->d + e] = (float)s;
        }
    return CLASP_OK;
}

static host_oracle lin_oracle(lin_model *m, int c, int h, int w)
{
    host_oracle o = {m, c, h, w, m->k, lin_logits, lin_vjp};
    m->d = c * h * w;
    return o;
}

/* The closed-form smallest L-infinity distance at which a linear model
 * misclassifies x (label y), valid while the box [0,1] does not bind:
 * min over t != y of (z_y - z_t) / ||w_y - w_t||_1. */
static double lin_min_dist(const lin_model *m, const float *x, int y, int *argt)
{
    double best = INFINITY;
    for (int t = 0; t < m->k; t++) {
        if (t == y) continue;
        double margin = m->b[y] - m->b[t], l1 = 0;
        for (int e = 0; e < m->d; e++) {
            double dw = (double)m->w[y * m->d + e] - m->w[t * m->d + e];
            margin += dw * x[e];
            l1 += fabs(dw);
        }
        double r = margin / l1;
        if (r < best) {
            best = r;
            if (argt) *argt = t;
        }
    }
    return best;
}

/* ---- square: schedule and queries --------------------------------------- */

static void test_square_schedule(void **state)
{
    (void)state;
    /* p halves after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000. */
    const int its[] = {0,    10,   11,   50,   51,   200,  201,  500,  501,  1000,
                       1001, 2000, 2001, 4000, 4001, 6000, 6001, 8000, 8001, 9999};
    const double div[] = {1,  1,  2,  2,  4,   4,   8,   8,   16,  16,
                          32, 32, 64, 64, 128, 128, 256, 256, 512, 512};
    for (size_t i = 0; i < sizeof its / sizeof its[0]; i++) {
        double p = square_p(0.8, its[i], 5000);
        if (fabs(p - 0.8 / div[i]) > 1e-12)
            fail_msg("p at iteration %d = %g, expected %g", its[i], p, 0.8 / div[i]);
    }
    /* More than 10000 queries stretch the schedule. */
    assert_true(fabs(square_p(0.8, 20, 20000) - 0.8) < 1e-12);
    assert_true(fabs(square_p(0.8, 22, 20000) - 0.4) < 1e-12);
    assert_true(fabs(square_p(0.8, 16002, 20000) - 0.8 / 512) < 1e-12);
    /* Side of the square on 28x28 images: round(sqrt(p * 784)), at least 1. */
    assert_int_equal(square_side(0.8, 0, 5000, 28, 28), 25);
    assert_int_equal(square_side(0.8, 11, 5000, 28, 28), 18);
    assert_int_equal(square_side(0.8, 9000, 5000, 28, 28), 1);
    assert_int_equal(square_side(1.0, 0, 5000, 6, 4), 4);
}

/* A model that never changes its mind: every example spends the whole
 * budget, so the count per example is exact. */
static void test_square_queries_exact(void **state)
{
    (void)state;
    enum { N = 5, C = 2, H = 5, W = 4, D = C * H * W, K = 3 };
    float w[K * D] = {0}, b[K] = {1.0f, 0.0f, -1.0f};
    lin_model lm = {.k = K, .w = w, .b = b};
    host_oracle o = lin_oracle(&lm, C, H, W);
    float x[N * D], adv[N * D];
    int32_t y[N] = {0, 0, 0, 0, 0};
    int q[N];
    tu_fill_random(x, N * D, 3, 0.0f, 1.0f);
    for (int restarts = 1; restarts <= 3; restarts += 2)
        for (int nq = 1; nq <= 40; nq += 13) {
            square_cfg cfg = {0.05f, nq, 0.8, restarts};
            clasp_rng rng = clasp_rng_make(5, 1);
            lm.rows = 0;
            assert_ok(square_run(&cfg, &o, x, y, N, &rng, adv, q));
            for (int i = 0; i < N; i++)
                if (q[i] != restarts * nq)
                    fail_msg("n_queries %d, restarts %d: example %d used %d queries", nq, restarts,
                             i, q[i]);
            assert_int_equal(lm.rows, (long)N * restarts * nq);
        }
}

/* square: a linear model flips exactly the examples whose closed-form
 * distance is clearly below eps, within the budget, and none beyond eps
 * (no point of the ball can flip those). */
static void test_square_linear_known_answer(void **state)
{
    (void)state;
    enum { N = 40, C = 1, H = 6, W = 6, D = C * H * W, K = 3 };
    float w[K * D], b[K] = {0.1f, 0.0f, -0.1f};
    tu_fill_random(w, K * D, 17, -1.0f, 1.0f);
    lin_model lm = {.k = K, .w = w, .b = b};
    host_oracle o = lin_oracle(&lm, C, H, W);
    float x[N * D], adv[N * D];
    int32_t y[N];
    double want[N];
    /* Inside [0.35, 0.65]: the box does not bind within 0.35. */
    tu_fill_random(x, N * D, 19, 0.35f, 0.65f);
    for (int i = 0; i < N; i++) {
        float z[K];
        lin_logits(&lm, x + (size_t)i * D, 1, z);
        y[i] = fab_argmax(z, K);
        want[i] = lin_min_dist(&lm, x + (size_t)i * D, y[i], NULL);
    }
    y[N - 1] = (y[N - 1] + 1) % K; /* misclassified already: one query */
    const float eps = 0.04f;
    square_cfg cfg = {eps, 2000, 0.8, 1};
    clasp_rng rng = clasp_rng_make(11, 2);
    int q[N], below = 0, above = 0;
    lm.rows = 0;
    assert_ok(square_run(&cfg, &o, x, y, N, &rng, adv, q));
    long total = 0;
    for (int i = 0; i < N; i++) {
        total += q[i];
        float z[K];
        lin_logits(&lm, adv + (size_t)i * D, 1, z);
        int flipped = square_margin(z, K, y[i]) <= 0;
        float r = fab_linf(adv + (size_t)i * D, x + (size_t)i * D, D);
        if (r > eps) fail_msg("example %d: |adv - x| = %g > eps", i, (double)r);
        if (q[i] < 1 || q[i] > cfg.n_queries) fail_msg("example %d used %d queries", i, q[i]);
        if (i == N - 1) {
            assert_int_equal(q[i], 1);
            continue;
        }
        if (want[i] < 0.8 * eps) {
            below++;
            if (!flipped)
                fail_msg("example %d at distance %g < eps %g not flipped", i, want[i], (double)eps);
            assert_true(q[i] < cfg.n_queries); /* it stopped there */
        }
        if (want[i] > eps) {
            above++;
            if (flipped)
                fail_msg("example %d at distance %g > eps %g flipped", i, want[i], (double)eps);
            assert_int_equal(q[i], cfg.n_queries);
        }
    }
    assert_true(below >= 5 && above >= 5);
    assert_int_equal(total, lm.rows - (long)N); /* minus the check queries above */
}

/* ---- fab: the projection ----------------------------------------------- */

/* Range of <w, u> over u in the box around t of radius r, inside [0,1]. */
static void box_range(const float *t, const float *w, int d, double r, double *lo, double *hi)
{
    *lo = *hi = 0;
    for (int i = 0; i < d; i++) {
        double a = fmax(0.0, t[i] - r), b = fmin(1.0, t[i] + r);
        *lo += fmin(w[i] * a, w[i] * b);
        *hi += fmax(w[i] * a, w[i] * b);
    }
}

static void test_fab_projection(void **state)
{
    (void)state;
    fab_room room[16];
    uint32_t seed = 100;
    for (int trial = 0; trial < 400; trial++) {
        int d = 1 + trial % 12;
        float t[16], w[16], delta[16];
        tu_fill_random(t, (size_t)d, seed++, 0.0f, 1.0f);
        tu_fill_random(w, (size_t)d, seed++, -2.0f, 2.0f);
        for (int i = 0; i < d; i++) {
            if ((trial + i) % 7 == 0) w[i] = 0.0f;
            if ((trial + i) % 5 == 0) t[i] = (trial & 1) ? 1.0f : 0.0f;
        }
        double lo, hi;
        box_range(t, w, d, 1.0, &lo, &hi); /* all of [0,1]^d */
        float r01;
        tu_fill_random(&r01, 1, seed++, -0.3f, 1.3f);
        double b = lo + (hi - lo) * r01; /* sometimes out of reach */
        fab_project_linf(t, w, b, (size_t)d, delta, room);
        double dot = 0, norm = 0;
        for (int i = 0; i < d; i++) {
            float u = t[i] + delta[i];
            if (u < -1e-6f || u > 1.0f + 1e-6f)
                fail_msg("trial %d: coordinate %d leaves the box", trial, i);
            if (w[i] == 0.0f && delta[i] != 0.0f)
                fail_msg("trial %d: w = 0 coordinate moved", trial);
            dot += (double)w[i] * u;
            norm = fmax(norm, fabs(delta[i]));
        }
        double scale = 1e-5 * (1 + fabs(b) + hi - lo);
        if (b < lo || b > hi) {
            /* Out of reach: the box's nearest extreme. */
            double near = b < lo ? lo : hi;
            if (fabs(dot - near) > scale)
                fail_msg("trial %d: <w,u> = %g, expected the extreme %g (b = %g)", trial, dot, near,
                         b);
            continue;
        }
        if (fabs(dot - b) > scale) fail_msg("trial %d: <w,u> = %g, expected %g", trial, dot, b);
        /* The smallest radius whose box reaches b, by bisection. */
        double a = 0, z = 1;
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (a + z), l, h;
            box_range(t, w, d, mid, &l, &h);
            if (l <= b && b <= h) z = mid;
            else a = mid;
        }
        if (fabs(norm - z) > 1e-5)
            fail_msg("trial %d (d=%d): |delta| = %.8g, smallest %.8g", trial, d, norm, z);
    }
}

/* ---- fab: known answers on linear models -------------------------------- */

static void test_fab_linear_known_answer(void **state)
{
    (void)state;
    enum { N = 8, C = 1, H = 4, W = 5, D = C * H * W };
    for (int k = 2; k <= 3; k++)
        for (int targeted = 1; targeted >= 0; targeted--) {
            float w[3 * D], b[3] = {0.3f, -0.1f, 0.05f};
            tu_fill_random(w, (size_t)k * D, 40u + (uint32_t)k, -1.0f, 1.0f);
            lin_model lm = {.k = k, .w = w, .b = b};
            host_oracle o = lin_oracle(&lm, C, H, W);
            float x[N * D], adv[N * D], dist[N];
            int32_t y[N];
            tu_fill_random(x, N * D, 50u + (uint32_t)k, 0.3f, 0.7f);
            double want[N];
            for (int i = 0; i < N; i++) {
                float z[3];
                lin_logits(&lm, x + (size_t)i * D, 1, z);
                y[i] = fab_argmax(z, k);
                want[i] = lin_min_dist(&lm, x + (size_t)i * D, y[i], NULL);
            }
            fab_cfg cfg = {0.5f, 100, k - 1, 1, 0.1, 1.05, 0.9, targeted, 0};
            clasp_rng rng = clasp_rng_make(1, 1);
            assert_ok(fab_attack(&cfg, &o, x, y, N, &rng, adv, dist));
            int checked = 0;
            for (int i = 0; i < N; i++) {
                if (want[i] > 0.25) continue; /* the box might bind */
                checked++;
                float z[3];
                lin_logits(&lm, adv + (size_t)i * D, 1, z);
                if (fab_argmax(z, k) == y[i])
                    fail_msg("k=%d targeted=%d example %d (distance %g) not flipped", k, targeted,
                             i, want[i]);
                float r = fab_linf(adv + (size_t)i * D, x + (size_t)i * D, D);
                assert_true(fabsf(r - dist[i]) < 1e-7f);
                /* Never closer than the closed form; within 2% of it. */
                if (r < want[i] * (1 - 1e-4) || r > want[i] * 1.02)
                    fail_msg("k=%d targeted=%d example %d: distance %g, minimal %g", k, targeted, i,
                             (double)r, want[i]);
            }
            if (checked < N / 2) fail_msg("k=%d: only %d examples near enough", k, checked);
        }
}

/* Two classes: the targeted and untargeted versions are the same
 * algorithm and give the same points. */
static void test_fab_two_classes_same(void **state)
{
    (void)state;
    enum { N = 6, D = 12 };
    float w[2 * D], b[2] = {0.2f, 0.0f};
    tu_fill_random(w, 2 * D, 61, -1.0f, 1.0f);
    lin_model lm = {.k = 2, .w = w, .b = b};
    host_oracle o = lin_oracle(&lm, 1, 3, 4);
    float x[N * D], a1[N * D], a2[N * D];
    int32_t y[N];
    tu_fill_random(x, N * D, 62, 0.0f, 1.0f);
    for (int i = 0; i < N; i++) y[i] = i % 2;
    fab_cfg cfg = {0.3f, 20, 9, 2, 0.1, 1.05, 0.9, 1, 0};
    clasp_rng r1 = clasp_rng_make(3, 0), r2 = clasp_rng_make(3, 0);
    assert_ok(fab_attack(&cfg, &o, x, y, N, &r1, a1, NULL));
    cfg.targeted = 0;
    assert_ok(fab_attack(&cfg, &o, x, y, N, &r2, a2, NULL));
    assert_memory_equal(a1, a2, sizeof a1);
}

/* A small ReLU network on the host: z = W2 relu(W1 x + b1) + b2. */
typedef struct mlp_model {
    int d, hid, k;
    float w1[8 * 12], b1[8], w2[3 * 8], b2[3];
    float hbuf[64 * 8]; /* hidden activations of the last logits call */
    int n;
} mlp_model;

static clasp_status mlp_logits(void *self, const float *x, int n, float *z)
{
    mlp_model *m = self;
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        float *h = m->hbuf + (size_t)i * m->hid;
        for (int a = 0; a < m->hid; a++) {
            double s = m->b1[a];
            for (int e = 0; e < m->d; e++)
                s += (double)m->w1[a * m->d + e] * x[(size_t)i * m->d + e];
            h[a] = s > 0 ? (float)s : 0.0f;
        }
        for (int j = 0; j < m->k; j++) {
            double s = m->b2[j];
            for (int a = 0; a < m->hid; a++) s += (double)m->w2[j * m->hid + a] * h[a];
            z[(size_t)i * m->k + j] = (float)s;
        }
    }
    m->n = n;
    return CLASP_OK;
}

static clasp_status mlp_vjp(void *self, const float *dz, int n, float *dx)
{
    mlp_model *m = self;
    assert_int_equal(n, m->n);
    for (int i = 0; i < n; i++) {
        const float *h = m->hbuf + (size_t)i * m->hid;
        float dh[8];
        for (int a = 0; a < m->hid; a++) {
            double s = 0;
            for (int j = 0; j < m->k; j++)
                s += (double)dz[(size_t)i * m->k + j] * m->w2[j * m->hid + a];
            dh[a] = h[a] > 0 ? (float)s : 0.0f;
        }
        for (int e = 0; e < m->d; e++) {
            double s = 0;
            for (int a = 0; a < m->hid; a++) s += (double)dh[a] * m->w1[a * m->d + e];
            dx[(size_t)i * m->d + e] = (float)s;
        }
    }
    return CLASP_OK;
}

/* Evaluating only the rows that stepped back gives what evaluating all
 * rows again gives, on a nonlinear model with a batch-independent oracle. */
static void test_fab_partial_reforward(void **state)
{
    (void)state;
    enum { N = 10, D = 12 };
    mlp_model m = {.d = D, .hid = 8, .k = 3};
    tu_fill_random(m.w1, sizeof m.w1 / sizeof m.w1[0], 81, -1.0f, 1.0f);
    tu_fill_random(m.b1, 8, 82, -0.5f, 0.5f);
    tu_fill_random(m.w2, 24, 83, -1.0f, 1.0f);
    tu_fill_random(m.b2, 3, 84, -0.2f, 0.2f);
    host_oracle o = {&m, 1, 3, 4, 3, mlp_logits, mlp_vjp};
    float x[N * D], z[N * 3], a1[N * D], a2[N * D], d1[N], d2[N];
    int32_t y[N];
    tu_fill_random(x, N * D, 85, 0.0f, 1.0f);
    mlp_logits(&m, x, N, z);
    for (int i = 0; i < N; i++) y[i] = fab_argmax(z + 3 * i, 3);
    for (int targeted = 0; targeted <= 1; targeted++) {
        fab_cfg cfg = {0.3f, 30, 2, 2, 0.1, 1.05, 0.9, targeted, 0};
        clasp_rng r1 = clasp_rng_make(8, 0), r2 = clasp_rng_make(8, 0);
        assert_ok(fab_attack(&cfg, &o, x, y, N, &r1, a1, d1));
        cfg.reforward_all = 1;
        assert_ok(fab_attack(&cfg, &o, x, y, N, &r2, a2, d2));
        assert_memory_equal(a1, a2, sizeof a1);
        int flipped = 0;
        for (int i = 0; i < N; i++) flipped += d1[i] < INFINITY && d1[i] > 0;
        if (flipped < 2) fail_msg("targeted=%d: only %d examples flipped", targeted, flipped);
    }
}

/* ---- the plugins ---------------------------------------------------------- */

static clasp_attack_instance *attack(const char *name, const char *const *kv)
{
    return tu_attack(tu_shared_reg, name, kv);
}

/* Runs an attack; checks x untouched and pred = the model's prediction. */
static void run(clasp_attack_instance *a, clasp_model *m, const float *xh, const int32_t *yh, int n,
                uint64_t seed, float **adv, int32_t **pred_out)
{
    assert_ok(tu_attack_run(tu_shared_ctx, a, m, xh, yh, n, seed, adv, pred_out));
}

enum { NB = 10 };

static void test_plugins_invariants(void **state)
{
    (void)state;
    struct {
        const char *arch;
        int c, h, w, k;
    } models[] = {
        {"conv3x3-4p1,relu,maxpool2,flatten,fc16,relu,fc3", 1, 8, 8, 3},
        {"conv3x3-4p1nb,bn,relu:a,conv3x3-4p1:b,add(a+b),flatten,fc2", 2, 6, 5, 2},
    };
    struct {
        const char *name;
        const char *kv[6];
        float eps;
    } cases[] = {
        {"square", {"eps=0.1", "n_queries=60", NULL}, 0.1f},
        {"square", {"eps=0.3", "n_queries=25", "restarts=2", "p_init=0.3", NULL}, 0.3f},
        {"fab", {"eps=0.1", "steps=8", NULL}, 0.1f},
        {"fab", {"eps=0.2", "steps=5", "restarts=2", "n_target_classes=1", NULL}, 0.2f},
        {"fab", {"eps=0.3", "steps=5", "targeted=false", NULL}, 0.3f},
    };
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        clasp_model *m = tu_model(tu_shared_ctx, models[mi].arch, models[mi].c, models[mi].h,
                                  models[mi].w, 5 + mi);
        int d = models[mi].c * models[mi].h * models[mi].w;
        float *xh = malloc((size_t)NB * d * sizeof(float));
        int32_t yh[NB];
        tu_fill_random(xh, (size_t)NB * d, 11, 0.0f, 1.0f);
        xh[0] = 0.0f, xh[1] = 1.0f, xh[d + 3] = 0.0f, xh[2 * d + 4] = 1.0f;
        /* Labels = the clean prediction mostly, so there is work to do. */
        clasp_tensor *xt =
            tu_tensor(tu_shared_ctx, 4, (int[]){NB, models[mi].c, models[mi].h, models[mi].w}, xh);
        clasp_tensor *pt = tu_tensor_i32(tu_shared_ctx, 1, (int[]){NB}, NULL);
        clasp_model_set_train(m, 0);
        assert_ok(clasp_model_predict(m, xt, pt));
        assert_ok(clasp_tensor_read(pt, yh));
        yh[NB - 1] = (yh[NB - 1] + 1) % models[mi].k; /* one already misclassified */
        clasp_tensor_free(xt), clasp_tensor_free(pt);
        int any_moved = 0;
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            clasp_attack_instance *a = attack(cases[t].name, cases[t].kv);
            float *a1, *a2;
            int32_t *p1, *p2;
            run(a, m, xh, yh, NB, 42, &a1, &p1);
            run(a, m, xh, yh, NB, 42, &a2, &p2);
            if (memcmp(a1, a2, (size_t)NB * d * sizeof(float)) != 0)
                fail_msg("%s case %zu: same seed, different x_adv", cases[t].name, t);
            assert_memory_equal(p1, p2, NB * sizeof *p1);
            for (int i = 0; i < NB * d; i++) {
                if (!(a1[i] >= 0.0f && a1[i] <= 1.0f))
                    fail_msg("%s case %zu: x_adv[%d] = %g outside [0,1]", cases[t].name, t, i,
                             (double)a1[i]);
                if (fabsf(a1[i] - xh[i]) > cases[t].eps)
                    fail_msg("%s case %zu: |x_adv - x| = %g > eps", cases[t].name, t,
                             (double)fabsf(a1[i] - xh[i]));
                any_moved |= a1[i] != xh[i];
            }
            /* The misclassified example is left as it is. */
            assert_memory_equal(a1 + (size_t)(NB - 1) * d, xh + (size_t)(NB - 1) * d,
                                (size_t)d * sizeof(float));
            for (int i = 0; i < NB; i++) assert_true(p1[i] >= 0 && p1[i] < models[mi].k);
            free(a1), free(a2), free(p1), free(p2);
            clasp_attack_free(a);
        }
        assert_true(any_moved);
        free(xh);
        clasp_model_free(m);
    }
}

/* Through the plugins on a clasp linear model: square flips the examples
 * well inside eps and none beyond it; fab finds the closed-form distance. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_plugins_linear(void **state)
{
    (void)state;
    enum { N = 16, D = 16, K = 2 };
    float w[K * D], b[K] = {0.0f, 0.0f};
    tu_fill_random(w, K * D, 71, -1.0f, 1.0f);
    for (int e = 0; e < D; e++) b[0] -= 0.5f * (w[e] - w[D + e]); /* boundary through the middle */
    clasp_model *m = tu_model(tu_shared_ctx, "flatten,fc2", 1, 4, 4, 1);
    assert_ok(clasp_tensor_write(clasp_model_param(m, 0), w));
    assert_ok(clasp_tensor_write(clasp_model_param(m, 1), b));
    lin_model lm = {.k = K, .d = D, .w = w, .b = b};
    float x[N * D];
    int32_t y[N];
    double want[N], sorted[N];
    tu_fill_random(x, N * D, 72, 0.3f, 0.7f);
    for (int i = 0; i < N; i++) {
        float z[K];
        lin_logits(&lm, x + (size_t)i * D, 1, z);
        y[i] = fab_argmax(z, K);
        sorted[i] = want[i] = lin_min_dist(&lm, x + (size_t)i * D, y[i], NULL);
    }
    qsort(sorted, N, sizeof *sorted, cmp_double);
    /* eps between the distances, so that some examples lie on each side. */
    const float eps = (float)(0.5 * (sorted[N / 2 - 1] + sorted[N / 2]));
    char eps_kv[64];
    snprintf(eps_kv, sizeof eps_kv, "eps=%.9g", (double)eps);
    clasp_attack_instance *sq = attack("square", (const char *[]){eps_kv, "n_queries=1500", NULL});
    clasp_attack_instance *fab = attack("fab", (const char *[]){"eps=0.25", "steps=100", NULL});
    float *adv;
    int32_t *pred;
    run(sq, m, x, y, N, 9, &adv, &pred);
    int below = 0, above = 0;
    for (int i = 0; i < N; i++) {
        if (want[i] < 0.8 * eps) below++, assert_int_not_equal(pred[i], y[i]);
        if (want[i] > eps) above++, assert_int_equal(pred[i], y[i]);
    }
    assert_true(below > 0 && above > 0);
    free(adv), free(pred);
    run(fab, m, x, y, N, 9, &adv, &pred);
    int checked = 0;
    for (int i = 0; i < N; i++) {
        float r = fab_linf(adv + (size_t)i * D, x + (size_t)i * D, D);
        if (want[i] < 0.2) {
            checked++;
            assert_int_not_equal(pred[i], y[i]);
            if (r < want[i] * (1 - 1e-3) || r > want[i] * 1.02)
                fail_msg("fab example %d: distance %g, minimal %g", i, (double)r, want[i]);
        } else if (want[i] > 0.25) {
            assert_int_equal(pred[i], y[i]);
            assert_true(r == 0.0f);
        }
    }
    assert_true(checked > 0);
    free(adv), free(pred);
    clasp_attack_free(sq), clasp_attack_free(fab);
    clasp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_square_schedule),
        cmocka_unit_test(test_square_queries_exact),
        cmocka_unit_test(test_square_linear_known_answer),
        cmocka_unit_test(test_fab_projection),
        cmocka_unit_test(test_fab_linear_known_answer),
        cmocka_unit_test(test_fab_two_classes_same),
        cmocka_unit_test(test_fab_partial_reforward),
        cmocka_unit_test(test_plugins_invariants),
        cmocka_unit_test(test_plugins_linear),
    };
    return cmocka_run_group_tests(tests, tu_setup_plugins, tu_teardown_plugins);
}
