/* Max and average pooling (window k, stride s; max pooling may pad) on NCHW
 * planes. */

/* y and idx [planes, OH, OW]; idx = h*W + w of the window's first maximum
 * in row-major scan order (strict > keeps the first on ties). The window
 * of output (oh, ow) starts at (oh*s - pad, ow*s - pad); positions outside
 * the plane are skipped, as PyTorch's padding with -inf (pad <= k/2, so
 * every window holds at least one element of the plane).
 * gws = (OW, OH, planes): laid out like the output plane, so no work-item
 * divides its id. */
__kernel void maxpool_fwd(__global const float *restrict x, int H, int W, int k, int s,
                          int pad, int OH, int OW, __global float *restrict y,
                          __global int *restrict idx)
{
    int ow = get_global_id(0);
    int oh = get_global_id(1);
    int pl = get_global_id(2);
    if (ow >= OW || oh >= OH) return;
    int p = oh * OW + ow;
    __global const float *plane = x + pl * H * W;
    int h0 = oh * s - pad, w0 = ow * s - pad;
    int hs = max(h0, 0), he = min(h0 + k, H);
    int ws = max(w0, 0), we = min(w0 + k, W);
    int best_i = hs * W + ws;
    float best = plane[best_i];
    for (int h = hs; h < he; h++) {
        int row = h * W;
        for (int w = ws; w < we; w++) {
            float v = plane[row + w];
            if (v > best) {
                best = v;
                best_i = row + w;
            }
        }
    }
    y[pl * OH * OW + p] = best;
    idx[pl * OH * OW + p] = best_i;
}

/* dx plane = sum of dy over the outputs whose idx points at each element.
 * The backward op is not told k and s, so it cannot find the windows that
 * cover an input element; instead one work-item owns a whole plane, zeroes
 * it and adds the plane's outputs in order. Overlapping windows are then
 * summed without atomics, deterministically, and there are N*C planes of
 * parallelism (thousands in a CNN layer). gws = (planes). */
__kernel void maxpool_bwd(__global const float *restrict dy, __global const int *restrict idx,
                          int planes, int HW, int OHW, __global float *restrict dx)
{
    int pl = get_global_id(0);
    if (pl >= planes) return;
    __global float *out = dx + pl * HW;
    for (int i = 0; i < HW; i++) out[i] = 0.0f;
    __global const float *g = dy + pl * OHW;
    __global const int *ix = idx + pl * OHW;
    for (int i = 0; i < OHW; i++) {
        int t = ix[i];
        /* A corrupt index must not write outside the plane. */
        if ((uint)t < (uint)HW) out[t] += g[i];
    }
}

/* ---- 2x2 windows, stride 2, on explicit vectors ----------------------------
 *
 * The common CNN pooling. PoCL compiles maxpool_fwd's window loops mostly
 * to scalar code; here a work-item takes MP_VEC outputs of one row: it
 * loads the two input rows as vectors of 2*MP_VEC floats, splits even and
 * odd columns with shuffles and compares the four window positions in
 * scan order, (0,0), (0,1), (1,0), (1,1), keeping the first maximum on
 * ties (strict >, so a NaN never replaces the current best: the same
 * results as maxpool_fwd). */
#define MP_VEC 16

/* The first `rem` lanes of v at p (all 16 when rem >= 16), stored by halves
 * so nothing past p[rem - 1] is written. */
#define MP_STORE_PART(T, v, rem, p)                                                 \
    do {                                                                            \
        if ((rem) >= MP_VEC) {                                                      \
            vstore16((v), 0, (p));                                                  \
            break;                                                                  \
        }                                                                           \
        __global T *q_ = (p);                                                       \
        T##8 r8_ = (v).lo;                                                          \
        if ((rem) & 8) {                                                            \
            vstore8((v).lo, 0, q_);                                                 \
            r8_ = (v).hi;                                                           \
            q_ += 8;                                                                \
        }                                                                           \
        T##4 r4_ = r8_.lo;                                                          \
        if ((rem) & 4) {                                                            \
            vstore4(r8_.lo, 0, q_);                                                 \
            r4_ = r8_.hi;                                                           \
            q_ += 4;                                                                \
        }                                                                           \
        T##2 r2_ = r4_.lo;                                                          \
        if ((rem) & 2) {                                                            \
            vstore2(r4_.lo, 0, q_);                                                 \
            r2_ = r4_.hi;                                                           \
            q_ += 2;                                                                \
        }                                                                           \
        if ((rem) & 1) q_[0] = r2_.x;                                               \
    } while (0)

/* 2*MP_VEC floats from p: one pair of vector loads when `whole` (they lie
 * inside the tensor), else only the first `valid` one by one (the rest
 * zero; those lanes are not stored). */
static inline void mp_load_row(__global const float *p, int whole, int valid, float16 *a,
                               float16 *b)
{
    if (whole) {
        *a = vload16(0, p);
        *b = vload16(1, p);
        return;
    }
    float t[2 * MP_VEC];
    for (int i = 0; i < 2 * MP_VEC; i++) t[i] = i < valid ? p[i] : 0.0f;
    *a = vload16(0, t);
    *b = vload16(1, t);
}

/* gws = (ceil(OW / MP_VEC), OH, planes); the host may round dimension 2
 * up, hence the plane guard. */
__kernel void maxpool2_fwd(__global const float *restrict x, int H, int W, int OH, int OW,
                           int planes, __global float *restrict y, __global int *restrict idx)
{
    int x0 = get_global_id(0) * MP_VEC;
    int oh = get_global_id(1);
    int pl = get_global_id(2);
    if (x0 >= OW || oh >= OH || pl >= planes) return;
    int r0 = 2 * oh * W + 2 * x0; /* offset in the plane of the strip's first input */
    __global const float *p0 = x + pl * H * W + r0;
    /* The loads reach 2*MP_VEC floats into each of the two rows: past the
     * row's end (harmless, unused lanes) and, at the tensor's last rows,
     * past the buffer; there the lanes are loaded one by one. */
    int whole = pl * H * W + r0 + W + 2 * MP_VEC <= planes * H * W;
    int valid = W - 2 * x0;
    float16 a0, b0, a1, b1;
    mp_load_row(p0, whole, valid, &a0, &b0);
    mp_load_row(p0 + W, whole, valid, &a1, &b1);
    const uint16 ev = (uint16)(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const uint16 od = ev + (uint16)(1);
    float16 v01 = shuffle2(a0, b0, od), v10 = shuffle2(a1, b1, ev), v11 = shuffle2(a1, b1, od);
    float16 best = shuffle2(a0, b0, ev);
    /* Plane offsets of each lane's window position (0,0). */
    int16 base = (int16)(r0) + convert_int16(ev);
    int16 bi = base;
    int16 c = v01 > best;
    best = select(best, v01, c);
    bi = select(bi, base + 1, c);
    c = v10 > best;
    best = select(best, v10, c);
    bi = select(bi, base + W, c);
    c = v11 > best;
    best = select(best, v11, c);
    bi = select(bi, base + W + 1, c);
    int rem = OW - x0;
    int out = (pl * OH + oh) * OW + x0;
    MP_STORE_PART(float, best, rem, y + out);
    MP_STORE_PART(int, bi, rem, idx + out);
}

/* ---- average pooling ------------------------------------------------------
 *
 * Window k, stride s, no padding. The backward gathers instead of
 * scattering: each input element sums, in a fixed order, the outputs of
 * the windows that cover it, so overlapping windows (s < k) need no atomics
 * and every element of dx is written once. Both use a flat 1-d range over
 * their output, guarded. */

/* y [planes, OH, OW] = mean of each k x k window of x [planes, H, W]. */
__kernel void avgpool_fwd(__global const float *restrict x, int H, int W, int k, int s,
                          int OH, int OW, int total, __global float *restrict y)
{
    int i = get_global_id(0);
    if (i >= total) return;
    int ow = i % OW, t = i / OW;
    int oh = t % OH, pl = t / OH;
    __global const float *p = x + (size_t)pl * H * W + (size_t)(oh * s) * W + ow * s;
    float acc = 0.0f;
    for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++) acc += p[kh * W + kw];
    y[i] = acc / (float)(k * k);
}

/* dx [planes, H, W] = sum over the windows (oh, ow) covering (h, w) of
 * dy [planes, OH, OW] / (k*k): oh from ceil((h - k + 1) / s) to h / s,
 * clipped to [0, OH). Elements no window reaches get 0. */
__kernel void avgpool_bwd(__global const float *restrict dy, int H, int W, int k, int s,
                          int OH, int OW, int total, __global float *restrict dx)
{
    int i = get_global_id(0);
    if (i >= total) return;
    int w = i % W, t = i / W;
    int h = t % H, pl = t / H;
    int oh0 = h >= k ? (h - k) / s + 1 : 0, oh1 = min(h / s, OH - 1);
    int ow0 = w >= k ? (w - k) / s + 1 : 0, ow1 = min(w / s, OW - 1);
    __global const float *g = dy + (size_t)pl * OH * OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) acc += g[oh * OW + ow];
    dx[i] = acc / (float)(k * k);
}

/* Zero padding, left/right/top/bottom pixels (l, t are the offsets of x
 * inside y): y [planes, H+t+b, W+l+r], one work-item per output element.
 * The backward is the crop pad_bwd: dx [planes, H, W] = the matching window
 * of dy [planes, OH, OW]. */
__kernel void pad_fwd(__global const float *restrict x, int H, int W, int l, int t, int OH,
                      int OW, int total, __global float *restrict y)
{
    int i = get_global_id(0);
    if (i >= total) return;
    int ow = i % OW, r = i / OW;
    int oh = r % OH, pl = r / OH;
    int h = oh - t, w = ow - l;
    y[i] = h >= 0 && h < H && w >= 0 && w < W ? x[((size_t)pl * H + h) * W + w] : 0.0f;
}

__kernel void pad_bwd(__global const float *restrict dy, int H, int W, int l, int t, int OH,
                      int OW, int total, __global float *restrict dx)
{
    int i = get_global_id(0);
    if (i >= total) return;
    int w = i % W, r = i / W;
    int h = r % H, pl = r / H;
    dx[i] = dy[((size_t)pl * OH + h + t) * OW + w + l];
}
