/* Argument checks and launch helpers shared by the op launchers. */
#include <stdint.h>
#include <stdio.h>

#include "ops/ops_common.h"

const char *clasp_ops_dtype_name(clasp_dtype d)
{
    return d == CLASP_I32 ? "int32" : "float32";
}

void clasp_ops_shape_str(const clasp_tensor *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%d" : "%d", t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

clasp_status clasp_ops_check_tensor(const char *op, const char *name, const clasp_tensor *t,
                                    clasp_dtype dt)
{
    if (!t) return clasp_error(CLASP_ERR_INVALID, "%s: %s is NULL", op, name);
    if (t->dtype != dt)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be %s, got %s", op, name,
                           clasp_ops_dtype_name(dt), clasp_ops_dtype_name(t->dtype));
    if (t->numel > UINT32_MAX)
        return clasp_error(CLASP_ERR_UNSUPPORTED, "%s: %s has %zu elements (at most 2^32-1)", op,
                           name, t->numel);
    return CLASP_OK;
}

clasp_status clasp_ops_check_ctx(const char *op, const char *an, const clasp_tensor *a,
                                 const char *bn, const clasp_tensor *b)
{
    if (a->ctx != b->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, an,
                           bn);
    return CLASP_OK;
}

size_t clasp_ops_local_size(clasp_ctx *ctx, cl_kernel k, size_t cap)
{
    size_t kmax = 0;
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax,
                                 NULL) != CL_SUCCESS ||
        kmax == 0)
        kmax = 1;
    if (ctx->info.max_work_group && ctx->info.max_work_group < kmax)
        kmax = ctx->info.max_work_group;
    if (cap < kmax) kmax = cap;
    size_t p = 1;
    while (p * 2 <= kmax) p *= 2;
    return p;
}

clasp_status clasp_ops_launch_1d(clasp_ctx *ctx, cl_kernel k, const char *op, size_t n, size_t cap)
{
    size_t lws = clasp_ops_local_size(ctx, k, cap);
    size_t gws = clasp_round_up(n, lws);
    return clasp_launch(ctx, k, op, 1, &gws, &lws);
}
