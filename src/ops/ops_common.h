/* Argument checks and launch helpers shared by the op launchers. */
#ifndef CLASP_OPS_COMMON_H
#define CLASP_OPS_COMMON_H

#include "clasp/ops.h"
#include "runtime/internal.h"

/* "float32" or "int32". */
const char *clasp_ops_dtype_name(clasp_dtype d);

/* "[2,3,4]" into buf. */
void clasp_ops_shape_str(const clasp_tensor *t, char *buf, size_t size);

/* Non-NULL, of dtype dt, and small enough for the kernels' 32-bit element
 * counts; the message names the op and the argument. */
clasp_status clasp_ops_check_tensor(const char *op, const char *name, const clasp_tensor *t,
                                    clasp_dtype dt);

/* a and b belong to the same context. */
clasp_status clasp_ops_check_ctx(const char *op, const char *an, const clasp_tensor *a,
                                 const char *bn, const clasp_tensor *b);

/* The largest power of two that the kernel's and the device's work-group
 * limits and `cap` allow. */
size_t clasp_ops_local_size(clasp_ctx *ctx, cl_kernel k, size_t cap);

/* A 1-d launch of n work-items in groups of the largest power of two that
 * the kernel, the device and `cap` allow. */
clasp_status clasp_ops_launch_1d(clasp_ctx *ctx, cl_kernel k, const char *op, size_t n, size_t cap);

#endif
