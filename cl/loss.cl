/* Loss kernels on logits z[N,K]: one work-item per row. Rows are short
 * (K is the number of classes), and N is large enough to fill the device.
 *
 * Optional inputs and outputs come with a has_* flag; when the flag is 0
 * the host passes some other valid buffer in that slot, which the kernel
 * never touches (NULL buffer arguments are not portable everywhere).
 *
 * Every exponent is taken of (z_j - max_j z), which is <= 0, so exp never
 * overflows and the sum of exponentials lies in [1, K]; losses come from
 * the log-sum-exp form, never from log(p), so they stay finite even when a
 * probability underflows to 0.
 *
 * A label outside [0, K) cannot be reported from the device: its loss is
 * NaN (so it shows up in any sum) and its gradient row is zero. */

__kernel void softmax_xent(__global const float *z, __global const int *y,
                           __global const float *w, const int has_w, const int n, const int k,
                           const float t, const float grad_scale, __global float *loss,
                           const int has_loss, __global float *dz, const int has_dz)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    __global const float *zr = z + (size_t)i * (size_t)k;
    float zmax = zr[0];
    for (int j = 1; j < k; j++) zmax = fmax(zmax, zr[j]);
    /* Dividing the shifted logits by t (rather than shifting z/t) keeps the
     * largest term at exactly exp(0) = 1 for any t. */
    float s = 0.0f;
    for (int j = 0; j < k; j++) s += exp((zr[j] - zmax) / t);
    int yi = y[i];
    int valid = yi >= 0 && yi < k;
    float wi = has_w ? w[i] : 1.0f;
    /* The index is clamped so an invalid label never reads outside the row. */
    float zy = zr[valid ? yi : 0];
    if (has_loss) loss[i] = valid ? wi * (log(s) - (zy - zmax) / t) : NAN;
    if (has_dz) {
        __global float *dr = dz + (size_t)i * (size_t)k;
        float c = grad_scale * wi / t;
        float inv_s = 1.0f / s;
        for (int j = 0; j < k; j++) {
            float p = exp((zr[j] - zmax) / t) * inv_s;
            dr[j] = valid ? c * (p - (j == yi ? 1.0f : 0.0f)) : 0.0f;
        }
    }
}

/* KL(p || q) with p = softmax(zp), q = softmax(zq). log p_j and log q_j are
 * formed as shifted logit minus log-sum, so identical rows give exactly 0.
 * Terms with p_j = 0 contribute 0 (the limit of p log p), which also avoids
 * 0 * inf when a log underflows. Gradients:
 *   d KL / d zq_j = q_j - p_j
 *   d KL / d zp_j = p_j * ((log p_j - log q_j) - KL). */
__kernel void kl_div(__global const float *zp, __global const float *zq, const int n,
                     const int k, const float grad_scale, __global float *loss,
                     const int has_loss, __global float *dzp, const int has_dzp,
                     __global float *dzq, const int has_dzq)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    size_t base = (size_t)i * (size_t)k;
    __global const float *pr = zp + base;
    __global const float *qr = zq + base;
    float pmax = pr[0], qmax = qr[0];
    for (int j = 1; j < k; j++) {
        pmax = fmax(pmax, pr[j]);
        qmax = fmax(qmax, qr[j]);
    }
    float sp = 0.0f, sq = 0.0f;
    for (int j = 0; j < k; j++) {
        sp += exp(pr[j] - pmax);
        sq += exp(qr[j] - qmax);
    }
    float lsp = log(sp), lsq = log(sq);
    float inv_sp = 1.0f / sp;
    float kl = 0.0f;
    for (int j = 0; j < k; j++) {
        float dp = pr[j] - pmax;
        float p = exp(dp) * inv_sp;
        if (p > 0.0f) kl += p * ((dp - lsp) - ((qr[j] - qmax) - lsq));
    }
    if (has_loss) loss[i] = kl;
    if (!has_dzp && !has_dzq) return;
    float inv_sq = 1.0f / sq;
    for (int j = 0; j < k; j++) {
        float dp = pr[j] - pmax, dq = qr[j] - qmax;
        float p = exp(dp) * inv_sp;
        float q = exp(dq) * inv_sq;
        if (has_dzq) dzq[base + j] = grad_scale * (q - p);
        if (has_dzp)
            dzp[base + j] = p > 0.0f ? grad_scale * p * (((dp - lsp) - (dq - lsq)) - kl) : 0.0f;
    }
}

/* Carlini-Wagner margin f = max(z_y - max_{j != y} z_j, -kappa). The
 * runner-up is the first largest logit other than the label, so ties pick
 * one subgradient deterministically. The clamp counts as active only when
 * the margin is strictly below -kappa: at the boundary the gradient still
 * flows (as with a clamp's usual subgradient), so an attack starting on a
 * tie is not stuck. K >= 2 is checked on the host. */
__kernel void cw_margin(__global const float *z, __global const int *y, const int n,
                        const int k, const float kappa, __global const float *scale,
                        const int has_scale, __global float *f, const int has_f,
                        __global float *dz, const int has_dz)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    __global const float *zr = z + (size_t)i * (size_t)k;
    int yi = y[i];
    if (yi < 0 || yi >= k) {
        if (has_f) f[i] = NAN;
        if (has_dz)
            for (int j = 0; j < k; j++) dz[(size_t)i * (size_t)k + j] = 0.0f;
        return;
    }
    int jb = -1;
    float best = 0.0f;
    for (int j = 0; j < k; j++) {
        if (j == yi) continue;
        if (jb < 0 || zr[j] > best) {
            best = zr[j];
            jb = j;
        }
    }
    float m = zr[yi] - best;
    int clamped = m < -kappa;
    if (has_f) f[i] = clamped ? -kappa : m;
    if (has_dz) {
        __global float *dr = dz + (size_t)i * (size_t)k;
        for (int j = 0; j < k; j++) dr[j] = 0.0f;
        if (!clamped) {
            float s = has_scale ? scale[i] : 1.0f;
            dr[yi] = s;
            dr[jb] = -s;
        }
    }
}

/* DLR loss (Croce & Hein 2020), untargeted or targeted (has_target). The
 * four largest logits are found in one pass by insertion; a later index
 * never displaces an equal earlier one, so ties resolve to the first index.
 * The gradient adds each term's share to its index, so coinciding indices
 * (e.g. the label being p1) sum up correctly:
 *   loss = -num / den,  d loss = -d num / den + num / den^2 * d den.
 * K >= 3 is checked on the host; for K = 3 the targeted p4 is p3. */
__kernel void dlr_loss(__global const float *z, __global const int *y,
                       __global const int *target, const int has_target, const int n,
                       const int k, __global float *loss, const int has_loss,
                       __global float *dz, const int has_dz)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    __global const float *zr = z + (size_t)i * (size_t)k;
    int yi = y[i];
    int ti = has_target ? target[i] : 0;
    int valid = yi >= 0 && yi < k && (!has_target || (ti >= 0 && ti < k && ti != yi));
    if (!valid) {
        if (has_loss) loss[i] = NAN;
        if (has_dz)
            for (int j = 0; j < k; j++) dz[(size_t)i * (size_t)k + j] = 0.0f;
        return;
    }
    int p[4] = {-1, -1, -1, -1};
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int other = -1; /* largest logit other than the label */
    for (int j = 0; j < k; j++) {
        float zj = zr[j];
        if (j != yi && (other < 0 || zj > zr[other])) other = j;
        int pos = 4;
        while (pos > 0 && (p[pos - 1] < 0 || zj > v[pos - 1])) pos--;
        if (pos < 4) {
            for (int q = 3; q > pos; q--) {
                p[q] = p[q - 1];
                v[q] = v[q - 1];
            }
            p[pos] = j;
            v[pos] = zj;
        }
    }
    int c = has_target ? ti : other;
    int p4 = k > 3 ? p[3] : p[2];
    float num = zr[yi] - zr[c];
    float den = has_target ? v[0] - 0.5f * (v[2] + zr[p4]) + 1e-12f : v[0] - v[2] + 1e-12f;
    if (has_loss) loss[i] = -num / den;
    if (has_dz) {
        __global float *dr = dz + (size_t)i * (size_t)k;
        for (int j = 0; j < k; j++) dr[j] = 0.0f;
        float g = num / (den * den);
        dr[yi] -= 1.0f / den;
        dr[c] += 1.0f / den;
        dr[p[0]] += g;
        if (has_target) {
            dr[p[2]] -= 0.5f * g;
            dr[p4] -= 0.5f * g;
        } else {
            dr[p[2]] -= g;
        }
    }
}
