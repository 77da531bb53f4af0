/* batchnorm2d: PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1, affine):
 * parameters "<name>.weight", "<name>.bias" [C]; buffers
 * "<name>.running_mean", "<name>.running_var" [C] and the int64
 * "<name>.num_batches_tracked". Train mode normalises with the batch's
 * statistics and updates the running ones; eval mode uses the running
 * ones. The batch mean and 1/std of the forward wait in scratch[0..1]. */
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

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
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
