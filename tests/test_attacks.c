/* The built-in attacks (fgsm, pgd, tpgd, cw) through the registry, and the
 * class-wise evaluation helper: budgets and boxes, x left alone,
 * reproducibility, tpgd(T=1) == pgd bit for bit, known answers on linear
 * models, and a small trained model on synthetic blobs. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/batch.h"
#include "clasp/eval.h"
#include "clasp/model.h"
#include "clasp/registry.h"

/* An attack from "k=v" strings (NULL-terminated). */
static clasp_attack_instance *attack(const char *name, const char *const *kv)
{
    return tu_attack(tu_shared_reg, name, kv);
}

/* Runs an attack on host data x (n examples of shape c,h,w) and returns the
 * adversarial images and predictions (malloc'd); checks that x is untouched
 * and that pred is the model's prediction on x_adv. */
static void run(clasp_attack_instance *a, clasp_model *m, const float *xh, const int32_t *yh, int n,
                uint64_t seed, float **adv, int32_t **pred_out)
{
    assert_ok(tu_attack_run(tu_shared_ctx, a, m, xh, yh, n, seed, adv, pred_out));
}

/* A small CNN with random weights on 1x8x8 inputs, three classes. */
static clasp_model *small_cnn(uint64_t seed)
{
    return tu_model(tu_shared_ctx, "conv3x3-4p1,relu,maxpool2,flatten,fc16,relu,fc3", 1, 8, 8,
                    seed);
}

/* flatten + fc(k) on 1x2x2 inputs with the given weights [k,4] and biases. */
static clasp_model *linear_model(int k, const float *w, const float *b)
{
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_FLATTEN}, {.kind = CLASP_LAYER_LINEAR, .out = k}};
    clasp_model *m;
    assert_ok(clasp_model_new(tu_shared_ctx, ls, 2, 1, 2, 2, &m));
    assert_ok(clasp_tensor_write(clasp_model_param(m, 0), w));
    assert_ok(clasp_tensor_write(clasp_model_param(m, 1), b));
    return m;
}

enum { NB = 8, DB = 64 };

static void batch_data(float *x, int32_t *y)
{
    tu_fill_random(x, NB * DB, 11, 0.0f, 1.0f);
    x[0] = 0.0f, x[1] = 1.0f, x[DB + 5] = 0.0f, x[2 * DB + 7] = 1.0f; /* box edges */
    for (int i = 0; i < NB; i++) y[i] = i % 3;
}

/* ---- budgets, boxes, untouched x ---------------------------------------- */

static void test_budget_and_box(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(5);
    float xh[NB * DB];
    int32_t yh[NB];
    batch_data(xh, yh);
    struct {
        const char *name;
        const char *kv[8];
        float eps; /* < 0: no L-inf budget (cw) */
    } cases[] = {
        {"fgsm", {"eps=0.1", NULL}, 0.1f},
        {"fgsm", {"eps=0.03", NULL}, 0.03f},
        {"pgd", {"eps=0.1", "steps=5", NULL}, 0.1f},
        {"pgd", {"eps=0.05", "steps=4", "alpha=0", "restarts=2", NULL}, 0.05f},
        {"pgd", {"eps=0.2", "steps=3", "alpha=0.1", "rand_init=false", NULL}, 0.2f},
        {"tpgd", {"eps=0.1", "steps=5", "T=5", NULL}, 0.1f},
        {"tpgd", {"eps=0.07", "steps=3", "T=0.5", "restarts=3", NULL}, 0.07f},
        {"cw", {"max_iterations=20", "binary_search_steps=2", "initial_const=1", NULL}, -1},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        clasp_attack_instance *a = attack(cases[t].name, cases[t].kv);
        float *adv;
        int32_t *pred;
        run(a, m, xh, yh, NB, 3, &adv, &pred);
        double worst = 0;
        for (int i = 0; i < NB * DB; i++) {
            if (!(adv[i] >= 0.0f && adv[i] <= 1.0f))
                fail_msg("%s case %zu: x_adv[%d] = %g outside [0,1]", cases[t].name, t, i,
                         (double)adv[i]);
            double d = fabs((double)adv[i] - (double)xh[i]);
            if (d > worst) worst = d;
        }
        if (cases[t].eps >= 0 && worst > cases[t].eps + 1e-6)
            fail_msg("%s case %zu: |x_adv - x|_inf = %g > eps %g", cases[t].name, t, worst,
                     (double)cases[t].eps);
        if (worst == 0 && strcmp(cases[t].name, "cw") != 0)
            fail_msg("%s case %zu: nothing moved", cases[t].name, t);
        for (int i = 0; i < NB; i++) assert_true(pred[i] >= 0 && pred[i] < 3);
        free(adv), free(pred);
        clasp_attack_free(a);
    }
    clasp_model_free(m);
}

static void test_eps_zero(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(6);
    float xh[NB * DB];
    int32_t yh[NB];
    batch_data(xh, yh);
    const char *names[] = {"fgsm", "pgd", "tpgd"};
    const char *kv[][4] = {{"eps=0", NULL},
                           {"eps=0", "steps=3", NULL},
                           {"eps=0", "steps=3", "T=3", NULL}};
    for (int t = 0; t < 3; t++) {
        clasp_attack_instance *a = attack(names[t], kv[t]);
        float *adv;
        int32_t *pred;
        run(a, m, xh, yh, NB, 1, &adv, &pred);
        if (memcmp(adv, xh, sizeof xh) != 0) fail_msg("%s with eps=0 changed x", names[t]);
        free(adv), free(pred);
        clasp_attack_free(a);
    }
    clasp_model_free(m);
}

/* ---- reproducibility ---------------------------------------------------- */

static void test_same_seed_same_output(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(7);
    float xh[NB * DB];
    int32_t yh[NB];
    batch_data(xh, yh);
    const char *names[] = {"fgsm", "pgd", "tpgd", "cw"};
    const char *kv[][5] = {{"eps=0.1", NULL},
                           {"eps=0.1", "steps=4", "restarts=2", NULL},
                           {"eps=0.1", "steps=4", "T=2", NULL},
                           {"max_iterations=10", "binary_search_steps=2", NULL}};
    for (int t = 0; t < 4; t++) {
        clasp_attack_instance *a = attack(names[t], kv[t]);
        float *a1, *a2, *a3;
        int32_t *p1, *p2, *p3;
        run(a, m, xh, yh, NB, 42, &a1, &p1);
        run(a, m, xh, yh, NB, 42, &a2, &p2);
        run(a, m, xh, yh, NB, 43, &a3, &p3);
        if (memcmp(a1, a2, sizeof xh) != 0) fail_msg("%s: same seed, different x_adv", names[t]);
        assert_memory_equal(p1, p2, NB * sizeof *p1);
        /* The random start makes pgd/tpgd depend on the seed. */
        if (t == 1 || t == 2) assert_true(memcmp(a1, a3, sizeof xh) != 0);
        free(a1), free(a2), free(a3), free(p1), free(p2), free(p3);
        clasp_attack_free(a);
    }
    clasp_model_free(m);
}

static void test_tpgd_t1_is_pgd(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(8);
    float xh[NB * DB];
    int32_t yh[NB];
    batch_data(xh, yh);
    const char *pgd_kv[][6] = {{"eps=0.1", "steps=6", NULL},
                               {"eps=0.08", "steps=5", "alpha=0", "restarts=3", NULL},
                               {"eps=0.1", "steps=4", "rand_init=false", NULL}};
    const char *tpgd_kv[][7] = {{"eps=0.1", "steps=6", "T=1", NULL},
                                {"eps=0.08", "steps=5", "alpha=0", "restarts=3", "T=1", NULL},
                                {"eps=0.1", "steps=4", "rand_init=false", NULL}};
    for (int t = 0; t < 3; t++) {
        clasp_attack_instance *a = attack("pgd", pgd_kv[t]);
        clasp_attack_instance *b = attack("tpgd", tpgd_kv[t]);
        float *xa, *xb;
        int32_t *pa, *pb;
        run(a, m, xh, yh, NB, 99, &xa, &pa);
        run(b, m, xh, yh, NB, 99, &xb, &pb);
        if (memcmp(xa, xb, sizeof xh) != 0) fail_msg("case %d: tpgd T=1 differs from pgd", t);
        assert_memory_equal(pa, pb, NB * sizeof *pa);
        free(xa), free(xb), free(pa), free(pb);
        clasp_attack_free(a), clasp_attack_free(b);
    }
    /* And a temperature really changes the attack. */
    clasp_attack_instance *a = attack("pgd", pgd_kv[0]);
    clasp_attack_instance *b = attack("tpgd", (const char *[]){"eps=0.1", "steps=6", "T=20", NULL});
    float *xa, *xb;
    int32_t *pa, *pb;
    run(a, m, xh, yh, NB, 99, &xa, &pa);
    run(b, m, xh, yh, NB, 99, &xb, &pb);
    assert_true(memcmp(xa, xb, sizeof xh) != 0);
    free(xa), free(xb), free(pa), free(pb);
    clasp_attack_free(a), clasp_attack_free(b);
    clasp_model_free(m);
}

/* ---- L2 distances of attack successes ------------------------------------ */

enum { NL = 6 };

typedef struct l2_log {
    float x[NL * 4], xa[NL * 4];
    int32_t y[NL], cp[NL], ap[NL];
} l2_log;

static clasp_status l2_on_batch(void *user, size_t first, const clasp_tensor *x,
                                const clasp_tensor *y, const clasp_tensor *x_adv,
                                const clasp_tensor *cp, const clasp_tensor *ap)
{
    l2_log *l = user;
    CLASP_TRY(clasp_tensor_read(x, l->x + first * 4));
    CLASP_TRY(clasp_tensor_read(x_adv, l->xa + first * 4));
    CLASP_TRY(clasp_tensor_read(y, l->y + first));
    CLASP_TRY(clasp_tensor_read(cp, l->cp + first));
    return clasp_tensor_read(ap, l->ap + first);
}

/* The evaluation's L2 distances, per class and ascending. A linear model
 * z1 - z0 = -2 x0 + 4 x1 - 2 x2 + 2 x3 on six examples away from the box
 * edges: FGSM moves every pixel by eps = 0.1, so each success lies at L2
 * distance 0.2 exactly; the successes are the clean-correct examples with
 * |z1 - z0| < 1 (FGSM changes it by 0.1 * 10): example 1 of class 0 and
 * examples 0 and 4 of class 1 (example 5 is misclassified already). CW's
 * distances vary; they are checked against a computation on the host. */
static void test_eval_l2_distances(void **state)
{
    (void)state;
    const float w[8] = {1, -2, 1, -1, -1, 2, -1, 1};
    const float b[2] = {0, 0};
    clasp_model *m = linear_model(2, w, b);
    float xs[NL * 4] = {0.5f, 0.3f, 0.5f, 0.5f, 0.5f, 0.2f, 0.5f, 0.5f, 0.3f, 0.7f, 0.3f, 0.6f,
                        0.7f, 0.2f, 0.6f, 0.3f, 0.4f, 0.4f, 0.4f, 0.4f, 0.6f, 0.3f, 0.5f, 0.4f};
    int32_t ys[NL] = {1, 0, 1, 0, 1, 1};
    clasp_dataset d = {.n = NL, .c = 1, .h = 2, .w = 2, .num_classes = 2, .x = xs, .y = ys};
    clasp_batcher *bt;
    assert_ok(clasp_batcher_new(tu_shared_ctx, &d, 4, &bt)); /* two batches: 4 + 2 */

    clasp_attack_instance *fg = attack("fgsm", (const char *[]){"eps=0.1", NULL});
    clasp_eval_options opt = {.attack = fg, .seed = 1, .l2 = 1};
    clasp_eval_result r;
    assert_ok(clasp_eval_run(m, bt, &opt, &r));
    assert_int_equal(r.attack_success[0], 1);
    assert_int_equal(r.attack_success[1], 2);
    assert_non_null(r.l2_success);
    for (int i = 0; i < 3; i++)
        if (fabsf(r.l2_success[i] - 0.2f) > 1e-6f)
            fail_msg("fgsm success %d at L2 %.7f, expected 0.2", i, (double)r.l2_success[i]);
    clasp_eval_result_free(&r);
    /* Without the option nothing is measured. */
    opt.l2 = 0;
    assert_ok(clasp_eval_run(m, bt, &opt, &r));
    assert_null(r.l2_success);
    clasp_eval_result_free(&r);

    clasp_attack_instance *cw =
        attack("cw", (const char *[]){"max_iterations=30", "binary_search_steps=3", NULL});
    l2_log log;
    memset(&log, 0, sizeof log);
    opt = (clasp_eval_options){.attack = cw,
                               .seed = 1,
                               .l2 = 1,
                               .on_batch = l2_on_batch,
                               .user = &log};
    assert_ok(clasp_eval_run(m, bt, &opt, &r));
    float want[NL];
    int nw = 0;
    for (int k = 0; k < 2; k++) {
        int from = nw;
        for (int i = 0; i < NL; i++) {
            if (log.y[i] != k || log.cp[i] != k || log.ap[i] == k) continue;
            double s = 0;
            for (int j = 0; j < 4; j++)
                s += ((double)log.xa[i * 4 + j] - log.x[i * 4 + j]) *
                     ((double)log.xa[i * 4 + j] - log.x[i * 4 + j]);
            float v = (float)sqrt(s);
            int at = nw++;
            while (at > from && want[at - 1] > v) want[at] = want[at - 1], at--;
            want[at] = v;
        }
        assert_int_equal(nw - from, r.attack_success[k]);
    }
    assert_true(nw > 0);
    for (int i = 0; i < nw; i++)
        if (fabsf(r.l2_success[i] - want[i]) > 1e-6f)
            fail_msg("cw success %d at L2 %.7f, expected %.7f", i, (double)r.l2_success[i],
                     (double)want[i]);
    clasp_eval_result_free(&r);
    clasp_attack_free(fg), clasp_attack_free(cw);
    clasp_batcher_free(bt);
    clasp_model_free(m);
}

/* ---- calibration: no gradient masking ----------------------------------- */

/* A calibrated model's temperature never changes a prediction, so it must
 * not change what an attack sees either: the input gradient (in eval mode,
 * where calibration applies) and PGD's result are bit for bit the same for
 * T = 0.1, 1 and 10, while the offsets do change the gradient. */
static void test_calibration_temperature_invisible(void **state)
{
    (void)state;
    clasp_model *m = small_cnn(21);
    float xh[NB * DB];
    int32_t yh[NB];
    batch_data(xh, yh);
    clasp_tensor *x = tu_tensor(tu_shared_ctx, 4, (int[]){NB, 1, 8, 8}, xh);
    clasp_tensor *y = tu_tensor_i32(tu_shared_ctx, 1, (int[]){NB}, yh);
    clasp_tensor *dx = tu_tensor(tu_shared_ctx, 4, (int[]){NB, 1, 8, 8}, NULL);
    const float offs[3] = {0.4f, -0.3f, 0.1f};
    const float temps[3] = {0.1f, 1.0f, 10.0f};
    float *g0 = NULL, *adv0 = NULL;
    int32_t *pred0 = NULL;
    clasp_model_set_train(m, 0);
    for (int t = 0; t < 3; t++) {
        assert_ok(clasp_model_set_calibration(m, offs, temps[t]));
        assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL));
        float *g = tu_read(dx);
        clasp_attack_instance *a = attack("pgd", (const char *[]){"eps=0.1", "steps=5", NULL});
        float *adv;
        int32_t *pred;
        run(a, m, xh, yh, NB, 5, &adv, &pred);
        clasp_attack_free(a);
        if (!g0) {
            g0 = g, adv0 = adv, pred0 = pred;
            double norm = 0;
            for (int i = 0; i < NB * DB; i++) norm += fabs((double)g[i]);
            assert_true(norm > 1e-6); /* a gradient that could differ */
            continue;
        }
        if (memcmp(g, g0, sizeof xh) != 0)
            fail_msg("T=%g: input gradient differs from T=0.1", (double)temps[t]);
        if (memcmp(adv, adv0, sizeof xh) != 0)
            fail_msg("T=%g: PGD's result differs from T=0.1", (double)temps[t]);
        assert_memory_equal(pred, pred0, NB * sizeof *pred);
        free(g), free(adv), free(pred);
    }
    /* The offsets are what the attack sees: without them the gradient changes. */
    assert_ok(clasp_model_set_calibration(m, NULL, 1.0f));
    assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL));
    float *g = tu_read(dx);
    assert_true(memcmp(g, g0, sizeof xh) != 0);
    free(g), free(g0), free(adv0), free(pred0);
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(dx);
    clasp_model_free(m);
}

/* ---- known answers on linear models ------------------------------------- */

/* For z = W x + b with two classes, ∇x CE(z, y) = p_o (w_o - w_y): FGSM
 * moves each pixel by eps * sign(w_o - w_y), clamped to [0,1]. */
static void test_fgsm_linear(void **state)
{
    (void)state;
    const float w[8] = {1, -2, 0, -1, /* class 0 */ -1, 2, 0, 1 /* class 1 */};
    const float b[2] = {0.1f, -0.1f};
    clasp_model *m = linear_model(2, w, b);
    const float xh[12] = {0.5f, 0.5f, 0.5f, 0.5f, 0.05f, 0.98f, 0.3f, 0.2f, 0.5f, 0.5f, 0.5f, 0.5f};
    const int32_t yh[3] = {0, 0, 1};
    clasp_attack_instance *a = attack("fgsm", (const char *[]){"eps=0.1", NULL});
    float *adv;
    int32_t *pred;
    run(a, m, xh, yh, 3, 1, &adv, &pred);
    /* Label 0: sign(w1 - w0) = (-1, +1, 0, +1); label 1: the opposite. */
    const float want[12] = {0.4f, 0.6f, 0.5f, 0.6f, 0.0f, 1.0f, 0.3f, 0.3f, 0.6f, 0.4f, 0.5f, 0.4f};
    for (int i = 0; i < 12; i++)
        if (fabsf(adv[i] - want[i]) > 1e-6f)
            fail_msg("fgsm x_adv[%d] = %.7f, expected %.7f", i, (double)adv[i], (double)want[i]);
    free(adv), free(pred);
    clasp_attack_free(a);
    clasp_model_free(m);
}

/* For two classes the margin is m(x) = a.x + c0 with a = w_0 - w_1; the
 * smallest L2 perturbation reaching margin -kappa is (m(x) + kappa) / |a|
 * (when the point stays inside the box, as here). */
static void test_cw_linear(void **state)
{
    (void)state;
    const float w[8] = {1, -1, 0.5f, 0.5f, -1, 1, -0.5f, -0.5f};
    const float b[2] = {0.25f, -0.25f};
    const float a[4] = {2, -2, 1, 1};
    const float c0 = 0.5f, norm_a = sqrtf(10.0f);
    clasp_model *m = linear_model(2, w, b);
    /* Two correctly classified points and one already misclassified. */
    const float xh[12] = {0.5f, 0.5f, 0.5f, 0.5f, 0.6f, 0.4f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    const int32_t yh[3] = {0, 0, 1};
    const float kappas[] = {0.0f, 0.5f};
    for (int kc = 0; kc < 2; kc++) {
        float kappa = kappas[kc];
        char kv0[32];
        snprintf(kv0, sizeof kv0, "confidence=%g", (double)kappa);
        clasp_attack_instance *at =
            attack("cw", (const char *[]){kv0, "binary_search_steps=9", "max_iterations=300",
                                          "initial_const=0.01", NULL});
        float *adv;
        int32_t *pred;
        run(at, m, xh, yh, 3, 1, &adv, &pred);
        for (int e = 0; e < 2; e++) {
            const float *x = xh + 4 * e, *xa = adv + 4 * e;
            double margin0 = c0, margin = c0, l2 = 0;
            for (int j = 0; j < 4; j++) {
                margin0 += a[j] * x[j];
                margin += a[j] * xa[j];
                l2 += (double)(xa[j] - x[j]) * (xa[j] - x[j]);
            }
            l2 = sqrt(l2);
            double best = (margin0 + kappa) / norm_a;
            fprintf(stderr, "cw kappa=%g example %d: L2 %.5f (analytic %.5f), margin %.5f\n",
                    (double)kappa, e, l2, best, margin);
            if (!(l2 >= 0.99 * best && l2 <= 1.10 * best))
                fail_msg("cw kappa=%g example %d: L2 %.5f, analytic minimum %.5f", (double)kappa, e,
                         l2, best);
            /* Success, and just so: the margin sits at -kappa. */
            if (!(margin <= -kappa + 1e-4 && margin >= -kappa - 0.1))
                fail_msg("cw kappa=%g example %d: margin %.5f, expected about %g", (double)kappa, e,
                         margin, (double)-kappa);
            assert_int_equal(pred[e], 1);
        }
        /* Already misclassified: (almost) no change. */
        for (int j = 8; j < 12; j++) assert_true(fabsf(adv[j] - xh[j]) < 1e-5f);
        free(adv), free(pred);
        clasp_attack_free(at);
    }
    clasp_model_free(m);
}

/* ---- a trained model on synthetic blobs, and the evaluation helper ------ */

enum { K = 3, SIDE = 8 };

/* Three classes of 1x8x8 images: a bright top half, left half or centre
 * square, plus Gaussian pixel noise. */
static void blobs(clasp_dataset *d, size_t n, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->n = n, d->c = 1, d->h = SIDE, d->w = SIDE, d->num_classes = K;
    d->x = malloc(n * SIDE * SIDE * sizeof(float));
    d->y = malloc(n * sizeof(int32_t));
    assert_non_null(d->x);
    assert_non_null(d->y);
    clasp_rng rng = clasp_rng_make(seed, 1);
    clasp_rng_normal_host(&rng, d->x, n * SIDE * SIDE, 0.0f, 0.2f);
    for (size_t i = 0; i < n; i++) {
        int k = (int)(i % K);
        d->y[i] = k;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int on = k == 0   ? r < SIDE / 2
                         : k == 1 ? c < SIDE / 2
                                  : (r >= 2 && r < 6 && c >= 2 && c < 6);
                float *p = &d->x[i * SIDE * SIDE + (size_t)(r * SIDE + c)];
                *p += on ? 0.7f : 0.3f;
                *p = *p < 0 ? 0 : *p > 1 ? 1 : *p;
            }
    }
    assert_int_equal(clasp_dataset_set_classes(d, d->num_classes), CLASP_OK);
    for (int k = 0; k < K; k++) snprintf(d->class_names[k], CLASP_CLASS_NAME_MAX, "blob%d", k);
}

typedef struct batch_log {
    size_t calls, examples, last_done;
} batch_log;

static clasp_status on_batch(void *user, size_t first, const clasp_tensor *x, const clasp_tensor *y,
                             const clasp_tensor *x_adv, const clasp_tensor *cp,
                             const clasp_tensor *ap)
{
    batch_log *l = user;
    (void)x_adv, (void)cp, (void)ap, (void)y;
    if (first != l->examples)
        return clasp_error(CLASP_ERR_INVALID, "batch at %zu, expected %zu", first, l->examples);
    l->calls++;
    l->examples += (size_t)x->shape[0];
    return CLASP_OK;
}

static void on_progress(void *user, size_t done, size_t total)
{
    batch_log *l = user;
    assert_true(done <= total);
    l->last_done = done;
}

static void check_result(const clasp_eval_result *r, size_t n, int attacked)
{
    assert_int_equal(r->per_class.num_classes, K);
    assert_int_equal(r->total, (int64_t)n);
    assert_int_equal(clasp_counts_n(&r->per_class), (int64_t)n);
    for (int k = 0; k < K; k++) {
        int64_t row = 0, crow = 0;
        for (int j = 0; j < K; j++) row += r->flow[k * K + j], crow += r->confusion[k * K + j];
        assert_int_equal(row, r->per_class.count[k]);
        assert_int_equal(crow, r->per_class.count[k]);
        assert_int_equal(r->per_class.robust_correct[k], r->flow[k * K + k]);
        assert_int_equal(r->per_class.clean_correct[k], r->confusion[k * K + k]);
        assert_true(r->attack_success[k] <= r->per_class.clean_correct[k]);
        /* Every clean-correct example is either still correct or a success. */
        assert_true(r->per_class.clean_correct[k] - r->attack_success[k] <=
                    r->per_class.robust_correct[k]);
        if (!attacked) {
            assert_int_equal(r->per_class.robust_correct[k], r->per_class.clean_correct[k]);
            assert_int_equal(r->attack_success[k], 0);
        }
    }
    assert_true(r->seconds > 0);
}

static void test_trained_blobs(void **state)
{
    (void)state;
    clasp_dataset train, test;
    blobs(&train, 600, 1);
    blobs(&test, 300, 2);
    clasp_model *m = tu_model(tu_shared_ctx, "flatten,fc32,relu,fc3", 1, SIDE, SIDE, 3);
    clasp_sgd *o;
    assert_ok(clasp_sgd_new(m, 0.05f, 0.9f, 0.0f, &o));
    clasp_batcher *tb, *eb;
    assert_ok(clasp_batcher_new(tu_shared_ctx, &train, 32, &tb));
    assert_ok(clasp_batcher_new(tu_shared_ctx, &test, 64, &eb));
    int steps = 0;
    for (uint64_t epoch = 0; steps < 300; epoch++) {
        clasp_batcher_start(tb, 1, 5, epoch);
        for (;;) {
            clasp_tensor *x, *y;
            int n;
            assert_ok(clasp_batcher_next(tb, &x, &y, &n, NULL));
            if (!n) break;
            assert_ok(clasp_train_step(m, o, x, y, NULL, NULL));
            steps++;
        }
    }

    clasp_eval_result clean, fg, pg;
    batch_log log = {0};
    clasp_eval_options opt = {.seed = 1,
                              .progress = on_progress,
                              .on_batch = on_batch,
                              .user = &log,
                              .total = test.n};
    assert_ok(clasp_eval_run(m, eb, &opt, &clean));
    check_result(&clean, test.n, 0);
    assert_int_equal(log.examples, test.n);
    assert_int_equal(log.calls, 5);
    assert_int_equal(log.last_done, test.n);
    double acc = (double)clasp_counts_clean(&clean.per_class) / (double)test.n;
    if (acc < 0.9) fail_msg("the blob model only reached %.3f clean accuracy", acc);

    clasp_attack_instance *fgsm = attack("fgsm", (const char *[]){"eps=0.15", NULL});
    clasp_attack_instance *pgd =
        attack("pgd", (const char *[]){"eps=0.15", "steps=20", "alpha=0", NULL});
    opt = (clasp_eval_options){.attack = fgsm, .seed = 1};
    assert_ok(clasp_eval_run(m, eb, &opt, &fg));
    opt.attack = pgd;
    assert_ok(clasp_eval_run(m, eb, &opt, &pg));
    check_result(&fg, test.n, 1);
    check_result(&pg, test.n, 1);
    /* The clean columns do not depend on the attack. */
    assert_memory_equal(fg.per_class.clean_correct, clean.per_class.clean_correct,
                        K * sizeof(int64_t));
    int64_t rc = clasp_counts_clean(&clean.per_class);
    int64_t rf = clasp_counts_robust(&fg.per_class), rp = clasp_counts_robust(&pg.per_class);
    fprintf(stderr, "blobs: clean %lld, fgsm %lld, pgd-20 %lld of %zu\n", (long long)rc,
            (long long)rf, (long long)rp, test.n);
    assert_true(rf < rc);
    assert_true(rp <= rf);
    assert_true(clasp_class_sum(pg.attack_success, pg.per_class.num_classes) >=
                clasp_class_sum(fg.attack_success, fg.per_class.num_classes));
    assert_true(fg.attack_seconds > 0 && fg.attack_seconds <= fg.seconds);
    assert_false(clasp_model_is_train(m) == 0); /* mode restored (train) */

    /* A cascade of fgsm then pgd (from x, so both are deterministic and
     * each member meets, per example, exactly what it would alone). */
    clasp_attack_instance *pgd0 =
        attack("pgd", (const char *[]){"eps=0.15", "steps=20", "alpha=0", "rand_init=false", NULL});
    clasp_eval_result p0, ens, ens2, ens3;
    opt = (clasp_eval_options){.attack = pgd0, .seed = 1};
    assert_ok(clasp_eval_run(m, eb, &opt, &p0));
    clasp_attack_instance *members[2] = {fgsm, pgd0};
    batch_log elog = {0};
    opt = (clasp_eval_options){.members = members,
                               .n_members = 2,
                               .seed = 1,
                               .on_batch = on_batch,
                               .user = &elog};
    assert_ok(clasp_eval_run(m, eb, &opt, &ens));
    check_result(&ens, test.n, 1);
    assert_int_equal(elog.examples, test.n);
    assert_int_equal(ens.n_members, 2);
    int64_t flipped_total = 0;
    for (int k = 0; k < K; k++) {
        /* Never more robust than either member alone. */
        assert_true(ens.per_class.robust_correct[k] <= fg.per_class.robust_correct[k]);
        assert_true(ens.per_class.robust_correct[k] <= p0.per_class.robust_correct[k]);
        /* The first flippers account for every clean-correct example lost. */
        int64_t f = ens.first_flip[k * 2 + 0] + ens.first_flip[k * 2 + 1];
        assert_int_equal(f, ens.per_class.clean_correct[k] - ens.per_class.robust_correct[k]);
        assert_int_equal(ens.attack_success[k], f);
        flipped_total += f;
    }
    assert_true(flipped_total > 0);
    assert_true(ens.member_seconds[0] > 0 &&
                ens.member_seconds[0] + ens.member_seconds[1] <= ens.attack_seconds + 1e-9);
    /* Per example: robust under the cascade iff correct clean and under
     * both members alone; otherwise the first member that flips it (in
     * order) gives the prediction, and misclassified clean ones keep the
     * clean prediction. */
    for (size_t i = 0; i < test.n; i++) {
        int t = ens.ex_label[i], c = ens.ex_clean[i];
        int a0 = fg.ex_adv[i], a1 = p0.ex_adv[i];
        assert_int_equal(t, test.y[i]);
        int want = c != t ? c : a0 != t ? a0 : a1 != t ? a1 : t;
        assert_int_equal(ens.ex_adv[i], want);
    }
    /* Same seed, same result, with a random member too. */
    clasp_attack_instance *rmembers[2] = {fgsm, pgd};
    opt = (clasp_eval_options){.members = rmembers, .n_members = 2, .seed = 7};
    assert_ok(clasp_eval_run(m, eb, &opt, &ens2));
    assert_ok(clasp_eval_run(m, eb, &opt, &ens3));
    assert_memory_equal(ens2.ex_adv, ens3.ex_adv, test.n * sizeof(int32_t));
    assert_memory_equal(ens2.first_flip, ens3.first_flip, K * 2 * sizeof(int64_t));
    assert_memory_equal(ens2.flow, ens3.flow, K * K * sizeof(int64_t));
    clasp_eval_result_free(&p0), clasp_eval_result_free(&ens);
    clasp_eval_result_free(&ens2), clasp_eval_result_free(&ens3);
    clasp_attack_free(pgd0);

    clasp_eval_result_free(&clean), clasp_eval_result_free(&fg), clasp_eval_result_free(&pg);
    clasp_attack_free(fgsm), clasp_attack_free(pgd);
    clasp_batcher_free(tb), clasp_batcher_free(eb);
    clasp_sgd_free(o);
    clasp_model_free(m);
    clasp_dataset_free(&train), clasp_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_and_box),
        cmocka_unit_test(test_eps_zero),
        cmocka_unit_test(test_same_seed_same_output),
        cmocka_unit_test(test_tpgd_t1_is_pgd),
        cmocka_unit_test(test_calibration_temperature_invisible),
        cmocka_unit_test(test_eval_l2_distances),
        cmocka_unit_test(test_fgsm_linear),
        cmocka_unit_test(test_cw_linear),
        cmocka_unit_test(test_trained_blobs),
    };
    return cmocka_run_group_tests(tests, tu_setup_plugins, tu_teardown_plugins);
}
