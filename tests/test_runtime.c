/* Device choice, the program binary cache, tensors and the buffer pool. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ops.h"
#include "runtime/internal.h"

static const clasp_device_info fake[] = {
    {.platform = 0,
     .device = 0,
     .platform_name = "Portable Computing Language",
     .name = "pthread-skylake",
     .is_cpu = 1},
    {.platform = 1,
     .device = 0,
     .platform_name = "NVIDIA CUDA",
     .name = "NVIDIA H100",
     .is_gpu = 1},
    {.platform = 1,
     .device = 1,
     .platform_name = "NVIDIA CUDA",
     .name = "NVIDIA A100",
     .is_gpu = 1},
};

static void device_default_prefers_gpu(void **state)
{
    (void)state;
    size_t idx = 99;
    assert_ok(clasp_device_choose(NULL, fake, 3, &idx));
    assert_int_equal(idx, 1);
    assert_ok(clasp_device_choose("", fake, 1, &idx));
    assert_int_equal(idx, 0);
}

static void device_by_index_and_name(void **state)
{
    (void)state;
    size_t idx = 99;
    assert_ok(clasp_device_choose("1:1", fake, 3, &idx));
    assert_int_equal(idx, 2);
    assert_ok(clasp_device_choose("0:0", fake, 3, &idx));
    assert_int_equal(idx, 0);
    assert_ok(clasp_device_choose("a100", fake, 3, &idx));
    assert_int_equal(idx, 2);
    assert_ok(clasp_device_choose("portable", fake, 3, &idx));
    assert_int_equal(idx, 0);
}

static void device_bad_value_lists_choices(void **state)
{
    (void)state;
    size_t idx;
    assert_int_equal(clasp_device_choose("2:0", fake, 3, &idx), CLASP_ERR_NOT_FOUND);
    const char *msg = clasp_last_error();
    assert_non_null(strstr(msg, "2:0"));
    assert_non_null(strstr(msg, "1:1"));
    assert_non_null(strstr(msg, "NVIDIA A100"));
    assert_int_equal(clasp_device_choose("radeon", fake, 3, &idx), CLASP_ERR_NOT_FOUND);
    assert_int_equal(clasp_device_choose("1:", fake, 3, &idx), CLASP_ERR_NOT_FOUND);
    assert_int_equal(clasp_device_choose(NULL, fake, 0, &idx), CLASP_ERR_NOT_FOUND);
}

static void real_devices_listed(void **state)
{
    (void)state;
    clasp_device_info *list;
    size_t n;
    assert_ok(clasp_device_list(&list, &n));
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_true(list[i].name[0] != '\0');
        assert_true(list[i].compute_units >= 1);
        assert_true(list[i].global_mem > 0);
    }
    free(list);
}

static const char *test_src = "__kernel void twice(__global float *x) {\n"
                              "    size_t i = get_global_id(0);\n"
                              "    x[i] = SCALE * x[i];\n"
                              "}\n";

static int count_bin_files(const char *dir, char *one, size_t size)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".bin")) {
            n++;
            if (one) snprintf(one, size, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

/* Builds test_src with `opts` (which define SCALE as `scale`) in a fresh
 * context, runs it, checks that the kernel is the one of these options
 * (never one cached for others), and returns the context's cache
 * statistics. */
static int g_binaries = 1; /* program_binaries for build_once's contexts */

static clasp_cache_stats build_once(const char *opts, float scale)
{
    clasp_ctx *ctx = tu_ctx();
    clasp_ctx_opts co = *clasp_ctx_options(ctx);
    co.program_binaries = g_binaries;
    assert_ok(clasp_ctx_set_options(ctx, &co));
    cl_program prog;
    assert_ok(clasp_program_build(ctx, test_src, opts, &prog));
    cl_int err;
    cl_kernel k = clCreateKernel(prog, "twice", &err);
    assert_int_equal(err, CL_SUCCESS);
    float h[4] = {1, 2, 3, 4};
    clasp_tensor *t = tu_tensor(ctx, 1, (int[]){4}, h);
    cl_mem mem = clasp_mem(t);
    assert_ok(clasp_kernel_args(k, 1, KARG(mem)));
    assert_ok(clasp_launch(ctx, k, "twice", 1, (size_t[]){4}, NULL));
    assert_ok(clasp_tensor_read(t, h));
    for (int i = 0; i < 4; i++) assert_true(h[i] == scale * (float)(i + 1));
    clasp_cache_stats s = clasp_ctx_cache_stats(ctx);
    clasp_tensor_free(t);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    clasp_ctx_free(ctx);
    return s;
}

static void cache_hit_miss_corrupt(void **state)
{
    (void)state;
    char dir[256], file[512];
    tu_tmpdir(dir, sizeof dir);
    setenv("CLASP_CACHE_DIR", dir, 1);

    clasp_cache_stats s = build_once("-DSCALE=2.0f", 2.0f);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 0);
    assert_int_equal(count_bin_files(dir, file, sizeof file), 1);

    s = build_once("-DSCALE=2.0f", 2.0f);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 0);

    /* Other options are another key: a miss, a second entry. */
    s = build_once("-DSCALE=3.0f", 3.0f);
    assert_int_equal(s.misses, 1);
    assert_int_equal(count_bin_files(dir, NULL, 0), 2);

    /* Flip a byte in the stored binary: rejected, rebuilt, rewritten. */
    build_once("-DSCALE=2.0f", 2.0f);
    FILE *f = fopen(file, "r+b");
    assert_non_null(f);
    fseek(f, -1, SEEK_END);
    int c = fgetc(f);
    fseek(f, -1, SEEK_END);
    fputc(c ^ 0x5a, f);
    fclose(f);
    /* Only the corrupt one is rejected; find which entry it was. */
    clasp_cache_stats a = build_once("-DSCALE=2.0f", 2.0f);
    clasp_cache_stats b = build_once("-DSCALE=3.0f", 3.0f);
    assert_int_equal(a.rejected + b.rejected, 1);
    assert_int_equal(a.misses + b.misses, 1);
    /* After the rebuild both are hits again. */
    a = build_once("-DSCALE=2.0f", 2.0f);
    b = build_once("-DSCALE=3.0f", 3.0f);
    assert_int_equal(a.hits + b.hits, 2);
    assert_int_equal(a.rejected + b.rejected, 0);

    /* A truncated entry is rejected too. */
    f = fopen(file, "wb");
    assert_non_null(f);
    fputs("CLASPBC1", f);
    fclose(f);
    a = build_once("-DSCALE=2.0f", 2.0f);
    b = build_once("-DSCALE=3.0f", 3.0f);
    assert_int_equal(a.rejected + b.rejected, 1);

    /* By default a CPU device keeps no binaries (its driver caches
     * compiled kernels itself): nothing read or written. */
    g_binaries = 0;
    char cpu_dir[256];
    tu_tmpdir(cpu_dir, sizeof cpu_dir);
    setenv("CLASP_CACHE_DIR", cpu_dir, 1);
    clasp_ctx *probe = tu_ctx();
    int cpu = clasp_ctx_device_profile(probe)->kind == CLASP_DEVICE_CPU;
    clasp_ctx_free(probe);
    s = build_once("-DSCALE=2.0f", 2.0f);
    s = build_once("-DSCALE=2.0f", 2.0f);
    if (cpu) {
        assert_int_equal(s.hits + s.rejected, 0);
        assert_int_equal(count_bin_files(cpu_dir, NULL, 0), 0);
    } else {
        assert_int_equal(s.hits, 1);
    }
    g_binaries = 1;
    tu_rmdir(cpu_dir);

    /* Switched off: nothing read or written. */
    char off_dir[256];
    tu_tmpdir(off_dir, sizeof off_dir);
    setenv("CLASP_CACHE_DIR", "off", 1);
    assert_null(clasp_cache_dir());
    s = build_once("-DSCALE=2.0f", 2.0f);
    assert_int_equal(s.hits + s.rejected, 0);
    assert_int_equal(s.misses, 1);
    unsetenv("CLASP_CACHE_DIR");
    tu_rmdir(dir);
    tu_rmdir(off_dir);
}

/* The device profile: queried once when the context is made, the one
 * classification every device-dependent choice reads. */
static void device_profile(void **state)
{
    (void)state;
    clasp_device_info d = {0};
    assert_int_equal(clasp_device_kind_of(&d), CLASP_DEVICE_CPU);
    d.is_cpu = 1;
    assert_int_equal(clasp_device_kind_of(&d), CLASP_DEVICE_CPU);
    d.is_gpu = 1; /* Oclgrind: GPU and CPU at once */
    assert_int_equal(clasp_device_kind_of(&d), CLASP_DEVICE_SIMULATOR);
    d.is_cpu = 0;
    assert_int_equal(clasp_device_kind_of(&d), CLASP_DEVICE_GPU);
    assert_string_equal(clasp_device_kind_name(CLASP_DEVICE_SIMULATOR), "simulator");

    clasp_ctx *ctx = tu_ctx();
    const clasp_device_info *info = clasp_ctx_device(ctx);
    const clasp_device_profile *p = clasp_ctx_device_profile(ctx);
    assert_int_equal(p->kind, clasp_device_kind_of(info));
    assert_string_equal(p->vendor, info->vendor);
    assert_int_equal(p->compute_units, info->compute_units);
    assert_true(p->compute_units > 0);
    assert_true(p->vector_width > 0);
    assert_true(p->local_mem > 0);
    /* The CPU device the tests run on (PoCL): the CPU kernels. (Its cache
     * size may read 0: some PoCL builds report none.) */
    if (strstr(info->platform_name, "Portable Computing Language"))
        assert_int_equal(p->kind, CLASP_DEVICE_CPU);
    clasp_ctx_free(ctx);
}

static void build_error_names_call(void **state)
{
    (void)state;
    setenv("CLASP_CACHE_DIR", "off", 1);
    clasp_ctx *ctx = tu_ctx();
    cl_program prog;
    assert_int_equal(clasp_program_build(ctx, "__kernel void broken( {", "", &prog),
                     CLASP_ERR_OPENCL);
    assert_non_null(strstr(clasp_last_error(), "clBuildProgram"));
    assert_non_null(strstr(clasp_last_error(), "CL_BUILD_PROGRAM_FAILURE"));
    cl_kernel k;
    assert_int_equal(clasp_kernel_get(ctx, "no_such_file", NULL, "k", &k), CLASP_ERR_NOT_FOUND);
    clasp_ctx_free(ctx);
    unsetenv("CLASP_CACHE_DIR");
}

static void tensors_round_trip_and_pool_reuse(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    float h[33], back[33];
    tu_fill_random(h, 33, 7, -1, 1);
    clasp_tensor *a = tu_tensor(ctx, 2, (int[]){3, 11}, h);
    assert_int_equal(a->numel, 33);
    assert_int_equal(clasp_tensor_per_example(a), 11);
    clasp_tensor *b = NULL;
    assert_ok(clasp_tensor_clone(a, &b));
    assert_ok(clasp_tensor_read(b, back));
    assert_memory_equal(h, back, sizeof h);
    assert_ok(clasp_tensor_read_part(a, 30, 3, back));
    assert_memory_equal(h + 30, back, 3 * sizeof(float));
    assert_int_equal(clasp_tensor_read_part(a, 31, 3, back), CLASP_ERR_INVALID);
    assert_ok(clasp_tensor_fill(b, 2.5f));
    assert_ok(clasp_tensor_read(b, back));
    for (int i = 0; i < 33; i++) assert_true(back[i] == 2.5f);
    assert_int_equal(clasp_tensor_reshape(b, 1, (int[]){32}), CLASP_ERR_INVALID);
    assert_ok(clasp_tensor_reshape(b, 1, (int[]){33}));
    /* A freed buffer of the right size comes back from the pool. */
    void *buf = b->buf;
    clasp_tensor_free(b);
    clasp_tensor *c = NULL;
    assert_ok(clasp_tensor_new(ctx, CLASP_F32, 1, (int[]){33}, &c));
    assert_ptr_equal(c->buf, buf);
    clasp_tensor_free(c);
    clasp_tensor_free(a);
    clasp_tensor_free(NULL);
    clasp_ctx_free(ctx);
    clasp_ctx_free(NULL);
}

/* A device copy of a range lands at the offset asked for and nowhere
 * else; a range past either end is refused. */
static void tensor_copy_part_ranges(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    float h[20], back[12];
    tu_fill_random(h, 20, 3, -1, 1);
    clasp_tensor *src = tu_tensor(ctx, 2, (int[]){4, 5}, h);
    clasp_tensor *dst = NULL;
    assert_ok(clasp_tensor_new(ctx, CLASP_F32, 1, (int[]){12}, &dst));
    assert_ok(clasp_tensor_fill(dst, -7.0f));
    assert_ok(clasp_tensor_copy_part(dst, 2, src, 10, 9)); /* rows 2..3 and past: elements 10..18 */
    assert_ok(clasp_tensor_read(dst, back));
    for (int i = 0; i < 12; i++) {
        if (i >= 2 && i < 11) assert_true(back[i] == h[10 + i - 2]);
        else assert_true(back[i] == -7.0f);
    }
    assert_ok(clasp_tensor_copy_part(dst, 12, src, 20, 0));
    assert_int_equal(clasp_tensor_copy_part(dst, 4, src, 10, 9), CLASP_ERR_INVALID);
    assert_int_equal(clasp_tensor_copy_part(dst, 0, src, 15, 6), CLASP_ERR_INVALID);
    assert_int_equal(clasp_tensor_copy_part(dst, 13, src, 0, 0), CLASP_ERR_INVALID);
    clasp_tensor_free(dst);
    clasp_tensor_free(src);
    clasp_ctx_free(ctx);
}

static void opencl_errors_have_names(void **state)
{
    (void)state;
    assert_string_equal(clasp_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_int_equal(clasp_cl_check(CL_INVALID_KERNEL_ARGS, "clEnqueueNDRangeKernel(conv)"),
                     CLASP_ERR_OPENCL);
    assert_string_equal(clasp_last_error(),
                        "clEnqueueNDRangeKernel(conv) failed: CL_INVALID_KERNEL_ARGS (-52)");
    assert_int_equal(clasp_cl_check(CL_MEM_OBJECT_ALLOCATION_FAILURE, "clCreateBuffer"),
                     CLASP_ERR_NOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_default_prefers_gpu),
        cmocka_unit_test(device_by_index_and_name),
        cmocka_unit_test(device_bad_value_lists_choices),
        cmocka_unit_test(real_devices_listed),
        cmocka_unit_test(device_profile),
        cmocka_unit_test(cache_hit_miss_corrupt),
        cmocka_unit_test(build_error_names_call),
        cmocka_unit_test(tensors_round_trip_and_pool_reuse),
        cmocka_unit_test(tensor_copy_part_ranges),
        cmocka_unit_test(opencl_errors_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
