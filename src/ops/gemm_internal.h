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
clasp_status clasp_gemm_set_choice(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n,
                                   int k, const clasp_gemm_params *p);

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
clasp_status clasp_gemm_with(clasp_ctx *ctx, const clasp_gemm_params *p, int trans_a,
                             int trans_b, int m, int n, int k, float alpha,
                             const clasp_tensor *a, size_t off_a, int lda,
                             const clasp_tensor *b, size_t off_b, int ldb, float beta,
                             clasp_tensor *c, size_t off_c, int ldc);


/* Starts (on: forgetting earlier ones) or stops recording the distinct
 * problems that clasp_gemm runs on ctx, for the tuner: it times exactly
 * what a workload issues. clasp_gemm_with is never recorded. */
clasp_status clasp_gemm_record(clasp_ctx *ctx, int on);

/* Copies at most max recorded problems, in first-seen order, and returns
 * how many there are. */
size_t clasp_gemm_recorded(clasp_ctx *ctx, clasp_gemm_problem *out, size_t max);

#endif
