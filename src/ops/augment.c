/* Random-crop and flip augmentation (cl/augment.cl). */
#include <stdlib.h>

#include "ops/ops_common.h"

clasp_status clasp_augment_crop_flip(const clasp_tensor *x, int pad, int flip, clasp_rng *rng,
                                     clasp_tensor *y)
{
    static const char op[] = "clasp_augment_crop_flip";
    CLASP_TRY(clasp_ops_check_tensor(op, "x", x, CLASP_F32));
    CLASP_TRY(clasp_ops_check_tensor(op, "y", y, CLASP_F32));
    if (x->ndim != 4 || y->numel != x->numel || y->buf == x->buf)
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: x must be [N,C,H,W] and y another tensor of its size", op);
    if (pad < 0 || !rng)
        return clasp_error(CLASP_ERR_INVALID, "%s: pad must be >= 0 and rng given", op);
    int n = x->shape[0];
    if (!n) return CLASP_OK;
    /* Three draws per example: the crop's row and column offset in
     * [-pad, pad] and the flip; uniform in [0,1) scaled, so the numbers do
     * not depend on the device. */
    float *u = malloc((size_t)n * 3 * sizeof *u);
    int32_t *p = malloc((size_t)n * 3 * sizeof *p);
    if (!u || !p) {
        free(u), free(p);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    clasp_rng_uniform_host(rng, u, (size_t)n * 3, 0.0f, 1.0f);
    for (int i = 0; i < 3 * n; i++) {
        int k = i % 3;
        if (k < 2) p[i] = (int32_t)(u[i] * (float)(2 * pad + 1)) - pad;
        else p[i] = flip && u[i] < 0.5f;
        if (k < 2 && p[i] > pad) p[i] = pad; /* u just below 1 rounding up */
    }
    free(u);
    clasp_tensor *pt = NULL;
    clasp_status st = clasp_tensor_new(x->ctx, CLASP_I32, 1, (int[]){3 * n}, &pt);
    if (st == CLASP_OK) st = clasp_tensor_write(pt, p);
    free(p);
    cl_kernel k;
    if (st == CLASP_OK) st = clasp_kernel_get(x->ctx, "augment", NULL, "crop_flip", &k);
    if (st == CLASP_OK) {
        cl_mem mx = clasp_mem(x), my = clasp_mem(y), mp = clasp_mem(pt);
        cl_int c = x->shape[1], h = x->shape[2], w = x->shape[3];
        cl_uint total = (cl_uint)x->numel;
        st = clasp_kernel_args(k, 7, KARG(mx), KARG(my), KARG(mp), KARG(c), KARG(h), KARG(w),
                               KARG(total));
    }
    if (st == CLASP_OK) st = clasp_ops_launch_1d(x->ctx, k, "augment", x->numel, 256);
    /* The pool keeps the buffer alive until the queue is done with it. */
    clasp_tensor_free(pt);
    return st;
}
