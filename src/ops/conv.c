/* 2-d convolution as im2col + GEMM, and the bias gradient.
 *
 * Forward, per chunk of NB images: im2col lowers the chunk to
 * cols[K, NB*P] (K = C*KH*KW, P = OH*OW), one GEMM W[O,K] * cols gives
 * yt[O, NB*P], and conv_out moves yt to NCHW adding the bias. Batching the
 * images into one GEMM gives it a wide N dimension, which is what a tuned
 * GEMM needs; per-image GEMMs would be small and launch-bound.
 *
 * Backward, per chunk: dy is moved to dyt[O, NB*P] once, then
 *   dW += dyt * cols^T      (K of the GEMM is NB*P: long, efficient)
 *   dcols = W^T * dyt,  dx = col2im(dcols)   (gather form, no atomics)
 * cols is recomputed from x rather than kept from the forward pass, since
 * the API is stateless and im2col costs far less than the GEMMs.
 *
 * On CPU devices (see clasp_ctx_vector_kernels) the data-movement kernels work on
 * explicit float16 vectors (PoCL's implicit vectoriser leaves the generic
 * ones scalar), and a conv with one input channel and stride 1 (an image
 * model's first layer) skips im2col + GEMM for direct kernels in the
 * forward pass and the input gradient: there the GEMM's K would be just
 * KH*KW. Its weight gradient keeps the GEMM path.
 *
 * On CPU devices the column matrix of the forward pass, and dyt of a
 * backward pass that needs no weight gradient, are written packed in
 * 16-column panels (clasp_gemm_packed_b in ops/gemm_internal.h) when the
 * shapes allow it (conv_panel): the GEMM then reads each panel front to
 * back instead of 64 bytes per row of a matrix thousands of columns wide,
 * which on PoCL cost a TLB miss per row. For ResNet-18 at 32x32 this
 * doubled the PGD attack's throughput (0.2-0.3 -> 0.4-0.6 images/s at
 * batch 16 on a heavily loaded 2-core machine, interleaved runs). The
 * vector kernels split a run of columns that crosses into the next panel
 * (c1_store_cols in cl/conv.cl), so planes of any width pack, and chunks
 * hold whole panels: for the default CNN's 14x14 planes that ran
 * inference 26% and PGD-10 15-22% faster (`clasp bench`, interleaved).
 * The weight gradient's NT product keeps the plain layout.
 *
 * Chunks bound the scratch memory (cols, yt or dyt, padded input planes).
 * On GPUs the bound is 64 MB: few, wide GEMMs. On CPU devices it is an
 * eighth of the last-level cache (4 MB for 32 MB), at most 8 MB, which
 * measured ~10-25% faster than 64 MB chunks on PoCL for the MNIST CNN:
 * im2col's output is still in cache when the GEMM reads it, and the GEMM's
 * N (about a thousand columns) stays wide enough. The cap matters on
 * virtual machines, which may report a socket's whole L3 (480 MB seen)
 * that one process never has to itself. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"
#include "ops/conv_internal.h"
#include "ops/gemm_internal.h"
#include "runtime/internal.h"

#define CONV_SCRATCH_GPU ((size_t)64 << 20)
#define CONV_SCRATCH_CPU_MIN ((size_t)1 << 20)
#define CONV_SCRATCH_CPU_DEFAULT ((size_t)4 << 20)
#define CONV_SCRATCH_CPU_MAX ((size_t)8 << 20)
/* Floats after the padded planes for im2col_s1's whole-vector loads. */
#define IM2COL_SLACK 16

typedef struct conv_geom {
    int n, c, h, w; /* input */
    int o, kh, kw;  /* weights */
    int stride, pad;
    int oh, ow; /* output */
    int k;      /* C*KH*KW */
    int p;      /* OH*OW */
    int vec;    /* use the vector kernels (clasp_ctx_vector_kernels) */
} conv_geom;

static clasp_status check_f32(const char *op, const char *name, const clasp_tensor *t)
{
    if (!t || !t->buf) return clasp_error(CLASP_ERR_INVALID, "%s: %s is missing", op, name);
    if (t->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be float32", op, name);
    if (t->numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, at most %d supported", op,
                           name, t->numel, INT_MAX);
    return CLASP_OK;
}

static clasp_status check_shape4(const char *op, const char *name, const clasp_tensor *t, int d0,
                                 int d1, int d2, int d3)
{
    CLASP_TRY(check_f32(op, name, t));
    if (t->ndim != 4 || t->shape[0] != d0 || t->shape[1] != d1 || t->shape[2] != d2 ||
        t->shape[3] != d3) {
        char got[64] = "";
        int len = 0;
        for (int i = 0; i < t->ndim && len < (int)sizeof got; i++)
            len += snprintf(got + len, sizeof got - (size_t)len, "%s%d", i ? "," : "", t->shape[i]);
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has shape [%s], expected [%d,%d,%d,%d]", op,
                           name, got, d0, d1, d2, d3);
    }
    return CLASP_OK;
}

/* im2col reads from a padded copy of the input planes when there is
 * padding, and with stride 1 on the vector path even without: im2col_s1
 * reads whole vectors up to 15 floats past a row, and the copy (unlike
 * the caller's tensor) has slack after it. */
static int copies_planes(const conv_geom *g)
{
    return g->pad || (g->vec && g->stride == 1);
}

/* Scratch per image: its columns, its channel-major output (or output
 * gradient) and its padded input planes. */
static size_t conv_floats_per_image(const conv_geom *g)
{
    size_t padded = copies_planes(g)
                        ? (size_t)g->c * (size_t)(g->h + 2 * g->pad) * (size_t)(g->w + 2 * g->pad)
                        : 0;
    return ((size_t)g->k + (size_t)g->o) * (size_t)g->p + padded;
}

/* The kernels on explicit float16 vectors (direct conv for one channel,
 * im2col_s1, col2im_s1, conv_out_v, conv_dy_t_v) are written for CPU
 * devices, where a work-item is a loop iteration and a float16 is one
 * AVX-512 register; on GPUs a work-item per element (the other kernels)
 * suits the hardware better. clasp_ctx_vector_kernels chooses (pool.c and
 * norm.c ask it too); the context's kernels option (CLASP_KERNELS=generic
 * or =vector) overrides, which lets the tests run both sets on one device. */

/* Checks x and w and derives the output geometry. */
static clasp_status conv_geometry(const char *op, const clasp_tensor *x, const clasp_tensor *w,
                                  int stride, int pad, conv_geom *g)
{
    CLASP_TRY(check_f32(op, "x", x));
    CLASP_TRY(check_f32(op, "w", w));
    if (x->ndim != 4)
        return clasp_error(CLASP_ERR_INVALID, "%s: x has %d dimensions, expected 4 (NCHW)", op,
                           x->ndim);
    if (w->ndim != 4)
        return clasp_error(CLASP_ERR_INVALID, "%s: w has %d dimensions, expected 4 (O,C,KH,KW)", op,
                           w->ndim);
    if (x->ctx != w->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: x and w belong to different contexts", op);
    if (stride < 1) return clasp_error(CLASP_ERR_INVALID, "%s: stride %d must be >= 1", op, stride);
    /* The bound keeps H + 2*pad far from int overflow. */
    if (pad < 0 || pad > (1 << 20))
        return clasp_error(CLASP_ERR_INVALID, "%s: pad %d outside 0..%d", op, pad, 1 << 20);
    g->n = x->shape[0];
    g->c = x->shape[1];
    g->h = x->shape[2];
    g->w = x->shape[3];
    g->o = w->shape[0];
    g->kh = w->shape[2];
    g->kw = w->shape[3];
    g->stride = stride;
    g->pad = pad;
    if (w->shape[1] != g->c)
        return clasp_error(CLASP_ERR_INVALID, "%s: w has %d input channels, x has %d", op,
                           w->shape[1], g->c);
    if (g->kh < 1 || g->kw < 1 || g->o < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: w has an empty dimension", op);
    if (g->h + 2 * pad < g->kh || g->w + 2 * pad < g->kw)
        return clasp_error(CLASP_ERR_INVALID, "%s: kernel %dx%d larger than the padded input %dx%d",
                           op, g->kh, g->kw, g->h + 2 * pad, g->w + 2 * pad);
    g->oh = (g->h + 2 * pad - g->kh) / stride + 1;
    g->ow = (g->w + 2 * pad - g->kw) / stride + 1;
    g->k = g->c * g->kh * g->kw;
    g->p = g->oh * g->ow;
    g->vec = clasp_ctx_vector_kernels(x->ctx);
    /* One image's scratch must be indexable with int. */
    if (conv_floats_per_image(g) > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: one image needs %zu scratch elements, too many",
                           op, conv_floats_per_image(g));
    return CLASP_OK;
}

static clasp_status check_bias(const char *op, const char *name, const clasp_tensor *b, int o)
{
    CLASP_TRY(check_f32(op, name, b));
    if (b->numel != (size_t)o)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, expected %d", op, name,
                           b->numel, o);
    return CLASP_OK;
}

static size_t scratch_budget(clasp_ctx *ctx)
{
    if (clasp_ctx_gpu_like(ctx)) return CONV_SCRATCH_GPU;
    uint64_t cache = ctx->devprof.global_cache;
    if (cache == 0) return CONV_SCRATCH_CPU_DEFAULT;
    size_t b = (size_t)(cache / 8);
    if (b < CONV_SCRATCH_CPU_MIN) b = CONV_SCRATCH_CPU_MIN;
    if (b > CONV_SCRATCH_CPU_MAX) b = CONV_SCRATCH_CPU_MAX;
    return b;
}

/* Scratch of a Winograd call (transformed inputs and products of a chunk):
 * four times the direct path's on CPUs, where its GEMMs' N (tiles, not
 * pixels) would otherwise be a few hundred columns. Unmeasured. */
static size_t wino_budget(clasp_ctx *ctx)
{
    return clasp_ctx_gpu_like(ctx) ? CONV_SCRATCH_GPU : 4 * scratch_budget(ctx);
}

/* Scratch of one conv call, sized for chunks of nb_max images. */
typedef struct conv_scratch {
    int nb_max;
    clasp_tensor *cols; /* [K, nb*P] from cols_off: columns, then column gradients */
    int cols_off;       /* slack before the matrix (see col2im_s1) */
    clasp_tensor *t;    /* [O, nb*P]: yt (forward) or dyt (backward) */
    clasp_tensor *xp;   /* padded input planes, when copies_planes() */
} conv_scratch;

static void scratch_free(conv_scratch *s)
{
    clasp_tensor_free(s->cols);
    clasp_tensor_free(s->t);
    clasp_tensor_free(s->xp);
}

static int gcd_int(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Images per chunk so the scratch stays under the budget, evened out over
 * the chunks (64+64 rather than 107+21) so every GEMM has about the same
 * N. */
static clasp_status scratch_new(clasp_ctx *ctx, const conv_geom *g, int need_xp, conv_scratch *s)
{
    *s = (conv_scratch){0};
    size_t per = conv_floats_per_image(g);
    size_t cap = scratch_budget(ctx) / 4 / per;
    if (cap > (size_t)INT_MAX / per) cap = (size_t)INT_MAX / per;
    if (cap < 1) cap = 1;
    if (cap >= (size_t)g->n) {
        s->nb_max = g->n;
    } else {
        size_t chunks = ((size_t)g->n + cap - 1) / cap;
        s->nb_max = (int)(((size_t)g->n + chunks - 1) / chunks);
        /* Whole 16-column panels per chunk where the budget allows, so the
         * column matrices can be packed (conv_panel): a multiple of q
         * images, q = 16 / gcd(P, 16) (4 for 14x14 planes). Only the last
         * chunk may then be left plain. */
        int q = CLASP_GEMM_PANEL / gcd_int(g->p, CLASP_GEMM_PANEL);
        if (q > 1 && (size_t)q <= cap) {
            size_t nb = ((size_t)s->nb_max + q - 1) / q * q;
            if (nb > cap) nb = cap / q * q;
            s->nb_max = (int)nb;
        }
    }
    int cols_n = s->nb_max * g->p;
    /* col2im_s1's whole-vector loads reach a little before and after the
     * matrix; the slack keeps them inside the buffer. */
    s->cols_off = g->kw + 16;
    clasp_status st = clasp_tensor_new1(ctx, g->k * cols_n + 2 * s->cols_off, &s->cols);
    if (st == CLASP_OK) st = clasp_tensor_new1(ctx, g->o * cols_n, &s->t);
    if (st == CLASP_OK && need_xp && copies_planes(g))
        st = clasp_tensor_new1(ctx,
                               s->nb_max * g->c * (g->h + 2 * g->pad) * (g->w + 2 * g->pad) +
                                   IM2COL_SLACK,
                               &s->xp);
    if (st != CLASP_OK) scratch_free(s);
    return st;
}

/* A work-group width for a dimension of `n` items: the largest of 64/32/16
 * that wastes least after the launch rounds n up. */
static size_t lws_for(size_t n)
{
    size_t best = 64;
    for (size_t cand = 32; cand >= 16; cand /= 2)
        if (clasp_round_up(n, cand) < clasp_round_up(n, best)) best = cand;
    return best;
}

/* The most work-items one group of kernel k may have on this device. */
static size_t kernel_max_wg(clasp_ctx *ctx, cl_kernel k)
{
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL) !=
            CL_SUCCESS ||
        wg == 0)
        wg = ctx->info.max_work_group ? ctx->info.max_work_group : 64;
    return wg < 1024 ? wg : 1024;
}

/* Work-group for a launch shaped like a w x h plane (dimension 0 along a
 * row): the whole plane when it fits, else as many whole rows as fit, else
 * a strip of a row. One group per plane keeps the number of groups low,
 * and CPU runtimes pay per group: on PoCL this measured ~30% faster for
 * the 28x28 planes of the MNIST CNN than 16x4 groups. The price is one
 * PoCL kernel compile per distinct plane shape (few in a real model). */
static void plane_lws(clasp_ctx *ctx, cl_kernel k, size_t w, size_t h, size_t lws[3])
{
    size_t max_wg = kernel_max_wg(ctx, k);
    if (w <= max_wg) {
        size_t rows = max_wg / w;
        lws[0] = w;
        lws[1] = rows < h ? rows : h;
    } else {
        lws[0] = lws_for(w) <= max_wg ? lws_for(w) : 1;
        lws[1] = 1;
    }
    lws[2] = 1;
}

/* im2col_s1 / col2im_s1: one work-item per row of a plane, one plane per
 * group. (Several small planes per group measured no different on PoCL.) */
static void rows_lws(clasp_ctx *ctx, cl_kernel k, const size_t gws[2], size_t lws[2])
{
    size_t max_wg = kernel_max_wg(ctx, k);
    lws[0] = gws[0] <= max_wg ? gws[0] : lws_for(gws[0]);
    lws[1] = 1;
}

/* The specialised program for this window and stride (see cl/conv.cl):
 * the im2col family, or with direct1 the one-channel direct kernels. */
static clasp_status conv_kernel_of(clasp_ctx *ctx, const conv_geom *g, int direct1,
                                   const char *name, cl_kernel *k)
{
    char defs[96];
    snprintf(defs, sizeof defs, "-DCONV_KH=%d -DCONV_KW=%d -DCONV_STRIDE=%d%s", g->kh, g->kw,
             g->stride, direct1 ? " -DCONV_DIRECT1" : "");
    return clasp_kernel_get(ctx, "conv", defs, name, k);
}

static clasp_status conv_kernel(clasp_ctx *ctx, const conv_geom *g, const char *name, cl_kernel *k)
{
    return conv_kernel_of(ctx, g, 0, name, k);
}

/* The panel stride for a column matrix of `rows` rows and ncols columns
 * when it is written packed for clasp_gemm_packed_b, or 0 for plain. The
 * vector (CPU) path packs whenever ncols is a whole number of panels (the
 * chunks are sized for it, see scratch_new); a forced GEMM path (tests,
 * CLASP_GEMM) keeps the plain layout that every path reads. */
static int conv_panel(clasp_ctx *ctx, const conv_geom *g, int rows, int ncols)
{
    if (!g->vec || ncols % CLASP_GEMM_PANEL || !clasp_gemm_may_pack(ctx)) return 0;
    return rows * CLASP_GEMM_PANEL;
}

/* Lowers images n0 .. n0+nb-1 of x into cols (from element cols_off); xp
 * is scratch for the padded planes (unused unless copies_planes()). */
static clasp_status launch_im2col(clasp_ctx *ctx, const char *op, const char *op_pad,
                                  const clasp_tensor *x, const conv_geom *g, int n0, int nb,
                                  clasp_tensor *xp, clasp_tensor *cols, int cols_off, int panel)
{
    cl_kernel k;
    int hp = g->h + 2 * g->pad, wp = g->w + 2 * g->pad;
    int x_off = n0 * g->c * g->h * g->w, xp_off = 0;
    cl_mem src = clasp_mem(x);
    if (copies_planes(g)) {
        CLASP_TRY(clasp_kernel_get(ctx, "conv", NULL, "pad_planes", &k));
        cl_mem xm = clasp_mem(x), xpm = clasp_mem(xp);
        CLASP_TRY(clasp_kernel_args(k, 6, KARG(xm), KARG(x_off), KARG(g->h), KARG(g->w),
                                    KARG(g->pad), KARG(xpm)));
        size_t gws[3] = {(size_t)wp, (size_t)hp, (size_t)nb * (size_t)g->c}, lws[3];
        plane_lws(ctx, k, (size_t)wp, (size_t)hp, lws);
        CLASP_TRY(clasp_launch(ctx, k, op_pad, 3, gws, lws));
        src = xpm;
    } else {
        xp_off = x_off;
    }
    cl_mem cm = clasp_mem(cols);
    int ncols = nb * g->p;
    if (g->vec && g->stride == 1) {
        CLASP_TRY(conv_kernel(ctx, g, "im2col_s1", &k));
        int planes = nb * g->c;
        CLASP_TRY(clasp_kernel_args(k, 12, KARG(src), KARG(xp_off), KARG(g->c), KARG(hp), KARG(wp),
                                    KARG(g->oh), KARG(g->ow), KARG(ncols), KARG(cm), KARG(cols_off),
                                    KARG(planes), KARG(panel)));
        size_t gws[2] = {(size_t)g->oh, (size_t)planes}, lws[2];
        rows_lws(ctx, k, gws, lws);
        return clasp_launch(ctx, k, op, 2, gws, lws);
    }
    CLASP_TRY(conv_kernel(ctx, g, "im2col", &k));
    CLASP_TRY(clasp_kernel_args(k, 14, KARG(src), KARG(xp_off), KARG(g->c), KARG(hp), KARG(wp),
                                KARG(g->kh), KARG(g->kw), KARG(g->stride), KARG(g->oh), KARG(g->ow),
                                KARG(ncols), KARG(cm), KARG(cols_off), KARG(panel)));
    size_t gws[3] = {(size_t)g->ow, (size_t)g->oh, (size_t)nb * (size_t)g->c}, lws[3];
    plane_lws(ctx, k, (size_t)g->ow, (size_t)g->oh, lws);
    return clasp_launch(ctx, k, op, 3, gws, lws);
}

static clasp_status launch_col2im(clasp_ctx *ctx, const clasp_tensor *cols, int cols_off,
                                  const conv_geom *g, int n0, int nb, clasp_tensor *dx)
{
    cl_kernel k;
    cl_mem cm = clasp_mem(cols), dxm = clasp_mem(dx);
    int ncols = nb * g->p;
    int dx_off = n0 * g->c * g->h * g->w;
    if (g->vec && g->stride == 1) {
        CLASP_TRY(conv_kernel(ctx, g, "col2im_s1", &k));
        int planes = nb * g->c;
        CLASP_TRY(clasp_kernel_args(k, 12, KARG(cm), KARG(cols_off), KARG(g->c), KARG(g->h),
                                    KARG(g->w), KARG(g->pad), KARG(g->oh), KARG(g->ow), KARG(ncols),
                                    KARG(dxm), KARG(dx_off), KARG(planes)));
        size_t gws[2] = {(size_t)g->h, (size_t)planes}, lws[2];
        rows_lws(ctx, k, gws, lws);
        return clasp_launch(ctx, k, "conv2d_bwd:col2im", 2, gws, lws);
    }
    CLASP_TRY(conv_kernel(ctx, g, "col2im", &k));
    CLASP_TRY(clasp_kernel_args(k, 14, KARG(cm), KARG(cols_off), KARG(g->c), KARG(g->h), KARG(g->w),
                                KARG(g->kh), KARG(g->kw), KARG(g->stride), KARG(g->pad),
                                KARG(g->oh), KARG(g->ow), KARG(ncols), KARG(dxm), KARG(dx_off)));
    size_t gws[3] = {(size_t)g->w, (size_t)g->h, (size_t)nb * (size_t)g->c}, lws[3];
    plane_lws(ctx, k, (size_t)g->w, (size_t)g->h, lws);
    return clasp_launch(ctx, k, "conv2d_bwd:col2im", 3, gws, lws);
}

/* Sets one more argument after clasp_kernel_args (the vector variants of a
 * kernel take one argument more than the others). */
static clasp_status set_arg(cl_kernel k, cl_uint i, size_t size, const void *value)
{
    cl_int err = clSetKernelArg(k, i, size, value);
    return err == CL_SUCCESS ? CLASP_OK : clasp_cl_check(err, "clSetKernelArg");
}

/* conv_out_v / conv_dy_t_v: one work-item per row of P floats, copied in
 * vectors; groups of up to 64 rows keep the number of groups low. */
static size_t rows_wg(clasp_ctx *ctx, cl_kernel k, size_t rows)
{
    size_t max_wg = kernel_max_wg(ctx, k);
    size_t wg = max_wg < 64 ? max_wg : 64;
    return rows < wg ? rows : wg;
}

/* conv_out / conv_dy_t: rows of P floats, one group per (image, channel)
 * row when it fits. */
static void chan_lws(clasp_ctx *ctx, cl_kernel k, const conv_geom *g, int nb, size_t gws[2],
                     size_t lws[2])
{
    size_t max_wg = kernel_max_wg(ctx, k);
    gws[0] = (size_t)g->p;
    gws[1] = (size_t)nb * (size_t)g->o;
    lws[0] = gws[0] <= max_wg ? gws[0] : lws_for(gws[0]);
    lws[1] = 1;
}

/* ---- one input channel, stride 1: direct kernels ------------------------ */

/* Pixels per work-item of the direct kernels: C1_VEC in cl/conv.cl. */
#define CONV1_VEC 16
/* Block of dx per conv1_bwd_dx work-item: C1_ROWS rows by
 * C1_STRIPS * C1_VEC columns in cl/conv.cl. */
#define CONV1_DX_ROWS 4
#define CONV1_DX_COLS 32
/* Output channels per conv1_fwd work-item: CONV_OB in cl/conv.cl. */
#define CONV1_OB 16

/* The direct kernels replace im2col + GEMM when the GEMM would be thin:
 * one input channel gives it K = KH*KW. Stride 1 keeps their loads
 * contiguous along a row. */
static int conv1_direct(const conv_geom *g)
{
    return g->vec && g->c == 1 && g->stride == 1;
}

/* Padded-plane geometry for conv1_fwd: rows and columns so that every
 * work-item of a rounded-up row reads inside its plane. */
static void conv1_padded(const conv_geom *g, int *hq, int *wq)
{
    *hq = g->oh + g->kh - 1;
    *wq = (int)clasp_round_up((size_t)g->ow, CONV1_VEC) + g->kw - 1;
}

static clasp_status conv1_forward(clasp_ctx *ctx, const conv_geom *g, const clasp_tensor *x,
                                  const clasp_tensor *w, const clasp_tensor *b, clasp_tensor *y)
{
    int hq, wq;
    conv1_padded(g, &hq, &wq);
    /* Only the padded planes need scratch; chunks keep them in budget. */
    size_t per = (size_t)hq * (size_t)wq;
    if (per > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "conv2d: padded plane of %zu elements too large",
                           per);
    size_t cap = scratch_budget(ctx) / 4 / per;
    if (cap > (size_t)INT_MAX / per) cap = (size_t)INT_MAX / per;
    if (cap < 1) cap = 1;
    int nb_max = cap >= (size_t)g->n ? g->n : (int)cap;
    clasp_tensor *xq = NULL;
    CLASP_TRY(clasp_tensor_new1(ctx, nb_max * hq * wq, &xq));
    cl_kernel kp = NULL, kc = NULL;
    clasp_status st = conv_kernel_of(ctx, g, 1, "pad_planes_to", &kp);
    if (st == CLASP_OK) st = conv_kernel_of(ctx, g, 1, "conv1_fwd", &kc);
    cl_mem xm = clasp_mem(x), xqm = clasp_mem(xq), wm = clasp_mem(w);
    cl_mem bm = b ? clasp_mem(b) : xqm, ym = clasp_mem(y);
    int has_bias = b != NULL, groups = (g->o + CONV1_OB - 1) / CONV1_OB;
    for (int n0 = 0; st == CLASP_OK && n0 < g->n; n0 += nb_max) {
        int nb = g->n - n0 < nb_max ? g->n - n0 : nb_max;
        int x_off = n0 * g->h * g->w, y_off = n0 * g->o * g->p;
        st = clasp_kernel_args(kp, 8, KARG(xm), KARG(x_off), KARG(g->h), KARG(g->w), KARG(g->pad),
                               KARG(hq), KARG(wq), KARG(xqm));
        size_t gws_p[3] = {(size_t)wq, (size_t)hq, (size_t)nb}, lws_p[3];
        plane_lws(ctx, kp, (size_t)wq, (size_t)hq, lws_p);
        if (st == CLASP_OK) st = clasp_launch(ctx, kp, "conv2d_fwd:pad", 3, gws_p, lws_p);
        if (st == CLASP_OK)
            st = clasp_kernel_args(kc, 11, KARG(xqm), KARG(hq), KARG(wq), KARG(wm), KARG(bm),
                                   KARG(has_bias), KARG(g->o), KARG(g->oh), KARG(g->ow), KARG(ym),
                                   KARG(y_off));
        size_t strips = ((size_t)g->ow + CONV1_VEC - 1) / CONV1_VEC;
        size_t gws[3] = {strips, (size_t)g->oh, (size_t)nb * (size_t)groups}, lws[3];
        plane_lws(ctx, kc, strips, (size_t)g->oh, lws);
        if (st == CLASP_OK) st = clasp_launch(ctx, kc, "conv2d_fwd:direct1", 3, gws, lws);
    }
    clasp_tensor_free(xq);
    return st;
}

static clasp_status conv1_backward_dx(clasp_ctx *ctx, const conv_geom *g, const clasp_tensor *w,
                                      const clasp_tensor *dy, clasp_tensor *dx)
{
    cl_kernel k;
    CLASP_TRY(conv_kernel_of(ctx, g, 1, "conv1_bwd_dx", &k));
    cl_mem dym = clasp_mem(dy), wm = clasp_mem(w), dxm = clasp_mem(dx);
    CLASP_TRY(clasp_kernel_args(k, 10, KARG(dym), KARG(g->o), KARG(g->oh), KARG(g->ow),
                                KARG(g->pad), KARG(wm), KARG(g->n), KARG(g->h), KARG(g->w),
                                KARG(dxm)));
    size_t cols = ((size_t)g->w + CONV1_DX_COLS - 1) / CONV1_DX_COLS;
    size_t rows = ((size_t)g->h + CONV1_DX_ROWS - 1) / CONV1_DX_ROWS;
    size_t gws[3] = {cols, rows, (size_t)g->n}, lws[3];
    plane_lws(ctx, k, cols, rows, lws);
    return clasp_launch(ctx, k, "conv2d_bwd:direct1_dx", 3, gws, lws);
}

/* A 1x1 convolution of stride 1 without padding is a matrix product per
 * image on the NCHW planes as they lie: y[n] (O x P) = w (O x C) x[n]
 * (C x P), dx[n] = w^T dy[n], dw = sum_n dy[n] x[n]^T. No padded copy, no
 * column matrix, no transpose of the output (im2col and its copies were a
 * quarter of ResNet-50's inference). Below CONV1X1_MIN_P positions per
 * image the products are too narrow for the GEMM kernels and the chunked
 * im2col path, one product for many images, stays. */
enum { CONV1X1_MIN_P = 196 };

static int conv1x1_plain(const conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0 && g->p >= CONV1X1_MIN_P;
}

static clasp_status conv1x1_forward(clasp_ctx *ctx, const conv_geom *g, const clasp_tensor *x,
                                    const clasp_tensor *w, const clasp_tensor *b, clasp_tensor *y)
{
    for (int n = 0; n < g->n; n++)
        CLASP_TRY(clasp_gemm(ctx, 0, 0, g->o, g->p, g->c, 1.0f, w, 0, g->c, x,
                             (size_t)n * g->c * g->p, g->p, 0.0f, y, (size_t)n * g->o * g->p,
                             g->p));
    return b ? clasp_channel_affine(y, NULL, b, y) : CLASP_OK;
}

static clasp_status conv1x1_backward(clasp_ctx *ctx, const conv_geom *g, const clasp_tensor *x,
                                     const clasp_tensor *w, const clasp_tensor *dy,
                                     clasp_tensor *dx, clasp_tensor *dw)
{
    for (int n = 0; n < g->n; n++) {
        size_t xo = (size_t)n * g->c * g->p, yo = (size_t)n * g->o * g->p;
        if (dw)
            CLASP_TRY(clasp_gemm(ctx, 0, 1, g->o, g->c, g->p, 1.0f, dy, yo, g->p, x, xo, g->p,
                                 n ? 1.0f : 0.0f, dw, 0, g->c));
        if (dx)
            CLASP_TRY(clasp_gemm(ctx, 1, 0, g->c, g->p, g->o, 1.0f, w, 0, g->c, dy, yo, g->p, 0.0f,
                                 dx, xo, g->p));
    }
    return CLASP_OK;
}

clasp_status clasp_conv2d_forward(const clasp_tensor *x, const clasp_tensor *w,
                                  const clasp_tensor *b, int stride, int pad, clasp_tensor *y)
{
    static const char *op = "conv2d";
    conv_geom g;
    CLASP_TRY(conv_geometry(op, x, w, stride, pad, &g));
    if (b) CLASP_TRY(check_bias(op, "b", b, g.o));
    CLASP_TRY(check_shape4(op, "y", y, g.n, g.o, g.oh, g.ow));
    if (g.n == 0) return CLASP_OK;
    clasp_ctx *ctx = x->ctx;
    clasp_wino_variant wv = clasp_wino_choose(ctx, g.kh, g.kw, g.stride, g.pad, 0);
    if (wv != CLASP_WINO_NONE)
        return clasp_wino_forward(ctx, wv, x, w, b, pad, y, wino_budget(ctx));
    if (conv1_direct(&g)) return conv1_forward(ctx, &g, x, w, b, y);
    if (conv1x1_plain(&g)) return conv1x1_forward(ctx, &g, x, w, b, y);

    conv_scratch s;
    CLASP_TRY(scratch_new(ctx, &g, 1, &s));
    cl_kernel kout = NULL;
    clasp_status st = clasp_kernel_get(ctx, "conv", NULL, g.vec ? "conv_out_v" : "conv_out", &kout);
    for (int n0 = 0; st == CLASP_OK && n0 < g.n; n0 += s.nb_max) {
        int nb = g.n - n0 < s.nb_max ? g.n - n0 : s.nb_max;
        int ncols = nb * g.p;
        int panel = conv_panel(ctx, &g, g.k, ncols);
        st = launch_im2col(ctx, "conv2d_fwd:im2col", "conv2d_fwd:pad", x, &g, n0, nb, s.xp, s.cols,
                           s.cols_off, panel);
        if (st == CLASP_OK && panel)
            st = clasp_gemm_packed_b(ctx, 0, g.o, ncols, g.k, 1.0f, w, 0, g.k, s.cols,
                                     (size_t)s.cols_off, 0.0f, s.t, 0, ncols);
        else if (st == CLASP_OK)
            st = clasp_gemm(ctx, 0, 0, g.o, ncols, g.k, 1.0f, w, 0, g.k, s.cols, (size_t)s.cols_off,
                            ncols, 0.0f, s.t, 0, ncols);
        if (st != CLASP_OK) break;
        cl_mem ytm = clasp_mem(s.t), bm = b ? clasp_mem(b) : NULL, ym = clasp_mem(y);
        int has_bias = b != NULL, y_off = n0 * g.o * g.p, total = (int)s.t->numel;
        st = clasp_kernel_args(kout, 8, KARG(ytm), KARG(nb), KARG(g.o), KARG(g.p), KARG(bm),
                               KARG(has_bias), KARG(ym), KARG(y_off));
        if (st == CLASP_OK && g.vec) {
            st = set_arg(kout, 8, KARG(total));
            size_t gws = (size_t)nb * (size_t)g.o, lws = rows_wg(ctx, kout, gws);
            if (st == CLASP_OK) st = clasp_launch(ctx, kout, "conv2d_fwd:out", 1, &gws, &lws);
        } else if (st == CLASP_OK) {
            size_t gws[2], lws[2];
            chan_lws(ctx, kout, &g, nb, gws, lws);
            st = clasp_launch(ctx, kout, "conv2d_fwd:out", 2, gws, lws);
        }
    }
    scratch_free(&s);
    return st;
}

clasp_status clasp_conv2d_backward(const clasp_tensor *x, const clasp_tensor *w,
                                   const clasp_tensor *dy, int stride, int pad, clasp_tensor *dx,
                                   clasp_tensor *dw, clasp_tensor *db)
{
    static const char *op = "conv2d_backward";
    conv_geom g;
    CLASP_TRY(conv_geometry(op, x, w, stride, pad, &g));
    CLASP_TRY(check_shape4(op, "dy", dy, g.n, g.o, g.oh, g.ow));
    if (dx) CLASP_TRY(check_shape4(op, "dx", dx, g.n, g.c, g.h, g.w));
    if (dw) CLASP_TRY(check_shape4(op, "dw", dw, g.o, g.c, g.kh, g.kw));
    if (db) CLASP_TRY(check_bias(op, "db", db, g.o));
    clasp_ctx *ctx = x->ctx;

    /* A separate pass over dy: summing each chunk's dyt instead (while in
     * cache) measured slower on PoCL, one more launch per chunk. */
    if (db) CLASP_TRY(clasp_bias_grad(dy, db));
    if (!dx && !dw) return CLASP_OK;
    if (g.n == 0) {
        /* No examples: the weight gradient is an empty sum. */
        return dw ? clasp_tensor_fill(dw, 0.0f) : CLASP_OK;
    }

    clasp_wino_variant wv = clasp_wino_choose(ctx, g.kh, g.kw, g.stride, g.pad, 1);
    if (dx && wv != CLASP_WINO_NONE) {
        CLASP_TRY(clasp_wino_backward_dx(ctx, wv, w, dy, pad, dx, wino_budget(ctx)));
        if (!dw) return CLASP_OK;
        dx = NULL; /* done: the loop below computes dw only */
    }
    if (dx && conv1_direct(&g)) {
        CLASP_TRY(conv1_backward_dx(ctx, &g, w, dy, dx));
        if (!dw) return CLASP_OK;
        dx = NULL; /* done: the loop below computes dw only */
    }
    if (conv1x1_plain(&g)) return conv1x1_backward(ctx, &g, x, w, dy, dx, dw);

    conv_scratch s;
    CLASP_TRY(scratch_new(ctx, &g, dw != NULL, &s));
    cl_kernel kt = NULL;
    clasp_status st = clasp_kernel_get(ctx, "conv", NULL, g.vec ? "conv_dy_t_v" : "conv_dy_t", &kt);
    /* For the packed products W^T is copied plain (see clasp_gemm_packed_b
     * on transposed operands), once per version of the weights: an
     * attack's steps share it. */
    const clasp_tensor *wt = NULL;
    if (st == CLASP_OK && dx && !dw && conv_panel(ctx, &g, g.o, s.nb_max * g.p))
        st = clasp_conv_weights_t(ctx, w, g.o, g.k, &wt);
    for (int n0 = 0; st == CLASP_OK && n0 < g.n; n0 += s.nb_max) {
        int nb = g.n - n0 < s.nb_max ? g.n - n0 : s.nb_max;
        int ncols = nb * g.p;
        cl_mem dym = clasp_mem(dy), dytm = clasp_mem(s.t);
        int dy_off = n0 * g.o * g.p;
        int total = (int)dy->numel;
        /* The weight gradient's NT product reads dyt plain. */
        int panel = dw ? 0 : conv_panel(ctx, &g, g.o, ncols);
        st = clasp_kernel_args(kt, 6, KARG(dym), KARG(dy_off), KARG(nb), KARG(g.o), KARG(g.p),
                               KARG(dytm));
        if (st == CLASP_OK) st = set_arg(kt, g.vec ? 7 : 6, KARG(panel));
        if (st == CLASP_OK && g.vec) {
            st = set_arg(kt, 6, KARG(total));
            size_t gws_t = (size_t)nb * (size_t)g.o, lws_t = rows_wg(ctx, kt, gws_t);
            if (st == CLASP_OK) st = clasp_launch(ctx, kt, "conv2d_bwd:dy_t", 1, &gws_t, &lws_t);
        } else if (st == CLASP_OK) {
            size_t gws_t[2], lws_t[2];
            chan_lws(ctx, kt, &g, nb, gws_t, lws_t);
            st = clasp_launch(ctx, kt, "conv2d_bwd:dy_t", 2, gws_t, lws_t);
        }
        if (st == CLASP_OK && dw) {
            st = launch_im2col(ctx, "conv2d_bwd:im2col", "conv2d_bwd:pad", x, &g, n0, nb, s.xp,
                               s.cols, s.cols_off, 0);
            /* Chunks after the first accumulate into dw. */
            if (st == CLASP_OK)
                st = clasp_gemm(ctx, 0, 1, g.o, g.k, ncols, 1.0f, s.t, 0, ncols, s.cols,
                                (size_t)s.cols_off, ncols, n0 ? 1.0f : 0.0f, dw, 0, g.k);
        }
        if (st == CLASP_OK && dx) {
            /* The in-order queue runs the dW GEMM before this overwrites cols. */
            st = panel && wt ? clasp_gemm_packed_b(ctx, 0, g.k, ncols, g.o, 1.0f, wt, 0, g.o, s.t,
                                                   0, 0.0f, s.cols, (size_t)s.cols_off, ncols)
                 : panel     ? clasp_gemm_packed_b(ctx, 1, g.k, ncols, g.o, 1.0f, w, 0, g.k, s.t, 0,
                                                   0.0f, s.cols, (size_t)s.cols_off, ncols)
                         : clasp_gemm(ctx, 1, 0, g.k, ncols, g.o, 1.0f, w, 0, g.k, s.t, 0, ncols,
                                      0.0f, s.cols, (size_t)s.cols_off, ncols);
            if (st == CLASP_OK) st = launch_col2im(ctx, s.cols, s.cols_off, &g, n0, nb, dx);
        }
    }
    scratch_free(&s);
    return st;
}

clasp_status clasp_bias_grad(const clasp_tensor *dy, clasp_tensor *db)
{
    static const char *op = "bias_grad";
    CLASP_TRY(check_f32(op, "dy", dy));
    if (dy->ndim < 2)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: dy has %d dimensions, expected [N,O] or [N,O,H,W]", op, dy->ndim);
    int n = dy->shape[0], o = dy->shape[1];
    int p = 1;
    for (int i = 2; i < dy->ndim; i++) p *= dy->shape[i];
    CLASP_TRY(check_bias(op, "db", db, o));
    clasp_ctx *ctx = dy->ctx;
    if (o == 0) return CLASP_OK;
    cl_kernel k;
    cl_mem dym = clasp_mem(dy), dbm = clasp_mem(db);
    if (p == 1) {
        CLASP_TRY(clasp_kernel_get(ctx, "conv", NULL, "bias_grad_cols", &k));
        CLASP_TRY(clasp_kernel_args(k, 4, KARG(dym), KARG(n), KARG(o), KARG(dbm)));
        size_t gws = (size_t)o, lws = lws_for((size_t)o);
        return clasp_launch(ctx, k, "bias_grad", 1, &gws, &lws);
    }
    CLASP_TRY(clasp_kernel_get(ctx, "conv", NULL, "bias_grad_planes", &k));
    CLASP_TRY(clasp_kernel_args(k, 5, KARG(dym), KARG(n), KARG(o), KARG(p), KARG(dbm)));
    size_t lws = 64; /* BG_LWS in cl/conv.cl */
    size_t gws = (size_t)o * lws;
    return clasp_launch(ctx, k, "bias_grad", 1, &gws, &lws);
}
