/* Convolution helpers around GEMM.
 *
 * A chunk of NB images is lowered to a column matrix cols[K, NCOLS] with
 * row r = (c*KH + kh)*KW + kw (K = C*KH*KW) and column j = n*P + oh*OW + ow
 * (P = OH*OW, NCOLS = NB*P), so one GEMM W[O,K] * cols gives yt[O, NCOLS]:
 * every image of the chunk in a single large GEMM. yt is "channel-major"
 * ([O, NB, P]); conv_out moves it to NCHW (contiguous rows of P floats, so
 * the move is cheap) and adds the bias on the way.
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

/* gws = (OW, OH, NB*C). xp holds the chunk's planes already padded (Hp x
 * Wp, see pad_planes; the input itself when pad is 0), starting at element
 * xp_off. Each work-item writes the KH*KW column entries of one output
 * position and one input channel. The window loops are unrolled (fully
 * when their bounds are compile-time constants) so the body is
 * straight-line code. */
__kernel void im2col(__global const float *restrict xp, int xp_off, int C, int Hp, int Wp,
                     int KH, int KW, int stride, int OH, int OW, int ncols,
                     __global float *restrict cols)
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
    __global float *out = cols + c * KH_ * KW_ * ncols + n * OH * OW + oh * OW + ow;
UNROLL
    for (int kh = 0; kh < KH_; kh++) {
UNROLL
        for (int kw = 0; kw < KW_; kw++)
            out[(kh * KW_ + kw) * ncols] = win[kh * Wp + kw];
    }
}

/* The adjoint of im2col in gather form: every input element sums the
 * column entries it was copied to, so there are no write conflicts and the
 * result is deterministic. gws = (W, H, NB*C). */
__kernel void col2im(__global const float *restrict cols, int C, int H, int W, int KH,
                     int KW, int stride, int pad, int OH, int OW, int ncols,
                     __global float *restrict dx, int dx_off)
{
    int w = get_global_id(0);
    int h = get_global_id(1);
    int nc = get_global_id(2);
    int n = nc / C;
    int c = nc - n * C;
    if (w >= W || h >= H) return;
    __global const float *base = cols + c * KH_ * KW_ * ncols + n * OH * OW;
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
 * dyt[O, NCOLS]. gws = (P, NB*O). */
__kernel void conv_dy_t(__global const float *restrict dy, int dy_off, int NB, int O,
                        int P, __global float *restrict dyt)
{
    int p = get_global_id(0);
    int no = get_global_id(1);
    int n = no / O; /* uniform: before the guard so it can be hoisted */
    int o = no - n * O;
    int ncols = NB * P;
    if (p >= P || no >= NB * O) return;
    dyt[o * ncols + n * P + p] = dy[dy_off + no * P + p];
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
