#include "testutil.h"
#include <json-c/json.h>

#include "clasp/registry.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tu_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/clasp-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf)) fail_msg("mkdtemp %s failed", buf);
}

void tu_rmdir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write %s", path);
    fclose(f);
}

char *tu_read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    if (len) *len = (size_t)n;
    return s;
}

void tu_fill_random(float *x, size_t n, uint32_t seed, float lo, float hi)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = lo + (hi - lo) * (float)((s >> 8) * (1.0 / 16777216.0));
    }
}

double tu_max_rel_err(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double s = fabs((double)b[i]);
        double e = d / (s > 1 ? s : 1);
        if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

clasp_ctx *tu_ctx(void)
{
    clasp_ctx *ctx = NULL;
    clasp_status st = clasp_ctx_new(NULL, &ctx);
    if (st != CLASP_OK) fail_msg("no OpenCL context: %s", clasp_last_error());
    return ctx;
}

const clasp_ctx_opts *tu_ctx_opts(void)
{
    static clasp_ctx_opts o;
    static int read;
    if (!read) clasp_ctx_opts_from_env(&o), read = 1;
    return &o;
}

clasp_tensor *tu_tensor(clasp_ctx *ctx, int ndim, const int *shape, const float *host)
{
    clasp_tensor *t = NULL;
    assert_ok(clasp_tensor_new(ctx, CLASP_F32, ndim, shape, &t));
    if (host) assert_ok(clasp_tensor_write(t, host));
    return t;
}

clasp_tensor *tu_tensor_i32(clasp_ctx *ctx, int ndim, const int *shape, const int32_t *host)
{
    clasp_tensor *t = NULL;
    assert_ok(clasp_tensor_new(ctx, CLASP_I32, ndim, shape, &t));
    if (host) assert_ok(clasp_tensor_write(t, host));
    return t;
}

float *tu_read(const clasp_tensor *t)
{
    float *h = malloc((t->numel ? t->numel : 1) * sizeof *h);
    assert_non_null(h);
    assert_ok(clasp_tensor_read(t, h));
    return h;
}

clasp_ctx *tu_shared_ctx;

int tu_setup_ctx(void **state)
{
    (void)state;
    tu_shared_ctx = tu_ctx();
    return 0;
}

int tu_teardown_ctx(void **state)
{
    (void)state;
    clasp_ctx_free(tu_shared_ctx);
    tu_shared_ctx = NULL;
    return 0;
}

void *tu_registry(void)
{
    clasp_registry *reg = NULL;
    if (clasp_registry_open(&reg) != CLASP_OK) return NULL;
    for (int i = 0; i < clasp_registry_refusal_count(reg); i++)
        fprintf(stderr, "refused: %s: %s\n", clasp_registry_refusal(reg, i)->path,
                clasp_registry_refusal(reg, i)->reason);
    return reg;
}

clasp_registry *tu_shared_reg;

int tu_setup_plugins(void **state)
{
    tu_setup_ctx(state);
    tu_shared_reg = tu_registry();
    return tu_shared_reg ? 0 : -1;
}

int tu_teardown_plugins(void **state)
{
    clasp_registry_free(tu_shared_reg);
    tu_shared_reg = NULL;
    return tu_teardown_ctx(state);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

void tu_write_bars_idx(const char *dir, const char *prefix, int n, int side, uint32_t seed)
{
    size_t px_n = (size_t)side * (size_t)side;
    size_t img_bytes = 16 + (size_t)n * px_n, lab_bytes = 8 + (size_t)n;
    unsigned char *img = calloc(img_bytes, 1), *lab = calloc(lab_bytes, 1);
    float *noise = malloc((size_t)n * px_n * sizeof *noise);
    assert_non_null(img);
    assert_non_null(lab);
    assert_non_null(noise);
    tu_fill_random(noise, (size_t)n * px_n, seed, 0.0f, 200.0f);
    put_be32(img, 0x803), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, (uint32_t)side);
    put_be32(img + 12, (uint32_t)side);
    put_be32(lab, 0x801), put_be32(lab + 4, (uint32_t)n);
    int lo = side / 12, hi = side * 2 / 3; /* bar rows/columns: near one edge or the other */
    for (int i = 0; i < n; i++) {
        int k = (int)((i * 7 + seed) % 4), off = (i * 13) % 3;
        lab[8 + i] = (unsigned char)k;
        unsigned char *px = img + 16 + (size_t)i * px_n;
        for (size_t j = 0; j < px_n; j++) px[j] = (unsigned char)noise[(size_t)i * px_n + j];
        for (int a = 0; a < side; a++) {
            int r = k == 0 ? lo + off : k == 1 ? hi + off : a;
            int c = k == 2 ? lo + off : k == 3 ? hi + off : a;
            px[r * side + c] = 210;
        }
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    tu_write_file(path, img, img_bytes);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    tu_write_file(path, lab, lab_bytes);
    free(img), free(lab), free(noise);
}

/* Wall times differ between runs; everything else must not. */
static int is_timing(const char *key)
{
    return strstr(key, "seconds") || !strcmp(key, "started");
}

void tu_assert_same_json(void *va_, void *vb_, const char *path)
{
    json_object *a = va_, *b = vb_;
    char sub[600];
    if (json_object_get_type(a) != json_object_get_type(b)) fail_msg("%s: types differ", path);
    switch (json_object_get_type(a)) {
    case json_type_object: {
        json_object_object_foreach(a, key, va)
        {
            if (is_timing(key)) continue;
            json_object *vb = NULL;
            if (!json_object_object_get_ex(b, key, &vb))
                fail_msg("%s.%s missing in the second report", path, key);
            snprintf(sub, sizeof sub, "%s.%s", path, key);
            tu_assert_same_json(va, vb, sub);
        }
        if (json_object_object_length(a) != json_object_object_length(b))
            fail_msg("%s: key counts differ", path);
        break;
    }
    case json_type_array: {
        size_t n = json_object_array_length(a);
        if (n != json_object_array_length(b)) fail_msg("%s: array lengths differ", path);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            tu_assert_same_json(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i),
                                sub);
        }
        break;
    }
    case json_type_double:
        if (json_object_get_double(a) != json_object_get_double(b))
            fail_msg("%s: %.17g vs %.17g", path, json_object_get_double(a),
                     json_object_get_double(b));
        break;
    default:
        if (strcmp(json_object_to_json_string(a), json_object_to_json_string(b)) != 0)
            fail_msg("%s: %s vs %s", path, json_object_to_json_string(a),
                     json_object_to_json_string(b));
    }
}

void tu_set_kernels(clasp_ctx *ctx, clasp_kernel_set set)
{
    clasp_ctx_opts o = *clasp_ctx_options(ctx);
    o.kernels = set;
    assert_ok(clasp_ctx_set_options(ctx, &o));
}

clasp_attack_instance *tu_attack(void *reg, const char *name, const char *const *kv)
{
    const char *keys[16], *vals[16];
    char buf[16][64];
    int n = 0;
    for (; kv && kv[n]; n++) {
        assert_true(n < 16);
        snprintf(buf[n], sizeof buf[n], "%s", kv[n]);
        char *eq = strchr(buf[n], '=');
        assert_non_null(eq);
        *eq = '\0';
        keys[n] = buf[n], vals[n] = eq + 1;
    }
    clasp_attack_instance *a = NULL;
    assert_ok(clasp_attack_new(reg, name, keys, vals, NULL, n, &a));
    return a;
}

clasp_status tu_attack_run(clasp_ctx *ctx, clasp_attack_instance *a, clasp_model *m,
                           const float *xh, const int32_t *yh, int n, uint64_t seed, float **adv,
                           int32_t **pred_out)
{
    int c, h, w;
    clasp_model_input_shape(m, &c, &h, &w);
    size_t numel = (size_t)n * (size_t)(c * h * w);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){n, c, h, w}, xh);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){n}, yh);
    clasp_tensor *xa = tu_tensor(ctx, 4, (int[]){n, c, h, w}, NULL);
    clasp_tensor *pred = tu_tensor_i32(ctx, 1, (int[]){n}, NULL);
    clasp_tensor *check = tu_tensor_i32(ctx, 1, (int[]){n}, NULL);
    clasp_rng rng = clasp_rng_make(seed, 7);
    clasp_status s = clasp_attack_run(a, m, x, y, &rng, xa, pred);
    if (s == CLASP_OK) {
        float *after = tu_read(x);
        assert_memory_equal(after, xh, numel * sizeof(float));
        free(after);
        *adv = tu_read(xa);
        int32_t *p = malloc((size_t)n * sizeof *p), *q = malloc((size_t)n * sizeof *q);
        assert_ok(clasp_tensor_read(pred, p));
        int train = clasp_model_is_train(m);
        clasp_model_set_train(m, 0);
        assert_ok(clasp_model_predict(m, xa, check));
        clasp_model_set_train(m, train);
        assert_ok(clasp_tensor_read(check, q));
        assert_memory_equal(p, q, (size_t)n * sizeof *p);
        free(q);
        *pred_out = p;
    }
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(xa);
    clasp_tensor_free(pred), clasp_tensor_free(check);
    return s;
}

clasp_model *tu_model(clasp_ctx *ctx, const char *arch, int c, int h, int w, uint64_t seed)
{
    clasp_layer_spec *ls;
    int nl;
    assert_ok(clasp_arch_parse(arch, &ls, &nl));
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, nl, c, h, w, &m));
    free(ls);
    assert_ok(clasp_model_init(m, seed));
    return m;
}

int tu_run(const char *cmd, char *out, size_t size)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    int rc = pclose(f);
    assert_true(WIFEXITED(rc));
    return WEXITSTATUS(rc);
}
