/* Convolution helpers around GEMM.
 *
 * A chunk of NB images is lowered to a column matrix cols[K, NCOLS] with
 * row r = (c*KH + kh)*KW + kw (K = C*KH*KW) and column j = n*P + oh*OW + ow
 * (P = OH*OW, NCOLS = NB*P), so one GEMM W[O,K] * cols gives yt[O, NCOLS]:
 * every image of the chunk in a single large GEMM. yt is "channel-major"
 * ([O, NB, P]); conv_out_v moves it to NCHW (contiguous rows of P floats,
 * so the move is cheap) and adds the bias on the way.
 *
 * For clasp_gemm_packed_b on CPU devices, im2col, im2col_s1, conv_dy_t
 * and conv_dy_t_v also write their matrix packed in 16-column panels
 * (col_at; `panel` = rows * 16, 0 for the plain layout above).
 *
 * im2col and col2im run one work-group per (image, channel) plane with
 * work-items laid out like the plane (dimension 0 along a row), so no
 * work-item divides its id and neighbours touch neighbouring addresses
 * (vector lanes on CPUs, coalesced accesses on GPUs).
 *
 * Built with -DCONV_KH=.. -DCONV_KW=.. -DCONV_STRIDE=.. the window loops
 * have constant trip counts and the stride divisions become shifts or
 * vanish: the unrolled loop body is straight-line code that the CPU
 * compilers vectorise across work-items. Without them the same kernels
 * read the runtime arguments.
 *
 * Further down: vector variants for CPU devices (conv_out_v, conv_dy_t_v,
 * im2col_s1, col2im_s1) and direct kernels for one input channel
 * (conv1_fwd, conv1_bwd_dx), which hold pixels in explicit float16 vectors
 * instead of relying on the implicit vectoriser.
 *
 * One source, three kinds of program, so that none compiles kernels it
 * never runs (compilation is most of a cold first run): without CONV_KH the
 * kernels that take no window size; with CONV_KH/KW/STRIDE the im2col
 * family for that window; with CONV_DIRECT1 as well the one-channel direct
 * kernels.
 *
 * Indices are int: the host keeps chunks (and whole tensors) below 2^31
 * elements. */

#ifdef CONV_KH
#define KH_ CONV_KH
#else
#define KH_ KH
#endif
#ifdef CONV_KW
#define KW_ CONV_KW
#else
#define KW_ KW
#endif
#ifdef CONV_STRIDE
#define STRIDE_ CONV_STRIDE
#else
#define STRIDE_ stride
#endif
/* Unrolling needs constant trip counts; asking for it without them only
 * earns a compiler warning. */
#if defined(CONV_KH) && defined(CONV_KW)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL
#endif

/* Where column j of a column matrix starts. With panel == 0 the matrix is
 * plain row-major ([rows, ncols], row stride ncols); otherwise it is
 * packed for clasp_gemm_packed_b: 16-column panels `panel` floats apart
 * (rows * 16), each row of a panel 16 contiguous floats (row stride 16). */
inline int col_at(int j, int panel)
{
    return panel ? (j >> 4) * panel + (j & 15) : j;
}

#ifndef CONV_KH /* the generic program: kernels that take no window size */

/* Copies the chunk's planes into zero-bordered planes of (H+2*pad) x
 * (W+2*pad), so that im2col needs no bounds checks (its loads become
 * plain vector loads on CPUs). The copy is 1/(KH*KW) of im2col's output.
 * gws = (W+2*pad, H+2*pad, NB*C). */
__kernel void pad_planes(__global const float *restrict x, int x_off, int H, int W, int pad,
                         __global float *restrict xp)
{
    int j = get_global_id(0);
    int i = get_global_id(1);
    int nc = get_global_id(2);
    int Hp = H + 2 * pad, Wp = W + 2 * pad;
    if (j >= Wp || i >= Hp) return;
    int ih = i - pad, iw = j - pad;
    float v = 0.0f;
    if ((uint)ih < (uint)H && (uint)iw < (uint)W) v = x[x_off + (nc * H + ih) * W + iw];
    xp[(nc * Hp + i) * Wp + j] = v;
}

#endif

#if defined(CONV_KH) && !defined(CONV_DIRECT1)

/* gws = (OW, OH, NB*C). xp holds the chunk's planes already padded (Hp x
 * Wp, see pad_planes; the input itself when pad is 0), starting at element
 * xp_off. Each work-item writes the KH*KW column entries of one output
 * position and one input channel. The window loops are unrolled (fully
 * when their bounds are compile-time constants) so the body is
 * straight-line code. */
__kernel void im2col(__global const float *restrict xp, int xp_off, int C, int Hp, int Wp,
                     int KH, int KW, int stride, int OH, int OW, int ncols,
                     __global float *restrict cols, int cols_off, int panel)
{
    int ow = get_global_id(0);
    int oh = get_global_id(1);
    int nc = get_global_id(2);
    /* Uniform over the work-group: computed before the bounds check so the
     * compiler can hoist the division out of the work-item loops. */
    int n = nc / C;
    int c = nc - n * C;
    if (ow >= OW || oh >= OH) return;
    __global const float *win = xp + xp_off + (nc * Hp + oh * STRIDE_) * Wp + ow * STRIDE_;
    const int rs = panel ? 16 : ncols;
    __global float *out =
        cols + cols_off + c * KH_ * KW_ * rs + col_at(n * OH * OW + oh * OW + ow, panel);
UNROLL
    for (int kh = 0; kh < KH_; kh++) {
UNROLL
        for (int kw = 0; kw < KW_; kw++)
            out[(kh * KW_ + kw) * rs] = win[kh * Wp + kw];
    }
}

/* The adjoint of im2col in gather form: every input element sums the
 * column entries it was copied to, so there are no write conflicts and the
 * result is deterministic. gws = (W, H, NB*C). */
__kernel void col2im(__global const float *restrict cols, int cols_off, int C, int H, int W,
                     int KH, int KW, int stride, int pad, int OH, int OW, int ncols,
                     __global float *restrict dx, int dx_off)
{
    int w = get_global_id(0);
    int h = get_global_id(1);
    int nc = get_global_id(2);
    int n = nc / C;
    int c = nc - n * C;
    if (w >= W || h >= H) return;
    __global const float *base = cols + cols_off + c * KH_ * KW_ * ncols + n * OH * OW;
    float acc = 0.0f;
    /* Output row oh sees input row h through kernel row kh when
     * oh*stride + kh = h + pad. */
UNROLL
    for (int kh = 0; kh < KH_; kh++) {
        int th = h + pad - kh;
        int oh = th / STRIDE_;
        int row_ok = th >= 0 && oh * STRIDE_ == th && oh < OH;
UNROLL
        for (int kw = 0; kw < KW_; kw++) {
            int tw = w + pad - kw;
            int ow = tw / STRIDE_;
            if (row_ok && tw >= 0 && ow * STRIDE_ == tw && ow < OW)
                acc += base[(kh * KW_ + kw) * ncols + oh * OW + ow];
        }
    }
    dx[dx_off + nc * H * W + h * W + w] = acc;
}

#endif

#ifndef CONV_KH

/* yt[O, NCOLS] (channel-major) -> y[n0 + n, o, :] (NCHW) plus b[o] when
 * has_bias. gws = (P, NB*O). */
__kernel void conv_out(__global const float *restrict yt, int NB, int O, int P,
                       __global const float *restrict b, int has_bias,
                       __global float *restrict y, int y_off)
{
    int p = get_global_id(0);
    int no = get_global_id(1);
    int n = no / O; /* uniform: before the guard so it can be hoisted */
    int o = no - n * O;
    int ncols = NB * P;
    if (p >= P || no >= NB * O) return;
    float bias = has_bias ? b[o] : 0.0f;
    y[y_off + no * P + p] = yt[o * ncols + n * P + p] + bias;
}

/* The inverse move for the backward pass: dy[n0 + n, o, :] (NCHW) ->
 * dyt[O, NCOLS], plain or packed (col_at). gws = (P, NB*O). */
__kernel void conv_dy_t(__global const float *restrict dy, int dy_off, int NB, int O,
                        int P, __global float *restrict dyt, int panel)
{
    int p = get_global_id(0);
    int no = get_global_id(1);
    int n = no / O; /* uniform: before the guard so it can be hoisted */
    int o = no - n * O;
    int ncols = NB * P;
    if (p >= P || no >= NB * O) return;
    dyt[o * (panel ? 16 : ncols) + col_at(n * P + p, panel)] = dy[dy_off + no * P + p];
}

/* y[n, o] += b[o] for y[N, O] (the linear layer's epilogue). gws = (O, N). */
__kernel void bias_add_rows(__global float *restrict y, __global const float *restrict b,
                            int O, int N)
{
    int o = get_global_id(0);
    int n = get_global_id(1);
    if (o >= O || n >= N) return;
    y[n * O + o] += b[o];
}

/* db[o] = sum over n of dy[n, o] for dy[N, O]: one work-item per column
 * summing down it in order, which is deterministic and reads whole rows
 * across neighbouring work-items. gws = (O). */
__kernel void bias_grad_cols(__global const float *restrict dy, int N, int O,
                             __global float *restrict db)
{
    int o = get_global_id(0);
    if (o >= O) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dy[n * O + o];
    db[o] = acc;
}

/* db[o] = sum over n, p of dy[n, o, p] for dy[N, O, P]: one work-group of
 * BG_LWS items per channel. Each item sums a fixed strided subset, then a
 * tree reduction in local memory; the order is fixed, so results are
 * deterministic. gws = (O * BG_LWS), lws = (BG_LWS). */
#define BG_LWS 64
__kernel __attribute__((reqd_work_group_size(BG_LWS, 1, 1)))
void bias_grad_planes(__global const float *restrict dy, int N, int O, int P,
                      __global float *restrict db)
{
    __local float part[BG_LWS];
    int o = get_group_id(0);
    int l = get_local_id(0);
    float acc = 0.0f;
    /* Loop bounds are the same for every work-item (the offset l goes into
     * the index instead), which lets CPU compilers run the work-items of a
     * group as vector lanes inside the loops. */
    for (int n = 0; n < N; n++) {
        __global const float *row = dy + (n * O + o) * P;
        for (int p0 = 0; p0 < P; p0 += BG_LWS)
            if (p0 + l < P) acc += row[p0 + l];
    }
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BG_LWS / 2; s > 0; s >>= 1) {
        if (l < s) part[l] += part[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) db[o] = part[0];
}

#endif

/* The direct kernels give each work-item a strip of C1_VEC neighbouring
 * pixels of one row held in explicit float16 vectors: PoCL's implicit
 * vectoriser across work-items gives up on these loop nests (checked in
 * the generated code: scalar FMAs), explicit vectors do not depend on it. */
#define C1_VEC 16

/* Stores the first `rem` lanes of v at p (all 16 when rem >= 16). The
 * partial store goes by halves, so the vectors need not be spilled and
 * picked apart lane by lane. */
static inline void c1_store(float16 v, int rem, __global float *p)
{
    if (rem >= C1_VEC) {
        vstore16(v, 0, p);
        return;
    }
    float8 r8 = v.lo;
    if (rem & 8) {
        vstore8(v.lo, 0, p);
        r8 = v.hi;
        p += 8;
    }
    float4 r4 = r8.lo;
    if (rem & 4) {
        vstore4(r8.lo, 0, p);
        r4 = r8.hi;
        p += 4;
    }
    float2 r2 = r4.lo;
    if (rem & 2) {
        vstore2(r4.lo, 0, p);
        r2 = r4.hi;
        p += 2;
    }
    if (rem & 1) p[0] = r2.x;
}

/* Stores the first min(rem, C1_VEC) lanes of v as columns j, j+1, ... of
 * one row of a column matrix (row: where the row's column 0 would be; see
 * col_at). Packed, a run may cross into the next 16-column panel: the part
 * beyond it is shifted down and stored at the start of that panel. */
static inline void c1_store_cols(float16 v, int rem, __global float *row, int j, int panel)
{
    if (!panel) {
        c1_store(v, rem, row + j);
        return;
    }
    const int r = min(rem, C1_VEC), a = 16 - (j & 15);
    if (r <= a) {
        c1_store(v, r, row + col_at(j, panel));
        return;
    }
    c1_store(v, a, row + col_at(j, panel));
    const uint16 lane = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    c1_store(shuffle(v, (lane + (uint)a) & 15u), r - a, row + col_at(j + a, panel));
}

/* The C1_VEC floats at p, or when `whole` is 0 (they may run past the end
 * of the buffer) only the first `rem`, loaded one by one. */
static inline float16 c1_load_tail(__global const float *p, int rem, int whole)
{
    if (whole) return vload16(0, p);
    float t[C1_VEC];
    for (int i = 0; i < C1_VEC; i++) t[i] = i < rem ? p[i] : 0.0f;
    return vload16(0, t);
}

#ifndef CONV_KH

/* conv_out on vectors: one work-item per (image, channel) row of P floats,
 * copied C1_VEC at a time. `total` is the number of floats in yt, which
 * bounds the whole-vector loads. gws = (NB*O). */
__kernel void conv_out_v(__global const float *restrict yt, int NB, int O, int P,
                         __global const float *restrict b, int has_bias,
                         __global float *restrict y, int y_off, int total)
{
    int no = get_global_id(0);
    if (no >= NB * O) return;
    int n = no / O;
    int o = no - n * O;
    int src = o * NB * P + n * P;
    float16 bias = (float16)(has_bias ? b[o] : 0.0f);
    __global float *dst = y + y_off + no * P;
    for (int x0 = 0; x0 < P; x0 += C1_VEC) {
        float16 v = c1_load_tail(yt + src + x0, P - x0, src + x0 + C1_VEC <= total);
        c1_store(v + bias, P - x0, dst + x0);
    }
}

/* conv_dy_t on vectors, likewise: `total` is the number of floats in dy;
 * dyt plain or packed (panel != 0). gws = (NB*O). */
__kernel void conv_dy_t_v(__global const float *restrict dy, int dy_off, int NB, int O, int P,
                          __global float *restrict dyt, int total, int panel)
{
    int no = get_global_id(0);
    if (no >= NB * O) return;
    int n = no / O;
    int o = no - n * O;
    int src = dy_off + no * P;
    __global float *dst = dyt + o * (panel ? 16 : NB * P);
    for (int x0 = 0; x0 < P; x0 += C1_VEC)
        c1_store_cols(c1_load_tail(dy + src + x0, P - x0, src + x0 + C1_VEC <= total), P - x0,
                      dst, n * P + x0, panel);
}

/* ---- direct kernels for one input channel, stride 1 -----------------------
 *
 * With C = 1 (the first layer of an image model) im2col + GEMM is a poor
 * fit: the GEMM's K is only KH*KW (25 for 5x5), so it streams a column
 * matrix KH*KW times the size of the input to do little work per element.
 * These kernels compute the convolution directly instead. They exist only
 * in the programs built with the window size (-DCONV_KH, -DCONV_KW; their
 * accumulator arrays are sized by it) and -DCONV_DIRECT1. */
#endif

#if defined(CONV_KH) && defined(CONV_KW) && defined(CONV_DIRECT1)

/* Output channels per conv1_fwd work-item: CONV_OB float16 accumulators
 * stay in the vector registers (32 on AVX-512) next to the input vector,
 * and every input load feeds CONV_OB multiply-adds. */
#ifndef CONV_OB
#define CONV_OB 16
#endif

/* Copies planes x[n0 + i] (H x W) into zero-bordered planes of Hq x Wq with
 * the image at row and column `pad`; Hq and Wq may exceed H + 2*pad (the
 * extra is zero), which gives conv1_fwd slack to read whole vectors past
 * the last output column. gws = (Wq, Hq, planes). */
__kernel void pad_planes_to(__global const float *restrict x, int x_off, int H, int W,
                            int pad, int Hq, int Wq, __global float *restrict xq)
{
    int j = get_global_id(0);
    int i = get_global_id(1);
    int pl = get_global_id(2);
    if (j >= Wq || i >= Hq) return;
    int ih = i - pad, iw = j - pad;
    float v = 0.0f;
    if ((uint)ih < (uint)H && (uint)iw < (uint)W) v = x[x_off + (pl * H + ih) * W + iw];
    xq[(pl * Hq + i) * Wq + j] = v;
}

/* y[n0+n, o, oh, ow] = b[o] + sum_kh,kw w[o, kh, kw] * xq[n, oh+kh, ow+kw]
 * for one input channel and stride 1. xq holds the chunk's padded planes
 * (pad_planes_to) with Wq >= round_up(OW, C1_VEC) + KW - 1 columns and
 * Hq = OH + KH - 1 rows, so whole-vector loads stay inside a plane's row;
 * lanes past the last column compute values that are not stored.
 * gws = (ceil(OW / C1_VEC), OH, NB * ceil(O / CONV_OB)). */
__kernel void conv1_fwd(__global const float *restrict xq, int Hq, int Wq,
                        __global const float *restrict w, __global const float *restrict b,
                        int has_bias, int O, int OH, int OW, __global float *restrict y,
                        int y_off)
{
    int x0 = get_global_id(0) * C1_VEC;
    int oh = get_global_id(1);
    int z = get_global_id(2);
    int groups = (O + CONV_OB - 1) / CONV_OB;
    int n = z / groups;
    int o0 = (z - n * groups) * CONV_OB;
    if (x0 >= OW || oh >= OH) return;
    __global const float *in = xq + (n * Hq + oh) * Wq + x0;
    float16 acc[CONV_OB];
    if (o0 + CONV_OB <= O) {
        /* A whole group: the weights sit at constant offsets from wg, so
         * each multiply-add takes its weight as a broadcast memory operand. */
        __global const float *wg = w + o0 * KH_ * KW_;
#pragma unroll
        for (int j = 0; j < CONV_OB; j++) acc[j] = (float16)(has_bias ? b[o0 + j] : 0.0f);
        /* The kernel-row loop stays rolled: with it unrolled too, LLVM
         * hoists all KH*KW*CONV_OB weight addresses out of PoCL's
         * work-item loops and spills them, one extra load per FMA. */
#pragma unroll 1
        for (int kh = 0; kh < KH_; kh++) {
            __global const float *wr = wg + kh * KW_;
            __global const float *ir = in + kh * Wq;
UNROLL
            for (int kw = 0; kw < KW_; kw++) {
                float16 v = vload16(0, ir + kw);
#pragma unroll
                for (int j = 0; j < CONV_OB; j++)
                    acc[j] = fma((float16)(wr[j * KH_ * KW_ + kw]), v, acc[j]);
            }
        }
    } else {
        /* The last, partial group: channels past O repeat channel O-1 (in
         * bounds, not stored). */
#pragma unroll
        for (int j = 0; j < CONV_OB; j++) {
            int o = min(o0 + j, O - 1);
            acc[j] = (float16)(has_bias ? b[o] : 0.0f);
        }
UNROLL
        for (int kh = 0; kh < KH_; kh++) {
UNROLL
            for (int kw = 0; kw < KW_; kw++) {
                float16 v = vload16(0, in + kh * Wq + kw);
#pragma unroll
                for (int j = 0; j < CONV_OB; j++) {
                    int o = min(o0 + j, O - 1);
                    acc[j] = fma((float16)(w[(o * KH_ + kh) * KW_ + kw]), v, acc[j]);
                }
            }
        }
    }
    int rem = OW - x0;
    __global float *out = y + y_off + ((n * O + o0) * OH + oh) * OW + x0;
#pragma unroll
    for (int j = 0; j < CONV_OB; j++)
        if (o0 + j < O) c1_store(acc[j], rem, out + j * OH * OW);
}

/* The C1_VEC floats at p with the lanes off in mask m zeroed. `whole`
 * says all 16 lie inside the tensor, so one vector load is safe; otherwise
 * (blocks at the tensor's first and last rows) only the lanes that are on
 * are loaded, one by one. */
static inline float16 c1_load(__global const float *p, int16 m, int whole)
{
    if (whole) return select((float16)(0.0f), vload16(0, p), m);
    int on[C1_VEC];
    float t[C1_VEC];
    vstore16(m, 0, on);
    for (int i = 0; i < C1_VEC; i++) t[i] = on[i] ? p[i] : 0.0f;
    return vload16(0, t);
}

/* Rows and C1_VEC-wide strips of dx per conv1_bwd_dx work-item. */
#define C1_ROWS 4
#define C1_STRIPS 2

/* The input gradient of conv1_fwd in gather form (no atomics):
 * dx[n, h, x] = sum_o sum_kh,kw w[o, kh, kw] * dy[n, o, h+pad-kh, x+pad-kw]
 * over the taps that land inside dy. Each work-item computes a block of
 * C1_ROWS rows by C1_STRIPS * C1_VEC columns: every (shifted) row of dy it
 * loads feeds the up-to-KH output rows of the block that it touches, so
 * loads are shared instead of repeated per output row. Rows of dy outside
 * the plane are skipped (uniform over the work-item), columns outside it
 * are masked lanes. gws = (ceil(W / (C1_STRIPS*C1_VEC)), ceil(H / C1_ROWS), N). */
__kernel void conv1_bwd_dx(__global const float *restrict dy, int O, int OH, int OW, int pad,
                           __global const float *restrict w, int N, int H, int W,
                           __global float *restrict dx)
{
    int x0 = get_global_id(0) * (C1_STRIPS * C1_VEC);
    int h0 = get_global_id(1) * C1_ROWS;
    int n = get_global_id(2);
    if (x0 >= W || h0 >= H) return;
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int16 m[C1_STRIPS][KW_];
#pragma unroll
    for (int s = 0; s < C1_STRIPS; s++) {
UNROLL
        for (int kw = 0; kw < KW_; kw++) {
            int16 col = lane + (x0 + s * C1_VEC + pad - kw);
            m[s][kw] = col >= 0 && col < OW;
        }
    }
    /* Whole-vector loads are safe unless they could reach before the
     * tensor's start or past its end: only blocks at the tensor's first
     * and last rows are near either. */
    int plane = OH * OW;
    int lo = (n * O * OH + max(h0 + pad - KH_ + 1, 0)) * OW + x0 + pad - KW_ + 1;
    int hi = ((n * O + O - 1) * OH + min(h0 + C1_ROWS - 1 + pad, OH - 1)) * OW + x0 + pad +
             C1_STRIPS * C1_VEC;
    int whole = lo >= 0 && hi <= N * O * plane;
    float16 acc[C1_ROWS][C1_STRIPS];
#pragma unroll
    for (int r = 0; r < C1_ROWS; r++)
#pragma unroll
        for (int s = 0; s < C1_STRIPS; s++) acc[r][s] = (float16)(0.0f);
    /* Input row t of the block is dy row h0 + pad - (KH-1) + t; it meets
     * output row r through kernel row kh = r + KH-1 - t. */
    for (int o = 0; o < O; o++) {
        __global const float *pl = dy + (n * O + o) * plane;
        __global const float *wo = w + o * KH_ * KW_;
#pragma unroll
        for (int t = 0; t < C1_ROWS + KH_ - 1; t++) {
            int ih = h0 + pad - (KH_ - 1) + t;
            if ((uint)ih >= (uint)OH) continue;
            __global const float *row = pl + ih * OW + x0 + pad;
UNROLL
            for (int kw = 0; kw < KW_; kw++) {
#pragma unroll
                for (int s = 0; s < C1_STRIPS; s++) {
                    float16 v = c1_load(row + s * C1_VEC - kw, m[s][kw], whole);
#pragma unroll
                    for (int r = 0; r < C1_ROWS; r++) {
                        int kh = r + KH_ - 1 - t;
                        if (kh >= 0 && kh < KH_)
                            acc[r][s] = fma((float16)(wo[kh * KW_ + kw]), v, acc[r][s]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < C1_ROWS; r++) {
        if (h0 + r >= H) break;
#pragma unroll
        for (int s = 0; s < C1_STRIPS; s++)
            if (x0 + s * C1_VEC < W)
                c1_store(acc[r][s], W - x0 - s * C1_VEC,
                         dx + (n * H + h0 + r) * W + x0 + s * C1_VEC);
    }
}

#endif /* CONV_DIRECT1 */

/* ---- stride 1: im2col and col2im on explicit vectors ----------------------
 *
 * The scalar im2col and col2im above compile to scalar code on PoCL (its
 * vectoriser does not take their loop nests). With stride 1 a row of
 * columns is a contiguous run of input, so these variants move C1_VEC
 * floats per instruction. */
#if defined(CONV_KH) && defined(CONV_KW) && !defined(CONV_DIRECT1)

/* im2col for stride 1, plain or packed (col_at). One work-item per
 * (output row, image, channel): for each window offset (kh, kw) the output
 * row's OW columns are input row oh+kh from column kw, copied in vectors
 * of 16. The last vector of a row may read up to 15 floats past the row
 * (the next row, or slack the host leaves after xp) and stores only its
 * valid lanes. gws = (OH, planes = NB*C). */
__kernel void im2col_s1(__global const float *restrict xp, int xp_off, int C, int Hp, int Wp,
                        int OH, int OW, int ncols, __global float *restrict cols, int cols_off,
                        int planes, int panel)
{
    int oh = get_global_id(0);
    int nc = get_global_id(1);
    int n = nc / C;
    int c = nc - n * C;
    if (oh >= OH || nc >= planes) return;
    __global const float *win = xp + xp_off + (nc * Hp + oh) * Wp;
    const int rs = panel ? 16 : ncols;
    __global float *out = cols + cols_off + c * KH_ * KW_ * rs;
    for (int x0 = 0; x0 < OW; x0 += C1_VEC) {
        const int rem = OW - x0, j = n * OH * OW + oh * OW + x0;
UNROLL
        for (int kh = 0; kh < KH_; kh++) {
UNROLL
            for (int kw = 0; kw < KW_; kw++)
                c1_store_cols(vload16(0, win + kh * Wp + kw + x0), rem,
                              out + (kh * KW_ + kw) * rs, j, panel);
        }
    }
}

/* col2im for stride 1, gather form as col2im: dx[n, c, h, x] sums
 * cols[(c, kh, kw), n, oh = h+pad-kh, ow = x+pad-kw] over the valid
 * (oh, ow). One work-item per (input row, image, channel), C1_VEC columns
 * at a time; rows out of range are skipped, columns out of range are
 * masked lanes. The whole-vector loads reach up to KW-1 floats before and
 * C1_VEC+pad floats after the values they use: the host puts that much
 * slack around cols (cols_off before). gws = (H, planes = NB*C). */
__kernel void col2im_s1(__global const float *restrict cols, int cols_off, int C, int H, int W,
                        int pad, int OH, int OW, int ncols, __global float *restrict dx,
                        int dx_off, int planes)
{
    int h = get_global_id(0);
    int nc = get_global_id(1);
    int n = nc / C;
    int c = nc - n * C;
    if (h >= H || nc >= planes) return;
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __global const float *base = cols + cols_off + c * KH_ * KW_ * ncols + n * OH * OW;
    __global float *out = dx + dx_off + (nc * H + h) * W;
    for (int x0 = 0; x0 < W; x0 += C1_VEC) {
        /* Separate sums per kernel row: independent add chains, summed in
         * a fixed order. */
        float16 acc[KH_];
UNROLL
        for (int kh = 0; kh < KH_; kh++) {
            acc[kh] = (float16)(0.0f);
            int oh = h + pad - kh;
            if ((uint)oh >= (uint)OH) continue;
            __global const float *row = base + kh * KW_ * ncols + oh * OW + x0 + pad;
UNROLL
            for (int kw = 0; kw < KW_; kw++) {
                int16 col = lane + (x0 + pad - kw);
                float16 v = vload16(0, row + kw * ncols - kw);
                acc[kh] += select((float16)(0.0f), v, col >= 0 && col < OW);
            }
        }
        float16 s = acc[0];
UNROLL
        for (int kh = 1; kh < KH_; kh++) s += acc[kh];
        c1_store(s, W - x0, out + x0);
    }
}
#endif /* CONV_KH && CONV_KW && !CONV_DIRECT1 */
