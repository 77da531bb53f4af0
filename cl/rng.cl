/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11): a counter-based generator, so every work-item computes
 * its own block from (counter + block index, key) with no shared state.
 *
 * Layout, which src/ops/rng.c reproduces on the host:
 *   key  = {seed low 32 bits, seed high 32 bits}
 *   ctr  = {c low 32 bits, c high 32 bits, 0, 0} with c = rng counter + block
 *   block b yields elements 4b .. 4b+3.
 * The integer -> float steps use only exact operations and a correctly
 * rounded fma, so uniform numbers are bit-identical to the host's. */

#define CLASP_PHILOX_M0 0xD2511F53u
#define CLASP_PHILOX_M1 0xCD9E8D57u
#define CLASP_PHILOX_W0 0x9E3779B9u
#define CLASP_PHILOX_W1 0xBB67AE85u

uint4 clasp_philox4x32_10(ulong counter, ulong seed)
{
    uint4 c = (uint4)((uint)counter, (uint)(counter >> 32), 0u, 0u);
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += CLASP_PHILOX_W0;
            k1 += CLASP_PHILOX_W1;
        }
        uint hi0 = mul_hi(CLASP_PHILOX_M0, c.x), lo0 = CLASP_PHILOX_M0 * c.x;
        uint hi1 = mul_hi(CLASP_PHILOX_M1, c.z), lo1 = CLASP_PHILOX_M1 * c.z;
        c = (uint4)(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    }
    return c;
}

/* [0, 1) with 24 random bits: the integer fits a float's mantissa and the
 * scaling is by a power of two, so both steps are exact. */
float clasp_u01(uint u)
{
    return (float)(u >> 8) * 0x1.0p-24f;
}

/* x = lo + scale * u01 in one correctly rounded fma (-cl-mad-enable could
 * otherwise contract a separate multiply-add differently from the host).
 * Rounding can land on hi itself; that value is moved just below hi to keep
 * the interval half-open. */
__kernel void rng_uniform(__global float *x, const ulong n, const ulong counter,
                          const ulong seed, const float lo, const float scale, const float hi)
{
    ulong b = get_global_id(0);
    ulong first = 4 * b;
    if (first >= n) return;
    uint4 r = clasp_philox4x32_10(counter + b, seed);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int j = 0; j < 4 && first + j < n; j++) {
        float v = fma(scale, clasp_u01(w[j]), lo);
        x[first + j] = v >= hi ? nextafter(hi, lo) : v;
    }
}

/* Box-Muller on the pairs (w0, w1) and (w2, w3): u1 in (0, 1] (so the log
 * is finite), u2 in [0, 1). The transcendental functions may differ from the
 * host's libm by a few ulp, so normal numbers match the host closely but
 * not necessarily bit for bit. */
__kernel void rng_normal(__global float *x, const ulong n, const ulong counter,
                         const ulong seed, const float mean, const float stddev)
{
    ulong b = get_global_id(0);
    ulong first = 4 * b;
    if (first >= n) return;
    uint4 r = clasp_philox4x32_10(counter + b, seed);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int p = 0; p < 2; p++) {
        float u1 = (float)((w[2 * p] >> 8) + 1u) * 0x1.0p-24f;
        float u2 = clasp_u01(w[2 * p + 1]);
        float rad = sqrt(-2.0f * log(u1));
        float th = 6.28318530717958647692f * u2;
        ulong e = first + 2 * (ulong)p;
        if (e < n) x[e] = fma(stddev, rad * cos(th), mean);
        if (e + 1 < n) x[e + 1] = fma(stddev, rad * sin(th), mean);
    }
}
