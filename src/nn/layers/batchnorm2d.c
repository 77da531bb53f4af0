/* batchnorm2d: PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1, affine):
 * parameters "<name>.weight", "<name>.bias" [C]; buffers
 * "<name>.running_mean", "<name>.running_var" [C] and the int64
 * "<name>.num_batches_tracked". Train mode normalises with the batch's
 * statistics and updates the running ones; eval mode uses the running
 * ones. The batch mean and 1/std of the forward wait in scratch[0..1].
 * In a folded eval forward (model.c) the convolution before it applies
 * it, and this node passes its input through. */
#include <math.h>
#include <stdlib.h>

#include "nn/layers/layer.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    const node_shape *in = &n->in[0];
    if (!in->is4d)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: BatchNorm2d needs a 4-d input", n->name);
    n->out = *in;
    int c = in->c;
    CLASP_TRY(model_add_param(m, n, "weight", 1, &c, 0, &n->param[0]));
    CLASP_TRY(model_add_param(m, n, "bias", 1, &c, 0, &n->param[1]));
    CLASP_TRY(model_add_buffer(m, n, "running_mean", 1, &c, 0, &n->buffer[0]));
    CLASP_TRY(model_add_buffer(m, n, "running_var", 1, &c, 0, &n->buffer[1]));
    CLASP_TRY(model_add_buffer(m, n, "num_batches_tracked", 0, NULL, 1, &n->buffer[2]));
    return CLASP_OK;
}

static clasp_status init(clasp_model *m, clasp_node *n, uint64_t seed)
{
    (void)seed;
    CLASP_TRY(clasp_tensor_fill(m->params[n->param[0]], 1.0f));
    CLASP_TRY(clasp_tensor_fill(m->params[n->param[1]], 0.0f));
    CLASP_TRY(clasp_tensor_fill(m->buffers[n->buffer[0]].t, 0.0f));
    CLASP_TRY(clasp_tensor_fill(m->buffers[n->buffer[1]].t, 1.0f));
    m->buffers[n->buffer[2]].i64 = 0;
    return CLASP_OK;
}

clasp_status layer_batchnorm2d_fold(clasp_model *m, clasp_node *conv, const clasp_tensor **w,
                                    const clasp_tensor **b)
{
    const clasp_node *bn = &m->nodes[conv->fold_bn];
    const clasp_tensor *w0 = m->params[conv->param[0]];
    const clasp_tensor *b0 = conv->param[1] >= 0 ? m->params[conv->param[1]] : NULL;
    const clasp_tensor *src[6] = {w0,
                                  b0,
                                  m->params[bn->param[0]],
                                  m->params[bn->param[1]],
                                  m->buffers[bn->buffer[0]].t,
                                  m->buffers[bn->buffer[1]].t};
    int same = conv->scratch[0] != NULL;
    for (int k = 0; k < 6; k++) same = same && conv->fold_key[k] == (src[k] ? src[k]->version : 0);
    if (!same) {
        /* Per output channel o: s = gamma / sqrt(var + eps),
         * w' = w s, b' = (b - mean) s + beta, so that
         * conv(x, w', b') = BN(conv(x, w, b)). The C-vectors are made in
         * double on the host; w' is one per-channel scaling on the device. */
        int c = w0->shape[0];
        size_t per = w0->numel / (size_t)c;
        float *h = malloc((size_t)c * 7 * sizeof *h);
        if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        float *gamma = h, *beta = h + c, *mean = h + 2 * c, *var = h + 3 * c, *bias = h + 4 * c;
        float *scale = h + 5 * c, *shift = h + 6 * c;
        clasp_status st = clasp_tensor_read(src[2], gamma);
        if (st == CLASP_OK) st = clasp_tensor_read(src[3], beta);
        if (st == CLASP_OK) st = clasp_tensor_read(src[4], mean);
        if (st == CLASP_OK) st = clasp_tensor_read(src[5], var);
        if (st == CLASP_OK && b0) st = clasp_tensor_read(b0, bias);
        for (int o = 0; st == CLASP_OK && o < c; o++) {
            double sc = (double)gamma[o] / sqrt((double)var[o] + (double)BN_EPS);
            scale[o] = (float)sc;
            shift[o] =
                (float)(((b0 ? (double)bias[o] : 0.0) - (double)mean[o]) * sc + (double)beta[o]);
        }
        if (st == CLASP_OK)
            st = clasp_tensor_ensure(m->ctx, &conv->scratch[0], CLASP_F32, w0->ndim, w0->shape);
        if (st == CLASP_OK) st = clasp_tensor_ensure(m->ctx, &conv->scratch[1], CLASP_F32, 1, &c);
        if (st == CLASP_OK) st = clasp_tensor_ensure(m->ctx, &conv->scratch[2], CLASP_F32, 1, &c);
        if (st == CLASP_OK) st = clasp_tensor_write(conv->scratch[1], shift);
        if (st == CLASP_OK) st = clasp_tensor_write(conv->scratch[2], scale);
        free(h);
        CLASP_TRY(st);
        /* [O, I, k, k] seen as [1, O, I*k*k, 1]: one "channel" per output. */
        clasp_tensor wv = *w0, fv = *conv->scratch[0];
        wv.ndim = fv.ndim = 4;
        wv.shape[0] = fv.shape[0] = 1;
        wv.shape[1] = fv.shape[1] = c;
        wv.shape[2] = fv.shape[2] = (int)per;
        wv.shape[3] = fv.shape[3] = 1;
        CLASP_TRY(clasp_channel_affine(&wv, conv->scratch[2], NULL, &fv));
        /* New contents: the transformed weights derived from it go stale. */
        clasp_tensor_touch(conv->scratch[0]);
        for (int k = 0; k < 6; k++) conv->fold_key[k] = src[k] ? src[k]->version : 0;
    }
    *w = conv->scratch[0];
    *b = conv->scratch[1];
    return CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    if (m->folded && n->fold_conv >= 0) return CLASP_OK; /* out is in[0], already normalised */
    const clasp_tensor *g = m->params[n->param[0]], *b = m->params[n->param[1]];
    clasp_tensor *rm = m->buffers[n->buffer[0]].t, *rv = m->buffers[n->buffer[1]].t;
    if (!m->train) return clasp_batchnorm_forward_eval(in[0], g, b, rm, rv, BN_EPS, out);
    int c = n->out.c;
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &n->scratch[0], CLASP_F32, 1, &c));
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &n->scratch[1], CLASP_F32, 1, &c));
    m->buffers[n->buffer[2]].i64++;
    return clasp_batchnorm_forward_train(in[0], g, b, rm, rv, BN_MOMENTUM, BN_EPS, n->scratch[0],
                                         n->scratch[1], out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)out;
    /* Folded: the convolution's input gradient used the folded weights,
     * and din[0] is dout. */
    if (m->folded && n->fold_conv >= 0) return CLASP_OK;
    const clasp_tensor *g = m->params[n->param[0]];
    clasp_tensor *dg = m->want_param_grads ? m->grads[n->param[0]] : NULL;
    clasp_tensor *db = m->want_param_grads ? m->grads[n->param[1]] : NULL;
    if (!din[0] && !dg) return CLASP_OK;
    if (!m->train)
        return clasp_batchnorm_backward_eval(in[0], dout, g, m->buffers[n->buffer[0]].t,
                                             m->buffers[n->buffer[1]].t, BN_EPS, din[0], dg, db);
    return clasp_batchnorm_backward_train(in[0], dout, g, n->scratch[0], n->scratch[1], din[0], dg,
                                          db);
}

const layer_ops layer_batchnorm2d = {
    .name = "batchnorm2d",
    .n_inputs = 1,
    .plan = plan,
    .init = init,
    .forward = forward,
    .backward = backward,
    .keyword = "bn",
    .name_stem = "bn",
};
