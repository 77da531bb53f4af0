/* add: the sum of two inputs of one shape (a residual connection). Its
 * gradient goes unchanged to both inputs. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    const node_shape *a = &n->in[0], *b = &n->in[1];
    if (a->c != b->c || a->h != b->h || a->w != b->w || a->is4d != b->is4d)
        return clasp_error(CLASP_ERR_CONFIG, "layer %s: add of a %dx%dx%d and a %dx%dx%d input",
                           n->name, a->c, a->h, a->w, b->c, b->h, b->w);
    n->out = *a;
    return CLASP_OK;
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    (void)m, (void)n;
    return clasp_add_scaled(in[0], 1.0f, in[1], out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)n, (void)in, (void)out;
    for (int j = 0; j < 2; j++)
        if (din[j]) CLASP_TRY(clasp_tensor_copy(din[j], dout));
    return CLASP_OK;
}

const layer_ops layer_add = {
    .name = "add",
    .n_inputs = 2,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "add",
};
