/* PyTorch checkpoints: every fixture of tools/make_torch_fixtures.py reads
 * with the names, shapes, values and info its expected.json lists; the
 * malicious pickles are refused by the global's name and do nothing; the
 * truncated and corrupted files are refused with an offset or the entry. */
#include "testutil.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clasp/safetensors.h"
#include "clasp/torchfile.h"

static const char *fixtures(void)
{
    const char *d = getenv("CLASP_TORCH_FIXTURES");
    assert_non_null(d);
    return d;
}

static void fixture_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", fixtures(), name);
    assert_true(n > 0 && (size_t)n < size);
}

static json_object *expected(void)
{
    char path[1024];
    fixture_path(path, sizeof path, "expected.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    return root;
}

static void check_file(const char *name, json_object *want, int via_ckpt)
{
    char path[1024];
    fixture_path(path, sizeof path, name);
    clasp_st_file f;
    clasp_ckpt_info info;
    clasp_status s =
        via_ckpt ? clasp_ckpt_read(path, &f, &info) : clasp_torch_read(path, &f, &info);
    if (s != CLASP_OK) fail_msg("%s: %s", name, clasp_last_error());
    assert_string_equal(info.format,
                        json_object_get_string(json_object_object_get(want, "format")));
    assert_string_equal(info.entry, json_object_get_string(json_object_object_get(want, "entry")));
    assert_string_equal(info.prefix,
                        json_object_get_string(json_object_object_get(want, "prefix")));
    json_object *ts = json_object_object_get(want, "tensors");
    assert_int_equal(f.n_tensors, json_object_array_length(ts));
    for (size_t i = 0; i < f.n_tensors; i++) {
        json_object *w = json_object_array_get_idx(ts, i);
        const clasp_st_tensor *t = &f.tensors[i];
        assert_string_equal(t->name, json_object_get_string(json_object_object_get(w, "name")));
        int is_f32 = !strcmp(json_object_get_string(json_object_object_get(w, "dtype")), "F32");
        assert_int_equal(t->dtype, is_f32 ? CLASP_ST_F32 : CLASP_ST_I64);
        json_object *shape = json_object_object_get(w, "shape");
        assert_int_equal(t->ndim, json_object_array_length(shape));
        for (int k = 0; k < t->ndim; k++)
            assert_int_equal(t->shape[k],
                             json_object_get_int64(json_object_array_get_idx(shape, (size_t)k)));
        json_object *vals = json_object_object_get(w, "values");
        assert_int_equal(t->numel, json_object_array_length(vals));
        for (size_t k = 0; k < t->numel; k++) {
            json_object *v = json_object_array_get_idx(vals, k);
            if (is_f32) {
                float want_f = (float)json_object_get_double(v);
                if (((const float *)t->data)[k] != want_f)
                    fail_msg("%s: %s[%zu] = %.9g, expected %.9g", name, t->name, k,
                             (double)((const float *)t->data)[k], (double)want_f);
            } else assert_int_equal(((const int64_t *)t->data)[k], json_object_get_int64(v));
        }
    }
    clasp_st_free(&f);
}

/* Every readable fixture, through both entry points. */
static void test_fixtures_read(void **state)
{
    (void)state;
    json_object *root = expected();
    int n = 0;
    json_object_object_foreach(root, name, want)
    {
        if (name[0] == '_') continue;
        check_file(name, want, 0);
        check_file(name, want, 1);
        n++;
    }
    assert_true(n >= 28);
    json_object_put(root);
}

/* Reads `name` expecting a refusal whose message holds every `parts`. */
static void expect_refused(const char *name, const char *const *parts)
{
    char path[1024];
    fixture_path(path, sizeof path, name);
    clasp_st_file f;
    clasp_status s = clasp_ckpt_read(path, &f, NULL);
    if (s == CLASP_OK) fail_msg("%s: read, expected a refusal", name);
    assert_int_equal(f.n_tensors, 0);
    assert_null(f.tensors);
    const char *msg = clasp_last_error();
    assert_non_null(strstr(msg, name));
    for (; *parts; parts++)
        if (!strstr(msg, *parts)) fail_msg("%s: message \"%s\" lacks \"%s\"", name, msg, *parts);
}

static void test_malicious_refused(void **state)
{
    (void)state;
    json_object *root = expected();
    const char *marker = json_object_get_string(json_object_object_get(root, "_marker"));
    assert_non_null(marker);
    unlink(marker);
    expect_refused("evil_os_system.pt", (const char *[]){"os.system", "pickle byte ", NULL});
    expect_refused("evil_builtins_eval.pt", (const char *[]){"builtins.eval", "byte ", NULL});
    expect_refused("evil_legacy_posix.pt", (const char *[]){"posix.system", "byte ", NULL});
    expect_refused("evil_namespace.pt", (const char *[]){"argparse.Namespace", NULL});
    /* Nothing ran: the marker the payloads would make is not there. */
    assert_int_not_equal(access(marker, F_OK), 0);
    json_object_put(root);
}

static void test_broken_refused(void **state)
{
    (void)state;
    expect_refused("trunc_zip.pt", (const char *[]){"zip", NULL});
    expect_refused("trunc_legacy.pt", (const char *[]){"byte ", NULL});
    expect_refused("trunc_legacy_pickle.pt", (const char *[]){"byte ", "truncated", NULL});
    expect_refused("trunc_pickle_zip.pt", (const char *[]){"data.pkl", "byte ", NULL});
    expect_refused("short_storage_zip.pt", (const char *[]){"data/", "expected", NULL});
    expect_refused("corrupt_crc_zip.pt", (const char *[]){"zip entry", NULL});
    expect_refused("view_overflow_zip.pt", (const char *[]){"\"w\"", "storage", NULL});
    expect_refused("not_a_model.pt",
                   (const char *[]){"not a safetensors file, a PyTorch zip checkpoint or a "
                                    "legacy PyTorch checkpoint",
                                    "68 65 6c 6c", NULL});
}

/* Every prefix of a good file is refused cleanly, never a crash. */
static void test_every_truncation(void **state)
{
    (void)state;
    const char *names[] = {"views_zip.pt", "wrap_state_dict_legacy.pt"};
    char dir[256], path[1024], out[1024];
    tu_tmpdir(dir, sizeof dir);
    for (size_t k = 0; k < 2; k++) {
        fixture_path(path, sizeof path, names[k]);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static unsigned char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        snprintf(out, sizeof out, "%s/cut.pt", dir);
        for (size_t len = 0; len < n; len += 1 + len / 64) {
            tu_write_file(out, buf, len);
            clasp_st_file f;
            if (clasp_ckpt_read(out, &f, NULL) == CLASP_OK)
                fail_msg("%s cut to %zu bytes was read", names[k], len);
            assert_non_null(strstr(clasp_last_error(), "cut.pt"));
        }
    }
    tu_rmdir(dir);
}

/* The safetensors route of clasp_ckpt_read strips prefixes too. */
static void test_safetensors_prefix(void **state)
{
    (void)state;
    char dir[256], path[1024];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    clasp_st_file f;
    clasp_st_init(&f);
    float w[2] = {1, 2};
    int64_t shape[1] = {2};
    assert_int_equal(clasp_st_add(&f, "module.fc.weight", CLASP_ST_F32, 1, shape, w), CLASP_OK);
    assert_int_equal(clasp_st_add(&f, "module.fc.bias", CLASP_ST_F32, 1, shape, w), CLASP_OK);
    assert_int_equal(clasp_st_write(&f, path), CLASP_OK);
    clasp_st_free(&f);
    clasp_ckpt_info info;
    assert_int_equal(clasp_ckpt_read(path, &f, &info), CLASP_OK);
    assert_string_equal(info.format, "safetensors");
    assert_string_equal(info.prefix, "module.");
    assert_non_null(clasp_st_find(&f, "fc.weight"));
    assert_non_null(clasp_st_find(&f, "fc.bias"));
    clasp_st_free(&f);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_read),      cmocka_unit_test(test_malicious_refused),
        cmocka_unit_test(test_broken_refused),     cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_safetensors_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
