/* clasp — tensor ops on the device.
 *
 * All ops enqueue work on the context's in-order queue and return without
 * waiting (no host round trip). Output tensors are allocated by the caller
 * with the documented shapes; an op checks shapes and returns
 * CLASP_ERR_INVALID with a message when they disagree. Unless said
 * otherwise, outputs are overwritten (not accumulated) and must not alias
 * inputs. Shapes are NCHW; "[N,K]" is a 2-d tensor (or any tensor whose
 * first dimension is N and whose remaining ones multiply to K). */
#ifndef CLASP_OPS_H
#define CLASP_OPS_H

#include <stdint.h>

#include "clasp/tensor.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* ---- GEMM ------------------------------------------------------------ */

/* C = alpha * op(A) * op(B) + beta * C on row-major matrices stored in the
 * tensors' buffers starting at the given element offsets. op(A) is [M,K]
 * (A is [K,M] when trans_a), op(B) is [K,N] (B is [N,K] when trans_b).
 * lda/ldb/ldc are row strides in elements. The implementation (clasp's
 * own kernels or CLBlast) is chosen per device and shape. */
clasp_status clasp_gemm(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const clasp_tensor *a, size_t off_a, int lda, const clasp_tensor *b,
                        size_t off_b, int ldb, float beta, clasp_tensor *c, size_t off_c, int ldc);

/* ---- layers ---------------------------------------------------------- */

/* y[N,O,OH,OW] = conv(x[N,C,H,W], w[O,C,KH,KW]) + b[O] (b may be NULL),
 * OH = (H + 2*pad - KH)/stride + 1, likewise OW. */
clasp_status clasp_conv2d_forward(const clasp_tensor *x, const clasp_tensor *w,
                                  const clasp_tensor *b, int stride, int pad, clasp_tensor *y);
/* Gradients of the conv above given dy: dx (input), dw, db; any may be NULL. */
clasp_status clasp_conv2d_backward(const clasp_tensor *x, const clasp_tensor *w,
                                   const clasp_tensor *dy, int stride, int pad, clasp_tensor *dx,
                                   clasp_tensor *dw, clasp_tensor *db);

/* y[N,O] = x[N,I] * w[O,I]^T + b[O] (b may be NULL). */
clasp_status clasp_linear_forward(const clasp_tensor *x, const clasp_tensor *w,
                                  const clasp_tensor *b, clasp_tensor *y);
clasp_status clasp_linear_backward(const clasp_tensor *x, const clasp_tensor *w,
                                   const clasp_tensor *dy, clasp_tensor *dx, clasp_tensor *dw,
                                   clasp_tensor *db);

/* y = max(x, 0); y may be x (in place). */
clasp_status clasp_relu_forward(const clasp_tensor *x, clasp_tensor *y);
/* dx = dy where y > 0 else 0 (y is the forward output); dx may be dy. */
clasp_status clasp_relu_backward(const clasp_tensor *y, const clasp_tensor *dy, clasp_tensor *dx);
/* Swish (SiLU, DeepMind's robust WideResNets): y = x * sigmoid(x); y may be x. */
clasp_status clasp_swish_forward(const clasp_tensor *x, clasp_tensor *y);
/* dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x), from the forward INPUT x
 * (not its output); dx may be dy, but not x. */
clasp_status clasp_swish_backward(const clasp_tensor *x, const clasp_tensor *dy, clasp_tensor *dx);

/* Max pooling, window k, stride s, no padding: y[N,C,OH,OW] with
 * OH = (H - k)/s + 1; idx (int32, same shape as y) records the flat
 * position h*W+w of each maximum inside its image plane (first one on ties). */
clasp_status clasp_maxpool2d_forward(const clasp_tensor *x, int k, int s, clasp_tensor *y,
                                     clasp_tensor *idx);
/* The same with `pad` (0 <= pad <= k/2) rows and columns of -inf around
 * the plane, as PyTorch's max_pool2d(x, k, s, pad):
 * OH = (H + 2*pad - k)/s + 1; idx still points inside the plane. */
clasp_status clasp_maxpool2d_forward_pad(const clasp_tensor *x, int k, int s, int pad,
                                         clasp_tensor *y, clasp_tensor *idx);
/* dx[N,C,H,W] (overwritten) from dy and idx; overlapping windows add up. */
clasp_status clasp_maxpool2d_backward(const clasp_tensor *dy, const clasp_tensor *idx,
                                      clasp_tensor *dx);

/* ---- normalisation and average pooling (ResNet building blocks) ------ */

/* BatchNorm2d over x [N,C,H,W] with per-channel gamma, beta [C], as
 * PyTorch. Train mode normalises with the batch mean and the biased
 * variance over the N*H*W values of each channel:
 *   y = (x - mean) / sqrt(var_biased + eps) * gamma + beta,
 * and updates running_mean and running_var [C] in place:
 *   running = (1 - momentum) * running + momentum * batch_stat
 * with the UNBIASED batch variance (times n/(n-1), n = N*H*W) for
 * running_var. Writes the batch mean and 1/sqrt(var_biased + eps) per
 * channel into save_mean and save_invstd [C] (outputs, needed by the
 * backward). All tensors are required; per-channel tensors need C
 * elements, any shape. y [N,C,H,W] may not alias x. eps > 0, momentum in
 * [0, 1], and N*H*W >= 2 (an unbiased variance needs two values).
 * Per-channel sums run in a fixed order: the same inputs give the same
 * bits on every run. */
clasp_status clasp_batchnorm_forward_train(const clasp_tensor *x, const clasp_tensor *gamma,
                                           const clasp_tensor *beta, clasp_tensor *running_mean,
                                           clasp_tensor *running_var, float momentum, float eps,
                                           clasp_tensor *save_mean, clasp_tensor *save_invstd,
                                           clasp_tensor *y);
/* Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta;
 * nothing is updated. y may not alias x. */
clasp_status clasp_batchnorm_forward_eval(const clasp_tensor *x, const clasp_tensor *gamma,
                                          const clasp_tensor *beta,
                                          const clasp_tensor *running_mean,
                                          const clasp_tensor *running_var, float eps,
                                          clasp_tensor *y);
/* Backward of the train-mode forward (the batch statistics depend on x),
 * given dy [N,C,H,W] and the forward's save_mean and save_invstd. Outputs,
 * each NULL when not wanted: dx [N,C,H,W] (may not alias x or dy),
 * dgamma = sum dy * xhat and dbeta = sum dy [C] (xhat the normalised x);
 * all are written, not added to. */
clasp_status clasp_batchnorm_backward_train(const clasp_tensor *x, const clasp_tensor *dy,
                                            const clasp_tensor *gamma,
                                            const clasp_tensor *save_mean,
                                            const clasp_tensor *save_invstd, clasp_tensor *dx,
                                            clasp_tensor *dgamma, clasp_tensor *dbeta);
/* Backward of the eval-mode forward (a per-channel affine map):
 * dx = dy * gamma / sqrt(running_var + eps); dgamma, dbeta as for the train
 * backward with xhat = (x - running_mean) / sqrt(running_var + eps); any
 * of the three outputs may be NULL; written, not added to. */
clasp_status clasp_batchnorm_backward_eval(const clasp_tensor *x, const clasp_tensor *dy,
                                           const clasp_tensor *gamma,
                                           const clasp_tensor *running_mean,
                                           const clasp_tensor *running_var, float eps,
                                           clasp_tensor *dx, clasp_tensor *dgamma,
                                           clasp_tensor *dbeta);

/* Average pooling of x [N,C,H,W] over kernel x kernel windows with the
 * given stride, no padding (PyTorch's avg_pool2d(x, kernel, stride));
 * y [N,C,OH,OW], OH = (H - kernel)/stride + 1, likewise OW. kernel = H = W
 * is global average pooling (y [N,C,1,1]). */
clasp_status clasp_avgpool2d_forward(const clasp_tensor *x, int kernel, int stride,
                                     clasp_tensor *y);
/* Its backward: dx [N,C,H,W] gets dy / (kernel*kernel) spread over each
 * window; where windows overlap (stride < kernel) the shares add up;
 * elements no window covers get 0. dx is written, not added to. */
clasp_status clasp_avgpool2d_backward(const clasp_tensor *dy, int kernel, int stride,
                                      clasp_tensor *dx);

/* Zero padding of x [N,C,H,W] by pad = {left, right, top, bottom} pixels
 * (PyTorch's F.pad(x, (l, r, t, b))): y [N,C,H+t+b,W+l+r]. */
clasp_status clasp_pad2d_forward(const clasp_tensor *x, const int pad[4], clasp_tensor *y);
/* Its backward, the crop: dx [N,C,H,W] = dy's window at (top, left). */
clasp_status clasp_pad2d_backward(const clasp_tensor *dy, const int pad[4], clasp_tensor *dx);

/* Per-channel affine map y[n,c,h,w] = x[n,c,h,w] * scale[c] + shift[c] on
 * [N,C,H,W] tensors; scale and shift have C elements, either may be NULL
 * (scale 1, shift 0), not both. Input normalisation (x - mean) / std is scale = 1/std,
 * shift = -mean/std. y may alias x (in place), not scale or shift. The
 * input gradient is clasp_channel_affine(dy, scale, NULL, dx). */
clasp_status clasp_channel_affine(const clasp_tensor *x, const clasp_tensor *scale,
                                  const clasp_tensor *shift, clasp_tensor *y);

/* ---- losses ---------------------------------------------------------- */

/* Softmax cross-entropy with temperature T > 0 on logits z[N,K] and int32
 * labels y[N]: p = softmax(z / T), loss[i] = -w[i] * log p[i, y[i]].
 * w[N] (per-sample weights) may be NULL for all ones. Outputs (each may be
 * NULL): loss[N]; dz[N,K] = grad_scale * d(loss[i])/dz = grad_scale * w[i] *
 * (p - onehot(y)) / T. */
clasp_status clasp_softmax_xent(const clasp_tensor *z, const clasp_tensor *y, float t,
                                const clasp_tensor *w, float grad_scale, clasp_tensor *loss,
                                clasp_tensor *dz);

/* KL(softmax(zp) || softmax(zq)) per row of logits zp, zq [N,K]:
 * loss[i] = sum_j p_ij (log p_ij - log q_ij). Outputs (each may be NULL):
 * loss[N]; dzp, dzq [N,K] = grad_scale * d loss[i] / d zp, d zq. */
clasp_status clasp_kl_div(const clasp_tensor *zp, const clasp_tensor *zq, float grad_scale,
                          clasp_tensor *loss, clasp_tensor *dzp, clasp_tensor *dzq);

/* Carlini–Wagner margin on logits z[N,K], labels y[N]:
 * f[i] = max(z[i,y] - max_{j != y} z[i,j], -kappa). Outputs (each may be
 * NULL): f[N]; dz[N,K] = scale[i] * df[i]/dz (scale[N] may be NULL for ones);
 * the gradient is zero where the clamp at -kappa is active. */
clasp_status clasp_cw_margin(const clasp_tensor *z, const clasp_tensor *y, float kappa,
                             const clasp_tensor *scale, clasp_tensor *f, clasp_tensor *dz);

/* DLR loss of Croce & Hein (ICML 2020) on logits z[N,K], labels y[N], with
 * z sorted per row as z_p1 >= z_p2 >= ... (first index first on ties):
 *   untargeted (target NULL):
 *     loss[i] = -(z_y - max_{j != y} z_j) / (z_p1 - z_p3 + 1e-12)
 *   targeted at int32 target[N] (target[i] != y[i]):
 *     loss[i] = -(z_y - z_t) / (z_p1 - (z_p3 + z_p4) / 2 + 1e-12)
 * Needs K >= 3. With K = 3 the targeted form has no z_p4 and uses z_p3 in
 * its place (denominator z_p1 - z_p3). Outputs (each may be NULL): loss[N];
 * dz[N,K] = d loss[i] / dz. A label or target outside [0, K), or a target
 * equal to the label, gives a NaN loss and a zero gradient row. */
clasp_status clasp_dlr_loss(const clasp_tensor *z, const clasp_tensor *y,
                            const clasp_tensor *target, clasp_tensor *loss, clasp_tensor *dz);

/* ---- elementwise ----------------------------------------------------- */

/* x[i] = min(max(x[i], lo), hi). */
clasp_status clasp_clamp(clasp_tensor *x, float lo, float hi);
/* x[i] = clamp(x[i], x0[i] - eps, x0[i] + eps). */
clasp_status clasp_project_linf(clasp_tensor *x, const clasp_tensor *x0, float eps);
/* x[i] += alpha * sign(g[i]) (sign(0) = 0). */
clasp_status clasp_sign_step(clasp_tensor *x, const clasp_tensor *g, float alpha);
/* One fused L∞ PGD step: x = clamp(proj_{x0,eps}(x + alpha*sign(g)), lo, hi). */
clasp_status clasp_pgd_step(clasp_tensor *x, const clasp_tensor *g, const clasp_tensor *x0,
                            float alpha, float eps, float lo, float hi);
/* One L-inf Auto-PGD step with momentum a and a per-example step size
 * eta[N] (x, x_prev, g, x0 [N,...]); with P(v) = clamp(proj_{x0,eps}(v), lo, hi):
 *   z = P(x + eta[n] * sign(g));  x_new = P(x + a * (z - x) + (1 - a) * (x - x_prev))
 * then x_prev = x (the old x) and x = x_new. a = 1 is a plain projected
 * sign step. */
clasp_status clasp_apgd_step(clasp_tensor *x, clasp_tensor *x_prev, const clasp_tensor *g,
                             const clasp_tensor *x0, const clasp_tensor *eta, float a, float eps,
                             float lo, float hi);
/* out[n] = sqrt(sum over example n of x^2), x[N,...], out[N]. */
clasp_status clasp_l2_norm_per_sample(const clasp_tensor *x, clasp_tensor *out);
/* y += alpha * x. */
clasp_status clasp_axpy(clasp_tensor *y, float alpha, const clasp_tensor *x);
/* x *= alpha. */
clasp_status clasp_scale(clasp_tensor *x, float alpha);
/* out = a + alpha * b (out may alias a or b). */
clasp_status clasp_add_scaled(const clasp_tensor *a, float alpha, const clasp_tensor *b,
                              clasp_tensor *out);
/* out = a * b elementwise (out may alias a or b). */
clasp_status clasp_mul(const clasp_tensor *a, const clasp_tensor *b, clasp_tensor *out);
/* Per example n of x[N,...]: x[n,:] *= s[n]. */
clasp_status clasp_scale_per_sample(clasp_tensor *x, const clasp_tensor *s);
/* Per example n: where mask[n] != 0 (int32 [N]), dst[n,:] = src[n,:]. */
clasp_status clasp_select_rows(clasp_tensor *dst, const clasp_tensor *src,
                               const clasp_tensor *mask);
/* Adds b[j] to every row of z[N,K] (e.g. calibration offsets), then divides
 * by t (t = 1 leaves the scale). */
clasp_status clasp_logit_adjust(clasp_tensor *z, const clasp_tensor *b, float t);

/* tanh change of variables used by CW: x = (tanh(w) + 1) / 2, and its
 * inverse w = atanh(clamp(2x - 1, -1+1e-6, 1-1e-6)). */
clasp_status clasp_tanh_to_box(const clasp_tensor *w, clasp_tensor *x);
clasp_status clasp_box_to_tanh(const clasp_tensor *x, clasp_tensor *w);
/* dw = dx * d x / d w = dx * (1 - tanh(w)^2) / 2. */
clasp_status clasp_tanh_to_box_backward(const clasp_tensor *w, const clasp_tensor *dx,
                                        clasp_tensor *dw);

/* ---- reductions and indexing ----------------------------------------- */

/* out[0] = sum of x (out is a 1-element tensor). */
clasp_status clasp_sum(const clasp_tensor *x, clasp_tensor *out);
/* out[n] (int32) = index of the largest z[n,:] (first one on ties). */
clasp_status clasp_argmax_rows(const clasp_tensor *z, clasp_tensor *out);
/* dst[i,:] = src[idx[i],:] for src[M,D], int32 idx[N], dst[N,D]; works for
 * float and int32 tensors (dst has src's dtype). */
clasp_status clasp_gather_rows(const clasp_tensor *src, const clasp_tensor *idx, clasp_tensor *dst);
/* The same from a data set kept as bytes: src holds m rows of d bytes
 * (packed into 32-bit words; d = dst's row size) and row r's byte b
 * becomes table[b] (256 floats). */
clasp_status clasp_gather_rows_u8(const clasp_tensor *src, const clasp_tensor *table, size_t m,
                                  const clasp_tensor *idx, clasp_tensor *dst);
/* out[i] = table[y[i]] for float table[K], int32 y[N]: per-class weights to
 * per-sample weights. */
clasp_status clasp_gather_class(const clasp_tensor *table, const clasp_tensor *y,
                                clasp_tensor *out);
/* db[O] = sum over N (and H,W for 4-d) of dy, per channel/column: the bias
 * gradient of conv ([N,O,H,W]) and linear ([N,O]). Overwrites db. */
clasp_status clasp_bias_grad(const clasp_tensor *dy, clasp_tensor *db);

/* ---- optimisers ------------------------------------------------------ */

/* SGD with momentum and weight decay, PyTorch's convention:
 * g' = g + wd*w; v = momentum*v + g'; w -= lr * v (v may be NULL when
 * momentum is 0). */
clasp_status clasp_sgd_update(clasp_tensor *w, const clasp_tensor *g, clasp_tensor *v, float lr,
                              float momentum, float weight_decay);
/* Adam (t = step number from 1): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= lr * mhat / (sqrt(vhat) + eps). */
clasp_status clasp_adam_update(clasp_tensor *w, const clasp_tensor *g, clasp_tensor *m,
                               clasp_tensor *v, float lr, float b1, float b2, float eps, int t);

/* ---- random numbers (Philox4x32-10, counter based) ------------------- */

/* A stream: same seed and counter give the same numbers on every run and
 * every device. Each fill advances the counter past what it used. */
typedef struct clasp_rng {
    uint64_t seed;
    uint64_t counter;
} clasp_rng;

static inline clasp_rng clasp_rng_make(uint64_t seed, uint64_t stream)
{
    clasp_rng r = {seed, stream << 40};
    return r;
}

/* Training augmentation of a batch x [N,C,H,W] into y (same size, not x):
 * example i is cut from x zero-padded by `pad` pixels at a random offset
 * (each of the two shifts uniform in [-pad, pad]) and, when flip, mirrored
 * left-right with probability 1/2; the draws come from rng (on the host,
 * so every device makes the same batch for a seed). */
clasp_status clasp_augment_crop_flip(const clasp_tensor *x, int pad, int flip, clasp_rng *rng,
                                     clasp_tensor *y);

/* Fills x with uniform numbers in [lo, hi). */
clasp_status clasp_rng_uniform(clasp_rng *rng, clasp_tensor *x, float lo, float hi);
/* Fills x with normal numbers N(mean, std^2). */
clasp_status clasp_rng_normal(clasp_rng *rng, clasp_tensor *x, float mean, float std);
/* The same streams on the host (for initialisation and reference checks). */
void clasp_rng_uniform_host(clasp_rng *rng, float *x, size_t n, float lo, float hi);
void clasp_rng_normal_host(clasp_rng *rng, float *x, size_t n, float mean, float std);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
