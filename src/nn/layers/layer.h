/* One layer kind behind one small interface. The model (src/nn/model.c) is
 * a graph of nodes in topological order; each node has a kind, and the
 * kind's functions do everything kind-specific: shapes, parameters and
 * buffers, initialisation, forward, backward, scratch, its item in the
 * architecture text, its automatic name and any checkpoint metadata. The
 * architecture parser and formatter (arch.c), the naming (model.c) and
 * the checkpoint code (checkpoint.c) loop over the kinds and know none by
 * name. Adding a layer kind is one file here (listed in meson.build) and
 * one row in CLASP_LAYER_KINDS (clasp/model.h), from which the public enum
 * and the table (layers.c) are made. */
#ifndef CLASP_NN_LAYER_H
#define CLASP_NN_LAYER_H

#include <stddef.h>

#include "clasp/safetensors.h"
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

    /* ---- its item in the architecture text (arch.c) ---- */
    /* The word the item starts with: "conv", "maxpool", "relu". */
    const char *keyword;
    /* Its form in the parser's "expected ..." message:
     * "maxpool<K>[s<stride>][p<pad>]" (NULL: the keyword alone; "": left
     * out of the message, as normalize, whose values the text lacks). */
    const char *syntax;
    /* Reads what follows the keyword into l (zeroed, l->kind set): 1 when
     * it is this kind's item, 0 when not. NULL: nothing may follow. */
    int (*parse)(const char *rest, clasp_layer_spec *l);
    /* Writes l's item, as parse reads it back, into buf (snprintf's
     * return). NULL: the keyword. */
    int (*format)(const clasp_layer_spec *l, char *buf, size_t size);
    /* Commas inside the item, which do not end it (pad<l>,<r>,<t>,<b>: 3);
     * such an item is told by its keyword followed by a digit. */
    int item_commas;

    /* ---- naming (model.c) ---- */
    /* Stem of the automatic names of unnamed layers, counted per kind:
     * "conv" gives conv1, conv2, ... (the state-dict names). NULL: the
     * kind's name, counted in one count shared by all such kinds (relu1,
     * maxpool2d2, ...), as the first model named them. */
    const char *name_stem;

    /* ---- checkpoint metadata (checkpoint.c), for constants that are not
     * tensors (NULL: none) ---- */
    /* Writes the node's into f. */
    clasp_status (*save_meta)(const clasp_model *m, const clasp_node *n, clasp_st_file *f);
    /* Fills l, parsed from the architecture text of the checkpoint f
     * (file name path, in_c input channels), from f's metadata; an error
     * naming path when it is missing or malformed. */
    clasp_status (*load_meta)(const clasp_st_file *f, const char *path, int in_c,
                              clasp_layer_spec *l);
} layer_ops;

/* How many kinds there are (the rows of CLASP_LAYER_KINDS). */
#define LAYER_KIND_ONE_(name, file) +1
enum { LAYER_KIND_COUNT = 0 CLASP_LAYER_KINDS(LAYER_KIND_ONE_) };
#undef LAYER_KIND_ONE_

/* The kinds, indexed by clasp_layer_kind; NULL for a number that is none. */
const layer_ops *layer_ops_of(clasp_layer_kind kind);

#define LAYER_OPS_DECLARE_(name, file) extern const layer_ops layer_##file;
CLASP_LAYER_KINDS(LAYER_OPS_DECLARE_)
#undef LAYER_OPS_DECLARE_

/* The mean and std of a checkpoint's input normalisation (its
 * clasp.normalize metadata, c values each) with *has 1, or *has 0 when f
 * has none; an error naming path when it is malformed. The preset path of
 * the loader reads it too, since presets take mean/std as arguments. */
clasp_status layer_normalize_read_meta(const clasp_st_file *f, const char *path, int c, float *mean,
                                       float *std, int *has);

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

/* A pool's item after its keyword, "<K>[s<stride>][p<pad>]", and the whole
 * item ("maxpool3s2p1"; stride and padding written when they are not the
 * default). */
int layer_parse_pool(const char *rest, clasp_layer_spec *l);
int layer_format_pool(const clasp_layer_spec *l, char *buf, size_t size);

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
