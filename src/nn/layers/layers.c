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
};

const layer_ops *layer_ops_of(clasp_layer_kind kind)
{
    if ((int)kind < 0 || (size_t)kind >= sizeof table / sizeof table[0]) return NULL;
    return table[kind];
}
