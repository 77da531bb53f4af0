/* A model seen from the host, for the attacks whose per-example work is
 * cheap host arithmetic around model queries (square, fab).
 *
 * An oracle answers two questions about a batch of n examples held in host
 * memory (each of d = C*H*W floats): the logits [n,K], and, for the batch
 * of the last logits call, the vector-Jacobian product dx = J^T dz for
 * given dlogits dz [n,K]. The attack cores (square_core.h, fab_core.h) see
 * only this interface, so the tests can drive them with a plain C model and
 * count every query; the plugins use host_oracle_model below, which runs
 * the clasp model on the device with one upload and one download per call. */
#ifndef CLASP_HOST_ORACLE_H
#define CLASP_HOST_ORACLE_H

#include <clasp/plugin.h>

typedef struct host_oracle {
    void *self;
    int c, h, w, k; /* input shape and number of classes */
    clasp_status (*logits)(void *self, const float *x, int n, float *z);
    /* MAY be NULL for score-only attacks. */
    clasp_status (*vjp)(void *self, const float *dz, int n, float *dx);
} host_oracle;

/* The device model behind an oracle. Scratch tensors are kept across calls
 * and resized to each batch. */
typedef struct host_oracle_model {
    clasp_model *m;
    clasp_ctx *ctx;
    int c, h, w, k;
    clasp_tensor *x, *dz, *dx;
    int n; /* batch of the last logits call */
} host_oracle_model;

static inline clasp_status hom_logits(void *self, const float *x, int n, float *z)
{
    host_oracle_model *o = self;
    CLASP_TRY(clasp_tensor_ensure(o->ctx, &o->x, CLASP_F32, 4, (int[]){n, o->c, o->h, o->w}));
    CLASP_TRY(clasp_tensor_write(o->x, x));
    const clasp_tensor *zt;
    CLASP_TRY(clasp_model_forward(o->m, o->x, &zt));
    if (zt->numel != (size_t)n * (size_t)o->k)
        return clasp_error(CLASP_ERR_INVALID, "model gave %zu logits for %d examples of %d classes",
                           zt->numel, n, o->k);
    o->n = n;
    return clasp_tensor_read(zt, z);
}

static inline clasp_status hom_vjp(void *self, const float *dz, int n, float *dx)
{
    host_oracle_model *o = self;
    if (n != o->n)
        return clasp_error(CLASP_ERR_INVALID, "vjp batch %d after logits of %d", n, o->n);
    CLASP_TRY(clasp_tensor_ensure(o->ctx, &o->dz, CLASP_F32, 2, (int[]){n, o->k}));
    CLASP_TRY(clasp_tensor_ensure(o->ctx, &o->dx, CLASP_F32, 4, (int[]){n, o->c, o->h, o->w}));
    CLASP_TRY(clasp_tensor_write(o->dz, dz));
    CLASP_TRY(clasp_model_backward(o->m, o->dz, 0, o->dx));
    return clasp_tensor_read(o->dx, dx);
}

/* Points an oracle at model m, whose inputs live in ctx. */
static inline void host_oracle_model_init(host_oracle_model *o, host_oracle * or, clasp_model *m,
                                          clasp_ctx *ctx)
{
    o->m = m;
    o->ctx = ctx;
    clasp_model_input_shape(m, &o->c, &o->h, &o->w);
    o->k = clasp_model_num_classes(m);
    or->self = o;
    or->c = o->c, or->h = o->h, or->w = o->w, or->k = o->k;
    or->logits = hom_logits;
    or->vjp = hom_vjp;
}

static inline void host_oracle_model_free(host_oracle_model *o)
{
    clasp_tensor_free(o->x), clasp_tensor_free(o->dz), clasp_tensor_free(o->dx);
    o->x = o->dz = o->dx = NULL;
}

#endif
