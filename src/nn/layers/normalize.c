/* normalize: (x - mean[c]) / std[c] inside the model, so inputs and the
 * attack budget eps stay in [0,1] pixel space (as robust model zoos
 * define their models). Constant: no parameters, nothing in the state
 * dict; the values travel in checkpoint metadata, clasp.normalize =
 * "m0,m1,m2/s0,s1,s2" (the architecture text says just "normalize").
 * scratch[0..1] hold 1/std and -mean/std. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers/layer.h"

#define META_KEY "clasp.normalize"

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

/* A model normalises once, first: the first normalize layer's values are
 * the file's. */
static clasp_status save_meta(const clasp_model *m, const clasp_node *n, clasp_st_file *f)
{
    if (clasp_st_meta(f, META_KEY)) return CLASP_OK;
    char buf[256];
    size_t len = 0;
    for (int k = 0; k < 2 * m->in_c && k < 2 * CLASP_NORMALIZE_MAX_C; k++) {
        float v = k < m->in_c ? n->spec.mean[k] : n->spec.std[k - m->in_c];
        const char *sep = k == 0 ? "" : k == m->in_c ? "/" : ",";
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.9g", sep, (double)v);
    }
    return clasp_st_set_meta(f, META_KEY, buf);
}

/* c comma-separated finite numbers, all of text. */
static int read_floats(const char *text, float *out, int c)
{
    const char *p = text;
    for (int k = 0; k < c; k++) {
        if (k && *p++ != ',') return 0;
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) return 0;
        out[k] = (float)v;
        p = end;
    }
    return !*p;
}

clasp_status layer_normalize_read_meta(const clasp_st_file *f, const char *path, int c, float *mean,
                                       float *std, int *has)
{
    const char *text = clasp_st_meta(f, META_KEY);
    *has = 0;
    if (!text) return CLASP_OK;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    if (!slash || c <= 0 || c > CLASP_NORMALIZE_MAX_C || strlen(text) >= sizeof buf ||
        !read_floats(buf, mean, c) || !read_floats(slash + 1, std, c))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: metadata " META_KEY
                           " '%.64s' is not %d MEAN,... / %d STD,... values",
                           path, text, c, c);
    *has = 1;
    return CLASP_OK;
}

static clasp_status load_meta(const clasp_st_file *f, const char *path, int in_c,
                              clasp_layer_spec *l)
{
    int has;
    CLASP_TRY(layer_normalize_read_meta(f, path, in_c, l->mean, l->std, &has));
    if (!has) return clasp_error(CLASP_ERR_FORMAT, "%s: a normalize layer without " META_KEY, path);
    return CLASP_OK;
}

const layer_ops layer_normalize = {
    .name = "normalize",
    .n_inputs = 1,
    .plan = plan,
    .forward = forward,
    .backward = backward,
    .keyword = "normalize",
    .syntax = "",
    .save_meta = save_meta,
    .load_meta = load_meta,
};
