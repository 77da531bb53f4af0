/* avgpool2d: average over kernel x kernel windows (no padding); with the
 * kernel the size of the map it is global average pooling. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    clasp_layer_spec *s = &n->spec;
    const node_shape *in = &n->in[0];
    if (!in->is4d) return clasp_error(CLASP_ERR_CONFIG, "layer %s: avg-pool after flatten", n->name);
    if (s->stride <= 0) s->stride = s->kernel;
    if (s->kernel <= 0 || in->h < s->kernel || in->w < s->kernel)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: avg-pool %d on a %dx%d input", n->name, s->kernel,
                           in->h, in->w);
    n->out = (node_shape){in->c, (in->h - s->kernel) / s->stride + 1, (in->w - s->kernel) / s->stride + 1, 1};
    return CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in, clasp_tensor *out)
{
    (void)m;
    return clasp_avgpool2d_forward(in[0], n->spec.kernel, n->spec.stride, out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)in, (void)out;
    return din[0] ? clasp_avgpool2d_backward(dout, n->spec.kernel, n->spec.stride, din[0]) : CLASP_OK;
}

const layer_ops layer_avgpool2d = {"avgpool2d", 1, 0, 0, plan, NULL, forward, backward};
