/* Batch normalisation (train and eval, forward and backward) and the
 * per-channel affine map (cl/norm.cl).
 *
 * Every op is one per-channel step and one elementwise pass: the train
 * forward reduces the channel statistics (bn_stats), then applies
 * y = (x - mean) * gamma * invstd + beta (chan_affine); the train backward
 * reduces sum dy and sum dy * (x - mean) (bn_bwd_reduce), then forms dx
 * (bn_bwd_dx). Normalising around the mean, rather than folding it into a
 * shift, keeps y accurate when a channel's mean is large against its
 * spread. Per-channel scratch (a few floats per channel) is a tensor freed
 * right after the launches that use it: the queue is in order, so whoever
 * reuses the buffer next can only touch it after they ran. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

/* The largest work-group a per-channel reduction uses: enough work-items
 * to keep a GPU's lanes busy, few enough that a [128,64,32,32] batch still
 * gives each one hundreds of elements to add before the tree. */
#define NORM_REDUCE_CAP 256

/* Bits of bn_bwd_reduce's `want` and chan_affine's `flags` (cl/norm.cl). */
enum { BN_WANT_DX = 1, BN_WANT_DGAMMA = 2, BN_WANT_DBETA = 4 };
enum { CA_CENTER = 1, CA_SHIFT = 2, CA_SCALE = 4 };

/* Elements per work-item of the elementwise kernels: one AVX-512 register
 * on CPU devices, a float4 on GPUs (neighbouring work-items then read
 * neighbouring memory). Chosen as for conv: clasp_ctx_vector_kernels. */
static int norm_nv(const clasp_ctx *ctx)
{
    return clasp_ctx_vector_kernels(ctx) ? 16 : 4;
}

static const char *norm_defines(const clasp_ctx *ctx)
{
    return norm_nv(ctx) == 4 ? "-DNV=4" : "-DNV=16";
}

/* x: float32 [N,C,H,W] with at most INT_MAX elements. */
static clasp_status check_nchw(const char *op, const char *name, const clasp_tensor *t)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, t, CLASP_F32));
    if (t->ndim != 4)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %d dimensions, expected 4 (NCHW)", op,
                           name, t->ndim);
    if (t->numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, at most %d supported", op,
                           name, t->numel, INT_MAX);
    return CLASP_OK;
}

/* t has x's shape and context. */
static clasp_status check_like(const char *op, const char *name, const clasp_tensor *t,
                               const clasp_tensor *x)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, t, CLASP_F32));
    CLASP_TRY(clasp_ops_check_ctx(op, "x", x, name, t));
    int same = t->ndim == x->ndim;
    for (int i = 0; same && i < x->ndim; i++) same = t->shape[i] == x->shape[i];
    if (!same) {
        char st[64], sx[64];
        clasp_ops_shape_str(t, st, sizeof st);
        clasp_ops_shape_str(x, sx, sizeof sx);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has shape %s, expected %s", op, name, st, sx);
    }
    return CLASP_OK;
}

/* A per-channel vector: C elements (any shape), x's context. */
static clasp_status check_chan(const char *op, const char *name, const clasp_tensor *t,
                               const clasp_tensor *x)
{
    CLASP_TRY(clasp_ops_check_tensor(op, name, t, CLASP_F32));
    CLASP_TRY(clasp_ops_check_ctx(op, "x", x, name, t));
    if (t->numel != (size_t)x->shape[1])
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, expected %d (channels)", op,
                           name, t->numel, x->shape[1]);
    return CLASP_OK;
}

/* Two views of the same memory. */
static int same_buffer(const clasp_tensor *a, const clasp_tensor *b)
{
    return a && b && a->buf == b->buf;
}

/* A scratch tensor of n floats. */
static clasp_status scratch(clasp_ctx *ctx, int n, clasp_tensor **out)
{
    return clasp_tensor_new(ctx, CLASP_F32, 1, (int[]){n}, out);
}

/* One group of L work-items per channel; L a power of two no larger than a
 * plane (so few lanes idle on small planes), the kernel's and the device's
 * limits and NORM_REDUCE_CAP. */
static clasp_status launch_per_channel(clasp_ctx *ctx, cl_kernel k, const char *op, int c, int p,
                                       int first_local_arg)
{
    size_t cap = (size_t)p < NORM_REDUCE_CAP ? (size_t)p : NORM_REDUCE_CAP;
    size_t lws = clasp_ops_local_size(ctx, k, cap ? cap : 1);
    size_t bytes = lws * sizeof(cl_float);
    CLASP_CL_TRY(clSetKernelArg(k, (cl_uint)first_local_arg, bytes, NULL), "clSetKernelArg");
    CLASP_CL_TRY(clSetKernelArg(k, (cl_uint)first_local_arg + 1, bytes, NULL), "clSetKernelArg");
    size_t gws = (size_t)c * lws;
    return clasp_launch(ctx, k, op, 1, &gws, &lws);
}

/* y = (x - m) * a + b per channel (m, b may be NULL for zero). */
static clasp_status affine(const clasp_tensor *x, const clasp_tensor *m, const clasp_tensor *a,
                           const clasp_tensor *b, clasp_tensor *y, const char *prof)
{
    clasp_ctx *ctx = x->ctx;
    int c = x->shape[1], p = x->shape[2] * x->shape[3], planes = x->shape[0] * c;
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "norm", norm_defines(ctx), "chan_affine", &k));
    int nv = norm_nv(ctx);
    size_t strips = ((size_t)p + (size_t)nv - 1) / (size_t)nv;
    int flags = (m ? CA_CENTER : 0) | (b ? CA_SHIFT : 0) | (a ? CA_SCALE : 0);
    /* Absent vectors are not read; a present one's buffer stands in. */
    const clasp_tensor *any = a ? a : b ? b : m;
    if (!any) return clasp_error(CLASP_ERR_INVALID, "%s: no scale, shift or centre", prof);
    cl_mem xm = clasp_mem(x), ym = clasp_mem(y), anym = clasp_mem(any);
    cl_mem am = a ? clasp_mem(a) : anym, mm = m ? clasp_mem(m) : anym, bm = b ? clasp_mem(b) : anym;
    CLASP_TRY(clasp_kernel_args(k, 9, KARG(xm), KARG(c), KARG(p), KARG(planes), KARG(mm), KARG(am),
                                KARG(bm), KARG(flags), KARG(ym)));
    return clasp_ops_launch_1d(ctx, k, prof, (size_t)planes * strips, 256);
}

clasp_status clasp_channel_affine(const clasp_tensor *x, const clasp_tensor *scale,
                                  const clasp_tensor *shift, clasp_tensor *y)
{
    static const char op[] = "clasp_channel_affine";
    CLASP_TRY(check_nchw(op, "x", x));
    CLASP_TRY(check_like(op, "y", y, x));
    if (!scale && !shift)
        return clasp_error(CLASP_ERR_INVALID, "%s: scale and shift are both NULL", op);
    if (scale) CLASP_TRY(check_chan(op, "scale", scale, x));
    if (shift) CLASP_TRY(check_chan(op, "shift", shift, x));
    if ((scale && same_buffer(y, scale)) || (shift && same_buffer(y, shift)))
        return clasp_error(CLASP_ERR_INVALID, "%s: y may not alias scale or shift", op);
    return affine(x, NULL, scale, shift, y, "channel_affine");
}

/* Checks shared by both forward modes. */
static clasp_status check_forward(const char *op, const clasp_tensor *x, const clasp_tensor *gamma,
                                  const clasp_tensor *beta, const clasp_tensor *y)
{
    CLASP_TRY(check_nchw(op, "x", x));
    CLASP_TRY(check_chan(op, "gamma", gamma, x));
    CLASP_TRY(check_chan(op, "beta", beta, x));
    CLASP_TRY(check_like(op, "y", y, x));
    if (same_buffer(y, x)) return clasp_error(CLASP_ERR_INVALID, "%s: y may not alias x", op);
    return CLASP_OK;
}

clasp_status clasp_batchnorm_forward_train(const clasp_tensor *x, const clasp_tensor *gamma,
                                           const clasp_tensor *beta, clasp_tensor *running_mean,
                                           clasp_tensor *running_var, float momentum, float eps,
                                           clasp_tensor *save_mean, clasp_tensor *save_invstd,
                                           clasp_tensor *y)
{
    static const char op[] = "clasp_batchnorm_forward_train";
    CLASP_TRY(check_forward(op, x, gamma, beta, y));
    CLASP_TRY(check_chan(op, "running_mean", running_mean, x));
    CLASP_TRY(check_chan(op, "running_var", running_var, x));
    CLASP_TRY(check_chan(op, "save_mean", save_mean, x));
    CLASP_TRY(check_chan(op, "save_invstd", save_invstd, x));
    if (!(eps > 0.0f))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps must be > 0, got %g", op, (double)eps);
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return clasp_error(CLASP_ERR_INVALID, "%s: momentum must be in [0, 1], got %g", op,
                           (double)momentum);
    int n = x->shape[0], c = x->shape[1], p = x->shape[2] * x->shape[3];
    if (!c) return CLASP_OK;
    /* The unbiased variance of the running statistics needs two values. */
    if ((size_t)n * (size_t)p < 2)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: x has %d value(s) per channel, training needs at least 2", op,
                           n * p);
    clasp_ctx *ctx = x->ctx;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "norm", norm_defines(ctx), "bn_stats", &k));
    clasp_tensor *scale = NULL;
    CLASP_TRY(scratch(ctx, c, &scale));
    cl_mem xm = clasp_mem(x), gm = clasp_mem(gamma), rm = clasp_mem(running_mean);
    cl_mem rv = clasp_mem(running_var), sm = clasp_mem(save_mean), si = clasp_mem(save_invstd);
    cl_mem scm = clasp_mem(scale);
    clasp_status st =
        clasp_kernel_args(k, 12, KARG(xm), KARG(n), KARG(c), KARG(p), KARG(gm), KARG(momentum),
                          KARG(eps), KARG(rm), KARG(rv), KARG(sm), KARG(si), KARG(scm));
    if (st == CLASP_OK) st = launch_per_channel(ctx, k, "batchnorm_stats", c, p, 12);
    if (st == CLASP_OK) st = affine(x, save_mean, scale, beta, y, "batchnorm_apply");
    clasp_tensor_free(scale);
    /* The running statistics changed: what was derived from them (eval
     * mode's folded convolution weights) is stale. */
    clasp_tensor_touch(running_mean);
    clasp_tensor_touch(running_var);
    return st;
}

/* invstd = 1/sqrt(running_var + eps) and scale = gamma * invstd, fresh
 * scratch tensors of C floats the caller frees. */
static clasp_status eval_coef(const clasp_tensor *gamma, const clasp_tensor *running_var, float eps,
                              int c, clasp_tensor **invstd, clasp_tensor **scale)
{
    clasp_ctx *ctx = gamma->ctx;
    *invstd = *scale = NULL;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "norm", norm_defines(ctx), "bn_eval_coef", &k));
    CLASP_TRY(scratch(ctx, c, invstd));
    CLASP_TRY(scratch(ctx, c, scale));
    cl_mem gm = clasp_mem(gamma), rv = clasp_mem(running_var), im = clasp_mem(*invstd);
    cl_mem sm = clasp_mem(*scale);
    CLASP_TRY(clasp_kernel_args(k, 6, KARG(gm), KARG(rv), KARG(eps), KARG(c), KARG(im), KARG(sm)));
    return clasp_ops_launch_1d(ctx, k, "batchnorm_coef", (size_t)c, 64);
}

clasp_status clasp_batchnorm_forward_eval(const clasp_tensor *x, const clasp_tensor *gamma,
                                          const clasp_tensor *beta,
                                          const clasp_tensor *running_mean,
                                          const clasp_tensor *running_var, float eps,
                                          clasp_tensor *y)
{
    static const char op[] = "clasp_batchnorm_forward_eval";
    CLASP_TRY(check_forward(op, x, gamma, beta, y));
    CLASP_TRY(check_chan(op, "running_mean", running_mean, x));
    CLASP_TRY(check_chan(op, "running_var", running_var, x));
    if (!(eps > 0.0f))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps must be > 0, got %g", op, (double)eps);
    if (!x->numel) return CLASP_OK;
    clasp_tensor *invstd = NULL, *scale = NULL;
    clasp_status st = eval_coef(gamma, running_var, eps, x->shape[1], &invstd, &scale);
    if (st == CLASP_OK) st = affine(x, running_mean, scale, beta, y, "batchnorm_apply");
    clasp_tensor_free(invstd);
    clasp_tensor_free(scale);
    return st;
}

/* Checks shared by both backward modes; outputs may be NULL. */
static clasp_status check_backward(const char *op, const clasp_tensor *x, const clasp_tensor *dy,
                                   const clasp_tensor *gamma, const clasp_tensor *dx,
                                   const clasp_tensor *dgamma, const clasp_tensor *dbeta)
{
    CLASP_TRY(check_nchw(op, "x", x));
    CLASP_TRY(check_like(op, "dy", dy, x));
    CLASP_TRY(check_chan(op, "gamma", gamma, x));
    if (dx) {
        CLASP_TRY(check_like(op, "dx", dx, x));
        if (same_buffer(dx, x) || same_buffer(dx, dy))
            return clasp_error(CLASP_ERR_INVALID, "%s: dx may not alias x or dy", op);
    }
    if (dgamma) CLASP_TRY(check_chan(op, "dgamma", dgamma, x));
    if (dbeta) CLASP_TRY(check_chan(op, "dbeta", dbeta, x));
    return CLASP_OK;
}

/* bn_bwd_reduce with the given mean and invstd; coef (may be NULL when dx
 * is not wanted) receives the train-mode dx coefficients. */
static clasp_status bwd_reduce(const clasp_tensor *x, const clasp_tensor *dy,
                               const clasp_tensor *gamma, const clasp_tensor *mean,
                               const clasp_tensor *invstd, clasp_tensor *coef, clasp_tensor *dgamma,
                               clasp_tensor *dbeta)
{
    clasp_ctx *ctx = x->ctx;
    int n = x->shape[0], c = x->shape[1], p = x->shape[2] * x->shape[3];
    int want =
        (coef ? BN_WANT_DX : 0) | (dgamma ? BN_WANT_DGAMMA : 0) | (dbeta ? BN_WANT_DBETA : 0);
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "norm", norm_defines(ctx), "bn_bwd_reduce", &k));
    /* Outputs not wanted are not written; mean's buffer stands in. */
    cl_mem xm = clasp_mem(x), gm = clasp_mem(dy), mm = clasp_mem(mean);
    cl_mem im = clasp_mem(invstd), gam = clasp_mem(gamma);
    cl_mem dgm = dgamma ? clasp_mem(dgamma) : mm, dbm = dbeta ? clasp_mem(dbeta) : mm;
    cl_mem cm = coef ? clasp_mem(coef) : mm;
    CLASP_TRY(clasp_kernel_args(k, 12, KARG(xm), KARG(gm), KARG(n), KARG(c), KARG(p), KARG(mm),
                                KARG(im), KARG(gam), KARG(want), KARG(dgm), KARG(dbm), KARG(cm)));
    return launch_per_channel(ctx, k, "batchnorm_bwd_reduce", c, p, 12);
}

clasp_status clasp_batchnorm_backward_train(const clasp_tensor *x, const clasp_tensor *dy,
                                            const clasp_tensor *gamma,
                                            const clasp_tensor *save_mean,
                                            const clasp_tensor *save_invstd, clasp_tensor *dx,
                                            clasp_tensor *dgamma, clasp_tensor *dbeta)
{
    static const char op[] = "clasp_batchnorm_backward_train";
    CLASP_TRY(check_backward(op, x, dy, gamma, dx, dgamma, dbeta));
    CLASP_TRY(check_chan(op, "save_mean", save_mean, x));
    CLASP_TRY(check_chan(op, "save_invstd", save_invstd, x));
    int c = x->shape[1], p = x->shape[2] * x->shape[3], planes = x->shape[0] * c;
    if (!c || (!dx && !dgamma && !dbeta)) return CLASP_OK;
    if (!x->numel) {
        /* Empty sums; dx is empty too. */
        if (dgamma) CLASP_TRY(clasp_tensor_fill(dgamma, 0.0f));
        if (dbeta) CLASP_TRY(clasp_tensor_fill(dbeta, 0.0f));
        return CLASP_OK;
    }
    clasp_ctx *ctx = x->ctx;
    clasp_tensor *coef = NULL;
    if (dx) CLASP_TRY(scratch(ctx, 3 * c, &coef));
    clasp_status st = bwd_reduce(x, dy, gamma, save_mean, save_invstd, coef, dgamma, dbeta);
    if (st == CLASP_OK && dx) {
        cl_kernel k;
        st = clasp_kernel_get(ctx, "norm", norm_defines(ctx), "bn_bwd_dx", &k);
        cl_mem xm = clasp_mem(x), gm = clasp_mem(dy), mm = clasp_mem(save_mean);
        cl_mem cm = clasp_mem(coef), dxm = clasp_mem(dx);
        if (st == CLASP_OK)
            st = clasp_kernel_args(k, 8, KARG(xm), KARG(gm), KARG(c), KARG(p), KARG(planes),
                                   KARG(mm), KARG(cm), KARG(dxm));
        int nv = norm_nv(ctx);
        size_t strips = ((size_t)p + (size_t)nv - 1) / (size_t)nv;
        if (st == CLASP_OK)
            st = clasp_ops_launch_1d(ctx, k, "batchnorm_bwd_dx", (size_t)planes * strips, 256);
    }
    clasp_tensor_free(coef);
    return st;
}

clasp_status clasp_batchnorm_backward_eval(const clasp_tensor *x, const clasp_tensor *dy,
                                           const clasp_tensor *gamma,
                                           const clasp_tensor *running_mean,
                                           const clasp_tensor *running_var, float eps,
                                           clasp_tensor *dx, clasp_tensor *dgamma,
                                           clasp_tensor *dbeta)
{
    static const char op[] = "clasp_batchnorm_backward_eval";
    CLASP_TRY(check_backward(op, x, dy, gamma, dx, dgamma, dbeta));
    CLASP_TRY(check_chan(op, "running_mean", running_mean, x));
    CLASP_TRY(check_chan(op, "running_var", running_var, x));
    if (!(eps > 0.0f))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps must be > 0, got %g", op, (double)eps);
    if (!x->shape[1] || (!dx && !dgamma && !dbeta)) return CLASP_OK;
    if (!x->numel) {
        if (dgamma) CLASP_TRY(clasp_tensor_fill(dgamma, 0.0f));
        if (dbeta) CLASP_TRY(clasp_tensor_fill(dbeta, 0.0f));
        return CLASP_OK;
    }
    clasp_tensor *invstd = NULL, *scale = NULL;
    clasp_status st = eval_coef(gamma, running_var, eps, x->shape[1], &invstd, &scale);
    if (st == CLASP_OK && (dgamma || dbeta))
        st = bwd_reduce(x, dy, gamma, running_mean, invstd, NULL, dgamma, dbeta);
    if (st == CLASP_OK && dx) st = affine(dy, NULL, scale, NULL, dx, "batchnorm_bwd_dx");
    clasp_tensor_free(invstd);
    clasp_tensor_free(scale);
    return st;
}
