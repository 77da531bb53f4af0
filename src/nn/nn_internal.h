/* Internals of the model module shared by model.c, train.c and checkpoint.c. */
#ifndef CLASP_NN_INTERNAL_H
#define CLASP_NN_INTERNAL_H

#include "clasp/model.h"

/* Per-example shape of a tensor flowing between nodes. */
typedef struct node_shape {
    int c, h, w;
    int is4d; /* [N,C,H,W]; else [N,C] (h = w = 1) */
} node_shape;

#define CLASP_NODE_MAX_PARAMS 4
#define CLASP_NODE_MAX_SCRATCH 3

/* One node of the model graph and the buffers of its last forward/backward. */
typedef struct clasp_node {
    clasp_layer_spec spec;
    const struct layer_ops *ops;
    char name[CLASP_LAYER_NAME_MAX]; /* resolved module path: "conv1", "layer1.0.bn2" */
    int n_in;
    int in_idx[CLASP_LAYER_MAX_INPUTS]; /* node indices; -1 = the model input */
    node_shape in[CLASP_LAYER_MAX_INPUTS], out;
    int param[CLASP_NODE_MAX_PARAMS];  /* indices into the model's params, -1 = none */
    int buffer[CLASP_NODE_MAX_PARAMS]; /* indices into the model's buffers, -1 = none */
    int consumers;                     /* nodes reading this output (+1 for the logits) */
    int params_upstream;               /* this node or one it reads from has parameters */
    int in_place;                      /* computes on its input's buffer */
    int owner;            /* node whose tensors hold this output (itself unless in place) */
    clasp_tensor *out_t;  /* owned output buffer (owner only) */
    clasp_tensor *grad_t; /* owned gradient w.r.t. the output (owner only) */
    clasp_tensor *scratch[CLASP_NODE_MAX_SCRATCH]; /* kind-specific: argmax, batch statistics */
    /* Eval-mode folding: a BatchNorm2d that is a convolution's only reader
     * (fold_bn on the convolution, fold_conv on the BatchNorm; -1: none).
     * fold_key: the versions of the tensors the folded weights in the
     * convolution's scratch were made from. */
    int fold_bn, fold_conv;
    uint64_t fold_key[6];
} clasp_node;

/* A saved, untrained tensor: a float device tensor, or a host int64
 * counter (PyTorch's BatchNorm num_batches_tracked). */
typedef struct model_buffer {
    char name[CLASP_PARAM_NAME_MAX];
    clasp_tensor *t; /* NULL for the int64 counter */
    int is_i64;
    int64_t i64;
} model_buffer;

struct clasp_model {
    clasp_ctx *ctx;
    int in_c, in_h, in_w;
    int num_classes;
    int n_nodes;
    clasp_node *nodes;
    int n_params, cap_params;
    clasp_tensor **params, **grads;
    char (*names)[CLASP_PARAM_NAME_MAX];
    int *decay; /* weight decay applies to params[i] */
    int n_buffers, cap_buffers;
    model_buffer *buffers;
    char preset[64]; /* the preset it was built from, "" for a layer list */
    int train;
    /* The last forward ran with the BatchNorms folded (eval mode, folding
     * on); fold_off: the next forward must not fold (a backward that
     * wants parameter gradients reruns the forward unfolded). */
    int folded, fold_off;
    /* Calibration (eval mode only). */
    int calibrated;
    float calib_t;
    float *calib_offsets;    /* host copy, num_classes */
    clasp_tensor *calib_dev; /* device copy of the offsets */
    clasp_tensor *calib_out; /* calibrated logits */
    /* Forward state. */
    const clasp_tensor *input;  /* x of the last forward */
    const clasp_tensor *logits; /* what the last forward returned */
    int batch;
    /* Backward state: parameter gradients wanted; which owners' gradient
     * buffers hold a value in this pass; scratch for fan-out sums. */
    int want_param_grads;
    unsigned char *grad_ready;
    clasp_tensor *fan_scratch[CLASP_LAYER_MAX_INPUTS];
    /* Buffers no node holds: a backward gives an owner's gradient back
     * once the owner's own backward has read it, a prediction (eval mode)
     * gives an output back after its last reader, and the next owner
     * takes one that fits, so only the tensors alive at once take memory
     * (pool_batch: the batch they were sized for). */
    clasp_tensor **grad_pool;
    int n_pool, pool_batch;
    int *last_use; /* per owner: the last node that reads its output */
    /* The last forward kept only its logits (a prediction): a backward
     * runs the forward again first. */
    int light;
    /* Scratch for input_grad / predict / train_step. */
    clasp_tensor *dlogits, *loss;
};

/* Momentum buffer of parameter i (NULL without momentum). */
clasp_tensor *clasp_sgd_velocity(clasp_sgd *o, int i);
int clasp_sgd_num_velocities(const clasp_sgd *o);

/* Name of the parameter the i-th momentum buffer belongs to. */
const char *clasp_sgd_model_param_name(clasp_sgd *o, int i);

/* Reads a decimal number of plain digits at *p (no sign, no spaces, as
 * architecture and preset names write them) and moves *p past it. 0, with
 * *p unmoved, when there is none or it is below min or above INT_MAX:
 * sscanf's %d takes "+ 3" and wraps 4294967306 round to 10. */
int clasp_nn_read_int(const char **p, int min, int *v);

#endif
