/* GEMM internals: the implementations ("paths") behind clasp_gemm, their
 * parameters, and hooks to force or record a choice. Used by the tests, the
 * timing tool and (later) the autotuner. Not installed. */
#ifndef CLASP_GEMM_INTERNAL_H
#define CLASP_GEMM_INTERNAL_H

#include "clasp/ops.h"
#include "clasp/tune.h"

/* The paths, their parameters and the problem record are declared in
 * clasp/tune.h (the tuner's results name them). */

/* Makes every later clasp_gemm on ctx use p (NULL or path AUTO: back to
 * choosing). Shapes the forced path cannot run (a TILED tile larger than
 * the matrix) fall back to GENERAL. Takes precedence over CLASP_GEMM. */
clasp_status clasp_gemm_force(clasp_ctx *ctx, const clasp_gemm_params *p);

/* Records the choice for one problem (transposes and sizes), e.g. from an
 * autotuner; later calls with that problem use it unless forced. */
clasp_status clasp_gemm_set_choice(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k,
                                   const clasp_gemm_params *p);

/* What clasp_gemm would run for this problem, fully resolved (no zero
 * fields, path never AUTO). */
clasp_status clasp_gemm_choose(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k,
                               clasp_gemm_params *out);

/* The candidates worth timing for a problem, the heuristic's pick first;
 * writes at most max and returns how many there are in all. */
int clasp_gemm_candidates(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k,
                          clasp_gemm_params *out, int max);

/* clasp_gemm with an explicit implementation (zero fields filled in as by
 * the heuristic). CLASP_ERR_UNSUPPORTED when p cannot run this shape. */
clasp_status clasp_gemm_with(clasp_ctx *ctx, const clasp_gemm_params *p, int trans_a, int trans_b,
                             int m, int n, int k, float alpha, const clasp_tensor *a, size_t off_a,
                             int lda, const clasp_tensor *b, size_t off_b, int ldb, float beta,
                             clasp_tensor *c, size_t off_c, int ldc);

/* Starts (on: forgetting earlier ones) or stops recording the distinct
 * problems that clasp_gemm runs on ctx, for the tuner: it times exactly
 * what a workload issues. clasp_gemm_with is never recorded. */
clasp_status clasp_gemm_record(clasp_ctx *ctx, int on);

/* Copies at most max recorded problems, in first-seen order, and returns
 * how many there are. */
size_t clasp_gemm_recorded(clasp_ctx *ctx, clasp_gemm_problem *out, size_t max);

/* Columns per panel of a packed B (clasp_gemm_packed_b). */
#define CLASP_GEMM_PANEL 16

/* C = alpha * op(A) * B + beta * C with B [k, n] packed in panels: panel q
 * holds columns 16q .. 16q+15 as k contiguous rows of 16 floats, so B
 * takes n*k floats from off_b and panel q starts at off_b + q*16*k. n must
 * be a multiple of 16. The tiled kernels read a panel front to back, where
 * a plain B with a long row would be read 16 floats per row, a new page
 * every row (TLB misses that cost CPUs several times the arithmetic). The
 * producer writes the panels directly (im2col in conv.c), so no copy is
 * made. The overlap checks of clasp_gemm are not made. */
clasp_status clasp_gemm_packed_b(clasp_ctx *ctx, int trans_a, int m, int n, int k, float alpha,
                                 const clasp_tensor *a, size_t off_a, int lda,
                                 const clasp_tensor *b, size_t off_b, float beta, clasp_tensor *c,
                                 size_t off_c, int ldc);

/* dst [cols, rows] (row stride rows) = src^T for src [rows, cols] at
 * element off with row stride ld; enqueued like a GEMM. */
clasp_status clasp_gemm_transpose(clasp_ctx *ctx, int rows, int cols, const clasp_tensor *src,
                                  size_t off, int ld, clasp_tensor *dst);

/* 1 when callers may use clasp_gemm_packed_b: no path is forced (by
 * clasp_gemm_force or CLASP_GEMM), which packed B would bypass. */
int clasp_gemm_may_pack(clasp_ctx *ctx);

#endif
