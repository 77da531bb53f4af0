/* pad: zero padding with its own left, right, top and bottom widths, for
 * convolutions whose padding is not the same on both sides (DeepMind's
 * models pad stride-2 convolutions by 0,1,0,1 as TensorFlow's "SAME").
 * The backward crops the gradient back to the input's size. */
#include <stdio.h>
#include <string.h>

#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    const node_shape *in = &n->in[0];
    const int *p = n->spec.pads;
    if (!in->is4d) return clasp_error(CLASP_ERR_CONFIG, "layer %s: pad after flatten", n->name);
    for (int k = 0; k < 4; k++)
        if (p[k] < 0 || p[k] > 4096)
            return clasp_error(CLASP_ERR_CONFIG, "layer %s: padding %d must be in [0, 4096]",
                               n->name, p[k]);
    n->out = (node_shape){in->c, in->h + p[2] + p[3], in->w + p[0] + p[1], 1};
    return CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m;
    return clasp_pad2d_forward(in[0], n->spec.pads, out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)in, (void)out;
    return din[0] ? clasp_pad2d_backward(dout, n->spec.pads, din[0]) : CLASP_OK;
}

/* "<l>,<r>,<t>,<b>" after "pad". */
static int parse_item(const char *p, clasp_layer_spec *l)
{
    for (int k = 0; k < 4; k++)
        if ((k && *p++ != ',') || !clasp_nn_read_int(&p, 0, &l->pads[k])) return 0;
    return !*p;
}

static int format_item(const clasp_layer_spec *l, char *buf, size_t size)
{
    return snprintf(buf, size, "pad%d,%d,%d,%d", l->pads[0], l->pads[1], l->pads[2], l->pads[3]);
}

const layer_ops layer_pad = {
    .name = "pad",
    .n_inputs = 1,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "pad",
    .syntax = "pad<l>,<r>,<t>,<b>",
    .parse = parse_item,
    .format = format_item,
    .item_commas = 3,
};
