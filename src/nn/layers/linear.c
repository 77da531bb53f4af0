/* linear: PyTorch's Linear, "<name>.weight" [out, in] and, unless no_bias,
 * "<name>.bias". Its input must be 2-d, or 4-d of 1x1 maps, or come
 * through a flatten (which shares its input's buffer: a [N,C,H,W] tensor
 * is read as [N, C*H*W]). */
#include <stdio.h>
#include <string.h>

#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    clasp_layer_spec *s = &n->spec;
    const node_shape *in = &n->in[0];
    if (in->is4d && (in->h != 1 || in->w != 1))
        return clasp_error(CLASP_ERR_CONFIG,
                           "layer %s: fully connected layer needs a flatten before it", n->name);
    if (s->out <= 0) return clasp_error(CLASP_ERR_CONFIG, "layer %s: fc needs out > 0", n->name);
    n->out = (node_shape){s->out, 1, 1, 0};
    CLASP_TRY(model_add_param(m, n, "weight", 2, (int[]){s->out, in->c * in->h * in->w}, 1,
                              &n->param[0]));
    if (!s->no_bias) CLASP_TRY(model_add_param(m, n, "bias", 1, &s->out, 0, &n->param[1]));
    return CLASP_OK;
}

static clasp_status init(clasp_model *m, clasp_node *n, uint64_t seed)
{
    if (n->spec.init == CLASP_INIT_KAIMING_FAN_OUT) {
        /* WideResNet: PyTorch's default weights, zero bias. */
        CLASP_TRY(layer_init_default(m, n->param[0], -1, seed));
        return n->param[1] >= 0 ? clasp_tensor_fill(m->params[n->param[1]], 0.0f) : CLASP_OK;
    }
    return layer_init_default(m, n->param[0], n->param[1], seed);
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    const clasp_tensor *b = n->param[1] >= 0 ? m->params[n->param[1]] : NULL;
    return clasp_linear_forward(in[0], m->params[n->param[0]], b, out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)out;
    clasp_tensor *dw = m->want_param_grads ? m->grads[n->param[0]] : NULL;
    clasp_tensor *db = m->want_param_grads && n->param[1] >= 0 ? m->grads[n->param[1]] : NULL;
    if (!din[0] && !dw) return CLASP_OK;
    return clasp_linear_backward(in[0], m->params[n->param[0]], dout, din[0], dw, db);
}

/* "<out>[nb]" after "fc". */
static int parse_item(const char *p, clasp_layer_spec *l)
{
    if (!clasp_nn_read_int(&p, 1, &l->out)) return 0;
    if (!strcmp(p, "nb")) l->no_bias = 1, p += 2;
    return !*p;
}

static int format_item(const clasp_layer_spec *l, char *buf, size_t size)
{
    return snprintf(buf, size, "fc%d%s", l->out, l->no_bias ? "nb" : "");
}

const layer_ops layer_linear = {
    .name = "linear",
    .n_inputs = 1,
    .plan = plan,
    .init = init,
    .forward = forward,
    .backward = backward,
    .keyword = "fc",
    .syntax = "fc<out>[nb]",
    .parse = parse_item,
    .format = format_item,
    .name_stem = "fc",
};
