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
    const char *text =
        "conv5x5-32p2,relu,maxpool2,conv3x3-8s2p1,maxpool3s2,flatten,fc1024,relu,fc10";
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
    /* The message lists what an item may be, from the table of kinds
     * (normalize left out: its values are not in the text). */
    const char *msg = clasp_last_error();
    assert_non_null(strstr(msg, "expected conv<K>x<K>-<out>[s<stride>][p<pad>][nb], fc<out>[nb], "
                                "relu, maxpool<K>[s<stride>][p<pad>], flatten, bn, add, "
                                "avgpool<K>[s<stride>], swish"));
    assert_non_null(strstr(msg, "pad<l>,<r>,<t>,<b>"));
    assert_non_null(strstr(msg, " or "));
    assert_non_null(strstr(msg, ", each optionally with :label and (input[+input])"));
    assert_null(strstr(msg, "normalize"));
    assert_int_equal(clasp_arch_parse("conv5x3-32", &ls, &n), CLASP_ERR_CONFIG);
    assert_int_equal(clasp_arch_parse("relu,,fc2", &ls, &n), CLASP_ERR_CONFIG);

    /* Graphs: labels, named inputs, the model input, and back to text. */
    const char *g = "conv3x3-4p1nb:a,bn,relu,conv3x3-4p1:b,add(a+b),avgpool2s1,flatten,fc3nb";
    assert_ok(clasp_arch_parse(g, &ls, &n));
    assert_int_equal(n, 8);
    assert_true(ls[0].no_bias && !ls[3].no_bias && ls[7].no_bias);
    assert_int_equal(ls[1].kind, CLASP_LAYER_BATCHNORM2D);
    assert_int_equal(ls[4].kind, CLASP_LAYER_ADD);
    assert_int_equal(ls[4].n_inputs, 2);
    assert_int_equal(ls[4].inputs[0], 0);
    assert_int_equal(ls[4].inputs[1], 3);
    assert_int_equal(ls[5].kind, CLASP_LAYER_AVGPOOL2D);
    assert_int_equal(ls[5].stride, 1);
    char buf[256];
    clasp_arch_format(ls, n, buf, sizeof buf);
    assert_string_equal(buf, "conv3x3-4p1nb:l0,bn,relu,conv3x3-4p1:l3,add(l0+l3),avgpool2s1,"
                             "flatten,fc3nb");
    clasp_layer_spec *again;
    int n2;
    assert_ok(clasp_arch_parse(buf, &again, &n2));
    assert_int_equal(n2, n);
    assert_memory_equal(again, ls, (size_t)n * sizeof *ls);
    free(again);
    free(ls);
    assert_ok(clasp_arch_parse("relu,add(in+in)", &ls, &n));
    assert_int_equal(ls[1].inputs[0], -1);
    free(ls);
    assert_int_equal(clasp_arch_parse("relu:a,add(a+z)", &ls, &n), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "input 'z'"));
    assert_int_equal(clasp_arch_parse("relu:in", &ls, &n), CLASP_ERR_CONFIG);
    /* Naming the item before as the only input is the plain chain: the
     * specs must equal those of the formatted text, which leaves such a
     * list out (found by tests/fuzz/fuzz_arch). */
    assert_ok(clasp_arch_parse("relu(in),conv3x3-16p1nb:a,conv3x3-16s2p1nb(a),bn", &ls, &n));
    clasp_arch_format(ls, n, buf, sizeof buf);
    assert_string_equal(buf, "relu,conv3x3-16p1nb,conv3x3-16s2p1nb,bn");
    assert_ok(clasp_arch_parse(buf, &again, &n2));
    assert_int_equal(n2, n);
    assert_memory_equal(again, ls, (size_t)n * sizeof *ls);
    assert_int_equal(ls[0].n_inputs, 0);
    assert_int_equal(ls[2].n_inputs, 0);
    free(again);
    free(ls);
    /* Numbers are plain digits that fit an int: sscanf's %d took "fc 10"
     * and "fc+10" and wrapped fc4294967306 round to fc10. An empty input
     * name found an unlabelled item. */
    const char *refused[] = {"fc4294967306", "fc 10",       "fc+10",
                             "conv 3x3-8",   "conv3x3-+8",  "maxpool2s-1",
                             "conv3x3-8p 1", "relu,relu()", "relu:a,relu,add(a+)"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (clasp_arch_parse(refused[i], &ls, &n) != CLASP_ERR_CONFIG)
            fail_msg("'%s' was accepted", refused[i]);
    assert_non_null(strstr(clasp_last_error(), "input '' at character 13"));
    assert_ok(clasp_arch_parse("fc2147483647nb,conv03x3-8s2p0nbp1", &ls, &n));
    assert_int_equal(ls[0].out, 2147483647);
    clasp_arch_format(ls, n, buf, sizeof buf);
    assert_string_equal(buf, "fc2147483647nb,conv3x3-8s2p1nb");
    free(ls);
    /* Swish and asymmetric padding, whose four numbers share the items'
     * comma; a label and inputs follow the last one. */
    assert_ok(clasp_arch_parse("pad0,1,0,1:p,conv3x3-4s2nb,swish,pad1,1,2,0(p),swish", &ls, &n));
    assert_int_equal(n, 5);
    assert_int_equal(ls[0].kind, CLASP_LAYER_PAD);
    assert_int_equal(ls[0].pads[0], 0);
    assert_int_equal(ls[0].pads[1], 1);
    assert_int_equal(ls[0].pads[3], 1);
    assert_int_equal(ls[2].kind, CLASP_LAYER_SWISH);
    assert_int_equal(ls[3].pads[2], 2);
    assert_int_equal(ls[3].inputs[0], 0);
    clasp_arch_format(ls, n, buf, sizeof buf);
    assert_string_equal(buf, "pad0,1,0,1:l0,conv3x3-4s2nb,swish,pad1,1,2,0(l0),swish");
    assert_ok(clasp_arch_parse(buf, &again, &n2));
    assert_int_equal(n2, n);
    assert_memory_equal(again, ls, (size_t)n * sizeof *ls);
    free(again);
    free(ls);
    const char *bad_pads[] = {"pad1,1,1",    "pad1,1,1,relu", "pad1,1,1,1,1",
                              "pad-1,0,0,0", "pad1.1.1.1",    "swish2"};
    for (size_t i = 0; i < sizeof bad_pads / sizeof *bad_pads; i++)
        if (clasp_arch_parse(bad_pads[i], &ls, &n) != CLASP_ERR_CONFIG)
            fail_msg("'%s' was accepted", bad_pads[i]);
    /* Preset names: the whole name counts, and no number overflows
     * (wrn--2147483647-1 made depth - 4 overflow under UBSan). */
    assert_true(clasp_model_is_preset("wrn-34-10"));
    assert_true(clasp_model_is_preset("wrn-16-2-w8"));
    assert_true(clasp_model_is_preset("preact-resnet18-w16"));
    assert_true(clasp_model_is_preset("resnet18"));
    const char *not_presets[] = {"wrn--2147483647-1",
                                 "wrn-15-2",
                                 "wrn-16-0",
                                 "resnet18-w0",
                                 "wrn-16-2-w99999999999",
                                 "resnet18-w 16",
                                 "resnet18x",
                                 "preact-resnet18-w0000000000000000000000000000016x"};
    for (size_t i = 0; i < sizeof not_presets / sizeof *not_presets; i++)
        if (clasp_model_is_preset(not_presets[i]))
            fail_msg("'%s' is taken for a preset", not_presets[i]);
    /* An add given one input, a layer reading a later one: refused when built. */
    clasp_ctx *ctx = tu_ctx();
    clasp_model *m;
    assert_ok(clasp_arch_parse("relu,add(in),flatten,fc2", &ls, &n));
    assert_int_equal(clasp_model_new(ctx, ls, n, 1, 2, 2, &m), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "takes 2 input(s), 1 given"));
    free(ls);
    assert_ok(clasp_arch_parse("conv3x3-2p1:a,conv3x3-3p1:b,add(a+b),flatten,fc2", &ls, &n));
    assert_int_equal(clasp_model_new(ctx, ls, n, 1, 4, 4, &m), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "add of a 2x4x4 and a 3x4x4 input"));
    free(ls);
    clasp_ctx_free(ctx);
}

/* A preset with input normalisation and BatchNorm buffers: the names the
 * PyTorch definitions use, a checkpoint round trip that keeps the running
 * statistics and the int64 counter, and a bare state dict (no clasp
 * metadata, as PyTorch writes it) recognised by its tensor names. */
static void preset_checkpoints(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    const float mean[3] = {0.49f, 0.48f, 0.45f}, sd[3] = {0.25f, 0.24f, 0.26f};
    clasp_model *m;
    assert_ok(clasp_model_new_preset(ctx, "preact-resnet18-w4", 3, 16, 16, 5, mean, sd, &m));
    assert_ok(clasp_model_init(m, 3));
    assert_string_equal(clasp_model_param_name(m, 0), "conv1.weight");
    assert_string_equal(clasp_model_param_name(m, 1), "layer1.0.bn1.weight");
    int found = 0;
    for (int i = 0; i < clasp_model_num_params(m); i++)
        found += !strcmp(clasp_model_param_name(m, i), "layer2.0.shortcut.0.weight") ||
                 !strcmp(clasp_model_param_name(m, i), "bn.weight") ||
                 !strcmp(clasp_model_param_name(m, i), "linear.bias");
    assert_int_equal(found, 3);
    assert_string_equal(clasp_model_buffer_name(m, 2), "layer1.0.bn1.num_batches_tracked");
    assert_non_null(clasp_model_buffer_i64(m, 2));
    /* Two training forwards move the running statistics and the counter. */
    float xs[4 * 3 * 16 * 16];
    tu_fill_random(xs, sizeof xs / sizeof xs[0], 9, 0, 1);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){4, 3, 16, 16}, xs);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){4}, (int32_t[]){0, 1, 2, 3});
    for (int i = 0; i < 2; i++) assert_ok(clasp_model_ce_grads(m, x, y, NULL, NULL));
    assert_int_equal(*clasp_model_buffer_i64(m, 2), 2);
    clasp_model_set_train(m, 0);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(m, x, &z));
    float *za = tu_read(z);

    char dir[256], path[512], bare[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/p.safetensors", dir);
    snprintf(bare, sizeof bare, "%s/bare.safetensors", dir);
    assert_ok(clasp_model_save(m, NULL, NULL, 0, path));
    clasp_model *m2;
    assert_ok(clasp_model_load(ctx, path, NULL, NULL, &m2));
    assert_int_equal(*clasp_model_buffer_i64(m2, 2), 2);
    clasp_model_set_train(m2, 0);
    assert_ok(clasp_model_forward(m2, x, &z));
    float *zb = tu_read(z);
    assert_memory_equal(za, zb, 4 * 5 * sizeof *za);
    free(zb);
    clasp_model_free(m2);

    /* The bare state dict: tensors only. Without normalisation (a zoo
     * model normalises outside its state dict) the logits differ, so the
     * check is the names and the values of the tensors. */
    clasp_st_file f, b;
    assert_ok(clasp_st_read(path, &f));
    clasp_st_init(&b);
    for (size_t i = 0; i < f.n_tensors; i++)
        assert_ok(clasp_st_add(&b, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                               f.tensors[i].shape, f.tensors[i].data));
    assert_ok(clasp_st_write(&b, bare));
    assert_ok(clasp_model_load(ctx, bare, NULL, (int[]){3, 16, 16}, &m2));
    char arch[64];
    clasp_model_arch(m2, arch, sizeof arch);
    assert_string_equal(arch, "preact-resnet18-w4");
    assert_int_equal(clasp_model_num_classes(m2), 5);
    assert_int_equal(*clasp_model_buffer_i64(m2, 2), 2);
    clasp_model_free(m2);
    /* One tensor too many: named, with the architecture it does not fit. */
    int64_t one = 1;
    assert_ok(clasp_st_add(&b, "layer9.0.conv1.weight", CLASP_ST_F32, 0, NULL, &one));
    assert_ok(clasp_st_write(&b, bare));
    assert_int_equal(clasp_model_load(ctx, bare, NULL, (int[]){3, 16, 16}, &m2), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "unexpected tensor 'layer9.0.conv1.weight'"));
    clasp_st_free(&b);
    /* One missing: named too. */
    clasp_st_init(&b);
    for (size_t i = 1; i < f.n_tensors; i++)
        assert_ok(clasp_st_add(&b, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                               f.tensors[i].shape, f.tensors[i].data));
    assert_ok(clasp_st_write(&b, bare));
    assert_int_equal(clasp_model_load(ctx, bare, "preact-resnet18-w4", (int[]){3, 16, 16}, &m2),
                     CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "'conv1.weight' is missing"));
    clasp_st_free(&b);
    clasp_st_free(&f);
    free(za);
    clasp_tensor_free(x), clasp_tensor_free(y);
    clasp_model_free(m);
    tu_rmdir(dir);
    clasp_ctx_free(ctx);
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
    assert_string_equal(arch, "conv5x5-32p2,relu,maxpool2,conv5x5-64p2,relu,maxpool2,flatten,"
                              "fc1024,relu,fc10");
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
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_CONV2D, .out = 4, .kernel = 5, .stride = 1},
                             {.kind = CLASP_LAYER_LINEAR, .out = 3}};
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

/* Model `arch` (a layer list or a preset) on n random inputs of c x s x s
 * with k classes; labels i % k. */
static void fd_setup_arch(fd_case *c, const char *arch, int ch, int side, int k, int n)
{
    c->ctx = tu_ctx();
    assert_ok(clasp_model_new_arch(c->ctx, arch, ch, side, side, k, NULL, NULL, &c->m));
    assert_ok(clasp_model_init(c->m, 11));
    /* Weights twice PyTorch's initial scale: larger gradients keep the
     * float32 rounding of the loss small against the differences. */
    for (int p = 0; p < clasp_model_num_params(c->m); p++)
        if (clasp_model_param_decays(c->m, p))
            assert_ok(clasp_scale(clasp_model_param(c->m, p), 2.0f));
    /* BatchNorm away from its initial identity (and biases away from 0):
     * an exactly zero pre-activation sits on a relu kink, where a finite
     * difference sees half a slope. */
    for (int p = 0; p < clasp_model_num_params(c->m); p++) {
        clasp_tensor *t = clasp_model_param(c->m, p);
        if (clasp_model_param_decays(c->m, p)) continue;
        int gamma = strstr(clasp_model_param_name(c->m, p), "weight") != NULL;
        float *h = malloc(t->numel * sizeof *h);
        tu_fill_random(h, t->numel, (uint32_t)(7 + p), gamma ? 0.5f : -0.2f, gamma ? 1.5f : 0.2f);
        assert_ok(clasp_tensor_write(t, h));
        free(h);
    }
    for (int b = 0; b < clasp_model_num_buffers(c->m); b++) {
        clasp_tensor *t = clasp_model_buffer(c->m, b);
        if (!t) continue;
        int var = strstr(clasp_model_buffer_name(c->m, b), "running_var") != NULL;
        float *h = malloc(t->numel * sizeof *h);
        tu_fill_random(h, t->numel, (uint32_t)(300 + b), var ? 0.5f : -0.3f, var ? 1.5f : 0.3f);
        assert_ok(clasp_tensor_write(t, h));
        free(h);
    }
    c->n = n;
    size_t nx = (size_t)n * ch * side * side;
    float *xs = malloc(nx * sizeof *xs);
    int32_t ys[8];
    assert_true(n <= 8);
    tu_fill_random(xs, nx, 5, 0, 1);
    for (int i = 0; i < n; i++) ys[i] = i % k;
    c->x = tu_tensor(c->ctx, 4, (int[]){n, ch, side, side}, xs);
    c->y = tu_tensor_i32(c->ctx, 1, (int[]){n}, ys);
    c->loss = tu_tensor(c->ctx, 1, (int[]){n}, NULL);
    c->dz = tu_tensor(c->ctx, 2, (int[]){n, k}, NULL);
    free(xs);
}

/* A small model exercising the chain layer kinds, in double-friendly ranges. */
static void fd_setup(fd_case *c)
{
    fd_setup_arch(c, "conv3x3-4p1,relu,maxpool2,conv3x3-5s1p1,relu,maxpool3s2,flatten,fc7,relu,fc3",
                  2, 7, 3, 2);
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
    float l[8];
    assert_ok(clasp_tensor_read(c->loss, l));
    double s = 0;
    for (int i = 0; i < c->n; i++) s += l[i];
    return s;
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
        for (size_t i = 0; i < n; i++)
            print_message("%s %zu num %.6f ana %.6f\n", what, i, num[i], (double)ana[i]);
    if (!(rel < tol)) fail_msg("%s: relative gradient error %.3g (tolerance %.3g)", what, rel, tol);
}

/* d loss / d x of c's model against central differences (temperature t). */
static void check_input_gradient(fd_case *c, float temp, double tol, const char *what)
{
    clasp_tensor *dx = tu_tensor(c->ctx, 4, c->x->shape, NULL);
    assert_ok(clasp_model_input_grad(c->m, c->x, c->y, temp, dx, NULL, NULL));
    float *g = tu_read(dx);
    size_t n = dx->numel;
    double *num = malloc(n * sizeof *num);
    for (size_t i = 0; i < n; i++) num[i] = central_diff(c, c->x, i, 1e-3f, temp);
    check_close(num, g, n, tol, what);
    free(num);
    free(g);
    clasp_tensor_free(dx);
}

/* Every parameter's gradient (up to `per` evenly spread entries each)
 * against central differences, in the model's current mode. */
static void check_param_gradients(fd_case *c, size_t per, double tol)
{
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c->m, c->x, &z));
    assert_ok(clasp_softmax_xent(z, c->y, 1.0f, NULL, 1.0f, NULL, c->dz));
    assert_ok(clasp_model_backward(c->m, c->dz, 1, NULL));
    for (int p = 0; p < clasp_model_num_params(c->m); p++) {
        clasp_tensor *w = clasp_model_param(c->m, p);
        float *g = tu_read(clasp_model_grad(c->m, p));
        size_t n = w->numel < per ? w->numel : per;
        size_t stride = w->numel / n;
        double *num = malloc(n * sizeof *num);
        float *ana = malloc(n * sizeof *ana);
        for (size_t k = 0; k < n; k++) {
            num[k] = central_diff(c, w, k * stride, 1e-3f, 1.0f);
            ana[k] = g[k * stride];
        }
        check_close(num, ana, n, tol, clasp_model_param_name(c->m, p));
        free(num);
        free(ana);
        free(g);
    }
}

/* Directional form, robust to the odd relu kink that a per-coordinate
 * difference crosses in deep graphs: for each tensor t (every parameter,
 * then the input), with a random direction v over all of t,
 * (L(t + h v) - L(t - h v)) / 2h against <grad, v>. Gradients come from
 * one backward in the model's current mode. */
static void check_directional(fd_case *c, double tol, const char *what)
{
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c->m, c->x, &z));
    assert_ok(clasp_softmax_xent(z, c->y, 1.0f, NULL, 1.0f, NULL, c->dz));
    clasp_tensor *dx = tu_tensor(c->ctx, 4, c->x->shape, NULL);
    assert_ok(clasp_model_backward(c->m, c->dz, 1, dx));
    int np = clasp_model_num_params(c->m);
    for (int p = 0; p <= np; p++) {
        clasp_tensor *t = p < np ? clasp_model_param(c->m, p) : c->x;
        float *g = tu_read(p < np ? clasp_model_grad(c->m, p) : dx);
        float *t0 = tu_read(t);
        size_t n = t->numel;
        float *v = malloc(n * sizeof *v), *tp = malloc(n * sizeof *tp);
        tu_fill_random(v, n, (uint32_t)(101 + p), -1.0f, 1.0f);
        double gv = 0, vv = 0;
        for (size_t i = 0; i < n; i++) gv += (double)g[i] * v[i], vv += (double)v[i] * v[i];
        /* Small: BatchNorm over a few examples bends the loss quickly,
         * in train mode most (measured: the difference converges to the
         * gradient as h shrinks from 3e-3 to 1e-4); the rounding noise
         * that a small h brings is allowed for below. */
        const float h = 2e-5f / (float)sqrt(vv / (double)n);
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            for (size_t i = 0; i < n; i++) tp[i] = t0[i] + (sgn ? -h : h) * v[i];
            assert_ok(clasp_tensor_write(t, tp));
            l[sgn] = total_loss(c, 1.0f);
        }
        assert_ok(clasp_tensor_write(t, t0));
        double num = (l[0] - l[1]) / (2.0 * h);
        /* What float32 rounding of the two losses alone can make of the
         * difference: a few units in the last place of L, over 2h. */
        double noise = 8.0 * fabs(l[0]) * 1.2e-7 / (2.0 * h);
        double err = fabs(num - gv) / (fabs(gv) + noise / tol);
        const char *name = p < np ? clasp_model_param_name(c->m, p) : "input";
        if (getenv("FD_DEBUG")) print_message("%s %s: num %.6f ana %.6f\n", what, name, num, gv);
        if (!(err < tol))
            fail_msg("%s, %s: directional derivative %.6g, from the gradient %.6g", what, name, num,
                     gv);
        free(g), free(t0), free(v), free(tp);
    }
    clasp_tensor_free(dx);
}

static void input_gradient_matches_finite_differences(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    check_input_gradient(&c, 1.0f, 2e-2, "d loss / d x (T=1)");
    check_input_gradient(&c, 2.5f, 2e-2, "d loss / d x (T=2.5)");
    fd_teardown(&c);
}

static void parameter_gradients_match_finite_differences(void **state)
{
    (void)state;
    fd_case c;
    fd_setup(&c);
    check_param_gradients(&c, 40, 2e-2);
    fd_teardown(&c);
}

/* A graph with BatchNorm, a skip connection (the first block's output is
 * read by a conv and by add, so its gradient is a sum), average pooling:
 * input and parameter gradients by finite differences, in train mode
 * (batch statistics) and eval mode (running statistics). */
static void graph_gradients_match_finite_differences(void **state)
{
    (void)state;
    fd_case c;
    fd_setup_arch(&c,
                  "conv3x3-4p1nb,bn,relu:a,conv3x3-4p1nb,bn,relu,conv3x3-4p1:b,add(a+b),avgpool2,"
                  "flatten,fc3",
                  4, 6, 3, 4);
    for (int train = 1; train >= 0; train--) {
        clasp_model_set_train(c.m, train);
        check_directional(&c, 1e-2, train ? "graph (train)" : "graph (eval)");
    }
    fd_teardown(&c);
}

/* Narrow ResNets (the presets' graphs at base width 2 and 4 on 8x8 inputs):
 * input and parameter gradients in eval mode, as attacks use them. (In
 * train mode their last stage normalises over a handful of values per
 * channel, where the loss bends too fast for central differences to be a
 * reference; train-mode BatchNorm with fan-out is checked in the graph
 * test above, and whole train-mode steps of the presets against PyTorch,
 * see the README.) DeepMind's stride-2 blocks need even maps (8 + 2*4
 * padding: 16, 8, 4): on odd ones the padded 3x3 and the 1x1 shortcut
 * disagree by a pixel, in PyTorch too. */
static void resnet_gradients_match_finite_differences(void **state)
{
    (void)state;
    const char *archs[] = {"preact-resnet18-w2",
                           "resnet18-w2",
                           "wrn-10-1-w4",
                           "preact-resnet18-nobn-w2",
                           "dm-wrn-10-1-w4-swish-pad4",
                           "dm-preact-resnet18-w2-swish"};
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
        fd_case c;
        fd_setup_arch(&c, archs[a], 3, 8, 3, 4);
        clasp_model_set_train(c.m, 0);
        check_directional(&c, 2e-2, archs[a]);
        fd_teardown(&c);
    }
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

/* A prediction (eval mode) keeps only the logits: the same logits and
 * predictions as a forward, less device memory, and a backward right after
 * it gives the gradients a backward after a forward gives, parameter
 * gradients included, on residual graphs. */
static void prediction_keeps_only_logits(void **state)
{
    (void)state;
    const char *archs[] = {"resnet18-w2", "preact-resnet18-w2", "dm-wrn-10-1-w4-swish-pad4",
                           "conv3x3-4p1,relu,maxpool2,flatten,fc3"};
    for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
        fd_case c;
        fd_setup_arch(&c, archs[a], 3, 8, 3, 4);
        clasp_model_set_train(c.m, 0);
        /* The prediction first, on a model that never ran. */
        clasp_tensor *pred = tu_tensor_i32(c.ctx, 1, (int[]){4}, NULL);
        assert_ok(clasp_model_predict(c.m, c.x, pred));
        int32_t p1[4];
        assert_ok(clasp_tensor_read(pred, p1));
        /* A backward straight after the prediction ... */
        const clasp_tensor *z;
        clasp_tensor *dx1 = tu_tensor(c.ctx, 4, (int[]){4, 3, 8, 8}, NULL),
                     *dx2 = tu_tensor(c.ctx, 4, (int[]){4, 3, 8, 8}, NULL);
        float dzh[12];
        tu_fill_random(dzh, 12, 9, -1, 1);
        assert_ok(clasp_tensor_write(c.dz, dzh));
        assert_ok(clasp_model_backward(c.m, c.dz, 1, dx1));
        float *g1 = tu_read(clasp_model_grad(c.m, 0));
        /* ... equals one after a forward. */
        assert_ok(clasp_model_forward(c.m, c.x, &z));
        float *z1 = tu_read(z);
        assert_ok(clasp_model_backward(c.m, c.dz, 1, dx2));
        float *g2 = tu_read(clasp_model_grad(c.m, 0));
        float *d1 = tu_read(dx1), *d2 = tu_read(dx2);
        assert_memory_equal(d1, d2, dx1->numel * sizeof *d1);
        assert_memory_equal(g1, g2, clasp_model_grad(c.m, 0)->numel * sizeof *g1);
        for (int i = 0; i < 4; i++) {
            int best = 0;
            for (int k = 1; k < 3; k++)
                if (z1[i * 3 + k] > z1[i * 3 + best]) best = k;
            assert_int_equal(p1[i], best);
        }
        /* A prediction after the full pass: the same logits. */
        assert_ok(clasp_model_predict(c.m, c.x, pred));
        assert_ok(clasp_model_forward(c.m, c.x, &z));
        float *z2 = tu_read(z);
        assert_memory_equal(z1, z2, 12 * sizeof *z1);
        /* On fresh models a prediction takes less than a forward, which
         * keeps every output: on a residual graph at least a tenth less
         * (at 32x32 and batch 8; the convolutions' scratch, which stays,
         * is much of it). */
        size_t took[2];
        for (int full = 0; full < 2; full++) {
            fd_case f;
            fd_setup_arch(&f, archs[a], 3, 32, 3, 8);
            clasp_model_set_train(f.m, 0);
            clasp_tensor *fp = tu_tensor_i32(f.ctx, 1, (int[]){8}, NULL);
            size_t b0 = clasp_ctx_device_bytes(f.ctx, NULL);
            if (full) assert_ok(clasp_model_forward(f.m, f.x, &z));
            else assert_ok(clasp_model_predict(f.m, f.x, fp));
            took[full] = clasp_ctx_device_bytes(f.ctx, NULL) - b0;
            clasp_tensor_free(fp);
            fd_teardown(&f);
        }
        if (a < 3 && !(10 * took[0] < 9 * took[1]))
            fail_msg("%s: a prediction took %zu bytes, a forward %zu", archs[a], took[0], took[1]);
        free(z1), free(z2), free(d1), free(d2), free(g1), free(g2);
        clasp_tensor_free(dx1), clasp_tensor_free(dx2), clasp_tensor_free(pred);
        fd_teardown(&c);
    }
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
    /* Calibration applies in eval mode only, and as offsets only: the
     * temperature (2 here) never scales the logits. */
    clasp_model_set_train(m2, 1);
    assert_ok(clasp_model_forward(m2, c.x, &z));
    float *zc = tu_read(z);
    for (int i = 0; i < 6; i++) assert_true(fabsf(zc[i] + offs[i % 3] - za[i]) < 1e-5f);
    clasp_model_free(m2);

    /* A tensor with the wrong shape is named in the error. */
    clasp_st_file f;
    assert_ok(clasp_st_read(path, &f));
    clasp_st_file g;
    clasp_st_init(&g);
    for (size_t i = 0; i < f.n_meta; i++)
        assert_ok(clasp_st_set_meta(&g, f.meta_keys[i], f.meta_values[i]));
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
    for (size_t i = 0; i < f.n_meta; i++)
        assert_ok(clasp_st_set_meta(&g, f.meta_keys[i], f.meta_values[i]));
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

/* A copy of checkpoint `from` at `to` with metadata `key` set to value
 * (NULL: removed). */
static void rewrite_meta(const char *from, const char *to, const char *key, const char *value)
{
    clasp_st_file f, g;
    assert_ok(clasp_st_read(from, &f));
    clasp_st_init(&g);
    for (size_t i = 0; i < f.n_meta; i++)
        if (strcmp(f.meta_keys[i], key) != 0)
            assert_ok(clasp_st_set_meta(&g, f.meta_keys[i], f.meta_values[i]));
    if (value) assert_ok(clasp_st_set_meta(&g, key, value));
    for (size_t i = 0; i < f.n_tensors; i++)
        assert_ok(clasp_st_add(&g, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                               f.tensors[i].shape, f.tensors[i].data));
    assert_ok(clasp_st_write(&g, to));
    clasp_st_free(&g);
    clasp_st_free(&f);
}

/* Every layer kind, normalize (from model.normalize, as an experiment
 * gives it) and a padded max-pool included: text -> model -> checkpoint ->
 * load gives the same text and the same logits, bit for bit. */
static void every_kind_round_trips(void **state)
{
    (void)state;
    const char *arch = "conv3x3-4p1:a,bn,swish,conv3x3-4p1nb:b,add(a+b),relu,pad1,0,1,0,"
                       "maxpool3s2p1,avgpool2s1,flatten,fc5nb,relu,fc3";
    const char *want = "normalize,conv3x3-4p1:l1,bn,swish,conv3x3-4p1nb:l4,add(l1+l4),relu,"
                       "pad1,0,1,0,maxpool3s2p1,avgpool2s1,flatten,fc5nb,relu,fc3";
    const float mean[3] = {0.4f, 0.5f, 0.6f}, stdv[3] = {0.2f, 0.25f, 0.3f};
    clasp_ctx *ctx = tu_ctx();
    clasp_model *m, *m2;
    assert_ok(clasp_model_new_arch(ctx, arch, 3, 8, 8, 3, mean, stdv, &m));
    char text[512], text2[512];
    clasp_model_arch(m, text, sizeof text);
    assert_string_equal(text, want);

    /* The text holds every kind of the public list: a new kind must join
     * this test. */
    clasp_layer_spec *ls;
    int n;
    assert_ok(clasp_arch_parse(text, &ls, &n));
    int seen[64] = {0};
    for (int i = 0; i < n; i++) {
        assert_true(ls[i].kind >= 0 && ls[i].kind < 64);
        seen[ls[i].kind] = 1;
    }
    free(ls);
#define KIND_SEEN(name, file) \
    if (!seen[CLASP_LAYER_##name]) fail_msg("layer kind %s is not in the round trip", #file);
    CLASP_LAYER_KINDS(KIND_SEEN)
#undef KIND_SEEN

    assert_ok(clasp_model_init(m, 3));
    for (int b = 0; b < clasp_model_num_buffers(m); b++) {
        clasp_tensor *t = clasp_model_buffer(m, b);
        if (!t) continue;
        int var = strstr(clasp_model_buffer_name(m, b), "running_var") != NULL;
        float *h = malloc(t->numel * sizeof *h);
        tu_fill_random(h, t->numel, (uint32_t)(40 + b), var ? 0.5f : -0.3f, var ? 1.5f : 0.3f);
        assert_ok(clasp_tensor_write(t, h));
        free(h);
    }
    float xs[2 * 3 * 8 * 8];
    tu_fill_random(xs, sizeof xs / sizeof *xs, 9, 0, 1);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){2, 3, 8, 8}, xs);
    clasp_model_set_train(m, 0);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(m, x, &z));
    float *za = tu_read(z);

    char dir[256], path[512], bad[512];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/every.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    assert_ok(clasp_model_save(m, NULL, NULL, 0, path));
    assert_ok(clasp_model_load(ctx, path, NULL, NULL, &m2));
    clasp_model_arch(m2, text2, sizeof text2);
    assert_string_equal(text2, want);
    clasp_model_set_train(m2, 0);
    assert_ok(clasp_model_forward(m2, x, &z));
    float *zb = tu_read(z);
    assert_memory_equal(za, zb, 2 * 3 * sizeof *za);
    /* The normalisation is what the loaded model applies: another one
     * changes the logits. */
    rewrite_meta(path, bad, "clasp.normalize", "0.5,0.5,0.5/0.2,0.25,0.3");
    clasp_model_free(m2);
    assert_ok(clasp_model_load(ctx, bad, NULL, NULL, &m2));
    clasp_model_set_train(m2, 0);
    assert_ok(clasp_model_forward(m2, x, &z));
    float *zc = tu_read(z);
    assert_true(memcmp(za, zc, 2 * 3 * sizeof *za) != 0);
    clasp_model_free(m2);
    /* Without its values, or with too few, a normalize is refused, naming
     * the file and the key. */
    rewrite_meta(path, bad, "clasp.normalize", NULL);
    assert_int_equal(clasp_model_load(ctx, bad, NULL, NULL, &m2), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "bad.safetensors: a normalize layer without "
                                               "clasp.normalize"));
    rewrite_meta(path, bad, "clasp.normalize", "0.4,0.5/0.2,0.25");
    assert_int_equal(clasp_model_load(ctx, bad, NULL, NULL, &m2), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "metadata clasp.normalize '0.4,0.5/0.2,0.25'"));

    free(za);
    free(zb);
    free(zc);
    tu_rmdir(dir);
    clasp_tensor_free(x);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
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

/* The classifier's row norms: the last linear layer, whatever comes before
 * it (a hand-set linear model; a preset graph whose classifier is named
 * "linear"); none without a linear layer. */
static void class_weight_norms(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_layer_spec *ls;
    int nl;
    assert_ok(clasp_arch_parse("flatten,fc5,relu,fc3", &ls, &nl));
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, nl, 1, 2, 2, &m));
    free(ls);
    assert_ok(clasp_model_init(m, 4));
    /* fc2.weight is [3, 5]: rows (3, 4, 0, 0, 0), zeros, (1, 1, 1, 1, 1). */
    float w[15] = {3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    int wi = -1;
    for (int i = 0; i < clasp_model_num_params(m); i++)
        if (!strcmp(clasp_model_param_name(m, i), "fc2.weight")) wi = i;
    assert_true(wi >= 0);
    assert_ok(clasp_tensor_write(clasp_model_param(m, wi), w));
    float n[3];
    assert_ok(clasp_model_class_weight_norms(m, n));
    assert_true(fabsf(n[0] - 5.0f) < 1e-6f);
    assert_true(n[1] == 0.0f);
    assert_true(fabsf(n[2] - sqrtf(5.0f)) < 1e-6f);
    clasp_model_free(m);

    assert_ok(clasp_model_new_preset(ctx, "resnet18-w2", 3, 8, 8, 4, NULL, NULL, &m));
    assert_ok(clasp_model_init(m, 5));
    int li = -1;
    for (int i = 0; i < clasp_model_num_params(m); i++)
        if (!strcmp(clasp_model_param_name(m, i), "linear.weight")) li = i;
    assert_true(li >= 0);
    clasp_tensor *lw = clasp_model_param(m, li);
    float *h = tu_read(lw);
    size_t in = lw->numel / 4;
    float got[4];
    assert_ok(clasp_model_class_weight_norms(m, got));
    for (int k = 0; k < 4; k++) {
        double s2 = 0;
        for (size_t j = 0; j < in; j++) s2 += (double)h[k * in + j] * h[k * in + j];
        assert_true(fabs(got[k] - sqrt(s2)) < 1e-5 * sqrt(s2) + 1e-7);
    }
    free(h);
    clasp_model_free(m);

    assert_ok(clasp_arch_parse("conv2x2-3,flatten", &ls, &nl));
    assert_ok(clasp_model_new(ctx, ls, nl, 1, 2, 2, &m));
    free(ls);
    assert_int_equal(clasp_model_class_weight_norms(m, got), CLASP_ERR_NOT_FOUND);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
}

/* Eval mode, as evaluation and `clasp bench`'s inference run: BatchNorm
 * normalises with its running statistics and leaves them (and its batch
 * count) as they were; train mode updates them. */
static void eval_mode_keeps_batchnorm_statistics(void **state)
{
    (void)state;
    clasp_ctx *g_ctx = tu_ctx();
    clasp_model *m = tu_model(g_ctx, "conv3x3-4p1,bn,relu,flatten,fc3", 2, 5, 5, 3);
    size_t nx = 3 * 2 * 5 * 5;
    float *xh = malloc(nx * sizeof *xh);
    tu_fill_random(xh, nx, 8, 0, 1);
    clasp_tensor *x = tu_tensor(g_ctx, 4, (int[]){3, 2, 5, 5}, xh);
    clasp_tensor *pred = NULL;
    assert_ok(clasp_tensor_new(g_ctx, CLASP_I32, 1, (int[]){3}, &pred));
    int nb = clasp_model_num_buffers(m);
    float *before[8] = {0};
    int64_t count = 0;
    for (int i = 0; i < nb && i < 8; i++) {
        if (clasp_model_buffer(m, i)) before[i] = tu_read(clasp_model_buffer(m, i));
        else count = *clasp_model_buffer_i64(m, i);
    }
    clasp_model_set_train(m, 0);
    for (int r = 0; r < 2; r++) assert_ok(clasp_model_predict(m, x, pred));
    for (int i = 0; i < nb && i < 8; i++) {
        if (!clasp_model_buffer(m, i)) {
            assert_true(*clasp_model_buffer_i64(m, i) == count);
            continue;
        }
        float *after = tu_read(clasp_model_buffer(m, i));
        assert_memory_equal(before[i], after, clasp_model_buffer(m, i)->numel * sizeof(float));
        free(after);
    }
    /* The same in train mode changes them: the check above could fail. */
    clasp_model_set_train(m, 1);
    assert_ok(clasp_model_predict(m, x, pred));
    int changed = 0;
    for (int i = 0; i < nb && i < 8; i++) {
        if (!clasp_model_buffer(m, i)) {
            changed |= *clasp_model_buffer_i64(m, i) != count;
            continue;
        }
        float *after = tu_read(clasp_model_buffer(m, i));
        changed |= memcmp(before[i], after, clasp_model_buffer(m, i)->numel * sizeof(float)) != 0;
        free(after);
    }
    assert_true(changed);
    for (int i = 0; i < 8; i++) free(before[i]);
    clasp_tensor_free(x), clasp_tensor_free(pred);
    clasp_model_free(m);
    clasp_ctx_free(g_ctx);
    free(xh);
}

/* ---- eval-mode BatchNorm folding ---------------------------------------- */

static void set_fold(clasp_ctx *ctx, int fold)
{
    clasp_ctx_opts o = *clasp_ctx_options(ctx);
    o.fold = fold;
    assert_ok(clasp_ctx_set_options(ctx, &o));
}

/* max |a - b| / max |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, isnan(a[i]) ? INFINITY : fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

/* Eval-mode logits, predictions and input gradient with folding on or off. */
typedef struct fold_run {
    float *z, *dx;
    int32_t *pred;
} fold_run;

static void fold_eval(fd_case *c, int fold, fold_run *r)
{
    set_fold(c->ctx, fold);
    clasp_model_set_train(c->m, 0);
    clasp_tensor *dx = tu_tensor(c->ctx, 4, c->x->shape, NULL), *pred;
    assert_ok(clasp_tensor_new(c->ctx, CLASP_I32, 1, (int[]){c->n}, &pred));
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c->m, c->x, &z));
    r->z = tu_read(z);
    assert_ok(clasp_model_input_grad(c->m, c->x, c->y, 1.0f, dx, pred, c->loss));
    r->dx = tu_read(dx);
    r->pred = malloc((size_t)c->n * sizeof *r->pred);
    assert_ok(clasp_tensor_read(pred, r->pred));
    clasp_tensor_free(dx), clasp_tensor_free(pred);
}

static void fold_run_free(fold_run *r)
{
    free(r->z), free(r->dx), free(r->pred);
}

/* Folded against unfolded at the model's current parameters; returns the
 * logits' difference. */
static double fold_compare(fd_case *c, const char *what, int has_bn, fold_run *on, fold_run *off)
{
    fold_eval(c, 0, off);
    fold_eval(c, 1, on);
    size_t nz = (size_t)c->n * (size_t)clasp_model_num_classes(c->m);
    double dz = rel_diff(on->z, off->z, nz), dg = rel_diff(on->dx, off->dx, c->x->numel);
    print_message("%-34s logits %.3g  input gradient %.3g (folded vs not, relative)\n", what, dz,
                  dg);
    assert_memory_equal(on->pred, off->pred, (size_t)c->n * sizeof *on->pred);
    if (!(dz < 1e-5)) fail_msg("%s: folded logits differ by %.3g", what, dz);
    if (!(dg < 1e-4)) fail_msg("%s: folded input gradient differs by %.3g", what, dg);
    /* With a BatchNorm to fold the arithmetic differs (rounding shows);
     * without one the same kernels run. */
    int same = !memcmp(on->z, off->z, nz * sizeof *on->z);
    if (has_bn ? same : !same) fail_msg("%s: folding %s", what, has_bn ? "did nothing" : "acted");
    return dz;
}

/* PGD-style steps on the input with folding on or off: the predictions
 * at the end. */
static int32_t *fold_pgd(fd_case *c, int fold, int steps)
{
    set_fold(c->ctx, fold);
    clasp_model_set_train(c->m, 0);
    clasp_tensor *xa = tu_tensor(c->ctx, 4, c->x->shape, NULL),
                 *dx = tu_tensor(c->ctx, 4, c->x->shape, NULL), *pred;
    assert_ok(clasp_tensor_new(c->ctx, CLASP_I32, 1, (int[]){c->n}, &pred));
    assert_ok(clasp_tensor_copy(xa, c->x));
    for (int i = 0; i < steps; i++) {
        assert_ok(clasp_model_input_grad(c->m, xa, c->y, 1.0f, dx, NULL, c->loss));
        assert_ok(clasp_pgd_step(xa, dx, c->x, 2.0f / 255, 8.0f / 255, 0.0f, 1.0f));
    }
    assert_ok(clasp_model_predict(c->m, xa, pred));
    int32_t *p = malloc((size_t)c->n * sizeof *p);
    assert_ok(clasp_tensor_read(pred, p));
    clasp_tensor_free(xa), clasp_tensor_free(dx), clasp_tensor_free(pred);
    return p;
}

/* Parameter gradients of one eval-mode backward, with folding on or off
 * (a folded forward is rerun unfolded for them; the logits the loss
 * gradient comes from were folded, so they agree to rounding). */
static float **fold_param_grads(fd_case *c, int fold)
{
    set_fold(c->ctx, fold);
    clasp_model_set_train(c->m, 0);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(c->m, c->x, &z));
    assert_ok(clasp_softmax_xent(z, c->y, 1.0f, NULL, 1.0f, NULL, c->dz));
    assert_ok(clasp_model_backward(c->m, c->dz, 1, NULL));
    int np = clasp_model_num_params(c->m);
    float **g = malloc((size_t)np * sizeof *g);
    for (int p = 0; p < np; p++) g[p] = tu_read(clasp_model_grad(c->m, p));
    return g;
}

/* Eval mode folds each BatchNorm2d into the convolution before it: the
 * same predictions, logits within 1e-5 and input gradients within 1e-4 of
 * the unfolded model's; parameter gradients (never folded) within 1e-4; and
 * after an optimiser step (new parameter versions) or a train-mode step
 * (new running statistics too) the folded weights are made again, so the
 * logits move exactly as the unfolded ones do. A ResNet, a chain with
 * convolution biases before its BatchNorms, and the default CNN (no
 * BatchNorm: nothing changes). */
static void eval_folding_matches_unfolded(void **state)
{
    (void)state;
    static const struct {
        const char *arch, *what;
        int side, k, has_bn;
    } cases[] = {
        {"resnet18-w8", "resnet18-w8 32x32", 32, 10, 1},
        {"conv3x3-6p1,bn,relu,conv3x3-8s2p1,bn,relu,conv5x5-8p2,bn,relu,flatten,fc5",
         "conv+bias,bn chain", 9, 5, 1},
        {NULL, "default CNN", 28, 10, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        fd_case c;
        const char *what = cases[t].what;
        if (cases[t].arch) {
            fd_setup_arch(&c, cases[t].arch, 3, cases[t].side, cases[t].k, 4);
        } else {
            /* The default CNN on one-channel 28x28 inputs, as for MNIST. */
            fd_setup_arch(&c, "flatten,fc10", 1, cases[t].side, cases[t].k, 4);
            clasp_model_free(c.m);
            assert_ok(clasp_model_new_default(c.ctx, 1, 28, 28, 10, &c.m));
            assert_ok(clasp_model_init(c.m, 3));
        }
        fold_run on0, off0, on1, off1, on2, off2;
        fold_compare(&c, what, cases[t].has_bn, &on0, &off0);
        /* An attack's steps: the predictions where they end agree. */
        int32_t *pa = fold_pgd(&c, 1, 5), *pb = fold_pgd(&c, 0, 5);
        assert_memory_equal(pa, pb, (size_t)c.n * sizeof *pa);
        free(pa), free(pb);

        /* Eval-mode parameter gradients, after a folded forward or not. */
        float **ga = fold_param_grads(&c, 0), **gb = fold_param_grads(&c, 1);
        int np = clasp_model_num_params(c.m);
        double worst = 0;
        for (int p = 0; p < np; p++) {
            worst = fmax(worst, rel_diff(gb[p], ga[p], clasp_model_grad(c.m, p)->numel));
            free(ga[p]), free(gb[p]);
        }
        print_message("%-34s parameter gradients %.3g\n", what, worst);
        if (!(worst < 1e-4))
            fail_msg("%s: eval-mode parameter gradients differ by %.3g", what, worst);
        free(ga), free(gb);
        /* The last backward folded nothing: these gradients step the
         * parameters (the running statistics stay). */
        clasp_sgd *o;
        assert_ok(clasp_sgd_new(c.m, 0.5f, 0.0f, 0.0f, &o));
        assert_ok(clasp_sgd_step(o));
        char w2[96];
        snprintf(w2, sizeof w2, "%s, after SGD", what);
        fold_compare(&c, w2, cases[t].has_bn, &on1, &off1);
        size_t nz = (size_t)c.n * (size_t)cases[t].k;
        double moved = rel_diff(on1.z, on0.z, nz);
        /* The step moved the logits far more than folding's rounding, and
         * the folded ones moved as the unfolded ones did. */
        if (!(moved > 1e-3)) fail_msg("%s: the step moved the logits by only %.3g", what, moved);
        for (size_t i = 0; i < nz; i++) {
            double a = (double)on1.z[i] - on0.z[i], b = (double)off1.z[i] - off0.z[i];
            if (!(fabs(a - b) <= 2e-5 * fmax(1.0, fabs((double)off1.z[i]))))
                fail_msg("%s: logit %zu moved by %g folded, %g not", what, i, a, b);
        }
        /* A train-mode forward: only the running statistics change. */
        fold_run on3, off3;
        const clasp_tensor *z;
        clasp_model_set_train(c.m, 1);
        assert_ok(clasp_model_forward(c.m, c.x, &z));
        snprintf(w2, sizeof w2, "%s, after a train forward", what);
        fold_compare(&c, w2, cases[t].has_bn, &on3, &off3);
        moved = rel_diff(on3.z, on1.z, nz);
        if (cases[t].has_bn && !(moved > 1e-3))
            fail_msg("%s: new running statistics moved the logits by only %.3g", what, moved);
        fold_run_free(&on3), fold_run_free(&off3);
        /* A train-mode step: parameters and running statistics change. */
        clasp_model_set_train(c.m, 1);
        assert_ok(clasp_train_step(c.m, o, c.x, c.y, NULL, NULL));
        snprintf(w2, sizeof w2, "%s, after a train step", what);
        fold_compare(&c, w2, cases[t].has_bn, &on2, &off2);
        moved = rel_diff(on2.z, on1.z, nz);
        if (!(moved > 1e-3))
            fail_msg("%s: the train step moved the logits by only %.3g", what, moved);
        clasp_sgd_free(o);
        fold_run_free(&on0), fold_run_free(&off0), fold_run_free(&on1), fold_run_free(&off1);
        fold_run_free(&on2), fold_run_free(&off2);
        fd_teardown(&c);
    }
}

/* The ops an eval-mode forward and input gradient launch, as the profile
 * names them (one string). */
static char *eval_ops(clasp_ctx *ctx, clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                      clasp_tensor *dx)
{
    clasp_model_set_train(m, 0);
    assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL)); /* folds, once */
    clasp_profile_reset(ctx);
    for (int r = 0; r < 2; r++) assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL));
    FILE *f = tmpfile();
    assert_non_null(f);
    clasp_profile_print(ctx, f);
    long n = ftell(f);
    assert_true(n > 0);
    char *text = calloc((size_t)n + 1, 1);
    rewind(f);
    assert_true(fread(text, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    return text;
}

/* Folded, a BatchNorm launches nothing in eval mode, forward or input
 * gradient, and nothing computes batch statistics; unfolded it runs its
 * per-channel pass (the check could fail). */
static void folded_batchnorm_launches_nothing(void **state)
{
    (void)state;
    clasp_ctx_opts o;
    clasp_ctx_opts_from_env(&o);
    o.profile = 1;
    clasp_ctx *ctx;
    assert_ok(clasp_ctx_new_opts(&o, &ctx));
    clasp_model *m =
        tu_model(ctx, "conv3x3-6p1,bn,relu,conv3x3-4p1nb,bn,relu,flatten,fc3", 2, 6, 6, 3);
    float xh[2 * 2 * 6 * 6];
    tu_fill_random(xh, sizeof xh / sizeof *xh, 9, 0, 1);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){2, 2, 6, 6}, xh);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){2}, (int32_t[]){0, 2});
    clasp_tensor *dx = tu_tensor(ctx, 4, x->shape, NULL);
    set_fold(ctx, 1);
    char *on = eval_ops(ctx, m, x, y, dx);
    set_fold(ctx, 0);
    char *off = eval_ops(ctx, m, x, y, dx);
    if (strstr(on, "batchnorm") || strstr(on, "channel_affine"))
        fail_msg("folded eval mode still normalises:\n%s", on);
    if (!strstr(off, "batchnorm_apply"))
        fail_msg("unfolded eval mode shows no BatchNorm:\n%s", off);
    if (strstr(off, "batchnorm_stats")) fail_msg("eval mode computes batch statistics:\n%s", off);
    free(on), free(off);
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(dx);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eval_mode_keeps_batchnorm_statistics),
        cmocka_unit_test(eval_folding_matches_unfolded),
        cmocka_unit_test(folded_batchnorm_launches_nothing),
        cmocka_unit_test(arch_parse_and_format),
        cmocka_unit_test(default_model_shapes),
        cmocka_unit_test(preset_checkpoints),
        cmocka_unit_test(input_gradient_matches_finite_differences),
        cmocka_unit_test(parameter_gradients_match_finite_differences),
        cmocka_unit_test(graph_gradients_match_finite_differences),
        cmocka_unit_test(resnet_gradients_match_finite_differences),
        cmocka_unit_test(backward_without_param_grads_leaves_them),
        cmocka_unit_test(prediction_keeps_only_logits),
        cmocka_unit_test(checkpoint_round_trip_and_errors),
        cmocka_unit_test(every_kind_round_trips),
        cmocka_unit_test(same_seed_same_weights),
        cmocka_unit_test(class_weight_norms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
