/* Optimiser updates (cl/optim.cl): SGD with momentum and weight decay, and
 * Adam, both with PyTorch's conventions. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

/* A float tensor named `name` with the same context and size as w. */
static clasp_status check_like_w(const char *op, const clasp_tensor *w, const char *name,
                                 const clasp_tensor *t)
{
    if (!t) return clasp_error(CLASP_ERR_INVALID, "%s: %s is NULL", op, name);
    if (t->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be float32, got %s", op, name,
                           clasp_ops_dtype_name(t->dtype));
    if (t == w) return CLASP_OK;
    if (t->ctx != w->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: w and %s belong to different contexts", op,
                           name);
    if (t->numel != w->numel) {
        char sw[64], st[64];
        clasp_ops_shape_str(w, sw, sizeof sw);
        clasp_ops_shape_str(t, st, sizeof st);
        return clasp_error(CLASP_ERR_INVALID, "%s: w %s has %zu elements but %s %s has %zu", op, sw,
                           w->numel, name, st, t->numel);
    }
    return CLASP_OK;
}

static clasp_status check_w(const char *op, const clasp_tensor *w)
{
    CLASP_TRY(check_like_w(op, w, "w", w));
    if (w->numel > UINT32_MAX)
        return clasp_error(CLASP_ERR_UNSUPPORTED, "%s: w has %zu elements (at most 2^32-1)", op,
                           w->numel);
    return CLASP_OK;
}

clasp_status clasp_sgd_update(clasp_tensor *w, const clasp_tensor *g, clasp_tensor *v, float lr,
                              float momentum, float weight_decay)
{
    static const char op[] = "clasp_sgd_update";
    CLASP_TRY(check_w(op, w));
    CLASP_TRY(check_like_w(op, w, "g", g));
    if (v) CLASP_TRY(check_like_w(op, w, "v", v));
    if (momentum != 0.0f && !v)
        return clasp_error(CLASP_ERR_INVALID, "%s: momentum %g needs a velocity tensor v", op,
                           (double)momentum);
    if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: lr %g, momentum %g and weight_decay %g must be finite", op,
                           (double)lr, (double)momentum, (double)weight_decay);
    if (!w->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(w->ctx, "optim", NULL, "sgd_update", &k));
    cl_mem mw = clasp_mem(w), mg = clasp_mem(g), mv = v ? clasp_mem(v) : mw;
    cl_int hv = v != NULL;
    cl_uint n = (cl_uint)w->numel;
    cl_float l = lr, mo = momentum, wd = weight_decay;
    CLASP_TRY(clasp_kernel_args(k, 8, KARG(mw), KARG(mg), KARG(mv), KARG(hv), KARG(n), KARG(l),
                                KARG(mo), KARG(wd)));
    clasp_tensor_touch(w);
    return clasp_ops_launch_1d(w->ctx, k, "sgd_update", w->numel, 256);
}

clasp_status clasp_adam_update(clasp_tensor *w, const clasp_tensor *g, clasp_tensor *m,
                               clasp_tensor *v, float lr, float b1, float b2, float eps, int t)
{
    static const char op[] = "clasp_adam_update";
    CLASP_TRY(check_w(op, w));
    CLASP_TRY(check_like_w(op, w, "g", g));
    CLASP_TRY(check_like_w(op, w, "m", m));
    CLASP_TRY(check_like_w(op, w, "v", v));
    if (t < 1) return clasp_error(CLASP_ERR_INVALID, "%s: step t = %d must be >= 1", op, t);
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
        return clasp_error(CLASP_ERR_INVALID, "%s: betas (%g, %g) must lie in [0, 1)", op,
                           (double)b1, (double)b2);
    if (!isfinite(lr) || !(eps >= 0) || isinf(eps))
        return clasp_error(CLASP_ERR_INVALID, "%s: lr %g must be finite and eps %g >= 0", op,
                           (double)lr, (double)eps);
    if (!w->numel) return CLASP_OK;
    /* Bias corrections in double, as PyTorch computes them in Python floats:
     * b^t for large t would lose digits in float. */
    double bc1 = 1.0 - pow((double)b1, (double)t);
    double bc2 = 1.0 - pow((double)b2, (double)t);
    cl_float step = (cl_float)((double)lr / bc1), bc2_sqrt = (cl_float)sqrt(bc2);
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(w->ctx, "optim", NULL, "adam_update", &k));
    cl_mem mw = clasp_mem(w), mg = clasp_mem(g), mm = clasp_mem(m), mv = clasp_mem(v);
    cl_uint n = (cl_uint)w->numel;
    cl_float cb1 = b1, cb2 = b2, ce = eps;
    CLASP_TRY(clasp_kernel_args(k, 10, KARG(mw), KARG(mg), KARG(mm), KARG(mv), KARG(n), KARG(cb1),
                                KARG(cb2), KARG(ce), KARG(step), KARG(bc2_sqrt)));
    clasp_tensor_touch(w);
    return clasp_ops_launch_1d(w->ctx, k, "adam_update", w->numel, 256);
}
