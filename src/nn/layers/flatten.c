/* flatten: [N,C,H,W] read as [N, C*H*W]. In place it is free (the next
 * layer reads the same buffer); otherwise a copy. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    const node_shape *in = &n->in[0];
    n->out = (node_shape){in->c * in->h * in->w, 1, 1, 0};
    return CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m, (void)n;
    return out == in[0] ? CLASP_OK : clasp_tensor_copy(out, in[0]);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)n, (void)in, (void)out;
    return din[0] && din[0] != dout ? clasp_tensor_copy(din[0], dout) : CLASP_OK;
}

const layer_ops layer_flatten = {
    .name = "flatten",
    .n_inputs = 1,
    .in_place = 2,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "flatten",
};
