/* GEMM tuning: recording a workload's problems, a short tuning run that
 * writes the device's file and a fresh context that loads it, hand-written
 * files forcing non-default kernels (checked against a double reference),
 * files that must be ignored, and the cache turned off. Nothing here
 * depends on which candidate wins: timing decides that. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clasp/model.h"
#include "clasp/ops.h"
#include "clasp/runtime.h"
#include "clasp_config.h"
#include "ops/gemm_internal.h"
#include "clasp/tune.h"
#include "ops/tune.h"
#include "testutil.h"

/* A model made of linear layers only, whose GEMMs follow from the sizes:
 * 1x4x4 input (16 features), fc8, relu, fc3. */
#define TINY_ARCH "flatten,fc8,relu,fc3"
#define TINY_BATCH 4

static clasp_model *tiny_model(clasp_ctx *ctx)
{
    clasp_layer_spec *layers;
    int n;
    clasp_model *m;
    assert_ok(clasp_arch_parse(TINY_ARCH, &layers, &n));
    assert_ok(clasp_model_new(ctx, layers, n, 1, 4, 4, &m));
    free(layers);
    assert_ok(clasp_model_init(m, 5));
    return m;
}

/* What one training step, one input gradient and one inference of the tiny
 * model at batch N run: forward x W^T (NT), backward dy W (NN) for dx and
 * dy^T x (TN) for dW; the first layer's dx only for the input gradient. */
static int tiny_problems(int N, clasp_gemm_problem *out)
{
    const clasp_gemm_problem p[] = {
        {0, 1, N, 8, 16, 0}, /* fc1 forward */
        {0, 1, N, 3, 8, 0},  /* fc2 forward */
        {1, 0, 3, 8, N, 0},  /* fc2 dW */
        {0, 0, N, 8, 3, 0},  /* fc2 dx */
        {1, 0, 8, 16, N, 0}, /* fc1 dW */
        {0, 0, N, 16, 8, 0}, /* fc1 dx: input gradient */
    };
    memcpy(out, p, sizeof p);
    return (int)(sizeof p / sizeof p[0]);
}

static int find_problem(const clasp_gemm_problem *list, size_t n, const clasp_gemm_problem *q)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].ta == q->ta && list[i].tb == q->tb && list[i].m == q->m && list[i].n == q->n &&
            list[i].k == q->k)
            return (int)i;
    return -1;
}

/* clasp_gemm (whatever the context chooses) against a double reference,
 * with alpha and beta. */
static void check_gemm(clasp_ctx *ctx, int ta, int tb, int m, int n, int k)
{
    int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c = malloc(nc * sizeof *c), *want = malloc(nc * sizeof *want);
    assert_true(a && b && c && want);
    tu_fill_random(a, na, (uint32_t)(m + 3 * k), -1, 1);
    tu_fill_random(b, nb, (uint32_t)(n + 5 * k), -1, 1);
    tu_fill_random(c, nc, (uint32_t)(m * n), -1, 1);
    const float alpha = 0.75f, beta = -0.5f;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a[ta ? (size_t)p * lda + i : (size_t)i * lda + p] *
                     (double)b[tb ? (size_t)j * ldb + p : (size_t)p * ldb + j];
            want[(size_t)i * ldc + j] = (float)(alpha * s + beta * (double)c[(size_t)i * ldc + j]);
        }
    clasp_tensor *ta_ = tu_tensor(ctx, 1, (int[]){(int)na}, a);
    clasp_tensor *tb_ = tu_tensor(ctx, 1, (int[]){(int)nb}, b);
    clasp_tensor *tc_ = tu_tensor(ctx, 1, (int[]){(int)nc}, c);
    assert_ok(clasp_gemm(ctx, ta, tb, m, n, k, alpha, ta_, 0, lda, tb_, 0, ldb, beta, tc_, 0, ldc));
    float *got = tu_read(tc_);
    double err = tu_max_rel_err(got, want, nc), tol = 1e-4 * sqrt((double)(k > 1 ? k : 1));
    clasp_gemm_params p;
    assert_ok(clasp_gemm_choose(ctx, ta, tb, m, n, k, &p));
    if (!(err <= tol))
        fail_msg("gemm t%d%d %dx%dx%d with %s %dx%d wg%d s%d o%d: rel err %g > %g", ta, tb, m, n, k,
                 clasp_gemm_path_name(p.path), p.tm, p.tn, p.wg, p.splitk, p.order, err, tol);
    free(got);
    clasp_tensor_free(ta_);
    clasp_tensor_free(tb_);
    clasp_tensor_free(tc_);
    free(a);
    free(b);
    free(c);
    free(want);
}

/* The tuning file's header for ctx's device, as tune.c writes it. */
static void header_for(clasp_ctx *ctx, char *buf, size_t size, const char *device_name)
{
    const clasp_device_info *d = clasp_ctx_device(ctx);
    snprintf(buf, size, "clasp-tune 1\tclasp %s\tplatform %s\tdevice %s\tversion %s\tdriver %s\n",
             CLASP_VERSION, d->platform_name, device_name ? device_name : d->name, d->version,
             d->driver);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0;
}

/* Removes a folder with everything in it (PoCL may have put its kernel
 * cache under an XDG_CACHE_HOME pointed here). */
static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- recording --------------------------------------------------------- */

static void test_record(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_model *m = tiny_model(ctx);
    clasp_sgd *opt;
    assert_ok(clasp_sgd_new(m, 0.01f, 0.9f, 0.0f, &opt));
    float xh[TINY_BATCH * 16];
    tu_fill_random(xh, sizeof xh / sizeof xh[0], 3, 0, 1);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){TINY_BATCH, 1, 4, 4}, xh);
    clasp_tensor *dx = tu_tensor(ctx, 4, (int[]){TINY_BATCH, 1, 4, 4}, NULL);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){TINY_BATCH}, (int32_t[]){0, 1, 2, 1});
    clasp_tensor *pred = tu_tensor_i32(ctx, 1, (int[]){TINY_BATCH}, (int32_t[]){0, 0, 0, 0});

    /* Nothing is recorded before recording starts. */
    assert_ok(clasp_model_predict(m, x, pred));
    clasp_gemm_problem got[16];
    assert_int_equal(clasp_gemm_recorded(ctx, got, 16), 0);

    assert_ok(clasp_gemm_record(ctx, 1));
    assert_ok(clasp_train_step(m, opt, x, y, NULL, NULL));
    clasp_model_set_train(m, 0);
    assert_ok(clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL));
    assert_ok(clasp_model_predict(m, x, pred));
    /* Explicit paths are the tuner's own calls, never part of a workload. */
    clasp_gemm_params gen = {.path = CLASP_GEMM_GENERAL};
    clasp_tensor *a = tu_tensor(ctx, 1, (int[]){64}, NULL),
                 *c = tu_tensor(ctx, 1, (int[]){64}, NULL);
    assert_ok(clasp_tensor_fill(a, 1.0f));
    assert_ok(clasp_gemm_with(ctx, &gen, 0, 0, 7, 7, 7, 1.0f, a, 0, 7, a, 0, 7, 0.0f, c, 0, 7));
    assert_ok(clasp_gemm_record(ctx, 0));
    assert_ok(clasp_ctx_finish(ctx));

    clasp_gemm_problem want[8];
    int nw = tiny_problems(TINY_BATCH, want);
    size_t n = clasp_gemm_recorded(ctx, got, 16);
    assert_int_equal(n, (size_t)nw);
    for (int i = 0; i < nw; i++) {
        int at = find_problem(got, n, &want[i]);
        if (at < 0)
            fail_msg("problem t%d%d %dx%dx%d was not recorded", want[i].ta, want[i].tb, want[i].m,
                     want[i].n, want[i].k);
        assert_true(got[at].calls >= 1);
    }
    /* Forward passes: training, input gradient, inference. */
    assert_int_equal(got[find_problem(got, n, &want[0])].calls, 3);
    /* The first layer's dx: the input gradient only. */
    assert_int_equal(got[find_problem(got, n, &want[5])].calls, 1);

    /* Stopped: the list stays and does not grow. */
    assert_ok(clasp_model_predict(m, x, pred));
    assert_int_equal(clasp_gemm_recorded(ctx, got, 16), n);
    /* Starting again forgets the old list. */
    assert_ok(clasp_gemm_record(ctx, 1));
    assert_int_equal(clasp_gemm_recorded(ctx, got, 16), 0);
    assert_ok(clasp_model_predict(m, x, pred));
    assert_ok(clasp_gemm_record(ctx, 0));
    assert_int_equal(clasp_gemm_recorded(ctx, got, 16), 2);

    clasp_tensor_free(a);
    clasp_tensor_free(c);
    clasp_tensor_free(x);
    clasp_tensor_free(dx);
    clasp_tensor_free(y);
    clasp_tensor_free(pred);
    clasp_sgd_free(opt);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
}

/* ---- a short tuning run and its file ------------------------------------ */

static void test_tune_and_load(void **state)
{
    (void)state;
    char dir[512], path[1100];
    tu_tmpdir(dir, sizeof dir);
    setenv("CLASP_CACHE_DIR", dir, 1);

    clasp_ctx *ctx = tu_ctx();
    clasp_model *m = tiny_model(ctx);
    /* The caller's model must come out untouched: a copy runs. */
    float w_before[8 * 16], w_after[8 * 16];
    assert_ok(clasp_tensor_read(clasp_model_param(m, 0), w_before));
    assert_ok(clasp_tune_file_path(ctx, path, sizeof path));
    assert_false(file_exists(path));
    assert_int_equal(strncmp(path, dir, strlen(dir)), 0);

    clasp_tune_model w = {.model = m, .batch = TINY_BATCH};
    clasp_tune_opts o = {.seconds = 2,
                         .workload = clasp_tune_model_workload,
                         .workload_user = &w,
                         .save = 1};
    clasp_tune_result r;
    assert_ok(clasp_tune_run(ctx, &o, &r));
    assert_ok(clasp_tensor_read(clasp_model_param(m, 0), w_after));
    assert_memory_equal(w_before, w_after, sizeof w_before);
    assert_true(r.saved);
    assert_string_equal(r.path, path);
    assert_true(file_exists(path));

    clasp_gemm_problem want[8];
    int nw = tiny_problems(TINY_BATCH, want), compared = 0;
    assert_int_equal(r.n, (size_t)nw);
    for (int i = 0; i < nw; i++) {
        int at = -1;
        for (size_t j = 0; j < r.n; j++)
            if (find_problem(&r.entries[j].prob, 1, &want[i]) == 0) at = (int)j;
        assert_true(at >= 0);
        const clasp_tune_entry *e = &r.entries[at];
        /* The heuristic's pick at least was timed. */
        assert_true(e->n_timed >= 1 && e->n_timed <= e->n_candidates);
        compared += e->n_timed >= 2;
        assert_true(e->gflops > 0 && e->default_gflops > 0);
        assert_int_not_equal(e->chosen.path, CLASP_GEMM_AUTO);
        /* This context uses the choices right away. */
        clasp_gemm_params p;
        assert_ok(
            clasp_gemm_choose(ctx, want[i].ta, want[i].tb, want[i].m, want[i].n, want[i].k, &p));
        assert_memory_equal(&p, &e->chosen, sizeof p);
    }
    assert_true(r.default_s > 0 && r.tuned_s > 0);
    /* However short the budget, candidates were compared. */
    assert_true(compared > 0);

    /* The file holds exactly those choices... */
    clasp_tune_entry *fe;
    size_t fn;
    char version[32];
    assert_ok(clasp_tune_file_read(ctx, path, &fe, &fn, version, sizeof version));
    assert_string_equal(version, CLASP_VERSION);
    assert_int_equal(fn, r.n);
    for (size_t i = 0; i < fn; i++) {
        int found = 0;
        for (size_t j = 0; j < r.n; j++)
            if (find_problem(&r.entries[j].prob, 1, &fe[i].prob) == 0) {
                assert_memory_equal(&fe[i].chosen, &r.entries[j].chosen, sizeof fe[i].chosen);
                found = 1;
            }
        assert_true(found);
    }
    free(fe);

    /* ... which a fresh context loads when it first uses GEMM, and which
     * compute the right thing. */
    clasp_ctx *ctx2 = tu_ctx();
    for (size_t j = 0; j < r.n; j++) {
        const clasp_gemm_problem *q = &r.entries[j].prob;
        clasp_gemm_params p;
        assert_ok(clasp_gemm_choose(ctx2, q->ta, q->tb, q->m, q->n, q->k, &p));
        assert_memory_equal(&p, &r.entries[j].chosen, sizeof p);
        check_gemm(ctx2, q->ta, q->tb, q->m, q->n, q->k);
    }
    clasp_ctx_free(ctx2);
    clasp_tune_result_free(&r);

    /* Another batch adds its problems; the first run's stay. */
    w.batch = 3;
    assert_ok(clasp_tune_run(ctx, &o, &r));
    assert_true(r.saved);
    assert_ok(clasp_tune_file_read(ctx, path, &fe, &fn, NULL, 0));
    clasp_gemm_problem all[16];
    for (size_t i = 0; i < fn && i < 16; i++) all[i] = fe[i].prob;
    free(fe);
    assert_int_equal(fn, 2 * (size_t)nw);
    clasp_gemm_problem w3[8];
    tiny_problems(3, w3);
    for (int i = 0; i < nw; i++) {
        assert_true(find_problem(all, fn, &want[i]) >= 0);
        assert_true(find_problem(all, fn, &w3[i]) >= 0);
    }
    clasp_tune_result_free(&r);

    /* --reset */
    int removed;
    assert_ok(clasp_tune_reset(ctx, &removed));
    assert_true(removed);
    assert_false(file_exists(path));
    assert_ok(clasp_tune_reset(ctx, &removed));
    assert_false(removed);

    clasp_model_free(m);
    clasp_ctx_free(ctx);
    tu_rmdir(dir);
}

/* ---- hand-written files ------------------------------------------------- */

/* Non-default kernels, each on a problem it can run. */
static const struct forced_line {
    int ta, tb, m, n, k;
    clasp_gemm_params p;
} forced[] = {
    {0, 0, 50, 70, 333, {CLASP_GEMM_TILED, 4, 32, 4, 3, 1}},
    {0, 1, 40, 24, 300, {CLASP_GEMM_DOT, 4, 4, 4, 1, 2}},
    {0, 1, 33, 21, 2100, {CLASP_GEMM_DOT, 2, 8, 2, 5, 1}},
    {1, 0, 37, 64, 29, {CLASP_GEMM_TILED, 8, 16, 2, 2, 2}},
    {1, 1, 20, 48, 33, {CLASP_GEMM_TILED, 16, 16, 8, 1, 1}},
    {0, 1, 64, 48, 100, {CLASP_GEMM_TILED, 8, 32, 4, 2, 2}},
    {0, 0, 30, 40, 20, {CLASP_GEMM_GENERAL, 0, 0, 0, 0, 0}},
};

static void forced_line_text(const struct forced_line *f, char *buf, size_t size)
{
    snprintf(buf, size, "%d %d %d %d %d %s %d %d %d %d %d 12.5\n", f->ta, f->tb, f->m, f->n, f->k,
             clasp_gemm_path_name(f->p.path), f->p.tm, f->p.tn, f->p.wg, f->p.splitk, f->p.order);
}

static void test_forced_file(void **state)
{
    (void)state;
    char dir[512], path[1100], text[8192], line[256];
    tu_tmpdir(dir, sizeof dir);
    setenv("CLASP_CACHE_DIR", dir, 1);
    clasp_ctx *ctx = tu_ctx();
    assert_ok(clasp_tune_file_path(ctx, path, sizeof path));
    header_for(ctx, text, sizeof text, NULL);
    strcat(text, "# written by test_tune\n\n");
    for (size_t i = 0; i < sizeof forced / sizeof forced[0]; i++) {
        forced_line_text(&forced[i], line, sizeof line);
        strcat(text, line);
    }
    /* A tile larger than its problem: dropped alone, the heuristic runs it. */
    strcat(text, "0 0 3 5 7 tiled 16 16 4 1 1 99.0\n");
    tu_write_file(path, text, strlen(text));

    clasp_ctx *ctx2 = tu_ctx();
    for (size_t i = 0; i < sizeof forced / sizeof forced[0]; i++) {
        const struct forced_line *f = &forced[i];
        clasp_gemm_params p;
        assert_ok(clasp_gemm_choose(ctx2, f->ta, f->tb, f->m, f->n, f->k, &p));
        assert_memory_equal(&p, &f->p, sizeof p);
        check_gemm(ctx2, f->ta, f->tb, f->m, f->n, f->k);
    }
    clasp_gemm_params p, h = {0};
    assert_ok(clasp_gemm_choose(ctx2, 0, 0, 3, 5, 7, &p));
    assert_ok(clasp_gemm_resolve(ctx2, 0, 0, 3, 5, 7, &h));
    assert_memory_equal(&p, &h, sizeof p);
    check_gemm(ctx2, 0, 0, 3, 5, 7);
    /* Problems absent from the file keep the heuristic. */
    h = (clasp_gemm_params){0};
    assert_ok(clasp_gemm_choose(ctx2, 0, 0, 50, 70, 334, &p));
    assert_ok(clasp_gemm_resolve(ctx2, 0, 0, 50, 70, 334, &h));
    assert_memory_equal(&p, &h, sizeof p);
    clasp_ctx_free(ctx2);

    /* A good file keeps ensure from tuning, even with first-use tuning on:
     * no workload is recorded and the file stays as it was. */
    clasp_ctx_opts co = *clasp_ctx_options(ctx);
    co.tune = 1;
    assert_ok(clasp_ctx_set_options(ctx, &co));
    clasp_tune_ensure(ctx, NULL, TINY_BATCH, 1);
    clasp_gemm_problem rec[4];
    assert_int_equal(clasp_gemm_recorded(ctx, rec, 4), 0);
    char back[8192] = "";
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t got = fread(back, 1, sizeof back - 1, fp);
    fclose(fp);
    back[got] = '\0';
    assert_string_equal(back, text);
    clasp_ctx_free(ctx);
    tu_rmdir(dir);
}

/* Files that must not be trusted: each is ignored as a whole, without a
 * crash, and the heuristic runs every problem, including the one the good
 * line names. */
static void test_corrupt_files(void **state)
{
    (void)state;
    char dir[512], path[1100], header[2048], other[2048], good[256];
    tu_tmpdir(dir, sizeof dir);
    setenv("CLASP_CACHE_DIR", dir, 1);
    clasp_ctx *ctx = tu_ctx();
    assert_ok(clasp_tune_file_path(ctx, path, sizeof path));
    header_for(ctx, header, sizeof header, NULL);
    header_for(ctx, other, sizeof other, "some other device");
    forced_line_text(&forced[0], good, sizeof good);
    const struct forced_line *f = &forced[0];

    char bad[9][4096];
    snprintf(bad[0], sizeof bad[0], "%s%sgarbage here\n", header, good);
    snprintf(bad[1], sizeof bad[1], "%s%s", other, good);
    /* Truncated in the middle of a line: no final newline. */
    snprintf(bad[2], sizeof bad[2], "%s%s", header, good);
    bad[2][strlen(bad[2]) - 9] = '\0';
    /* Truncated inside the header. */
    snprintf(bad[3], sizeof bad[3], "%.20s", header);
    snprintf(bad[4], sizeof bad[4], "%s%s0 0 8 8 8 fastest 8 16 4 1 1 1.0\n", header, good);
    snprintf(bad[5], sizeof bad[5], "%s%s0 0 8 8 8 tiled 8 24 4 1 1 1.0\n", header, good);
    snprintf(bad[6], sizeof bad[6], "%s%s0 0 8 8 8 tiled 8 16 4 1 1 1.0 extra\n", header, good);
    snprintf(bad[7], sizeof bad[7],
             "\x7f"
             "ELF\x01\x02\x03\n%s",
             good);
    bad[8][0] = '\0'; /* empty */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path, bad[i], strlen(bad[i]));
        clasp_tune_entry *e = NULL;
        size_t n = 99;
        assert_int_equal(clasp_tune_file_read(ctx, path, &e, &n, NULL, 0), CLASP_ERR_FORMAT);
        assert_null(e);
        assert_int_equal(n, 0);
        clasp_error_clear();
        clasp_ctx *c2 = tu_ctx();
        clasp_gemm_params p, h = {0};
        assert_ok(clasp_gemm_choose(c2, f->ta, f->tb, f->m, f->n, f->k, &p));
        assert_ok(clasp_gemm_resolve(c2, f->ta, f->tb, f->m, f->n, f->k, &h));
        if (memcmp(&p, &h, sizeof p)) fail_msg("file %zu was not ignored", i);
        check_gemm(c2, f->ta, f->tb, f->m, f->n, f->k);
        clasp_ctx_free(c2);
    }
    /* The good file, for contrast, is used. */
    snprintf(bad[0], sizeof bad[0], "%s%s", header, good);
    tu_write_file(path, bad[0], strlen(bad[0]));
    clasp_ctx *c2 = tu_ctx();
    clasp_gemm_params p;
    assert_ok(clasp_gemm_choose(c2, f->ta, f->tb, f->m, f->n, f->k, &p));
    assert_memory_equal(&p, &f->p, sizeof p);
    clasp_ctx_free(c2);

    /* No file at all: not an error anywhere. */
    unlink(path);
    clasp_tune_entry *e;
    size_t n;
    assert_int_equal(clasp_tune_file_read(ctx, path, &e, &n, NULL, 0), CLASP_ERR_NOT_FOUND);
    clasp_error_clear();
    c2 = tu_ctx();
    check_gemm(c2, f->ta, f->tb, f->m, f->n, f->k);
    clasp_ctx_free(c2);

    clasp_ctx_free(ctx);
    tu_rmdir(dir);
}

/* ---- first use and the cache turned off --------------------------------- */

typedef struct log_lines {
    int n;
    char text[4][256];
} log_lines;

static void collect_line(void *user, const char *line)
{
    log_lines *l = user;
    if (l->n < 4) snprintf(l->text[l->n], sizeof l->text[0], "%s", line);
    l->n++;
}

static void test_ensure(void **state)
{
    (void)state;
    char dir[512], path[1100];
    tu_tmpdir(dir, sizeof dir);
    setenv("CLASP_CACHE_DIR", dir, 1);
    clasp_ctx *ctx = tu_ctx();
    clasp_model *m = tiny_model(ctx);
    assert_ok(clasp_tune_file_path(ctx, path, sizeof path));
    clasp_ctx_opts co = *clasp_ctx_options(ctx);
    co.tune = 0;
    assert_ok(clasp_ctx_set_options(ctx, &co));
    clasp_tune_ensure(ctx, m, TINY_BATCH, 1);
    assert_false(file_exists(path));
    clasp_gemm_problem rec[4];
    assert_int_equal(clasp_gemm_recorded(ctx, rec, 4), 0);

    co.tune = 1;
    assert_ok(clasp_ctx_set_options(ctx, &co));
    clasp_tune_ensure(ctx, m, TINY_BATCH, 1);
    assert_true(file_exists(path));
    /* A usable file is never redone: mark it and look for the mark. */
    clasp_tune_entry *e;
    size_t n;
    assert_ok(clasp_tune_file_read(ctx, path, &e, &n, NULL, 0));
    assert_int_equal(n, 6);
    free(e);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("# marked\n", fp);
    fclose(fp);
    clasp_tune_ensure(ctx, m, TINY_BATCH, 1);
    char text[8192] = "";
    fp = fopen(path, "r");
    assert_non_null(fp);
    size_t got = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[got] = '\0';
    assert_non_null(strstr(text, "# marked\n"));
    /* An untrusted one is replaced, and with a log hook (the runner's
     * news) the notice and its outcome go there, as two lines. */
    tu_write_file(path, "junk\n", 5);
    log_lines lines = {0};
    clasp_tune_model w = {.model = m, .batch = TINY_BATCH};
    clasp_tune_ensure_workload_log(ctx, clasp_tune_model_workload, &w, 1, collect_line, &lines);
    assert_ok(clasp_tune_file_read(ctx, path, &e, &n, NULL, 0));
    assert_int_equal(n, 6);
    free(e);
    assert_int_equal(lines.n, 2);
    assert_non_null(strstr(lines.text[0], "no GEMM tuning for this device yet"));
    assert_non_null(strstr(lines.text[1], "GEMM tuning done in"));

    clasp_model_free(m);
    clasp_ctx_free(ctx);
    tu_rmdir(dir);
}

static void test_cache_off(void **state)
{
    (void)state;
    char dir[512], path[1100];
    tu_tmpdir(dir, sizeof dir);
    /* Where the cache would otherwise go. */
    setenv("XDG_CACHE_HOME", dir, 1);
    setenv("CLASP_CACHE_DIR", "off", 1);

    clasp_ctx *ctx = tu_ctx();
    clasp_ctx_opts co = *clasp_ctx_options(ctx);
    co.tune = 1; /* what ensure would do if caching were on */
    assert_ok(clasp_ctx_set_options(ctx, &co));
    clasp_model *m = tiny_model(ctx);
    assert_int_equal(clasp_tune_file_path(ctx, path, sizeof path), CLASP_ERR_NOT_FOUND);
    clasp_error_clear();
    assert_int_equal(clasp_tune_reset(ctx, NULL), CLASP_ERR_NOT_FOUND);
    clasp_error_clear();
    /* No tuning on first use when nothing could be kept: no workload is
     * even recorded. */
    clasp_tune_ensure(ctx, m, TINY_BATCH, 1);
    clasp_gemm_problem rec[4];
    assert_int_equal(clasp_gemm_recorded(ctx, rec, 4), 0);

    /* Tuning still works, in memory. */
    clasp_tune_model w = {.model = m, .batch = TINY_BATCH};
    clasp_tune_opts o = {.seconds = 1,
                         .workload = clasp_tune_model_workload,
                         .workload_user = &w,
                         .save = 1};
    clasp_tune_result r;
    assert_ok(clasp_tune_run(ctx, &o, &r));
    assert_false(r.saved);
    assert_string_equal(r.path, "");
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < r.n; i++) {
        const clasp_gemm_problem *q = &r.entries[i].prob;
        clasp_gemm_params p;
        assert_ok(clasp_gemm_choose(ctx, q->ta, q->tb, q->m, q->n, q->k, &p));
        assert_memory_equal(&p, &r.entries[i].chosen, sizeof p);
        check_gemm(ctx, q->ta, q->tb, q->m, q->n, q->k);
    }
    clasp_tune_result_free(&r);
    /* Without "off" the cache would be $XDG_CACHE_HOME/clasp (PoCL may
     * keep its own cache beside it). */
    char would_be[1100];
    snprintf(would_be, sizeof would_be, "%s/clasp", dir);
    assert_false(file_exists(would_be));

    clasp_model_free(m);
    clasp_ctx_free(ctx);
    rm_tree(dir);
}

/* The environment the tests change (the cache folder), as the process
 * started: restored after every test, failed or not, so that no test runs
 * in what another left behind. */
static char *env_at_start[3];
static const char *const env_names[3] = {"CLASP_CACHE_DIR", "XDG_CACHE_HOME", "CLASP_TUNE"};

static int restore_env(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        if (env_at_start[i]) setenv(env_names[i], env_at_start[i], 1);
        else unsetenv(env_names[i]);
    }
    return 0;
}

int main(void)
{
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(env_names[i]);
        env_at_start[i] = v ? strdup(v) : NULL;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_record, restore_env),
        cmocka_unit_test_teardown(test_tune_and_load, restore_env),
        cmocka_unit_test_teardown(test_forced_file, restore_env),
        cmocka_unit_test_teardown(test_corrupt_files, restore_env),
        cmocka_unit_test_teardown(test_ensure, restore_env),
        cmocka_unit_test_teardown(test_cache_off, restore_env),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < 3; i++) free(env_at_start[i]);
    return failed;
}
