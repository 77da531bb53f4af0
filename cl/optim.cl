/* Optimiser updates, one work-item per parameter. */

/* PyTorch's SGD: g' = g + wd*w; v = momentum*v + g'; w -= lr*v. Weight
 * decay is skipped when 0 (as PyTorch does), so an infinite weight does not
 * turn into NaN through 0*inf; with momentum 0 the buffer (if any) simply
 * receives g', so an uninitialised buffer never leaks NaN into the step. */
__kernel void sgd_update(__global float *w, __global const float *g, __global float *v,
                         const int has_v, const uint n, const float lr, const float momentum,
                         const float weight_decay)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float wi = w[i];
    float d = g[i];
    if (weight_decay != 0.0f) d = d + weight_decay * wi;
    if (has_v) {
        float vi = momentum != 0.0f ? momentum * v[i] + d : d;
        v[i] = vi;
        d = vi;
    }
    w[i] = wi - lr * d;
}

/* Adam, arranged as PyTorch does: step = lr / (1 - b1^t) and
 * denom = sqrt(v) / sqrt(1 - b2^t) + eps, both bias corrections computed
 * on the host in double. */
__kernel void adam_update(__global float *w, __global const float *g, __global float *m,
                          __global float *v, const uint n, const float b1, const float b2,
                          const float eps, const float step, const float bc2_sqrt)
{
    size_t i = get_global_id(0);
    if (i >= n) return;
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrt(vi) / bc2_sqrt + eps;
    w[i] = w[i] - step * (mi / denom);
}
