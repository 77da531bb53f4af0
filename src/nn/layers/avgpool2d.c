/* avgpool2d: average over kernel x kernel windows (no padding); with the
 * kernel the size of the map it is global average pooling. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    return layer_plan_pool(n, "avg-pool");
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m;
    return clasp_avgpool2d_forward(in[0], n->spec.kernel, n->spec.stride, out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)in, (void)out;
    return din[0] ? clasp_avgpool2d_backward(dout, n->spec.kernel, n->spec.stride, din[0])
                  : CLASP_OK;
}

const layer_ops layer_avgpool2d = {
    .name = "avgpool2d",
    .n_inputs = 1,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "avgpool",
    .syntax = "avgpool<K>[s<stride>]",
    .parse = layer_parse_pool,
    .format = layer_format_pool,
};
