/* The zoo's architectures against RobustBench's own PyTorch definitions:
 * each fixture in tests/fixtures/arch (made by tools/make_arch_fixtures.py)
 * holds a state dict with random weights and BatchNorm statistics, an input
 * batch and the logits PyTorch computed in eval mode; clasp loads the state
 * dict with the matching preset and must give the same logits. Without
 * clasp.arch metadata, the relu models are found by their tensor names
 * (detect_arch); the activation and the input padding are not in the
 * names, so those fixtures name their preset, as a zoo entry does. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "clasp/safetensors.h"

#define g_ctx tu_shared_ctx

typedef struct fixture {
    const char *file;   /* name in tests/fixtures/arch, without suffix */
    const char *given;  /* the preset the caller names, NULL: detected */
    const char *preset; /* what the model must be */
} fixture;

static const fixture fixtures[] = {
    {"dm-wrn-10-1", NULL, "dm-wrn-10-1"},
    {"dm-wrn-10-1-swish-pad2", "dm-wrn-10-1-swish-pad2", "dm-wrn-10-1-swish-pad2"},
    {"dm-preact-resnet18-w4", NULL, "dm-preact-resnet18-w4"},
    {"dm-preact-resnet18-w4-swish", "dm-preact-resnet18-w4-swish", "dm-preact-resnet18-w4-swish"},
    {"preact-resnet18-nobn-w4", NULL, "preact-resnet18-nobn-w4"},
    {"preact-resnet18-w4", NULL, "preact-resnet18-w4"},
    {"resnet18-w4", NULL, "resnet18-w4"},
    {"wrn-10-1", NULL, "wrn-10-1"},
};

static const char *fixture_dir(void)
{
    const char *d = getenv("CLASP_ARCH_FIXTURES");
    return d ? d : "tests/fixtures/arch";
}

/* The .ref file: a JSON line {"preset": .., "input": [N, C, H, W],
 * "logits": [N, K]}, then the input and the logits as float32. */
typedef struct ref {
    int n, c, h, w, k;
    float *x, *logits;
} ref;

static void read_ref(const char *path, ref *r)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: cannot open (run tools/make_arch_fixtures.py)", path);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    const char *in = strstr(line, "\"input\": ["), *lo = strstr(line, "\"logits\": [");
    assert_non_null(in);
    assert_non_null(lo);
    int n2 = 0;
    assert_int_equal(sscanf(in + 10, "%d, %d, %d, %d", &r->n, &r->c, &r->h, &r->w), 4);
    assert_int_equal(sscanf(lo + 11, "%d, %d", &n2, &r->k), 2);
    assert_int_equal(n2, r->n);
    assert_true(r->n > 0 && r->n <= 64 && r->c == 3 && r->h <= 64 && r->w <= 64 && r->k > 0 &&
                r->k <= 1000);
    size_t nx = (size_t)r->n * r->c * r->h * r->w, nk = (size_t)r->n * r->k;
    r->x = malloc(nx * sizeof *r->x);
    r->logits = malloc(nk * sizeof *r->logits);
    assert_non_null(r->x);
    assert_non_null(r->logits);
    assert_int_equal(fread(r->x, sizeof *r->x, nx, f), nx);
    assert_int_equal(fread(r->logits, sizeof *r->logits, nk, f), nk);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
}

/* Max |clasp - PyTorch| of the model's eval-mode logits on the fixture's input. */
static double logits_diff(clasp_model *m, const ref *r)
{
    clasp_model_set_train(m, 0);
    clasp_tensor *x = tu_tensor(g_ctx, 4, (int[]){r->n, r->c, r->h, r->w}, r->x);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(m, x, &z));
    float *got = tu_read(z);
    double worst = 0;
    for (size_t i = 0; i < (size_t)r->n * r->k; i++) {
        double d = fabs((double)got[i] - r->logits[i]);
        if (isnan(got[i])) d = INFINITY;
        if (d > worst) worst = d;
    }
    free(got);
    clasp_tensor_free(x);
    return worst;
}

static void robustbench_logits(void **state)
{
    (void)state;
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        const fixture *fx = &fixtures[i];
        char st[512], rp[512], saved[512], arch[256];
        snprintf(st, sizeof st, "%s/%s.safetensors", fixture_dir(), fx->file);
        snprintf(rp, sizeof rp, "%s/%s.ref", fixture_dir(), fx->file);
        ref r;
        read_ref(rp, &r);
        clasp_model *m;
        assert_ok(clasp_model_load(g_ctx, st, fx->given, (int[]){r.c, r.h, r.w}, &m));
        clasp_model_arch(m, arch, sizeof arch);
        assert_string_equal(arch, fx->preset);
        assert_int_equal(clasp_model_num_classes(m), r.k);
        double d = logits_diff(m, &r);
        print_message("%-28s max |logit diff| %.3g\n", fx->file, d);
        if (!(d < 1e-4)) fail_msg("%s: logits differ from PyTorch's by %.3g", fx->file, d);
        /* Saved by clasp, the preset comes back from clasp.arch alone. */
        snprintf(saved, sizeof saved, "%s/m.safetensors", dir);
        assert_ok(clasp_model_save(m, NULL, NULL, 0, saved));
        clasp_model_free(m);
        assert_ok(clasp_model_load(g_ctx, saved, NULL, NULL, &m));
        clasp_model_arch(m, arch, sizeof arch);
        assert_string_equal(arch, fx->preset);
        assert_true(logits_diff(m, &r) == d);
        clasp_model_free(m);
        free(r.x), free(r.logits);
    }
    tu_rmdir(dir);
}

/* A model file loaded as --zoo does for DeepMind's models (built from the
 * preset with CIFAR-100's normalisation, a constant of the zoo entry and
 * not a tensor of the file, then filled), or, with no preset, as the file
 * describes itself. */
static void open_as_zoo(const char *path, const char *preset, const ref *r, clasp_ckpt_info *info,
                        clasp_model **m)
{
    /* The fixture's model is a CIFAR-100 one (100 classes). */
    static const float mean[] = {0.5071f, 0.4865f, 0.4409f}, stdv[] = {0.2673f, 0.2564f, 0.2762f};
    if (!preset) {
        assert_ok(clasp_model_load_info(g_ctx, path, NULL, (int[]){r->c, r->h, r->w}, info, m));
        return;
    }
    assert_ok(clasp_model_new_arch(g_ctx, preset, r->c, r->h, r->w, r->k, mean, stdv, m));
    assert_ok(clasp_model_load_weights(*m, path, NULL, info));
}

/* The same state dicts as published files are: torch.save'd (zip: under
 * 'model_state_dict' with DataParallel's 'module.' prefix beside an epoch
 * and an optimiser state; legacy: bare), by tools/make_published_fixtures.py.
 * Each loads through the PyTorch reader to the very logits of its
 * safetensors twin, through the library and through `clasp convert`. */
static void published_files(void **state)
{
    (void)state;
    static const struct {
        const char *file, *preset, *format, *entry, *prefix;
    } pub[] = {
        {"dm-wrn-10-1-swish-pad2", "dm-wrn-10-1-swish-pad2", "pytorch-zip", "model_state_dict",
         "module."},
        {"preact-resnet18-nobn-w4", NULL, "pytorch-legacy", "", ""},
    };
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI is not set");
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        char pt[512], rp[512], conv[512], cmd[1600];
        snprintf(pt, sizeof pt, "%s/../published/%s.pt", fixture_dir(), pub[i].file);
        snprintf(rp, sizeof rp, "%s/%s.ref", fixture_dir(), pub[i].file);
        ref r;
        read_ref(rp, &r);
        clasp_model *m;
        clasp_ckpt_info info;
        open_as_zoo(pt, pub[i].preset, &r, &info, &m);
        assert_string_equal(info.format, pub[i].format);
        assert_string_equal(info.entry, pub[i].entry);
        assert_string_equal(info.prefix, pub[i].prefix);
        double d = logits_diff(m, &r);
        print_message("%-28s (.pt) max |logit diff| %.3g\n", pub[i].file, d);
        if (!(d < 1e-4)) fail_msg("%s.pt: logits differ from PyTorch's by %.3g", pub[i].file, d);
        clasp_model_free(m);
        /* clasp convert: the same state dict as safetensors. */
        snprintf(conv, sizeof conv, "%s/c.safetensors", dir);
        snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' >/dev/null", cli, pt, conv);
        assert_int_equal(system(cmd), 0);
        open_as_zoo(conv, pub[i].preset, &r, &info, &m);
        assert_string_equal(info.format, "safetensors");
        assert_true(logits_diff(m, &r) == d);
        clasp_model_free(m);
        /* clasp inspect names the entry, the prefix and, for a relu
         * model, the preset the names fit. */
        snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", cli, pt);
        char out[1 << 15];
        assert_int_equal(tu_run(cmd, out, sizeof out), 0);
        assert_non_null(strstr(out, pub[i].format));
        if (pub[i].entry[0]) assert_non_null(strstr(out, "state dict under 'model_state_dict'"));
        if (pub[i].prefix[0]) assert_non_null(strstr(out, "prefix 'module.' removed"));
        if (!pub[i].preset)
            assert_non_null(
                strstr(out, "architecture: preact-resnet18-nobn-w4 (every tensor fits"));
        free(r.x), free(r.logits);
    }
    tu_rmdir(dir);
}

/* A layer list with input normalisation saves and loads back: the saved
 * arch text starts with "normalize", which the parser reads and the
 * checkpoint's clasp.normalize fills (it was refused as "not a layer"). A
 * normalize item without constants is refused when built. */
static void normalize_list_round_trip(void **state)
{
    (void)state;
    const char *arch = "conv3x3-8p1,relu,maxpool2,flatten,fc10";
    const float mean[] = {0.3f}, stdv[] = {0.25f};
    clasp_model *m, *m2;
    assert_ok(clasp_model_new_arch(g_ctx, arch, 1, 8, 8, 10, mean, stdv, &m));
    assert_ok(clasp_model_init(m, 3));
    char dir[256], path[512], text[256], text2[256];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/n.safetensors", dir);
    assert_ok(clasp_model_save(m, NULL, NULL, 0, path));
    assert_ok(clasp_model_load(g_ctx, path, NULL, NULL, &m2));
    clasp_model_arch(m, text, sizeof text);
    clasp_model_arch(m2, text2, sizeof text2);
    assert_string_equal(text, text2);
    float x[2 * 64];
    for (int i = 0; i < 128; i++) x[i] = (float)((i * 37) % 101) / 100.0f;
    clasp_tensor *t = tu_tensor(g_ctx, 4, (int[]){2, 1, 8, 8}, x);
    const clasp_tensor *z1, *z2;
    clasp_model_set_train(m, 0), clasp_model_set_train(m2, 0);
    assert_ok(clasp_model_forward(m, t, &z1));
    float *a = tu_read(z1);
    assert_ok(clasp_model_forward(m2, t, &z2));
    float *b = tu_read(z2);
    for (int i = 0; i < 20; i++) assert_true(a[i] == b[i]);
    free(a), free(b);
    clasp_tensor_free(t);
    clasp_model_free(m), clasp_model_free(m2);
    clasp_layer_spec *ls;
    int n;
    assert_ok(clasp_arch_parse("normalize,flatten,fc10", &ls, &n));
    assert_int_equal(clasp_model_new(g_ctx, ls, n, 1, 8, 8, &m), CLASP_ERR_CONFIG);
    free(ls);
    tu_rmdir(dir);
}

/* ---- torchvision's ImageNet ResNets (and RobustBench's CIFAR ResNet-50) ----
 *
 * Their full-width weights are too large to commit, so
 * tools/make_torchvision_fixtures.py fills every tensor from an integer hash
 * of (tensor index, element index), and its fixture holds the names and
 * shapes in state-dict order and PyTorch's eval-mode logits. The same
 * filling here makes the state dict, written without clasp metadata: the
 * preset must be found from the names, every tensor must fit, and the logits
 * must be PyTorch's within 1e-4 of their largest magnitude. */

typedef struct tv_tensor {
    char name[CLASP_PARAM_NAME_MAX];
    int64_t shape[4];
    int ndim;
} tv_tensor;

typedef struct tv_fixture {
    char preset[64];
    int n, c, h, w, k;
    tv_tensor *t;
    int nt;
    float *logits, *wrapped; /* n*k values each; wrapped may be NULL */
} tv_fixture;

static uint32_t tv_hash(uint32_t i, uint32_t t)
{
    uint32_t h = i * 2654435761u + (t * 2246822519u + 374761393u);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    return h;
}

static double tv_unit(size_t i, uint32_t t)
{
    return (double)(tv_hash((uint32_t)i, t) >> 8) / (double)(1 << 24);
}

static float *tv_floats(const char *text, size_t n, const char *path)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        char *end;
        v[i] = strtof(p, &end);
        if (end == p) fail_msg("%s: expected %zu values, read %zu", path, n, i);
        p = end;
    }
    return v;
}

static void tv_read(const char *path, tv_fixture *fx)
{
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open (run tools/make_torchvision_fixtures.py)", path);
    memset(fx, 0, sizeof *fx);
    char *line = NULL;
    size_t cap = 0;
    int cap_t = 0;
    while (getline(&line, &cap, f) > 0) {
        int t, off = 0;
        char name[CLASP_PARAM_NAME_MAX], dims[64];
        if (sscanf(line, "preset %63s", fx->preset) == 1) continue;
        if (sscanf(line, "input %d %d %d %d", &fx->n, &fx->c, &fx->h, &fx->w) == 4) continue;
        if (sscanf(line, "classes %d", &fx->k) == 1) continue;
        dims[0] = 0; /* a scalar (num_batches_tracked) has no dimensions */
        if (sscanf(line, "tensor %d %63s %63s", &t, name, dims) >= 2) {
            assert_int_equal(t, fx->nt);
            if (fx->nt == cap_t) {
                cap_t = cap_t ? 2 * cap_t : 256;
                fx->t = realloc(fx->t, (size_t)cap_t * sizeof *fx->t);
                assert_non_null(fx->t);
            }
            tv_tensor *x = &fx->t[fx->nt++];
            snprintf(x->name, sizeof x->name, "%s", name);
            x->ndim = 0;
            for (const char *d = dims; *d && x->ndim < 4;) {
                x->shape[x->ndim++] = strtoll(d, (char **)&d, 10);
                if (*d == ',') d++;
            }
            continue;
        }
        size_t nk = (size_t)fx->n * fx->k;
        if (sscanf(line, "logits %n", &off), off) fx->logits = tv_floats(line + off, nk, path);
        else if (sscanf(line, "wrapped %n", &off), off)
            fx->wrapped = tv_floats(line + off, nk, path);
        else fail_msg("%s: unexpected line '%.40s'", path, line);
    }
    free(line);
    fclose(f);
    assert_true(fx->preset[0] && fx->n > 0 && fx->k > 0 && fx->nt > 0 && fx->logits);
}

/* Tensor t of the fixture, filled as the fixture script fills it. */
static void tv_add(clasp_st_file *st, const tv_tensor *x, uint32_t t, const char *prefix)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, x->name);
    size_t n = 1;
    for (int d = 0; d < x->ndim; d++) n *= (size_t)x->shape[d];
    const char *leaf = strrchr(x->name, '.');
    leaf = leaf ? leaf + 1 : x->name;
    if (!strcmp(leaf, "num_batches_tracked")) {
        int64_t zero = 0;
        assert_ok(clasp_st_add(st, name, CLASP_ST_I64, x->ndim, x->shape, &zero));
        return;
    }
    int head_bias = !strcmp(x->name, "fc.bias") || !strcmp(x->name, "linear.bias");
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        double u = tv_unit(i, t), r = 0;
        if (!strcmp(leaf, "weight") && x->ndim >= 2)
            r = (2 * u - 1) * sqrt(6.0 / (double)(n / (size_t)x->shape[0]));
        else if (head_bias) r = 0.1 * (2 * u - 1);
        else if (!strcmp(leaf, "weight")) r = 0.5 + 0.5 * u;
        else if (!strcmp(leaf, "bias") || !strcmp(leaf, "running_mean")) r = 0.2 * (2 * u - 1);
        else if (!strcmp(leaf, "running_var")) r = 0.5 + u;
        else fail_msg("%s: no filling for this tensor", x->name);
        v[i] = (float)r;
    }
    assert_ok(clasp_st_add(st, name, CLASP_ST_F32, x->ndim, x->shape, v));
    free(v);
}

/* Writes the fixture's state dict; wrapped: as RobustBench's
 * normalize_model saves it (normalize.mean/std, then "model." names) with
 * the given std. */
static void tv_write(const tv_fixture *fx, const char *path, int wrapped, const float *stdv)
{
    clasp_st_file st;
    clasp_st_init(&st);
    if (wrapped) {
        static const float mean[] = {0.485f, 0.456f, 0.406f};
        const int64_t shape[] = {1, 3, 1, 1};
        assert_ok(clasp_st_add(&st, "normalize.mean", CLASP_ST_F32, 4, shape, mean));
        assert_ok(clasp_st_add(&st, "normalize.std", CLASP_ST_F32, 4, shape, stdv));
    }
    for (int t = 0; t < fx->nt; t++) tv_add(&st, &fx->t[t], (uint32_t)t, wrapped ? "model." : "");
    assert_ok(clasp_st_write(&st, path));
    clasp_st_free(&st);
}

/* max |clasp - want| / max(1, max |want|) of the eval-mode logits. */
static double tv_diff(clasp_model *m, const tv_fixture *fx, const float *want)
{
    size_t nx = (size_t)fx->n * fx->c * fx->h * fx->w, nk = (size_t)fx->n * fx->k;
    float *x = malloc(nx * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < nx; i++) x[i] = (float)tv_unit(i, 1000000);
    clasp_model_set_train(m, 0);
    clasp_tensor *tx = tu_tensor(g_ctx, 4, (int[]){fx->n, fx->c, fx->h, fx->w}, x);
    const clasp_tensor *z;
    assert_ok(clasp_model_forward(m, tx, &z));
    float *got = tu_read(z);
    double worst = 0, scale = 1;
    for (size_t i = 0; i < nk; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < nk; i++) {
        double d = isnan(got[i]) ? INFINITY : fabs((double)got[i] - want[i]);
        worst = fmax(worst, d);
    }
    free(got), free(x);
    clasp_tensor_free(tx);
    return worst / scale;
}

static void torchvision_logits(void **state)
{
    (void)state;
    static const char *const files[] = {"tv-resnet18", "tv-resnet50", "tv-wide-resnet50-2",
                                        "resnet50"};
    char dir[256], path[512], fp[512], arch[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        tv_fixture fx;
        snprintf(fp, sizeof fp, "%s/../torchvision/%s.txt", fixture_dir(), files[i]);
        tv_read(fp, &fx);
        tv_write(&fx, path, 0, NULL);
        clasp_model *m;
        assert_ok(clasp_model_load(g_ctx, path, NULL, (int[]){fx.c, fx.h, fx.w}, &m));
        clasp_model_arch(m, arch, sizeof arch);
        assert_string_equal(arch, fx.preset);
        assert_int_equal(clasp_model_num_classes(m), fx.k);
        double d = tv_diff(m, &fx, fx.logits);
        print_message("%-20s %dx%d  max |logit diff| / max |logit| %.3g\n", files[i], fx.h, fx.w,
                      d);
        if (!(d < 1e-4)) fail_msg("%s: logits differ from PyTorch's by %.3g", files[i], d);
        clasp_model_free(m);
        if (fx.wrapped) {
            /* RobustBench's wrapper: the file's normalize.mean/std become
             * the model's normalisation. */
            static const float stdv[] = {0.229f, 0.224f, 0.225f}, off[] = {0.229f, 0.25f, 0.225f};
            tv_write(&fx, path, 1, stdv);
            clasp_ckpt_info info;
            assert_ok(
                clasp_model_load_info(g_ctx, path, NULL, (int[]){fx.c, fx.h, fx.w}, &info, &m));
            assert_string_equal(info.prefix, "model.");
            /* clasp inspect says so. */
            const char *cli = getenv("CLASP_CLI");
            if (!cli) fail_msg("CLASP_CLI is not set");
            char cmd[1200], out[1 << 16];
            snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", cli, path);
            assert_int_equal(tu_run(cmd, out, sizeof out), 0);
            assert_non_null(strstr(out, "input normalisation (RobustBench's wrapper): mean 0.485 "
                                        "0.456 0.406, std 0.229 0.224 0.225"));
            assert_non_null(strstr(out, "architecture: tv-resnet50 (every tensor fits"));
            d = tv_diff(m, &fx, fx.wrapped);
            print_message("%-20s wrapped  max |logit diff| / max |logit| %.3g\n", files[i], d);
            if (!(d < 1e-4)) fail_msg("%s (wrapped): logits differ by %.3g", files[i], d);
            /* Loaded into a model normalising otherwise: refused. */
            tv_write(&fx, path, 1, off);
            clasp_status st = clasp_model_load_weights(m, path, NULL, NULL);
            assert_int_equal(st, CLASP_ERR_FORMAT);
            assert_non_null(strstr(clasp_last_error(), "channel 1"));
            clasp_model_free(m);
        }
        free(fx.t), free(fx.logits), free(fx.wrapped);
    }
    tu_rmdir(dir);
}

/* Names of the presets: each suffix once, in order, and nothing after. */
static void preset_names(void **state)
{
    (void)state;
    const char *good[] = {"dm-wrn-28-10",
                          "dm-wrn-70-16-swish",
                          "dm-wrn-16-2-w8-swish",
                          "dm-wrn-28-10-swish-pad4",
                          "dm-preact-resnet18",
                          "dm-preact-resnet18-swish",
                          "preact-resnet18-nobn",
                          "preact-resnet18-nobn-w16",
                          "wrn-28-10-swish",
                          "resnet18-pad2",
                          "resnet50",
                          "resnet152-w16",
                          "tv-resnet18",
                          "tv-resnet50",
                          "tv-wide-resnet50-2",
                          "tv-wide-resnet101-2-w8"};
    const char *bad[] = {"dm-wrn-27-10",
                         "dm-wrn-28",
                         "dm-preact-resnet34",
                         "dm-wrn-28-10-relu",
                         "dm-wrn-28-10-swish-w8",
                         "dm-wrn-28-10-pad0",
                         "dm-wrn-28-10-swish-swish",
                         "preact-resnet18-nobnx",
                         "dm-wrn-28-10-pad",
                         "resnet20",
                         "tv-resnet",
                         "tv-wide-resnet18-2",
                         "tv-wide-resnet50",
                         "tv-resnet50-2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!clasp_model_is_preset(good[i])) fail_msg("'%s' is not a preset", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (clasp_model_is_preset(bad[i])) fail_msg("'%s' is a preset", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(robustbench_logits),
        cmocka_unit_test(torchvision_logits),
        cmocka_unit_test(preset_names),
        cmocka_unit_test(published_files),
        cmocka_unit_test(normalize_list_round_trip),
    };
    return cmocka_run_group_tests(tests, tu_setup_ctx, tu_teardown_ctx);
}
