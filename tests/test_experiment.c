/* End to end: a tiny experiment on synthetic IDX data (written here), with
 * standard training, PGD-AT, reweight (wrapping PGD-AT) and calibrate
 * (wrapping PGD-AT), evaluated with FGSM and PGD. Checks the report files
 * and their numbers, that interrupted-and-resumed runs give the same
 * report.json as an uninterrupted one, and that failures leave no report. */
#include "testutil.h"

#include <json-c/json.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clasp/data.h"
#include "clasp/eval.h"
#include "clasp/experiment.h"
#include "clasp/safetensors.h"

#define SIDE 12
#define N_TRAIN 400
#define N_TEST 80

static clasp_registry *reg;
static char dir[256], yaml_path[300], out[300];

static const char *experiment_yaml(uint64_t seed)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "experiment: {name: tiny, seed: %llu}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train:\n"
             "  epochs: 3\n"
             "  batch: 32\n"
             "  optimiser: {lr: 0.1}\n"
             "  val_eval_size: 60\n"
             "  models:\n"
             "    - name: standard\n"
             "    - defense: {name: pgd-at, attack: {name: pgd, params: &inner {eps: 0.15, steps: "
             "2, alpha: 0}}}\n"
             "    - name: reweight\n"
             "      defense: {name: reweight, params: {strength: 3}, inner: {name: pgd-at, attack: "
             "{name: pgd, params: *inner}}}\n"
             "    - name: calibrated\n"
             "      defense: {name: calibrate, attack: {name: pgd, params: *inner}, inner: {name: "
             "pgd-at}}\n"
             "evaluate:\n"
             "  test_size: %d\n"
             "  batch: 40\n"
             "  l2_eps: [0.5, 2]\n"
             "  attacks:\n"
             "    - {name: fgsm, params: {eps: 0.15}}\n"
             "    - {name: pgd, params: {eps: 0.15, steps: 3, alpha: 0}}\n"
             "    - {name: cw, params: {binary_search_steps: 1, max_iterations: 5}}\n"
             "output: {dir: '%s'}\n",
             (unsigned long long)seed, dir, N_TEST, out);
    return buf;
}

static void write_yaml(uint64_t seed)
{
    const char *y = experiment_yaml(seed);
    tu_write_file(yaml_path, y, strlen(y));
}

static void rm_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int exists(const char *folder, const char *name)
{
    char p[700];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", folder, name);
    return stat(p, &sb) == 0;
}

static void quiet_log(void *user, const char *line)
{
    (void)user;
    if (getenv("CLASP_TEST_VERBOSE")) fprintf(stderr, "%s\n", line);
}

/* Interrupts a run as a user's Ctrl-C does, through the stop flag the
 * runner reads between batches, after `batches` training batches or
 * `attacks` attack evaluations of this run (0: never). The runner's hooks
 * say when those happen: a progress update with text is a training batch
 * (evaluations report progress without text), and a log line with
 * "%  robust " is an attack's result (epoch lines have ", robust"). */
typedef struct stopper {
    long batches, attacks;
    long seen_batches, seen_attacks;
    volatile sig_atomic_t flag;
} stopper;

static void stopper_log(void *user, const char *line)
{
    stopper *s = user;
    if (strstr(line, "%  robust ") && s->attacks && ++s->seen_attacks >= s->attacks) s->flag = 1;
    quiet_log(NULL, line);
}

static void stopper_update(void *user, size_t done, const char *extra)
{
    (void)done;
    stopper *s = user;
    if (extra && s->batches && ++s->seen_batches >= s->batches) s->flag = 1;
}

/* One `clasp run` through the library, interrupted after stop_batches
 * training batches or stop_attacks attack evaluations (0 = never). */
static clasp_status run(int resume, long stop_batches, long stop_attacks)
{
    stopper stop = {.batches = stop_batches, .attacks = stop_attacks};
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, yaml_path, &p));
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.resume = resume;
    opt.stop = &stop.flag;
    opt.hooks.user = &stop;
    opt.hooks.log = stopper_log;
    opt.hooks.progress_update = stopper_update;
    clasp_status st = clasp_experiment_run(p, reg, &opt);
    if (st != CLASP_OK && st != CLASP_ERR_INTERRUPTED && getenv("CLASP_TEST_VERBOSE"))
        fprintf(stderr, "run: %s\n", clasp_last_error());
    clasp_plan_free(p);
    return st;
}

static json_object *read_report(void)
{
    char p[400];
    snprintf(p, sizeof p, "%s/report.json", out);
    json_object *o = json_object_from_file(p);
    if (!o) fail_msg("cannot read %s", p);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("report.json lacks '%s'", key);
    return v;
}

static int setup(void **state)
{
    (void)state;
    tu_tmpdir(dir, sizeof dir);
    snprintf(yaml_path, sizeof yaml_path, "%s/tiny.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    tu_write_bars_idx(dir, "train", N_TRAIN, SIDE, 1);
    tu_write_bars_idx(dir, "t10k", 120, SIDE, 2);
    write_yaml(5);
    return clasp_registry_open(&reg) == CLASP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    clasp_registry_free(reg);
    rm_tree(dir);
    return 0;
}

static json_object *reference; /* report.json of the uninterrupted run */

static void test_full_run(void **state)
{
    (void)state;
    rm_tree(out);
    assert_ok(run(0, 0, 0));
    const char *files[] = {"report.json",          "report.md",
                           "per_class.csv",        "charts",
                           "standard.safetensors", "pgd-at.safetensors",
                           "reweight.safetensors", "calibrated.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!exists(out, files[i])) fail_msg("%s/%s is missing", out, files[i]);
    assert_false(exists(out, "state.safetensors"));

    json_object *r = read_report();
    json_object *models = get(r, "models");
    assert_int_equal(json_object_array_length(models), 4);
    int K = json_object_get_int(get(get(r, "dataset"), "num_classes"));
    assert_int_equal(K, 10);
    assert_int_equal(json_object_get_int(get(get(r, "dataset"), "test_size")), N_TEST);
    assert_int_equal(json_object_get_int(get(get(r, "dataset"), "val_size")), 100);
    assert_non_null(strstr(json_object_get_string(get(r, "config")), "val_eval_size: 60"));
    for (size_t m = 0; m < 4; m++) {
        json_object *mo = json_object_array_get_idx(models, m);
        json_object *epochs = get(mo, "epochs"), *attacks = get(mo, "attacks");
        assert_int_equal(json_object_array_length(epochs), 3);
        for (size_t e = 0; e < 3; e++) {
            json_object *v = get(json_object_array_get_idx(epochs, e), "validation");
            json_object *cnt = get(v, "count");
            int64_t tot = 0;
            for (int k = 0; k < K; k++)
                tot += json_object_get_int64(json_object_array_get_idx(cnt, (size_t)k));
            assert_int_equal(tot, 60);
            /* Robust validation exactly for the models with an attack. */
            assert_int_equal(json_object_get_type(get(v, "robust_correct")) == json_type_null,
                             m == 0);
        }
        /* fgsm, pgd, cw, and the report's worst case over fgsm and pgd
         * (same eps; cw is unbounded). */
        assert_int_equal(json_object_array_length(attacks), 4);
        json_object *worst = json_object_array_get_idx(attacks, 3);
        assert_true(json_object_get_boolean(get(worst, "derived")));
        assert_int_equal(json_object_array_length(get(worst, "ensemble")), 2);
        /* cw is unbounded: L2 distances for each of its successes, robust
         * accuracy at both budgets between its own and the clean one. */
        json_object *cw = json_object_array_get_idx(attacks, 2);
        assert_true(json_object_get_boolean(get(cw, "unbounded")));
        assert_false(
            json_object_get_boolean(get(json_object_array_get_idx(attacks, 1), "unbounded")));
        json_object *l2rows = get(get(cw, "l2"), "per_class"), *cwrows = get(cw, "per_class");
        for (int k = 0; k < K; k++) {
            json_object *lr = json_object_array_get_idx(l2rows, (size_t)k),
                        *cr = json_object_array_get_idx(cwrows, (size_t)k);
            assert_int_equal(json_object_get_int64(get(lr, "successes")),
                             json_object_get_int64(get(cr, "success")));
            json_object *ab = get(lr, "at_budget");
            assert_int_equal(json_object_array_length(ab), 2);
            int64_t r0 =
                json_object_get_int64(get(json_object_array_get_idx(ab, 0), "robust_correct"));
            int64_t r1 =
                json_object_get_int64(get(json_object_array_get_idx(ab, 1), "robust_correct"));
            assert_true(json_object_get_int64(get(cr, "robust_correct")) <= r1 && r1 <= r0);
            assert_true(r0 <= json_object_get_int64(get(cr, "clean_correct")));
        }
        /* The classifier row norms (fc1 here) and cw kept out of the pairs. */
        json_object *norms =
            get(get(get(mo, "relations"), "weight_norm_vs_robust"), "class_weight_norms");
        assert_int_equal(json_object_array_length(norms), K);
        assert_true(json_object_get_double(json_object_array_get_idx(norms, 0)) > 0);
        assert_int_equal(json_object_array_length(get(mo, "attack_pairs")), 1);
        int64_t clean_tot[2], robust_tot[2];
        for (size_t a = 0; a < 2; a++) {
            json_object *ao = json_object_array_get_idx(attacks, a);
            json_object *rows = get(ao, "per_class"), *flow = get(ao, "flow"),
                        *sum = get(ao, "summary");
            int64_t count = 0, clean = 0, robust = 0;
            for (int k = 0; k < K; k++) {
                json_object *row = json_object_array_get_idx(rows, (size_t)k);
                int64_t c = json_object_get_int64(get(row, "count"));
                count += c;
                clean += json_object_get_int64(get(row, "clean_correct"));
                robust += json_object_get_int64(get(row, "robust_correct"));
                int64_t fsum = 0;
                json_object *frow = json_object_array_get_idx(flow, (size_t)k);
                for (int j = 0; j < K; j++)
                    fsum += json_object_get_int64(json_object_array_get_idx(frow, (size_t)j));
                assert_int_equal(fsum, c); /* every example of class k lands somewhere */
                /* the diagonal of the flow is the robust count */
                assert_int_equal(json_object_get_int64(json_object_array_get_idx(frow, (size_t)k)),
                                 json_object_get_int64(get(row, "robust_correct")));
            }
            assert_int_equal(count, N_TEST);
            assert_int_equal(json_object_get_int64(get(sum, "count")), count);
            assert_int_equal(json_object_get_int64(get(sum, "clean_correct")), clean);
            assert_int_equal(json_object_get_int64(get(sum, "robust_correct")), robust);
            clean_tot[a] = clean, robust_tot[a] = robust;
        }
        assert_int_equal(clean_tot[0],
                         clean_tot[1]);             /* the same model, the same clean predictions */
        assert_true(robust_tot[1] <= clean_tot[1]); /* PGD never helps in total */
    }
    /* reweight reports its class weights; the plain models have none. */
    json_object *rw =
        get(json_object_array_get_idx(get(json_object_array_get_idx(models, 2), "epochs"), 2),
            "class_weights");
    assert_int_equal(json_object_get_type(rw), json_type_array);
    /* ...and they differ between classes by then, so the resume test below
     * really depends on the replayed epoch-end hooks. */
    int uneven = 0;
    for (size_t k = 1; k < 4; k++)
        uneven |= json_object_get_double(json_object_array_get_idx(rw, k)) !=
                  json_object_get_double(json_object_array_get_idx(rw, 0));
    assert_true(uneven);
    json_object *sw =
        get(json_object_array_get_idx(get(json_object_array_get_idx(models, 0), "epochs"), 1),
            "class_weights");
    assert_int_equal(json_object_get_type(sw), json_type_null);
    /* calibrate fitted offsets that the checkpoint keeps. */
    json_object *cal = get(json_object_array_get_idx(models, 3), "calibration");
    assert_true(json_object_get_boolean(get(cal, "enabled")));
    char ck[400], buf[256];
    snprintf(ck, sizeof ck, "%s/calibrated.safetensors", out);
    assert_ok(clasp_checkpoint_meta(ck, "clasp.calibration.offsets", buf, sizeof buf));
    reference = r;
}

/* The state file keeps format 2, which a clasp from before the model
 * report's field table (model_fields.c) reads: its version, and each
 * model's keys in the order that clasp wrote them. */
static void assert_state_format_2(const char *path)
{
    clasp_st_file f;
    assert_ok(clasp_st_read(path, &f));
    const char *text = clasp_st_meta(&f, "clasp.state");
    assert_non_null(text);
    json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    json_object *v, *models;
    assert_true(json_object_object_get_ex(o, "version", &v));
    assert_int_equal(json_object_get_int(v), 2);
    assert_true(json_object_object_get_ex(o, "models", &models));
    assert_true(json_object_array_length(models) >= 1);
    static const char *const keys[] = {"name",
                                       "defense",
                                       "params",
                                       "checkpoint",
                                       "calibrated",
                                       "calib_offsets",
                                       "calib_temperature",
                                       "train_seconds",
                                       "eval_seconds",
                                       "n_examples",
                                       "labels",
                                       "clean_pred",
                                       "class_weight_norms",
                                       "epochs",
                                       "attacks"};
    size_t i = 0;
    json_object_object_foreach(json_object_array_get_idx(models, 0), key, val)
    {
        (void)val;
        assert_true(i < sizeof keys / sizeof keys[0]);
        assert_string_equal(key, keys[i]);
        i++;
    }
    assert_int_equal(i, sizeof keys / sizeof keys[0]);
    /* Doubles as exact hexadecimal text. */
    assert_true(
        json_object_object_get_ex(json_object_array_get_idx(models, 0), "train_seconds", &v));
    assert_true(json_object_is_type(v, json_type_string));
    assert_non_null(strstr(json_object_get_string(v), "0x"));
    json_object_put(o);
    clasp_st_free(&f);
}

static void test_interrupt_and_resume(void **state)
{
    (void)state;
    if (!reference) {
        /* Standing alone (test_full_run failed or was not run): the
         * uninterrupted run's report is made here. */
        rm_tree(out);
        assert_ok(run(0, 0, 0));
        reference = read_report();
    }
    rm_tree(out);
    char st_path[400];
    snprintf(st_path, sizeof st_path, "%s/state.safetensors", out);
    /* 10 batches per epoch, 3 epochs, 4 models: interrupt at an epoch's last
     * batch (before its epoch end), mid-epoch in the second epoch, inside
     * the second model, inside reweight's third epoch (its weights come
     * back by replaying the epoch-end hooks), between reweight's first and
     * second attacks, and after the very last attack. */
    assert_int_equal(run(0, 10, 0), CLASP_ERR_INTERRUPTED);
    assert_true(exists(out, "state.safetensors"));
    assert_state_format_2(st_path);
    assert_false(exists(out, "report.json"));
    /* A fresh run refuses to overwrite the interrupted one. */
    assert_int_equal(run(0, 0, 0), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "--resume"));
    assert_int_equal(run(1, 7, 0), CLASP_ERR_INTERRUPTED);
    assert_int_equal(run(1, 20, 0), CLASP_ERR_INTERRUPTED);
    assert_int_equal(run(1, 48, 0), CLASP_ERR_INTERRUPTED);
    assert_int_equal(run(1, 0, 1), CLASP_ERR_INTERRUPTED);
    assert_false(exists(out, "report.json"));
    /* The last attack of the last model (reweight's other two, then the
     * calibrated model's three): interrupted before the report. */
    assert_int_equal(run(1, 0, 5), CLASP_ERR_INTERRUPTED);
    assert_false(exists(out, "report.json"));
    assert_int_equal(run(1, 0, 0), CLASP_OK);
    assert_false(exists(out, "state.safetensors"));
    json_object *r = read_report();
    tu_assert_same_json(reference, r, "report");
    json_object_put(r);
    /* Nothing left to resume. */
    assert_int_equal(run(1, 0, 0), CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "report.json is complete"));
}

static void test_resume_refusals(void **state)
{
    (void)state;
    rm_tree(out);
    assert_int_equal(run(1, 0, 0), CLASP_ERR_NOT_FOUND);
    assert_int_equal(run(0, 3, 0), CLASP_ERR_INTERRUPTED);
    /* A changed experiment does not continue an old state. */
    write_yaml(6);
    assert_int_equal(run(1, 0, 0), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "configuration hash"));
    write_yaml(5);
    /* A corrupt state file is refused with a clear message. */
    char st_path[400];
    snprintf(st_path, sizeof st_path, "%s/state.safetensors", out);
    tu_write_file(st_path, "garbage", 7);
    assert_int_equal(run(1, 0, 0), CLASP_ERR_FORMAT);
    assert_non_null(strstr(clasp_last_error(), "cannot resume"));
    rm_tree(out);
}

static void test_failures_leave_no_report(void **state)
{
    (void)state;
    /* A stale complete-looking report from an earlier run goes first. */
    rm_tree(out);
    assert_int_equal(mkdir(out, 0777), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/report.json", out);
    tu_write_file(p, "{}", 2);
    const char *bad = "experiment: {name: tiny}\n"
                      "data: {dataset: mnist, path: '/nonexistent/clasp', val_size: 10}\n"
                      "train: {epochs: 1, models: [{name: s}]}\n"
                      "evaluate: {attacks: [fgsm]}\n";
    char yaml_bad[400];
    snprintf(yaml_bad, sizeof yaml_bad, "%s/bad.yaml", dir);
    tu_write_file(yaml_bad, bad, strlen(bad));
    clasp_plan *pl = NULL;
    assert_ok(clasp_plan_load(reg, yaml_bad, &pl));
    assert_ok(clasp_plan_set_output(pl, out));
    clasp_status st = clasp_experiment_run(pl, reg, NULL);
    assert_int_not_equal(st, CLASP_OK);
    assert_non_null(strstr(clasp_last_error(), "bad.yaml:2:30: data:"));
    assert_false(exists(out, "report.json"));
    clasp_plan_free(pl);
    /* A model whose last layer does not match the classes. */
    const char *y = experiment_yaml(5);
    char *wrong = strdup(y);
    char *fc = strstr(wrong, "fc10");
    memcpy(fc, "fc05", 4);
    tu_write_file(yaml_bad, wrong, strlen(wrong));
    free(wrong);
    assert_ok(clasp_plan_load(reg, yaml_bad, &pl));
    st = clasp_experiment_run(pl, reg, NULL);
    assert_int_equal(st, CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "5 outputs but the data set has 10 classes"));
    assert_false(exists(out, "report.json"));
    clasp_plan_free(pl);
    /* And a YAML error stops before anything runs. */
    const char *broken = "experiment: {name: x}\ntrain: {}\n";
    tu_write_file(yaml_bad, broken, strlen(broken));
    assert_int_equal(clasp_plan_load(reg, yaml_bad, &pl), CLASP_ERR_CONFIG);
    assert_null(pl);
    rm_tree(out);
}

/* An ensemble entry next to its members, and cw: a 1-model experiment. */
static const char *ensemble_yaml(const char *outdir)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "experiment: {name: tiny-ens, seed: 3}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train: {epochs: 1, batch: 32, optimiser: {lr: 0.1}, val_eval_size: 20, models: "
             "[{name: standard}]}\n"
             "evaluate:\n"
             "  test_size: %d\n"
             "  batch: 40\n"
             "  attacks:\n"
             "    - {name: fgsm, params: {eps: 0.05}}\n"
             "    - {name: pgd, params: &p {eps: 0.05, steps: 3, alpha: 0, rand_init: false}}\n"
             "    - {label: cascade, ensemble: [{name: fgsm, params: {eps: 0.05}}, {name: pgd, "
             "params: *p}]}\n"
             "    - {name: cw, params: {max_iterations: 2, binary_search_steps: 1}}\n"
             "output: {dir: '%s'}\n",
             dir, N_TEST, outdir);
    return buf;
}

static int64_t iget(json_object *arr, size_t i)
{
    return json_object_get_int64(json_object_array_get_idx(arr, i));
}

static void test_ensemble_run(void **state)
{
    (void)state;
    char eout[400], path[400];
    snprintf(eout, sizeof eout, "%s/ens", dir);
    snprintf(path, sizeof path, "%s/ens.yaml", dir);
    const char *y = ensemble_yaml(eout);
    tu_write_file(path, y, strlen(y));
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, path, &p));
    assert_int_equal(p->n_attacks, 4);
    assert_int_equal(p->attacks[2].n_members, 2);
    assert_true(clasp_plan_attack_linf_eps(&p->attacks[2]) == 0.05);
    assert_true(clasp_plan_attack_linf_eps(&p->attacks[3]) == 0); /* cw: unbounded */
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    assert_ok(clasp_experiment_run(p, reg, &opt));
    char rp[500];
    snprintf(rp, sizeof rp, "%s/report.json", eout);
    json_object *r = json_object_from_file(rp);
    assert_non_null(r);
    json_object *attacks = get(json_object_array_get_idx(get(r, "models"), 0), "attacks");
    /* fgsm, pgd, cascade, cw, then the worst case over the three L-inf
     * entries (cw left out). */
    assert_int_equal(json_object_array_length(attacks), 5);
    json_object *fg = json_object_array_get_idx(attacks, 0),
                *pg = json_object_array_get_idx(attacks, 1);
    json_object *ens = json_object_array_get_idx(attacks, 2),
                *worst = json_object_array_get_idx(attacks, 4);
    assert_string_equal(json_object_get_string(get(worst, "label")), "worst case eps=0.05");
    json_object *wm = get(worst, "ensemble");
    assert_int_equal(json_object_array_length(wm), 3);
    assert_string_equal(json_object_get_string(get(json_object_array_get_idx(wm, 2), "label")),
                        "cascade");
    json_object *em = get(ens, "ensemble");
    for (int k = 0; k < 10; k++) {
        json_object *er = json_object_array_get_idx(get(ens, "per_class"), (size_t)k);
        int64_t clean = json_object_get_int64(get(er, "clean_correct"));
        int64_t robust = json_object_get_int64(get(er, "robust_correct"));
        /* Never more robust than a member alone (both are deterministic
         * here, so each member meets the very examples it would alone). */
        for (int a = 0; a < 2; a++) {
            json_object *ar = json_object_array_get_idx(get(a ? pg : fg, "per_class"), (size_t)k);
            assert_true(robust <= json_object_get_int64(get(ar, "robust_correct")));
        }
        /* First flippers add up to the examples lost. */
        int64_t f = iget(get(json_object_array_get_idx(em, 0), "flipped_first"), (size_t)k) +
                    iget(get(json_object_array_get_idx(em, 1), "flipped_first"), (size_t)k);
        assert_int_equal(f, clean - robust);
        /* The worst case is at most the cascade. */
        json_object *wr = json_object_array_get_idx(get(worst, "per_class"), (size_t)k);
        assert_true(json_object_get_int64(get(wr, "robust_correct")) <= robust);
        /* Each flow row holds the class's examples. */
        int64_t row = 0;
        for (int j = 0; j < 10; j++)
            row += iget(json_object_array_get_idx(get(ens, "flow"), (size_t)k), (size_t)j);
        assert_int_equal(row, json_object_get_int64(get(er, "count")));
    }
    /* An ensemble is one entry for resuming: stop right after it, resume,
     * and get the same report. */
    json_object *ref = r;
    stopper stop = {.attacks = 3};
    clasp_run_options cut = opt;
    cut.stop = &stop.flag;
    cut.hooks.user = &stop;
    cut.hooks.log = stopper_log;
    assert_int_equal(clasp_experiment_run(p, reg, &cut), CLASP_ERR_INTERRUPTED);
    opt.resume = 1;
    assert_ok(clasp_experiment_run(p, reg, &opt));
    r = json_object_from_file(rp);
    assert_non_null(r);
    tu_assert_same_json(ref, r, "report");
    json_object_put(r);
    json_object_put(ref);
    clasp_plan_free(p);
    rm_tree(eout);
}

/* data.exclude_classes through the runner: classes 0 and 3 are neither
 * trained nor validated on, yet tested (the model keeps ten outputs); an
 * unknown class stops the run at its line before anything is trained.
 * data.groups through the runner too: the report aggregates the test
 * counts by the file's groups (MNIST's classes are named "0" to "9"), and
 * a class the data set lacks stops the run before training. */
static void test_exclude_classes_run(void **state)
{
    (void)state;
    rm_tree(out);
    char y[2400], path[400], groups[400];
    snprintf(groups, sizeof groups, "%s/groups.txt", dir);
    static const char gtext[] = "# MNIST by parity\n0\teven\n2\teven\n4,even\n1,odd\n3\todd\n";
    tu_write_file(groups, gtext, sizeof gtext - 1);
    snprintf(y, sizeof y,
             "experiment: {name: tiny, seed: 3}\n"
             "data:\n  dataset: mnist\n  path: '%s'\n  val_size: 100\n  exclude_classes: [0, '3']\n"
             "  groups: '%s'\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train: {epochs: 1, batch: 32, val_eval_size: 0, models: [{name: s}]}\n"
             "evaluate: {test_size: %d, batch: 40, attacks: [fgsm]}\n"
             "output: {dir: '%s'}\n",
             dir, groups, N_TEST, out);
    snprintf(path, sizeof path, "%s/excl.yaml", dir);
    tu_write_file(path, y, strlen(y));
    clasp_plan *pl = NULL;
    assert_ok(clasp_plan_load(reg, path, &pl));
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    assert_ok(clasp_experiment_run(pl, reg, &opt));
    clasp_plan_free(pl);
    json_object *r = read_report();
    json_object *m = json_object_array_get_idx(get(r, "models"), 0);
    json_object *cnt =
        get(get(json_object_array_get_idx(get(m, "epochs"), 0), "validation"), "count");
    json_object *rows = get(json_object_array_get_idx(get(m, "attacks"), 0), "per_class");
    int64_t val_total = 0, test_excluded = 0;
    for (size_t k = 0; k < 10; k++) {
        int64_t v = json_object_get_int64(json_object_array_get_idx(cnt, k));
        if (k == 0 || k == 3) assert_int_equal(v, 0);
        val_total += v;
        if (k == 0 || k == 3)
            test_excluded +=
                json_object_get_int64(get(json_object_array_get_idx(rows, k), "count"));
    }
    assert_true(val_total > 0 && val_total < 100);
    /* The report knows, and keeps them out of the correlations. */
    json_object *left = get(get(m, "relations"), "classes_left_out");
    assert_int_equal(json_object_array_length(left), 2);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(left, 0)), 0);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(left, 1)), 3);
    assert_true(test_excluded > 0);
    /* The training set shrank by the excluded classes' share. */
    assert_true(json_object_get_int64(get(get(r, "dataset"), "train_size")) < N_TRAIN - 100);
    /* Groups: even {0, 2, 4}, odd {1, 3}, then the unlisted 5 to 9. */
    json_object *cg = get(m, "class_groups");
    assert_string_equal(json_object_get_string(get(cg, "kind")), "file");
    assert_string_equal(json_object_get_string(get(cg, "source")), groups);
    json_object *ga = get(cg, "groups");
    assert_int_equal(json_object_array_length(ga), 3);
    static const int group_of[10] = {0, 1, 0, 1, 0, 2, 2, 2, 2, 2};
    int64_t want[3][2] = {{0}}; /* count, robust under fgsm */
    for (size_t k = 0; k < 10; k++) {
        json_object *row = json_object_array_get_idx(rows, k);
        want[group_of[k]][0] += json_object_get_int64(get(row, "count"));
        want[group_of[k]][1] += json_object_get_int64(get(row, "robust_correct"));
    }
    for (size_t g = 0; g < 3; g++) {
        json_object *x = json_object_array_get_idx(ga, g);
        assert_int_equal(json_object_get_int64(get(x, "count")), want[g][0]);
        assert_int_equal(json_object_get_int64(
                             json_object_array_get_idx(get(x, "robust_correct"), 0)),
                         want[g][1]);
    }
    assert_string_equal(json_object_get_string(get(json_object_array_get_idx(ga, 2), "name")),
                        "(unlisted)");
    json_object_put(r);
    char md_path[500];
    snprintf(md_path, sizeof md_path, "%s/report.md", out);
    char *md = tu_read_all(md_path, NULL);
    assert_non_null(strstr(md, "### By class group"));
    assert_non_null(strstr(md, "| even | 0, 2, 4 |"));
    free(md);
    rm_tree(out);

    /* A class MNIST does not have: stopped before any training. */
    static const char gbad[] = "0,even\ncat,pets\n";
    tu_write_file(groups, gbad, sizeof gbad - 1);
    assert_ok(clasp_plan_load(reg, path, &pl));
    assert_int_equal(clasp_experiment_run(pl, reg, &opt), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "data.groups: "));
    assert_non_null(strstr(clasp_last_error(), "groups.txt:2: unknown class 'cat'"));
    assert_false(exists(out, "report.json"));
    assert_false(exists(out, "s.safetensors"));
    clasp_plan_free(pl);
    rm_tree(out);
    tu_write_file(groups, gtext, sizeof gtext - 1);

    char *bad = strdup(y);
    char *three = strstr(bad, "'3'");
    memcpy(three, "'x'", 3);
    tu_write_file(path, bad, strlen(bad));
    free(bad);
    assert_ok(clasp_plan_load(reg, path, &pl));
    assert_int_equal(clasp_experiment_run(pl, reg, &opt), CLASP_ERR_CONFIG);
    assert_non_null(
        strstr(clasp_last_error(), "excl.yaml:6:24: data.exclude_classes: unknown class 'x'"));
    assert_false(exists(out, "report.json"));
    clasp_plan_free(pl);
    rm_tree(out);
}

/* Fails unless files a and b hold the same bytes; returns their length. */
static long assert_same_file(const char *pa, const char *pb)
{
    FILE *a = fopen(pa, "rb"), *b = fopen(pb, "rb");
    assert_non_null(a);
    assert_non_null(b);
    long n = 0;
    int ca, cb;
    do {
        ca = fgetc(a), cb = fgetc(b);
        if (ca != cb) fail_msg("%s and %s differ at byte %ld", pa, pb, n);
        n++;
    } while (ca != EOF);
    fclose(a);
    fclose(b);
    return n - 1;
}

/* Training alone (clasp_experiment_train, what `clasp train` runs) is the
 * runner's training: on the runner's own split it writes the very
 * checkpoint a whole run writes, for standard training and for a defense
 * wrapping another with an inner attack. */
static void test_train_alone_is_the_runners_training(void **state)
{
    (void)state;
    char aout[400], path[400];
    snprintf(aout, sizeof aout, "%s/alone", dir);
    snprintf(path, sizeof path, "%s/alone.yaml", dir);
    char y[2048];
    snprintf(y, sizeof y,
             "experiment: {name: tiny-alone, seed: 11}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train:\n"
             "  epochs: 2\n"
             "  batch: 32\n"
             "  optimiser: {lr: 0.1}\n"
             "  schedule: cosine\n"
             "  val_eval_size: 60\n"
             "  models:\n"
             "    - name: standard\n"
             "    - name: reweight\n"
             "      defense: {name: reweight, params: {strength: 3}, inner: {name: pgd-at, attack: "
             "{name: pgd, params: {eps: 0.15, steps: 2, alpha: 0}}}}\n"
             "evaluate: {test_size: 40, batch: 40, attacks: [{name: fgsm, params: {eps: 0.1}}]}\n"
             "output: {dir: '%s'}\n",
             dir, aout);
    tu_write_file(path, y, strlen(y));
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, path, &p));
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    assert_ok(clasp_experiment_run(p, reg, &opt));

    clasp_dataset all = {0}, train = {0}, val = {0};
    assert_ok(clasp_dataset_load(p->dataset, p->data_path, 1, &all));
    assert_ok(clasp_dataset_split(&all, p->val_size, p->seed, &train, &val));
    for (int mi = 0; mi < p->n_models; mi++) {
        char mine[500], theirs[700];
        snprintf(mine, sizeof mine, "%s/alone-%d.safetensors", dir, mi);
        snprintf(theirs, sizeof theirs, "%s/%s.safetensors", aout, p->models[mi].file);
        clasp_model_report rep;
        assert_ok(clasp_experiment_train(p, mi, &train, &val, NULL, mine, &opt, &rep));
        assert_int_equal(rep.n_epochs, 2);
        for (int e = 0; e < rep.n_epochs; e++)
            assert_int_equal(clasp_class_sum(rep.epochs[e].val.count, 10), 60);
        /* A defense with an attack validates robust accuracy as well. */
        assert_true((rep.epochs[1].val.robust_correct != NULL) == (p->models[mi].defense != NULL));
        clasp_model_report_free(&rep);
        assert_int_equal(rep.n_epochs, 0);
        assert_true(assert_same_file(mine, theirs) > 1000);
    }
    /* Neither a state file nor a report of its own. */
    assert_false(exists(dir, "state.safetensors"));
    assert_false(exists(dir, "report.json"));
    clasp_model_report rep;
    assert_int_equal(clasp_experiment_train(p, 2, &train, &val, NULL, NULL, &opt, &rep),
                     CLASP_ERR_INVALID);
    clasp_dataset_free(&train);
    clasp_dataset_free(&val);
    clasp_plan_free(p);
    rm_tree(aout);
}

/* The runner configures its context from the options it is given and
 * reads no environment: a device and a GEMM provider named only in the
 * environment are not used, the same named in the options are. */
static void test_runner_options_not_environment(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/opts.yaml", dir);
    char y[1024];
    snprintf(y, sizeof y,
             "experiment: {name: tiny-opts, seed: 3}\n"
             "data: {dataset: mnist, path: '%s', val_size: 40}\n"
             "model: {arch: 'flatten,fc10'}\n"
             "train: {epochs: 1, batch: 32, val_eval_size: 20, models: [{name: standard}]}\n"
             "evaluate: {test_size: 20, batch: 20, attacks: [{name: fgsm, params: {eps: 0.1}}]}\n"
             "output: {dir: '%s/opts-out'}\n",
             dir, dir);
    tu_write_file(path, y, strlen(y));
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, path, &p));
    clasp_dataset all = {0}, train = {0}, val = {0};
    assert_ok(clasp_dataset_load(p->dataset, p->data_path, 1, &all));
    assert_ok(clasp_dataset_split(&all, p->val_size, p->seed, &train, &val));
    train.n = 64;
    clasp_ctx_opts good = *tu_ctx_opts();
    clasp_run_options opt = {.ctx = &good};
    opt.hooks.log = quiet_log;
    clasp_model_report rep;

    char *old_dev = getenv("CLASP_DEVICE") ? strdup(getenv("CLASP_DEVICE")) : NULL;
    char *old_gemm = getenv("CLASP_GEMM") ? strdup(getenv("CLASP_GEMM")) : NULL;
    setenv("CLASP_DEVICE", "no-such-device", 1);
    setenv("CLASP_GEMM", "no-such-gemm", 1);
    assert_ok(clasp_experiment_train(p, 0, &train, &val, NULL, NULL, &opt, &rep));
    assert_int_equal(rep.n_epochs, 1);
    clasp_model_report_free(&rep);
    if (old_dev) setenv("CLASP_DEVICE", old_dev, 1);
    else unsetenv("CLASP_DEVICE");
    if (old_gemm) setenv("CLASP_GEMM", old_gemm, 1);
    else unsetenv("CLASP_GEMM");
    free(old_dev);
    free(old_gemm);

    clasp_ctx_opts bad = good;
    snprintf(bad.device, sizeof bad.device, "no-such-device");
    opt.ctx = &bad;
    assert_int_equal(clasp_experiment_train(p, 0, &train, &val, NULL, NULL, &opt, &rep),
                     CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "no-such-device"));
    bad = good;
    snprintf(bad.gemm, sizeof bad.gemm, "no-such-gemm");
    assert_int_equal(clasp_experiment_train(p, 0, &train, &val, NULL, NULL, &opt, &rep),
                     CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "no-such-gemm"));
    clasp_error_clear();
    clasp_dataset_free(&train);
    clasp_dataset_free(&val);
    clasp_plan_free(p);
}

/* `clasp train` is clasp_experiment_train on a one-model plan with the
 * whole training set and the test set as validation: the command's
 * checkpoint is byte for byte the library's on the plan its options
 * describe, and it prints the per-class test table of the last epoch. */
static void test_train_command_is_the_runners_training(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI must name the clasp program");
    const char *arch = "conv3x3-4p1,relu,maxpool2,flatten,fc10";
    char cmd[2048], theirs[400], mine[400], out_text[8192] = "";
    snprintf(theirs, sizeof theirs, "%s/cli-train.safetensors", dir);
    snprintf(mine, sizeof mine, "%s/lib-train.safetensors", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' train --dataset mnist --data '%s' --epochs 2 --batch 32 --lr 0.1 --seed 9 "
             "--limit 300 --arch '%s' --save '%s' 2>/dev/null",
             cli, dir, arch, theirs);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out_text, 1, sizeof out_text - 1, f);
    out_text[n] = '\0';
    int rc = pclose(f);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
    assert_non_null(strstr(out_text, "test accuracy per class after 2 epochs"));
    assert_non_null(strstr(out_text, "saved "));

    char y[2048];
    snprintf(y, sizeof y,
             "experiment: {name: train, seed: 9}\n"
             "data: {dataset: mnist, path: '%s'}\n"
             "model: {arch: '%s'}\n"
             "train: {epochs: 2, batch: 32, optimiser: {lr: 0.1, momentum: 0.9, weight_decay: "
             "0.0005}, schedule: cosine, models: [{name: standard}]}\n"
             "evaluate: {batch: 256, attacks: [{name: fgsm, params: {eps: 0.1}}]}\n",
             dir, arch);
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_parse(reg, y, strlen(y), "train.yaml", &p));
    clasp_dataset train = {0}, test = {0};
    assert_ok(clasp_dataset_load("mnist", dir, 1, &train));
    assert_ok(clasp_dataset_load("mnist", dir, 0, &test));
    clasp_dataset_truncate(&train, 300);
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    clasp_model_report rep;
    assert_ok(clasp_experiment_train(p, 0, &train, &test, "test", mine, &opt, &rep));
    /* The last line of the table: the overall test accuracy. */
    char all[64];
    snprintf(all, sizeof all, "%.2f%%", 100 * clasp_counts_clean_acc(&rep.epochs[1].val, -1));
    const char *row = strstr(out_text, "  all ");
    assert_non_null(row);
    assert_non_null(strstr(row, all));
    clasp_model_report_free(&rep);
    assert_same_file(mine, theirs);
    clasp_dataset_free(&train);
    clasp_dataset_free(&test);
    clasp_plan_free(p);
}

static int free_reference(void **state)
{
    (void)state;
    json_object_put(reference);
    reference = NULL;
    return 0;
}

/* A study of existing checkpoints (top-level models, no train section):
 * the full run's models evaluated again as they are give the very same
 * per-class counts (the same model index, so the same attack streams), a
 * post-hoc calibration fits without training, a fine-tuned entry trains
 * its own epochs from the weights, and the resolved YAML parses back. */
static void test_checkpoint_study(void **state)
{
    (void)state;
    rm_tree(out);
    assert_ok(run(0, 0, 0));
    json_object *full = read_report();
    char study[400], sout[400], yaml[4096];
    snprintf(study, sizeof study, "%s/study.yaml", dir);
    snprintf(sout, sizeof sout, "%s/study-out", dir);
    snprintf(yaml, sizeof yaml,
             "experiment: {name: study, seed: 5}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "models:\n"
             "  - {name: standard, checkpoint: '%s/standard.safetensors'}\n"
             "  - {name: pgd-at, checkpoint: '%s/pgd-at.safetensors'}\n"
             "  - name: pgd-at calibrated\n"
             "    checkpoint: '%s/pgd-at.safetensors'\n"
             "    defense: {name: calibrate, attack: {name: pgd, params: {eps: 0.15, steps: 2, "
             "alpha: 0}}}\n"
             "evaluate:\n"
             "  test_size: %d\n"
             "  batch: 40\n"
             "  attacks:\n"
             "    - {name: fgsm, params: {eps: 0.15}}\n"
             "    - {name: pgd, params: {eps: 0.15, steps: 3, alpha: 0}}\n"
             "output: {dir: '%s'}\n",
             dir, out, out, out, N_TEST, sout);
    tu_write_file(study, yaml, strlen(yaml));
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, study, &p));
    assert_int_equal(p->no_train, 1);
    assert_int_equal(p->n_models, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(p->models[i].epochs, 0);
    /* The resolved text keeps every model's source and parses back to it. */
    char *text = NULL, *text2 = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    assert_non_null(strstr(text, "checkpoint: "));
    assert_null(strstr(text, "train:"));
    clasp_plan *q = NULL;
    assert_ok(clasp_plan_parse(reg, text, strlen(text), "resolved.yaml", &q));
    assert_ok(clasp_plan_to_yaml(q, 1, &text2));
    assert_string_equal(text, text2);
    free(text), free(text2);
    clasp_plan_free(q);
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    assert_ok(clasp_experiment_run(p, reg, &opt));
    clasp_plan_free(p);

    char rp[500];
    snprintf(rp, sizeof rp, "%s/report.json", sout);
    json_object *r = json_object_from_file(rp);
    assert_non_null(r);
    json_object *fm = get(full, "models"), *sm = get(r, "models");
    assert_int_equal(json_object_array_length(sm), 3);
    for (size_t m = 0; m < 2; m++) {
        json_object *a = get(json_object_array_get_idx(fm, m), "attacks"),
                    *b = get(json_object_array_get_idx(sm, m), "attacks");
        /* No training: no epochs. */
        assert_int_equal(json_object_array_length(get(json_object_array_get_idx(sm, m), "epochs")),
                         0);
        for (size_t k = 0; k < 2; k++) {
            const char *x =
                json_object_to_json_string(get(json_object_array_get_idx(a, k), "per_class"));
            char *xs = strdup(x);
            const char *y =
                json_object_to_json_string(get(json_object_array_get_idx(b, k), "per_class"));
            assert_string_equal(xs, y);
            free(xs);
        }
    }
    /* The calibrated copy carries offsets the plain one does not. */
    char cp[500], v[64];
    snprintf(cp, sizeof cp, "%s/pgd-at_calibrated.safetensors", sout);
    assert_ok(clasp_checkpoint_meta(cp, "clasp.calibration.offsets", v, sizeof v));
    json_object_put(r);
    json_object_put(full);

    /* A training defense on a checkpoint needs epochs; a fine-tune needs a
     * train section; a missing file is found at once. */
    const char *bad[][2] = {
        {"  - {name: a, checkpoint: '%s/pgd-at.safetensors', defense: {name: pgd-at, attack: "
         "{name: pgd}}}\n",
         "changes nothing"},
        {"  - {name: a, checkpoint: '%s/pgd-at.safetensors', epochs: 1}\n", "train section"},
        {"  - {name: a, checkpoint: '%s/nonexistent.pt'}\n", "nonexistent.pt"},
        {"  - {name: a%s}\n", "trained from the seed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char entry[600];
        snprintf(entry, sizeof entry, bad[i][0], i == 3 ? "" : out);
        snprintf(yaml, sizeof yaml,
                 "experiment: {name: s}\ndata: {dataset: mnist, path: '%s'}\nmodels:\n%s"
                 "evaluate: {attacks: [{name: fgsm}]}\n",
                 dir, entry);
        clasp_plan *e = NULL;
        assert_int_equal(clasp_plan_parse(reg, yaml, strlen(yaml), "s.yaml", &e), CLASP_ERR_CONFIG);
        if (!strstr(clasp_last_error(), bad[i][1]))
            fail_msg("case %zu: expected '%s' in: %s", i, bad[i][1], clasp_last_error());
    }
    rm_tree(sout);
}

/* `clasp check --time` measures a pass of the first model on the device
 * and turns the work estimate into time: a positive time for each phase,
 * the evaluation's among them. */
/* The study of the globals, run afresh into odir, stopped (after
 * stop_batches training batches or stop_attacks attacks) and resumed,
 * reports r. */
static void resumes_to(json_object *r, const char *odir, long stop_batches, long stop_attacks)
{
    rm_tree(odir);
    assert_int_equal(run(0, stop_batches, stop_attacks), CLASP_ERR_INTERRUPTED);
    assert_true(exists(odir, "state.safetensors"));
    assert_int_equal(run(1, 0, 0), CLASP_OK);
    json_object *r2 = read_report();
    tu_assert_same_json(r, r2, "report");
    json_object_put(r2);
}

/* ---- a streamed image folder ------------------------------------------- */

/* run() and read_report() work on the globals yaml_path and out: points
 * them at another study's, keeping theirs in saved_* (300 bytes each;
 * NULL: not kept). */
static void use_study(const char *ypath, const char *odir, char *saved_yaml, char *saved_out)
{
    if (saved_yaml) snprintf(saved_yaml, 300, "%s", yaml_path);
    if (saved_out) snprintf(saved_out, 300, "%s", out);
    snprintf(yaml_path, sizeof yaml_path, "%s", ypath);
    snprintf(out, sizeof out, "%s", odir);
}

#define IMG_SIDE 12
#define IMG_PER_CLASS 6

/* An RGB PNG of a class's pattern: class 0 bright on the left, 1 in the
 * middle, 2 on the right, with per-image noise. */
static void write_class_png(const char *path, int cls, int i)
{
    unsigned char px[IMG_SIDE * IMG_SIDE * 3];
    uint32_t r = (uint32_t)(cls * 7919 + i * 104729 + 1);
    for (int y = 0; y < IMG_SIDE; y++)
        for (int x = 0; x < IMG_SIDE; x++)
            for (int c = 0; c < 3; c++) {
                r = r * 1664525u + 1013904223u;
                int band = x * 3 / IMG_SIDE == cls;
                int v = (band ? 170 : 40) + (int)(r >> 26) * 4 + c * 10;
                px[(y * IMG_SIDE + x) * 3 + c] = (unsigned char)(v > 255 ? 255 : v);
            }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_false(setjmp(png_jmpbuf(png)));
    png_init_io(png, f);
    png_set_IHDR(png, info, IMG_SIDE, IMG_SIDE, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < IMG_SIDE; y++) png_write_row(png, px + (size_t)y * IMG_SIDE * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* One YAML study of a checkpoint on an image folder (streamed: the
 * evaluation reads it batch by batch) gives the per-class counts that
 * `clasp attack` gives on the same folder and model, leaves the one
 * undecodable image out in both (skip_bad_images), and resumes after an
 * interrupt to the same report. */
static void test_image_folder_study(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI must name the clasp program");
    static const char *const classes[] = {"ant", "bee", "cat"};
    char root[400], path[600], ckpt[400];
    snprintf(root, sizeof root, "%s/images", dir);
    assert_int_equal(mkdir(root, 0755), 0);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", root, classes[k]);
        assert_int_equal(mkdir(path, 0755), 0);
        for (int i = 0; i < IMG_PER_CLASS; i++) {
            snprintf(path, sizeof path, "%s/%s/%02d.png", root, classes[k], i);
            write_class_png(path, k, i);
        }
    }
    /* A model briefly trained on the same images (held in memory here). */
    const char *arch = "conv3x3-8p1,relu,maxpool2,flatten,fc3";
    clasp_imagefolder_options fo = {.preprocess = "none"};
    clasp_dataset train = {0}, none = {0};
    assert_ok(clasp_imagefolder_load(root, &fo, 1, &train));
    assert_int_equal(train.n, 3 * IMG_PER_CLASS);
    assert_int_equal(train.num_classes, 3);
    none = train;
    none.n = 0;
    char y[2048];
    snprintf(y, sizeof y,
             "experiment: {name: pre, seed: 3}\n"
             "data: {dataset: mnist, path: '%s'}\n"
             "model: {arch: '%s'}\n"
             "train: {epochs: 20, batch: 6, optimiser: {lr: 0.1}, models: [{name: m}]}\n"
             "evaluate: {attacks: [fgsm]}\n",
             dir, arch);
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_parse(reg, y, strlen(y), "pre.yaml", &p));
    snprintf(ckpt, sizeof ckpt, "%s/images-model.safetensors", dir);
    clasp_run_options ro = {.ctx = tu_ctx_opts()};
    ro.hooks.log = quiet_log;
    clasp_model_report mrep;
    assert_ok(clasp_experiment_train(p, 0, &train, &none, NULL, ckpt, &ro, &mrep));
    clasp_model_report_free(&mrep);
    clasp_plan_free(p);
    clasp_dataset_free(&train);
    /* Then one image that no decoder reads. */
    snprintf(path, sizeof path, "%s/bee/99.png", root);
    tu_write_file(path, "not a PNG", 9);

    char ypath[300], iout[300], saved_yaml[300], saved_out[300];
    snprintf(ypath, sizeof ypath, "%s/images.yaml", dir);
    snprintf(iout, sizeof iout, "%s/images-out", dir);
    snprintf(y, sizeof y,
             "experiment: {name: images, seed: 4}\n"
             "data: {dataset: imagefolder, path: '%s', preprocess: none, workers: 2, "
             "skip_bad_images: true}\n"
             "models: [{name: m, checkpoint: '%s'}]\n"
             "evaluate:\n"
             "  batch: 4\n"
             "  attacks:\n"
             "    - {name: fgsm, params: {eps: 0.2}}\n"
             "    - {name: pgd, params: {eps: 0.2, steps: 3}}\n"
             "output: {dir: '%s'}\n",
             root, ckpt, iout);
    tu_write_file(ypath, y, strlen(y));
    use_study(ypath, iout, saved_yaml, saved_out);
    assert_ok(run(0, 0, 0));
    json_object *r = read_report();
    json_object *ds = get(r, "dataset");
    assert_int_equal(json_object_get_int(get(ds, "num_classes")), 3);
    assert_int_equal(json_object_get_int(get(ds, "test_size")), 3 * IMG_PER_CLASS);
    json_object *atk =
        json_object_array_get_idx(get(json_object_array_get_idx(get(r, "models"), 0), "attacks"),
                                  0);
    json_object *rows = get(atk, "per_class");

    /* The same model, folder and attack through `clasp attack`. */
    char cmd[2048], text[8192] = "";
    snprintf(cmd, sizeof cmd,
             "'%s' attack --model '%s' --dataset imagefolder --data '%s' --preprocess none "
             "--skip-bad-images --workers 2 --attack fgsm --set eps=0.2 --samples 0 --batch 4 "
             "2>/dev/null",
             cli, ckpt, root);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    int rc = pclose(f);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
    assert_non_null(strstr(text, "skipped 1 images"));
    int64_t robust = 0, clean = 0;
    for (int k = 0; k < 3; k++) {
        json_object *row = json_object_array_get_idx(rows, (size_t)k);
        int64_t cnt = json_object_get_int64(get(row, "count")),
                cc = json_object_get_int64(get(row, "clean_correct")),
                rc2 = json_object_get_int64(get(row, "robust_correct"));
        assert_string_equal(json_object_get_string(get(row, "class")), classes[k]);
        assert_int_equal(cnt, IMG_PER_CLASS);
        clean += cc, robust += rc2;
        /* clasp attack's per-class row: the same counts, as it prints them. */
        char line[160];
        snprintf(line, sizeof line, "\n  %-14s %6lld %9.2f%% %9.2f%%\n", classes[k], (long long)cnt,
                 100.0 * (double)cc / (double)cnt, 100.0 * (double)rc2 / (double)cnt);
        if (!strstr(text, line)) fail_msg("clasp attack lacks the row%s  in:\n%s", line, text);
    }
    /* Trained on these very images, the model knows most of them. */
    if (clean < 2 * IMG_PER_CLASS)
        fail_msg("clean %lld of %d", (long long)clean, 3 * IMG_PER_CLASS);
    assert_true(robust <= clean);

    /* Interrupted after the first attack and resumed: the same report. */
    resumes_to(r, iout, 0, 1);
    json_object_put(r);
    use_study(saved_yaml, saved_out, NULL, NULL);
}

/* Training on an image folder (DIR/train streamed with random-resized
 * crops and flips, its validation images held out, DIR/val the test set):
 * both a standard model and a calibrated one (whose finish step gets the
 * decoded validation images) train and are evaluated; a run interrupted
 * inside an epoch resumes to the same report; a folder without DIR/train
 * or whose splits have other classes is an error naming the folder, and
 * train.augment is refused. */
static void test_image_folder_training(void **state)
{
    (void)state;
    static const char *const classes[] = {"ant", "bee", "cat"};
    char root[400], path[600];
    snprintf(root, sizeof root, "%s/tv", dir);
    assert_int_equal(mkdir(root, 0755), 0);
    for (int split = 0; split < 2; split++) {
        snprintf(path, sizeof path, "%s/%s", root, split ? "val" : "train");
        assert_int_equal(mkdir(path, 0755), 0);
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", root, split ? "val" : "train", classes[k]);
            assert_int_equal(mkdir(path, 0755), 0);
            for (int i = 0; i < (split ? 3 : 8); i++) {
                snprintf(path, sizeof path, "%s/%s/%s/%02d.png", root, split ? "val" : "train",
                         classes[k], i);
                write_class_png(path, k, i + 50 * split);
            }
        }
    }
    char ypath[300], tout[300], saved_yaml[300], saved_out[300], y[2048];
    snprintf(ypath, sizeof ypath, "%s/tv.yaml", dir);
    snprintf(tout, sizeof tout, "%s/tv-out", dir);
    const char *fmt = "experiment: {name: tv, seed: 6}\n"
                      "data: {dataset: imagefolder, path: '%s', preprocess: none, workers: 2, "
                      "val_size: 6}\n"
                      "model: {arch: 'conv3x3-8p1,relu,maxpool2,flatten,fc3'}\n"
                      "train:\n"
                      "  epochs: 2\n"
                      "  batch: 6\n"
                      "  optimiser: {lr: 0.05}\n"
                      "  val_eval_size: 4\n"
                      "%s"
                      "  models:\n"
                      "    - name: standard\n"
                      "    - name: calibrated\n"
                      "      defense: {name: calibrate, attack: {name: pgd, params: {eps: 0.1, "
                      "steps: 2}}, inner: {name: pgd-at}}\n"
                      "evaluate:\n"
                      "  batch: 4\n"
                      "  attacks: [{name: fgsm, params: {eps: 0.1}}]\n"
                      "output: {dir: '%s'}\n";
    snprintf(y, sizeof y, fmt, root, "", tout);
    tu_write_file(ypath, y, strlen(y));
    use_study(ypath, tout, saved_yaml, saved_out);
    assert_ok(run(0, 0, 0));
    json_object *r = read_report();
    json_object *ds = get(r, "dataset");
    assert_int_equal(json_object_get_int(get(ds, "num_classes")), 3);
    assert_int_equal(json_object_get_int(get(ds, "train_size")), 24 - 6);
    assert_int_equal(json_object_get_int(get(ds, "val_size")), 6);
    assert_int_equal(json_object_get_int(get(ds, "test_size")), 9);
    json_object *models = get(r, "models");
    assert_int_equal(json_object_array_length(models), 2);
    for (size_t mi = 0; mi < 2; mi++) {
        json_object *m = json_object_array_get_idx(models, mi);
        json_object *rows = get(json_object_array_get_idx(get(m, "attacks"), 0), "per_class");
        int64_t count = 0;
        for (size_t k = 0; k < 3; k++)
            count += json_object_get_int64(get(json_object_array_get_idx(rows, k), "count"));
        assert_int_equal(count, 9);
    }
    assert_true(exists(tout, "standard.safetensors"));
    assert_true(exists(tout, "calibrated.safetensors"));
    /* The calibrated model's finish step saw the validation images. */
    json_object *cal = get(json_object_array_get_idx(models, 1), "calibration");
    assert_true(json_object_get_boolean(get(cal, "enabled")));
    /* Each epoch was validated on the held-out images. */
    json_object *eps = get(json_object_array_get_idx(models, 0), "epochs");
    assert_int_equal(json_object_array_length(eps), 2);
    for (size_t e = 0; e < 2; e++) {
        json_object *v = get(json_object_array_get_idx(eps, e), "validation");
        assert_int_equal(json_object_get_type(v), json_type_object);
    }

    /* Stopped inside the first epoch (3 batches an epoch), then resumed. */
    resumes_to(r, tout, 2, 0);
    json_object_put(r);

    /* train.augment belongs to in-memory sets. */
    snprintf(y, sizeof y, fmt, root, "  augment: true\n", tout);
    clasp_plan *p = NULL;
    assert_int_equal(clasp_plan_parse(reg, y, strlen(y), "tv.yaml", &p), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "train.augment applies to"));

    /* A validation folder with a class the training folder lacks. */
    snprintf(path, sizeof path, "%s/val/dog", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/val/dog/00.png", root);
    write_class_png(path, 0, 99);
    rm_tree(tout);
    snprintf(y, sizeof y, fmt, root, "", tout);
    tu_write_file(ypath, y, strlen(y));
    assert_int_equal(run(0, 0, 0), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "different classes"));
    assert_non_null(strstr(clasp_last_error(), "/tv/train"));
    /* No training folder at all: the test images alone. */
    snprintf(path, sizeof path, "%s/val", root);
    snprintf(y, sizeof y, fmt, path, "", tout);
    tu_write_file(ypath, y, strlen(y));
    rm_tree(tout);
    assert_int_equal(run(0, 0, 0), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "/train"));
    assert_non_null(strstr(clasp_last_error(), "training needs the training images"));
    use_study(saved_yaml, saved_out, NULL, NULL);
}

static void test_check_estimates_time(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI must name the clasp program");
    write_yaml(5);
    char cmd[900], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' check --time '%s' 2>&1", cli, yaml_path);
    assert_int_equal(tu_run(cmd, out, sizeof out), 0);
    const char *t = strstr(out, "estimated time on this device");
    if (!t) fail_msg("no time estimate in:\n%s", out);
    /* The measured pass, then a line per phase with a unit. */
    const char *b = strstr(t, "batch ");
    assert_non_null(b);
    int batch = 0;
    double ms = 0;
    assert_int_equal(sscanf(b, "batch %d: %lf ms", &batch, &ms), 2);
    assert_int_equal(batch, 40);
    assert_true(ms > 0);
    const char *e = strstr(t, "  evaluation ");
    assert_non_null(e);
    double v = -1;
    char unit[8] = "";
    assert_int_equal(sscanf(e + 13, "%lf %7s", &v, unit), 2);
    assert_true(v >= 0);
    assert_true(!strcmp(unit, "s") || !strcmp(unit, "min") || !strcmp(unit, "h"));
}

/* `clasp attack --groups FILE` prints each group's clean and robust
 * accuracy: the sums of the per-class table's rows (MNIST's classes are
 * named by their digits; a name here, an index there). A bad file stops
 * the command with exit status 2 and the file's line, before the model is
 * even read. */
static void test_attack_command_groups(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI must name the clasp program");
    char model[400], groups[400], cmd[3000], text[16384];
    snprintf(model, sizeof model, "%s/groups-model.safetensors", dir);
    snprintf(groups, sizeof groups, "%s/attack-groups.txt", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' train --dataset mnist --data '%s' --epochs 1 --batch 32 --limit 100 --arch "
             "'conv3x3-4p1,relu,maxpool2,flatten,fc10' --save '%s' >/dev/null 2>&1",
             cli, dir, model);
    assert_int_equal(tu_run(cmd, text, sizeof text), 0);
    static const char g[] = "0\tlow\r\n1\tlow\r\n# the rest by index\r\n2,high\r\n9,high\r\n";
    tu_write_file(groups, g, sizeof g - 1);
    snprintf(cmd, sizeof cmd,
             "'%s' attack --model '%s' --dataset mnist --data '%s' --attack fgsm --set eps=0.1 "
             "--samples 100 --groups '%s' 2>/dev/null",
             cli, model, dir, groups);
    assert_int_equal(tu_run(cmd, text, sizeof text), 0);
    const char *t = strstr(text, "per class group (");
    if (!t) fail_msg("no group table in:\n%s", text);
    /* The per-class table: "  NAME  n  clean%  robust%". */
    long n[10] = {0};
    double clean[10] = {0}, robust[10] = {0};
    for (int k = 0; k < 10; k++) {
        char key[16];
        snprintf(key, sizeof key, "\n  %d ", k);
        const char *row = strstr(text, key);
        assert_non_null(row);
        assert_int_equal(sscanf(row + strlen(key), "%ld %lf%% %lf%%", &n[k], &clean[k], &robust[k]),
                         3);
    }
    static const char *const names[3] = {"low", "high", "(unlisted)"};
    static const int group_of[10] = {0, 0, 1, 2, 2, 2, 2, 2, 2, 1};
    for (int gi = 0; gi < 3; gi++) {
        long want_n = 0, classes = 0;
        double want_clean = 0, want_robust = 0; /* correct examples */
        for (int k = 0; k < 10; k++)
            if (group_of[k] == gi) {
                classes++, want_n += n[k];
                want_clean += clean[k] * (double)n[k] / 100;
                want_robust += robust[k] * (double)n[k] / 100;
            }
        char key[40];
        snprintf(key, sizeof key, "\n  %s ", names[gi]);
        const char *row = strstr(t, key);
        if (!row) fail_msg("no row '%s' in:\n%s", names[gi], t);
        int got_classes = 0;
        long got_n = 0;
        double gc = 0, gr = 0;
        assert_int_equal(sscanf(row + strlen(key), "%d %ld %lf%% %lf%%", &got_classes, &got_n, &gc,
                                &gr),
                         4);
        assert_int_equal(got_classes, classes);
        assert_int_equal(got_n, want_n);
        /* Rates printed to 0.01 %: the counts they stand for agree. */
        assert_true(fabs(gc * (double)got_n / 100 - want_clean) < 0.05);
        assert_true(fabs(gr * (double)got_n / 100 - want_robust) < 0.05);
    }
    /* Bad files: exit status 2, the file and line, before the model. */
    static const char *const bad[][2] = {
        {"0,low\n0,high\n", ":2: class '0' is listed twice"},
        {"0,low\nseven,high\n", ":2: unknown class 'seven'"},
        {"0,low\n\x01\x02\x03\n", ":2: control byte 0x01"},
    };
    for (int i = 0; i < 3; i++) {
        tu_write_file(groups, bad[i][0], strlen(bad[i][0]));
        snprintf(cmd, sizeof cmd,
                 "'%s' attack --model '%s' --dataset mnist --data '%s' --attack fgsm --samples 10 "
                 "--groups '%s' 2>&1",
                 cli, i == 1 ? model : "no-such-model.safetensors", dir, groups);
        assert_int_equal(tu_run(cmd, text, sizeof text), 2);
        if (!strstr(text, groups) || !strstr(text, bad[i][1]))
            fail_msg("expected '%s%s' in:\n%s", groups, bad[i][1], text);
        assert_null(strstr(text, "no-such-model"));
    }
    remove(groups);
    remove(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run),
        cmocka_unit_test_teardown(test_interrupt_and_resume, free_reference),
        cmocka_unit_test(test_resume_refusals),
        cmocka_unit_test(test_exclude_classes_run),
        cmocka_unit_test(test_failures_leave_no_report),
        cmocka_unit_test(test_ensemble_run),
        cmocka_unit_test(test_checkpoint_study),
        cmocka_unit_test(test_check_estimates_time),
        cmocka_unit_test(test_image_folder_study),
        cmocka_unit_test(test_image_folder_training),
        cmocka_unit_test(test_train_alone_is_the_runners_training),
        cmocka_unit_test(test_runner_options_not_environment),
        cmocka_unit_test(test_train_command_is_the_runners_training),
        cmocka_unit_test(test_attack_command_groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
