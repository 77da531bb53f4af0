/* normalize: (x - mean[c]) / std[c] inside the model, so inputs and the
 * attack budget eps stay in [0,1] pixel space (as robust model zoos
 * define their models). Constant: no parameters, nothing in the state
 * dict; the values travel in checkpoint metadata. scratch[0..1] hold
 * 1/std and -mean/std. */
#include "nn/layers/layer.h"

static clasp_status plan(clasp_model *m, clasp_node *n)
{
    (void)m;
    const node_shape *in = &n->in[0];
    if (!in->is4d || in->c > CLASP_NORMALIZE_MAX_C)
        return clasp_error(CLASP_ERR_CONFIG,
                           "layer %s: normalize takes images of at most %d channels", n->name,
                           CLASP_NORMALIZE_MAX_C);
    for (int c = 0; c < in->c; c++)
        if (!(n->spec.std[c] > 0.0f))
            return clasp_error(CLASP_ERR_CONFIG, "layer %s: normalize std[%d] must be > 0", n->name,
                               c);
    n->out = *in;
    return CLASP_OK;
}

static clasp_status ensure_coeffs(clasp_model *m, clasp_node *n)
{
    if (n->scratch[0]) return CLASP_OK;
    int c = n->out.c;
    float scale[CLASP_NORMALIZE_MAX_C], shift[CLASP_NORMALIZE_MAX_C];
    for (int k = 0; k < c; k++) {
        scale[k] = 1.0f / n->spec.std[k];
        shift[k] = -n->spec.mean[k] / n->spec.std[k];
    }
    CLASP_TRY(clasp_tensor_new1(m->ctx, c, &n->scratch[0]));
    CLASP_TRY(clasp_tensor_new1(m->ctx, c, &n->scratch[1]));
    CLASP_TRY(clasp_tensor_write(n->scratch[0], scale));
    return clasp_tensor_write(n->scratch[1], shift);
}

static clasp_status forward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out)
{
    CLASP_TRY(ensure_coeffs(m, n));
    return clasp_channel_affine(in[0], n->scratch[0], n->scratch[1], out);
}

static clasp_status backward(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din)
{
    (void)m, (void)in, (void)out;
    return din[0] ? clasp_channel_affine(dout, n->scratch[0], NULL, din[0]) : CLASP_OK;
}

const layer_ops layer_normalize = {"normalize", 1, 0, 0, plan, NULL, forward, backward};
