/* Reports of data sets with many classes: a synthetic 1000-class result
 * (ImageNet's size) and a 100-class one (CIFAR-100, whose superclasses
 * group it). report.md must stay a page a person reads (distribution,
 * worst and best classes, largest gains, frequent flows) while
 * per_class.csv and report.json keep every class, and no chart may draw a
 * 1000 x 1000 heat map. The 100-class report is also compared byte for byte
 * with its golden copy (tests/fixtures/report_golden_100; regenerate with
 * CLASP_UPDATE_GOLDEN=1 only for a deliberate change). */
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clasp/data.h"
#include "clasp/groups.h"
#include "clasp/report.h"
#include "testutil.h"

#define NA 3 /* fgsm, pgd, square */
#define MAXK 1000

typedef struct large {
    clasp_report r;
    clasp_model_report m;
    clasp_attack_report a[NA];
    char (*names)[32];
    int64_t *count, *clean, *robust[NA], *success[NA], *flow[NA];
    float *norms;
    char dir[256];
} large;

static uint32_t next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* k classes of 20 to 59 examples; attack j leaves fewer robust than the
 * one before (square a little more than pgd on some classes); the flipped
 * examples go mostly to one "confusable" class and the rest to the next. */
static large *make_large(int k, const char *dataset)
{
    large *L = calloc(1, sizeof *L);
    assert_non_null(L);
    uint32_t seed = 7;
    L->names = calloc((size_t)k, sizeof *L->names);
    L->count = calloc((size_t)k, sizeof(int64_t));
    L->clean = calloc((size_t)k, sizeof(int64_t));
    L->norms = calloc((size_t)k, sizeof(float));
    for (int j = 0; j < NA; j++) {
        L->robust[j] = calloc((size_t)k, sizeof(int64_t));
        L->success[j] = calloc((size_t)k, sizeof(int64_t));
        L->flow[j] = calloc((size_t)k * (size_t)k, sizeof(int64_t));
        assert_non_null(L->flow[j]);
    }
    for (int c = 0; c < k; c++) {
        if (k == 100)
            snprintf(L->names[c], sizeof L->names[c], "%s", clasp_cifar100_fine_classes[c]);
        else snprintf(L->names[c], sizeof L->names[c], "n%08d synset %d", 1440764 + c * 37, c);
        L->count[c] = 20 + next(&seed) % 40;
        L->clean[c] = L->count[c] - next(&seed) % 8;
        int64_t r0 = (int64_t)(next(&seed) % (uint32_t)(L->clean[c] + 1));
        if (c % 9 == 0) r0 = 0; /* classes no example of which survives */
        int64_t r1 = r0 - (r0 > 0 ? (int64_t)(next(&seed) % (uint32_t)(r0 + 1)) : 0);
        int64_t r2 = c % 5 == 0 && r1 > 0 ? r1 - 1 : r1 + (r1 < r0);
        int64_t rob[NA] = {r0, r1, r2};
        L->norms[c] = 1.0f + (float)r1 / (float)L->count[c] + 0.01f * (float)(next(&seed) % 10);
        for (int j = 0; j < NA; j++) {
            L->robust[j][c] = rob[j];
            L->success[j][c] = L->clean[c] - rob[j];
            int64_t wrong = L->count[c] - rob[j], near = (wrong * 3) / 4;
            int to = (c * 7 + 3) % k;
            if (to == c) to = (c + 1) % k;
            int to2 = (to + 1) % k == c ? (to + 2) % k : (to + 1) % k;
            L->flow[j][(size_t)c * k + c] = rob[j];
            L->flow[j][(size_t)c * k + to] += near;
            L->flow[j][(size_t)c * k + to2] += wrong - near;
        }
    }
    static const char *const plugins[NA] = {"fgsm", "pgd", "square"};
    static const char *const labels[NA] = {"fgsm eps=0.004", "pgd eps=0.004 steps=10",
                                           "square eps=0.004"};
    for (int j = 0; j < NA; j++) {
        clasp_attack_report *a = &L->a[j];
        snprintf(a->label, sizeof a->label, "%s", labels[j]);
        snprintf(a->plugin, sizeof a->plugin, "%s", plugins[j]);
        snprintf(a->params, sizeof a->params, "eps=0.004");
        a->per_class.num_classes = k;
        a->per_class.count = L->count;
        a->per_class.clean_correct = L->clean;
        a->per_class.robust_correct = L->robust[j];
        a->success = L->success[j];
        a->flow = L->flow[j];
        a->seconds = 10 + j;
        a->linf_eps = 0.004;
        a->traits_known = 1;
        a->gradient_free = j == 2;
        snprintf(a->budget, sizeof a->budget, "eps");
    }
    snprintf(L->m.name, sizeof L->m.name, "Salman2020Do_R50");
    snprintf(L->m.source, sizeof L->m.source, "models/resnet50.pt");
    L->m.n_attacks = NA;
    L->m.attacks = L->a;
    L->m.class_weight_norms = L->norms;
    L->m.eval_seconds = 33;
    clasp_report *r = &L->r;
    snprintf(r->experiment, sizeof r->experiment, "large-%d", k);
    snprintf(r->clasp_version, sizeof r->clasp_version, "0.1.0");
    snprintf(r->device, sizeof r->device, "Test device / CPU");
    snprintf(r->dataset, sizeof r->dataset, "%s", dataset);
    snprintf(r->started, sizeof r->started, "2024-01-02T03:04:05Z");
    r->seed = 1;
    r->test_size = (size_t)0;
    for (int c = 0; c < k; c++) r->test_size += (size_t)L->count[c];
    r->num_classes = k;
    r->class_names = L->names;
    r->n_models = 1;
    r->models = &L->m;
    r->config_yaml = "";
    r->config_path = "large.yaml";
    r->wall_seconds = 60;
    return L;
}

static void free_large(large *L)
{
    for (int j = 0; j < NA; j++) free(L->robust[j]), free(L->success[j]), free(L->flow[j]);
    free(L->names), free(L->count), free(L->clean), free(L->norms);
    free(L);
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("report.json lacks '%s'", key);
    return v;
}

static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

typedef struct ranked {
    double v;
    int c;
} ranked;

static int ranked_cmp(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return a->c - b->c;
}

/* The 1000-class report, checked against numbers worked out here. */
static void thousand_classes(void **state)
{
    (void)state;
    enum { H = 1000 };
    large *L = make_large(H, "imagenet");
    tu_tmpdir(L->dir, sizeof L->dir);
    assert_ok(clasp_report_write(&L->r, L->dir));
    char path[512];

    snprintf(path, sizeof path, "%s/report.md", L->dir);
    size_t md_len;
    char *md = tu_read_all(path, &md_len);
    assert_true(md_len < 40 * 1024);
    assert_non_null(strstr(md, "### Per-class robust accuracy: distribution"));
    assert_non_null(strstr(md, "### The 15 worst classes"));
    assert_non_null(strstr(md, "### The 15 best classes"));
    assert_non_null(strstr(md, "### Largest per-class gains of stronger attacks"));
    assert_non_null(strstr(md, "### Most frequent flows under the strongest attack"));
    assert_non_null(strstr(md, "### Gradient-free check"));
    assert_non_null(strstr(md, "### Class-wise relations"));
    assert_null(strstr(md, "### Per-class accuracy"));
    assert_null(strstr(md, "### Gains of stronger attacks"));
    assert_null(strstr(md, "### By superclass")); /* groups are CIFAR-100's only */
    assert_null(strstr(md, "flow.svg"));

    /* The worst classes under the strongest attack (pgd here), by hand. */
    static ranked rk[H];
    int n = 0, zero = 0;
    for (int c = 0; c < H; c++) {
        rk[n++] = (ranked){(double)L->robust[1][c] / (double)L->count[c], c};
        zero += L->robust[1][c] == 0;
    }
    qsort(rk, (size_t)n, sizeof *rk, ranked_cmp);
    const char *worst_table = strstr(md, "### The 15 worst classes");
    const char *best_table = strstr(md, "### The 15 best classes");
    for (int i = 0; i < 15; i++) {
        const char *w = strstr(worst_table, L->names[rk[i].c]);
        assert_true(w && w < best_table);
        assert_non_null(strstr(best_table, L->names[rk[n - 1 - i].c]));
    }

    snprintf(path, sizeof path, "%s/report.json", L->dir);
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *m = json_object_array_get_idx(get(root, "models"), 0);
    json_object *rank = get(m, "class_ranking");
    assert_string_equal(json_object_get_string(get(rank, "attack")), L->a[1].label);
    json_object *worst = get(rank, "worst"), *best = get(rank, "best");
    assert_int_equal(json_object_array_length(worst), 15);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(json_object_get_int(get(json_object_array_get_idx(worst, i), "index")),
                         rk[i].c);
        assert_int_equal(json_object_get_int(get(json_object_array_get_idx(best, i), "index")),
                         rk[n - 1 - i].c);
    }
    /* Quantiles: the median of 1000 values is the mean of the 500th and 501st. */
    json_object *dist = json_object_array_get_idx(get(m, "class_distribution"), 1);
    assert_int_equal(json_object_get_int(get(dist, "classes")), H);
    assert_int_equal(json_object_get_int(get(dist, "classes_at_zero")), zero);
    json_object *qs = get(dist, "quantiles");
    assert_int_equal(json_object_array_length(qs), 7);
    double median = 0.5 * (rk[499].v + rk[500].v);
    assert_true(fabs(json_object_get_double(get(json_object_array_get_idx(qs, 3), "robust_acc")) -
                     median) < 1e-9);
    assert_true(fabs(json_object_get_double(get(json_object_array_get_idx(qs, 0), "robust_acc")) -
                     rk[0].v) < 1e-9);
    assert_true(fabs(json_object_get_double(get(json_object_array_get_idx(qs, 6), "robust_acc")) -
                     rk[n - 1].v) < 1e-9);
    /* Every class stays in report.json, flows included. */
    json_object *ja = json_object_array_get_idx(get(m, "attacks"), 1);
    assert_int_equal(json_object_array_length(get(ja, "per_class")), H);
    /* Past 100 classes the flow is sparse: the nonzero cells, which hold
     * every example of the attack. */
    assert_true(json_object_is_type(get(ja, "flow"), json_type_null));
    json_object *nz = get(ja, "flow_nonzero");
    int64_t cells = 0;
    for (size_t i = 0; i < json_object_array_length(nz); i++) {
        json_object *cell = json_object_array_get_idx(nz, i);
        assert_int_equal(json_object_array_length(cell), 3);
        assert_true(json_object_get_int64(json_object_array_get_idx(cell, 2)) > 0);
        cells += json_object_get_int64(json_object_array_get_idx(cell, 2));
    }
    int64_t examples = 0;
    for (int c = 0; c < H; c++) examples += L->count[c];
    assert_int_equal(cells, examples);
    assert_true(json_object_is_type(get(get(ja, "charts"), "flow"), json_type_null));
    /* The most frequent flow: the class with the most examples flipped. */
    json_object *flows = get(get(m, "top_flows"), "flows");
    assert_int_equal(json_object_array_length(flows), 15);
    int64_t top = 0;
    for (int c = 0; c < H; c++) {
        int64_t wrong = L->count[c] - L->robust[1][c], near = wrong * 3 / 4;
        if (near > top) top = near;
    }
    assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(flows, 0), "count")), top);
    /* The study's correlation over 1000 classes: norms against pgd's robust. */
    static double x[H], y[H];
    for (int c = 0; c < H; c++)
        x[c] = L->norms[c], y[c] = (double)L->robust[1][c] / (double)L->count[c];
    double rho = clasp_spearman(x, y, H);
    assert_true(isfinite(rho) && rho > 0.5);
    json_object *wn = get(get(m, "relations"), "weight_norm_vs_robust");
    assert_true(fabs(json_object_get_double(get(wn, "spearman")) - rho) < 1e-9);
    json_object_put(root);

    /* per_class.csv: every class of every attack. */
    snprintf(path, sizeof path, "%s/per_class.csv", L->dir);
    char *csv = tu_read_all(path, NULL);
    int lines = 0;
    for (const char *p = csv; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + NA * H);
    free(csv);

    /* The charts: the curves and the histogram, no heat map, nothing large. */
    snprintf(path, sizeof path, "%s/charts", L->dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    int charts = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[800];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_true(st.st_size < 200 * 1024);
        assert_null(strstr(e->d_name, "-flow.svg"));
        assert_null(strstr(e->d_name, "-classes.svg"));
        charts++;
    }
    closedir(d);
    assert_int_equal(charts, 2);
    free(md);
    remove_tree(L->dir);
    free_large(L);
}

/* Compares a written file with its golden copy (or writes the copy when
 * CLASP_UPDATE_GOLDEN is set). */
static void check_golden(const char *dir, const char *name, const char *golden)
{
    const char *gdir = getenv("CLASP_REPORT_GOLDEN_100");
    if (!gdir) fail_msg("CLASP_REPORT_GOLDEN_100 is not set");
    char path[512], gpath[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(gpath, sizeof gpath, "%s/%s", gdir, golden);
    char *got = tu_read_all(path, NULL);
    if (getenv("CLASP_UPDATE_GOLDEN")) {
        FILE *fp = fopen(gpath, "wb");
        if (!fp) fail_msg("cannot write %s", gpath);
        fputs(got, fp);
        fclose(fp);
    } else {
        char *want = tu_read_all(gpath, NULL);
        if (strcmp(got, want) != 0) {
            size_t i = 0;
            while (got[i] && got[i] == want[i]) i++;
            fail_msg("%s differs from %s at byte %zu", path, gpath, i);
        }
        free(want);
    }
    free(got);
}

/* A 100-class CIFAR-100 report: its superclass table aggregates the
 * classes, and report.md, per_class.csv and the two charts are
 * byte-identical to their golden copies. */
static void hundred_classes_golden(void **state)
{
    (void)state;
    large *L = make_large(100, "cifar100");
    tu_tmpdir(L->dir, sizeof L->dir);
    assert_ok(clasp_report_write(&L->r, L->dir));
    char path[512];
    snprintf(path, sizeof path, "%s/report.md", L->dir);
    char *md = tu_read_all(path, NULL);
    assert_non_null(strstr(md, "### By superclass"));
    assert_non_null(strstr(md, "| aquatic mammals | beaver, dolphin, otter, seal, whale |"));
    assert_non_null(strstr(md, "flow.svg")); /* heat maps up to 100 classes */
    free(md);
    snprintf(path, sizeof path, "%s/report.json", L->dir);
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *m = json_object_array_get_idx(get(root, "models"), 0);
    json_object *groups = get(get(m, "class_groups"), "groups");
    assert_int_equal(json_object_array_length(groups), 20);
    int64_t total = 0;
    for (int g = 0; g < 20; g++) {
        json_object *x = json_object_array_get_idx(groups, g);
        assert_int_equal(json_object_array_length(get(x, "classes")), 5);
        total += json_object_get_int64(get(x, "count"));
    }
    assert_int_equal(total, (int64_t)L->r.test_size);
    json_object_put(root);
    static const char *const files[] = {"report.md", "per_class.csv",
                                        "charts/salman2020do-r50-curve.svg",
                                        "charts/salman2020do-r50-histogram.svg"};
    static const char *const golden[] = {"report.md", "per_class.csv", "curve.svg",
                                         "histogram.svg"};
    for (int i = 0; i < 4; i++) check_golden(L->dir, files[i], golden[i]);
    remove_tree(L->dir);
    free_large(L);
}

/* A mapping file replaces CIFAR-100's superclasses: report.md has the
 * file's groups instead of the superclass table, and report.json's groups
 * (two of the file's, then the unlisted classes) hold every example. */
static void file_groups_replace_superclasses(void **state)
{
    (void)state;
    large *L = make_large(100, "cifar100");
    tu_tmpdir(L->dir, sizeof L->dir);
    static const char text[] = "apple,fruit\npear,fruit\n99\tcrawling\nsnail\tcrawling\n";
    clasp_class_groups g;
    assert_ok(clasp_class_groups_parse(text, sizeof text - 1, "g.txt", &g));
    assert_ok(clasp_class_groups_resolve(&g, "cifar100", 100,
                                         (const char(*)[CLASP_CLASS_NAME_MAX])L->names));
    L->r.groups = &g;
    assert_ok(clasp_report_write(&L->r, L->dir));
    char path[512];
    snprintf(path, sizeof path, "%s/report.md", L->dir);
    char *md = tu_read_all(path, NULL);
    assert_null(strstr(md, "### By superclass"));
    assert_non_null(strstr(md, "### By class group\n\n3 groups from `g.txt`"));
    assert_non_null(strstr(md, "The 96 classes the file does not list form the last group"));
    assert_non_null(strstr(md, "| fruit | apple, pear |"));
    assert_non_null(strstr(md, "| crawling | snail, worm |"));
    free(md);
    snprintf(path, sizeof path, "%s/report.json", L->dir);
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *cg = get(json_object_array_get_idx(get(root, "models"), 0), "class_groups");
    assert_string_equal(json_object_get_string(get(cg, "kind")), "file");
    json_object *groups = get(cg, "groups");
    assert_int_equal(json_object_array_length(groups), 3);
    int64_t total = 0;
    for (int i = 0; i < 3; i++)
        total += json_object_get_int64(get(json_object_array_get_idx(groups, i), "count"));
    assert_int_equal(total, (int64_t)L->r.test_size);
    assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(groups, 0), "count")),
                     L->count[0] + L->count[57]);
    json_object_put(root);
    clasp_class_groups_free(&g);
    remove_tree(L->dir);
    free_large(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thousand_classes),
        cmocka_unit_test(hundred_classes_golden),
        cmocka_unit_test(file_groups_replace_superclasses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
