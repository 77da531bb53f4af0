/* Losses on logits (cl/loss.cl): softmax cross-entropy with temperature
 * and per-sample weights, KL divergence between two softmaxes, the
 * Carlini-Wagner margin and the DLR loss of Auto-PGD. Each writes
 * per-sample values and, optionally, the gradient with respect to the
 * logits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

/* Logits [N,K]: N is the first dimension, K the rest. */
static clasp_status check_logits(const char *op, const char *name, const clasp_tensor *z, int *n,
                                 int *k)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, z, CLASP_F32));
    if (z->ndim < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be [N,K], got a scalar", op, name);
    *n = z->shape[0];
    *k = *n ? (int)(z->numel / (size_t)*n) : 0;
    return CLASP_OK;
}

/* A per-sample tensor with N elements (labels, weights, losses). */
static clasp_status check_vec(const char *op, const char *zn, const clasp_tensor *z,
                              const char *name, const clasp_tensor *v, clasp_dtype dt)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, v, dt));
    if (v->ctx != z->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, zn,
                           name);
    if (v->numel != (size_t)z->shape[0]) {
        char sz[64], sv[64];
        clasp_ops_shape_str(z, sz, sizeof sz);
        clasp_ops_shape_str(v, sv, sizeof sv);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s %s has %d rows but %s %s has %zu elements",
                           op, zn, sz, z->shape[0], name, sv, v->numel);
    }
    return CLASP_OK;
}

/* A tensor shaped like the logits (gradients, the second logits of KL). */
static clasp_status check_like(const char *op, const char *zn, const clasp_tensor *z,
                               const char *name, const clasp_tensor *t)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, t, CLASP_F32));
    if (t->ctx != z->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, zn,
                           name);
    if (t->numel != z->numel || t->ndim < 1 || t->shape[0] != z->shape[0]) {
        char sz[64], st[64];
        clasp_ops_shape_str(z, sz, sizeof sz);
        clasp_ops_shape_str(t, st, sizeof st);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is %s but %s is %s (must match)", op, name,
                           st, zn, sz);
    }
    return CLASP_OK;
}

clasp_status clasp_softmax_xent(const clasp_tensor *z, const clasp_tensor *y, float t,
                                const clasp_tensor *w, float grad_scale, clasp_tensor *loss,
                                clasp_tensor *dz)
{
    static const char op[] = "clasp_softmax_xent";
    int n, kc;
    CLASP_TRY(check_logits(op, "z", z, &n, &kc));
    CLASP_TRY(check_vec(op, "z", z, "y", y, CLASP_I32));
    if (w) CLASP_TRY(check_vec(op, "z", z, "w", w, CLASP_F32));
    if (loss) CLASP_TRY(check_vec(op, "z", z, "loss", loss, CLASP_F32));
    if (dz) CLASP_TRY(check_like(op, "z", z, "dz", dz));
    if (!(t > 0) || isinf(t))
        return clasp_error(CLASP_ERR_INVALID, "%s: temperature %g must be positive and finite", op,
                           (double)t);
    if (n > 0 && kc < 1) return clasp_error(CLASP_ERR_INVALID, "%s: z has no classes", op);
    if (n == 0 || (!loss && !dz)) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(z->ctx, "loss", NULL, "softmax_xent", &k));
    cl_mem mz = clasp_mem(z), my = clasp_mem(y);
    /* Absent tensors: pass z's buffer, never touched with its flag at 0. */
    cl_mem mw = w ? clasp_mem(w) : mz, ml = loss ? clasp_mem(loss) : mz,
           md = dz ? clasp_mem(dz) : mz;
    cl_int hw = w != NULL, hl = loss != NULL, hd = dz != NULL, cn = n, ck = kc;
    cl_float ct = t, gs = grad_scale;
    CLASP_TRY(clasp_kernel_args(k, 12, KARG(mz), KARG(my), KARG(mw), KARG(hw), KARG(cn), KARG(ck),
                                KARG(ct), KARG(gs), KARG(ml), KARG(hl), KARG(md), KARG(hd)));
    return clasp_ops_launch_1d(z->ctx, k, "softmax_xent", n, 64);
}

clasp_status clasp_kl_div(const clasp_tensor *zp, const clasp_tensor *zq, float grad_scale,
                          clasp_tensor *loss, clasp_tensor *dzp, clasp_tensor *dzq)
{
    static const char op[] = "clasp_kl_div";
    int n, kc;
    CLASP_TRY(check_logits(op, "zp", zp, &n, &kc));
    CLASP_TRY(check_like(op, "zp", zp, "zq", zq));
    if (loss) CLASP_TRY(check_vec(op, "zp", zp, "loss", loss, CLASP_F32));
    if (dzp) CLASP_TRY(check_like(op, "zp", zp, "dzp", dzp));
    if (dzq) CLASP_TRY(check_like(op, "zp", zp, "dzq", dzq));
    if (n > 0 && kc < 1) return clasp_error(CLASP_ERR_INVALID, "%s: zp has no classes", op);
    if (n == 0 || (!loss && !dzp && !dzq)) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(zp->ctx, "loss", NULL, "kl_div", &k));
    cl_mem mp = clasp_mem(zp), mq = clasp_mem(zq);
    cl_mem ml = loss ? clasp_mem(loss) : mp, mdp = dzp ? clasp_mem(dzp) : mp,
           mdq = dzq ? clasp_mem(dzq) : mp;
    cl_int hl = loss != NULL, hp = dzp != NULL, hq = dzq != NULL, cn = n, ck = kc;
    cl_float gs = grad_scale;
    CLASP_TRY(clasp_kernel_args(k, 11, KARG(mp), KARG(mq), KARG(cn), KARG(ck), KARG(gs), KARG(ml),
                                KARG(hl), KARG(mdp), KARG(hp), KARG(mdq), KARG(hq)));
    return clasp_ops_launch_1d(zp->ctx, k, "kl_div", n, 64);
}

clasp_status clasp_cw_margin(const clasp_tensor *z, const clasp_tensor *y, float kappa,
                             const clasp_tensor *scale, clasp_tensor *f, clasp_tensor *dz)
{
    static const char op[] = "clasp_cw_margin";
    int n, kc;
    CLASP_TRY(check_logits(op, "z", z, &n, &kc));
    CLASP_TRY(check_vec(op, "z", z, "y", y, CLASP_I32));
    if (scale) CLASP_TRY(check_vec(op, "z", z, "scale", scale, CLASP_F32));
    if (f) CLASP_TRY(check_vec(op, "z", z, "f", f, CLASP_F32));
    if (dz) CLASP_TRY(check_like(op, "z", z, "dz", dz));
    if (isnan(kappa)) return clasp_error(CLASP_ERR_INVALID, "%s: kappa is NaN", op);
    /* With one class there is no competitor to take the max over. */
    if (n > 0 && kc < 2)
        return clasp_error(CLASP_ERR_INVALID, "%s: needs at least 2 classes, z has %d", op, kc);
    if (n == 0 || (!f && !dz)) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(z->ctx, "loss", NULL, "cw_margin", &k));
    cl_mem mz = clasp_mem(z), my = clasp_mem(y);
    cl_mem ms = scale ? clasp_mem(scale) : mz, mf = f ? clasp_mem(f) : mz,
           md = dz ? clasp_mem(dz) : mz;
    cl_int hs = scale != NULL, hf = f != NULL, hd = dz != NULL, cn = n, ck = kc;
    cl_float kp = kappa;
    CLASP_TRY(clasp_kernel_args(k, 11, KARG(mz), KARG(my), KARG(cn), KARG(ck), KARG(kp), KARG(ms),
                                KARG(hs), KARG(mf), KARG(hf), KARG(md), KARG(hd)));
    return clasp_ops_launch_1d(z->ctx, k, "cw_margin", n, 64);
}

clasp_status clasp_dlr_loss(const clasp_tensor *z, const clasp_tensor *y,
                            const clasp_tensor *target, clasp_tensor *loss, clasp_tensor *dz)
{
    static const char op[] = "clasp_dlr_loss";
    int n, kc;
    CLASP_TRY(check_logits(op, "z", z, &n, &kc));
    CLASP_TRY(check_vec(op, "z", z, "y", y, CLASP_I32));
    if (target) CLASP_TRY(check_vec(op, "z", z, "target", target, CLASP_I32));
    if (loss) CLASP_TRY(check_vec(op, "z", z, "loss", loss, CLASP_F32));
    if (dz) CLASP_TRY(check_like(op, "z", z, "dz", dz));
    /* The denominator is the gap between the largest and the third largest
     * logit: there is no third one below three classes. */
    if (n > 0 && kc < 3)
        return clasp_error(CLASP_ERR_INVALID, "%s: the DLR loss needs at least 3 classes, z has %d",
                           op, kc);
    if (n == 0 || (!loss && !dz)) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(z->ctx, "loss", NULL, "dlr_loss", &k));
    cl_mem mz = clasp_mem(z), my = clasp_mem(y);
    cl_mem mt = target ? clasp_mem(target) : my, ml = loss ? clasp_mem(loss) : mz,
           md = dz ? clasp_mem(dz) : mz;
    cl_int ht = target != NULL, hl = loss != NULL, hd = dz != NULL, cn = n, ck = kc;
    CLASP_TRY(clasp_kernel_args(k, 10, KARG(mz), KARG(my), KARG(mt), KARG(ht), KARG(cn), KARG(ck),
                                KARG(ml), KARG(hl), KARG(md), KARG(hd)));
    return clasp_ops_launch_1d(z->ctx, k, "dlr_loss", n, 64);
}
