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
