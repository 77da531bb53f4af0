/* The table of layer kinds, indexed by clasp_layer_kind. */
#include "nn/layers/layer.h"

static const layer_ops *const table[] = {
    [CLASP_LAYER_CONV2D] = &layer_conv2d,
    [CLASP_LAYER_LINEAR] = &layer_linear,
    [CLASP_LAYER_RELU] = &layer_relu,
    [CLASP_LAYER_MAXPOOL2D] = &layer_maxpool2d,
    [CLASP_LAYER_FLATTEN] = &layer_flatten,
    [CLASP_LAYER_BATCHNORM2D] = &layer_batchnorm2d,
    [CLASP_LAYER_ADD] = &layer_add,
    [CLASP_LAYER_AVGPOOL2D] = &layer_avgpool2d,
    [CLASP_LAYER_NORMALIZE] = &layer_normalize,
    [CLASP_LAYER_SWISH] = &layer_swish,
    [CLASP_LAYER_PAD] = &layer_pad,
};

const layer_ops *layer_ops_of(clasp_layer_kind kind)
{
    if ((int)kind < 0 || (size_t)kind >= sizeof table / sizeof table[0]) return NULL;
    return table[kind];
}

clasp_status layer_plan_pool(clasp_node *n, const char *what)
{
    clasp_layer_spec *s = &n->spec;
    const node_shape *in = &n->in[0];
    if (!in->is4d)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: %s after flatten", n->name, what);
    if (s->stride <= 0) s->stride = s->kernel;
    /* Only max pooling pads (with -inf, at most half the window, as
     * PyTorch allows). */
    int p = s->pad;
    if (p < 0 || p > s->kernel / 2 || (p && n->spec.kind != CLASP_LAYER_MAXPOOL2D))
        return clasp_error(CLASP_ERR_CONFIG,
                           "layer %s: %s padding %d (max pooling only, at most %d)", n->name, what,
                           p, s->kernel / 2);
    if (s->kernel <= 0 || in->h + 2 * p < s->kernel || in->w + 2 * p < s->kernel)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: %s %d on a %dx%d input", n->name, what,
                           s->kernel, in->h, in->w);
    n->out = (node_shape){in->c, (in->h + 2 * p - s->kernel) / s->stride + 1,
                          (in->w + 2 * p - s->kernel) / s->stride + 1, 1};
    return CLASP_OK;
}

clasp_status layer_plan_elementwise(clasp_model *m, clasp_node *n)
{
    (void)m;
    n->out = n->in[0];
    return CLASP_OK;
}
