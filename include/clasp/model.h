/* clasp — models (graphs of layers), training steps and checkpoints.
 *
 * A model is a list of layers applied in order to NCHW float input. The
 * forward pass keeps what the backward pass needs; backward gives parameter
 * gradients and, on request, the gradient with respect to the input (what
 * every attack needs). Parameters use PyTorch's names and layouts
 * ("conv1.weight" [out,in,kh,kw], "fc1.weight" [out,in], ".bias"). */
#ifndef CLASP_MODEL_H
#define CLASP_MODEL_H

#include <stdint.h>

#include "clasp/ops.h"
#include "clasp/tensor.h"
#include "clasp/torchfile.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* The layer kinds, one row each: X(NAME, file) is CLASP_LAYER_<NAME>,
 * implemented by the library's layer file <file> (its keyword in the
 * architecture text, its shapes, its forward and backward, its checkpoint
 * metadata: see src/nn/layers/layer.h).
 *
 * Why a list and not a plain enum: the enum is ABI (a kind's number is its
 * row, so rows are only ever appended), and the library's table of kinds
 * must list the same kinds in the same order. Writing both by hand is two
 * places that can drift apart; the table (src/nn/layers/layers.c) is made
 * from this list instead, so this row is the one place a kind is named. */
#define CLASP_LAYER_KINDS(X)                                                                 \
    X(CONV2D, conv2d)                                                                        \
    X(LINEAR, linear)                                                                        \
    X(RELU, relu)                                                                            \
    X(MAXPOOL2D, maxpool2d)                                                                  \
    X(FLATTEN, flatten)                                                                      \
    X(BATCHNORM2D, batchnorm2d) /* PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1) */         \
    X(ADD, add)                 /* sum of two inputs of the same shape (skip connections) */ \
    X(AVGPOOL2D, avgpool2d)     /* average over kernel x kernel windows */                   \
    X(NORMALIZE, normalize)     /* (x - mean[c]) / std[c]: inputs and eps stay in [0,1] */   \
    X(SWISH, swish)             /* x * sigmoid(x) (SiLU), DeepMind's activation */           \
    X(PAD, pad)                 /* zero padding by pads[] = left, right, top, bottom */      \
    /* new kinds go here, at the end: a kind's number is its row */

#define CLASP_LAYER_KIND_ENUM_(name, file) CLASP_LAYER_##name,
typedef enum clasp_layer_kind { CLASP_LAYER_KINDS(CLASP_LAYER_KIND_ENUM_) } clasp_layer_kind;
#undef CLASP_LAYER_KIND_ENUM_

#define CLASP_LAYER_NAME_MAX 48
#define CLASP_LAYER_MAX_INPUTS 2
#define CLASP_NORMALIZE_MAX_C 4
#define CLASP_PARAM_NAME_MAX 64

/* Initialisation of a conv or linear layer's weight. */
enum {
    CLASP_INIT_DEFAULT = 0,        /* PyTorch's default (see clasp_model_init) */
    CLASP_INIT_KAIMING_FAN_OUT = 1 /* normal, std sqrt(2 / (out*kh*kw)), zero bias (WideResNet) */
};

/* One layer. The first five members are all a plain chain needs; the rest
 * default to zero: a bias, the previous layer as input, automatic names. */
typedef struct clasp_layer_spec {
    clasp_layer_kind kind;
    int out;     /* conv: output channels; linear: output features */
    int kernel;  /* conv, max-pool and avg-pool window */
    int stride;  /* conv and pool stride (0 = kernel for pools, 1 for conv) */
    int pad;     /* conv zero padding */
    int no_bias; /* conv/linear without a bias (as ResNets' convolutions) */
    /* Inputs: n_inputs 0 means the previous layer (the model input for the
     * first); otherwise indices of earlier layers, -1 for the model input. */
    int n_inputs;
    int inputs[CLASP_LAYER_MAX_INPUTS];
    /* PyTorch module path giving the state-dict names ("layer1.0.conv1" ->
     * "layer1.0.conv1.weight"); "" = automatic (conv1, fc1, bn1, ... in
     * order of kind). */
    char name[CLASP_LAYER_NAME_MAX];
    int init; /* CLASP_INIT_* for conv/linear */
    /* normalize: per-channel mean and std (the model's input channels). */
    float mean[CLASP_NORMALIZE_MAX_C], std[CLASP_NORMALIZE_MAX_C];
    /* Appended for CLASP_LAYER_PAD: zero pixels added left, right, top and
     * bottom (DeepMind's "SAME" stride-2 convolutions pad 0,1,0,1). */
    int pads[4];
} clasp_layer_spec;

typedef struct clasp_model clasp_model;

/* Builds a model for inputs [N, in_c, in_h, in_w] from a layer graph in
 * topological order (each layer's inputs come before it; the last layer's
 * output is the logits); checks that the layers fit together (a linear
 * layer after a 4-d output needs a flatten first, add's inputs agree, sizes
 * stay positive). Parameters are allocated but not initialised. */
clasp_status clasp_model_new(clasp_ctx *ctx, const clasp_layer_spec *layers, int n_layers, int in_c,
                             int in_h, int in_w, clasp_model **out);

/* The default model (Madry et al.'s MNIST CNN): conv5x5-32 pad 2, relu,
 * maxpool 2, conv5x5-64 pad 2, relu, maxpool 2, flatten, fc 1024, relu,
 * fc num_classes. */
clasp_status clasp_model_new_default(clasp_ctx *ctx, int in_c, int in_h, int in_w, int num_classes,
                                     clasp_model **out);

/* Preset architectures whose parameter and buffer names are those of the
 * common PyTorch definitions of robust CIFAR models, so their state dicts
 * load unchanged:
 *   "resnet18", "preact-resnet18": 3x3 stem, four stages of two basic
 *     blocks (64, 128, 256, 512 channels times width/64), 4x4 average pool
 *     on 32x32 inputs (the global pool for other sizes), "linear";
 *   "wrn-D-W" (D = 6n+4, e.g. wrn-34-10, wrn-16-2): three groups of n
 *     pre-activation blocks of 16W, 32W, 64W channels, "fc";
 *   "preact-resnet18-nobn": RobustBench's PreActResNet without bn_before_fc
 *     (no final BatchNorm and activation; shortcuts read the block input);
 *   "dm-wrn-D-W", "dm-preact-resnet18": DeepMind's WideResNet and PreAct
 *     ResNet-18 (RobustBench's dm_wide_resnet.py: init_conv / conv_2d,
 *     batchnorm_0, conv_0 / conv_2d_1, ..., "logits"), their unpadded 3x3
 *     convolutions after zero padding 1,1,1,1, or 0,1,0,1 at stride 2, and
 *     an average pool of 8 (WRN) or 4 (PreAct) pixels.
 * Suffixes, in this order: "-wN" sets the base width (resnets: N instead
 * of 64; WRN: the 16 of the stem) so small variants run on a CPU:
 * "preact-resnet18-w16"; "-swish" puts swish wherever the model applies
 * its activation (relu without it); "-padP" zero-pads the input by P
 * pixels on every side before the normalisation (DeepMind's padding):
 * "dm-wrn-28-10-swish", "dm-wrn-16-2-w8-swish-pad4".
 * normalize (NULL: none) puts a NORMALIZE layer with mean/std first (after
 * the -padP padding). */
clasp_status clasp_model_new_preset(clasp_ctx *ctx, const char *name, int in_c, int in_h, int in_w,
                                    int num_classes, const float *mean, const float *std,
                                    clasp_model **out);
/* 1 when `name` is a preset's name (with or without its suffixes). */
int clasp_model_is_preset(const char *name);

/* Any architecture by its text: "default" (the CNN above), a preset, or a
 * layer list (clasp_arch_parse); mean/std (NULL: none) put input
 * normalisation first. A model whose outputs are not num_classes is an
 * error saying both numbers. */
clasp_status clasp_model_new_arch(clasp_ctx *ctx, const char *arch, int in_c, int in_h, int in_w,
                                  int num_classes, const float *mean, const float *std,
                                  clasp_model **out);

/* Architecture as text, e.g. "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10":
 * conv{K}x{K}-{out}[s{stride}][p{pad}][nb] (nb: no bias), maxpool{K}[s{stride}][p{pad}],
 * avgpool{K}[s{stride}], fc{out}[nb], relu, swish, pad{l},{r},{t},{b} (zero
 * padding; its commas belong to it), flatten, bn, add, and normalize (what
 * the formatter writes for an input normalisation; its mean and std are
 * not in the text: a checkpoint's metadata holds them). Any item may
 * take a label, "item:label", and name its inputs, "item(a)" or
 * "add(a+b)", where a and b are earlier labels or "in" (the model input);
 * without inputs an item reads the item before it (naming just that item,
 * or "in" for the first, is the same and gives n_inputs 0). A skip connection:
 * "conv3x3-8p1:c,relu,conv3x3-8p1:d,add(c+d)".
 * Parse fills *layers (malloc'd; free()) and *n; errors give the position
 * of the bad item. */
clasp_status clasp_arch_parse(const char *text, clasp_layer_spec **layers, int *n);
/* The text form of a layer list, as clasp_arch_parse reads it (layers read
 * out of order are labelled l<index>). */
void clasp_arch_format(const clasp_layer_spec *ls, int n, char *buf, size_t size);
/* Writes the text form of a model's layers (or its preset's name) into buf. */
void clasp_model_arch(const clasp_model *m, char *buf, size_t size);

/* Frees the model and everything it owns (its tensors and buffers); NULL is
 * a no-op. */
void clasp_model_free(clasp_model *m);

/* PyTorch's default initialisation of Conv2d and Linear from a seed:
 * weights and biases uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)) (what
 * PyTorch's kaiming_uniform with a = sqrt(5) works out to). The same seed
 * gives the same weights on every device.
 *
 * Not He-normal: with sqrt(2/fan_in) on every layer, including the
 * classifier, the default CNN's first logits are ~5x larger, and PGD-AT at
 * lr 0.05 stalls at chance for a whole epoch in clasp and in PyTorch alike
 * from those weights, where PyTorch's own initialisation trains. */
clasp_status clasp_model_init(clasp_model *m, uint64_t seed);

/* Input and output shapes. */
void clasp_model_input_shape(const clasp_model *m, int *c, int *h, int *w);
int clasp_model_num_classes(const clasp_model *m);

/* Train mode (default) or eval mode. BatchNorm normalises with batch
 * statistics and updates its running ones in train mode, and uses the
 * running ones in eval mode; eval mode also applies the calibration below,
 * if set. Attacks run in eval mode. */
void clasp_model_set_train(clasp_model *m, int train);
int clasp_model_is_train(const clasp_model *m);

/* Inference-time calibration: in eval mode the logits become z + offsets,
 * what decides the prediction and what attacks differentiate. The
 * temperature is stored beside them (saved in checkpoints, shown in the
 * report) for probabilities only, softmax((z + offsets) / temperature); it
 * never scales the logits of a forward pass, since it cannot change a
 * prediction and a small one would only saturate the softmax every attack
 * differentiates (gradient masking). offsets (num_classes floats) NULL
 * clears them. */
clasp_status clasp_model_set_calibration(clasp_model *m, const float *offsets, float temperature);
/* Reads the calibration; returns 0 when none is set. offsets may be NULL. */
int clasp_model_calibration(const clasp_model *m, float *offsets, float *temperature);

/* Forward pass over x[N,C,H,W]. *logits [N,K] belongs to the model and stays
 * valid until the next forward. The activations kept for backward are
 * those of this call. */
clasp_status clasp_model_forward(clasp_model *m, const clasp_tensor *x,
                                 const clasp_tensor **logits);

/* Backward pass from dlogits [N,K] through the last forward. When
 * param_grads, the parameter gradients are overwritten with this batch's;
 * when dx is not NULL it receives d/dx [N,C,H,W]. Skipping what is not
 * asked for saves work (attacks need dx only). */
clasp_status clasp_model_backward(clasp_model *m, const clasp_tensor *dlogits, int param_grads,
                                  clasp_tensor *dx);

/* Forward and argmax: pred (int32 [N]). */
clasp_status clasp_model_predict(clasp_model *m, const clasp_tensor *x, clasp_tensor *pred);

/* Gradient of sum_i CE(softmax(z_i / t), y_i) w.r.t. x (into dx),
 * computed in the model's current mode without touching parameter
 * gradients. Optionally returns per-example predictions of the clean
 * forward (pred may be NULL) and losses (loss may be NULL). */
clasp_status clasp_model_input_grad(clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                                    float t, clasp_tensor *dx, clasp_tensor *pred,
                                    clasp_tensor *loss);

/* The L2 norm of each class's row of the classifier's weight: the last
 * linear layer of the graph, whose [K, in] weight maps features to the K
 * logits (a read to the host). CLASP_ERR_NOT_FOUND when the model has no
 * linear layer with num_classes outputs. out: num_classes floats. */
clasp_status clasp_model_class_weight_norms(clasp_model *m, float *out);

/* Parameters, in layer order, weight before bias. */
/* The context the model lives on (for scratch tensors of plugins and
 * callers). Never NULL for a model made by clasp_model_new*. */
clasp_ctx *clasp_model_ctx(const clasp_model *m);

int clasp_model_num_params(const clasp_model *m);
clasp_tensor *clasp_model_param(clasp_model *m, int i);
clasp_tensor *clasp_model_grad(clasp_model *m, int i);
const char *clasp_model_param_name(const clasp_model *m, int i);
size_t clasp_model_param_count(const clasp_model *m); /* total scalars */
/* 1 when SGD's weight decay applies to parameter i: conv and linear
 * weights; not biases, BatchNorm's affine parameters. */
int clasp_model_param_decays(const clasp_model *m, int i);

/* Buffers: saved and loaded with the parameters, not trained (BatchNorm's
 * running_mean, running_var and the int64 num_batches_tracked). buffer()
 * is NULL for an int64 counter, whose value buffer_i64() points to. */
int clasp_model_num_buffers(const clasp_model *m);
const char *clasp_model_buffer_name(const clasp_model *m, int i);
clasp_tensor *clasp_model_buffer(clasp_model *m, int i);
int64_t *clasp_model_buffer_i64(clasp_model *m, int i);

/* ---- SGD ------------------------------------------------------------- */

typedef struct clasp_sgd clasp_sgd;
/* Makes an optimiser for m's parameters into *out (NULL on error), owned by
 * the caller (clasp_sgd_free); m must outlive it. */
clasp_status clasp_sgd_new(clasp_model *m, float lr, float momentum, float weight_decay,
                           clasp_sgd **out);
void clasp_sgd_set_lr(clasp_sgd *o, float lr);
/* The cosine learning-rate schedule, one value per batch: lr at the start,
 * decaying to 0 over `epochs` epochs of batches_per_epoch batches, as
 * lr/2 * (1 + cos(pi * t / total)) with t the batches done before this one
 * (epoch * batches_per_epoch + batch). */
double clasp_lr_cosine(double lr, int epochs, int epoch, size_t batch, size_t batches_per_epoch);
/* Applies the model's current gradients. */
clasp_status clasp_sgd_step(clasp_sgd *o);
/* Frees the optimiser (not its model); NULL is a no-op. */
void clasp_sgd_free(clasp_sgd *o);

/* Standard loss gradients for one batch: forward (current mode), mean
 * cross-entropy with per-sample weights w[N] (NULL = ones), backward; the
 * parameter gradients are overwritten. *loss (may be NULL: no host read)
 * receives the weighted mean loss. Defenses build on this. */
clasp_status clasp_model_ce_grads(clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                                  const clasp_tensor *w, float *loss);

/* One standard training step: forward, mean (optionally per-sample
 * weighted) cross-entropy, backward, SGD step. Returns the batch's mean loss
 * in *loss when not NULL (a host read; pass NULL in hot loops). */
clasp_status clasp_train_step(clasp_model *m, clasp_sgd *o, const clasp_tensor *x,
                              const clasp_tensor *y, const clasp_tensor *w, float *loss);

/* ---- checkpoints (safetensors) ---------------------------------------- */

/* Extra string metadata stored beside the weights. */
typedef struct clasp_kv {
    const char *key;
    const char *value;
} clasp_kv;

/* Saves parameters (PyTorch names/layouts), the architecture, input shape
 * and calibration, plus `extra` metadata and the optimiser's momentum when
 * o is not NULL; written atomically. */
clasp_status clasp_model_save(clasp_model *m, const clasp_sgd *o, const clasp_kv *extra,
                              int n_extra, const char *path);

/* Loads a checkpoint written by clasp_model_save (or by PyTorch with the
 * same names, given arch_fallback, e.g. the default architecture string, and
 * the input shape in_chw; both may be NULL/0 for clasp files). A missing
 * tensor or a shape mismatch is an error naming the tensor. */
clasp_status clasp_model_load(clasp_ctx *ctx, const char *path, const char *arch_fallback,
                              const int *in_chw, clasp_model **out);

/* The same, and what was read (*info, may be NULL): the file's format, the
 * entry of a PyTorch checkpoint that held the state dict and the prefix
 * removed from its names ("module."). Every model file format
 * clasp_ckpt_read takes works here: safetensors, PyTorch's zip and legacy
 * files. */
clasp_status clasp_model_load_info(clasp_ctx *ctx, const char *path, const char *arch_fallback,
                                   const int *in_chw, clasp_ckpt_info *info, clasp_model **out);

/* Loads the weights of a model file into m, a model already built (from a
 * zoo entry, say): every tensor of the file must be one of m's
 * parameters or buffers with the same shape, and every one of m's must be
 * in the file; an error names the first that is not. `ignore` (may be
 * NULL): comma-separated names of tensors the file may carry beyond m's
 * (an item ending in '.' is a prefix: "sub_block1."), as a zoo entry's
 * ignore_tensors says. *info (may be NULL) as for clasp_model_load_info. */
clasp_status clasp_model_load_weights(clasp_model *m, const char *path, const char *ignore,
                                      clasp_ckpt_info *info);

/* The preset a state dict without clasp metadata was saved from, told by
 * its tensor names and shapes (resnet18, wrn-28-10, ...), into buf: 1 when
 * one fits the names, else 0. The activation (relu or swish) cannot be
 * seen in the names: a found preset is the relu one. */
int clasp_ckpt_detect_arch(const clasp_st_file *f, char *buf, size_t size);

/* Loads momentum buffers from a checkpoint saved with an optimiser (for
 * resuming); absent buffers are an error. */
clasp_status clasp_sgd_load(clasp_sgd *o, const char *path);

/* Reads one metadata value of a checkpoint into buf; CLASP_ERR_NOT_FOUND when
 * the key is absent. */
clasp_status clasp_checkpoint_meta(const char *path, const char *key, char *buf, size_t size);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
