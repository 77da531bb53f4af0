/* maxpool2d: window k, stride s, padding p (-inf, as PyTorch's); the argmax positions of the
 * forward (scratch[0]) route the gradient back. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    return layer_plan_pool(n, "max-pool");
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &n->scratch[0], CLASP_I32, 4, out->shape));
    return clasp_maxpool2d_forward_pad(in[0], n->spec.kernel, n->spec.stride, n->spec.pad, out,
                                       n->scratch[0]);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)in, (void)out;
    return din[0] ? clasp_maxpool2d_backward(dout, n->scratch[0], din[0]) : CLASP_OK;
}

const layer_ops layer_maxpool2d = {
    .name = "maxpool2d",
    .n_inputs = 1,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "maxpool",
    .syntax = "maxpool<K>[s<stride>][p<pad>]",
    .parse = layer_parse_pool,
    .format = layer_format_pool,
};
