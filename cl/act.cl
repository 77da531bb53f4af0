/* Activations. One element per work-item; the launch rounds the range up,
 * so each kernel guards n. */

/* y = max(x, 0); y may be x. */
__kernel void relu_fwd(__global const float *x, __global float *y, int n)
{
    int i = get_global_id(0);
    if (i < n) y[i] = fmax(x[i], 0.0f);
}

/* dx = dy where the forward output y > 0, else 0; dx may be dy. */
__kernel void relu_bwd(__global const float *y, __global const float *dy, __global float *dx,
                       int n)
{
    int i = get_global_id(0);
    if (i < n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* Swish (SiLU): y = x * sigmoid(x); y may be x. */
__kernel void swish_fwd(__global const float *x, __global float *y, int n)
{
    int i = get_global_id(0);
    if (i >= n) return;
    float v = x[i];
    y[i] = v / (1.0f + exp(-v));
}

/* dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x) of the forward input x;
 * dx may be dy. */
__kernel void swish_bwd(__global const float *x, __global const float *dy, __global float *dx,
                        int n)
{
    int i = get_global_id(0);
    if (i >= n) return;
    float v = x[i], s = 1.0f / (1.0f + exp(-v));
    dx[i] = dy[i] * s * (1.0f + v * (1.0f - s));
}
