/* Device tensors and the buffer pool. */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

/* Takes the smallest free buffer that fits and wastes at most half of
 * itself; otherwise allocates. */
static clasp_status pool_take(clasp_ctx *ctx, size_t bytes, cl_mem *mem, size_t *got)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < ctx->n_pool; i++) {
        size_t b = ctx->pool[i].bytes;
        if (b >= bytes && b <= 2 * bytes + 256 && (best == (size_t)-1 || b < ctx->pool[best].bytes))
            best = i;
    }
    if (best != (size_t)-1) {
        *mem = ctx->pool[best].mem;
        *got = ctx->pool[best].bytes;
        ctx->pool[best] = ctx->pool[--ctx->n_pool];
        return CLASP_OK;
    }
    cl_int err;
    *mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
        err == CL_OUT_OF_HOST_MEMORY) {
        /* Give the pooled buffers back to the device and try once more. */
        for (size_t i = 0; i < ctx->n_pool; i++) {
            clReleaseMemObject(ctx->pool[i].mem);
            ctx->dev_bytes -= ctx->pool[i].bytes;
        }
        ctx->n_pool = 0;
        *mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    }
    if (err != CL_SUCCESS)
        return clasp_error(CLASP_ERR_NOMEM, "clCreateBuffer(%zu bytes) failed: %s (%d)", bytes,
                           clasp_cl_error_name(err), (int)err);
    *got = bytes;
    ctx->dev_bytes += bytes;
    if (ctx->dev_bytes > ctx->dev_peak) ctx->dev_peak = ctx->dev_bytes;
    return CLASP_OK;
}

static void pool_give(clasp_ctx *ctx, cl_mem mem, size_t bytes)
{
    if (ctx->n_pool == ctx->cap_pool) {
        size_t cap = ctx->cap_pool ? 2 * ctx->cap_pool : 64;
        clasp_pool_buf *grown = realloc(ctx->pool, cap * sizeof *grown);
        if (!grown) {
            clReleaseMemObject(mem);
            ctx->dev_bytes -= bytes;
            return;
        }
        ctx->pool = grown;
        ctx->cap_pool = cap;
    }
    ctx->pool[ctx->n_pool++] = (clasp_pool_buf){mem, bytes};
}

static clasp_status shape_numel(int ndim, const int *shape, size_t *numel)
{
    if (ndim < 0 || ndim > CLASP_MAX_DIMS)
        return clasp_error(CLASP_ERR_INVALID, "tensor rank %d outside 0..%d", ndim, CLASP_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return clasp_error(CLASP_ERR_INVALID, "negative tensor dimension %d", shape[i]);
        n *= (size_t)shape[i];
    }
    *numel = n;
    return CLASP_OK;
}

/* The last version given out; versions are unique across all tensors,
 * so a freed tensor's version never matches a new tensor at its address. */
static uint64_t g_version;

void clasp_tensor_touch(clasp_tensor *t)
{
    if (t) t->version = __atomic_add_fetch(&g_version, 1, __ATOMIC_RELAXED);
}

clasp_status clasp_tensor_new(clasp_ctx *ctx, clasp_dtype dtype, int ndim, const int *shape,
                              clasp_tensor **out)
{
    *out = NULL;
    size_t numel;
    CLASP_TRY(shape_numel(ndim, shape, &numel));
    clasp_tensor *t = calloc(1, sizeof *t);
    if (!t) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    cl_mem mem = NULL;
    size_t bytes = 0;
    clasp_status st = pool_take(ctx, (numel ? numel : 1) * 4, &mem, &bytes);
    if (st != CLASP_OK) {
        free(t);
        return st;
    }
    t->ctx = ctx;
    t->buf = mem;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->capacity = bytes / 4;
    clasp_tensor_touch(t);
    *out = t;
    return CLASP_OK;
}

clasp_status clasp_tensor_new1(clasp_ctx *ctx, int n0, clasp_tensor **out)
{
    return clasp_tensor_new(ctx, CLASP_F32, 1, (int[]){n0}, out);
}

clasp_status clasp_tensor_new2(clasp_ctx *ctx, int n0, int n1, clasp_tensor **out)
{
    return clasp_tensor_new(ctx, CLASP_F32, 2, (int[]){n0, n1}, out);
}

clasp_status clasp_tensor_new4(clasp_ctx *ctx, int n0, int n1, int n2, int n3, clasp_tensor **out)
{
    return clasp_tensor_new(ctx, CLASP_F32, 4, (int[]){n0, n1, n2, n3}, out);
}

void clasp_tensor_free(clasp_tensor *t)
{
    if (!t) return;
    pool_give(t->ctx, clasp_mem(t), t->capacity * 4);
    free(t);
}

clasp_status clasp_tensor_ensure(clasp_ctx *ctx, clasp_tensor **t, clasp_dtype dtype, int ndim,
                                 const int *shape)
{
    size_t numel;
    CLASP_TRY(shape_numel(ndim, shape, &numel));
    if (*t && (*t)->capacity >= numel && (*t)->capacity <= 2 * numel + 64) {
        clasp_tensor *x = *t;
        x->dtype = dtype;
        x->ndim = ndim;
        for (int i = 0; i < ndim; i++) x->shape[i] = shape[i];
        x->numel = numel;
        clasp_tensor_touch(x);
        return CLASP_OK;
    }
    clasp_tensor_free(*t);
    *t = NULL;
    return clasp_tensor_new(ctx, dtype, ndim, shape, t);
}

clasp_status clasp_tensor_reshape(clasp_tensor *t, int ndim, const int *shape)
{
    size_t numel;
    CLASP_TRY(shape_numel(ndim, shape, &numel));
    if (numel != t->numel)
        return clasp_error(CLASP_ERR_INVALID, "reshape from %zu to %zu elements", t->numel, numel);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return CLASP_OK;
}

clasp_status clasp_tensor_write_part(clasp_tensor *t, size_t offset, size_t count, const void *host)
{
    if (offset + count > t->numel)
        return clasp_error(CLASP_ERR_INVALID, "write of %zu+%zu elements into %zu", offset, count,
                           t->numel);
    if (!count) return CLASP_OK;
    clasp_tensor_touch(t);
    CLASP_CL_TRY(clEnqueueWriteBuffer(t->ctx->queue, clasp_mem(t), CL_TRUE, offset * 4, count * 4,
                                      host, 0, NULL, NULL),
                 "clEnqueueWriteBuffer");
    return CLASP_OK;
}

clasp_status clasp_tensor_read_part(const clasp_tensor *t, size_t offset, size_t count, void *host)
{
    if (offset + count > t->numel)
        return clasp_error(CLASP_ERR_INVALID, "read of %zu+%zu elements from %zu", offset, count,
                           t->numel);
    if (!count) return CLASP_OK;
    CLASP_CL_TRY(clEnqueueReadBuffer(t->ctx->queue, clasp_mem(t), CL_TRUE, offset * 4, count * 4,
                                     host, 0, NULL, NULL),
                 "clEnqueueReadBuffer");
    return CLASP_OK;
}

clasp_status clasp_tensor_write(clasp_tensor *t, const void *host)
{
    return clasp_tensor_write_part(t, 0, t->numel, host);
}

clasp_status clasp_tensor_read(const clasp_tensor *t, void *host)
{
    return clasp_tensor_read_part(t, 0, t->numel, host);
}

clasp_status clasp_tensor_copy(clasp_tensor *dst, const clasp_tensor *src)
{
    if (dst->numel != src->numel)
        return clasp_error(CLASP_ERR_INVALID, "copy of %zu elements into %zu", src->numel,
                           dst->numel);
    if (!src->numel || dst->buf == src->buf) return CLASP_OK;
    clasp_tensor_touch(dst);
    clasp_ctx *ctx = dst->ctx;
    CLASP_CL_TRY(clEnqueueCopyBuffer(ctx->queue, clasp_mem(src), clasp_mem(dst), 0, 0,
                                     src->numel * 4, 0, NULL, clasp_profile_event(ctx, "copy")),
                 "clEnqueueCopyBuffer");
    return CLASP_OK;
}

clasp_status clasp_tensor_copy_part(clasp_tensor *dst, size_t dst_offset, const clasp_tensor *src,
                                    size_t src_offset, size_t count)
{
    if (dst_offset > dst->numel || count > dst->numel - dst_offset || src_offset > src->numel ||
        count > src->numel - src_offset)
        return clasp_error(CLASP_ERR_INVALID,
                           "copy of %zu elements from %zu of %zu into %zu of %zu", count,
                           src_offset, src->numel, dst_offset, dst->numel);
    if (!count) return CLASP_OK;
    clasp_tensor_touch(dst);
    clasp_ctx *ctx = dst->ctx;
    CLASP_CL_TRY(clEnqueueCopyBuffer(ctx->queue, clasp_mem(src), clasp_mem(dst), src_offset * 4,
                                     dst_offset * 4, count * 4, 0, NULL,
                                     clasp_profile_event(ctx, "copy")),
                 "clEnqueueCopyBuffer");
    return CLASP_OK;
}

clasp_status clasp_tensor_fill(clasp_tensor *t, float value)
{
    if (!t->numel) return CLASP_OK;
    clasp_tensor_touch(t);
    clasp_ctx *ctx = t->ctx;
    int32_t iv = (int32_t)value;
    cl_uint bits;
    if (t->dtype == CLASP_I32) memcpy(&bits, &iv, sizeof bits);
    else memcpy(&bits, &value, sizeof bits);
    /* A kernel, not clEnqueueFillBuffer: see fill_u32 in cl/elementwise.cl. */
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "elementwise", NULL, "fill_u32", &k));
    cl_mem m = clasp_mem(t);
    cl_ulong n = t->numel;
    CLASP_TRY(clasp_kernel_args(k, 3, KARG(m), KARG(bits), KARG(n)));
    size_t lws = 64, gws = (size_t)n;
    return clasp_launch(ctx, k, "fill", 1, &gws, &lws);
}

clasp_status clasp_tensor_clone(const clasp_tensor *src, clasp_tensor **out)
{
    CLASP_TRY(clasp_tensor_new(src->ctx, src->dtype, src->ndim, src->shape, out));
    clasp_status st = clasp_tensor_copy(*out, src);
    if (st != CLASP_OK) {
        clasp_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

int clasp_tensor_dim(const clasp_tensor *t, int i)
{
    return i < t->ndim ? t->shape[i] : 1;
}

size_t clasp_tensor_per_example(const clasp_tensor *t)
{
    return t->ndim && t->shape[0] ? t->numel / (size_t)t->shape[0] : t->numel;
}

size_t clasp_ctx_device_bytes(const clasp_ctx *ctx, size_t *peak)
{
    if (peak) *peak = ctx->dev_peak;
    return ctx->dev_bytes;
}
