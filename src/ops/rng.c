/* Counter-based random numbers (Philox4x32-10, cl/rng.cl) on the device,
 * and the same streams on the host.
 *
 * A fill of n numbers uses Philox blocks counter, counter+1, ...,
 * counter + ceil(n/4) - 1 (four 32-bit words each, element 4b+j from word j
 * of block b; normal numbers take the words in pairs for Box-Muller) and
 * then advances the counter past them, so consecutive fills never reuse a
 * block. The key is the 64-bit seed. cl/rng.cl documents the exact layout;
 * the host code below must follow it word for word.
 *
 * Uniform numbers are bit-identical on host and device: the word becomes a
 * float through exact steps and one correctly rounded fma. Normal numbers
 * go through log, sqrt, cos and sin, whose last bits OpenCL lets differ
 * from the host's libm (a few ulp), so they agree closely, not exactly. */
#include <math.h>
#include <stdint.h>

#include "clasp/ops.h"
#include "ops/ops_common.h"
#include "runtime/internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox4x32_10(uint64_t counter, uint64_t seed, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* 24 random bits scaled by 2^-24: exact in float, in [0, 1). */
static float u01(uint32_t u)
{
    return (float)(u >> 8) * 0x1p-24f;
}

static uint64_t blocks_for(size_t n)
{
    return ((uint64_t)n + 3) / 4;
}

static clasp_status check_fill(const char *op, const clasp_rng *rng, const clasp_tensor *x)
{
    if (!rng) return clasp_error(CLASP_ERR_INVALID, "%s: rng is NULL", op);
    if (!x) return clasp_error(CLASP_ERR_INVALID, "%s: x is NULL", op);
    if (x->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "%s: x must be float32, got int32", op);
    return CLASP_OK;
}

clasp_status clasp_rng_uniform(clasp_rng *rng, clasp_tensor *x, float lo, float hi)
{
    static const char op[] = "clasp_rng_uniform";
    CLASP_TRY(check_fill(op, rng, x));
    clasp_tensor_touch(x);
    float scale = hi - lo;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi) || !isfinite(scale))
        return clasp_error(CLASP_ERR_INVALID,
                           "%s: need finite lo <= hi with a finite width, got [%g, %g)", op,
                           (double)lo, (double)hi);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "rng", NULL, "rng_uniform", &k));
    cl_mem mx = clasp_mem(x);
    cl_ulong n = x->numel, ctr = rng->counter, seed = rng->seed;
    cl_float l = lo, s = scale, h = hi;
    CLASP_TRY(clasp_kernel_args(k, 7, KARG(mx), KARG(n), KARG(ctr), KARG(seed), KARG(l), KARG(s),
                                KARG(h)));
    uint64_t blocks = blocks_for(x->numel);
    CLASP_TRY(clasp_ops_launch_1d(x->ctx, k, "rng_uniform", blocks, 64));
    rng->counter += blocks;
    return CLASP_OK;
}

clasp_status clasp_rng_normal(clasp_rng *rng, clasp_tensor *x, float mean, float std)
{
    static const char op[] = "clasp_rng_normal";
    CLASP_TRY(check_fill(op, rng, x));
    clasp_tensor_touch(x);
    if (!isfinite(mean) || !(std >= 0) || isinf(std))
        return clasp_error(CLASP_ERR_INVALID, "%s: need finite mean and std >= 0, got %g, %g", op,
                           (double)mean, (double)std);
    if (!x->numel) return CLASP_OK;
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(x->ctx, "rng", NULL, "rng_normal", &k));
    cl_mem mx = clasp_mem(x);
    cl_ulong n = x->numel, ctr = rng->counter, seed = rng->seed;
    cl_float m = mean, s = std;
    CLASP_TRY(clasp_kernel_args(k, 6, KARG(mx), KARG(n), KARG(ctr), KARG(seed), KARG(m), KARG(s)));
    uint64_t blocks = blocks_for(x->numel);
    CLASP_TRY(clasp_ops_launch_1d(x->ctx, k, "rng_normal", blocks, 64));
    rng->counter += blocks;
    return CLASP_OK;
}

void clasp_rng_uniform_host(clasp_rng *rng, float *x, size_t n, float lo, float hi)
{
    if (!rng || !x || !n) return;
    float scale = hi - lo;
    uint64_t blocks = blocks_for(n);
    for (uint64_t b = 0; b < blocks; b++) {
        uint32_t w[4];
        philox4x32_10(rng->counter + b, rng->seed, w);
        for (size_t j = 0; j < 4 && 4 * b + j < n; j++) {
            /* fmaf, not lo + scale * u: the device uses fma, and a separate
             * multiply and add would round twice. */
            float v = fmaf(scale, u01(w[j]), lo);
            x[4 * b + j] = v >= hi ? nextafterf(hi, lo) : v;
        }
    }
    rng->counter += blocks;
}

void clasp_rng_normal_host(clasp_rng *rng, float *x, size_t n, float mean, float std)
{
    if (!rng || !x || !n) return;
    uint64_t blocks = blocks_for(n);
    for (uint64_t b = 0; b < blocks; b++) {
        uint32_t w[4];
        philox4x32_10(rng->counter + b, rng->seed, w);
        for (int p = 0; p < 2; p++) {
            /* u1 in (0, 1] keeps the log finite. */
            float u1 = (float)((w[2 * p] >> 8) + 1u) * 0x1p-24f;
            float u2 = u01(w[2 * p + 1]);
            float rad = sqrtf(-2.0f * logf(u1));
            float th = 6.28318530717958647692f * u2;
            uint64_t e = 4 * b + 2 * (uint64_t)p;
            if (e < n) x[e] = fmaf(std, rad * cosf(th), mean);
            if (e + 1 < n) x[e + 1] = fmaf(std, rad * sinf(th), mean);
        }
    }
    rng->counter += blocks;
}
