/* The device model behind a host oracle, and the perturb of the plugins
 * whose attack runs on the host (square, fab). */
#include "host_oracle.h"

#include <stdlib.h>

static clasp_status hom_logits(void *self, const float *x, int n, float *z)
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

static clasp_status hom_vjp(void *self, const float *dz, int n, float *dx)
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

void host_oracle_model_init(host_oracle_model *o, host_oracle * or, clasp_model *m, clasp_ctx *ctx)
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

void host_oracle_model_free(host_oracle_model *o)
{
    clasp_tensor_free(o->x), clasp_tensor_free(o->dz), clasp_tensor_free(o->dx);
    o->x = o->dz = o->dx = NULL;
}

clasp_status host_oracle_perturb(host_oracle_model *om, const char *name, int min_classes,
                                 host_oracle_attack_fn run, const void *cfg, clasp_model *m,
                                 const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                 clasp_tensor *x_adv, clasp_tensor *pred)
{
    int n = x->shape[0];
    host_oracle o;
    host_oracle_model_init(om, &o, m, x->ctx);
    size_t d = (size_t)o.c * (size_t)o.h * (size_t)o.w;
    if (clasp_tensor_per_example(x) != d)
        return clasp_error(CLASP_ERR_INVALID, "%s: inputs of %zu values, the model takes %zu", name,
                           clasp_tensor_per_example(x), d);
    if (o.k < min_classes)
        return clasp_error(CLASP_ERR_INVALID, "%s: needs a model of at least %d classes, not %d",
                           name, min_classes, o.k);
    float *xh = malloc((size_t)n * d * sizeof(float)), *adv = malloc((size_t)n * d * sizeof(float));
    int32_t *yh = malloc((size_t)n * sizeof(int32_t));
    clasp_status st = CLASP_OK;
    if (!xh || !adv || !yh) st = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", name);
    if (st == CLASP_OK) st = clasp_tensor_read(x, xh);
    if (st == CLASP_OK) st = clasp_tensor_read(y, yh);
    if (st == CLASP_OK) st = run(cfg, &o, xh, yh, n, rng, adv);
    if (st == CLASP_OK) st = clasp_tensor_write(x_adv, adv);
    if (st == CLASP_OK) st = clasp_model_predict(m, x_adv, pred);
    free(xh), free(adv), free(yh);
    return st;
}
