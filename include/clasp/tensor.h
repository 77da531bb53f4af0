/* clasp — device tensors.
 *
 * A tensor is a float32 (or int32) NCHW array in one device buffer. Buffers
 * come from a per-context pool, so freeing and making tensors of the same
 * size in a loop allocates nothing after the first round. */
#ifndef CLASP_TENSOR_H
#define CLASP_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/runtime.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

#define CLASP_MAX_DIMS 4

typedef enum clasp_dtype { CLASP_F32 = 0, CLASP_I32 = 1 } clasp_dtype;

typedef struct clasp_tensor {
    clasp_ctx *ctx;
    void *buf; /* cl_mem */
    clasp_dtype dtype;
    int ndim;
    int shape[CLASP_MAX_DIMS];
    size_t numel;
    size_t capacity; /* elements the buffer holds (>= numel) */
    /* Changes whenever the contents may have changed, and is never the
     * same for two tensors: set by clasp_tensor_new / _ensure, and renewed
     * by the writes, copies and fills below, the optimiser updates
     * (clasp_sgd_update, clasp_adam_update), the running statistics of
     * clasp_batchnorm_forward_train, the in-place arithmetic
     * (clasp_axpy, clasp_scale, clasp_add_scaled, clasp_mul, clasp_clamp,
     * clasp_rng_uniform, clasp_rng_normal) and clasp_model_param. Results
     * derived from a tensor (the transformed convolution weights) are kept
     * for as long as its version stays the same; code that writes a
     * tensor by other means calls clasp_tensor_touch. */
    uint64_t version;
} clasp_tensor;

/* Gives t a new version: its contents changed (see clasp_tensor.version). */
void clasp_tensor_touch(clasp_tensor *t);

/* New uninitialised tensor. */
clasp_status clasp_tensor_new(clasp_ctx *ctx, clasp_dtype dtype, int ndim, const int *shape,
                              clasp_tensor **out);
/* Shorthands for float32 tensors of 1, 2 and 4 dimensions. */
clasp_status clasp_tensor_new1(clasp_ctx *ctx, int n0, clasp_tensor **out);
clasp_status clasp_tensor_new2(clasp_ctx *ctx, int n0, int n1, clasp_tensor **out);
clasp_status clasp_tensor_new4(clasp_ctx *ctx, int n0, int n1, int n2, int n3, clasp_tensor **out);

/* Returns the buffer to the pool; NULL is harmless. */
void clasp_tensor_free(clasp_tensor *t);

/* Makes *t have the given shape, reusing its buffer when large enough
 * (allocating *t when NULL). Contents are undefined afterwards. */
clasp_status clasp_tensor_ensure(clasp_ctx *ctx, clasp_tensor **t, clasp_dtype dtype, int ndim,
                                 const int *shape);

/* Changes the shape without moving data; numel must not change. */
clasp_status clasp_tensor_reshape(clasp_tensor *t, int ndim, const int *shape);

/* Host <-> device copies of the whole tensor (blocking). */
clasp_status clasp_tensor_write(clasp_tensor *t, const void *host);
clasp_status clasp_tensor_read(const clasp_tensor *t, void *host);
/* Part of a tensor: `count` elements starting at element `offset`. */
clasp_status clasp_tensor_write_part(clasp_tensor *t, size_t offset, size_t count,
                                     const void *host);
clasp_status clasp_tensor_read_part(const clasp_tensor *t, size_t offset, size_t count, void *host);

/* Device-side copy (same numel and dtype) and fill. */
clasp_status clasp_tensor_copy(clasp_tensor *dst, const clasp_tensor *src);
clasp_status clasp_tensor_fill(clasp_tensor *t, float value);
/* Device-side copy of `count` elements from src (from element src_offset)
 * into dst (from dst_offset); both must hold them and share the dtype's
 * size. */
clasp_status clasp_tensor_copy_part(clasp_tensor *dst, size_t dst_offset, const clasp_tensor *src,
                                    size_t src_offset, size_t count);

/* A new tensor with the same shape/dtype and a copy of the data. */
clasp_status clasp_tensor_clone(const clasp_tensor *src, clasp_tensor **out);

/* Size of dimension i counting from the front; 1 when i >= ndim. */
int clasp_tensor_dim(const clasp_tensor *t, int i);

/* Elements per example: numel / shape[0]. */
size_t clasp_tensor_per_example(const clasp_tensor *t);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
