/* Reductions and indexing. */

/* One stage of the sum: each work-item adds a strided slice of x (stride =
 * global size, so neighbouring work-items read neighbouring elements), with
 * Kahan compensation because one slice can hold thousands of elements;
 * then a tree in local memory (power-of-two local size) leaves the group's
 * total in partial[group]. The host runs it once over x with several groups
 * and once more over the partials with one group. Group count and local
 * size are fixed per device, so the order of additions, and hence the
 * result, is the same on every run. */
__kernel void sum_stage(__global const float *x, const uint n, __global float *partial,
                        __local float *scratch)
{
    uint lid = (uint)get_local_id(0), ls = (uint)get_local_size(0);
    size_t stride = get_global_size(0);
    float s = 0.0f, c = 0.0f;
    for (size_t i = get_global_id(0); i < n; i += stride) {
        float yv = x[i] - c;
        float tv = s + yv;
        c = (tv - s) - yv;
        s = tv;
    }
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = ls / 2; off > 0; off /= 2) {
        if (lid < off) scratch[lid] += scratch[lid + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partial[get_group_id(0)] = scratch[0];
}

/* Strict '>' keeps the first index among equal maxima. */
__kernel void argmax_rows(__global const float *z, const uint n, const uint k,
                          __global int *out)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    __global const float *zr = z + i * (size_t)k;
    float best = zr[0];
    int bi = 0;
    for (uint j = 1; j < k; j++) {
        if (zr[j] > best) {
            best = zr[j];
            bi = (int)j;
        }
    }
    out[i] = bi;
}

/* Raw 32-bit words, so one kernel serves float and int32 tensors. An index
 * outside [0, m) cannot be reported from the device; its row becomes zeros
 * instead of a read out of bounds. */
__kernel void gather_rows(__global const uint *src, const uint m, __global const int *idx,
                          __global uint *dst, const uint n, const uint d)
{
    size_t i = get_global_id(0);
    if (i >= (size_t)n * d) return;
    size_t row = i / d, col = i - row * d;
    int r = idx[row];
    dst[i] = (r >= 0 && (uint)r < m) ? src[(size_t)r * d + col] : 0u;
}

/* gather_rows for a data set kept as bytes: row r of d bytes becomes d
 * floats through a 256-entry table (the host's own byte-to-float values,
 * so the batch equals the host data bit for bit). Out-of-range rows are
 * zeros, as above. */
__kernel void gather_rows_u8(__global const uchar *src, __global const float *table, const uint m,
                             __global const int *idx, __global float *dst, const uint n, const uint d)
{
    size_t i = get_global_id(0);
    if (i >= (size_t)n * d) return;
    size_t row = i / d, col = i - row * d;
    int r = idx[row];
    dst[i] = (r >= 0 && (uint)r < m) ? table[src[(size_t)r * d + col]] : 0.0f;
}

/* Labels outside [0, k) give weight 0 (same reasoning as gather_rows). */
__kernel void gather_class(__global const float *table, const uint k, __global const int *y,
                           __global float *out, const uint n)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    int c = y[i];
    out[i] = (c >= 0 && (uint)c < k) ? table[c] : 0.0f;
}
