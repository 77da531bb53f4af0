/* Batch normalisation and per-channel affine maps on NCHW tensors.
 *
 * A channel's statistics are reduced by one work-group: each work-item
 * adds a fixed strided subset of the channel's N*P elements (P = H*W) with
 * Kahan compensation, then a tree in local memory (power-of-two local size)
 * combines the work-items. The host fixes the local size per device and
 * shape, so the order of additions, and hence every result, is the same on
 * every run; no atomics.
 *
 * The elementwise kernels give a work-item NV neighbouring elements of one
 * plane (NV is a build option: wide vectors on CPU devices, where PoCL's
 * implicit vectoriser is not relied upon, narrow ones on GPUs). */
#ifndef NV
#define NV 4
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define floatV CAT(float, NV)
#define vloadV CAT(vload, NV)
#define vstoreV CAT(vstore, NV)

static inline void kahan_add(float *s, float *c, float v)
{
    float y = v - *c;
    float t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}

/* Sums a[0..L) and b[0..L) in place into a[0] and b[0]; every work-item of
 * the group must call it. Starts and ends with a barrier. */
static void tree_sum2(__local float *a, __local float *b, int l, int L)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = L / 2; s > 0; s >>= 1) {
        if (l < s) {
            a[l] += a[l + s];
            b[l] += b[l + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Train-mode statistics of channel c = group id of x [N,C,P]: the mean in
 * one pass, then the sums of d = x - mean and d^2 in a second one; the
 * first refines the mean (mean += sum d / M) and removes the mean's own
 * rounding from the variance: var = (sum d^2 - (sum d)^2 / M) / M (biased).
 * Writes save_mean, save_invstd, scale = gamma * invstd (for the apply
 * pass) and updates the running statistics with the unbiased variance.
 * The loops have the same bounds in every work-item (the offset l is in
 * the index), so CPU compilers can run a group's work-items as vector
 * lanes. gws = C * L, lws = L; sa and sb hold L floats each. */
__kernel void bn_stats(__global const float *restrict x, int N, int C, int P,
                       __global const float *restrict gamma, float momentum, float eps,
                       __global float *restrict run_mean, __global float *restrict run_var,
                       __global float *restrict save_mean, __global float *restrict save_invstd,
                       __global float *restrict scale, __local float *sa, __local float *sb)
{
    int c = get_group_id(0);
    int l = get_local_id(0), L = get_local_size(0);
    float s = 0.0f, k = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *row = x + ((size_t)n * C + c) * P;
        for (int p0 = 0; p0 < P; p0 += L)
            if (p0 + l < P) kahan_add(&s, &k, row[p0 + l]);
    }
    sa[l] = s;
    sb[l] = 0.0f;
    tree_sum2(sa, sb, l, L);
    float M = (float)N * (float)P;
    float mean = sa[0] / M;
    barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read sa[0] */
    float s1 = 0.0f, k1 = 0.0f, s2 = 0.0f, k2 = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *row = x + ((size_t)n * C + c) * P;
        for (int p0 = 0; p0 < P; p0 += L)
            if (p0 + l < P) {
                float d = row[p0 + l] - mean;
                kahan_add(&s1, &k1, d);
                kahan_add(&s2, &k2, d * d);
            }
    }
    sa[l] = s1;
    sb[l] = s2;
    tree_sum2(sa, sb, l, L);
    if (l == 0) {
        float sd = sa[0];
        mean += sd / M;
        float var = fmax((sb[0] - sd * (sd / M)) / M, 0.0f);
        float inv = 1.0f / sqrt(var + eps);
        save_mean[c] = mean;
        save_invstd[c] = inv;
        scale[c] = gamma[c] * inv;
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean;
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (var * (M / (M - 1.0f)));
    }
}

/* Eval-mode coefficients per channel: invstd = 1/sqrt(running_var + eps),
 * scale = gamma * invstd. gws = C. */
__kernel void bn_eval_coef(__global const float *restrict gamma,
                           __global const float *restrict run_var, float eps, int C,
                           __global float *restrict invstd, __global float *restrict scale)
{
    int c = get_global_id(0);
    if (c >= C) return;
    float inv = 1.0f / sqrt(run_var[c] + eps);
    invstd[c] = inv;
    scale[c] = gamma[c] * inv;
}

/* The sums the backward needs, per channel c = group id of x, dy [N,C,P]:
 * sdy = sum dy and sdx = sum dy * (x - mean). Writes (by the flags)
 * dbeta = sdy, dgamma = sdx * invstd, and the coefficients of
 *   dx = A * dy - B * (x - mean) - D,
 * A = gamma * invstd, B = A * invstd^2 * sdx / M, D = A * sdy / M, into
 * coef [3C] (the train-mode input gradient). Same loop structure as
 * bn_stats. gws = C * L, lws = L. */
#define BN_WANT_DX 1
#define BN_WANT_DGAMMA 2
#define BN_WANT_DBETA 4
__kernel void bn_bwd_reduce(__global const float *restrict x, __global const float *restrict dy,
                            int N, int C, int P, __global const float *restrict mean,
                            __global const float *restrict invstd,
                            __global const float *restrict gamma, int want,
                            __global float *restrict dgamma, __global float *restrict dbeta,
                            __global float *restrict coef, __local float *sa,
                            __local float *sb)
{
    int c = get_group_id(0);
    int l = get_local_id(0), L = get_local_size(0);
    float m = mean[c];
    float s1 = 0.0f, k1 = 0.0f, s2 = 0.0f, k2 = 0.0f;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * C + c) * P;
        __global const float *xr = x + off, *gr = dy + off;
        for (int p0 = 0; p0 < P; p0 += L)
            if (p0 + l < P) {
                float g = gr[p0 + l];
                kahan_add(&s1, &k1, g);
                kahan_add(&s2, &k2, g * (xr[p0 + l] - m));
            }
    }
    sa[l] = s1;
    sb[l] = s2;
    tree_sum2(sa, sb, l, L);
    if (l == 0) {
        float sdy = sa[0], sdx = sb[0], inv = invstd[c];
        if (want & BN_WANT_DGAMMA) dgamma[c] = sdx * inv;
        if (want & BN_WANT_DBETA) dbeta[c] = sdy;
        if (want & BN_WANT_DX) {
            float M = (float)N * (float)P;
            float a = gamma[c] * inv;
            coef[c] = a;
            coef[C + c] = a * inv * inv * (sdx / M);
            coef[2 * C + c] = a * (sdy / M);
        }
    }
}

/* y = (x - m[c]) * a[c] + b[c] over x, y [planes = N*C, P]; without
 * CA_CENTER m is taken as 0, without CA_SHIFT b, without CA_SCALE a as 1.
 * y may be x: each element
 * is read once, then written, by the same work-item (no restrict here).
 * gws = planes * ceil(P / NV), 1-d. */
#define CA_CENTER 1
#define CA_SHIFT 2
#define CA_SCALE 4
__kernel void chan_affine(__global const float *x, int C, int P, int planes,
                          __global const float *restrict m, __global const float *restrict a,
                          __global const float *restrict b, int flags, __global float *y)
{
    int strips = (P + NV - 1) / NV;
    int i = get_global_id(0);
    if (i >= planes * strips) return;
    int pl = i / strips, p0 = (i - pl * strips) * NV;
    int c = pl % C;
    float sc = (flags & CA_SCALE) ? a[c] : 1.0f;
    float sh = (flags & CA_SHIFT) ? b[c] : 0.0f;
    float ce = (flags & CA_CENTER) ? m[c] : 0.0f;
    size_t off = (size_t)pl * P + p0;
    if (p0 + NV <= P) {
        floatV v = vloadV(0, x + off);
        vstoreV((v - ce) * sc + sh, 0, y + off);
    } else {
        for (int j = 0; j < P - p0; j++) y[off + j] = (x[off + j] - ce) * sc + sh;
    }
}

/* Train-mode input gradient dx = A * dy - B * (x - mean) - D with A, B, D
 * from bn_bwd_reduce (coef [3C]); layout and gws as chan_affine. */
__kernel void bn_bwd_dx(__global const float *restrict x, __global const float *restrict dy,
                        int C, int P, int planes, __global const float *restrict mean,
                        __global const float *restrict coef, __global float *restrict dx)
{
    int strips = (P + NV - 1) / NV;
    int i = get_global_id(0);
    if (i >= planes * strips) return;
    int pl = i / strips, p0 = (i - pl * strips) * NV;
    int c = pl % C;
    float m = mean[c], A = coef[c], B = coef[C + c], D = coef[2 * C + c];
    size_t off = (size_t)pl * P + p0;
    if (p0 + NV <= P) {
        floatV g = vloadV(0, dy + off), v = vloadV(0, x + off);
        vstoreV(A * g - B * (v - m) - D, 0, dx + off);
    } else {
        for (int j = 0; j < P - p0; j++)
            dx[off + j] = A * dy[off + j] - B * (x[off + j] - m) - D;
    }
}
