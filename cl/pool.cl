/* Max pooling (window k, stride s, no padding) on NCHW planes. */

/* y and idx [planes, OH, OW]; idx = h*W + w of the window's first maximum
 * in row-major scan order (strict > keeps the first on ties).
 * gws = (OW, OH, planes): laid out like the output plane, so no work-item
 * divides its id. */
__kernel void maxpool_fwd(__global const float *restrict x, int H, int W, int k, int s,
                          int OH, int OW, __global float *restrict y,
                          __global int *restrict idx)
{
    int ow = get_global_id(0);
    int oh = get_global_id(1);
    int pl = get_global_id(2);
    if (ow >= OW || oh >= OH) return;
    int p = oh * OW + ow;
    __global const float *plane = x + pl * H * W;
    int h0 = oh * s, w0 = ow * s;
    int best_i = h0 * W + w0;
    float best = plane[best_i];
    for (int kh = 0; kh < k; kh++) {
        int row = (h0 + kh) * W;
        for (int kw = 0; kw < k; kw++) {
            float v = plane[row + w0 + kw];
            if (v > best) {
                best = v;
                best_i = row + w0 + kw;
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
