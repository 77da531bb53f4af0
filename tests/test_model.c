/* The sequential model: architecture text, shapes, gradients by finite
 * differences (input and parameters), checkpoints and calibration. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "clasp/safetensors.h"

static void arch_parse_and_format(void **state)
{
    (void)state;
    clasp_layer_spec *ls;
    int n;
    const char *text = "conv5x5-32p2,relu,maxpool2,conv3x3-8s2p1,maxpool3s2,flatten,fc1024,relu,fc10";
    assert_ok(clasp_arch_parse(text, &ls, &n));
    assert_int_equal(n, 9);
    assert_int_equal(ls[0].kind, CLASP_LAYER_CONV2D);
    assert_int_equal(ls[0].out, 32);
    assert_int_equal(ls[0].pad, 2);
    assert_int_equal(ls[3].stride, 2);
    assert_int_equal(ls[4].kind, CLASP_LAYER_MAXPOOL2D);
    assert_int_equal(ls[4].kernel, 3);
    assert_int_equal(ls[4].stride, 2);
    assert_int_equal(ls[8].out, 10);
    free(ls);
    assert_int_equal(clasp_arch_parse("conv5x5-32,relu,fcx", &ls, &n), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "'fcx' at character 17"));
    assert_int_equal(clasp_arch_parse("conv5x3-32", &ls, &n), CLASP_ERR_CONFIG);
    assert_int_equal(clasp_arch_parse("relu,,fc2", &ls, &n), CLASP_ERR_CONFIG);
}

static void default_model_shapes(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_model *m;
    assert_ok(clasp_model_new_default(ctx, 1, 28, 28, 10, &m));
    assert_int_equal(clasp_model_num_params(m), 8);
    assert_int_equal(clasp_model_param_count(m), 3274634);
    assert_string_equal(clasp_model_param_name(m, 0), "conv1.weight");
    assert_string_equal(clasp_model_param_name(m, 5), "fc1.bias");
    clasp_tensor *w = clasp_model_param(m, 4);
    assert_int_equal(w->shape[0], 1024);
    assert_int_equal(w->shape[1], 3136);
    char arch[256];
    clasp_model_arch(m, arch, sizeof arch);
    assert_string_equal(arch, "conv5x5-32p2,relu,maxpool2,conv5x5-64p2,relu,maxpool2,flatten,fc1024,relu,fc10");
    assert_ok(clasp_model_init(m, 3));
    /* PyTorch's default: weights and biases uniform within 1/sqrt(fan_in),
     * variance 1 / (3 fan_in). */
    for (int j = 4; j <= 5; j++) {
        clasp_tensor *t = clasp_model_param(m, j);
        float *h = tu_read(t);
        double s2 = 0, bound = 1.0 / sqrt(3136.0);
        for (size_t i = 0; i < t->numel; i++) {
            assert_true(fabs(h[i]) <= bound);
            s2 += (double)h[i] * h[i];
        }
        assert_true(fabs(s2 / (double)t->numel - 1.0 / (3 * 3136.0)) < 0.1 / (3 * 3136.0));
        free(h);
    }
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){3, 1, 28, 28}, NULL);
    assert_ok(clasp_tensor_fill(x, 0.5f));
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(m, x, &z));
    assert_int_equal(z->shape[0], 3);
    assert_int_equal(z->shape[1], 10);
    clasp_tensor *bad = tu_tensor(ctx, 4, (int[]){3, 1, 27, 28}, NULL);
    assert_int_equal(clasp_model_forward(m, bad, &z), CLASP_ERR_INVALID);
    clasp_tensor_free(bad);
    clasp_tensor_free(x);
    clasp_model_free(m);
    /* Layers that do not fit are refused. */
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_CONV2D, .out = 4, .kernel = 5, .stride = 1}, {.kind = CLASP_LAYER_LINEAR, .out = 3}};
    assert_int_equal(clasp_model_new(ctx, ls, 2, 1, 6, 6, &m), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "flatten"));
    assert_int_equal(clasp_model_new(ctx, ls, 1, 1, 3, 3, &m), CLASP_ERR_CONFIG);
    clasp_ctx_free(ctx);
}

typedef struct fd_case {
    clasp_ctx *ctx;
    clasp_model *m;
    clasp_tensor *x, *y, *loss, *dz;
    int n;
} fd_case;

/* A small model exercising every layer kind, in double-friendly ranges. */
static void fd_setup(fd_case *c)
{
    c->ctx = tu_ctx();
    clasp_layer_spec *ls;
    int n;
    assert_ok(clasp_arch_parse("conv3x3-4p1,relu,maxpool2,conv3x3-5s1p1,relu,maxpool3s2,flatten,fc7,relu,fc3",
                               &ls, &n));
    assert_ok(clasp_model_new(c->ctx, ls, n, 2, 7, 7, &c->m));
    free(ls);
    assert_ok(clasp_model_init(c->m, 11));
    c->n = 2;
    float xs[2 * 2 * 7 * 7];
    tu_fill_random(xs, sizeof xs / sizeof xs[0], 5, 0, 1);
    c->x = tu_tensor(c->ctx, 4, (int[]){2, 2, 7, 7}, xs);
    c->y = tu_tensor_i32(c->ctx, 1, (int[]){2}, (int32_t[]){1, 2});
    c->loss = tu_tensor(c->ctx, 1, (int[]){2}, NULL);
    c->dz = tu_tensor(c->ctx, 2, (int[]){2, 3}, NULL);
}

static void fd_teardown(fd_case *c)
{
    clasp_tensor_free(c->x);
    clasp_tensor_free(c->y);
    clasp_tensor_free(c->loss);
    clasp_tensor_free(c->dz);
    clasp_model_free(c->m);
    clasp_ctx_free(c->ctx);
}

/* Sum of the per-example losses at the current parameters and input. */
static double total_loss(fd_case *c, float t)
{
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c->m, c->x, &z));
    assert_ok(clasp_softmax_xent(z, c->y, t, NULL, 1.0f, c->loss, NULL));
    float l[2];
    assert_ok(clasp_tensor_read(c->loss, l));
    return (double)l[0] + l[1];
}

/* Central difference of total_loss along element i of tensor t. */
static double central_diff(fd_case *c, clasp_tensor *t, size_t i, float h, float temp)
{
    float v;
    assert_ok(clasp_tensor_read_part(t, i, 1, &v));
    float p = v + h, q = v - h;
    assert_ok(clasp_tensor_write_part(t, i, 1, &p));
    double lp = total_loss(c, temp);
    assert_ok(clasp_tensor_write_part(t, i, 1, &q));
    double lq = total_loss(c, temp);
    assert_ok(clasp_tensor_write_part(t, i, 1, &v));
    return (lp - lq) / (2.0 * h);
}

/* Compares analytic and numeric gradients as vectors: the relative error of
 * the difference, which tolerates the odd coordinate near a relu kink. */
static void check_close(const double *num, const float *ana, size_t n, double tol, const char *what)
{
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < n; i++) {
        d2 += (num[i] - ana[i]) * (num[i] - ana[i]);
        n2 += num[i] * num[i];
    }
    double rel = sqrt(d2) / (sqrt(n2) + 1e-12);
    if (getenv("FD_DEBUG"))
        for (size_t i = 0; i < n; i++) print_message("%s %zu num %.6f ana %.6f\n", what, i, num[i], (double)ana[i]);
    if (!(rel < tol)) fail_msg("%s: relative gradient error %.3g (tolerance %.3g)", what, rel, tol);
}

static void input_gradient_matches_finite_differences(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    for (int ti = 0; ti < 2; ti++) {
        float temp = ti ? 2.5f : 1.0f;
        clasp_tensor *dx = tu_tensor(c.ctx, 4, (int[]){2, 2, 7, 7}, NULL);
        assert_ok(clasp_model_input_grad(c.m, c.x, c.y, temp, dx, NULL, NULL));
        float *g = tu_read(dx);
        size_t n = dx->numel;
        double *num = malloc(n * sizeof *num);
        for (size_t i = 0; i < n; i++) num[i] = central_diff(&c, c.x, i, 1e-3f, temp);
        check_close(num, g, n, 2e-2, temp == 1.0f ? "d loss / d x (T=1)" : "d loss / d x (T=2.5)");
        free(num);
        free(g);
        clasp_tensor_free(dx);
    }
    fd_teardown(&c);
}

static void parameter_gradients_match_finite_differences(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c.m, c.x, &z));
    assert_ok(clasp_softmax_xent(z, c.y, 1.0f, NULL, 1.0f, NULL, c.dz));
    assert_ok(clasp_model_backward(c.m, c.dz, 1, NULL));
    for (int p = 0; p < clasp_model_num_params(c.m); p++) {
        clasp_tensor *w = clasp_model_param(c.m, p);
        float *g = tu_read(clasp_model_grad(c.m, p));
        size_t n = w->numel < 40 ? w->numel : 40;
        size_t stride = w->numel / n;
        double *num = malloc(n * sizeof *num);
        float *ana = malloc(n * sizeof *ana);
        for (size_t k = 0; k < n; k++) {
            num[k] = central_diff(&c, w, k * stride, 1e-3f, 1.0f);
            ana[k] = g[k * stride];
        }
        check_close(num, ana, n, 2e-2, clasp_model_param_name(c.m, p));
        free(num);
        free(ana);
        free(g);
    }
    fd_teardown(&c);
}

static void backward_without_param_grads_leaves_them(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    clasp_tensor *g0 = clasp_model_grad(c.m, 0);
    assert_ok(clasp_tensor_fill(g0, 7.0f));
    clasp_tensor *dx = tu_tensor(c.ctx, 4, (int[]){2, 2, 7, 7}, NULL);
    assert_ok(clasp_model_input_grad(c.m, c.x, c.y, 1.0f, dx, NULL, NULL));
    float *g = tu_read(g0);
    for (size_t i = 0; i < g0->numel; i++) assert_true(g[i] == 7.0f);
    free(g);
    clasp_tensor_free(dx);
    fd_teardown(&c);
}

static void checkpoint_round_trip_and_errors(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    char dir[256], path[512], bad[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    float offs[3] = {0.5f, -0.25f, 0.0f};
    assert_ok(clasp_model_set_calibration(c.m, offs, 2.0f));
    clasp_kv extra[] = {{"experiment", "unit"}};
    assert_ok(clasp_model_save(c.m, NULL, extra, 1, path));
    clasp_model_set_train(c.m, 0);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c.m, c.x, &z));
    float *za = tu_read(z);

    clasp_model *m2;
    assert_ok(clasp_model_load(c.ctx, path, NULL, NULL, &m2));
    float o2[3], t2;
    assert_true(clasp_model_calibration(m2, o2, &t2));
    assert_memory_equal(offs, o2, sizeof offs);
    assert_true(t2 == 2.0f);
    clasp_model_set_train(m2, 0);
    assert_ok(clasp_model_forward(m2, c.x, &z));
    float *zb = tu_read(z);
    assert_memory_equal(za, zb, 6 * sizeof(float));
    char meta[64];
    assert_ok(clasp_checkpoint_meta(path, "experiment", meta, sizeof meta));
    assert_string_equal(meta, "unit");
    /* Calibration applies in eval mode only. */
    clasp_model_set_train(m2, 1);
    assert_ok(clasp_model_forward(m2, c.x, &z));
    float *zc = tu_read(z);
    assert_true(fabsf(zc[0] * 0.5f + 0.25f - za[0]) < 1e-4f || fabsf((zc[0] + 0.5f) / 2.0f - za[0]) < 1e-4f);
    clasp_model_free(m2);

    /* A tensor with the wrong shape is named in the error. */
    clasp_st_file f;
    assert_ok(clasp_st_read(path, &f));
    clasp_st_file g;
    clasp_st_init(&g);
    for (size_t i = 0; i < f.n_meta; i++) assert_ok(clasp_st_set_meta(&g, f.meta_keys[i], f.meta_values[i]));
    for (size_t i = 0; i < f.n_tensors; i++) {
        clasp_st_tensor *t = &f.tensors[i];
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof shape);
        if (!strcmp(t->name, "fc2.bias")) shape[0] = 2;
        assert_ok(clasp_st_add(&g, t->name, t->dtype, t->ndim, shape, t->data));
    }
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    assert_ok(clasp_st_write(&g, bad));
    clasp_st_free(&g);
    assert_int_equal(clasp_model_load(c.ctx, bad, NULL, NULL, &m2), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "fc2.bias"));
    assert_non_null(strstr(clasp_last_error(), "[2]"));
    /* A missing tensor too. */
    clasp_st_init(&g);
    for (size_t i = 0; i < f.n_meta; i++) assert_ok(clasp_st_set_meta(&g, f.meta_keys[i], f.meta_values[i]));
    for (size_t i = 0; i < f.n_tensors; i++)
        if (strcmp(f.tensors[i].name, "conv2.weight") != 0)
            assert_ok(clasp_st_add(&g, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                                   f.tensors[i].shape, f.tensors[i].data));
    assert_ok(clasp_st_write(&g, bad));
    clasp_st_free(&g);
    clasp_st_free(&f);
    assert_int_equal(clasp_model_load(c.ctx, bad, NULL, NULL, &m2), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "conv2.weight"));
    assert_non_null(strstr(clasp_last_error(), "missing"));
    /* Not a safetensors file at all. */
    tu_write_file(bad, "hello", 5);
    assert_int_equal(clasp_model_load(c.ctx, bad, NULL, NULL, &m2), CLASP_ERR_FORMAT);
    free(za);
    free(zb);
    free(zc);
    tu_rmdir(dir);
    fd_teardown(&c);
}

static void same_seed_same_weights(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_model *a, *b;
    assert_ok(clasp_model_new_default(ctx, 1, 12, 12, 4, &a));
    assert_ok(clasp_model_new_default(ctx, 1, 12, 12, 4, &b));
    assert_ok(clasp_model_init(a, 42));
    assert_ok(clasp_model_init(b, 42));
    for (int p = 0; p < clasp_model_num_params(a); p++) {
        float *x = tu_read(clasp_model_param(a, p)), *y = tu_read(clasp_model_param(b, p));
        assert_memory_equal(x, y, clasp_model_param(a, p)->numel * sizeof(float));
        free(x);
        free(y);
    }
    assert_ok(clasp_model_init(b, 43));
    float *x = tu_read(clasp_model_param(a, 0)), *y = tu_read(clasp_model_param(b, 0));
    assert_true(memcmp(x, y, clasp_model_param(a, 0)->numel * sizeof(float)) != 0);
    free(x);
    free(y);
    clasp_model_free(a);
    clasp_model_free(b);
    clasp_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arch_parse_and_format),
        cmocka_unit_test(default_model_shapes),
        cmocka_unit_test(input_gradient_matches_finite_differences),
        cmocka_unit_test(parameter_gradients_match_finite_differences),
        cmocka_unit_test(backward_without_param_grads_leaves_them),
        cmocka_unit_test(checkpoint_round_trip_and_errors),
        cmocka_unit_test(same_seed_same_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
