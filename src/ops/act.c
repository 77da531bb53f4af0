/* ReLU and Swish forward and backward. ReLU's backward uses the forward
 * output (y > 0 exactly where x > 0), so the input need not be kept;
 * Swish's needs the input (its derivative is not a function of y alone). */
#include <limits.h>

#include "clasp/ops.h"
#include "runtime/internal.h"

static clasp_status check_same(const char *op, const char *an, const clasp_tensor *a,
                               const char *bn, const clasp_tensor *b)
{
    if (!a || !a->buf || !b || !b->buf)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is missing", op, (!a || !a->buf) ? an : bn);
    if (a->dtype != CLASP_F32 || b->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s must be float32", op, an, bn);
    if (a->numel != b->numel)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, %s has %zu", op, an,
                           a->numel, bn, b->numel);
    if (a->numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: %zu elements, at most %d supported", op,
                           a->numel, INT_MAX);
    if (a->ctx != b->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, an,
                           bn);
    return CLASP_OK;
}

/* Large groups: CPU runtimes pay per group, and these kernels do little
 * per element. Capped by what the device allows for the kernel. */
static size_t act_lws(clasp_ctx *ctx, cl_kernel k)
{
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL) !=
            CL_SUCCESS ||
        wg == 0)
        wg = 64;
    return wg < 1024 ? wg : 1024;
}

clasp_status clasp_relu_forward(const clasp_tensor *x, clasp_tensor *y)
{
    CLASP_TRY(check_same("relu", "x", x, "y", y));
    int n = (int)x->numel;
    if (!n) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "act", NULL, "relu_fwd", &k));
    cl_mem xm = clasp_mem(x), ym = clasp_mem(y);
    CLASP_TRY(clasp_kernel_args(k, 3, KARG(xm), KARG(ym), KARG(n)));
    size_t gws = (size_t)n, lws = act_lws(x->ctx, k);
    return clasp_launch(x->ctx, k, "relu_fwd", 1, &gws, &lws);
}

clasp_status clasp_relu_backward(const clasp_tensor *y, const clasp_tensor *dy, clasp_tensor *dx)
{
    CLASP_TRY(check_same("relu_backward", "y", y, "dy", dy));
    CLASP_TRY(check_same("relu_backward", "dy", dy, "dx", dx));
    int n = (int)y->numel;
    if (!n) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(y->ctx, "act", NULL, "relu_bwd", &k));
    cl_mem ym = clasp_mem(y), dym = clasp_mem(dy), dxm = clasp_mem(dx);
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(ym), KARG(dym), KARG(dxm), KARG(n)));
    size_t gws = (size_t)n, lws = act_lws(y->ctx, k);
    return clasp_launch(y->ctx, k, "relu_bwd", 1, &gws, &lws);
}

/* One elementwise activation kernel over `a` (x or y) and optionally dy
 * into `out`. */
static clasp_status act_launch(const char *kernel, const clasp_tensor *a, const clasp_tensor *dy,
                               clasp_tensor *out)
{
    int n = (int)a->numel;
    if (!n) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(a->ctx, "act", NULL, kernel, &k));
    cl_mem am = clasp_mem(a), om = clasp_mem(out);
    if (dy) {
        cl_mem dym = clasp_mem(dy);
        CLASP_TRY(clasp_kernel_args(k, 4, KARG(am), KARG(dym), KARG(om), KARG(n)));
    } else {
        CLASP_TRY(clasp_kernel_args(k, 3, KARG(am), KARG(om), KARG(n)));
    }
    size_t gws = (size_t)n, lws = act_lws(a->ctx, k);
    return clasp_launch(a->ctx, k, kernel, 1, &gws, &lws);
}

clasp_status clasp_swish_forward(const clasp_tensor *x, clasp_tensor *y)
{
    CLASP_TRY(check_same("swish", "x", x, "y", y));
    return act_launch("swish_fwd", x, NULL, y);
}

clasp_status clasp_swish_backward(const clasp_tensor *x, const clasp_tensor *dy, clasp_tensor *dx)
{
    CLASP_TRY(check_same("swish_backward", "x", x, "dy", dy));
    CLASP_TRY(check_same("swish_backward", "dy", dy, "dx", dx));
    return act_launch("swish_bwd", x, dy, dx);
}
