/* Program building with an on-disk cache of device binaries.
 *
 * The cache key covers everything that changes the binary: the kernel
 * source, the build options, and the platform, device and driver versions.
 * An entry stores the key's digest and a CRC of the binary; an entry that is
 * short, has another digest, fails its CRC or is refused by the driver is
 * rebuilt from source and rewritten, never trusted. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/internal.h"
#include "util/util.h"

#define CACHE_MAGIC "CLASPBC1"

/* Two independent 64-bit FNV-1a digests of the whole key. */
static void key_digest(const clasp_ctx *ctx, const char *source, const char *options, uint64_t d[2])
{
    const char *parts[] = {ctx->info.platform_name, ctx->info.name, ctx->info.version,
                           ctx->info.driver,        options,        source};
    d[0] = CLASP_FNV1A_INIT;
    d[1] = 0x84222325cbf29ce4ULL;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = strlen(parts[i]) + 1; /* include NUL as a separator */
        d[0] = clasp_fnv1a(parts[i], n, d[0]);
        d[1] = clasp_fnv1a(parts[i], n, d[1] ^ 0x9e3779b97f4a7c15ULL);
    }
}

/* Reads a cache entry; returns a malloc'd binary or NULL (absent or bad;
 * *bad is set when a file was there but unusable). */
static unsigned char *cache_read(const char *path, const uint64_t d[2], size_t *len, int *bad)
{
    *bad = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char magic[8];
    uint64_t got[2], n;
    uint32_t crc;
    unsigned char *bin = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CACHE_MAGIC, 8) ||
        fread(got, sizeof got, 1, f) != 1 || got[0] != d[0] || got[1] != d[1] ||
        fread(&n, sizeof n, 1, f) != 1 || fread(&crc, sizeof crc, 1, f) != 1 || n == 0 ||
        n > (1u << 30) || !(bin = malloc(n)) || fread(bin, 1, n, f) != n ||
        crc32(0L, bin, (uInt)n) != crc) {
        free(bin);
        fclose(f);
        *bad = 1;
        return NULL;
    }
    fclose(f);
    *len = n;
    return bin;
}

/* Best effort: a cache that cannot be written only costs a rebuild later. */
static void cache_write(const char *dir, const char *path, const uint64_t d[2],
                        const unsigned char *bin, size_t n)
{
    if (clasp_mkdir_p(dir) != CLASP_OK) {
        clasp_error_clear();
        return;
    }
    clasp_atomic_file a;
    if (clasp_atomic_open(&a, path, "wb") != CLASP_OK) {
        clasp_error_clear();
        return;
    }
    uint64_t n64 = n;
    uint32_t crc = (uint32_t)crc32(0L, bin, (uInt)n);
    int ok = fwrite(CACHE_MAGIC, 1, 8, a.f) == 8 && fwrite(d, sizeof(uint64_t), 2, a.f) == 2 &&
             fwrite(&n64, sizeof n64, 1, a.f) == 1 && fwrite(&crc, sizeof crc, 1, a.f) == 1 &&
             fwrite(bin, 1, n, a.f) == n;
    if (clasp_atomic_commit(&a, ok) != CLASP_OK) clasp_error_clear();
}

static clasp_status build_log_error(clasp_ctx *ctx, cl_program prog, cl_int err,
                                    const char *options)
{
    size_t n = 0;
    clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = malloc(n + 1);
    if (log) {
        log[0] = '\0';
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        log[n] = '\0';
    }
    clasp_status st =
        clasp_error(CLASP_ERR_OPENCL, "clBuildProgram failed: %s (%d), options '%s':\n%.700s",
                    clasp_cl_error_name(err), (int)err, options, log ? log : "");
    free(log);
    return st;
}

static cl_program from_binary(clasp_ctx *ctx, const unsigned char *bin, size_t n,
                              const char *options)
{
    cl_int err, bstatus;
    cl_program prog =
        clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &n, &bin, &bstatus, &err);
    if (err != CL_SUCCESS || bstatus != CL_SUCCESS) {
        if (prog) clReleaseProgram(prog);
        return NULL;
    }
    if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

clasp_status clasp_program_build(clasp_ctx *ctx, const char *source, const char *options,
                                 cl_program *out)
{
    const char *dir = clasp_ctx_binary_cache(ctx);
    uint64_t d[2];
    char path[1100] = "";
    key_digest(ctx, source, options, d);
    if (dir) {
        snprintf(path, sizeof path, "%s/%016llx%016llx.bin", dir, (unsigned long long)d[0],
                 (unsigned long long)d[1]);
        size_t n;
        int bad;
        unsigned char *bin = cache_read(path, d, &n, &bad);
        if (bin) {
            cl_program prog = from_binary(ctx, bin, n, options);
            free(bin);
            if (prog) {
                ctx->cache.hits++;
                *out = prog;
                return CLASP_OK;
            }
            bad = 1;
        }
        if (bad) ctx->cache.rejected++;
    }
    ctx->cache.misses++;
    cl_int err;
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &source, NULL, &err);
    CLASP_CL_TRY(err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        clasp_status st = build_log_error(ctx, prog, err, options);
        clReleaseProgram(prog);
        return st;
    }
    if (dir) {
        size_t n = 0;
        if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) == CL_SUCCESS &&
            n > 0) {
            unsigned char *bin = malloc(n);
            if (bin &&
                clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
                cache_write(dir, path, d, bin, n);
            free(bin);
        }
    }
    *out = prog;
    return CLASP_OK;
}
