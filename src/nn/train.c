/* SGD with momentum and the standard training step. */
#include <math.h>
#include <stdlib.h>

#include "nn/nn_internal.h"

struct clasp_sgd {
    clasp_model *m;
    float lr, momentum, weight_decay;
    int n;
    clasp_tensor **velocity; /* one per parameter; NULLs without momentum */
};

clasp_status clasp_sgd_new(clasp_model *m, float lr, float momentum, float weight_decay,
                           clasp_sgd **out)
{
    *out = NULL;
    clasp_sgd *o = calloc(1, sizeof *o);
    if (!o) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    o->m = m;
    o->lr = lr, o->momentum = momentum, o->weight_decay = weight_decay;
    o->n = m->n_params;
    o->velocity = calloc((size_t)(o->n ? o->n : 1), sizeof *o->velocity);
    if (!o->velocity) {
        free(o);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; momentum != 0.0f && i < m->n_params; i++) {
        clasp_status st = clasp_tensor_new(m->ctx, CLASP_F32, m->params[i]->ndim,
                                           m->params[i]->shape, &o->velocity[i]);
        if (st == CLASP_OK) st = clasp_tensor_fill(o->velocity[i], 0.0f);
        if (st != CLASP_OK) {
            clasp_sgd_free(o);
            return st;
        }
    }
    *out = o;
    return CLASP_OK;
}

void clasp_sgd_set_lr(clasp_sgd *o, float lr)
{
    o->lr = lr;
}

double clasp_lr_cosine(double lr, int epochs, int epoch, size_t batch, size_t batches_per_epoch)
{
    double total = (double)epochs * (double)(batches_per_epoch ? batches_per_epoch : 1);
    double t = (double)epoch * (double)batches_per_epoch + (double)batch;
    return lr * 0.5 * (1.0 + cos(3.14159265358979323846 * t / total));
}

clasp_status clasp_sgd_step(clasp_sgd *o)
{
    clasp_model *m = o->m;
    for (int i = 0; i < m->n_params; i++) {
        /* Weight decay on conv and linear weights alone: not on biases
         * nor on BatchNorm's affine parameters. */
        float wd = m->decay[i] ? o->weight_decay : 0.0f;
        CLASP_TRY(
            clasp_sgd_update(m->params[i], m->grads[i], o->velocity[i], o->lr, o->momentum, wd));
    }
    return CLASP_OK;
}

void clasp_sgd_free(clasp_sgd *o)
{
    if (!o) return;
    for (int i = 0; i < o->n; i++) clasp_tensor_free(o->velocity[i]);
    free(o->velocity);
    free(o);
}

clasp_tensor *clasp_sgd_velocity(clasp_sgd *o, int i)
{
    return i >= 0 && i < o->n ? o->velocity[i] : NULL;
}

int clasp_sgd_num_velocities(const clasp_sgd *o)
{
    return o->n;
}

clasp_status clasp_model_ce_grads(clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                                  const clasp_tensor *w, float *loss)
{
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, x, &z));
    int n = x->shape[0];
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->dlogits, CLASP_F32, 2, (int[]){n, m->num_classes}));
    if (loss) CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->loss, CLASP_F32, 1, (int[]){n}));
    CLASP_TRY(
        clasp_softmax_xent(z, y, 1.0f, w, 1.0f / (float)n, loss ? m->loss : NULL, m->dlogits));
    CLASP_TRY(clasp_model_backward(m, m->dlogits, 1, NULL));
    if (loss) {
        float *h = malloc((size_t)n * sizeof *h);
        if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        clasp_status st = clasp_tensor_read(m->loss, h);
        double s = 0;
        for (int i = 0; i < n; i++) s += h[i];
        free(h);
        CLASP_TRY(st);
        *loss = (float)(s / n);
    }
    return CLASP_OK;
}

clasp_status clasp_train_step(clasp_model *m, clasp_sgd *o, const clasp_tensor *x,
                              const clasp_tensor *y, const clasp_tensor *w, float *loss)
{
    CLASP_TRY(clasp_model_ce_grads(m, x, y, w, loss));
    return clasp_sgd_step(o);
}

const char *clasp_sgd_model_param_name(clasp_sgd *o, int i)
{
    return o->m->names[i];
}
