/* Elementwise ops (cl/elementwise.cl): clamps and projections for attacks,
 * BLAS-1 style updates, per-example scaling and the tanh box transform. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

/* Same context and element count (shapes may differ, e.g. a flattened view). */
static clasp_status check_same(const char *op, const char *an, const clasp_tensor *a,
                               const char *bn, const clasp_tensor *b)
{
    if (a->ctx != b->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, an,
                           bn);
    if (a->numel != b->numel) {
        char sa[64], sb[64];
        clasp_ops_shape_str(a, sa, sizeof sa);
        clasp_ops_shape_str(b, sb, sizeof sb);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s %s has %zu elements but %s %s has %zu", op,
                           an, sa, a->numel, bn, sb, b->numel);
    }
    return CLASP_OK;
}

/* Both float32 (checked in this order) and of the same size and context:
 * the common precondition of the two-tensor elementwise ops. */
static clasp_status check_f32_pair(const char *op, const char *an, const clasp_tensor *a,
                                   const char *bn, const clasp_tensor *b)
{
    CLASP_TRY(clasp_ops_check_tensor(op, an, a, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, bn, b, CLASP_F32));
    return check_same(op, an, a, bn, b);
}

/* Examples: the first dimension; a tensor without one has no examples. */
static clasp_status check_rows(const char *op, const char *name, const clasp_tensor *t)
{
    if (t->ndim < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must have a leading example dimension", op,
                           name);
    return CLASP_OK;
}

/* A per-example vector v[N] for x[N,...]. */
static clasp_status check_per_example(const char *op, const char *xn, const clasp_tensor *x,
                                      const char *vn, const clasp_tensor *v)
{
    if (x->ctx != v->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s and %s belong to different contexts", op, xn,
                           vn);
    if (v->numel != (size_t)x->shape[0]) {
        char sx[64], sv[64];
        clasp_ops_shape_str(x, sx, sizeof sx);
        clasp_ops_shape_str(v, sv, sizeof sv);
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: %s %s has %d examples but %s %s has %zu elements", op, xn, sx,
                           x->shape[0], vn, sv, v->numel);
    }
    return CLASP_OK;
}

clasp_status clasp_clamp(clasp_tensor *x, float lo, float hi)
{
    static const char op[] = "clasp_clamp";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    if (!(lo <= hi))
        return clasp_error(CLASP_ERR_INVALID, "%s: lo %g is not <= hi %g", op, (double)lo,
                           (double)hi);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "clamp_f32", &k));
    cl_mem mx = clasp_mem(x);
    cl_uint n = (cl_uint)x->numel;
    cl_float l = lo, h = hi;
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mx), KARG(n), KARG(l), KARG(h)));
    clasp_tensor_touch(x);
    return clasp_ops_launch_1d(x->ctx, k, "clamp", x->numel, 256);
}

clasp_status clasp_project_linf(clasp_tensor *x, const clasp_tensor *x0, float eps)
{
    static const char op[] = "clasp_project_linf";
    CLASP_TRY(check_f32_pair(op, "x", x, "x0", x0));
    if (!(eps >= 0))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps %g must be >= 0", op, (double)eps);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "project_linf", &k));
    cl_mem mx = clasp_mem(x), m0 = clasp_mem(x0);
    cl_uint n = (cl_uint)x->numel;
    cl_float e = eps;
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mx), KARG(m0), KARG(n), KARG(e)));
    return clasp_ops_launch_1d(x->ctx, k, "project_linf", x->numel, 256);
}

clasp_status clasp_sign_step(clasp_tensor *x, const clasp_tensor *g, float alpha)
{
    static const char op[] = "clasp_sign_step";
    CLASP_TRY(check_f32_pair(op, "x", x, "g", g));
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "sign_step", &k));
    cl_mem mx = clasp_mem(x), mg = clasp_mem(g);
    cl_uint n = (cl_uint)x->numel;
    cl_float a = alpha;
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mx), KARG(mg), KARG(n), KARG(a)));
    return clasp_ops_launch_1d(x->ctx, k, "sign_step", x->numel, 256);
}

clasp_status clasp_pgd_step(clasp_tensor *x, const clasp_tensor *g, const clasp_tensor *x0,
                            float alpha, float eps, float lo, float hi)
{
    static const char op[] = "clasp_pgd_step";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "g", g, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "x0", x0, CLASP_F32));
    CLASP_TRY(check_same(op, "x", x, "g", g));
    CLASP_TRY(check_same(op, "x", x, "x0", x0));
    if (!(eps >= 0))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps %g must be >= 0", op, (double)eps);
    if (!(lo <= hi))
        return clasp_error(CLASP_ERR_INVALID, "%s: lo %g is not <= hi %g", op, (double)lo,
                           (double)hi);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "pgd_step", &k));
    cl_mem mx = clasp_mem(x), mg = clasp_mem(g), m0 = clasp_mem(x0);
    cl_uint n = (cl_uint)x->numel;
    cl_float a = alpha, e = eps, l = lo, h = hi;
    CLASP_TRY(clasp_kernel_args(k, 8, KARG(mx), KARG(mg), KARG(m0), KARG(n), KARG(a), KARG(e),
                                KARG(l), KARG(h)));
    return clasp_ops_launch_1d(x->ctx, k, "pgd_step", x->numel, 256);
}

clasp_status clasp_apgd_step(clasp_tensor *x, clasp_tensor *x_prev, const clasp_tensor *g,
                             const clasp_tensor *x0, const clasp_tensor *eta, float a, float eps,
                             float lo, float hi)
{
    static const char op[] = "clasp_apgd_step";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "x_prev", x_prev, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "g", g, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "x0", x0, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "eta", eta, CLASP_F32));
    CLASP_TRY(check_same(op, "x", x, "x_prev", x_prev));
    CLASP_TRY(check_same(op, "x", x, "g", g));
    CLASP_TRY(check_same(op, "x", x, "x0", x0));
    CLASP_TRY(check_rows(op, "x", x));
    CLASP_TRY(check_per_example(op, "x", x, "eta", eta));
    if (x == x_prev)
        return clasp_error(CLASP_ERR_INVALID, "%s: x and x_prev are the same tensor", op);
    if (!(eps >= 0))
        return clasp_error(CLASP_ERR_INVALID, "%s: eps %g must be >= 0", op, (double)eps);
    if (!(a >= 0 && a <= 1))
        return clasp_error(CLASP_ERR_INVALID, "%s: momentum a %g must be in [0, 1]", op, (double)a);
    if (!(lo <= hi))
        return clasp_error(CLASP_ERR_INVALID, "%s: lo %g is not <= hi %g", op, (double)lo,
                           (double)hi);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "apgd_step", &k));
    cl_mem mx = clasp_mem(x), mp = clasp_mem(x_prev), mg = clasp_mem(g), m0 = clasp_mem(x0),
           me = clasp_mem(eta);
    cl_uint n = (cl_uint)x->numel, d = (cl_uint)(x->numel / (size_t)x->shape[0]);
    cl_float ca = a, e = eps, l = lo, h = hi;
    CLASP_TRY(clasp_kernel_args(k, 11, KARG(mx), KARG(mp), KARG(mg), KARG(m0), KARG(me), KARG(n),
                                KARG(d), KARG(ca), KARG(e), KARG(l), KARG(h)));
    return clasp_ops_launch_1d(x->ctx, k, "apgd_step", x->numel, 256);
}

clasp_status clasp_l2_norm_per_sample(const clasp_tensor *x, clasp_tensor *out)
{
    static const char op[] = "clasp_l2_norm_per_sample";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "out", out, CLASP_F32));
    CLASP_TRY(check_rows(op, "x", x));
    CLASP_TRY(check_per_example(op, "x", x, "out", out));
    size_t rows = (size_t)x->shape[0];
    if (!rows) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "l2_norm_rows", &k));
    /* A work-group per example: examples are thousands of pixels, so one
     * work-item each would leave most of a GPU idle at small batch sizes. */
    size_t lws = clasp_ops_local_size(x->ctx, k, 64);
    size_t gws = rows * lws;
    cl_mem mx = clasp_mem(x), mo = clasp_mem(out);
    cl_uint d = (cl_uint)(x->numel / rows);
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mx), KARG(d), KARG(mo), lws * sizeof(cl_float),
                                (const void *)NULL));
    return clasp_launch(x->ctx, k, "l2_norm_per_sample", 1, &gws, &lws);
}

clasp_status clasp_axpy(clasp_tensor *y, float alpha, const clasp_tensor *x)
{
    static const char op[] = "clasp_axpy";
    CLASP_TRY(check_f32_pair(op, "y", y, "x", x));
    if (!y->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(y->ctx, "elementwise", NULL, "axpy", &k));
    cl_mem my = clasp_mem(y), mx = clasp_mem(x);
    cl_uint n = (cl_uint)y->numel;
    cl_float a = alpha;
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(my), KARG(a), KARG(mx), KARG(n)));
    clasp_tensor_touch(y);
    return clasp_ops_launch_1d(y->ctx, k, "axpy", y->numel, 256);
}

clasp_status clasp_scale(clasp_tensor *x, float alpha)
{
    static const char op[] = "clasp_scale";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "scale", &k));
    cl_mem mx = clasp_mem(x);
    cl_uint n = (cl_uint)x->numel;
    cl_float a = alpha;
    CLASP_TRY(clasp_kernel_args(k, 3, KARG(mx), KARG(a), KARG(n)));
    clasp_tensor_touch(x);
    return clasp_ops_launch_1d(x->ctx, k, "scale", x->numel, 256);
}

/* a, b and out: float tensors of one context with as many elements. */
static clasp_status check_binary(const char *op, const clasp_tensor *a, const clasp_tensor *b,
                                 const clasp_tensor *out)
{
    CLASP_TRY(clasp_ops_check_tensor(op, "a", a, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "b", b, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "out", out, CLASP_F32));
    CLASP_TRY(check_same(op, "a", a, "b", b));
    CLASP_TRY(check_same(op, "a", a, "out", out));
    return CLASP_OK;
}

clasp_status clasp_add_scaled(const clasp_tensor *a, float alpha, const clasp_tensor *b,
                              clasp_tensor *out)
{
    static const char op[] = "clasp_add_scaled";
    CLASP_TRY(check_binary(op, a, b, out));
    if (!a->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(a->ctx, "elementwise", NULL, "add_scaled", &k));
    cl_mem ma = clasp_mem(a), mb = clasp_mem(b), mo = clasp_mem(out);
    cl_uint n = (cl_uint)a->numel;
    cl_float al = alpha;
    CLASP_TRY(clasp_kernel_args(k, 5, KARG(ma), KARG(al), KARG(mb), KARG(mo), KARG(n)));
    clasp_tensor_touch(out);
    return clasp_ops_launch_1d(a->ctx, k, "add_scaled", a->numel, 256);
}

clasp_status clasp_mul(const clasp_tensor *a, const clasp_tensor *b, clasp_tensor *out)
{
    static const char op[] = "clasp_mul";
    CLASP_TRY(check_binary(op, a, b, out));
    if (!a->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(a->ctx, "elementwise", NULL, "mul", &k));
    cl_mem ma = clasp_mem(a), mb = clasp_mem(b), mo = clasp_mem(out);
    cl_uint n = (cl_uint)a->numel;
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(ma), KARG(mb), KARG(mo), KARG(n)));
    clasp_tensor_touch(out);
    return clasp_ops_launch_1d(a->ctx, k, "mul", a->numel, 256);
}

clasp_status clasp_scale_per_sample(clasp_tensor *x, const clasp_tensor *s)
{
    static const char op[] = "clasp_scale_per_sample";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "s", s, CLASP_F32));
    CLASP_TRY(check_rows(op, "x", x));
    CLASP_TRY(check_per_example(op, "x", x, "s", s));
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "elementwise", NULL, "scale_per_sample", &k));
    cl_mem mx = clasp_mem(x), ms = clasp_mem(s);
    cl_uint n = (cl_uint)x->numel, d = (cl_uint)(x->numel / (size_t)x->shape[0]);
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(mx), KARG(ms), KARG(n), KARG(d)));
    return clasp_ops_launch_1d(x->ctx, k, "scale_per_sample", x->numel, 256);
}

clasp_status clasp_select_rows(clasp_tensor *dst, const clasp_tensor *src, const clasp_tensor *mask)
{
    static const char op[] = "clasp_select_rows";
    if (!dst || !src)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is NULL", op, dst ? "src" : "dst");
    CLASP_TRY(clasp_ops_check_tensor(op, "dst", dst, dst->dtype));
    CLASP_TRY(clasp_ops_check_tensor(op, "src", src, dst->dtype));
    CLASP_TRY(clasp_ops_check_tensor(op, "mask", mask, CLASP_I32));
    CLASP_TRY(check_same(op, "dst", dst, "src", src));
    CLASP_TRY(check_rows(op, "dst", dst));
    CLASP_TRY(check_per_example(op, "dst", dst, "mask", mask));
    if (!dst->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(dst->ctx, "elementwise", NULL, "select_rows", &k));
    cl_mem md = clasp_mem(dst), ms = clasp_mem(src), mm = clasp_mem(mask);
    cl_uint n = (cl_uint)dst->numel, d = (cl_uint)(dst->numel / (size_t)dst->shape[0]);
    CLASP_TRY(clasp_kernel_args(k, 5, KARG(md), KARG(ms), KARG(mm), KARG(n), KARG(d)));
    return clasp_ops_launch_1d(dst->ctx, k, "select_rows", dst->numel, 256);
}

clasp_status clasp_logit_adjust(clasp_tensor *z, const clasp_tensor *b, float t)
{
    static const char op[] = "clasp_logit_adjust";
    CLASP_TRY(clasp_ops_check_tensor(op, "z", z, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "b", b, CLASP_F32));
    CLASP_TRY(check_rows(op, "z", z));
    if (!(t > 0) || isinf(t))
        return clasp_error(CLASP_ERR_INVALID, "%s: temperature %g must be positive and finite", op,
                           (double)t);
    if (z->ctx != b->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: z and b belong to different contexts", op);
    size_t rows = (size_t)z->shape[0];
    size_t kcls = rows ? z->numel / rows : 0;
    if (rows && b->numel != kcls) {
        char sz[64], sb[64];
        clasp_ops_shape_str(z, sz, sizeof sz);
        clasp_ops_shape_str(b, sb, sizeof sb);
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: z %s has %zu classes per row but b %s has %zu elements", op, sz,
                           kcls, sb, b->numel);
    }
    if (!z->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(z->ctx, "elementwise", NULL, "logit_adjust", &k));
    cl_mem mz = clasp_mem(z), mb = clasp_mem(b);
    cl_uint n = (cl_uint)z->numel, kk = (cl_uint)kcls;
    cl_float tt = t;
    cl_int divide = t != 1.0f;
    CLASP_TRY(
        clasp_kernel_args(k, 6, KARG(mz), KARG(mb), KARG(n), KARG(kk), KARG(tt), KARG(divide)));
    return clasp_ops_launch_1d(z->ctx, k, "logit_adjust", z->numel, 256);
}

/* The three tanh ops share a shape: two or three same-sized float tensors. */
static clasp_status tanh_op(const char *op, const char *kname, const char *prof,
                            const clasp_tensor *in, const char *in_name, const clasp_tensor *in2,
                            const char *in2_name, clasp_tensor *out, const char *out_name)
{
    CLASP_TRY(clasp_ops_check_tensor(op, in_name, in, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, out_name, out, CLASP_F32));
    CLASP_TRY(check_same(op, in_name, in, out_name, out));
    if (in2) {
        CLASP_TRY(clasp_ops_check_tensor(op, in2_name, in2, CLASP_F32));
        CLASP_TRY(check_same(op, in_name, in, in2_name, in2));
    }
    if (!in->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(in->ctx, "elementwise", NULL, kname, &k));
    cl_mem mi = clasp_mem(in), mo = clasp_mem(out);
    cl_uint n = (cl_uint)in->numel;
    if (in2) {
        cl_mem m2 = clasp_mem(in2);
        CLASP_TRY(clasp_kernel_args(k, 4, KARG(mi), KARG(m2), KARG(mo), KARG(n)));
    } else {
        CLASP_TRY(clasp_kernel_args(k, 3, KARG(mi), KARG(mo), KARG(n)));
    }
    return clasp_ops_launch_1d(in->ctx, k, prof, in->numel, 256);
}

clasp_status clasp_tanh_to_box(const clasp_tensor *w, clasp_tensor *x)
{
    return tanh_op("clasp_tanh_to_box", "tanh_to_box", "tanh_to_box", w, "w", NULL, NULL, x, "x");
}

clasp_status clasp_box_to_tanh(const clasp_tensor *x, clasp_tensor *w)
{
    return tanh_op("clasp_box_to_tanh", "box_to_tanh", "box_to_tanh", x, "x", NULL, NULL, w, "w");
}

clasp_status clasp_tanh_to_box_backward(const clasp_tensor *w, const clasp_tensor *dx,
                                        clasp_tensor *dw)
{
    if (!dx) return clasp_error(CLASP_ERR_INVALID, "clasp_tanh_to_box_backward: dx is NULL");
    return tanh_op("clasp_tanh_to_box_backward", "tanh_to_box_backward", "tanh_to_box_backward", w,
                   "w", dx, "dx", dw, "dw");
}
