/* GEMM kernels: C = alpha * op(A) * op(B) + beta * C, row-major.
 *
 * One source, three kinds of program, so that each build (and each
 * work-group function PoCL compiles) holds only what is used:
 *   -DGEMM_BASE        gemm_general, gemm_splitk_reduce, gemm_transpose
 *   -DTM=.. -DTN=..    gemm_tile_nn, gemm_tile_tn
 *   -DDM=.. -DDN=..    gemm_tile_nt
 *
 * gemm_general   any transposes and sizes, one element of C per work-item;
 *                the fallback for shapes smaller than a tile.
 * gemm_tile_nn/tn  register-tiled: each work-item owns a TM x TN tile of C
 *                held in float16 accumulators; B is read as float16 rows
 *                along N and A values are broadcast, which maps onto FMAs
 *                with embedded broadcasts on CPUs. No local memory: on CPU
 *                devices the caches do that job and barriers only cost.
 *                Needs M >= TM and N >= TN: the last tile along each axis is
 *                shifted back inside the matrix so every load is in bounds
 *                and full width; it stores only the part no other tile owns.
 *                B may also come packed in 16-column panels (b_panel, see
 *                clasp_gemm_packed_b), each read front to back.
 *                Dimension 2 of the range splits K into chunks of kc whose
 *                results go to separate slices of C (split-K); the host
 *                then sums them with gemm_splitk_reduce.
 * gemm_tile_nt   NT products in dot-product form: both operands are read
 *                along K as float16, each work-item owns a DM x DN tile of C
 *                (one float16 partial sum per element, reduced at the end).
 *                No transposed copy is needed, which pays off when C is
 *                small next to A and B. Same edge tiles and split-K.
 * gemm_transpose  dst = src^T, used to turn big NT products into NN ones.
 *
 * Tile order (tile kernels): dimension 0 enumerates tiles; a work-group
 * holds wg (its size) consecutive tiles down M. With m_fast the groups go
 * on down M, so one panel of B serves all of M while A stays in cache;
 * otherwise they go along N, so consecutive groups share rows of A. */

#if defined(TN) && TN != 16 && TN != 32
#error "TN must be 16 or 32"
#endif

/* C = alpha*acc + beta*C, never reading C when beta is 0 so stale NaNs in
 * an output buffer cannot leak through (0 * NaN = NaN). */
#define GEMM_OUT(acc, cref) \
    ((beta) == 0.0f ? (alpha) * (acc) : (alpha) * (acc) + (beta) * (cref))

/* Tile (ti, tj) of this work-item for an mt x nt grid of tiles. */
inline int2 gemm_tile_index(int mt, int nt, int m_fast)
{
    const int wg = get_local_size(0), g = get_global_id(0);
    const int mt_pad = (mt + wg - 1) / wg * wg;
    if (m_fast) return (int2)(g % mt_pad, g / mt_pad);
    const int grp = g / wg;
    return (int2)(grp / nt * wg + g % wg, grp % nt);
}

#ifdef GEMM_BASE
/* Strides let one kernel serve all four transpose combinations:
 * op(A)[m][k] = A[m*sam + k*sak], op(B)[k][n] = B[k*sbk + n*sbn]. */
__kernel void gemm_general(int M, int N, int K, float alpha,
                           __global const float *A, ulong off_a, int sam, int sak,
                           __global const float *B, ulong off_b, int sbk, int sbn,
                           float beta, __global float *C, ulong off_c, int ldc)
{
    const int n = get_global_id(0), m = get_global_id(1);
    if (n >= N || m >= M) return;
    __global const float *a = A + off_a + (size_t)m * sam;
    __global const float *b = B + off_b + (size_t)n * sbn;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc = fma(a[(size_t)k * sak], b[(size_t)k * sbk], acc);
    __global float *c = C + off_c + (size_t)m * ldc + n;
    *c = GEMM_OUT(acc, *c);
}

/* C[m][n] (C[n][m] when c_trans) = alpha * sum_s P[s][m][n] + beta * C. */
__kernel void gemm_splitk_reduce(int M, int N, int S, __global const float *P, float alpha,
                                 float beta, __global float *C, ulong off_c, int ldc,
                                 int c_trans)
{
    const int n = get_global_id(0), m = get_global_id(1);
    if (n >= N || m >= M) return;
    const size_t slice = (size_t)M * N;
    __global const float *p = P + (size_t)m * N + n;
    float acc = 0.0f;
    for (int s = 0; s < S; s++) acc += p[s * slice];
    __global float *c = C + off_c + (c_trans ? (size_t)n * ldc + m : (size_t)m * ldc + n);
    *c = GEMM_OUT(acc, *c);
}

/* Where element (row, col) of a [rows, ld] matrix goes: plain
 * row * ld + col, or packed in 16-column panels `panel` floats apart
 * (panel = rows * 16; see clasp_gemm_packed_b). */
inline size_t gemm_at(int row, int col, int ld, ulong panel)
{
    return panel ? (size_t)(col >> 4) * panel + (size_t)row * 16 + (size_t)(col & 15)
                 : (size_t)row * ld + (size_t)col;
}

/* dst[c][r] = src[r][c] for src [R,C]; one 16x16 block per work-item keeps
 * both the reads and the writes within a few cache lines. dst is [C,R],
 * plain (row stride ldd) or packed in panels (panel != 0; R % 16 == 0). */
__kernel void gemm_transpose(int R, int Cn, __global const float *src, ulong off_s, int lds,
                             __global float *dst, int ldd, ulong panel)
{
    const int c0 = get_global_id(0) * 16, r0 = get_global_id(1) * 16;
    if (c0 >= Cn || r0 >= R) return;
    src += off_s;
    const int rn = min(16, R - r0), cn = min(16, Cn - c0);
    if (rn == 16 && cn == 16) {
        float16 rows[16];
#pragma unroll
        for (int r = 0; r < 16; r++) rows[r] = vload16(0, src + (size_t)(r0 + r) * lds + c0);
        float t[16][16];
#pragma unroll
        for (int r = 0; r < 16; r++) vstore16(rows[r], 0, t[r]);
        for (int c = 0; c < 16; c++) {
            float16 col = (float16)(t[0][c], t[1][c], t[2][c], t[3][c], t[4][c], t[5][c],
                                    t[6][c], t[7][c], t[8][c], t[9][c], t[10][c], t[11][c],
                                    t[12][c], t[13][c], t[14][c], t[15][c]);
            vstore16(col, 0, dst + gemm_at(c0 + c, r0, ldd, panel));
        }
    } else {
        for (int c = 0; c < cn; c++)
            for (int r = 0; r < rn; r++)
                dst[gemm_at(c0 + c, r0 + r, ldd, panel)] = src[(size_t)(r0 + r) * lds + c0 + c];
    }
}

/* Packs B [K,N] (row stride ldb) into 16-column panels, K rows of 16
 * floats each (N % 16 == 0). gws = (N/16, K). */
__kernel void gemm_pack_b(int K, int N, __global const float *src, ulong off_s, int ldb,
                          __global float *dst)
{
    const int q = get_global_id(0), k = get_global_id(1);
    if (q * 16 >= N || k >= K) return;
    vstore16(vload16(0, src + off_s + (size_t)k * ldb + (size_t)q * 16), 0,
             dst + (size_t)q * 16 * K + (size_t)k * 16);
}
#endif /* GEMM_BASE */

#ifdef TM
#define NV (TN / 16)

inline void gemm_tile_body(const int ta, int M, int N, int K, int kc, float alpha,
                           __global const float *A, ulong off_a, int lda,
                           __global const float *B, ulong off_b, int ldb, float beta,
                           __global float *C, ulong off_c, int ldc, ulong c_slice,
                           int c_trans, int m_fast, ulong b_panel)
{
    const int2 t = gemm_tile_index((M + TM - 1) / TM, (N + TN - 1) / TN, m_fast);
    const int ti = t.x, tj = t.y, s = get_global_id(2);
    if (tj * TN >= N || ti * TM >= M) return;
    const int n0 = min(tj * TN, N - TN), skip_n = tj * TN - n0;
    const int m0 = min(ti * TM, M - TM), skip_m = ti * TM - m0;
    const int k0 = s * kc, k1 = min(K, k0 + kc);

    float16 acc[TM][NV];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[i][v] = (float16)0.0f;

    /* a walks op(A) down column k: step along k is sak, along rows sam. */
    const size_t sam = ta ? 1 : (size_t)lda, sak = ta ? (size_t)lda : 1;
    __global const float *a = A + off_a + (size_t)m0 * sam + (size_t)k0 * sak;
    /* B packed in panels (b_panel != 0, ldb 16): columns n0 .. n0+15 are
     * panel n0/16, whose rows are 16 contiguous floats; n0 is then a
     * multiple of 16 (the host asks for N % 16 == 0). */
    const size_t bv_step = b_panel ? (size_t)b_panel : 16;
    __global const float *b =
        B + off_b + (size_t)k0 * ldb + (b_panel ? (size_t)(n0 >> 4) * b_panel : (size_t)n0);
    int k = k0;
    for (; k + 4 <= k1; k += 4) {
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float16 bv[NV];
#pragma unroll
            for (int v = 0; v < NV; v++) bv[v] = vload16(0, b + v * bv_step + (size_t)u * ldb);
#pragma unroll
            for (int i = 0; i < TM; i++) {
                const float av = a[i * sam + u * sak];
#pragma unroll
                for (int v = 0; v < NV; v++) acc[i][v] = fma((float16)av, bv[v], acc[i][v]);
            }
        }
        a += 4 * sak;
        b += 4 * (size_t)ldb;
    }
    for (; k < k1; k++) {
        float16 bv[NV];
#pragma unroll
        for (int v = 0; v < NV; v++) bv[v] = vload16(0, b + v * bv_step);
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const float av = a[i * sam];
#pragma unroll
            for (int v = 0; v < NV; v++) acc[i][v] = fma((float16)av, bv[v], acc[i][v]);
        }
        a += sak;
        b += ldb;
    }

    __global float *c = C + off_c + (size_t)s * c_slice;
#pragma unroll
    for (int i = 0; i < TM; i++) {
        /* A runtime lower bound would stop the unrolling and push acc to memory. */
        if (i < skip_m) continue;
        const int m = m0 + i;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int j0 = n0 + 16 * v;
            if (!c_trans && skip_n == 0) {
                __global float *cp = c + (size_t)m * ldc + j0;
                float16 r = alpha * acc[i][v];
                if (beta != 0.0f) r = fma((float16)beta, vload16(0, cp), r);
                vstore16(r, 0, cp);
            } else {
                float t[16];
                vstore16(acc[i][v], 0, t);
                for (int j = max(skip_n - 16 * v, 0); j < 16; j++) {
                    __global float *cp = c_trans ? c + (size_t)(j0 + j) * ldc + m
                                                 : c + (size_t)m * ldc + j0 + j;
                    *cp = GEMM_OUT(t[j], *cp);
                }
            }
        }
    }
}

__kernel void gemm_tile_nn(int M, int N, int K, int kc, float alpha,
                           __global const float *A, ulong off_a, int lda,
                           __global const float *B, ulong off_b, int ldb, float beta,
                           __global float *C, ulong off_c, int ldc, ulong c_slice, int c_trans,
                           int m_fast, ulong b_panel)
{
    gemm_tile_body(0, M, N, K, kc, alpha, A, off_a, lda, B, off_b, ldb, beta, C, off_c, ldc,
                   c_slice, c_trans, m_fast, b_panel);
}

__kernel void gemm_tile_tn(int M, int N, int K, int kc, float alpha,
                           __global const float *A, ulong off_a, int lda,
                           __global const float *B, ulong off_b, int ldb, float beta,
                           __global float *C, ulong off_c, int ldc, ulong c_slice, int c_trans,
                           int m_fast, ulong b_panel)
{
    gemm_tile_body(1, M, N, K, kc, alpha, A, off_a, lda, B, off_b, ldb, beta, C, off_c, ldc,
                   c_slice, c_trans, m_fast, b_panel);
}

#endif /* TM */

#ifdef DM
__kernel void gemm_tile_nt(int M, int N, int K, int kc, float alpha,
                           __global const float *A, ulong off_a, int lda,
                           __global const float *B, ulong off_b, int ldb, float beta,
                           __global float *C, ulong off_c, int ldc, ulong c_slice, int m_fast)
{
    const int2 t = gemm_tile_index((M + DM - 1) / DM, (N + DN - 1) / DN, m_fast);
    const int ti = t.x, tj = t.y, s = get_global_id(2);
    if (tj * DN >= N || ti * DM >= M) return;
    const int n0 = min(tj * DN, N - DN), skip_n = tj * DN - n0;
    const int m0 = min(ti * DM, M - DM), skip_m = ti * DM - m0;
    const int k0 = s * kc, k1 = min(K, k0 + kc);
    __global const float *a = A + off_a + (size_t)m0 * lda + k0;
    __global const float *b = B + off_b + (size_t)n0 * ldb + k0;

    float16 acc[DM][DN];
#pragma unroll
    for (int i = 0; i < DM; i++)
#pragma unroll
        for (int j = 0; j < DN; j++) acc[i][j] = (float16)0.0f;
    const int kv = (k1 - k0) / 16 * 16;
    for (int k = 0; k < kv; k += 16) {
        float16 bv[DN];
#pragma unroll
        for (int j = 0; j < DN; j++) bv[j] = vload16(0, b + (size_t)j * ldb + k);
#pragma unroll
        for (int i = 0; i < DM; i++) {
            const float16 av = vload16(0, a + (size_t)i * lda + k);
#pragma unroll
            for (int j = 0; j < DN; j++) acc[i][j] = fma(av, bv[j], acc[i][j]);
        }
    }
    float r[DM][DN];
#pragma unroll
    for (int i = 0; i < DM; i++)
#pragma unroll
        for (int j = 0; j < DN; j++) {
            const float8 h8 = acc[i][j].lo + acc[i][j].hi;
            const float4 h4 = h8.lo + h8.hi;
            const float2 h2 = h4.lo + h4.hi;
            r[i][j] = h2.x + h2.y;
        }
    for (int k = kv; k < k1 - k0; k++)
#pragma unroll
        for (int i = 0; i < DM; i++)
#pragma unroll
            for (int j = 0; j < DN; j++)
                r[i][j] = fma(a[(size_t)i * lda + k], b[(size_t)j * ldb + k], r[i][j]);

    __global float *c = C + off_c + (size_t)s * c_slice;
#pragma unroll
    for (int i = 0; i < DM; i++) {
        if (i < skip_m) continue;
#pragma unroll
        for (int j = 0; j < DN; j++) {
            if (j < skip_n) continue;
            __global float *cp = c + (size_t)(m0 + i) * ldc + n0 + j;
            *cp = GEMM_OUT(r[i][j], *cp);
        }
    }
}
#endif /* DM */
