/* Context creation, OpenCL error names, kernel lookup and launch. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cl_sources.h"
#include "runtime/internal.h"

const char *clasp_cl_error_name(cl_int err)
{
    /* clang-format off */
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
    E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP)
    E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_COMPILE_PROGRAM_FAILURE)
    E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM)
    E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES)
    E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT)
    E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
    E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET)
    E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_GLOBAL_WORK_SIZE)
    E(CL_INVALID_PROPERTY) E(CL_PLATFORM_NOT_FOUND_KHR)
#undef E
    default: return "unknown OpenCL error";
    }
    /* clang-format on */
}

clasp_status clasp_cl_check(cl_int err, const char *call)
{
    if (err == CL_SUCCESS) return CLASP_OK;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY)
        return clasp_error(CLASP_ERR_NOMEM, "%s failed: %s (%d)", call, clasp_cl_error_name(err),
                           (int)err);
    return clasp_error(CLASP_ERR_OPENCL, "%s failed: %s (%d)", call, clasp_cl_error_name(err),
                       (int)err);
}

void clasp_ctx_opts_default(clasp_ctx_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
    opts->tune = 0;
    opts->fold = 1;
}

/* The caller's options over the defaults, as far as its struct reaches. */
static void opts_copy(clasp_ctx_opts *dst, const clasp_ctx_opts *src)
{
    clasp_ctx_opts_default(dst);
    if (!src) return;
    size_t n = src->size < sizeof *dst ? src->size : sizeof *dst;
    memcpy(dst, src, n);
    dst->size = sizeof *dst;
    dst->device[sizeof dst->device - 1] = '\0';
    dst->gemm[sizeof dst->gemm - 1] = '\0';
    dst->cache_dir[sizeof dst->cache_dir - 1] = '\0';
}

const clasp_ctx_opts *clasp_ctx_options(const clasp_ctx *ctx)
{
    return &ctx->opts;
}

clasp_status clasp_ctx_set_options(clasp_ctx *ctx, const clasp_ctx_opts *opts)
{
    if (!ctx || !opts)
        return clasp_error(CLASP_ERR_INVALID, "clasp_ctx_set_options: NULL argument");
    clasp_ctx_opts o;
    opts_copy(&o, opts);
    memcpy(o.device, ctx->opts.device, sizeof o.device);
    o.profile = ctx->opts.profile;
    ctx->opts = o;
    return CLASP_OK;
}

/* The device profile, once: every device-dependent choice reads it. */
static void profile_device(clasp_ctx *ctx)
{
    clasp_device_profile *p = &ctx->devprof;
    memset(p, 0, sizeof *p);
    p->kind = clasp_device_kind_of(&ctx->info);
    snprintf(p->vendor, sizeof p->vendor, "%s", ctx->info.vendor);
    p->compute_units = ctx->info.compute_units;
    cl_uint vw = 0, line = 0;
    cl_ulong local = 0, cache = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof vw, &vw,
                        NULL) != CL_SUCCESS)
        vw = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL) !=
        CL_SUCCESS)
        local = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof cache, &cache, NULL) !=
        CL_SUCCESS)
        cache = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_CACHELINE_SIZE, sizeof line, &line,
                        NULL) != CL_SUCCESS)
        line = 0;
    p->vector_width = vw ? vw : 1;
    p->local_mem = local;
    p->global_cache = cache;
    p->cache_line = line;
}

clasp_status clasp_ctx_new_opts(const clasp_ctx_opts *opts, clasp_ctx **out)
{
    *out = NULL;
    clasp_ctx_opts o;
    opts_copy(&o, opts);
    const char *spec = o.device;
    clasp_device_info *list;
    size_t n, idx;
    CLASP_TRY(clasp_device_list(&list, &n));
    clasp_status st = clasp_device_choose(spec, list, n, &idx);
    if (st != CLASP_OK) {
        free(list);
        return st;
    }
    clasp_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        free(list);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory creating a context");
    }
    ctx->info = list[idx];
    ctx->opts = o;
    free(list);

    cl_uint np = 0;
    cl_platform_id plats[64];
    cl_device_id devs[64];
    cl_uint nd = 0;
    cl_int err = clGetPlatformIDs(64, plats, &np);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(plats[ctx->info.platform], CL_DEVICE_TYPE_ALL, 64, devs, &nd);
    if (err != CL_SUCCESS) {
        free(ctx);
        return clasp_cl_check(err, "clGetDeviceIDs");
    }
    ctx->platform = plats[ctx->info.platform];
    ctx->device = devs[ctx->info.device];
    profile_device(ctx);
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        free(ctx);
        return clasp_cl_check(err, "clCreateContext");
    }
    ctx->profiling = o.profile;
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device,
                                      ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(ctx->context);
        free(ctx);
        return clasp_cl_check(err, "clCreateCommandQueue");
    }
    *out = ctx;
    return CLASP_OK;
}

void clasp_ctx_free(clasp_ctx *ctx)
{
    if (!ctx) return;
    clFinish(ctx->queue);
    if (ctx->profiling) clasp_profile_print(ctx, stderr);
    if (ctx->gemm_state_free) ctx->gemm_state_free(ctx->gemm_state);
    if (ctx->conv_state_free) ctx->conv_state_free(ctx->conv_state);
    for (size_t i = 0; i < ctx->n_pending; i++) clReleaseEvent(ctx->pending[i].event);
    free(ctx->pending);
    free(ctx->prof);
    for (size_t i = 0; i < ctx->n_programs; i++) {
        clasp_program_entry *p = &ctx->programs[i];
        for (size_t k = 0; k < p->n_kernels; k++) {
            clReleaseKernel(p->kernels[k].kernel);
            free(p->kernels[k].name);
        }
        free(p->kernels);
        clReleaseProgram(p->program);
        free(p->source_name);
        free(p->defines);
    }
    free(ctx->programs);
    for (size_t i = 0; i < ctx->n_pool; i++) clReleaseMemObject(ctx->pool[i].mem);
    free(ctx->pool);
    clReleaseCommandQueue(ctx->queue);
    clReleaseContext(ctx->context);
    free(ctx);
}

const clasp_device_info *clasp_ctx_device(const clasp_ctx *ctx)
{
    return &ctx->info;
}

const clasp_device_profile *clasp_ctx_device_profile(const clasp_ctx *ctx)
{
    return &ctx->devprof;
}

clasp_status clasp_ctx_finish(clasp_ctx *ctx)
{
    CLASP_CL_TRY(clFinish(ctx->queue), "clFinish");
    if (ctx->profiling) clasp_profile_collect(ctx);
    return CLASP_OK;
}

clasp_cache_stats clasp_ctx_cache_stats(const clasp_ctx *ctx)
{
    return ctx->cache;
}

static const char *find_source(const char *name)
{
    for (const clasp_cl_source *s = clasp_cl_sources; s->name; s++)
        if (!strcmp(s->name, name)) return s->source;
    return NULL;
}

static clasp_program_entry *find_program(clasp_ctx *ctx, const char *name, const char *defines)
{
    for (size_t i = 0; i < ctx->n_programs; i++) {
        clasp_program_entry *p = &ctx->programs[i];
        if (!strcmp(p->source_name, name) && !strcmp(p->defines, defines)) return p;
    }
    return NULL;
}

static clasp_status add_program(clasp_ctx *ctx, const char *name, const char *defines,
                                clasp_program_entry **out)
{
    const char *src = find_source(name);
    if (!src) return clasp_error(CLASP_ERR_NOT_FOUND, "no kernel source cl/%s.cl", name);
    char options[1024];
    snprintf(options, sizeof options, "-cl-std=CL1.2 -cl-mad-enable %s", defines);
    cl_program prog;
    CLASP_TRY(clasp_program_build(ctx, src, options, &prog));
    if (ctx->n_programs == ctx->cap_programs) {
        size_t cap = ctx->cap_programs ? 2 * ctx->cap_programs : 16;
        clasp_program_entry *grown = realloc(ctx->programs, cap * sizeof *grown);
        if (!grown) {
            clReleaseProgram(prog);
            return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        }
        ctx->programs = grown;
        ctx->cap_programs = cap;
    }
    clasp_program_entry *p = &ctx->programs[ctx->n_programs];
    memset(p, 0, sizeof *p);
    p->source_name = strdup(name);
    p->defines = strdup(defines);
    p->program = prog;
    if (!p->source_name || !p->defines) {
        free(p->source_name);
        free(p->defines);
        clReleaseProgram(prog);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    ctx->n_programs++;
    *out = p;
    return CLASP_OK;
}

clasp_status clasp_kernel_get(clasp_ctx *ctx, const char *source_name, const char *defines,
                              const char *kernel_name, cl_kernel *out)
{
    if (!defines) defines = "";
    clasp_program_entry *p = find_program(ctx, source_name, defines);
    if (!p) CLASP_TRY(add_program(ctx, source_name, defines, &p));
    for (size_t k = 0; k < p->n_kernels; k++)
        if (!strcmp(p->kernels[k].name, kernel_name)) return *out = p->kernels[k].kernel, CLASP_OK;
    cl_int err;
    cl_kernel kern = clCreateKernel(p->program, kernel_name, &err);
    if (err != CL_SUCCESS) {
        clasp_cl_check(err, "clCreateKernel");
        return clasp_error(CLASP_ERR_OPENCL, "clCreateKernel(%s in cl/%s.cl %s) failed: %s (%d)",
                           kernel_name, source_name, defines, clasp_cl_error_name(err), (int)err);
    }
    clasp_kernel_entry *grown = realloc(p->kernels, (p->n_kernels + 1) * sizeof *grown);
    char *name = strdup(kernel_name);
    if (!grown || !name) {
        free(name);
        if (grown) p->kernels = grown;
        clReleaseKernel(kern);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    p->kernels = grown;
    p->kernels[p->n_kernels].name = name;
    p->kernels[p->n_kernels].kernel = kern;
    p->n_kernels++;
    *out = kern;
    return CLASP_OK;
}

clasp_status clasp_kernel_args(cl_kernel k, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    clasp_status st = CLASP_OK;
    for (int i = 0; i < n; i++) {
        size_t size = va_arg(ap, size_t);
        const void *val = va_arg(ap, const void *);
        cl_int err = clSetKernelArg(k, (cl_uint)i, size, val);
        if (err != CL_SUCCESS) {
            char what[64];
            snprintf(what, sizeof what, "clSetKernelArg(arg %d)", i);
            st = clasp_cl_check(err, what);
            break;
        }
    }
    va_end(ap);
    return st;
}

clasp_status clasp_launch(clasp_ctx *ctx, cl_kernel k, const char *op, cl_uint dims,
                          const size_t *gws, const size_t *lws)
{
    size_t g[3];
    for (cl_uint i = 0; i < dims; i++) {
        g[i] = gws[i] ? gws[i] : 1;
        if (lws) g[i] = clasp_round_up(g[i], lws[i]);
    }
    cl_event *ev = clasp_profile_event(ctx, op);
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, lws, 0, NULL, ev);
    if (err != CL_SUCCESS) {
        if (ev) ctx->n_pending--;
        return clasp_error(err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? CLASP_ERR_NOMEM
                                                                   : CLASP_ERR_OPENCL,
                           "clEnqueueNDRangeKernel(%s) failed: %s (%d)", op,
                           clasp_cl_error_name(err), (int)err);
    }
    return CLASP_OK;
}
