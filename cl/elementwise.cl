/* Elementwise kernels: one work-item per element. Global sizes are rounded
 * up to the work-group size by the host, so every kernel checks its index.
 * Pointers are not `restrict`: several ops allow the output to alias an
 * input, and the per-element read-then-write order keeps that safe. */

/* clasp_tensor_fill: one 32-bit pattern (a float's or an int32's bits) into
 * n words. A kernel rather than clEnqueueFillBuffer because Oclgrind's
 * uninitialised-value check does not count a fill command as a write, and
 * would report every later read of a cleared buffer. */
__kernel void fill_u32(__global uint *x, const uint value, const ulong n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = value;
}

__kernel void clamp_f32(__global float *x, const uint n, const float lo, const float hi)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = fmin(fmax(x[i], lo), hi);
}

__kernel void project_linf(__global float *x, __global const float *x0, const uint n,
                           const float eps)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float c = x0[i];
    x[i] = fmin(fmax(x[i], c - eps), c + eps);
}

/* sign() is 0 for 0 and NaN, so a vanishing gradient leaves x alone. */
__kernel void sign_step(__global float *x, __global const float *g, const uint n,
                        const float alpha)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = x[i] + alpha * sign(g[i]);
}

/* The same three steps as sign_step, project_linf and clamp_f32, in the
 * same order and with the same roundings, so the fused form gives
 * bit-identical results while touching memory once. */
__kernel void pgd_step(__global float *x, __global const float *g, __global const float *x0,
                       const uint n, const float alpha, const float eps, const float lo,
                       const float hi)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float c = x0[i];
    float v = x[i] + alpha * sign(g[i]);
    v = fmin(fmax(v, c - eps), c + eps);
    x[i] = fmin(fmax(v, lo), hi);
}

/* clasp_apgd_step: the sign step with the example's step size, projected,
 * then the momentum mix, projected again; x_prev takes the old x. Each
 * element is read and written by its own work-item only, so the update is
 * in place. d is the number of elements per example. */
__kernel void apgd_step(__global float *x, __global float *xp, __global const float *g,
                        __global const float *x0, __global const float *eta, const uint n,
                        const uint d, const float a, const float eps, const float lo,
                        const float hi)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float c = x0[i], xi = x[i];
    float z = xi + eta[i / d] * sign(g[i]);
    z = fmin(fmax(fmin(fmax(z, c - eps), c + eps), lo), hi);
    float v = xi + (z - xi) * a + (xi - xp[i]) * (1.0f - a);
    v = fmin(fmax(fmin(fmax(v, c - eps), c + eps), lo), hi);
    xp[i] = xi;
    x[i] = v;
}

/* One work-group per example: a strided pass then a tree in local memory.
 * The local size is a power of two. A fixed reduction order keeps the
 * result the same from run to run. */
__kernel void l2_norm_rows(__global const float *x, const uint d, __global float *out,
                           __local float *scratch)
{
    size_t row = get_group_id(0);
    uint lid = (uint)get_local_id(0), ls = (uint)get_local_size(0);
    __global const float *xr = x + row * (size_t)d;
    float s = 0.0f;
    for (uint j = lid; j < d; j += ls) s += xr[j] * xr[j];
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = ls / 2; off > 0; off /= 2) {
        if (lid < off) scratch[lid] += scratch[lid + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[row] = sqrt(scratch[0]);
}

__kernel void axpy(__global float *y, const float alpha, __global const float *x, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    y[i] = y[i] + alpha * x[i];
}

__kernel void scale(__global float *x, const float alpha, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = x[i] * alpha;
}

__kernel void add_scaled(__global const float *a, const float alpha, __global const float *b,
                         __global float *out, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    out[i] = a[i] + alpha * b[i];
}

__kernel void mul(__global const float *a, __global const float *b, __global float *out,
                  const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    out[i] = a[i] * b[i];
}

__kernel void scale_per_sample(__global float *x, __global const float *s, const uint n,
                               const uint d)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = x[i] * s[i / d];
}

/* Copies raw 32-bit words so it works for float and int32 alike and keeps
 * NaN payloads untouched. */
__kernel void select_rows(__global uint *dst, __global const uint *src,
                          __global const int *mask, const uint n, const uint d)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    if (mask[i / d] != 0) dst[i] = src[i];
}

/* Dividing only when t != 1 makes t = 1 exact even where division is not
 * correctly rounded (OpenCL allows 2.5 ulp). */
__kernel void logit_adjust(__global float *z, __global const float *b, const uint n,
                           const uint k, const float t, const int divide)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = z[i] + b[i % k];
    z[i] = divide ? v / t : v;
}

__kernel void tanh_to_box(__global const float *w, __global float *x, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    x[i] = (tanh(w[i]) + 1.0f) * 0.5f;
}

/* The clamp keeps atanh finite for pixels at exactly 0 or 1. */
__kernel void box_to_tanh(__global const float *x, __global float *w, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = 2.0f * x[i] - 1.0f;
    v = fmin(fmax(v, -1.0f + 1e-6f), 1.0f - 1e-6f);
    w[i] = atanh(v);
}

__kernel void tanh_to_box_backward(__global const float *w, __global const float *dx,
                                   __global float *dw, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float t = tanh(w[i]);
    dw[i] = dx[i] * (1.0f - t * t) * 0.5f;
}
