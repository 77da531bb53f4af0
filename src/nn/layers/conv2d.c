/* conv2d: im2col + GEMM convolution (src/ops/conv.c), PyTorch's Conv2d:
 * "<name>.weight" [out, in, k, k] and, unless no_bias, "<name>.bias". In a
 * folded eval forward (model.c) it runs with the BatchNorm after it folded
 * into its weights, which then wait in scratch[0..2] (batchnorm2d.c). */
#include <math.h>
#include <stdlib.h>

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

const layer_ops layer_conv2d = {"conv2d", 1, 0, 0, plan, init, forward, backward};
