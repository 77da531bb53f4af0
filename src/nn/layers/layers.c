/* The table of layer kinds, indexed by clasp_layer_kind: made from the
 * rows of CLASP_LAYER_KINDS (clasp/model.h), so it cannot disagree with
 * the public enum. */
#include <stdio.h>

#include "nn/layers/layer.h"

#define LAYER_ROW_(name, file) [CLASP_LAYER_##name] = &layer_##file,
static const layer_ops *const table[] = {CLASP_LAYER_KINDS(LAYER_ROW_)};
#undef LAYER_ROW_

_Static_assert(sizeof table / sizeof table[0] == LAYER_KIND_COUNT, "one row per kind");

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

int layer_parse_pool(const char *rest, clasp_layer_spec *l)
{
    if (!clasp_nn_read_int(&rest, 1, &l->kernel)) return 0;
    l->stride = l->kernel;
    if (*rest == 's' && (rest++, !clasp_nn_read_int(&rest, 1, &l->stride))) return 0;
    if (*rest == 'p' && (rest++, !clasp_nn_read_int(&rest, 0, &l->pad))) return 0;
    return !*rest;
}

int layer_format_pool(const clasp_layer_spec *l, char *buf, size_t size)
{
    const char *kw = layer_ops_of(l->kind)->keyword;
    char s[16] = "", p[16] = "";
    if (l->stride && l->stride != l->kernel) snprintf(s, sizeof s, "s%d", l->stride);
    if (l->pad > 0) snprintf(p, sizeof p, "p%d", l->pad);
    return snprintf(buf, size, "%s%d%s%s", kw, l->kernel, s, p);
}
