/* The model layer's GEMM workload for the tuner: ops times GEMM problems,
 * and what a model issues is known here, one layer up. */
#include <stdint.h>
#include <stdlib.h>

#include "clasp/tune.h"
#include "nn/nn_internal.h"

#define DEFAULT_BATCH 128

/* A fresh model with the caller's architecture (or the default CNN), so
 * that the training step run for recording never touches real weights. */
static clasp_status workload_model(clasp_ctx *ctx, const clasp_model *like, clasp_model **out)
{
    if (!like) return clasp_model_new_default(ctx, 1, 28, 28, 10, out);
    char arch[8192];
    clasp_model_arch(like, arch, sizeof arch);
    int c, h, w, n;
    clasp_model_input_shape(like, &c, &h, &w);
    clasp_layer_spec *layers;
    CLASP_TRY(clasp_arch_parse(arch, &layers, &n));
    clasp_status st = clasp_model_new(ctx, layers, n, c, h, w, out);
    free(layers);
    return st;
}

clasp_status clasp_tune_model_workload(void *user, clasp_ctx *ctx)
{
    const clasp_tune_model *tm = user;
    const clasp_model *like = tm ? tm->model : NULL;
    int batch = tm && tm->batch > 0 ? tm->batch : DEFAULT_BATCH;
    clasp_model *m = NULL;
    clasp_sgd *opt = NULL;
    clasp_tensor *x = NULL, *y = NULL, *dx = NULL, *pred = NULL;
    clasp_status st = workload_model(ctx, like, &m);
    int c = 0, h = 0, w = 0;
    if (st == CLASP_OK) {
        clasp_model_input_shape(m, &c, &h, &w);
        st = clasp_model_init(m, 1);
    }
    if (st == CLASP_OK) st = clasp_sgd_new(m, 0.01f, 0.9f, 0.0f, &opt);
    if (st == CLASP_OK) st = clasp_tensor_new4(ctx, batch, c, h, w, &x);
    if (st == CLASP_OK) st = clasp_tensor_new4(ctx, batch, c, h, w, &dx);
    if (st == CLASP_OK) st = clasp_tensor_new(ctx, CLASP_I32, 1, &batch, &y);
    if (st == CLASP_OK) st = clasp_tensor_new(ctx, CLASP_I32, 1, &batch, &pred);
    clasp_rng rng = clasp_rng_make(7, 3);
    if (st == CLASP_OK) st = clasp_rng_uniform(&rng, x, 0.0f, 1.0f);
    if (st == CLASP_OK) {
        int32_t *labels = malloc((size_t)batch * sizeof *labels);
        int k = clasp_model_num_classes(m);
        if (!labels) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (int i = 0; labels && i < batch; i++) labels[i] = k > 0 ? i % k : 0;
        if (labels) st = clasp_tensor_write(y, labels);
        free(labels);
    }
    if (st == CLASP_OK) st = clasp_train_step(m, opt, x, y, NULL, NULL);
    if (st == CLASP_OK) {
        clasp_model_set_train(m, 0);
        st = clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL);
    }
    if (st == CLASP_OK) st = clasp_model_predict(m, x, pred);
    clasp_tensor_free(x);
    clasp_tensor_free(y);
    clasp_tensor_free(dx);
    clasp_tensor_free(pred);
    clasp_sgd_free(opt);
    clasp_model_free(m);
    return st;
}

void clasp_tune_ensure(clasp_ctx *ctx, const clasp_model *model, int batch, double seconds)
{
    clasp_tune_model tm = {.model = model, .batch = batch};
    clasp_tune_ensure_workload(ctx, clasp_tune_model_workload, &tm, seconds);
}
