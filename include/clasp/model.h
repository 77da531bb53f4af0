/* clasp — sequential models, training steps and checkpoints.
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

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clasp_layer_kind {
    CLASP_LAYER_CONV2D,
    CLASP_LAYER_LINEAR,
    CLASP_LAYER_RELU,
    CLASP_LAYER_MAXPOOL2D,
    CLASP_LAYER_FLATTEN,
} clasp_layer_kind;

typedef struct clasp_layer_spec {
    clasp_layer_kind kind;
    int out;        /* conv: output channels; linear: output features */
    int kernel;     /* conv and max-pool window */
    int stride;     /* conv and max-pool stride (0 = kernel for pool, 1 for conv) */
    int pad;        /* conv zero padding */
} clasp_layer_spec;

typedef struct clasp_model clasp_model;

/* Builds a model for inputs [N, in_c, in_h, in_w]; checks that the layers fit
 * together (a linear layer after a 4-d output needs a flatten first, sizes
 * stay positive). Parameters are allocated but not initialised. */
clasp_status clasp_model_new(clasp_ctx *ctx, const clasp_layer_spec *layers, int n_layers,
                             int in_c, int in_h, int in_w, clasp_model **out);

/* The default model (Madry et al.'s MNIST CNN): conv5x5-32 pad 2, relu,
 * maxpool 2, conv5x5-64 pad 2, relu, maxpool 2, flatten, fc 1024, relu,
 * fc num_classes. */
clasp_status clasp_model_new_default(clasp_ctx *ctx, int in_c, int in_h, int in_w,
                                     int num_classes, clasp_model **out);

/* Architecture as text, e.g. "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10"
 * (conv{K}x{K}-{out}[s{stride}][p{pad}], maxpool{K}[s{stride}], fc{out},
 * relu, flatten). Parse fills *layers (malloc'd; free()) and *n; errors give
 * the position of the bad item. */
clasp_status clasp_arch_parse(const char *text, clasp_layer_spec **layers, int *n);
/* Writes the text form of a model's layers into buf. */
void clasp_model_arch(const clasp_model *m, char *buf, size_t size);

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

/* Train mode (default) or eval mode. The layers here behave the same in
 * both; eval mode also applies the calibration below, if set. Attacks run
 * in eval mode. */
void clasp_model_set_train(clasp_model *m, int train);
int clasp_model_is_train(const clasp_model *m);

/* Inference-time calibration: logits become (z + offsets) / temperature in
 * eval mode. offsets (num_classes floats) NULL clears them; temperature 1
 * leaves the scale. Saved in checkpoints. */
clasp_status clasp_model_set_calibration(clasp_model *m, const float *offsets,
                                         float temperature);
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
clasp_status clasp_model_backward(clasp_model *m, const clasp_tensor *dlogits,
                                  int param_grads, clasp_tensor *dx);

/* Forward and argmax: pred (int32 [N]). */
clasp_status clasp_model_predict(clasp_model *m, const clasp_tensor *x, clasp_tensor *pred);

/* Gradient of sum_i CE(softmax(z_i / t), y_i) w.r.t. x (into dx),
 * computed in the model's current mode without touching parameter
 * gradients. Optionally returns per-example predictions of the clean
 * forward (pred may be NULL) and losses (loss may be NULL). */
clasp_status clasp_model_input_grad(clasp_model *m, const clasp_tensor *x,
                                    const clasp_tensor *y, float t, clasp_tensor *dx,
                                    clasp_tensor *pred, clasp_tensor *loss);

/* Parameters, in layer order, weight before bias. */
int clasp_model_num_params(const clasp_model *m);
clasp_tensor *clasp_model_param(clasp_model *m, int i);
clasp_tensor *clasp_model_grad(clasp_model *m, int i);
const char *clasp_model_param_name(const clasp_model *m, int i);
size_t clasp_model_param_count(const clasp_model *m); /* total scalars */

/* ---- SGD ------------------------------------------------------------- */

typedef struct clasp_sgd clasp_sgd;
clasp_status clasp_sgd_new(clasp_model *m, float lr, float momentum, float weight_decay,
                           clasp_sgd **out);
void clasp_sgd_set_lr(clasp_sgd *o, float lr);
/* Applies the model's current gradients. */
clasp_status clasp_sgd_step(clasp_sgd *o);
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

/* Loads momentum buffers from a checkpoint saved with an optimiser (for
 * resuming); absent buffers are an error. */
clasp_status clasp_sgd_load(clasp_sgd *o, const char *path);

/* Reads one metadata value of a checkpoint into buf; CLASP_ERR_NOT_FOUND when
 * the key is absent. */
clasp_status clasp_checkpoint_meta(const char *path, const char *key, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
