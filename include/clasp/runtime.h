/* clasp — OpenCL devices, the execution context, and profiling.
 *
 * A clasp_ctx owns one OpenCL context and one in-order command queue on one
 * device, the compiled kernel programs, and a pool of device buffers.
 * Contexts are not thread-safe: use one per thread. */
#ifndef CLASP_RUNTIME_H
#define CLASP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

typedef struct clasp_ctx clasp_ctx;

typedef struct clasp_device_info {
    int platform; /* platform index */
    int device;   /* device index within the platform */
    char platform_name[128];
    char name[128];
    char vendor[128];
    char version[128];   /* CL_DEVICE_VERSION */
    char driver[128];    /* CL_DRIVER_VERSION */
    int is_gpu;          /* CL_DEVICE_TYPE_GPU */
    int is_cpu;          /* CL_DEVICE_TYPE_CPU */
    uint64_t global_mem; /* bytes */
    uint64_t max_alloc;  /* bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    unsigned compute_units;
    size_t max_work_group;
} clasp_device_info;

/* What kind of device runs the kernels: every device-dependent choice
 * (which kernels, scratch sizes, GEMM defaults, which devices ranks
 * share) reads this one classification (clasp_device_profile). */
typedef enum clasp_device_kind {
    CLASP_DEVICE_CPU = 0,       /* CPU devices (and accelerators that are not GPUs) */
    CLASP_DEVICE_GPU = 1,       /* a GPU that is not also a CPU */
    CLASP_DEVICE_SIMULATOR = 2, /* reports itself as GPU and CPU at once (Oclgrind):
                                 * runs the GPU kernels, interpreted on the host */
} clasp_device_kind;

/* The kind of a listed device (from its is_gpu and is_cpu). */
clasp_device_kind clasp_device_kind_of(const clasp_device_info *d);

/* "cpu", "gpu" or "simulator". */
const char *clasp_device_kind_name(clasp_device_kind k);

/* A context's device as the ops see it, queried once when the context is
 * made. Fields OpenCL does not report are 0. */
typedef struct clasp_device_profile {
    clasp_device_kind kind;
    char vendor[128];       /* CL_DEVICE_VENDOR */
    unsigned compute_units; /* CL_DEVICE_MAX_COMPUTE_UNITS */
    unsigned vector_width;  /* floats, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT (at least 1) */
    uint64_t local_mem;     /* bytes, CL_DEVICE_LOCAL_MEM_SIZE */
    uint64_t global_cache;  /* bytes, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE */
    unsigned cache_line;    /* bytes, CL_DEVICE_GLOBAL_MEM_CACHELINE_SIZE */
} clasp_device_profile;

/* Lists every device of every platform. *out is malloc'd (free() it);
 * zero devices is not an error (n = 0). */
clasp_status clasp_device_list(clasp_device_info **out, size_t *n);

/* Chooses a device from `list`. spec NULL or "" = default: the first GPU,
 * else the first CPU device, else the first device. Otherwise spec is
 * "P:D" (platform and device indices) or a case-insensitive substring of
 * "platform name device name". An unknown value is CLASP_ERR_NOT_FOUND with
 * a message listing the valid choices. */
clasp_status clasp_device_choose(const char *spec, const clasp_device_info *list, size_t n,
                                 size_t *index);

/* Which conv/pool/norm kernels run: the CPU-vectorised ones or the
 * portable per-element ones. */
typedef enum clasp_kernel_set {
    CLASP_KERNELS_AUTO = 0, /* vectorised on CPU devices, generic on GPUs */
    CLASP_KERNELS_GENERIC = 1,
    CLASP_KERNELS_VECTOR = 2,
} clasp_kernel_set;

/* Which algorithm runs stride-1 3x3 and 5x5 convolutions (forward and
 * input gradient): the default chooses per layer shape; WINOGRAD takes
 * F(4x4,3x3) for 3x3 and F(2x2,5x5) for 5x5 wherever it applies;
 * WINOGRAD_F2 takes F(2x2,3x3) for 3x3 (tests and measurements). */
typedef enum clasp_conv_path {
    CLASP_CONV_AUTO = 0,
    CLASP_CONV_DIRECT = 1, /* im2col + GEMM (and the one-channel kernels) */
    CLASP_CONV_WINOGRAD = 2,
    CLASP_CONV_WINOGRAD_F2 = 3,
} clasp_conv_path;

/* A context's configuration. The library reads no environment variable
 * on its own behind these: clasp_ctx_opts_from_env (and clasp_ctx_new,
 * which calls it) is for programs (like the clasp command) that want the
 * documented CLASP_* variables to apply, and the library never calls it. Append-only; `size` says how much of it the
 * caller knows (members past it take their defaults). */
typedef struct clasp_ctx_opts {
    size_t size;              /* sizeof(clasp_ctx_opts) of the caller */
    char device[256];         /* device choice as for clasp_device_choose;
                               * "": the default (CLASP_DEVICE) */
    int profile;              /* OpenCL event profiling (CLASP_PROFILE=1) */
    int tune;                 /* first-use GEMM tuning, clasp_tune_ensure
                               * (default 0: the built-in choice is within a
                               * few percent; CLASP_TUNE=1 turns it on,
                               * `clasp tune` tunes on request) */
    clasp_kernel_set kernels; /* CLASP_KERNELS=generic|vector */
    char gemm[32];            /* forced GEMM provider: "" or auto (choose),
                               * own, tiled, general, clblast (CLASP_GEMM);
                               * another value fails the first GEMM with
                               * CLASP_ERR_CONFIG */
    char cache_dir[1024];     /* folder of compiled kernels and the GEMM
                               * tuning file; "": no on-disk cache (the
                               * default). From the environment: what
                               * clasp_cache_dir() says */
    clasp_conv_path conv;     /* CLASP_CONV=auto|direct|winograd|winograd-f2 */
    int fold;                 /* eval mode folds each BatchNorm2d into the
                               * convolution it follows (default 1;
                               * CLASP_FOLD=0 turns it off) */
    int program_binaries;     /* compiled programs kept in cache_dir: 0 (the
                               * default) on GPUs and simulators only, 1
                               * on every device, -1 never. A CPU driver
                               * (PoCL) caches its compiled kernels itself,
                               * and exporting a program's binary makes it
                               * compile every kernel of the program at
                               * once (~2 s a program): half of a cold
                               * first run, for half a second later
                               * (CLASP_PROGRAM_BINARIES=1 or =0) */
} clasp_ctx_opts;

/* The defaults: size set, fold on, everything else zero (the default
 * device, no profiling, no first-use tuning, kernels and GEMM chosen per
 * device, no on-disk cache). */
void clasp_ctx_opts_default(clasp_ctx_opts *opts);

/* The defaults, then the environment: CLASP_DEVICE, CLASP_PROFILE,
 * CLASP_TUNE, CLASP_KERNELS, CLASP_GEMM and the cache folder
 * (clasp_cache_dir; README, Environment). */
void clasp_ctx_opts_from_env(clasp_ctx_opts *opts);

/* Creates a context configured by opts (NULL: the defaults). */
clasp_status clasp_ctx_new_opts(const clasp_ctx_opts *opts, clasp_ctx **out);

/* Creates a context configured by the environment (clasp_ctx_opts_from_env)
 * on the device chosen by `spec` (NULL: CLASP_DEVICE, else the default). */
clasp_status clasp_ctx_new(const char *spec, clasp_ctx **out);

/* The context's configuration (owned by the context). */
const clasp_ctx_opts *clasp_ctx_options(const clasp_ctx *ctx);

/* Changes the configuration of a live context: tune, kernels, gemm,
 * cache_dir, conv and fold apply from the next call that reads them (the tuning file is
 * read once, at the context's first GEMM); device and profile are fixed
 * at creation and are ignored here. */
clasp_status clasp_ctx_set_options(clasp_ctx *ctx, const clasp_ctx_opts *opts);

/* Releases everything; NULL is harmless. Prints the profile first when
 * profiling is on. */
void clasp_ctx_free(clasp_ctx *ctx);

/* The device this context runs on. */
const clasp_device_info *clasp_ctx_device(const clasp_ctx *ctx);

/* Its profile, computed when the context was made (owned by the context). */
const clasp_device_profile *clasp_ctx_device_profile(const clasp_ctx *ctx);

/* Waits for all queued work. */
clasp_status clasp_ctx_finish(clasp_ctx *ctx);

/* Bytes of device memory the context's tensors hold now (in use or kept
 * for reuse), and in *peak (may be NULL) the most they ever held.
 * Buffers of libraries beneath (CLBlast's, the driver's) are not counted. */
size_t clasp_ctx_device_bytes(const clasp_ctx *ctx, size_t *peak);

/* Profiling (OpenCL event profiling): on when the context was created
 * with opts.profile (CLASP_PROFILE=1 for clasp_ctx_new). */
int clasp_profile_enabled(const clasp_ctx *ctx);

/* Prints per-op total time, calls and share, largest first, then forgets
 * them (a later print shows only what ran after this one). */
void clasp_profile_print(clasp_ctx *ctx, void *file /* FILE* */);

/* Forgets the times gathered so far. */
void clasp_profile_reset(clasp_ctx *ctx);

/* Seconds on a monotonic clock (wall-clock jumps never show), for
 * measuring durations; the origin is arbitrary. */
double clasp_now(void);

/* The cache folder the environment asks for (what clasp_ctx_opts_from_env
 * puts in opts.cache_dir): CLASP_CACHE_DIR, else $XDG_CACHE_HOME/clasp,
 * else $HOME/.cache/clasp. NULL when caching is off (CLASP_CACHE_DIR=off
 * or CLASP_NO_CACHE=1). Returned string is static. A context uses its own
 * opts.cache_dir, never this. */
const char *clasp_cache_dir(void);

/* Cache statistics of this context: program binaries loaded from disk, built
 * from source, and cache entries found corrupt or stale (then rebuilt). */
typedef struct clasp_cache_stats {
    unsigned hits, misses, rejected;
} clasp_cache_stats;
clasp_cache_stats clasp_ctx_cache_stats(const clasp_ctx *ctx);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
