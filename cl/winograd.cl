/* Winograd convolution F(WM x WM, WR x WR) for stride 1 (src/ops/winograd.c).
 *
 * Built with -DWM=.. -DWR=.. -DWN=.. (WN = WM + WR - 1, the tile) and the
 * three transform matrices as brace lists: WBT (WN x WN, the input
 * transform), WG (WN x WR, the weight transform) and WAT (WM x WN, the
 * output transform), row-major. With the sizes constant the loops unroll
 * and the zero entries fold away.
 *
 * The transformed data are laid out for WN*WN independent GEMMs, one per
 * position xi of the tile: weights U[xi][K][C], inputs V[xi][C][P] and
 * products M[xi][K][P], P the tiles of the chunk (image-major, then tile
 * row, then tile column). A work-item handles one tile (dimension 0,
 * consecutive tiles in neighbouring lanes) of one channel (dimension 1). */

__constant float BT[WN * WN] = WBT;
__constant float G[WN * WR] = WG;
__constant float AT[WM * WN] = WAT;

#define T (WN * WN)

/* U = G g G^T per (k, c); flip: the kernel of the input gradient (the
 * window turned by 180 degrees, input and output channels swapped), so
 * U[xi][c][k] from w[k][c]. */
__kernel void wino_weights(__global const float *w, int K, int C, int flip, __global float *U)
{
    int c = get_global_id(0), k = get_global_id(1);
    if (c >= C || k >= K) return;
    __global const float *src = w + ((size_t)k * C + c) * (WR * WR);
    float g[WR * WR];
    for (int i = 0; i < WR * WR; i++) g[i] = flip ? src[WR * WR - 1 - i] : src[i];
    float t[WN * WR];
    for (int i = 0; i < WN; i++)
        for (int j = 0; j < WR; j++) {
            float s = 0.0f;
            for (int q = 0; q < WR; q++) s += G[i * WR + q] * g[q * WR + j];
            t[i * WR + j] = s;
        }
    size_t kc = flip ? (size_t)c * K + k : (size_t)k * C + c;
    size_t plane = (size_t)K * C;
    for (int i = 0; i < WN; i++)
        for (int j = 0; j < WN; j++) {
            float s = 0.0f;
            for (int q = 0; q < WR; q++) s += t[i * WR + q] * G[j * WR + q];
            U[(size_t)(i * WN + j) * plane + kc] = s;
        }
}

/* V = BT d B per (tile, channel) for images n0.. of x (x_off the first's
 * element); d reads zeros outside the image (the padding). */
__kernel void wino_input(__global const float *x, int x_off, int C, int H, int W, int pad,
                         int tiles_h, int tiles_w, int P, __global float *V)
{
    int p = get_global_id(0), c = get_global_id(1);
    if (p >= P || c >= C) return;
    int per = tiles_h * tiles_w;
    int img = p / per, rem = p - img * per;
    int ty = rem / tiles_w, tx = rem - ty * tiles_w;
    int r0 = ty * WM - pad, c0 = tx * WM - pad;
    __global const float *plane = x + x_off + ((size_t)img * C + c) * H * W;
    float d[T];
    for (int i = 0; i < WN; i++) {
        int r = r0 + i;
        for (int j = 0; j < WN; j++) {
            int q = c0 + j;
            d[i * WN + j] = r >= 0 && r < H && q >= 0 && q < W ? plane[r * W + q] : 0.0f;
        }
    }
    float t[T];
    for (int i = 0; i < WN; i++)
        for (int j = 0; j < WN; j++) {
            float s = 0.0f;
            for (int q = 0; q < WN; q++) s += BT[i * WN + q] * d[q * WN + j];
            t[i * WN + j] = s;
        }
    size_t plane_v = (size_t)C * P, at = (size_t)c * P + p;
    for (int i = 0; i < WN; i++)
        for (int j = 0; j < WN; j++) {
            float s = 0.0f;
            for (int q = 0; q < WN; q++) s += t[i * WN + q] * BT[j * WN + q];
            V[(size_t)(i * WN + j) * plane_v + at] = s;
        }
}

/* y = AT m A (+ bias) per (tile, output channel), into the NCHW output of
 * images n0.. (y_off the first's element); a tile past the edge of an
 * output whose size is not a multiple of WM writes only its inside. */
__kernel void wino_output(__global const float *M, int K, int P, int tiles_h, int tiles_w, int OH,
                          int OW, __global const float *bias, int has_bias, __global float *y,
                          int y_off)
{
    int p = get_global_id(0), k = get_global_id(1);
    if (p >= P || k >= K) return;
    int per = tiles_h * tiles_w;
    int img = p / per, rem = p - img * per;
    int ty = rem / tiles_w, tx = rem - ty * tiles_w;
    size_t plane_m = (size_t)K * P, at = (size_t)k * P + p;
    float m[T];
    for (int i = 0; i < T; i++) m[i] = M[(size_t)i * plane_m + at];
    float t[WM * WN];
    for (int i = 0; i < WM; i++)
        for (int j = 0; j < WN; j++) {
            float s = 0.0f;
            for (int q = 0; q < WN; q++) s += AT[i * WN + q] * m[q * WN + j];
            t[i * WN + j] = s;
        }
    float b = has_bias ? bias[k] : 0.0f;
    __global float *out = y + y_off + ((size_t)img * K + k) * OH * OW;
    for (int i = 0; i < WM; i++) {
        int r = ty * WM + i;
        if (r >= OH) break;
        for (int j = 0; j < WM; j++) {
            int q = tx * WM + j;
            if (q >= OW) break;
            float s = b;
            for (int e = 0; e < WN; e++) s += t[i * WN + e] * AT[j * WN + e];
            out[r * OW + q] = s;
        }
    }
}
