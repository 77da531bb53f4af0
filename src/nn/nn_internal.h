/* Internals of the model module shared by model.c, train.c and checkpoint.c. */
#ifndef CLASP_NN_INTERNAL_H
#define CLASP_NN_INTERNAL_H

#include "clasp/model.h"

/* One layer and the buffers of its last forward/backward. */
typedef struct clasp_layer {
    clasp_layer_spec spec;
    int in_c, in_h, in_w;      /* input shape per example (in_h = in_w = 1 for 2-d) */
    int out_c, out_h, out_w;   /* output shape per example */
    int out_4d;                /* output is [N,C,H,W] (else [N,features]) */
    int alias;                 /* relu/flatten: output shares the input's buffer */
    int param;                 /* index of the weight in the model's params, or -1 */
    clasp_tensor *out;         /* owned output buffer (NULL when alias) */
    clasp_tensor *grad;        /* owned gradient w.r.t. the output (NULL when alias) */
    clasp_tensor *idx;         /* max-pool argmax positions */
} clasp_layer;

#define CLASP_MODEL_MAX_PARAMS 64

struct clasp_model {
    clasp_ctx *ctx;
    int in_c, in_h, in_w;
    int num_classes;
    int n_layers;
    clasp_layer *layers;
    int n_params;
    clasp_tensor *params[CLASP_MODEL_MAX_PARAMS];
    clasp_tensor *grads[CLASP_MODEL_MAX_PARAMS];
    char names[CLASP_MODEL_MAX_PARAMS][32];
    int train;
    /* Calibration (eval mode only). */
    int calibrated;
    float calib_t;
    float *calib_offsets;        /* host copy, num_classes */
    clasp_tensor *calib_dev;     /* device copy of the offsets */
    clasp_tensor *calib_out;     /* calibrated logits */
    clasp_tensor *calib_grad;    /* gradient w.r.t. the raw logits */
    /* Forward state. */
    const clasp_tensor *input;   /* x of the last forward */
    const clasp_tensor *logits;  /* what the last forward returned */
    int batch;
    /* Scratch for input_grad / predict / train_step. */
    clasp_tensor *dlogits, *loss;
};

/* The text form of a layer list (see clasp_arch_parse). */
void clasp_arch_format(const clasp_layer_spec *ls, int n, char *buf, size_t size);

/* Momentum buffer of parameter i (NULL without momentum). */
clasp_tensor *clasp_sgd_velocity(clasp_sgd *o, int i);

/* Name of the parameter the i-th momentum buffer belongs to. */
const char *clasp_sgd_model_param_name(clasp_sgd *o, int i);

#endif
