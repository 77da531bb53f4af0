/* Reductions and indexing (cl/reduce.cl): the full sum, row argmax, and
 * row/class gathers. (clasp_bias_grad lives with the layers.) */
#include <stdint.h>
#include <stdio.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

/* v must hold one element per row of x (x's first dimension). */
static clasp_status check_per_row(const char *op, const char *xn, const clasp_tensor *x,
                                  const char *vn, const clasp_tensor *v)
{
    CLASP_TRY(clasp_ops_check_ctx(op, xn, x, vn, v));
    if (x->ndim < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must have a leading row dimension", op, xn);
    if (v->numel != (size_t)x->shape[0]) {
        char sx[64], sv[64];
        clasp_ops_shape_str(x, sx, sizeof sx);
        clasp_ops_shape_str(v, sv, sizeof sv);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s %s has %d rows but %s %s has %zu elements",
                           op, xn, sx, x->shape[0], vn, sv, v->numel);
    }
    return CLASP_OK;
}

/* Most groups the first stage of the sum uses: enough to occupy every
 * compute unit of a large GPU a few times over, few enough that the second
 * stage is one small group. */
#define CLASP_SUM_MAX_GROUPS 64

clasp_status clasp_sum(const clasp_tensor *x, clasp_tensor *out)
{
    static const char op[] = "clasp_sum";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "out", out, CLASP_F32));
    CLASP_TRY(clasp_ops_check_ctx(op, "x", x, "out", out));
    if (out->numel != 1) {
        char so[64];
        clasp_ops_shape_str(out, so, sizeof so);
        return clasp_error(CLASP_ERR_INVALID, "%s: out must have 1 element, is %s", op, so);
    }
    clasp_ctx *ctx = x->ctx;
    if (!x->numel) return clasp_tensor_fill(out, 0.0f);
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "reduce", NULL, "sum_stage", &k));
    size_t lws = clasp_ops_local_size(ctx, k, 256);
    size_t groups = (x->numel + lws - 1) / lws;
    if (groups > CLASP_SUM_MAX_GROUPS) groups = CLASP_SUM_MAX_GROUPS;
    cl_mem mx = clasp_mem(x), mo = clasp_mem(out);
    cl_uint n = (cl_uint)x->numel;
    size_t local_bytes = lws * sizeof(cl_float);
    size_t gws = groups * lws;
    if (groups == 1) {
        CLASP_TRY(
            clasp_kernel_args(k, 4, KARG(mx), KARG(n), KARG(mo), local_bytes, (const void *)NULL));
        return clasp_launch(ctx, k, "sum", 1, &gws, &lws);
    }
    /* The partials live in a pooled buffer that is handed back right after
     * the launches: the queue is in order, so whoever takes it next from the
     * pool can only write to it after the second stage has read it. */
    clasp_tensor *partial = NULL;
    CLASP_TRY(clasp_tensor_new(ctx, CLASP_F32, 1, (int[]){(int)groups}, &partial));
    cl_mem mp = clasp_mem(partial);
    clasp_status st =
        clasp_kernel_args(k, 4, KARG(mx), KARG(n), KARG(mp), local_bytes, (const void *)NULL);
    if (st == CLASP_OK) st = clasp_launch(ctx, k, "sum", 1, &gws, &lws);
    if (st == CLASP_OK) {
        cl_uint np = (cl_uint)groups;
        st = clasp_kernel_args(k, 4, KARG(mp), KARG(np), KARG(mo), local_bytes, (const void *)NULL);
    }
    if (st == CLASP_OK) st = clasp_launch(ctx, k, "sum", 1, &lws, &lws);
    clasp_tensor_free(partial);
    return st;
}

clasp_status clasp_argmax_rows(const clasp_tensor *z, clasp_tensor *out)
{
    static const char op[] = "clasp_argmax_rows";
    CLASP_TRY(clasp_ops_check_tensor(op, "z", z, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "out", out, CLASP_I32));
    CLASP_TRY(check_per_row(op, "z", z, "out", out));
    size_t rows = (size_t)z->shape[0];
    if (!rows) return CLASP_OK;
    if (!z->numel) return clasp_error(CLASP_ERR_INVALID, "%s: z has rows but no columns", op);
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(z->ctx, "reduce", NULL, "argmax_rows", &k));
    cl_mem mz = clasp_mem(z), mo = clasp_mem(out);
    cl_uint n = (cl_uint)rows, kc = (cl_uint)(z->numel / rows);
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mz), KARG(n), KARG(kc), KARG(mo)));
    return clasp_ops_launch_1d(z->ctx, k, "argmax_rows", rows, 256);
}

clasp_status clasp_gather_rows(const clasp_tensor *src, const clasp_tensor *idx, clasp_tensor *dst)
{
    static const char op[] = "clasp_gather_rows";
    if (!src) return clasp_error(CLASP_ERR_INVALID, "%s: src is NULL", op);
    CLASP_TRY(clasp_ops_check_tensor(op, "src", src, src->dtype));
    CLASP_TRY(clasp_ops_check_tensor(op, "idx", idx, CLASP_I32));
    CLASP_TRY(clasp_ops_check_tensor(op, "dst", dst, src->dtype));
    CLASP_TRY(clasp_ops_check_ctx(op, "src", src, "idx", idx));
    CLASP_TRY(check_per_row(op, "dst", dst, "idx", idx));
    if (src->ndim < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: src must have a leading row dimension", op);
    size_t m = (size_t)src->shape[0], rows = (size_t)dst->shape[0];
    size_t d = m ? src->numel / m : 0;
    size_t dd = rows ? dst->numel / rows : 0;
    /* Row sizes must agree; with no source rows only an empty gather fits. */
    if ((m && rows && d != dd) || (!m && dst->numel)) {
        char ss[64], sd[64];
        clasp_ops_shape_str(src, ss, sizeof ss);
        clasp_ops_shape_str(dst, sd, sizeof sd);
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: src %s rows have %zu elements but dst %s rows have %zu", op, ss, d,
                           sd, dd);
    }
    if (!dst->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(src->ctx, "reduce", NULL, "gather_rows", &k));
    cl_mem ms = clasp_mem(src), mi = clasp_mem(idx), md = clasp_mem(dst);
    cl_uint cm = (cl_uint)m, cn = (cl_uint)rows, cd = (cl_uint)d;
    CLASP_TRY(clasp_kernel_args(k, 6, KARG(ms), KARG(cm), KARG(mi), KARG(md), KARG(cn), KARG(cd)));
    return clasp_ops_launch_1d(src->ctx, k, "gather_rows", dst->numel, 256);
}

clasp_status clasp_gather_rows_u8(const clasp_tensor *src, const clasp_tensor *table, size_t m,
                                  const clasp_tensor *idx, clasp_tensor *dst)
{
    static const char op[] = "clasp_gather_rows_u8";
    if (!src) return clasp_error(CLASP_ERR_INVALID, "%s: src is NULL", op);
    CLASP_TRY(clasp_ops_check_tensor(op, "table", table, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "idx", idx, CLASP_I32));
    CLASP_TRY(clasp_ops_check_tensor(op, "dst", dst, CLASP_F32));
    CLASP_TRY(check_per_row(op, "dst", dst, "idx", idx));
    size_t rows = (size_t)dst->shape[0], d = rows ? dst->numel / rows : 0;
    if (table->numel != 256 || m * d > src->numel * 4)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: %zu rows of %zu bytes do not fit src (%zu bytes) or the "
                           "table has %zu entries (256 needed)",
                           op, m, d, src->numel * 4, table->numel);
    if (!dst->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(src->ctx, "reduce", NULL, "gather_rows_u8", &k));
    cl_mem ms = clasp_mem(src), mt = clasp_mem(table), mi = clasp_mem(idx), md = clasp_mem(dst);
    cl_uint cm = (cl_uint)m, cn = (cl_uint)rows, cd = (cl_uint)d;
    CLASP_TRY(clasp_kernel_args(k, 7, KARG(ms), KARG(mt), KARG(cm), KARG(mi), KARG(md), KARG(cn),
                                KARG(cd)));
    return clasp_ops_launch_1d(src->ctx, k, "gather_rows_u8", dst->numel, 256);
}

clasp_status clasp_gather_class(const clasp_tensor *table, const clasp_tensor *y, clasp_tensor *out)
{
    static const char op[] = "clasp_gather_class";
    CLASP_TRY(clasp_ops_check_tensor(op, "table", table, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "y", y, CLASP_I32));
    CLASP_TRY(clasp_ops_check_tensor(op, "out", out, CLASP_F32));
    CLASP_TRY(clasp_ops_check_ctx(op, "table", table, "y", y));
    CLASP_TRY(clasp_ops_check_ctx(op, "table", table, "out", out));
    if (out->numel != y->numel) {
        char sy[64], so[64];
        clasp_ops_shape_str(y, sy, sizeof sy);
        clasp_ops_shape_str(out, so, sizeof so);
        return clasp_error(CLASP_ERR_INVALID, "%s: y %s has %zu elements but out %s has %zu", op,
                           sy, y->numel, so, out->numel);
    }
    if (!y->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(table->ctx, "reduce", NULL, "gather_class", &k));
    cl_mem mt = clasp_mem(table), my = clasp_mem(y), mo = clasp_mem(out);
    cl_uint kc = (cl_uint)table->numel, n = (cl_uint)y->numel;
    CLASP_TRY(clasp_kernel_args(k, 5, KARG(mt), KARG(kc), KARG(my), KARG(mo), KARG(n)));
    return clasp_ops_launch_1d(table->ctx, k, "gather_class", y->numel, 256);
}
