/* Data augmentation on the device: a random crop from the zero-padded
 * image and a horizontal flip, per example. The per-example choices come
 * from the host (three integers each: shift down, shift right, flip), so
 * every device makes the same batches for a seed. */
__kernel void crop_flip(__global const float *x, __global float *y, __global const int *params,
                        const int c, const int h, const int w, const uint total)
{
    uint i = get_global_id(0);
    if (i >= total) return;
    int col = (int)(i % (uint)w);
    int row = (int)((i / (uint)w) % (uint)h);
    int n = (int)(i / ((uint)w * (uint)h * (uint)c));
    __global const int *p = params + 3 * n;
    int sc = p[2] ? w - 1 - col : col;
    int r = row + p[0], q = sc + p[1];
    y[i] = (r >= 0 && r < h && q >= 0 && q < w) ? x[i - (uint)(row * w + col) + (uint)(r * w + q)] : 0.0f;
}
