/* swish: x * sigmoid(x). Not in place: its backward needs the input, which
 * an in-place forward would overwrite. */
#include "nn/layers/layer.h"

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m, (void)n;
    return clasp_swish_forward(in[0], out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)n, (void)out;
    return din[0] ? clasp_swish_backward(in[0], dout, din[0]) : CLASP_OK;
}

const layer_ops layer_swish = {
    .name = "swish",
    .n_inputs = 1,
    .plan = layer_plan_elementwise,
    .forward = forward,
    .backward = backward,
    .keyword = "swish",
};
