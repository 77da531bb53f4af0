/* Convolution internals shared by conv.c (im2col + GEMM) and winograd.c.
 * Not installed. */
#ifndef CLASP_CONV_INTERNAL_H
#define CLASP_CONV_INTERNAL_H

#include "clasp/ops.h"

/* The Winograd variants (F(m x m, r x r)). */
typedef enum clasp_wino_variant {
    CLASP_WINO_NONE = -1,
    CLASP_WINO_F2_3 = 0, /* F(2x2,3x3): 16 products a tile of 4 outputs (36 direct) */
    CLASP_WINO_F4_3 = 1, /* F(4x4,3x3): 36 products a tile of 16 outputs (144 direct) */
    CLASP_WINO_F2_5 = 2, /* F(2x2,5x5): 36 products a tile of 4 outputs (100 direct) */
    CLASP_WINO_COUNT = 3,
} clasp_wino_variant;

/* The variant for a convolution of window kh x kw, stride and pad on ctx
 * (its conv option, CLASP_CONV), or CLASP_WINO_NONE for the direct path.
 * for_dx: for the input gradient, which needs pad <= r - 1. */
clasp_wino_variant clasp_wino_choose(clasp_ctx *ctx, int kh, int kw, int stride, int pad,
                                     int for_dx);

/* y = conv(x, w) + b, stride 1, by variant v; shapes checked by the caller.
 * budget: scratch bytes per chunk of images. */
clasp_status clasp_wino_forward(clasp_ctx *ctx, clasp_wino_variant v, const clasp_tensor *x,
                                const clasp_tensor *w, const clasp_tensor *b, int pad,
                                clasp_tensor *y, size_t budget);

/* dx of a stride-1 convolution from dy: the convolution of dy, padded by
 * r - 1 - pad, with the flipped, transposed kernel. */
clasp_status clasp_wino_backward_dx(clasp_ctx *ctx, clasp_wino_variant v, const clasp_tensor *w,
                                    const clasp_tensor *dy, int pad, clasp_tensor *dx,
                                    size_t budget);

/* W^T ([cols, rows]) of the weights w seen as [rows, cols], kept per
 * version of w like the transformed weights (owned by the cache: valid
 * until the next call that may add to it). */
clasp_status clasp_conv_weights_t(clasp_ctx *ctx, const clasp_tensor *w, int rows, int cols,
                                  const clasp_tensor **out);

/* How many transformed weights were computed on ctx (a miss of the cache);
 * for the tests. */
unsigned long clasp_wino_transforms(clasp_ctx *ctx);

#endif
