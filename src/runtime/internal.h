/* Internals shared by the runtime, the ops and the model: the context
 * layout, OpenCL error reporting, kernel lookup and launch. Not installed. */
#ifndef CLASP_RUNTIME_INTERNAL_H
#define CLASP_RUNTIME_INTERNAL_H

#include <CL/cl.h>
#include <stdio.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001 /* from cl_khr_icd */
#endif

#include "clasp/runtime.h"
#include "clasp/tensor.h"

typedef struct clasp_kernel_entry {
    char *name;
    cl_kernel kernel;
} clasp_kernel_entry;

typedef struct clasp_program_entry {
    char *source_name; /* cl/ file stem */
    char *defines;     /* extra build options, "" for none */
    cl_program program;
    clasp_kernel_entry *kernels;
    size_t n_kernels;
} clasp_program_entry;

typedef struct clasp_pool_buf {
    cl_mem mem;
    size_t bytes;
} clasp_pool_buf;

typedef struct clasp_prof_op {
    const char *name; /* static string given at launch */
    double total_ns;
    unsigned long calls;
} clasp_prof_op;

typedef struct clasp_prof_pending {
    cl_event event;
    const char *name;
} clasp_prof_pending;

struct clasp_ctx {
    clasp_device_info info;
    clasp_device_profile devprof; /* queried once at creation */
    clasp_ctx_opts opts;          /* read once at creation; see clasp_ctx_set_options */
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;

    clasp_program_entry *programs;
    size_t n_programs, cap_programs;
    clasp_cache_stats cache;

    clasp_pool_buf *pool; /* free buffers waiting for reuse */
    size_t n_pool, cap_pool;
    size_t dev_bytes, dev_peak; /* tensor buffers held (in use or pooled), and the most ever */

    int profiling;
    clasp_prof_op *prof;
    size_t n_prof, cap_prof;
    clasp_prof_pending *pending;
    size_t n_pending, cap_pending;

    /* State owned by other modules (GEMM tuning, CLBlast), freed by them. */
    void *gemm_state;
    void (*gemm_state_free)(void *);
    /* The convolutions' transformed weights (ops/winograd.c). */
    void *conv_state;
    void (*conv_state_free)(void *);
};

/* Whether the device takes the GPU code paths (generic kernels, GPU
 * scratch sizes): GPUs and simulators of one. */
static inline int clasp_ctx_gpu_like(const clasp_ctx *ctx)
{
    return ctx->devprof.kind != CLASP_DEVICE_CPU;
}

/* Whether the ops run their CPU-vectorised kernels (conv, pool, norm;
 * a float16 per work-item is one AVX-512 register) rather than the
 * per-element ones GPUs suit: the context's kernels option, else CPU
 * devices only (a simulator of a GPU checks the GPU kernels). */
static inline int clasp_ctx_vector_kernels(const clasp_ctx *ctx)
{
    if (ctx->opts.kernels == CLASP_KERNELS_GENERIC) return 0;
    if (ctx->opts.kernels == CLASP_KERNELS_VECTOR) return 1;
    return !clasp_ctx_gpu_like(ctx);
}

/* The context's cache folder, NULL when it keeps no on-disk cache. */
static inline const char *clasp_ctx_cache(const clasp_ctx *ctx)
{
    return ctx->opts.cache_dir[0] ? ctx->opts.cache_dir : NULL;
}

/* Where compiled program binaries go: the cache folder, unless the
 * options keep binaries off this device (see program_binaries). */
static inline const char *clasp_ctx_binary_cache(const clasp_ctx *ctx)
{
    int keep = ctx->opts.program_binaries > 0 ||
               (ctx->opts.program_binaries == 0 && ctx->devprof.kind != CLASP_DEVICE_CPU);
    return keep ? clasp_ctx_cache(ctx) : NULL;
}

/* Human name of an OpenCL error code, e.g. "CL_OUT_OF_RESOURCES". */
const char *clasp_cl_error_name(cl_int err);

/* Maps an OpenCL result to a clasp_status, recording "CALL: NAME (code)". */
clasp_status clasp_cl_check(cl_int err, const char *call);
#define CLASP_CL_TRY(call_expr, what)                                            \
    do {                                                                         \
        cl_int clasp_cl_e_ = (call_expr);                                        \
        if (clasp_cl_e_ != CL_SUCCESS) return clasp_cl_check(clasp_cl_e_, what); \
    } while (0)

/* Returns a kernel of program `source_name` (a cl/ file stem) built with
 * `defines` (e.g. "-DTILE=8", may be NULL). Programs are built once per
 * context, through the on-disk binary cache. */
clasp_status clasp_kernel_get(clasp_ctx *ctx, const char *source_name, const char *defines,
                              const char *kernel_name, cl_kernel *out);

/* Sets `n` kernel arguments given as (size_t size, const void *value) pairs;
 * KARG(x) expands to such a pair. */
clasp_status clasp_kernel_args(cl_kernel k, int n, ...);
#define KARG(x) sizeof(x), (const void *)&(x)

/* Enqueues an NDRange (lws may be NULL). `op` names the op in the profile
 * and must be a string literal or otherwise outlive the context. Global
 * sizes are rounded up to multiples of lws; kernels guard their range. */
clasp_status clasp_launch(clasp_ctx *ctx, cl_kernel k, const char *op, cl_uint dims,
                          const size_t *gws, const size_t *lws);

/* When profiling, an event slot for a command enqueued outside
 * clasp_launch (CLBlast, copies): returns NULL when profiling is off. */
cl_event *clasp_profile_event(clasp_ctx *ctx, const char *op);

/* Drains finished profiling events into the per-op table. */
void clasp_profile_collect(clasp_ctx *ctx);

static inline cl_mem clasp_mem(const clasp_tensor *t)
{
    return (cl_mem)t->buf;
}

/* Compiles (or loads from the disk cache) one program; used by
 * clasp_kernel_get and by the cache tests. */
clasp_status clasp_program_build(clasp_ctx *ctx, const char *source_text, const char *options,
                                 cl_program *out);

/* Rounds x up to a multiple of m. */
static inline size_t clasp_round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

#endif
