/* 2-d pooling: max pooling with argmax indices for the backward pass, and
 * average pooling. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

static clasp_status check4(const char *op, const char *name, const clasp_tensor *t,
                           clasp_dtype dtype)
{
    if (!t || !t->buf) return clasp_error(CLASP_ERR_INVALID, "%s: %s is missing", op, name);
    if (t->dtype != dtype)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be %s", op, name,
                           dtype == CLASP_F32 ? "float32" : "int32");
    if (t->ndim != 4)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %d dimensions, expected 4 (NCHW)", op,
                           name, t->ndim);
    if (t->numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, at most %d supported", op,
                           name, t->numel, INT_MAX);
    return CLASP_OK;
}

/* Outputs per work-item of maxpool2_fwd: MP_VEC in cl/pool.cl. */
#define MP_VEC 16
/* Work-items per maxpool2_fwd group to aim for when planes are small. */
#define MP_WG_TARGET 64

/* The most work-items one group of kernel k may have on this device. */
static size_t pool_max_wg(clasp_ctx *ctx, cl_kernel k)
{
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL) !=
            CL_SUCCESS ||
        wg == 0)
        wg = 64;
    return wg < 1024 ? wg : 1024;
}

static int same_shape(const clasp_tensor *a, const clasp_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

clasp_status clasp_maxpool2d_forward(const clasp_tensor *x, int k, int s, clasp_tensor *y,
                                     clasp_tensor *idx)
{
    return clasp_maxpool2d_forward_pad(x, k, s, 0, y, idx);
}

clasp_status clasp_maxpool2d_forward_pad(const clasp_tensor *x, int k, int s, int pad,
                                         clasp_tensor *y, clasp_tensor *idx)
{
    static const char *op = "maxpool2d";
    CLASP_TRY(check4(op, "x", x, CLASP_F32));
    CLASP_TRY(check4(op, "y", y, CLASP_F32));
    CLASP_TRY(check4(op, "idx", idx, CLASP_I32));
    if (k < 1 || s < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: window %d and stride %d must be >= 1", op, k, s);
    if (pad < 0 || pad > k / 2)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: padding %d must be between 0 and half the window %d", op, pad, k);
    int n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    if (h + 2 * pad < k || w + 2 * pad < k)
        return clasp_error(CLASP_ERR_INVALID, "%s: window %d larger than the padded input %dx%d",
                           op, k, h + 2 * pad, w + 2 * pad);
    int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
    if (y->shape[0] != n || y->shape[1] != c || y->shape[2] != oh || y->shape[3] != ow)
        return clasp_error(CLASP_ERR_INVALID, "%s: y is [%d,%d,%d,%d], expected [%d,%d,%d,%d]", op,
                           y->shape[0], y->shape[1], y->shape[2], y->shape[3], n, c, oh, ow);
    if (!same_shape(idx, y))
        return clasp_error(CLASP_ERR_INVALID, "%s: idx must have y's shape", op);
    if (x->ctx != y->ctx || x->ctx != idx->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: tensors belong to different contexts", op);
    int planes = n * c;
    if (!planes) return CLASP_OK;
    cl_kernel kk;
    /* maxpool2_fwd is written for CPU devices (a float16 per work-item is
     * one AVX-512 register); GPUs keep maxpool_fwd. */
    if (k == 2 && s == 2 && pad == 0 && clasp_ctx_vector_kernels(x->ctx)) {
        /* The common 2x2/2 pooling on explicit vectors (see cl/pool.cl). */
        CLASP_TRY(clasp_kernel_get(x->ctx, "pool", NULL, "maxpool2_fwd", &kk));
        cl_mem xm = clasp_mem(x), ym = clasp_mem(y), im = clasp_mem(idx);
        CLASP_TRY(clasp_kernel_args(kk, 8, KARG(xm), KARG(h), KARG(w), KARG(oh), KARG(ow),
                                    KARG(planes), KARG(ym), KARG(im)));
        /* A work-item per MP_VEC outputs of a row; a group takes whole
         * planes, several when they are small, since PoCL pays per group. */
        size_t strips = ((size_t)ow + MP_VEC - 1) / MP_VEC;
        size_t gws[3] = {strips, (size_t)oh, (size_t)planes}, lws[3] = {strips, 1, 1};
        size_t max_wg = pool_max_wg(x->ctx, kk);
        if (strips * (size_t)oh <= max_wg) {
            lws[1] = (size_t)oh;
            size_t per = MP_WG_TARGET / (strips * (size_t)oh);
            lws[2] = per < 1 ? 1 : per < (size_t)planes ? per : (size_t)planes;
        } else if (strips > max_wg) {
            lws[0] = 1;
        }
        return clasp_launch(x->ctx, kk, "maxpool_fwd", 3, gws, lws);
    }
    CLASP_TRY(clasp_kernel_get(x->ctx, "pool", NULL, "maxpool_fwd", &kk));
    cl_mem xm = clasp_mem(x), ym = clasp_mem(y), im = clasp_mem(idx);
    CLASP_TRY(clasp_kernel_args(kk, 10, KARG(xm), KARG(h), KARG(w), KARG(k), KARG(s), KARG(pad),
                                KARG(oh), KARG(ow), KARG(ym), KARG(im)));
    /* One work-group per output plane when it fits: CPU runtimes pay per
     * group, and a plane is a natural unit. */
    size_t gws[3] = {(size_t)ow, (size_t)oh, (size_t)planes}, lws[3];
    size_t max_wg = 0;
    if (clGetKernelWorkGroupInfo(kk, x->ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg,
                                 &max_wg, NULL) != CL_SUCCESS ||
        max_wg == 0)
        max_wg = 64;
    if (max_wg > 1024) max_wg = 1024;
    if (gws[0] <= max_wg) {
        lws[0] = gws[0];
        lws[1] = max_wg / gws[0] < gws[1] ? max_wg / gws[0] : gws[1];
    } else {
        lws[0] = 64 <= max_wg ? 64 : max_wg;
        lws[1] = 1;
    }
    lws[2] = 1;
    return clasp_launch(x->ctx, kk, "maxpool_fwd", 3, gws, lws);
}

clasp_status clasp_maxpool2d_backward(const clasp_tensor *dy, const clasp_tensor *idx,
                                      clasp_tensor *dx)
{
    static const char *op = "maxpool2d_backward";
    CLASP_TRY(check4(op, "dy", dy, CLASP_F32));
    CLASP_TRY(check4(op, "idx", idx, CLASP_I32));
    CLASP_TRY(check4(op, "dx", dx, CLASP_F32));
    if (!same_shape(dy, idx))
        return clasp_error(CLASP_ERR_INVALID, "%s: dy and idx shapes differ", op);
    if (dx->shape[0] != dy->shape[0] || dx->shape[1] != dy->shape[1])
        return clasp_error(CLASP_ERR_INVALID, "%s: dx is [%d,%d,...], dy is [%d,%d,...]", op,
                           dx->shape[0], dx->shape[1], dy->shape[0], dy->shape[1]);
    if (dx->shape[2] < dy->shape[2] || dx->shape[3] < dy->shape[3])
        return clasp_error(CLASP_ERR_INVALID, "%s: dx plane %dx%d smaller than dy plane %dx%d", op,
                           dx->shape[2], dx->shape[3], dy->shape[2], dy->shape[3]);
    if (dx->ctx != dy->ctx || dx->ctx != idx->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: tensors belong to different contexts", op);
    int planes = dx->shape[0] * dx->shape[1];
    int hw = dx->shape[2] * dx->shape[3], ohw = dy->shape[2] * dy->shape[3];
    if (!planes) return CLASP_OK;
    cl_kernel kk;
    CLASP_TRY(clasp_kernel_get(dx->ctx, "pool", NULL, "maxpool_bwd", &kk));
    cl_mem dym = clasp_mem(dy), im = clasp_mem(idx), dxm = clasp_mem(dx);
    CLASP_TRY(clasp_kernel_args(kk, 6, KARG(dym), KARG(im), KARG(planes), KARG(hw), KARG(ohw),
                                KARG(dxm)));
    size_t gws = (size_t)planes, lws = 16;
    return clasp_launch(dx->ctx, kk, "maxpool_bwd", 1, &gws, &lws);
}

/* k, s >= 1, the window fits in x, and y is [N,C,(H-k)/s+1,(W-k)/s+1]. */
static clasp_status check_avgpool(const char *op, const clasp_tensor *x, int k, int s,
                                  const char *yn, const clasp_tensor *y)
{
    if (k < 1 || s < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: window %d and stride %d must be >= 1", op, k, s);
    int n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    if (h < k || w < k)
        return clasp_error(CLASP_ERR_INVALID, "%s: window %d larger than the input %dx%d", op, k, h,
                           w);
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    if (y->shape[0] != n || y->shape[1] != c || y->shape[2] != oh || y->shape[3] != ow)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is [%d,%d,%d,%d], expected [%d,%d,%d,%d]", op,
                           yn, y->shape[0], y->shape[1], y->shape[2], y->shape[3], n, c, oh, ow);
    if (x->ctx != y->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: tensors belong to different contexts", op);
    return CLASP_OK;
}

/* One avgpool kernel over `total` outputs of its own (y or dx), 1-d. */
static clasp_status avgpool_launch(const char *kernel, const char *prof, const clasp_tensor *in,
                                   const clasp_tensor *x, int k, int s, const clasp_tensor *y,
                                   clasp_tensor *out)
{
    int h = x->shape[2], w = x->shape[3];
    int oh = y->shape[2], ow = y->shape[3], total = (int)out->numel;
    if (!total) return CLASP_OK;
    cl_kernel kk;
    CLASP_TRY(clasp_kernel_get(out->ctx, "pool", NULL, kernel, &kk));
    cl_mem im = clasp_mem(in), om = clasp_mem(out);
    CLASP_TRY(clasp_kernel_args(kk, 9, KARG(im), KARG(h), KARG(w), KARG(k), KARG(s), KARG(oh),
                                KARG(ow), KARG(total), KARG(om)));
    return clasp_ops_launch_1d(out->ctx, kk, prof, (size_t)total, 256);
}

clasp_status clasp_avgpool2d_forward(const clasp_tensor *x, int kernel, int stride, clasp_tensor *y)
{
    static const char *op = "clasp_avgpool2d_forward";
    CLASP_TRY(check4(op, "x", x, CLASP_F32));
    CLASP_TRY(check4(op, "y", y, CLASP_F32));
    CLASP_TRY(check_avgpool(op, x, kernel, stride, "y", y));
    return avgpool_launch("avgpool_fwd", "avgpool_fwd", x, x, kernel, stride, y, y);
}

clasp_status clasp_avgpool2d_backward(const clasp_tensor *dy, int kernel, int stride,
                                      clasp_tensor *dx)
{
    static const char *op = "clasp_avgpool2d_backward";
    CLASP_TRY(check4(op, "dy", dy, CLASP_F32));
    CLASP_TRY(check4(op, "dx", dx, CLASP_F32));
    CLASP_TRY(check_avgpool(op, dx, kernel, stride, "dy", dy));
    return avgpool_launch("avgpool_bwd", "avgpool_bwd", dy, dx, kernel, stride, dy, dx);
}

/* ---- zero padding ---------------------------------------------------- */

static clasp_status check_pad(const char *op, const clasp_tensor *x, const int pad[4],
                              const char *yn, const clasp_tensor *y)
{
    if (pad[0] < 0 || pad[1] < 0 || pad[2] < 0 || pad[3] < 0)
        return clasp_error(CLASP_ERR_INVALID, "%s: padding %d,%d,%d,%d must be >= 0", op, pad[0],
                           pad[1], pad[2], pad[3]);
    int n = x->shape[0], c = x->shape[1];
    long long oh = (long long)x->shape[2] + pad[2] + pad[3];
    long long ow = (long long)x->shape[3] + pad[0] + pad[1];
    if (y->shape[0] != n || y->shape[1] != c || y->shape[2] != oh || y->shape[3] != ow)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is [%d,%d,%d,%d], expected [%d,%d,%lld,%lld]",
                           op, yn, y->shape[0], y->shape[1], y->shape[2], y->shape[3], n, c, oh,
                           ow);
    if (x->ctx != y->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: tensors belong to different contexts", op);
    return CLASP_OK;
}

/* One pad kernel over the elements of `out`; x is the unpadded side. */
static clasp_status pad_launch(const char *kernel, const clasp_tensor *in, const clasp_tensor *x,
                               const int pad[4], const clasp_tensor *y, clasp_tensor *out)
{
    int h = x->shape[2], w = x->shape[3], oh = y->shape[2], ow = y->shape[3];
    int total = (int)out->numel;
    if (!total) return CLASP_OK;
    cl_kernel kk;
    CLASP_TRY(clasp_kernel_get(out->ctx, "pool", NULL, kernel, &kk));
    cl_mem im = clasp_mem(in), om = clasp_mem(out);
    CLASP_TRY(clasp_kernel_args(kk, 9, KARG(im), KARG(h), KARG(w), KARG(pad[0]), KARG(pad[2]),
                                KARG(oh), KARG(ow), KARG(total), KARG(om)));
    return clasp_ops_launch_1d(out->ctx, kk, kernel, (size_t)total, 256);
}

clasp_status clasp_pad2d_forward(const clasp_tensor *x, const int pad[4], clasp_tensor *y)
{
    static const char *op = "clasp_pad2d_forward";
    CLASP_TRY(check4(op, "x", x, CLASP_F32));
    CLASP_TRY(check4(op, "y", y, CLASP_F32));
    CLASP_TRY(check_pad(op, x, pad, "y", y));
    return pad_launch("pad_fwd", x, x, pad, y, y);
}

clasp_status clasp_pad2d_backward(const clasp_tensor *dy, const int pad[4], clasp_tensor *dx)
{
    static const char *op = "clasp_pad2d_backward";
    CLASP_TRY(check4(op, "dy", dy, CLASP_F32));
    CLASP_TRY(check4(op, "dx", dx, CLASP_F32));
    CLASP_TRY(check_pad(op, dx, pad, "dy", dy));
    return pad_launch("pad_bwd", dy, dx, pad, dy, dx);
}
