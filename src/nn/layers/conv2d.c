/* conv2d: im2col + GEMM convolution (src/ops/conv.c), PyTorch's Conv2d:
 * "<name>.weight" [out, in, k, k] and, unless no_bias, "<name>.bias". In a
 * folded eval forward (model.c) it runs with the BatchNorm after it folded
 * into its weights, which then wait in scratch[0..2] (batchnorm2d.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    clasp_layer_spec *s = &n->spec;
    const node_shape *in = &n->in[0];
    if (!in->is4d) return clasp_error(CLASP_ERR_CONFIG, "layer %s: conv after flatten", n->name);
    if (s->stride <= 0) s->stride = 1;
    if (s->kernel <= 0 || s->out <= 0 || s->pad < 0)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: conv needs kernel > 0, out > 0, pad >= 0",
                           n->name);
    if (in->h + 2 * s->pad < s->kernel || in->w + 2 * s->pad < s->kernel)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: conv %dx%d does not fit a %dx%d input",
                           n->name, s->kernel, s->kernel, in->h, in->w);
    n->out = (node_shape){s->out, (in->h + 2 * s->pad - s->kernel) / s->stride + 1,
                          (in->w + 2 * s->pad - s->kernel) / s->stride + 1, 1};
    CLASP_TRY(model_add_param(m, n, "weight", 4, (int[]){s->out, in->c, s->kernel, s->kernel}, 1,
                              &n->param[0]));
    if (!s->no_bias) CLASP_TRY(model_add_param(m, n, "bias", 1, &s->out, 0, &n->param[1]));
    return CLASP_OK;
}

static clasp_status init(clasp_model *m, clasp_node *n, uint64_t seed)
{
    if (n->spec.init != CLASP_INIT_KAIMING_FAN_OUT)
        return layer_init_default(m, n->param[0], n->param[1], seed);
    /* He-normal over the fan-out, zero bias: WideResNet's own initialisation. */
    clasp_tensor *w = m->params[n->param[0]];
    float *h = malloc(w->numel * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_rng rng = clasp_rng_make(seed, (uint64_t)n->param[0] + 1);
    float fan_out = (float)(n->spec.out * n->spec.kernel * n->spec.kernel);
    clasp_rng_normal_host(&rng, h, w->numel, 0.0f, sqrtf(2.0f / fan_out));
    clasp_status st = clasp_tensor_write(w, h);
    free(h);
    CLASP_TRY(st);
    return n->param[1] >= 0 ? clasp_tensor_fill(m->params[n->param[1]], 0.0f) : CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    const clasp_tensor *w = m->params[n->param[0]];
    const clasp_tensor *b = n->param[1] >= 0 ? m->params[n->param[1]] : NULL;
    if (m->folded && n->fold_bn >= 0) CLASP_TRY(layer_batchnorm2d_fold(m, n, &w, &b));
    return clasp_conv2d_forward(in[0], w, b, n->spec.stride, n->spec.pad, out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)out;
    const clasp_tensor *w = m->params[n->param[0]];
    if (m->folded && n->fold_bn >= 0) {
        /* The input gradient through conv and BatchNorm together: the
         * folded weights (model.c never folds when parameter gradients
         * are wanted). */
        if (m->want_param_grads)
            return clasp_error(CLASP_ERR_INVALID,
                               "layer %s: parameter gradients of a folded forward", n->name);
        const clasp_tensor *b;
        CLASP_TRY(layer_batchnorm2d_fold(m, n, &w, &b));
        if (!din[0]) return CLASP_OK;
        return clasp_conv2d_backward(in[0], w, dout, n->spec.stride, n->spec.pad, din[0], NULL,
                                     NULL);
    }
    clasp_tensor *dw = m->want_param_grads ? m->grads[n->param[0]] : NULL;
    clasp_tensor *db = m->want_param_grads && n->param[1] >= 0 ? m->grads[n->param[1]] : NULL;
    if (!din[0] && !dw) return CLASP_OK;
    return clasp_conv2d_backward(in[0], w, dout, n->spec.stride, n->spec.pad, din[0], dw, db);
}

/* "<K>x<K>-<out>[s<stride>][p<pad>][nb]" after "conv", the suffixes in any order. */
static int parse_item(const char *p, clasp_layer_spec *l)
{
    int b = 0;
    if (!clasp_nn_read_int(&p, 1, &l->kernel) || *p++ != 'x' || !clasp_nn_read_int(&p, 1, &b) ||
        b != l->kernel || *p++ != '-' || !clasp_nn_read_int(&p, 1, &l->out))
        return 0;
    l->stride = 1;
    while (*p) {
        if (!strncmp(p, "nb", 2)) l->no_bias = 1, p += 2;
        else if (*p == 's') {
            if (p++, !clasp_nn_read_int(&p, 1, &l->stride)) return 0;
        } else if (*p == 'p') {
            if (p++, !clasp_nn_read_int(&p, 0, &l->pad)) return 0;
        } else return 0;
    }
    return 1;
}

static int format_item(const clasp_layer_spec *l, char *buf, size_t size)
{
    char s[16] = "", p[16] = "";
    if (l->stride > 1) snprintf(s, sizeof s, "s%d", l->stride);
    if (l->pad > 0) snprintf(p, sizeof p, "p%d", l->pad);
    return snprintf(buf, size, "conv%dx%d-%d%s%s%s", l->kernel, l->kernel, l->out, s, p,
                    l->no_bias ? "nb" : "");
}

const layer_ops layer_conv2d = {
    .name = "conv2d",
    .n_inputs = 1,
    .plan = plan,
    .init = init,
    .forward = forward,
    .backward = backward,
    .keyword = "conv",
    .syntax = "conv<K>x<K>-<out>[s<stride>][p<pad>][nb]",
    .parse = parse_item,
    .format = format_item,
    .name_stem = "conv",
};
