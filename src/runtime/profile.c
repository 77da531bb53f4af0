/* Per-op timing from OpenCL event profiling (CLASP_PROFILE=1). */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

int clasp_profile_enabled(const clasp_ctx *ctx)
{
    return ctx->profiling;
}

static void add_time(clasp_ctx *ctx, const char *name, double ns)
{
    for (size_t i = 0; i < ctx->n_prof; i++)
        if (ctx->prof[i].name == name || !strcmp(ctx->prof[i].name, name)) {
            ctx->prof[i].total_ns += ns;
            ctx->prof[i].calls++;
            return;
        }
    if (ctx->n_prof == ctx->cap_prof) {
        size_t cap = ctx->cap_prof ? 2 * ctx->cap_prof : 32;
        clasp_prof_op *grown = realloc(ctx->prof, cap * sizeof *grown);
        if (!grown) return; /* profiling is best effort */
        ctx->prof = grown;
        ctx->cap_prof = cap;
    }
    ctx->prof[ctx->n_prof++] = (clasp_prof_op){name, ns, 1};
}

void clasp_profile_collect(clasp_ctx *ctx)
{
    if (!ctx->n_pending) return;
    cl_event *evs = malloc(ctx->n_pending * sizeof *evs);
    if (evs) {
        for (size_t i = 0; i < ctx->n_pending; i++) evs[i] = ctx->pending[i].event;
        clWaitForEvents((cl_uint)ctx->n_pending, evs);
        free(evs);
    }
    for (size_t i = 0; i < ctx->n_pending; i++) {
        cl_ulong t0 = 0, t1 = 0;
        cl_event e = ctx->pending[i].event;
        if (clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) ==
                CL_SUCCESS &&
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) ==
                CL_SUCCESS &&
            t1 >= t0)
            add_time(ctx, ctx->pending[i].name, (double)(t1 - t0));
        clReleaseEvent(e);
    }
    ctx->n_pending = 0;
}

cl_event *clasp_profile_event(clasp_ctx *ctx, const char *op)
{
    if (!ctx->profiling) return NULL;
    if (ctx->n_pending >= 4096) clasp_profile_collect(ctx);
    if (ctx->n_pending == ctx->cap_pending) {
        size_t cap = ctx->cap_pending ? 2 * ctx->cap_pending : 256;
        clasp_prof_pending *grown = realloc(ctx->pending, cap * sizeof *grown);
        if (!grown) return NULL;
        ctx->pending = grown;
        ctx->cap_pending = cap;
    }
    clasp_prof_pending *p = &ctx->pending[ctx->n_pending++];
    p->name = op;
    p->event = NULL;
    return &p->event;
}

static int by_time_desc(const void *a, const void *b)
{
    double x = ((const clasp_prof_op *)a)->total_ns, y = ((const clasp_prof_op *)b)->total_ns;
    return (x < y) - (x > y);
}

void clasp_profile_print(clasp_ctx *ctx, void *file)
{
    FILE *f = file ? (FILE *)file : stderr;
    clFinish(ctx->queue);
    clasp_profile_collect(ctx);
    if (!ctx->n_prof) return;
    qsort(ctx->prof, ctx->n_prof, sizeof *ctx->prof, by_time_desc);
    double total = 0;
    for (size_t i = 0; i < ctx->n_prof; i++) total += ctx->prof[i].total_ns;
    fprintf(f, "profile (OpenCL events) on %s: %.3f s of device time\n", ctx->info.name,
            total * 1e-9);
    fprintf(f, "  %-28s %10s %8s %10s %7s\n", "op", "total ms", "calls", "us/call", "share");
    for (size_t i = 0; i < ctx->n_prof; i++) {
        const clasp_prof_op *p = &ctx->prof[i];
        fprintf(f, "  %-28s %10.1f %8lu %10.1f %6.1f%%\n", p->name, p->total_ns * 1e-6, p->calls,
                p->total_ns * 1e-3 / (double)p->calls,
                total > 0 ? 100.0 * p->total_ns / total : 0.0);
    }
    /* Printed times are forgotten, so a later print shows only new work. */
    ctx->n_prof = 0;
}

void clasp_profile_reset(clasp_ctx *ctx)
{
    clasp_profile_collect(ctx);
    ctx->n_prof = 0;
}
