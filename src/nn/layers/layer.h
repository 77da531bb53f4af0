/* One layer kind behind one small interface. The model (src/nn/model.c) is
 * a graph of nodes in topological order; each node has a kind, and the
 * kind's functions do everything kind-specific: shapes, parameters and
 * buffers, initialisation, forward, backward, scratch. Adding a layer kind
 * is one file here and one entry in layer_table (layers.c). */
#ifndef CLASP_NN_LAYER_H
#define CLASP_NN_LAYER_H

#include "nn/nn_internal.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct layer_ops {
    const char *name; /* for messages: "conv2d" */
    int n_inputs;     /* 1, or 2 for add */
    /* Runs in place on its single input where the graph allows it (the
     * input has no other consumer): 1 when it rewrites the values (relu;
     * not on an input whose backward needs its own output), 2 when it only
     * reinterprets the shape (flatten). In place, forward gets out == in[0]
     * and backward gets din[0] == dout. */
    int in_place;
    /* Its backward reads its own output (relu): nothing may then run in
     * place on that output. */
    int backward_needs_out;
    /* Checks n->in[] shapes, sets n->out, declares parameters and buffers
     * (model_add_param / model_add_buffer). */
    clasp_status (*plan)(clasp_model *m, clasp_node *n);
    /* Initial values of the node's parameters and buffers (may be NULL:
     * nothing to initialise). */
    clasp_status (*init)(clasp_model *m, clasp_node *n, uint64_t seed);
    /* out = f(in); n->scratch may be kept for backward. Train mode in m->train. */
    clasp_status (*forward)(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                            clasp_tensor *out);
    /* From dout (gradient w.r.t. out): din[j] for each input (NULL: not
     * needed; written, not added: the graph sums fan-out), and, when
     * m->want_param_grads, the gradients of the node's parameters
     * (written). in/out are the forward's tensors. */
    clasp_status (*backward)(clasp_model *m, clasp_node *n, const clasp_tensor *const *in,
                             const clasp_tensor *out, const clasp_tensor *dout, clasp_tensor **din);
} layer_ops;

/* The kinds, indexed by clasp_layer_kind. */
const layer_ops *layer_ops_of(clasp_layer_kind kind);

extern const layer_ops layer_conv2d, layer_linear, layer_relu, layer_maxpool2d, layer_flatten,
    layer_batchnorm2d, layer_add, layer_avgpool2d, layer_normalize, layer_swish, layer_pad;

/* Declares a trained parameter "<node name>.<suffix>" of the given shape;
 * its index is returned in *index. decay: weight decay applies. */
clasp_status model_add_param(clasp_model *m, clasp_node *n, const char *suffix, int ndim,
                             const int *shape, int decay, int *index);
/* Declares a buffer (saved and loaded, not trained) "<node name>.<suffix>":
 * float [shape], or, with ndim 0 and i64 set, a host int64 counter
 * (PyTorch's num_batches_tracked). */
clasp_status model_add_buffer(clasp_model *m, clasp_node *n, const char *suffix, int ndim,
                              const int *shape, int i64, int *index);

/* PyTorch's default Conv2d/Linear initialisation of a weight and bias
 * (bias may be NULL): uniform within 1/sqrt(fan_in), a stream per tensor. */
clasp_status layer_init_default(clasp_model *m, int weight, int bias, uint64_t seed);

/* Shapes of a pooling layer (window kernel, stride, no padding; stride 0
 * means the kernel); `what` names it in messages ("max-pool"). */
clasp_status layer_plan_pool(clasp_node *n, const char *what);

/* Shapes of an elementwise layer (relu, swish): the output is the input's shape. */
clasp_status layer_plan_elementwise(clasp_model *m, clasp_node *n);

/* The weight and bias convolution node conv runs with in a folded forward
 * (m->folded, conv->fold_bn >= 0): its own weight and bias with the
 * BatchNorm after it folded in, kept in conv's scratch and remade only
 * when one of the tensors they come from has a new version
 * (layers/batchnorm2d.c). */
clasp_status layer_batchnorm2d_fold(clasp_model *m, clasp_node *conv, const clasp_tensor **w,
                                    const clasp_tensor **b);

/* The output tensor of the node with per-example shape n->out for batch N. */
clasp_status layer_ensure_out(clasp_model *m, const clasp_node *n, clasp_tensor **t);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
