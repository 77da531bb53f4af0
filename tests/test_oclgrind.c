/* The GPU code path on small shapes, for a checking OpenCL implementation.
 *
 * Oclgrind reports itself as a GPU and checks every work-item's memory
 * accesses, races and uninitialised reads, interpreting each instruction.
 * The other suites are sized for PoCL and would take hours there; this one
 * runs every family on shapes small enough for Oclgrind: each GEMM path
 * and transpose, conv/pool/relu/linear forward and backward with both
 * kernel sets, a small CNN's gradients, the attacks, and one `clasp attack`
 * end to end, on the default device (a GPU when there is one). GEMM is
 * checked against plain C; layers and model against a CPU device's results
 * when there is one (else the device is compared with itself, and only the
 * checker's reports count).
 *
 * .ci/test runs it with Oclgrind's checks on and fails on any report they
 * print; on PoCL alone it passes in a few seconds. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clasp/model.h"
#include "clasp/ops.h"
#include "clasp/registry.h"
#include "clasp/runtime.h"
#include "ops/gemm_internal.h"

/* Oclgrind 21.10's uninitialised-value check (OCLGRIND_UNINITIALIZED=1)
 * is usable here only in part: it stops on LLVM's `freeze` instruction and
 * crashes in clasp's float16 kernels (TILED and DOT GEMM, the vectorised
 * conv kernels), and it sizes its record of a buffer by the first host
 * write, so in a process that reuses pooled buffers it reports reads past
 * that first write. With it on, only the end-to-end run is checked, in a
 * fresh process, on the scalar kernels a GPU runs (GENERAL GEMM). */
static int uninit_check(void)
{
    const char *e = getenv("OCLGRIND_UNINITIALIZED");
    return e && *e && strcmp(e, "0") != 0;
}

static clasp_ctx *dev; /* the device under test */
static clasp_ctx *ref; /* a CPU device for reference results; may be dev */
static clasp_registry *reg;

/* The first CPU-only device, when the device under test is a GPU. */
static clasp_ctx *reference_ctx(void)
{
    if (!clasp_ctx_device(dev)->is_gpu) return dev;
    clasp_device_info *list;
    size_t n;
    if (clasp_device_list(&list, &n) != CLASP_OK) return dev;
    clasp_ctx *c = NULL;
    for (size_t i = 0; i < n && !c; i++) {
        /* Oclgrind sets the CPU bit too, beside GPU. */
        if (!list[i].is_cpu || list[i].is_gpu) continue;
        char spec[32];
        snprintf(spec, sizeof spec, "%d:%d", list[i].platform, list[i].device);
        if (clasp_ctx_new(spec, &c) != CLASP_OK) {
            fprintf(stderr, "no reference context on %s: %s\n", spec, clasp_last_error());
            c = NULL;
        }
    }
    free(list);
    return c ? c : dev;
}

static int setup(void **state)
{
    (void)state;
    /* Read by each context when it first runs a GEMM, and by the child. */
    if (uninit_check() && setenv("CLASP_GEMM", "general", 1) != 0) return -1;
    dev = tu_ctx();
    ref = reference_ctx();
    fprintf(stderr, "device under test: %s; reference: %s\n", clasp_ctx_device(dev)->name,
            ref == dev ? "plain C and the same device" : clasp_ctx_device(ref)->name);
    reg = tu_registry();
    return reg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    clasp_registry_free(reg);
    if (ref != dev) clasp_ctx_free(ref);
    clasp_ctx_free(dev);
    return 0;
}

static void check_near(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double e = tu_max_rel_err(got, want, n);
    if (!(e <= tol)) fail_msg("%s: max relative error %g > %g", what, e, tol);
}

/* ---- GEMM: every path and transpose against plain C ------------------ */

static void gemm_host(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                      const float *b, float beta, float *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                     (double)(tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = (float)(alpha * s + beta * c[i * n + j]);
        }
}

static void test_gemm_paths(void **state)
{
    (void)state;
    if (uninit_check()) skip();
    static const int shapes[][3] = {{5, 19, 7}, {18, 33, 40}, {2, 40, 2100}};
    static const clasp_gemm_path paths[] = {CLASP_GEMM_GENERAL, CLASP_GEMM_TILED, CLASP_GEMM_DOT,
                                            CLASP_GEMM_CLBLAST};
    int ran[4] = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)n * k * sizeof *b);
        float *c0 = malloc((size_t)m * n * sizeof *c0),
              *want = malloc((size_t)m * n * sizeof *want);
        tu_fill_random(a, (size_t)m * k, 1 + (uint32_t)s, -1, 1);
        tu_fill_random(b, (size_t)n * k, 2 + (uint32_t)s, -1, 1);
        tu_fill_random(c0, (size_t)m * n, 3 + (uint32_t)s, -1, 1);
        clasp_tensor *ta_ = tu_tensor(dev, 1, (int[]){m * k}, a);
        clasp_tensor *tb_ = tu_tensor(dev, 1, (int[]){n * k}, b);
        clasp_tensor *tc = tu_tensor(dev, 1, (int[]){m * n}, NULL);
        for (int tr = 0; tr < 4; tr++) {
            int ta = tr & 1, tb = tr >> 1;
            memcpy(want, c0, (size_t)m * n * sizeof *want);
            gemm_host(ta, tb, m, n, k, 1.5f, a, b, 0.5f, want);
            for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
                clasp_gemm_params q = {.path = paths[p]};
                assert_ok(clasp_tensor_write(tc, c0));
                clasp_status st = clasp_gemm_with(dev, &q, ta, tb, m, n, k, 1.5f, ta_, 0,
                                                  ta ? m : k, tb_, 0, tb ? k : n, 0.5f, tc, 0, n);
                if (st == CLASP_ERR_UNSUPPORTED) continue; /* e.g. DOT is NT only */
                assert_ok(st);
                float *got = tu_read(tc);
                char what[96];
                snprintf(what, sizeof what, "gemm %s trans %d%d m=%d n=%d k=%d",
                         clasp_gemm_path_name(paths[p]), ta, tb, m, n, k);
                check_near(what, got, want, (size_t)m * n, 1e-4);
                free(got);
                ran[p]++;
            }
        }
        clasp_tensor_free(ta_), clasp_tensor_free(tb_), clasp_tensor_free(tc);
        free(a), free(b), free(c0), free(want);
    }
    for (size_t p = 0; p < 4; p++)
        if (!ran[p]) fail_msg("gemm path %s never ran", clasp_gemm_path_name(paths[p]));

    /* B packed in 16-column panels (the tiled kernels' other layout);
     * n = 48 leaves half a 32-wide tile. */
    static const int packed[][3] = {{5, 16, 7}, {18, 48, 40}};
    for (size_t s = 0; s < sizeof packed / sizeof packed[0]; s++) {
        int m = packed[s][0], n = packed[s][1], k = packed[s][2];
        float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)n * k * sizeof *b);
        float *bp = malloc((size_t)n * k * sizeof *bp),
              *want = malloc((size_t)m * n * sizeof *want);
        tu_fill_random(a, (size_t)m * k, 11 + (uint32_t)s, -1, 1);
        tu_fill_random(b, (size_t)n * k, 12 + (uint32_t)s, -1, 1);
        for (int r = 0; r < k; r++)
            for (int j = 0; j < n; j++) bp[(j / 16) * 16 * k + r * 16 + j % 16] = b[r * n + j];
        clasp_tensor *ta_ = tu_tensor(dev, 1, (int[]){m * k}, a);
        clasp_tensor *tb_ = tu_tensor(dev, 1, (int[]){n * k}, bp);
        clasp_tensor *tc = tu_tensor(dev, 1, (int[]){m * n}, NULL);
        for (int ta = 0; ta < 2; ta++) {
            memset(want, 0, (size_t)m * n * sizeof *want);
            gemm_host(ta, 0, m, n, k, 1.5f, a, b, 0.0f, want);
            assert_ok(clasp_gemm_packed_b(dev, ta, m, n, k, 1.5f, ta_, 0, ta ? m : k, tb_, 0, 0.0f,
                                          tc, 0, n));
            float *got = tu_read(tc);
            char what[96];
            snprintf(what, sizeof what, "gemm packed B trans_a %d m=%d n=%d k=%d", ta, m, n, k);
            check_near(what, got, want, (size_t)m * n, 1e-4);
            free(got);
        }
        clasp_tensor_free(ta_), clasp_tensor_free(tb_), clasp_tensor_free(tc);
        free(a), free(b), free(bp), free(want);
    }
}

/* ---- layers: forward and backward on both devices --------------------- */

typedef struct conv_case {
    int n, c, h, w, o, kh, stride, pad;
} conv_case;

/* Runs conv (with bias), relu, 2x2 max-pool, and their backward on ctx,
 * then the conv's input gradient alone; returns y, dx, dw, db, the pooled
 * output and the second dx concatenated (malloc'd). */
static float *layers_on(clasp_ctx *ctx, const conv_case *cc, size_t *len)
{
    int oh = (cc->h + 2 * cc->pad - cc->kh) / cc->stride + 1;
    int ow = (cc->w + 2 * cc->pad - cc->kh) / cc->stride + 1;
    int ph = oh / 2, pw = ow / 2;
    size_t nx = (size_t)cc->n * cc->c * cc->h * cc->w, nw = (size_t)cc->o * cc->c * cc->kh * cc->kh;
    size_t ny = (size_t)cc->n * cc->o * oh * ow, np = (size_t)cc->n * cc->o * ph * pw;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(cc->o * sizeof *b);
    float *dp = malloc(np * sizeof *dp);
    tu_fill_random(x, nx, 21, 0, 1);
    tu_fill_random(w, nw, 22, -0.5f, 0.5f);
    tu_fill_random(b, (size_t)cc->o, 23, -0.1f, 0.1f);
    tu_fill_random(dp, np, 24, -1, 1);
    clasp_tensor *tx = tu_tensor(ctx, 4, (int[]){cc->n, cc->c, cc->h, cc->w}, x);
    clasp_tensor *tw = tu_tensor(ctx, 4, (int[]){cc->o, cc->c, cc->kh, cc->kh}, w);
    clasp_tensor *tb = tu_tensor(ctx, 1, (int[]){cc->o}, b);
    clasp_tensor *ty = tu_tensor(ctx, 4, (int[]){cc->n, cc->o, oh, ow}, NULL);
    clasp_tensor *tp = tu_tensor(ctx, 4, (int[]){cc->n, cc->o, ph, pw}, NULL);
    clasp_tensor *ti = tu_tensor_i32(ctx, 4, (int[]){cc->n, cc->o, ph, pw}, NULL);
    clasp_tensor *tdp = tu_tensor(ctx, 4, (int[]){cc->n, cc->o, ph, pw}, dp);
    clasp_tensor *tdy = tu_tensor(ctx, 4, (int[]){cc->n, cc->o, oh, ow}, NULL);
    clasp_tensor *tdx = tu_tensor(ctx, 4, (int[]){cc->n, cc->c, cc->h, cc->w}, NULL);
    clasp_tensor *tdw = tu_tensor(ctx, 4, (int[]){cc->o, cc->c, cc->kh, cc->kh}, NULL);
    clasp_tensor *tdb = tu_tensor(ctx, 1, (int[]){cc->o}, NULL);
    assert_ok(clasp_conv2d_forward(tx, tw, tb, cc->stride, cc->pad, ty));
    assert_ok(clasp_relu_forward(ty, ty));
    assert_ok(clasp_maxpool2d_forward(ty, 2, 2, tp, ti));
    assert_ok(clasp_maxpool2d_backward(tdp, ti, tdy));
    assert_ok(clasp_relu_backward(ty, tdy, tdy));
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, cc->stride, cc->pad, tdx, tdw, tdb));
    /* Without the weight gradient dy may be moved packed (CPU kernels). */
    clasp_tensor *tdx2 = tu_tensor(ctx, 4, (int[]){cc->n, cc->c, cc->h, cc->w}, NULL);
    assert_ok(clasp_conv2d_backward(tx, tw, tdy, cc->stride, cc->pad, tdx2, NULL, NULL));
    *len = ny + nx + nw + (size_t)cc->o + np + nx;
    float *out = malloc(*len * sizeof *out);
    assert_ok(clasp_tensor_read(ty, out));
    assert_ok(clasp_tensor_read(tdx, out + ny));
    assert_ok(clasp_tensor_read(tdw, out + ny + nx));
    assert_ok(clasp_tensor_read(tdb, out + ny + nx + nw));
    assert_ok(clasp_tensor_read(tp, out + ny + nx + nw + cc->o));
    assert_ok(clasp_tensor_read(tdx2, out + ny + nx + nw + cc->o + np));
    clasp_tensor *all[] = {tx, tw, tb, ty, tp, ti, tdp, tdy, tdx, tdw, tdb, tdx2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clasp_tensor_free(all[i]);
    free(x), free(w), free(b), free(dp);
    return out;
}

static void test_layers(void **state)
{
    (void)state;
    if (uninit_check()) skip();
    static const conv_case cases[] = {
        {2, 3, 9, 9, 4, 3, 1, 1},   /* im2col + GEMM, padded */
        {2, 1, 12, 12, 5, 5, 1, 2}, /* one input channel: direct kernels on CPUs */
        {3, 2, 11, 10, 3, 3, 2, 0}, /* stride 2, no padding */
        /* Columns packed for the GEMM with the vector kernels (rows of 8
         * and of 4 columns sharing 16-column panels): */
        {2, 2, 8, 8, 3, 3, 1, 1}, /* stride 1 */
        {2, 3, 8, 8, 4, 3, 2, 1}, /* stride 2 */
    };
    /* Both kernel sets on the device under test; the reference keeps its own. */
    static const clasp_kernel_set sets[] = {CLASP_KERNELS_GENERIC, CLASP_KERNELS_VECTOR};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t n1, n2;
            tu_set_kernels(dev, sets[s]);
            float *got = layers_on(dev, &cases[i], &n1);
            tu_set_kernels(dev, CLASP_KERNELS_AUTO);
            float *want = layers_on(ref, &cases[i], &n2);
            assert_int_equal(n1, n2);
            char what[64];
            snprintf(what, sizeof what, "layers case %zu, %s kernels", i,
                     sets[s] == CLASP_KERNELS_GENERIC ? "generic" : "vector");
            check_near(what, got, want, n1, 1e-4);
            free(got), free(want);
        }
    }
}

/* ---- a small CNN: logits, parameter and input gradients ---------------- */

/* Also swish and the asymmetric zero padding of DeepMind's models. */
static const char *const k_arch = "conv3x3-4p1,relu,maxpool2,conv3x3-6p1,relu,maxpool2,pad0,1,0,1,"
                                  "conv3x3-5,swish,flatten,fc12,relu,fc3";
enum { MN = 3, MC = 1, MH = 8, MW = 8 };

static clasp_model *small_cnn(clasp_ctx *ctx)
{
    clasp_layer_spec *ls;
    int nl;
    assert_ok(clasp_arch_parse(k_arch, &ls, &nl));
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, nl, MC, MH, MW, &m));
    free(ls);
    assert_ok(clasp_model_init(m, 9));
    return m;
}

static float *model_on(clasp_ctx *ctx, size_t *len)
{
    clasp_model *m = small_cnn(ctx);
    float x[MN * MC * MH * MW];
    int32_t y[MN] = {0, 2, 1};
    tu_fill_random(x, sizeof x / sizeof x[0], 31, 0, 1);
    clasp_tensor *tx = tu_tensor(ctx, 4, (int[]){MN, MC, MH, MW}, x);
    clasp_tensor *ty = tu_tensor_i32(ctx, 1, (int[]){MN}, y);
    clasp_tensor *tdx = tu_tensor(ctx, 4, (int[]){MN, MC, MH, MW}, NULL);
    float loss;
    assert_ok(clasp_model_ce_grads(m, tx, ty, NULL, &loss));
    assert_ok(clasp_model_input_grad(m, tx, ty, 1.0f, tdx, NULL, NULL));
    *len = 1 + sizeof x / sizeof x[0];
    for (int i = 0; i < clasp_model_num_params(m); i++) *len += clasp_model_grad(m, i)->numel;
    float *out = malloc(*len * sizeof *out), *p = out;
    *p++ = loss;
    assert_ok(clasp_tensor_read(tdx, p));
    p += sizeof x / sizeof x[0];
    for (int i = 0; i < clasp_model_num_params(m); i++) {
        assert_ok(clasp_tensor_read(clasp_model_grad(m, i), p));
        p += clasp_model_grad(m, i)->numel;
    }
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(tdx);
    clasp_model_free(m);
    return out;
}

static void test_model_grads(void **state)
{
    (void)state;
    if (uninit_check()) skip();
    size_t n1, n2;
    float *got = model_on(dev, &n1), *want = model_on(ref, &n2);
    assert_int_equal(n1, n2);
    check_near("small CNN loss, input and parameter gradients", got, want, n1, 1e-4);
    free(got), free(want);
}

/* ---- attacks: budget, box and predictions ------------------------------ */

static void test_attacks(void **state)
{
    (void)state;
    if (uninit_check()) skip();
    struct {
        const char *name;
        const char *key[3], *val[3];
        int n;
        float eps; /* < 0: no L-inf budget */
    } cases[] = {
        {"fgsm", {"eps"}, {"0.1"}, 1, 0.1f},
        {"pgd", {"eps", "steps", "restarts"}, {"0.1", "2", "2"}, 3, 0.1f},
        {"tpgd", {"eps", "steps", "T"}, {"0.05", "2", "4"}, 3, 0.05f},
        {"cw", {"max_iterations", "binary_search_steps"}, {"3", "2"}, 2, -1},
        {"apgd", {"eps", "steps", "loss"}, {"0.1", "3", "dlr"}, 3, 0.1f},
        {"apgd-t", {"eps", "steps", "n_target_classes"}, {"0.1", "2", "2"}, 3, 0.1f},
    };
    clasp_model *m = small_cnn(dev);
    float x[MN * MC * MH * MW];
    int32_t y[MN] = {1, 0, 2};
    const size_t nx = sizeof x / sizeof x[0];
    tu_fill_random(x, nx, 41, 0, 1);
    clasp_tensor *tx = tu_tensor(dev, 4, (int[]){MN, MC, MH, MW}, x);
    clasp_tensor *ty = tu_tensor_i32(dev, 1, (int[]){MN}, y);
    clasp_tensor *ta = tu_tensor(dev, 4, (int[]){MN, MC, MH, MW}, NULL);
    clasp_tensor *tp = tu_tensor_i32(dev, 1, (int[]){MN}, NULL);
    clasp_tensor *tq = tu_tensor_i32(dev, 1, (int[]){MN}, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clasp_attack_instance *a = NULL;
        assert_ok(
            clasp_attack_new(reg, cases[i].name, cases[i].key, cases[i].val, NULL, cases[i].n, &a));
        clasp_rng rng = clasp_rng_make(5, i);
        assert_ok(clasp_attack_run(a, m, tx, ty, &rng, ta, tp));
        float *adv = tu_read(ta);
        for (size_t j = 0; j < nx; j++) {
            if (!(adv[j] >= 0.0f && adv[j] <= 1.0f))
                fail_msg("%s: pixel %zu = %g outside [0,1]", cases[i].name, j, adv[j]);
            if (cases[i].eps >= 0 && fabsf(adv[j] - x[j]) > cases[i].eps * (1 + 1e-6f))
                fail_msg("%s: pixel %zu moved %g > eps %g", cases[i].name, j, fabsf(adv[j] - x[j]),
                         cases[i].eps);
        }
        int32_t p[MN], q[MN];
        assert_ok(clasp_model_predict(m, ta, tq));
        assert_ok(clasp_tensor_read(tp, p));
        assert_ok(clasp_tensor_read(tq, q));
        assert_memory_equal(p, q, sizeof p);
        free(adv);
        clasp_attack_free(a);
    }
    clasp_tensor_free(tx), clasp_tensor_free(ty), clasp_tensor_free(ta);
    clasp_tensor_free(tp), clasp_tensor_free(tq);
    clasp_model_free(m);
}

/* ---- `clasp attack` end to end ------------------------------------------ */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Four 28x28 test images in MNIST's IDX files under dir. */
static void write_idx(const char *dir)
{
    enum { N = 4, P = 28 * 28 };
    static unsigned char img[16 + N * P], lab[8 + N];
    put_be32(img, 0x803), put_be32(img + 4, N), put_be32(img + 8, 28), put_be32(img + 12, 28);
    put_be32(lab, 0x801), put_be32(lab + 4, N);
    for (int i = 0; i < N * P; i++) img[16 + i] = (unsigned char)((i * 37 + i / 28) & 255);
    for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)(i * 3);
    char path[600];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    tu_write_file(path, img, sizeof img);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    tu_write_file(path, lab, sizeof lab);
}

static void test_cli_attack(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) skip();
    char dir[512], model[600], cmd[2048];
    tu_tmpdir(dir, sizeof dir);
    write_idx(dir);
    /* A checkpoint small enough for a simulator, with its architecture. */
    clasp_layer_spec *ls;
    int nl;
    assert_ok(clasp_arch_parse("conv5x5-4p2,relu,maxpool2,flatten,fc10", &ls, &nl));
    clasp_model *m;
    assert_ok(clasp_model_new(dev, ls, nl, 1, 28, 28, &m));
    free(ls);
    assert_ok(clasp_model_init(m, 3));
    snprintf(model, sizeof model, "%s/tiny.safetensors", dir);
    assert_ok(clasp_model_save(m, NULL, NULL, 0, model));
    clasp_model_free(m);
    snprintf(cmd, sizeof cmd,
             "'%s' attack --model '%s' --dataset mnist --data '%s' --attack pgd --set steps=2 "
             "--set eps=0.1 --samples 2 --batch 2",
             cli, model, dir);
    fprintf(stderr, "running: %s\n", cmd);
    int rc = system(cmd);
    tu_rmdir(dir);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("clasp attack failed (status %d)", rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_paths),  cmocka_unit_test(test_layers),
        cmocka_unit_test(test_model_grads), cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_cli_attack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
