/* The class-wise report writer: a small synthetic experiment (3 classes,
 * 2 models with 2 attacks and 2 epochs each, calibration on one) is
 * written, then report.json is read back and its numbers are checked
 * against the raw counts, and the CSV, Markdown and SVG files are checked
 * for shape, quoting, escaping and well-formedness. */
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clasp/groups.h"
#include "clasp/registry.h"
#include "clasp/report.h"
#include "experiment/report/facts.h"
#include "experiment/svg.h"
#include "testutil.h"

#define K 3
#define EPS 1e-9

/* Names that need CSV quoting, XML escaping and Markdown escaping. */
static char class_names[K][32] = {"cat, fluffy", "A&B <x>", "dog"};

/* Storage for one attack's counts. */
typedef struct attack_data {
    int64_t count[K], clean[K], robust[K], success[K], flow[K * K];
} attack_data;

typedef struct epoch_data {
    int64_t count[K], clean[K], robust[K];
    float weights[K];
} epoch_data;

typedef struct fixture {
    clasp_report r;
    clasp_model_report models[2];
    clasp_attack_report attacks[2][2];
    attack_data ad[2][2];
    clasp_epoch_report epochs[2][2];
    epoch_data ed[2][2];
    float offsets[K];
    char dir[256];
} fixture;

/* Fills consistent counts: the examples an attack does not leave correct
 * go mostly to the next class, the rest to the one after. */
static void fill_attack(attack_data *d, const int64_t *clean, const int64_t *robust)
{
    static const int64_t count[K] = {10, 12, 8};
    memset(d, 0, sizeof *d);
    for (int i = 0; i < K; i++) {
        d->count[i] = count[i];
        d->clean[i] = clean[i];
        d->robust[i] = robust[i];
        d->success[i] = clean[i] - robust[i];
        int64_t wrong = count[i] - robust[i], far = wrong / 3;
        d->flow[i * K + i] = robust[i];
        d->flow[i * K + (i + 1) % K] = wrong - far;
        d->flow[i * K + (i + 2) % K] = far;
    }
}

static void link_attack(clasp_attack_report *a, attack_data *d, const char *label,
                        const char *plugin, double seconds)
{
    memset(a, 0, sizeof *a);
    snprintf(a->label, sizeof a->label, "%s", label);
    snprintf(a->plugin, sizeof a->plugin, "%s", plugin);
    snprintf(a->params, sizeof a->params, "eps=0.1");
    a->per_class.count = d->count;
    a->per_class.clean_correct = d->clean;
    a->per_class.robust_correct = d->robust;
    a->success = d->success;
    a->flow = d->flow;
    a->seconds = seconds;
}

static void fill_epoch(clasp_epoch_report *e, epoch_data *d, int epoch, int robust, int weights)
{
    static const int64_t count[K] = {20, 20, 20};
    memset(e, 0, sizeof *e);
    e->epoch = epoch;
    e->train_loss = 1.0 / epoch;
    e->lr = 0.1;
    e->seconds = 3.5;
    for (int i = 0; i < K; i++) {
        d->count[i] = count[i];
        d->clean[i] = 10 + 2 * i + 3 * epoch;
        d->robust[i] = 2 + i + 2 * epoch;
        d->weights[i] = 1.0f + 0.25f * (float)i;
    }
    e->val.count = d->count;
    e->val.clean_correct = d->clean;
    e->val.robust_correct = robust ? d->robust : NULL;
    e->class_weights = weights ? d->weights : NULL;
}

static void fill_models(fixture *f)
{
    static const int64_t clean0[K] = {9, 11, 6}, clean1[K] = {8, 10, 6};
    static const int64_t rob[2][2][K] = {{{4, 6, 2}, {1, 3, 0}}, {{6, 7, 4}, {5, 7, 3}}};
    static const char *const names[2] = {"standard", "pgd-at"};
    for (int m = 0; m < 2; m++) {
        clasp_model_report *mr = &f->models[m];
        memset(mr, 0, sizeof *mr);
        snprintf(mr->name, sizeof mr->name, "%s", names[m]);
        snprintf(mr->defense, sizeof mr->defense, "%s", m ? "pgd_at" : "");
        snprintf(mr->params, sizeof mr->params, "%s", m ? "eps=0.1, steps=7" : "");
        snprintf(mr->checkpoint, sizeof mr->checkpoint, "models/%s.safetensors", names[m]);
        for (int j = 0; j < 2; j++) {
            fill_attack(&f->ad[m][j], m ? clean1 : clean0, rob[m][j]);
            link_attack(&f->attacks[m][j], &f->ad[m][j],
                        j ? "pgd eps=0.1 steps=20" : "fgsm eps=0.1", j ? "pgd" : "fgsm", 1.5 + j);
            fill_epoch(&f->epochs[m][j], &f->ed[m][j], j + 1, m == 1, m == 1);
        }
        mr->n_attacks = 2;
        mr->attacks = f->attacks[m];
        mr->n_epochs = 2;
        mr->epochs = f->epochs[m];
        mr->train_seconds = 75;
        mr->eval_seconds = 4.25;
    }
    f->models[1].calibrated = 1;
    f->models[1].calib_temperature = 1.5f;
    for (int i = 0; i < K; i++) f->offsets[i] = 0.1f * (float)(i - 1);
    f->models[1].calib_offsets = f->offsets;
}

static void fill_report(fixture *f)
{
    memset(f, 0, sizeof *f);
    clasp_report *r = &f->r;
    snprintf(r->experiment, sizeof r->experiment, "tiny-test");
    snprintf(r->clasp_version, sizeof r->clasp_version, "0.1.0");
    snprintf(r->device, sizeof r->device, "Test device / CPU");
    r->seed = 18446744073709551615ull; /* needs the full unsigned range */
    snprintf(r->dataset, sizeof r->dataset, "synthetic");
    r->train_size = 600;
    r->val_size = 60;
    r->test_size = 30;
    r->num_classes = K;
    r->class_names = class_names;
    r->config_yaml = "experiment: tiny-test\nseed: 1\n";
    r->config_path = "experiments/tiny.yaml";
    snprintf(r->started, sizeof r->started, "2024-01-02T03:04:05Z");
    r->wall_seconds = 3725;
    fill_models(f);
    r->n_models = 2;
    r->models = f->models;
}

/* ---- file helpers ------------------------------------------------------ */

static char *read_all(const char *path)
{
    return tu_read_all(path, NULL);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* Removes the report folder: charts/ first, since tu_rmdir only removes
 * plain files in one folder. */
static void remove_report(const char *dir)
{
    char charts[512];
    path_in(charts, sizeof charts, dir, "charts");
    tu_rmdir(charts);
    tu_rmdir(dir);
}

/* A filled fixture (fill_report), freed by end_fixture. */
static fixture *new_fixture(void)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fill_report(f);
    return f;
}

/* Removes the fixture's report folder (kept when CLASP_KEEP_REPORT is
 * set, to look at) and frees it. */
static void end_fixture(fixture *f)
{
    if (getenv("CLASP_KEEP_REPORT")) printf("report kept in %s\n", f->dir);
    else remove_report(f->dir);
    free(f);
}

static int count_str(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

/* ---- report.json ------------------------------------------------------- */

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("missing key %s", key);
    return v;
}

static int64_t jint(json_object *o, const char *key)
{
    return json_object_get_int64(jget(o, key));
}

static double jdbl(json_object *o, const char *key)
{
    return json_object_get_double(jget(o, key));
}

/* Worst and best class by robust accuracy, ties to the lower index. */
static void expected_extremes(const attack_data *d, int *worst, int *best)
{
    *worst = *best = 0;
    for (int i = 1; i < K; i++) {
        double r = (double)d->robust[i] / (double)d->count[i];
        if (r < (double)d->robust[*worst] / (double)d->count[*worst]) *worst = i;
        if (r > (double)d->robust[*best] / (double)d->count[*best]) *best = i;
    }
}

static void check_attack_json(json_object *ja, const attack_data *d)
{
    json_object *rows = jget(ja, "per_class"), *flow = jget(ja, "flow"), *s = jget(ja, "summary");
    assert_int_equal(json_object_array_length(rows), K);
    int64_t total = 0, robust = 0;
    for (int c = 0; c < K; c++) {
        json_object *row = json_object_array_get_idx(rows, c);
        assert_int_equal(jint(row, "count"), d->count[c]);
        assert_string_equal(json_object_get_string(jget(row, "class")), class_names[c]);
        assert_true(fabs(jdbl(row, "robust_acc") -
                         (double)jint(row, "robust_correct") / (double)jint(row, "count")) < EPS);
        assert_true(fabs(jdbl(row, "success_rate") -
                         (double)jint(row, "success") / (double)jint(row, "clean_correct")) < EPS);
        total += jint(row, "count");
        robust += jint(row, "robust_correct");
        json_object *frow = json_object_array_get_idx(flow, c);
        int64_t fs = 0;
        for (int p = 0; p < K; p++) fs += json_object_get_int64(json_object_array_get_idx(frow, p));
        assert_int_equal(fs, jint(row, "count"));
    }
    assert_int_equal(jint(s, "count"), total);
    assert_int_equal(jint(s, "robust_correct"), robust);
    assert_true(fabs(jdbl(s, "robust_acc") - (double)robust / (double)total) < EPS);
    int worst, best;
    expected_extremes(d, &worst, &best);
    assert_int_equal(jint(jget(s, "worst_class"), "index"), worst);
    assert_int_equal(jint(jget(s, "best_class"), "index"), best);
    double gap = (double)d->robust[best] / (double)d->count[best] -
                 (double)d->robust[worst] / (double)d->count[worst];
    assert_true(fabs(jdbl(s, "gap") - gap) < EPS);
}

static double overall_robust(const attack_data *d)
{
    int64_t n = 0, r = 0;
    for (int c = 0; c < K; c++) {
        n += d->count[c];
        r += d->robust[c];
    }
    return (double)r / (double)n;
}

/* The single pair (fgsm, pgd): b must be the attack with the lower overall
 * robust accuracy, gain[c] = robust_a[c] - robust_b[c]. */
static void check_pair_json(json_object *jm, const fixture *f, int m)
{
    json_object *pairs = jget(jm, "attack_pairs");
    assert_int_equal(json_object_array_length(pairs), 1);
    json_object *p = json_object_array_get_idx(pairs, 0);
    int strong = overall_robust(&f->ad[m][1]) < overall_robust(&f->ad[m][0]) ? 1 : 0;
    const attack_data *a = &f->ad[m][1 - strong], *b = &f->ad[m][strong];
    assert_string_equal(json_object_get_string(jget(p, "stronger")), f->attacks[m][strong].label);
    assert_string_equal(json_object_get_string(jget(p, "b")), f->attacks[m][strong].label);
    json_object *gain = jget(p, "gain");
    for (int c = 0; c < K; c++) {
        double want =
            (double)a->robust[c] / (double)a->count[c] - (double)b->robust[c] / (double)b->count[c];
        assert_true(fabs(json_object_get_double(json_object_array_get_idx(gain, c)) - want) < EPS);
    }
}

static void check_json(const fixture *f)
{
    char path[512];
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    if (!root) fail_msg("report.json does not parse: %s", json_util_get_last_err());
    assert_string_equal(json_object_get_string(jget(root, "experiment")), "tiny-test");
    assert_true(json_object_get_uint64(jget(root, "seed")) == f->r.seed);
    assert_int_equal(jint(jget(root, "dataset"), "test_size"), 30);
    assert_string_equal(json_object_get_string(jget(root, "config")), f->r.config_yaml);
    json_object *models = jget(root, "models");
    assert_int_equal(json_object_array_length(models), 2);
    for (int m = 0; m < 2; m++) {
        json_object *jm = json_object_array_get_idx(models, m);
        json_object *attacks = jget(jm, "attacks");
        for (int j = 0; j < 2; j++)
            check_attack_json(json_object_array_get_idx(attacks, j), &f->ad[m][j]);
        check_pair_json(jm, f, m);
        assert_int_equal(json_object_array_length(jget(jm, "epochs")), 2);
        json_object *cal = jget(jm, "calibration");
        assert_int_equal(json_object_get_boolean(jget(cal, "enabled")), m == 1);
    }
    json_object *m1 = json_object_array_get_idx(models, 1);
    json_object *e1 = json_object_array_get_idx(jget(m1, "epochs"), 1);
    assert_int_equal(json_object_array_length(jget(e1, "class_weights")), K);
    json_object *cal = jget(m1, "calibration");
    assert_int_equal(json_object_array_length(jget(cal, "offsets")), K);
    assert_true(fabs(jdbl(cal, "temperature") - 1.5) < EPS);
    json_object_put(root);
}

/* ---- CSV and Markdown -------------------------------------------------- */

static void check_csv(const fixture *f)
{
    char path[512];
    path_in(path, sizeof path, f->dir, "per_class.csv");
    char *s = read_all(path);
    /* header + models x attacks x classes */
    assert_int_equal(count_str(s, "\n"), 1 + 2 * 2 * K);
    const char *header = "model,attack,class_index,class,count,clean_correct,clean_acc,"
                         "robust_correct,robust_acc,success,success_rate,flipped_first_by\n";
    assert_true(strncmp(s, header, strlen(header)) == 0);
    assert_non_null(strstr(s, ",0,\"cat, fluffy\",10,9,"));
    assert_non_null(strstr(s, "standard,pgd eps=0.1 steps=20,2,dog,8,6,0.750000,0,0.000000,6,"));
    free(s);
}

static void check_md(const fixture *f)
{
    char path[512];
    path_in(path, sizeof path, f->dir, "report.md");
    char *s = read_all(path);
    assert_non_null(strstr(s, "| Class | n | Clean | fgsm eps=0.1 | pgd eps=0.1 steps=20 |"));
    assert_non_null(strstr(s, "cat, fluffy"));
    assert_non_null(strstr(s, "A&B \\<x\\>")); /* '<' would start an HTML tag */
    assert_non_null(strstr(s, "| dog |"));
    assert_non_null(strstr(s, "Gains of stronger attacks"));
    assert_non_null(strstr(s, "Flow under the strongest attack"));
    assert_non_null(strstr(s, "Calibration"));
    assert_non_null(strstr(s, "(charts/standard-fgsm-eps-0-1-classes.svg)"));
    assert_non_null(strstr(s, "(charts/pgd-at-epochs.svg)"));
    free(s);
}

/* ---- SVG --------------------------------------------------------------- */

/* Checks that the elements nest properly: every start tag is closed in
 * order or self-closing; comments, declarations and processing
 * instructions are skipped. Also checks that every '&' starts an entity. */
static void check_xml_nesting(const char *s, const char *path)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            const char *semi = strchr(p, ';');
            if (!semi || semi - p > 6 || strpbrk(p + 1, " <&") < semi)
                fail_msg("%s: bare '&' at offset %ld", path, (long)(p - s));
            continue;
        }
        if (*p != '<') continue;
        const char *end = strchr(p, '>');
        if (!end) fail_msg("%s: unterminated tag", path);
        if (p[1] == '?' || p[1] == '!') {
            p = end;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strcspn(name, " \t\n/>");
        if (n == 0 || n >= 32) fail_msg("%s: bad tag at offset %ld", path, (long)(p - s));
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, n) || stack[depth - 1][n])
                fail_msg("%s: unexpected </%.*s>", path, (int)n, name);
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 64) fail_msg("%s: nesting too deep", path);
            memcpy(stack[depth], name, n);
            stack[depth++][n] = '\0';
        }
        p = end;
    }
    if (depth != 0) fail_msg("%s: %d unclosed elements, first <%s>", path, depth, stack[0]);
}

static void check_svg(const char *dir, const char *name)
{
    char path[512];
    path_in(path, sizeof path, dir, name);
    char *s = read_all(path);
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) p = strstr(p, "?>") + 2;
    while (*p == '\n' || *p == ' ') p++;
    if (strncmp(p, "<svg", 4)) fail_msg("%s does not start with <svg", path);
    assert_non_null(strstr(p, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(p, "viewBox=\"0 0 "));
    assert_int_equal(count_str(s, "<g"), count_str(s, "</g>"));
    assert_int_equal(count_str(s, "<text"), count_str(s, "</text>"));
    check_xml_nesting(s, path);
    assert_non_null(strstr(s, "A&amp;B &lt;x&gt;"));
    assert_null(strstr(s, "A&B"));
    free(s);
}

static void check_charts(const fixture *f)
{
    static const char *const files[] = {
        "charts/standard-fgsm-eps-0-1-classes.svg",
        "charts/standard-fgsm-eps-0-1-flow.svg",
        "charts/standard-pgd-eps-0-1-steps-20-classes.svg",
        "charts/standard-pgd-eps-0-1-steps-20-flow.svg",
        "charts/standard-epochs.svg",
        "charts/pgd-at-fgsm-eps-0-1-classes.svg",
        "charts/pgd-at-fgsm-eps-0-1-flow.svg",
        "charts/pgd-at-pgd-eps-0-1-steps-20-classes.svg",
        "charts/pgd-at-pgd-eps-0-1-steps-20-flow.svg",
        "charts/pgd-at-epochs.svg",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) check_svg(f->dir, files[i]);
}

/* No "<file>.tmp.<pid>" may be left behind by the atomic writes. */
static void check_no_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".tmp")) fail_msg("left over %s", e->d_name);
    }
    closedir(d);
}

/* ---- tests ------------------------------------------------------------- */

static void full_report_is_consistent(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    tu_tmpdir(f->dir, sizeof f->dir);
    assert_ok(clasp_report_write(&f->r, f->dir));
    /* Writing again over an existing report works too. */
    assert_ok(clasp_report_write(&f->r, f->dir));
    check_json(f);
    check_csv(f);
    check_md(f);
    check_charts(f);
    check_no_tmp(f->dir);
    char charts[512];
    path_in(charts, sizeof charts, f->dir, "charts");
    check_no_tmp(charts);
    end_fixture(f);
}

static void missing_folder_is_named(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    const char *dir = "/nonexistent-clasp-dir/report";
    assert_int_equal(clasp_report_write(&f->r, dir), CLASP_ERR_IO);
    assert_non_null(strstr(clasp_last_error(), dir));
    free(f);
}

/* Names with the same slug get distinct charts, and a model without
 * validation data gets no epochs chart. */
static void slug_clashes_get_distinct_charts(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    snprintf(f->models[0].name, sizeof f->models[0].name, "x y");
    snprintf(f->models[1].name, sizeof f->models[1].name, "x-y");
    for (int m = 0; m < 2; m++)
        for (int e = 0; e < 2; e++) f->epochs[m][e].val.count = NULL;
    tu_tmpdir(f->dir, sizeof f->dir);
    assert_ok(clasp_report_write(&f->r, f->dir));
    check_svg(f->dir, "charts/x-y-fgsm-eps-0-1-classes.svg");
    check_svg(f->dir, "charts/x-y-fgsm-eps-0-1-2-classes.svg");
    char path[512];
    path_in(path, sizeof path, f->dir, "charts/x-y-epochs.svg");
    assert_int_not_equal(access(path, F_OK), 0);
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *m1 = json_object_array_get_idx(jget(root, "models"), 1);
    json_object *a0 = json_object_array_get_idx(jget(m1, "attacks"), 0);
    assert_string_equal(json_object_get_string(jget(jget(a0, "charts"), "classes")),
                        "charts/x-y-fgsm-eps-0-1-2-classes.svg");
    assert_null(jget(jget(m1, "charts"), "epochs"));
    json_object_put(root);
    end_fixture(f);
}

static void slugs_and_escaping(void **state)
{
    (void)state;
    char out[64];
    clasp_slug("PGD eps=0.1 steps=20", out, 63);
    assert_string_equal(out, "pgd-eps-0-1-steps-20");
    clasp_slug("  --A__b!!  ", out, 63);
    assert_string_equal(out, "a-b");
    clasp_slug("", out, 63);
    assert_string_equal(out, "x");
    clasp_slug("abc def", out, 4);
    assert_string_equal(out, "abc");
    clasp_buf b = {0};
    clasp_buf_xml(&b, "a<b>&\"'\x01\xff", 0);
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;&apos;??");
    clasp_buf_free(&b);
    clasp_buf_xml(&b, "h\xc3\xa9llo world", 5);
    assert_string_equal(b.data, "h\xc3\xa9ll\xE2\x80\xA6");
    clasp_buf_free(&b);
    assert_true(fabs(clasp_rate(1, 4) - 0.25) < EPS);
    assert_true(clasp_rate(3, 0) == 0);
}

/* The per-class counts every result shares: totals, rates per class and
 * overall, copies with and without the robust counts. */
static void class_counts_helpers(void **state)
{
    (void)state;
    clasp_class_counts c;
    assert_ok(clasp_counts_alloc(&c, 3, 1));
    assert_int_equal(c.num_classes, 3);
    assert_int_equal(clasp_counts_n(&c), 0);
    assert_true(clasp_counts_clean_acc(&c, -1) == 0);
    const int64_t n[3] = {4, 0, 6}, clean[3] = {3, 0, 3}, robust[3] = {1, 0, 2};
    for (int k = 0; k < 3; k++)
        c.count[k] = n[k], c.clean_correct[k] = clean[k], c.robust_correct[k] = robust[k];
    assert_int_equal(clasp_counts_n(&c), 10);
    assert_int_equal(clasp_counts_clean(&c), 6);
    assert_int_equal(clasp_counts_robust(&c), 3);
    assert_true(fabs(clasp_counts_clean_acc(&c, 0) - 0.75) < EPS);
    assert_true(clasp_counts_clean_acc(&c, 1) == 0); /* no examples */
    assert_true(fabs(clasp_counts_robust_acc(&c, 2) - 2.0 / 6.0) < EPS);
    assert_true(fabs(clasp_counts_clean_acc(&c, -1) - 0.6) < EPS);
    assert_true(fabs(clasp_counts_robust_acc(&c, -1) - 0.3) < EPS);
    clasp_class_counts d, e;
    assert_ok(clasp_counts_copy(&d, &c, 1));
    assert_ok(clasp_counts_copy(&e, &c, 0));
    c.count[0] = 99; /* the copies own their arrays */
    assert_int_equal(d.count[0], 4);
    assert_int_equal(d.robust_correct[2], 2);
    assert_null(e.robust_correct);
    assert_int_equal(clasp_counts_robust(&e), 0);
    assert_true(clasp_counts_robust_acc(&e, -1) == 0);
    assert_int_equal(clasp_counts_clean(&e), 6);
    clasp_counts_free(&c);
    clasp_counts_free(&d);
    clasp_counts_free(&e);
    assert_null(d.count);
    assert_int_equal(d.num_classes, 0);
    clasp_counts_free(&d); /* safe on a freed one */
}

/* CIFAR-100 has 100 classes, CLASP_MAX_CLASSES: the writer must have no
 * ten-class limit left (a fixed array here would show up under ASan), and
 * every class must reach every output. Names use the full 31 characters. */
static void hundred_classes(void **state)
{
    (void)state;
    enum { H = 100 };
    static char names[H][32];
    static int64_t count[H], clean[H], robust[H], success[H], flow[H * H];
    static int64_t vcount[H], vclean[H], vrobust[H];
    static float weights[H], offsets[H];
    for (int i = 0; i < H; i++) {
        snprintf(names[i], sizeof names[i], "class-%02d-%s", i, "abcdefghijklmnopqrstuv");
        assert_int_equal(strlen(names[i]), 31);
        count[i] = 10 + i % 7;
        clean[i] = count[i] - i % 3;
        robust[i] = clean[i] / 2;
        success[i] = clean[i] - robust[i];
        memset(flow + (size_t)i * H, 0, H * sizeof *flow);
        flow[(size_t)i * H + i] = robust[i];
        flow[(size_t)i * H + (i + 37) % H] = count[i] - robust[i];
        vcount[i] = 5;
        vclean[i] = 4;
        vrobust[i] = i % 5;
        weights[i] = 1.0f + (float)i / H;
        offsets[i] = 0.01f * (float)(i - 50);
    }
    clasp_attack_report a = {.per_class.count = count,
                             .per_class.clean_correct = clean,
                             .per_class.robust_correct = robust,
                             .success = success,
                             .flow = flow,
                             .seconds = 1};
    snprintf(a.label, sizeof a.label, "pgd eps=0.03");
    snprintf(a.plugin, sizeof a.plugin, "pgd");
    clasp_epoch_report e = {.epoch = 1,
                            .train_loss = 2,
                            .lr = 0.05,
                            .seconds = 1,
                            .val.count = vcount,
                            .val.clean_correct = vclean,
                            .val.robust_correct = vrobust,
                            .class_weights = weights};
    clasp_model_report m = {.n_epochs = 1,
                            .epochs = &e,
                            .n_attacks = 1,
                            .attacks = &a,
                            .calibrated = 1,
                            .calib_offsets = offsets,
                            .calib_temperature = 1};
    snprintf(m.name, sizeof m.name, "standard");
    clasp_report r = {.seed = 1,
                      .num_classes = H,
                      .class_names = names,
                      .n_models = 1,
                      .models = &m,
                      .config_yaml = "",
                      .config_path = "c.yaml"};
    snprintf(r.experiment, sizeof r.experiment, "hundred");
    snprintf(r.dataset, sizeof r.dataset, "cifar100");
    char dir[256], path[512];
    tu_tmpdir(dir, sizeof dir);
    assert_ok(clasp_report_write(&r, dir));

    path_in(path, sizeof path, dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *ds = jget(root, "dataset");
    assert_int_equal(jint(ds, "num_classes"), H);
    json_object *jn = jget(root, "class_names");
    assert_int_equal(json_object_array_length(jn), H);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(jn, H - 1)), names[H - 1]);
    json_object_put(root);

    path_in(path, sizeof path, dir, "per_class.csv");
    char *csv = read_all(path);
    assert_int_equal(count_str(csv, "\n"), 1 + H);
    assert_non_null(strstr(csv, names[H - 1]));
    free(csv);

    path_in(path, sizeof path, dir, "report.md");
    char *md = read_all(path);
    assert_non_null(strstr(md, names[H - 1]));
    free(md);

    /* Past 20 classes the bars give way to the sorted curves and the
     * histogram; the heat map and the epochs stay up to 100. */
    static const char *const charts[] = {"charts/standard-pgd-eps-0-03-flow.svg",
                                         "charts/standard-epochs.svg", "charts/standard-curve.svg",
                                         "charts/standard-histogram.svg"};
    for (int i = 0; i < 4; i++) {
        path_in(path, sizeof path, dir, charts[i]);
        char *svg = read_all(path);
        check_xml_nesting(svg, path);
        if (i < 2) assert_non_null(strstr(svg, names[H - 1]));
        free(svg);
    }
    path_in(path, sizeof path, dir, "charts/standard-pgd-eps-0-03-classes.svg");
    assert_int_not_equal(access(path, F_OK), 0);
    remove_report(dir);
}

/* ---- class groups from a mapping file ----------------------------------- */

/* The fixture's three classes grouped by a file: classes 0 and 2 form
 * "furry", class 1 is left out and so forms "(unlisted)". report.md and
 * report.json aggregate every model and attack by those groups (the sums
 * of the classes' counts, checked here against the fixture's numbers), and
 * report.json names the file; without the file nothing is grouped. */
static void file_groups_aggregate(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    tu_tmpdir(f->dir, sizeof f->dir);
    /* The first class's name holds a comma: a TAB separates it. */
    static const char text[] = "# a grouping of the fixture\r\ncat, fluffy\tfurry\r\n2,furry\r\n";
    clasp_class_groups g;
    assert_ok(clasp_class_groups_parse(text, sizeof text - 1, "my groups.txt", &g));
    assert_ok(clasp_class_groups_resolve(&g, f->r.dataset, K, (const char(*)[32])class_names));
    f->r.groups = &g;
    assert_ok(clasp_report_write(&f->r, f->dir));
    char path[512];
    path_in(path, sizeof path, f->dir, "report.md");
    char *md = read_all(path);
    assert_non_null(strstr(md, "### By class group\n\n2 groups from `my groups.txt`, each the sum "
                               "of its classes' examples. The class the file does not list forms "
                               "the last group, (unlisted).\n"));
    assert_null(strstr(md, "By superclass"));
    /* standard: counts {10, 12, 8}, clean {9, 11, 6}, fgsm robust {4, 6, 2},
     * pgd {1, 3, 0}; pgd-at: clean {8, 10, 6}, {6, 7, 4}, {5, 7, 3}. */
    assert_non_null(strstr(md, "| furry | cat, fluffy, dog | 18 | 83.3 | 33.3 | 5.6 |"));
    assert_non_null(strstr(md, "| (unlisted) | A&B \\<x\\> | 12 | 91.7 | 50.0 | 25.0 |"));
    assert_non_null(strstr(md, "| furry | cat, fluffy, dog | 18 | 77.8 | 55.6 | 44.4 |"));
    assert_non_null(strstr(md, "| (unlisted) | A&B \\<x\\> | 12 | 83.3 | 58.3 | 58.3 |"));
    free(md);
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    static const int64_t want_robust[2][2][2] = {{{6, 1}, {6, 3}}, {{10, 8}, {7, 7}}};
    static const int64_t want_clean[2][2] = {{15, 11}, {14, 10}};
    for (int m = 0; m < 2; m++) {
        json_object *cg =
            jget(json_object_array_get_idx(jget(root, "models"), (size_t)m), "class_groups");
        assert_string_equal(json_object_get_string(jget(cg, "kind")), "file");
        assert_string_equal(json_object_get_string(jget(cg, "source")), "my groups.txt");
        assert_int_equal(jint(cg, "unlisted_classes"), 1);
        json_object *arr = jget(cg, "groups");
        assert_int_equal(json_object_array_length(arr), 2);
        for (int gi = 0; gi < 2; gi++) {
            json_object *x = json_object_array_get_idx(arr, (size_t)gi);
            assert_string_equal(json_object_get_string(jget(x, "name")),
                                gi ? CLASP_GROUPS_UNLISTED : "furry");
            json_object *cls = jget(x, "classes");
            assert_int_equal(json_object_array_length(cls), gi ? 1 : 2);
            assert_int_equal(json_object_get_int(json_object_array_get_idx(cls, 0)), gi ? 1 : 0);
            assert_int_equal(jint(x, "count"), gi ? 12 : 18);
            assert_int_equal(jint(x, "clean_correct"), want_clean[m][gi]);
            assert_true(fabs(jdbl(x, "clean_acc") - (double)want_clean[m][gi] / (gi ? 12 : 18)) <
                        EPS);
            for (int j = 0; j < 2; j++) {
                int64_t rc = json_object_get_int64(
                    json_object_array_get_idx(jget(x, "robust_correct"), (size_t)j));
                double ra = json_object_get_double(
                    json_object_array_get_idx(jget(x, "robust_acc"), (size_t)j));
                assert_int_equal(rc, want_robust[m][gi][j]);
                assert_true(fabs(ra - (double)want_robust[m][gi][j] / (gi ? 12 : 18)) < EPS);
            }
        }
    }
    json_object_put(root);
    /* Without the file: no groups for this data set. */
    f->r.groups = NULL;
    assert_ok(clasp_report_write(&f->r, f->dir));
    path_in(path, sizeof path, f->dir, "report.md");
    md = read_all(path);
    assert_null(strstr(md, "By class group"));
    free(md);
    clasp_class_groups_free(&g);
    end_fixture(f);
}

/* ---- worst case per example --------------------------------------------- */

#define WN 30

/* One model, 30 examples, four entries: two L-inf attacks at eps 0.1, an
 * unbounded one (linf_eps 0, like cw) and one alone at eps 0.2. Only the
 * first two make a worst case, and it must be the per-example AND of their
 * outcomes, computed here by hand. */
static void worst_case_is_the_per_example_and(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    clasp_report *r = &f->r;
    r->n_models = 1;
    clasp_model_report *m = &f->models[0];
    int32_t labels[WN], clean[WN], adv[4][WN];
    static attack_data ad[4];
    static clasp_attack_report at[4];
    for (int i = 0; i < WN; i++) {
        labels[i] = i % K;
        clean[i] = (i % 7 == 3) ? (labels[i] + 1) % K : labels[i]; /* a few wrong clean */
        adv[0][i] = (i % 3 == 0) ? (labels[i] + 1) % K : labels[i];
        adv[1][i] = (i % 5 == 0) ? (labels[i] + 2) % K : labels[i];
        adv[2][i] = (labels[i] + 1) % K; /* unbounded: flips all */
        adv[3][i] = (i % 2) ? (labels[i] + 1) % K : labels[i];
    }
    static const double eps[4] = {0.1, 0.1, 0, 0.2};
    static const char *const lab[4] = {"a", "b", "cw", "c"};
    for (int j = 0; j < 4; j++) {
        memset(&ad[j], 0, sizeof ad[j]);
        for (int i = 0; i < WN; i++) {
            int t = labels[i];
            ad[j].count[t]++;
            ad[j].clean[t] += clean[i] == t;
            ad[j].robust[t] += adv[j][i] == t;
            ad[j].flow[t * K + adv[j][i]]++;
        }
        link_attack(&at[j], &ad[j], lab[j], lab[j], 1.0);
        at[j].linf_eps = eps[j];
        at[j].adv_pred = adv[j];
    }
    m->n_attacks = 4;
    m->attacks = at;
    m->n_examples = WN;
    m->labels = labels;
    m->clean_pred = clean;
    tu_tmpdir(f->dir, sizeof f->dir);
    assert_ok(clasp_report_write(r, f->dir));

    char path[512];
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *atk = jget(json_object_array_get_idx(jget(root, "models"), 0), "attacks");
    assert_int_equal(json_object_array_length(atk), 5); /* one worst case only */
    json_object *w = json_object_array_get_idx(atk, 4);
    assert_string_equal(json_object_get_string(jget(w, "label")), "worst case eps=0.1");
    assert_true(json_object_get_boolean(jget(w, "derived")));
    json_object *mem = jget(w, "ensemble");
    assert_int_equal(json_object_array_length(mem), 2);
    int64_t robust[K] = {0}, first[2][K] = {{0}}, flow[K * K] = {0};
    for (int i = 0; i < WN; i++) {
        int t = labels[i], pred = clean[i];
        if (clean[i] == t) {
            int ok0 = adv[0][i] == t, ok1 = adv[1][i] == t;
            robust[t] += ok0 && ok1;
            if (!ok0) first[0][t]++, pred = adv[0][i];
            else if (!ok1) first[1][t]++, pred = adv[1][i];
        }
        flow[t * K + pred]++;
    }
    json_object *rows = jget(w, "per_class"), *jflow = jget(w, "flow");
    for (int c = 0; c < K; c++) {
        json_object *row = json_object_array_get_idx(rows, (size_t)c);
        assert_int_equal(json_object_get_int64(jget(row, "robust_correct")), robust[c]);
        for (int j = 0; j < 2; j++)
            assert_int_equal(json_object_get_int64(
                                 json_object_array_get_idx(jget(json_object_array_get_idx(mem,
                                                                                          (size_t)
                                                                                              j),
                                                                "flipped_first"),
                                                           (size_t)c)),
                             first[j][c]);
        for (int d = 0; d < K; d++)
            assert_int_equal(json_object_get_int64(
                                 json_object_array_get_idx(json_object_array_get_idx(jflow,
                                                                                     (size_t)c),
                                                           (size_t)d)),
                             flow[c * K + d]);
        /* Never above either attack alone. */
        assert_true(robust[c] <= ad[0].robust[c] && robust[c] <= ad[1].robust[c]);
    }
    /* cw is no L-inf attack: null budget, and never a member. */
    assert_int_equal(json_object_get_type(jget(json_object_array_get_idx(atk, 2), "linf_eps")),
                     json_type_null);
    json_object_put(root);
    path_in(path, sizeof path, f->dir, "report.md");
    char *md = read_all(path);
    assert_non_null(strstr(md, "### Worst case per example: worst case eps=0.1"));
    assert_non_null(strstr(md, "flipped first by a | flipped first by b |"));
    assert_non_null(
        strstr(md, "use different budgets (eps 0.1, 0.2), so worst cases are grouped by eps"));
    free(md);
    path_in(path, sizeof path, f->dir, "per_class.csv");
    char *csv = read_all(path);
    char want[64];
    snprintf(want, sizeof want, ",a=%lld;b=%lld\n", (long long)first[0][0], (long long)first[1][0]);
    assert_non_null(strstr(csv, want));
    free(csv);
    end_fixture(f);
}

/* ---- Spearman -------------------------------------------------------------- */

static void spearman_known_values(void **state)
{
    (void)state;
    /* Hand-computed: y's ranks with the tie at 7 are 1, 2, 3.5, 5, 3.5;
     * centred x ranks -2..2, y ranks -2, -1, .5, 2, .5: sxy 8, sxx 10,
     * syy 9.5, rho = 8 / sqrt(95). */
    const double x1[] = {1, 2, 3, 4, 5}, y1[] = {5, 6, 7, 8, 7};
    assert_true(fabs(clasp_spearman(x1, y1, 5) - 8 / sqrt(95)) < 1e-12);
    /* Ties in x: ranks 1, 2.5, 2.5, 4 against 1, 3, 2, 4: 4.5 / sqrt(4.5 * 5). */
    const double x2[] = {10, 20, 20, 30}, y2[] = {1, 3, 2, 4};
    assert_true(fabs(clasp_spearman(x2, y2, 4) - 4.5 / sqrt(22.5)) < 1e-12);
    /* Ties in both that cancel: exactly 0. */
    const double x3[] = {1, 1, 2, 2}, y3[] = {1, 2, 1, 2};
    assert_true(fabs(clasp_spearman(x3, y3, 4)) < 1e-15);
    /* Monotone either way, whatever the spacing. */
    const double x4[] = {0.1, 5, 7}, y4[] = {30, 2, 1}, y5[] = {1, 100, 101};
    assert_true(clasp_spearman(x4, y4, 3) == -1.0);
    assert_true(clasp_spearman(x4, y5, 3) == 1.0);
    /* Undefined: a constant vector, fewer than two pairs, a NaN. */
    const double c[] = {0.5, 0.5, 0.5, 0.5};
    assert_true(isnan(clasp_spearman(x2, c, 4)));
    assert_true(isnan(clasp_spearman(c, x2, 4)));
    assert_true(isnan(clasp_spearman(x1, y1, 1)));
    assert_true(isnan(clasp_spearman(x1, y1, 0)));
    const double xn[] = {1, NAN, 3};
    assert_true(isnan(clasp_spearman(xn, x4, 3)));
}

/* ---- unbounded attacks, L2 section, relations -------------------------------- */

static json_object *attack_by_label(json_object *jm, const char *label)
{
    json_object *ats = jget(jm, "attacks");
    for (size_t i = 0; i < json_object_array_length(ats); i++) {
        json_object *a = json_object_array_get_idx(ats, i);
        if (!strcmp(json_object_get_string(jget(a, "label")), label)) return a;
    }
    fail_msg("no attack %s", label);
    return NULL;
}

/* Four attacks on the 3-class fixture, as two tests report them: fgsm,
 * pgd, tpgd at T=0.5 and the unbounded cw, with seconds 1 (or 1, 2, 3, 4
 * with distinct_seconds). cw's successes: 9, 10 and 6 (clean minus robust),
 * distances grouped by class and ascending in dist. Class 0: 0.1..0.9
 * (median = mean = 0.5); class 1: 1..10 (5.5); class 2: 0.2, 0.2, 0.4,
 * 0.4, 3, 3 (median 0.4, mean 1.2). */
static const int64_t four_clean[K] = {9, 11, 6};
static const int64_t four_rob[4][K] = {{4, 6, 2}, {3, 5, 1}, {2, 5, 1}, {0, 1, 0}};

static void four_attacks(attack_data ad[4], clasp_attack_report ar[4], float dist[25],
                         int distinct_seconds)
{
    static const char *const labels[4] = {"fgsm", "pgd", "tpgd T=0.5", "cw"};
    static const char *const plugins[4] = {"fgsm", "pgd", "tpgd", "cw"};
    static const char *const params[4] = {"eps=0.1", "eps=0.1, alpha=0.01, steps=20",
                                          "eps=0.1, alpha=0.01, steps=20, T=0.5", "c=1, steps=100"};
    for (int i = 0; i < 9; i++) dist[i] = 0.1f * (float)(i + 1);
    for (int i = 0; i < 10; i++) dist[9 + i] = (float)(i + 1);
    const float d2[6] = {0.2f, 0.2f, 0.4f, 0.4f, 3.0f, 3.0f};
    memcpy(dist + 19, d2, sizeof d2);
    for (int j = 0; j < 4; j++) {
        fill_attack(&ad[j], four_clean, four_rob[j]);
        link_attack(&ar[j], &ad[j], labels[j], plugins[j], distinct_seconds ? 1.0 + j : 1.0);
        snprintf(ar[j].params, sizeof ar[j].params, "%s", params[j]);
    }
    ar[3].unbounded = 1;
    ar[3].l2_dist = dist;
}

static void unbounded_and_relations(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    attack_data ad[4];
    clasp_attack_report ar[4];
    float dist[25];
    four_attacks(ad, ar, dist, 0);
    const int64_t *clean = four_clean;
    const int64_t(*rob)[K] = four_rob;
    f->models[0].attacks = ar;
    f->models[0].n_attacks = 4;
    float norms[K] = {1, 1, 1};
    f->models[0].class_weight_norms = norms;
    const double budgets[2] = {0.45, 4};
    f->r.n_l2_eps = 2;
    f->r.l2_eps = budgets;
    tu_tmpdir(f->dir, sizeof f->dir);
    assert_ok(clasp_report_write(&f->r, f->dir));

    char path[512];
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *jm = json_object_array_get_idx(jget(root, "models"), 0);
    /* cw is in no pair: 3 L-infinity attacks give 3 pairs. */
    json_object *pairs = jget(jm, "attack_pairs");
    assert_int_equal(json_object_array_length(pairs), 3);
    for (int i = 0; i < 3; i++) {
        json_object *p = json_object_array_get_idx(pairs, (size_t)i);
        assert_string_not_equal(json_object_get_string(jget(p, "a")), "cw");
        assert_string_not_equal(json_object_get_string(jget(p, "b")), "cw");
    }
    json_object *cw = attack_by_label(jm, "cw");
    assert_true(json_object_get_boolean(jget(cw, "unbounded")));
    assert_true(json_object_is_type(jget(attack_by_label(jm, "pgd"), "l2"), json_type_null));
    json_object *rows = jget(jget(cw, "l2"), "per_class");
    const double med[K] = {0.5, 5.5, 0.4}, mean[K] = {0.5, 5.5, 1.2};
    /* Robust at L2 <= 0.45: robust + successes beyond 0.45; at <= 4 likewise. */
    const int64_t at[K][2] = {{5, 0}, {11, 7}, {2, 0}};
    for (int c = 0; c < K; c++) {
        json_object *row = json_object_array_get_idx(rows, (size_t)c);
        assert_int_equal(jint(row, "successes"), clean[c] - rob[3][c]);
        assert_true(fabs(jdbl(row, "median") - med[c]) < 1e-6);
        assert_true(fabs(jdbl(row, "mean") - mean[c]) < 1e-6);
        json_object *ab = jget(row, "at_budget");
        for (int e = 0; e < 2; e++) {
            json_object *x = json_object_array_get_idx(ab, (size_t)e);
            assert_true(jdbl(x, "l2_eps") == budgets[e]);
            assert_int_equal(jint(x, "robust_correct"), at[c][e]);
            assert_true(fabs(jdbl(x, "robust_acc") - (double)at[c][e] / (double)ad[3].count[c]) <
                        EPS);
        }
    }
    json_object *sum_at = jget(jget(jget(cw, "l2"), "summary"), "at_budget");
    assert_int_equal(jint(json_object_array_get_idx(sum_at, 0), "robust_correct"), 18);
    assert_int_equal(jint(json_object_array_get_idx(sum_at, 1), "robust_correct"), 7);

    /* Relations: the strongest L-infinity attack is tpgd (8/30), not cw
     * (1/30); constant norms give an undefined correlation (null). */
    json_object *rel = jget(jm, "relations");
    json_object *wn = jget(rel, "weight_norm_vs_robust");
    assert_string_equal(json_object_get_string(jget(wn, "attack")), "tpgd T=0.5");
    assert_true(json_object_is_type(jget(wn, "spearman"), json_type_null));
    /* fgsm (a) against pgd (b): robust under a .4, .5, .25 and gains .1,
     * 1/12, .125 rank in opposite orders: rho = -1. */
    json_object *rp = jget(rel, "attack_pairs");
    assert_int_equal(json_object_array_length(rp), 3);
    json_object *p0 = json_object_array_get_idx(rp, 0);
    assert_string_equal(json_object_get_string(jget(p0, "a")), "fgsm");
    assert_string_equal(json_object_get_string(jget(p0, "b")), "pgd");
    assert_true(fabs(jdbl(p0, "spearman_robust_a_vs_gain") + 1) < 1e-12);
    /* tpgd T=0.5 shares pgd's budget: per-class differences -0.1, 0, 0. */
    json_object *tp = jget(rel, "tpgd_vs_pgd");
    assert_int_equal(json_object_array_length(tp), 1);
    json_object *t0 = json_object_array_get_idx(tp, 0);
    assert_true(jdbl(t0, "T") == 0.5);
    json_object *diff = jget(t0, "robust_diff");
    const double want[K] = {-0.1, 0, 0};
    for (int c = 0; c < K; c++)
        assert_true(fabs(json_object_get_double(json_object_array_get_idx(diff, (size_t)c)) -
                         want[c]) < EPS);
    json_object_put(root);

    path_in(path, sizeof path, f->dir, "report.md");
    char *md = read_all(path);
    assert_non_null(strstr(md, "### Flow under the strongest attack (tpgd T=0.5)"));
    assert_null(strstr(md, "over cw"));
    assert_null(strstr(md, "cw over"));
    assert_non_null(strstr(md, "### Unbounded attacks: L2 distances"));
    assert_non_null(strstr(md, "| dog | 8 | 6 | 0.400 | 1.200 | 25.0 | 0.0 |"));
    assert_non_null(strstr(md, "| **all** | 30 | 25 |"));
    assert_non_null(strstr(md, "### Class-wise relations"));
    assert_non_null(
        strstr(md,
               "robust accuracy under the strongest L\u221e attack (tpgd T=0.5): \u03c1 = \u2014"));
    assert_non_null(strstr(md, "| fgsm | pgd | +10.0 | -1.00 |"));
    free(md);

    /* Norms 1, 3, 5 against robust .2, .417, .125 (tpgd): rho = -0.5 over
     * all classes; with class 2 left out of training it is left out of the
     * correlation too: rho = 1. */
    norms[0] = 1, norms[1] = 3, norms[2] = 5;
    for (int pass = 0; pass < 2; pass++) {
        const int excluded[K] = {0, 0, 1};
        f->r.excluded = pass ? excluded : NULL;
        assert_ok(clasp_report_write(&f->r, f->dir));
        path_in(path, sizeof path, f->dir, "report.json");
        root = json_object_from_file(path);
        assert_non_null(root);
        jm = json_object_array_get_idx(jget(root, "models"), 0);
        rel = jget(jm, "relations");
        double rho = jdbl(jget(rel, "weight_norm_vs_robust"), "spearman");
        assert_true(fabs(rho - (pass ? 1.0 : -0.5)) < 1e-12);
        json_object *left = jget(rel, "classes_left_out");
        assert_int_equal(json_object_array_length(left), pass);
        json_object_put(root);
        path_in(path, sizeof path, f->dir, "report.md");
        md = read_all(path);
        if (pass) assert_non_null(strstr(md, "are left out of every \u03c1 too: *dog*."));
        else assert_null(strstr(md, "left out of every"));
        free(md);
    }
    end_fixture(f);
}

/* The gradient-free check: square against the strongest gradient attack
 * with the same eps (pgd here, not fgsm at another eps). */
static void gradient_free_check(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    static const int64_t clean[K] = {9, 11, 6};
    static const int64_t rob[3][K] = {{1, 1, 1}, {3, 5, 1}, {2, 5, 1}};
    static const char *const plugins[3] = {"fgsm", "pgd", "square"};
    static const char *const params[3] = {"eps=0.3", "eps=0.1, steps=20",
                                          "eps=0.1, n_queries=100, p_init=0.8"};
    attack_data ad[3];
    clasp_attack_report ar[3];
    for (int j = 0; j < 3; j++) {
        fill_attack(&ad[j], clean, rob[j]);
        link_attack(&ar[j], &ad[j], plugins[j], plugins[j], 1.0);
        snprintf(ar[j].params, sizeof ar[j].params, "%s", params[j]);
    }
    f->models[1].attacks = ar;
    f->models[1].n_attacks = 3;
    tu_tmpdir(f->dir, sizeof f->dir);
    assert_ok(clasp_report_write(&f->r, f->dir));
    char path[512];
    path_in(path, sizeof path, f->dir, "report.json");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *models = jget(root, "models");
    assert_true(
        json_object_is_type(jget(json_object_array_get_idx(models, 0), "gradient_free_check"),
                            json_type_null));
    json_object *g = jget(json_object_array_get_idx(models, 1), "gradient_free_check");
    assert_string_equal(json_object_get_string(jget(g, "gradient_free")), "square");
    assert_string_equal(json_object_get_string(jget(g, "gradient")), "pgd");
    json_object *more = jget(g, "classes_gradient_free_finds_more");
    assert_int_equal(json_object_array_length(more), 1);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(more, 0)), 0);
    assert_true(fabs(jdbl(g, "overall_diff") + 1.0 / 30) < EPS);
    json_object_put(root);
    path_in(path, sizeof path, f->dir, "report.md");
    char *md = read_all(path);
    assert_non_null(strstr(md, "### Gradient-free check"));
    assert_non_null(strstr(md, "gradient masking"));
    assert_non_null(strstr(md, "*cat, fluffy* (-10.0 points)"));
    free(md);
    end_fixture(f);
}

/* ---- facts, without any formatting ---------------------------------------- */

/* The facts of a model on the golden fixture's counts, checked against
 * numbers worked out by hand: summaries, the stronger of each pair, the
 * strongest attack, the class-wise correlations, the T-PGD/PGD pair, the
 * gradient-free check and the L2 distances. Nothing is written. */
static void facts_by_hand(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    static const int64_t clean[K] = {9, 11, 6};
    static const int64_t rob[4][K] = {{4, 6, 2}, {3, 5, 1}, {2, 5, 1}, {0, 1, 0}};
    static const char *const plugins[4] = {"fgsm", "pgd", "tpgd", "cw"};
    static const char *const params[4] = {"eps=0.1", "eps=0.1, alpha=0.01, steps=20",
                                          "eps=0.1, alpha=0.01, steps=20, T=0.5", "c=1"};
    attack_data ad[4];
    clasp_attack_report ar[4];
    float dist[25];
    for (int i = 0; i < 9; i++) dist[i] = 0.1f * (float)(i + 1);
    for (int i = 0; i < 10; i++) dist[9 + i] = (float)(i + 1);
    for (int i = 0; i < 6; i++) dist[19 + i] = (float)(i + 1);
    for (int j = 0; j < 4; j++) {
        fill_attack(&ad[j], clean, rob[j]);
        link_attack(&ar[j], &ad[j], plugins[j], plugins[j], 1);
        snprintf(ar[j].params, sizeof ar[j].params, "%s", params[j]);
        ar[j].linf_eps = j < 3 ? 0.1 : 0;
    }
    ar[3].unbounded = 1;
    ar[3].l2_dist = dist;
    float norms[K] = {1, 3, 5};
    const double budgets[2] = {0.45, 4};
    clasp_model_report *m = &f->models[0];
    m->attacks = ar;
    m->n_attacks = 4;
    m->class_weight_norms = norms;
    f->r.n_l2_eps = 2;
    f->r.l2_eps = budgets;

    model_facts x;
    assert_ok(report_facts_compute(&f->r, 0, &x));
    assert_int_equal(x.n_attacks, 4);
    assert_true(fabs(x.sum[0].robust_acc - 12.0 / 30) < EPS);
    assert_true(fabs(x.sum[2].robust_acc - 8.0 / 30) < EPS);
    assert_int_equal(x.sum[1].worst, 2); /* 1/8 */
    assert_int_equal(x.sum[1].best, 1);  /* 5/12 */
    assert_int_equal(x.n_listed, 3);
    assert_int_equal(x.strongest_linf, 2);
    assert_int_equal(x.strongest, 2); /* cw (1/30) is unbounded: never the strongest */
    assert_true(x.clean_agrees);
    assert_int_equal(x.n_pairs, 3); /* cw takes no part */
    assert_int_equal(x.pairs[0].a, 0);
    assert_int_equal(x.pairs[0].b, 1);
    assert_int_equal(x.pairs[2].a, 1);
    assert_int_equal(x.pairs[2].b, 2);
    assert_false(x.pairs[2].tie);
    assert_true(fabs(x.pairs[2].overall_gain - 1.0 / 30) < EPS);
    /* fgsm's robust {.4, .5, .25} against pgd's gain {.1, 1/12, .125}: ranks
     * (2, 3, 1) and (2, 1, 3), a perfect inversion. */
    assert_true(fabs(x.pairs[0].rho + 1) < EPS);
    /* Norms (1, 3, 5) against robust under tpgd {.2, 5/12, .125}. */
    assert_true(fabs(x.weight_rho + 0.5) < EPS);
    assert_int_equal(x.n_tpgd, 1);
    assert_int_equal(x.tpgd[0].pgd, 1);
    assert_int_equal(x.tpgd[0].tpgd, 2);
    assert_true(fabs(x.tpgd[0].t - 0.5) < EPS);
    assert_int_equal(x.gf, -1); /* no gradient-free attack */
    assert_int_equal(x.n_budgets, 1);
    assert_null(x.l2[0]);
    const l2_stats *l2 = x.l2[3];
    assert_non_null(l2);
    assert_int_equal(l2[0].n, 9);
    assert_true(fabs(l2[0].median - 0.5) < 1e-6);
    assert_int_equal(l2[0].robust_at[0], 5); /* 0.5 .. 0.9 lie beyond 0.45 */
    assert_int_equal(l2[0].robust_at[1], 0);
    assert_int_equal(l2[1].robust_at[0], 11); /* robust 1 + all ten beyond */
    assert_int_equal(l2[1].robust_at[1], 7);  /* robust 1 + 5 .. 10 */
    assert_true(fabs(l2[1].median - 5.5) < 1e-6);
    assert_int_equal(l2[K].n, 25);
    assert_int_equal(l2[K].count, 30);
    report_facts_free(&x);

    /* A gradient-free attack against the strongest gradient one at its eps. */
    static const int64_t rob1[3][K] = {{1, 1, 1}, {3, 5, 1}, {2, 5, 1}};
    static const char *const plugins1[3] = {"fgsm", "pgd", "square"};
    static const char *const params1[3] = {"eps=0.3", "eps=0.1, steps=20", "eps=0.1"};
    attack_data ad1[3];
    clasp_attack_report ar1[3];
    for (int j = 0; j < 3; j++) {
        fill_attack(&ad1[j], clean, rob1[j]);
        link_attack(&ar1[j], &ad1[j], plugins1[j], plugins1[j], 1);
        snprintf(ar1[j].params, sizeof ar1[j].params, "%s", params1[j]);
    }
    f->models[1].attacks = ar1;
    f->models[1].n_attacks = 3;
    assert_ok(report_facts_compute(&f->r, 1, &x));
    assert_int_equal(x.gf, 2);
    assert_int_equal(x.grad, 1); /* fgsm has another eps */
    assert_int_equal(x.n_gf_more, 1);
    assert_int_equal(x.strongest, 0);
    report_facts_free(&x);

    /* With traits recorded, names no longer matter: a gradient-free attack
     * of any name takes part, and "square" declaring otherwise does not. */
    for (int j = 0; j < 3; j++) {
        ar1[j].traits_known = 1;
        snprintf(ar1[j].budget, sizeof ar1[j].budget, "eps");
    }
    snprintf(ar1[2].plugin, sizeof ar1[2].plugin, "blackbox");
    ar1[2].gradient_free = 1;
    assert_ok(report_facts_compute(&f->r, 1, &x));
    assert_int_equal(x.gf, 2);
    report_facts_free(&x);
    snprintf(ar1[2].plugin, sizeof ar1[2].plugin, "square");
    ar1[2].gradient_free = 0;
    assert_ok(report_facts_compute(&f->r, 1, &x));
    assert_int_equal(x.gf, -1);
    report_facts_free(&x);
    /* A temperature trait relates an attack of any name to the one it
     * equals at 1. */
    for (int j = 0; j < 4; j++) ar[j].traits_known = 1;
    snprintf(ar[2].plugin, sizeof ar[2].plugin, "softpgd");
    snprintf(ar[2].temperature, sizeof ar[2].temperature, "T");
    snprintf(ar[2].equals_at_one, sizeof ar[2].equals_at_one, "pgd");
    assert_ok(report_facts_compute(&f->r, 0, &x));
    assert_int_equal(x.n_tpgd, 1);
    assert_true(fabs(x.tpgd[0].t - 0.5) < EPS);
    report_facts_free(&x);
    ar[2].equals_at_one[0] = '\0';
    assert_ok(report_facts_compute(&f->r, 0, &x));
    assert_int_equal(x.n_tpgd, 0);
    report_facts_free(&x);
    free(f); /* nothing was written */
}

/* ---- golden files ------------------------------------------------------ */

/* Compares one written file with its golden copy in CLASP_REPORT_GOLDEN
 * (tests/fixtures/report_golden); with CLASP_UPDATE_GOLDEN set, writes the
 * golden copy instead. The synthetic report has fixed timings, so nothing
 * needs masking. */
static void check_golden(const char *dir, const char *name, const char *golden_name)
{
    const char *gdir = getenv("CLASP_REPORT_GOLDEN");
    if (!gdir) fail_msg("CLASP_REPORT_GOLDEN is not set");
    char path[512], gpath[512];
    path_in(path, sizeof path, dir, name);
    path_in(gpath, sizeof gpath, gdir, golden_name);
    char *got = read_all(path);
    if (getenv("CLASP_UPDATE_GOLDEN")) {
        FILE *fp = fopen(gpath, "wb");
        if (!fp) fail_msg("cannot write %s", gpath);
        fputs(got, fp);
        fclose(fp);
    } else {
        char *want = read_all(gpath);
        if (strcmp(got, want) != 0) {
            size_t i = 0;
            while (got[i] && got[i] == want[i]) i++;
            fail_msg("%s differs from %s at byte %zu", path, gpath, i);
        }
        free(want);
    }
    free(got);
}

/* Fills the attacks' traits from their built-in plugins, as the runner
 * does when they run. */
static void traits_from_plugins(clasp_attack_report *a, int n)
{
    clasp_registry *reg;
    assert_ok(clasp_registry_open(&reg));
    for (int j = 0; j < n; j++) {
        const clasp_plugin_desc *d;
        assert_ok(clasp_registry_find(reg, a[j].plugin, CLASP_PLUGIN_ATTACK, &d));
        clasp_attack_traits t;
        clasp_attack_traits_of(d, &t);
        a[j].traits_known = 1;
        a[j].gradient_free = t.gradient_free;
        snprintf(a[j].budget, sizeof a[j].budget, "%s", t.budget ? t.budget : "");
        snprintf(a[j].temperature, sizeof a[j].temperature, "%s",
                 t.temperature ? t.temperature : "");
        snprintf(a[j].equals_at_one, sizeof a[j].equals_at_one, "%s",
                 t.equals_at_one ? t.equals_at_one : "");
    }
    clasp_registry_free(reg);
}

/* Every file the report writes for a synthetic experiment that reaches
 * every section (epochs, calibration, L-infinity pairs, a T-PGD/PGD pair,
 * an unbounded attack with L2 budgets, weight norms, a gradient-free check,
 * a class left out of training) is byte-identical to its golden copy:
 * the report's refactorings must not change what it writes. */
static void golden_report(void **state)
{
    (void)state;
    fixture *f = new_fixture();
    attack_data ad[4];
    clasp_attack_report ar[4];
    float dist[25];
    four_attacks(ad, ar, dist, 1);
    const int64_t *clean = four_clean;
    f->models[0].attacks = ar;
    f->models[0].n_attacks = 4;
    float norms[K] = {1, 3, 5};
    f->models[0].class_weight_norms = norms;
    const double budgets[2] = {0.45, 4};
    f->r.n_l2_eps = 2;
    f->r.l2_eps = budgets;

    static const int64_t rob1[3][K] = {{1, 1, 1}, {3, 5, 1}, {2, 5, 1}};
    static const char *const plugins1[3] = {"fgsm", "pgd", "square"};
    static const char *const params1[3] = {"eps=0.3", "eps=0.1, steps=20",
                                           "eps=0.1, n_queries=100, p_init=0.8"};
    attack_data ad1[3];
    clasp_attack_report ar1[3];
    for (int j = 0; j < 3; j++) {
        fill_attack(&ad1[j], clean, rob1[j]);
        link_attack(&ar1[j], &ad1[j], plugins1[j], plugins1[j], 2.0 + j);
        snprintf(ar1[j].params, sizeof ar1[j].params, "%s", params1[j]);
    }
    f->models[1].attacks = ar1;
    f->models[1].n_attacks = 3;
    const int excluded[K] = {0, 0, 1};
    /* Passes 0 and 1 without traits (a report from an old state file: the
     * built-in names decide), 2 and 3 with the traits the built-in plugins
     * declare: the same files either way. */
    for (int pass = 0; pass < 4; pass++) {
        if (pass == 2) {
            traits_from_plugins(ar, 4);
            traits_from_plugins(ar1, 3);
            assert_true(ar1[2].gradient_free);
            assert_string_equal(ar[2].equals_at_one, "pgd");
        }
        f->r.excluded = pass % 2 ? excluded : NULL;
        tu_tmpdir(f->dir, sizeof f->dir);
        assert_ok(clasp_report_write(&f->r, f->dir));
        static const char *const files[] = {"report.json", "report.md", "per_class.csv"};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            char gname[64];
            snprintf(gname, sizeof gname, "%s%s", pass % 2 ? "excluded-" : "", files[i]);
            check_golden(f->dir, files[i], gname);
        }
        char charts[512];
        path_in(charts, sizeof charts, f->dir, "charts");
        DIR *d = opendir(charts);
        assert_non_null(d);
        int n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char rel[300], gname[300];
            snprintf(rel, sizeof rel, "charts/%s", e->d_name);
            snprintf(gname, sizeof gname, "%s%s", pass % 2 ? "excluded-" : "", e->d_name);
            if (pass % 2 == 0) check_golden(f->dir, rel, gname);
            n++;
        }
        closedir(d);
        assert_true(n > 0);
        if (pass == 3) end_fixture(f);
        else remove_report(f->dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_report_is_consistent),
        cmocka_unit_test(missing_folder_is_named),
        cmocka_unit_test(slug_clashes_get_distinct_charts),
        cmocka_unit_test(slugs_and_escaping),
        cmocka_unit_test(hundred_classes),
        cmocka_unit_test(file_groups_aggregate),
        cmocka_unit_test(worst_case_is_the_per_example_and),
        cmocka_unit_test(spearman_known_values),
        cmocka_unit_test(class_counts_helpers),
        cmocka_unit_test(unbounded_and_relations),
        cmocka_unit_test(gradient_free_check),
        cmocka_unit_test(facts_by_hand),
        cmocka_unit_test(golden_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
