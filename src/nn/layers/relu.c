/* relu: max(x, 0), in place when the graph allows; its backward masks by
 * its own output (positive exactly where the input was). */
#include "nn/layers/layer.h"

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m, (void)n;
    return clasp_relu_forward(in[0], out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)n, (void)in;
    return din[0] ? clasp_relu_backward(out, dout, din[0]) : CLASP_OK;
}

const layer_ops layer_relu = {
    .name = "relu",
    .n_inputs = 1,
    .in_place = 1,
    .backward_needs_out = 1,
    .plan = layer_plan_elementwise,
    .forward = forward,
    .backward = backward,
    .keyword = "relu",
};
