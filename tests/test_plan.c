/* Experiment files: YAML errors with exact file:line:col, defaults, grids,
 * anchors and merge keys, and the resolved YAML parsing back to the same
 * plan. Uses the built plugins (CLASP_PLUGIN_PATH from the test env). */
#include "clasp/data.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clasp/ensemble.h"
#include "clasp/batch.h"
#include "clasp/experiment.h"
#include "experiment/plan_internal.h"

static clasp_registry *reg;
/* This test links libclasp's static library (for the schema tables,
 * plan_internal.h) and loads the plugins, which bring libclasp.so along:
 * the same globals twice, which AddressSanitizer calls an ODR violation.
 * The executable exports its copy (-rdynamic) and the plugins bind to it,
 * so only one is used; the check is off for this program alone (its
 * defaults, under what ASAN_OPTIONS sets). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_odr_violation=0";
}

static int setup(void **state)
{
    (void)state;
    if (clasp_registry_open(&reg) != CLASP_OK) return -1;
    const clasp_plugin_desc *d;
    /* The plugins these tests name must be there. */
    const char *need[] = {"fgsm", "pgd", "tpgd"};
    for (int i = 0; i < 3; i++)
        if (clasp_registry_find(reg, need[i], CLASP_PLUGIN_ATTACK, &d) != CLASP_OK) {
            fprintf(stderr, "%s\n", clasp_last_error());
            return -1;
        }
    if (clasp_registry_find(reg, "pgd-at", CLASP_PLUGIN_DEFENSE, &d) != CLASP_OK) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clasp_registry_free(reg);
    return 0;
}

static clasp_plan *parse_ok(const char *text)
{
    clasp_plan *p = NULL;
    clasp_status st = clasp_plan_parse(reg, text, strlen(text), "t.yaml", &p);
    if (st != CLASP_OK) fail_msg("expected a valid plan, got: %s", clasp_last_error());
    return p;
}

/* The error message of a plan that must fail. */
static const char *parse_err(const char *text)
{
    static char msg[2048];
    clasp_plan *p = NULL;
    clasp_status st = clasp_plan_parse(reg, text, strlen(text), "t.yaml", &p);
    if (st == CLASP_OK) {
        clasp_plan_free(p);
        fail_msg("expected an error for:\n%s", text);
    }
    assert_null(p);
    snprintf(msg, sizeof msg, "%s", clasp_last_error());
    return msg;
}

/* "t.yaml:L:C" of `token` on the first line of text containing `line`:
 * the test states where the error must point without counting columns by
 * hand. */
static const char *loc_of(const char *text, const char *line, const char *token)
{
    static char buf[64];
    int ln = 1;
    for (const char *s = text; *s;) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        char cur[512];
        snprintf(cur, sizeof cur, "%.*s", (int)len, s);
        if (strstr(cur, line)) {
            const char *t = strstr(strstr(cur, line), token);
            if (!t) t = strstr(cur, token);
            assert_non_null(t);
            snprintf(buf, sizeof buf, "t.yaml:%d:%d: ", ln, (int)(t - cur) + 1);
            return buf;
        }
        if (!eol) break;
        s = eol + 1, ln++;
    }
    fail_msg("no line containing '%s'", line);
    return NULL;
}

#define assert_has(msg, part)                                                             \
    do {                                                                                  \
        if (!strstr((msg), (part))) fail_msg("message lacks '%s':\n  %s", (part), (msg)); \
    } while (0)

#define assert_starts(msg, prefix)                                              \
    do {                                                                        \
        if (strncmp((msg), (prefix), strlen(prefix)) != 0)                      \
            fail_msg("message should start with '%s':\n  %s", (prefix), (msg)); \
    } while (0)

static const char *param(const clasp_plan_plugin *p, const char *key)
{
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->keys[i], key)) return p->values[i];
    fail_msg("no parameter %s in %s", key, p->name);
    return NULL;
}

#define BASE_HEAD "experiment:\n  name: t\n"
#define BASE_TRAIN "train:\n  models:\n    - name: standard\n"
#define BASE_EVAL "evaluate:\n  attacks:\n    - fgsm\n"

/* Zoo names in YAML: model.zoo sets every model's architecture and
 * normalisation; a model entry's zoo needs its checkpoint; an unsupported
 * or misspelt name is an error at the name. */
static void test_zoo_models(void **state)
{
    (void)state;
    clasp_plan *p = parse_ok("experiment: {name: z}\ndata: {dataset: cifar10, path: /x}\n"
                             "model: {zoo: Carmon2019Unlabeled}\n" BASE_TRAIN BASE_EVAL);
    assert_string_equal(p->arch, "wrn-28-10");
    assert_int_equal(p->normalize, 0);
    clasp_plan_free(p);
    const char *e = parse_err("experiment: {name: z}\ndata: {dataset: cifar10, path: /x}\n"
                              "models: [{name: a, zoo: Carmon2019Unlabeled}]\n" BASE_EVAL);
    assert_non_null(strstr(e, "needs its weights"));
    e = parse_err("experiment: {name: z}\ndata: {dataset: cifar10, path: /x}\n"
                  "model: {zoo: Carmon2019Unlabeld}\n" BASE_TRAIN BASE_EVAL);
    assert_non_null(strstr(e, "Carmon2019Unlabeled"));
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    clasp_plan *p = parse_ok(BASE_HEAD BASE_TRAIN BASE_EVAL);
    assert_string_equal(p->name, "t");
    assert_int_equal(p->seed, 1);
    assert_null(p->device);
    assert_string_equal(p->dataset, "fashion-mnist");
    assert_string_equal(p->data_path, "/usr/share/datasets/fashion-mnist");
    assert_int_equal(p->val_size, 5000);
    assert_int_equal(p->train_size, 0);
    assert_string_equal(p->arch, "default");
    assert_int_equal(p->epochs, 10);
    assert_int_equal(p->batch, 128);
    assert_true(p->lr == 0.05 && p->momentum == 0.9 && p->weight_decay == 5e-4);
    assert_int_equal(p->schedule, CLASP_LR_COSINE);
    assert_int_equal(p->val_eval_size, 1000);
    assert_int_equal(p->test_size, 0);
    assert_int_equal(p->eval_batch, 200);
    assert_string_equal(p->output, "runs/t");
    assert_int_equal(p->n_models, 1);
    assert_string_equal(p->models[0].name, "standard");
    assert_string_equal(p->models[0].file, "standard");
    assert_null(p->models[0].defense);
    assert_null(clasp_plan_model_attack(&p->models[0]));
    assert_int_equal(p->n_attacks, 1);
    assert_string_equal(p->attacks[0].label, "fgsm");
    assert_string_equal(param(&p->attacks[0].plugin, "eps"), "0.1"); /* the plugin's default */
    /* cosine: lr at the start, half way at the middle, ~0 at the end */
    assert_true(clasp_plan_lr(p, 0, 0, 10) == 0.05);
    assert_true(fabs(clasp_plan_lr(p, 5, 0, 10) - 0.025) < 1e-12);
    clasp_plan_free(p);
}

static void test_values_and_step_schedule(void **state)
{
    (void)state;
    const char *y =
        BASE_HEAD "  seed: 7\n  device: cpu\n"
                  "data: {dataset: mnist, path: /tmp/x, val_size: 100, train_size: 500}\n"
                  "model: {arch: 'conv3x3-8p1,relu,maxpool2,flatten,fc10'}\n"
                  "train:\n  epochs: 4\n  batch: 32\n"
                  "  optimiser: {name: sgd, lr: 0.1, momentum: 0, weight_decay: 0}\n"
                  "  schedule: {name: step, milestones: [2, 3], gamma: 0.5}\n"
                  "  val_eval_size: 0\n"
                  "  models: [{name: plain}]\n"
                  "evaluate: {test_size: 300, batch: 50, attacks: [pgd]}\n"
                  "output: {dir: /tmp/out}\n";
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->seed, 7);
    assert_string_equal(p->device, "cpu");
    assert_string_equal(p->dataset, "mnist");
    assert_string_equal(p->data_path, "/tmp/x");
    assert_int_equal(p->train_size, 500);
    assert_string_equal(p->arch, "conv3x3-8p1,relu,maxpool2,flatten,fc10");
    assert_int_equal(p->schedule, CLASP_LR_STEP);
    assert_int_equal(p->n_milestones, 2);
    assert_true(clasp_plan_lr(p, 1, 5, 10) == 0.1);
    assert_true(clasp_plan_lr(p, 2, 0, 10) == 0.05);
    assert_true(clasp_plan_lr(p, 3, 0, 10) == 0.025);
    assert_int_equal(p->test_size, 300);
    assert_string_equal(p->output, "/tmp/out");
    clasp_plan_free(p);
}

/* ---- errors: each kind, with its exact location -------------------------- */

static void test_error_unknown_keys(void **state)
{
    (void)state;
    const char *y = BASE_HEAD "trian:\n  models: [{name: a}]\n" BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "trian", "trian"));
    assert_has(m, "unknown key 'trian'");
    assert_has(m, "did you mean 'train'?");
    assert_has(m, "known: experiment, data, model, train, models, evaluate, output");

    y = BASE_HEAD "train:\n  epoch: 3\n  models: [{name: a}]\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "epoch: 3", "epoch"));
    assert_has(m, "unknown key 'epoch' in train (did you mean 'epochs'?)");
    assert_has(m, "known: epochs, batch, optimiser, schedule, val_eval_size, augment, models");

    y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - name: pgd\n      params: {epss: 0.1}\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "epss", "epss"));
    assert_has(m, "unknown parameter 'epss' (did you mean 'eps'?)");
    assert_has(m, "known: eps, alpha, steps");
}

/* Every name the loader knows is a valid data.dataset; others are refused
 * with the list. */
static void test_dataset_names(void **state)
{
    (void)state;
    for (int i = 0; clasp_dataset_names[i]; i++) {
        char y[512];
        /* Image folders are evaluated only: a study of a checkpoint. */
        int streamed = !strcmp(clasp_dataset_names[i], "imagefolder") ||
                       !strcmp(clasp_dataset_names[i], "imagenet");
        snprintf(y, sizeof y, BASE_HEAD "data: {dataset: %s, path: /tmp/x}\n%s" BASE_EVAL,
                 clasp_dataset_names[i],
                 streamed ? "models: [{name: m, checkpoint: /dev/null}]\n" : BASE_TRAIN);
        clasp_plan *p = parse_ok(y);
        assert_string_equal(p->dataset, clasp_dataset_names[i]);
        clasp_plan_free(p);
    }
    const char *y = BASE_HEAD "data: {dataset: cifar1000, path: /tmp/x}\n" BASE_TRAIN BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "cifar1000", "cifar1000"));
    assert_has(m, "cifar100, cifar100-coarse, svhn, stl10");
    y = BASE_HEAD "data: {dataset: svhn}\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "the svhn data set needs 'path'");
}

/* data.dataset imagefolder / imagenet: the image-folder keys, their
 * defaults in the resolved text, training on DIR/train with the split keys,
 * and the refusals (in-memory augmentation; image keys on other data
 * sets), each at its line. */
static void test_streamed_data(void **state)
{
    (void)state;
    const char *study = "models: [{name: m, checkpoint: /dev/null}]\n" BASE_EVAL;
    char y[1024];
    snprintf(y, sizeof y, BASE_HEAD "data: {dataset: imagenet, path: /tmp/x}\n%s", study);
    clasp_plan *p = parse_ok(y);
    assert_true(clasp_plan_streamed(p));
    assert_string_equal(p->data_preprocess, "Res256Crop224");
    assert_string_equal(p->data_subset, "all");
    char *text = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    assert_non_null(strstr(text, "preprocess: Res256Crop224"));
    assert_non_null(strstr(text, "skip_bad_images: false"));
    assert_null(strstr(text, "val_size")); /* nothing trains: no split */
    free(text);
    char h1[17], h2[17];
    assert_ok(clasp_plan_hash(p, h1, sizeof h1));
    clasp_plan_free(p);
    /* The decoding threads do not change the images: same hash. */
    snprintf(y, sizeof y,
             BASE_HEAD "data: {dataset: imagenet, path: /tmp/x, workers: 3, subset: "
                       "robustbench-5000, preprocess: none, skip_bad_images: true}\n%s",
             study);
    p = parse_ok(y);
    assert_int_equal(p->data_workers, 3);
    assert_int_equal(p->data_skip_bad, 1);
    assert_string_equal(p->data_subset, "robustbench-5000");
    assert_string_equal(p->data_preprocess, "none");
    clasp_plan_free(p);
    snprintf(y, sizeof y, BASE_HEAD "data: {dataset: imagenet, path: /tmp/x, workers: 3}\n%s",
             study);
    p = parse_ok(y);
    assert_ok(clasp_plan_hash(p, h2, sizeof h2));
    assert_string_equal(h1, h2);
    clasp_plan_free(p);

    snprintf(y, sizeof y,
             BASE_HEAD "data: {dataset: imagefolder, path: /x, preprocess: Res255}\n%s", study);
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "Res255", "Res255"));
    assert_has(m, "data.preprocess: unknown value 'Res255' (expected one of: Res256Crop224");
    const char *bad =
        BASE_HEAD "data: {dataset: mnist, path: /x, workers: 2}\n" BASE_TRAIN BASE_EVAL;
    m = parse_err(bad);
    assert_starts(m, loc_of(bad, "workers", "workers"));
    assert_has(m, "data.workers applies to image folders (data.dataset imagefolder or imagenet) "
                  "only");
    /* Training reads DIR/train: the split keys then count (emitted and
     * hashed), and the in-memory augmentation is refused. */
    const char *train = BASE_HEAD
        "data: {dataset: imagefolder, path: /x, val_size: 10, train_size: 50}\n" BASE_TRAIN
        "  epochs: 2\n" BASE_EVAL;
    p = parse_ok(train);
    assert_true(clasp_plan_trains(p));
    assert_int_equal(p->val_size, 10);
    assert_int_equal(p->train_size, 50);
    assert_int_equal(p->augment_pad, 0);
    assert_int_equal(p->augment_flip, 0);
    text = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    assert_non_null(strstr(text, "val_size: 10"));
    free(text);
    clasp_plan_free(p);
    const char *def =
        BASE_HEAD "data: {dataset: imagefolder, path: /x}\n"
                  "models: [{name: c, checkpoint: /dev/null, defense: calibrate}]\n" BASE_EVAL;
    p = parse_ok(def);
    assert_true(clasp_plan_trains(p));
    clasp_plan_free(p);
    const char *aug = BASE_HEAD "data: {dataset: imagefolder, path: /x}\n" BASE_TRAIN
                                "  augment: true\n" BASE_EVAL;
    m = parse_err(aug);
    assert_starts(m, loc_of(aug, "augment", "augment"));
    assert_has(m, "train.augment applies to data sets held in memory");
}

static void test_error_types(void **state)
{
    (void)state;
    const char *y = BASE_HEAD "train:\n  epochs: ten\n  models: [{name: a}]\n" BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "epochs: ten", "ten"));
    assert_has(m, "train.epochs expects a whole number in [1, 100000], got 'ten'");

    y = BASE_HEAD "train:\n  optimiser: 5\n  models: [{name: a}]\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "optimiser: 5", "5"));
    assert_has(m, "train.optimiser: expected a mapping");

    y = BASE_HEAD "train:\n  epochs: [1, 2]\n  models: [{name: a}]\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "epochs: [", "["));
    assert_has(m, "train.epochs expects a whole number, got a list");

    y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - {name: pgd, params: {steps: 2.5}}\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "steps: 2.5", "2.5"));
    assert_has(m, "pgd: steps expects an integer, got '2.5'");

    y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - {name: pgd, params: {eps: {a: 1}}}\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "eps: {", "{a"));
    assert_has(m, "expects a value or a list of values");
}

static void test_error_ranges(void **state)
{
    (void)state;
    const char *y = BASE_HEAD "train:\n  batch: 0\n  models: [{name: a}]\n" BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "batch: 0", "0"));
    assert_has(m, "train.batch must be in [1, 65536], got 0");
    /* The bound a value violates is the one named. */
    assert_has(parse_err("experiment:\n  name: t\n  seed: 1e99\n" BASE_TRAIN BASE_EVAL),
               "experiment.seed must be in [0, 2^53-1 = 9007199254740991], got 1e99");
    assert_has(parse_err("experiment:\n  name: t\n  seed: -1\n" BASE_TRAIN BASE_EVAL),
               "experiment.seed must be in [0, 2^53-1");

    y = BASE_HEAD "train:\n  optimiser: {lr: 0}\n  models: [{name: a}]\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "lr: 0", "0"));
    assert_has(m, "train.optimiser.lr must be in (0, 10], got 0");

    /* Plugin parameters: validated by the registry, located by the plan. */
    y = BASE_HEAD BASE_TRAIN
        "evaluate:\n  attacks:\n    - name: pgd\n      params:\n        eps: 2\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "eps: 2", "2"));
    assert_has(m, "pgd: eps must be in [0, 1], got 2");

    /* A bad grid element names its own column. */
    y = BASE_HEAD BASE_TRAIN
        "evaluate:\n  attacks:\n    - {name: tpgd, params: {T: [0.5, -1, 2]}}\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "T: [", "-1"));
    assert_has(m, "tpgd: T must be in [0.001, 1000], got -1");

    y = BASE_HEAD "train:\n  epochs: 3\n  schedule: {name: step, milestones: [1, 5]}\n  models: "
                  "[{name: a}]\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "milestones", "5"));
    assert_has(m, "in [1, 3]");
}

static void test_error_plugins(void **state)
{
    (void)state;
    const char *y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - pgdd\n";
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "- pgdd", "pgdd"));
    assert_has(m, "unknown attack 'pgdd' (available: ");
    assert_has(m, "fgsm");
    assert_has(m, "tpgd");

    y = BASE_HEAD "train:\n  models:\n    - defense: {name: pgd_at}\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "pgd_at", "pgd_at"));
    assert_has(m, "unknown defense 'pgd_at' (available: ");
    assert_has(m, "pgd-at");

    /* An attack where a defense belongs. */
    y = BASE_HEAD "train:\n  models:\n    - defense: fgsm\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "defense: fgsm", "fgsm"));
    assert_has(m, "not a defense");
}

static void test_error_missing(void **state)
{
    (void)state;
    const char *y = BASE_HEAD BASE_TRAIN;
    const char *m = parse_err(y);
    assert_starts(m, "t.yaml:1:1: ");
    assert_has(m, "missing required section 'evaluate'");

    y = "experiment:\n  seed: 3\n" BASE_TRAIN BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "seed: 3", "seed"));
    assert_has(m, "experiment: missing required key 'name'");

    y = BASE_HEAD "train:\n  epochs: 2\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "epochs: 2", "epochs"));
    assert_has(m, "train: missing required key 'models'");

    y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - params: {eps: 0.1}\n";
    m = parse_err(y);
    assert_starts(m, loc_of(y, "params: {eps", "params"));
    assert_has(m, "missing required key 'name'");

    y = BASE_HEAD "data: {dataset: mnist}\n" BASE_TRAIN BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "data: {", "{"));
    assert_has(m, "needs 'path'");

    m = parse_err("");
    assert_starts(m, "t.yaml:1:1: ");
    assert_has(m, "empty");
}

/* n distinct keys "kN: 1" at the top of an experiment, or (params) in a
 * pgd params block; malloc'd. */
static char *many_keys(int n, int params)
{
    size_t cap = (size_t)n * 32 + 512, len = 0;
    char *y = malloc(cap);
    assert_non_null(y);
    if (params)
        len += (size_t)snprintf(y, cap,
                                BASE_HEAD BASE_TRAIN
                                "evaluate:\n  attacks:\n    - name: pgd\n      params:\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(y + len, cap - len, "%sk%d: 1\n", params ? "        " : "", i);
    return y;
}

/* 100 000 keys are refused at once: duplicates are found through a hash
 * (the scan was quadratic: minutes), and an unknown key is told before a
 * key given twice. */
static void test_many_keys_refused_fast(void **state)
{
    (void)state;
    /* A duplicate before an unknown key: the unknown one is told. */
    const char *m = parse_err(BASE_HEAD "  name: u\n  colour: red\n" BASE_TRAIN BASE_EVAL);
    assert_has(m, "unknown key 'colour'");

    char *y = many_keys(100000, 0);
    m = parse_err(y);
    assert_starts(m, "t.yaml:1:1: ");
    assert_has(m, "unknown key 'k0'");
    free(y);

    y = many_keys(100000, 1);
    m = parse_err(y);
    assert_has(m, "k0");
    free(y);

    /* Duplicates inside params are still found. */
    m = parse_err(BASE_HEAD BASE_TRAIN
                  "evaluate:\n  attacks:\n    - name: pgd\n      params: {eps: 0.1, eps: 0.2}\n");
    assert_has(m, "key 'eps' is given twice");

    /* A file over the size limit is refused before it is parsed. */
    char dir[256], path[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    y = many_keys(200000, 0);
    tu_write_file(path, y, strlen(y));
    free(y);
    clasp_plan *p = NULL;
    assert_int_equal(clasp_plan_load(reg, path, &p), CLASP_ERR_CONFIG);
    assert_null(p);
    assert_non_null(strstr(clasp_last_error(), "the limit for an experiment file"));
    tu_rmdir(dir);
}

static void test_error_structure(void **state)
{
    (void)state;
    const char *y = BASE_HEAD "  name: u\n" BASE_TRAIN BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "name: u", "name"));
    assert_has(m, "key 'name' is given twice (also at t.yaml:2:3)");

    y = BASE_HEAD "train:\n  models:\n    - name: a\n    - name: a\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, "t.yaml:6:");
    assert_has(m, "two models are named 'a'");

    y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks: [fgsm, fgsm]\n";
    m = parse_err(y);
    assert_has(m, "two attacks are labelled 'fgsm'");

    y = "experiment:\n  name: [t\n";
    m = parse_err(y);
    assert_starts(m, "t.yaml:3:1: ");
    assert_has(m, "YAML syntax");

    /* The defense env carries one attack and one inner defense. */
    y = BASE_HEAD "train:\n  models:\n    - defense:\n        name: reweight\n        attack: pgd\n"
                  "        inner: {name: pgd-at, attack: fgsm}\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "attack: fgsm", "fgsm"));
    assert_has(m, "two inner attacks");

    y = BASE_HEAD "train:\n  models:\n    - defense:\n        name: reweight\n"
                  "        inner: {name: calibrate, inner: {name: pgd-at}}\n" BASE_EVAL;
    m = parse_err(y);
    assert_starts(m, loc_of(y, "inner: {name: calibrate", "inner: {name: pgd"));
    assert_has(m, "cannot wrap another");

    y = BASE_HEAD "train:\n  models:\n    - name: state\n" BASE_EVAL;
    m = parse_err(y);
    assert_has(m, "may not be named 'state'");
}

/* ---- grids ---------------------------------------------------------------- */

static void test_grid_attacks(void **state)
{
    (void)state;
    const char *y = BASE_HEAD BASE_TRAIN
        "evaluate:\n  attacks:\n    - fgsm\n    - {name: tpgd, params: {steps: 5, T: [0.5, 1, 2, "
        "4]}}\n"
        "    - {name: pgd, label: P, params: {eps: [0.05, 0.1], steps: [5, 10, 20]}}\n";
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_attacks, 1 + 4 + 6);
    const char *labels[] = {"fgsm",
                            "tpgd T=0.5",
                            "tpgd T=1",
                            "tpgd T=2",
                            "tpgd T=4",
                            "P eps=0.05 steps=5",
                            "P eps=0.05 steps=10",
                            "P eps=0.05 steps=20",
                            "P eps=0.1 steps=5",
                            "P eps=0.1 steps=10",
                            "P eps=0.1 steps=20"};
    for (int i = 0; i < 11; i++) assert_string_equal(p->attacks[i].label, labels[i]);
    assert_string_equal(param(&p->attacks[2].plugin, "T"), "1");
    assert_string_equal(param(&p->attacks[4].plugin, "T"), "4");
    assert_string_equal(param(&p->attacks[4].plugin, "steps"), "5");
    assert_string_equal(param(&p->attacks[9].plugin, "eps"), "0.1");
    assert_string_equal(param(&p->attacks[9].plugin, "steps"), "10");
    assert_string_equal(p->attacks[9].plugin.name, "pgd");
    clasp_plan_free(p);
}

static void test_grid_models(void **state)
{
    (void)state;
    const char *y = BASE_HEAD
        "train:\n  models:\n    - name: standard\n"
        "    - defense: {name: pgd-at, attack: {name: pgd, params: {eps: [0.05, 0.1], steps: 3}}}\n"
        "    - name: tied\n      defense:\n        name: trades\n        params: {eps: &e [0.05, "
        "0.1]}\n"
        "        attack: {name: pgd, params: {eps: *e}}\n" BASE_EVAL;
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_models, 1 + 2 + 2); /* an aliased list is one axis */
    assert_string_equal(p->models[1].name, "pgd-at eps=0.05");
    assert_string_equal(p->models[1].file, "pgd-at_eps=0.05");
    assert_string_equal(p->models[2].name, "pgd-at eps=0.1");
    const clasp_plan_plugin *a = clasp_plan_model_attack(&p->models[2]);
    assert_non_null(a);
    assert_string_equal(param(a, "eps"), "0.1");
    assert_string_equal(param(a, "steps"), "3");
    assert_string_equal(p->models[3].name, "tied eps=0.05");
    assert_string_equal(p->models[4].name, "tied eps=0.1");
    for (int i = 3; i < 5; i++)
        assert_string_equal(param(&p->models[i].defense->plugin, "eps"),
                            param(clasp_plan_model_attack(&p->models[i]), "eps"));
    clasp_plan_free(p);
}

/* ---- anchors, aliases, merge keys ---------------------------------------- */

static void test_anchors(void **state)
{
    (void)state;
    const char *y = BASE_HEAD
        "train:\n  models:\n    - name: r\n      defense:\n        name: reweight\n"
        "        inner: {name: pgd-at, attack: {name: pgd, params: &strong {eps: 0.2, steps: 3}}}\n"
        "evaluate:\n  attacks:\n    - {name: pgd, params: *strong}\n"
        "    - {name: pgd, label: longer, params: {<<: *strong, steps: 7}}\n"
        "    - {name: tpgd, params: {<<: *strong, T: 2}}\n";
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_attacks, 3);
    assert_string_equal(param(&p->attacks[0].plugin, "eps"), "0.2");
    assert_string_equal(param(&p->attacks[0].plugin, "steps"), "3");
    assert_string_equal(param(&p->attacks[1].plugin, "eps"), "0.2");
    assert_string_equal(param(&p->attacks[1].plugin, "steps"),
                        "7"); /* own key wins over the merge */
    assert_string_equal(param(&p->attacks[2].plugin, "T"), "2");
    /* The wrapper's inner block supplies the model's attack. */
    const clasp_plan_plugin *a = clasp_plan_model_attack(&p->models[0]);
    assert_non_null(a);
    assert_string_equal(a->name, "pgd");
    assert_string_equal(param(a, "eps"), "0.2");
    assert_non_null(p->models[0].defense->inner);
    assert_string_equal(p->models[0].defense->inner->plugin.name, "pgd-at");
    clasp_plan_free(p);
}

/* ---- the resolved YAML ---------------------------------------------------- */

/* model: presets with depth and width, input normalisation; train.augment
 * and its per-data-set default; both survive the resolved YAML. */
static void test_models_and_augment(void **state)
{
    (void)state;
    const char *y = BASE_HEAD "data: {dataset: cifar10, path: /tmp/x}\n"
                              "model: {arch: wrn, depth: 16, width: 2, normalize: {mean: [0.5, "
                              "0.4, 0.3], std: [0.2, 0.2, 0.25]}}\n" BASE_TRAIN BASE_EVAL;
    clasp_plan *p = parse_ok(y);
    assert_string_equal(p->arch, "wrn-16-2");
    assert_int_equal(p->normalize, 3);
    assert_true(p->norm_std[2] == 0.25f);
    assert_int_equal(p->augment_pad, 4); /* CIFAR: on by default */
    assert_true(p->augment_flip);
    char *text = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    clasp_plan *q = NULL;
    assert_ok(clasp_plan_parse(reg, text, strlen(text), "resolved.yaml", &q));
    assert_string_equal(q->arch, "wrn-16-2");
    assert_int_equal(q->normalize, 3);
    assert_true(q->norm_mean[1] == 0.4f);
    assert_int_equal(q->augment_pad, 4);
    free(text);
    clasp_plan_free(q);
    clasp_plan_free(p);

    p = parse_ok(BASE_HEAD
                 "model: {arch: preact-resnet18, width: 16}\n"
                 "train:\n  augment: {crop: 2, flip: false}\n  models: [{name: s}]\n" BASE_EVAL);
    assert_string_equal(p->arch, "preact-resnet18-w16");
    assert_int_equal(p->augment_pad, 2);
    assert_false(p->augment_flip);
    clasp_plan_free(p);
    p = parse_ok(BASE_HEAD BASE_TRAIN BASE_EVAL); /* Fashion-MNIST: off */
    assert_int_equal(p->augment_pad, 0);
    assert_false(p->augment_flip);
    clasp_plan_free(p);

    y = BASE_HEAD "model: {arch: wrn, depth: 20}\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "must be 6n+4");
    y = BASE_HEAD "model: {arch: default, depth: 16}\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "model.depth applies to arch 'wrn' only");
    y = BASE_HEAD
        "model: {arch: resnet18, normalize: {mean: [0.5], std: [0]}}\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "each value must be a positive number");
    y = BASE_HEAD
        "model: {arch: resnet18, normalize: {mean: [0.5, 0.5], std: [1]}}\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "mean has 2 values, std 1");
    y = BASE_HEAD "train:\n  augment: maybe\n  models: [{name: s}]\n" BASE_EVAL;
    const char *m = parse_err(y);
    assert_starts(m, loc_of(y, "augment: maybe", "maybe"));
    assert_has(m, "train.augment expects true, false");
}

/* Aliases make small files that expand enormously; each such file must be
 * refused at once with a message, not parsed for minutes. */
static void test_alias_blowups(void **state)
{
    (void)state;
    /* Merge lists naming the same anchor 16 times, 7 levels deep: 16^7
     * visits if merged naively. */
    char node[4096], prev[4096], y[40000];
    snprintf(node, sizeof node, "&a0 {x: 1}");
    for (int k = 1; k < 8; k++) {
        memcpy(prev, node, sizeof prev);
        int len = snprintf(node, sizeof node, "&a%d {<<: [%s", k, prev);
        for (int i = 0; i < 15; i++)
            len += snprintf(node + len, sizeof node - (size_t)len, ", *a%d", k - 1);
        snprintf(node + len, sizeof node - (size_t)len, "]}");
    }
    snprintf(y, sizeof y, "experiment: {<<: [%s], name: t}\n" BASE_TRAIN BASE_EVAL, node);
    const char *m = parse_err(y);
    assert_starts(m, "t.yaml:1:");
    assert_has(m, "merge keys ('<<') bring in more than 256 mappings");

    /* More than 16 mappings in one merge list were silently ignored. */
    int len = snprintf(y, sizeof y, "experiment: {<<: [&b {seed: 2}");
    for (int i = 0; i < 16; i++) len += snprintf(y + len, sizeof y - (size_t)len, ", *b");
    snprintf(y + len, sizeof y - (size_t)len, "], name: t}\n" BASE_TRAIN BASE_EVAL);
    assert_has(parse_err(y), "more than 16 merged mappings in one mapping");

    /* A 1024-point grid repeated through an alias: a hundred thousand
     * models (or attacks) before the cap, each checked against the rest. */
    static const char grid[] = "{eps: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08],"
                               " steps: [1, 2, 3, 4, 5, 6, 7, 8], alpha: [0, 0.1, 0.2, 0.25, 0.3,"
                               " 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1]}";
    len =
        snprintf(y, sizeof y,
                 BASE_HEAD BASE_EVAL
                 "train:\n  models:\n"
                 "    - {name: m0, defense: &d {name: pgd-at, attack: {name: pgd, params: %s}}}\n",
                 grid);
    for (int i = 1; i < 3; i++)
        len += snprintf(y + len, sizeof y - (size_t)len, "    - {name: m%d, defense: *d}\n", i);
    m = parse_err(y);
    assert_starts(m, loc_of(y, "name: m1", "m1"));
    assert_has(m, "train.models expands to more than 1024 models (grids included)");

    snprintf(y, sizeof y,
             BASE_HEAD BASE_TRAIN
             "evaluate:\n  attacks:\n"
             "    - {name: pgd, params: &g %s}\n    - {name: pgd, label: again, params: *g}\n",
             grid);
    m = parse_err(y);
    assert_starts(m, loc_of(y, "label: again", "{"));
    assert_has(m, "evaluate.attacks expands to more than 1024 attacks (grids included)");
}

static void test_resolved_roundtrip(void **state)
{
    (void)state;
    const char *y = BASE_HEAD
        "  seed: 11\n"
        "data: {dataset: mnist, path: '/tmp/a b', val_size: 50}\n"
        "train:\n  epochs: 5\n  schedule: {name: step, milestones: [2, 4], gamma: 0.3}\n"
        "  models:\n    - name: standard\n"
        "    - defense: {name: pgd-at, params: {mix: [0, 0.5]}, attack: {name: pgd, params: {eps: "
        "0.1}}}\n"
        "    - name: rw\n      defense: {name: reweight, inner: {name: pgd-at, attack: fgsm}}\n"
        "evaluate:\n  test_size: 100\n  attacks:\n    - {name: tpgd, params: {T: [0.5, 2]}}\n"
        "    - {name: fgsm, label: 'null', params: {eps: 0.3}}\n";
    clasp_plan *p = parse_ok(y);
    char *text = NULL, *text2 = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    clasp_plan *q = NULL;
    if (clasp_plan_parse(reg, text, strlen(text), "resolved.yaml", &q) != CLASP_OK)
        fail_msg("resolved YAML does not parse: %s\n%s", clasp_last_error(), text);
    assert_ok(clasp_plan_to_yaml(q, 1, &text2));
    assert_string_equal(text, text2);
    assert_int_equal(q->n_models, p->n_models);
    assert_int_equal(q->n_attacks, p->n_attacks);
    for (int i = 0; i < p->n_models; i++) {
        assert_string_equal(q->models[i].name, p->models[i].name);
        assert_string_equal(q->models[i].file, p->models[i].file);
    }
    for (int i = 0; i < p->n_attacks; i++) {
        assert_string_equal(q->attacks[i].label, p->attacks[i].label);
        assert_string_equal(q->attacks[i].plugin.params_text, p->attacks[i].plugin.params_text);
    }
    assert_string_equal(q->attacks[2].label, "null"); /* quoted on the way out */
    assert_string_equal(q->data_path, "/tmp/a b");
    assert_int_equal(q->seed, 11);
    assert_int_equal(q->n_milestones, 2);
    /* Every default is written out. */
    assert_non_null(strstr(text, "weight_decay: 0.0005"));
    assert_non_null(strstr(text, "rand_init: true"));
    /* The hash ignores the output folder, not the rest. */
    char h1[17], h2[17], h3[17];
    assert_ok(clasp_plan_hash(p, h1, sizeof h1));
    assert_ok(clasp_plan_set_output(q, "/elsewhere"));
    assert_ok(clasp_plan_hash(q, h2, sizeof h2));
    assert_string_equal(h1, h2);
    q->seed = 12;
    assert_ok(clasp_plan_hash(q, h3, sizeof h3));
    assert_string_not_equal(h1, h3);
    free(text), free(text2);
    clasp_plan_free(q);
    clasp_plan_free(p);
}

static void test_estimate(void **state)
{
    (void)state;
    const char *y =
        BASE_HEAD "train:\n  epochs: 2\n  val_eval_size: 10\n  models:\n    - name: s\n"
                  "    - defense: {name: pgd-at, attack: {name: pgd, params: {steps: 4}}}\n"
                  "evaluate:\n  attacks: [fgsm, {name: pgd, params: {steps: 9, restarts: 2}}]\n";
    clasp_plan *p = parse_ok(y);
    clasp_plan_work w;
    clasp_plan_estimate(p, 100, 50, 20, &w);
    assert_true(w.train == 2 * 100 * 1 + 2 * 100 * 5.0);
    assert_true(w.validate == 2 * 10 * 1 + 2 * 10 * 5.0);
    assert_true(w.evaluate == 2 * 20 * (2 + 19.0));
    clasp_plan_free(p);
}

/* ---- ensembles and the autoattack preset ------------------------------- */

static void test_ensembles(void **state)
{
    (void)state;
    const char *y = BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - fgsm\n"
                                         "    - {ensemble: [{name: fgsm, params: {eps: 0.2}}, "
                                         "{name: pgd, params: {eps: 0.2, steps: 3}}]}\n"
                                         "    - {label: twice, ensemble: [pgd, pgd]}\n"
                                         "    - {name: cw}\n";
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_attacks, 4);
    const clasp_plan_attack *e = &p->attacks[1];
    assert_string_equal(e->label, "ensemble(fgsm,pgd)");
    assert_int_equal(e->n_members, 2);
    assert_null(e->plugin.desc);
    assert_string_equal(param(&e->members[1], "steps"), "3");
    assert_true(clasp_plan_attack_linf_eps(e) == 0.2);
    assert_true(clasp_plan_attack_linf_eps(&p->attacks[0]) == 0.1);
    assert_true(clasp_plan_attack_linf_eps(&p->attacks[3]) == 0); /* cw has no eps */
    assert_string_equal(p->attacks[2].label, "twice");
    /* The resolved YAML writes ensembles out and reads back the same. */
    char *text = NULL, *text2 = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    clasp_plan *q = NULL;
    if (clasp_plan_parse(reg, text, strlen(text), "resolved.yaml", &q) != CLASP_OK)
        fail_msg("resolved YAML does not parse: %s\n%s", clasp_last_error(), text);
    assert_ok(clasp_plan_to_yaml(q, 1, &text2));
    assert_string_equal(text, text2);
    assert_int_equal(q->attacks[1].n_members, 2);
    assert_string_equal(q->attacks[1].label, "ensemble(fgsm,pgd)");
    free(text), free(text2);
    clasp_plan_free(q);
    /* Mixed budgets: not one L-inf budget. */
    clasp_plan *m = parse_ok(BASE_HEAD BASE_TRAIN
                             "evaluate:\n  attacks:\n"
                             "    - {ensemble: [{name: fgsm, params: {eps: 0.2}}, pgd]}\n");
    assert_true(clasp_plan_attack_linf_eps(&m->attacks[0]) == 0);
    clasp_plan_free(m);
    /* An ensemble costs what its members cost together (an upper bound). */
    clasp_plan_work w;
    clasp_plan_estimate(p, 0, 0, 1, &w);
    assert_true(w.evaluate == (1 + 1) + (1 + 1 + 3) + (1 + 20 + 20) + (1 + 5 * 100));
    clasp_plan_free(p);
}

static void test_ensemble_errors(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *token, *text;
    } cases[] = {
        {"{ensemble: []}", "[]",
         "ensemble expects a non-empty list of attack blocks ({name, params}), got an empty list"},
        {"{ensemble: fgsm}", "fgsm", "got a text value"},
        {"{name: mine, ensemble: [fgsm]}", "name", "an ensemble entry is named by 'label:'"},
        {"{ensemble: [fgsm], params: {eps: 1}}", "params", "an ensemble entry has no 'params:'"},
        {"{ensemble: [fgsm], lable: x}", "lable", "unknown key 'lable'"},
        {"{ensemble: [fgsm, {name: pgd, params: {epz: 1}}]}", "epz",
         "pgd: unknown parameter 'epz'"},
        {"{ensemble: [fgsm, {name: pgd, params: {eps: [0.1, 0.2]}}]}", "[0.1",
         "a list (a grid) inside an ensemble is not supported"},
        {"{ensemble: [fgsm, nosuch]}", "nosuch", "nosuch"},
        {"{ensemble: [fgsm, {ensemble: [pgd]}]}", "{ensemble: [pgd]}",
         "an ensemble cannot hold another ensemble"},
        {"{ensemble: [fgsm, autoattack]}", "autoattack",
         "an ensemble cannot hold another ensemble or the autoattack preset"},
        {"autoattack", "autoattack", "autoattack needs params: {eps: BUDGET}"},
        {"{name: autoattack, params: {eps: 0.1, version: slow}}", "slow",
         "autoattack version must be standard"},
        {"{name: autoattack, params: {eps: 0.1, steps: 3}}", "steps",
         "unknown key 'steps' in autoattack params"},
        {"{name: autoattack, params: {version: fast}}", "{version",
         "autoattack params: missing required key 'eps'"},
        {"{name: autoattack, params: {eps: []}}", "[]", "autoattack: eps is an empty list"},
        {"{name: autoattack, label: x, ensemble: [fgsm]}", "name",
         "an ensemble entry is named by 'label:'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char y[1024];
        snprintf(y, sizeof y, BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - fgsm\n    - %s\n",
                 cases[i].entry);
        const char *msg = parse_err(y);
        assert_starts(msg, loc_of(y, cases[i].entry, cases[i].token));
        assert_has(msg, cases[i].text);
    }
    /* Two entries with one label. */
    const char *y =
        BASE_HEAD BASE_TRAIN "evaluate:\n  attacks:\n    - {label: a, ensemble: [fgsm]}\n"
                             "    - {label: a, ensemble: [pgd]}\n";
    assert_has(parse_err(y), "two attacks are labelled 'a'");
}

/* The preset: its members where their plugins are loaded, else an error
 * that names the missing plugin at the entry. */
static void test_autoattack_preset(void **state)
{
    (void)state;
    const char *y = BASE_HEAD BASE_TRAIN
        "evaluate:\n  attacks:\n"
        "    - {name: autoattack, params: {eps: [0.05, 0.1], version: standard}}\n"
        "    - {name: autoattack, label: aa-fast, params: {eps: 0.1, version: fast}}\n";
    const char *names[] = {"apgd", "apgd-t", "fab", "square"};
    const clasp_plugin_desc *d;
    int missing = -1;
    for (int i = 0; i < 4 && missing < 0; i++)
        if (clasp_registry_find(reg, names[i], CLASP_PLUGIN_ATTACK, &d) != CLASP_OK) missing = i;
    clasp_error_clear();
    if (missing >= 0) {
        const char *msg = parse_err(y);
        char want[160];
        snprintf(want, sizeof want, "autoattack needs the attack plugin '%s', which is not loaded",
                 names[missing]);
        assert_has(msg, want);
        assert_starts(msg, loc_of(y, "eps: [0.05", "autoattack"));
        return;
    }
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_attacks, 3);
    assert_string_equal(p->attacks[0].label, "autoattack eps=0.05");
    assert_string_equal(p->attacks[1].label, "autoattack eps=0.1");
    assert_string_equal(p->attacks[2].label, "aa-fast");
    assert_int_equal(p->attacks[0].n_members, 4);
    assert_int_equal(p->attacks[2].n_members, 2);
    for (int j = 0; j < 4; j++) {
        assert_string_equal(p->attacks[1].members[j].name, names[j]);
        assert_string_equal(param(&p->attacks[1].members[j], "eps"), "0.1");
    }
    assert_true(clasp_plan_attack_linf_eps(&p->attacks[0]) == 0.05);
    clasp_plan_free(p);
}

/* `clasp attack --attack a,b --set k=v`. */
static void test_ensemble_spec(void **state)
{
    (void)state;
    clasp_ensemble e;
    const char *k[] = {"eps", "steps"}, *v[] = {"0.2", "4"}, *w[] = {"--set", "--set"};
    assert_ok(clasp_ensemble_from_spec(reg, "fgsm,pgd,pgd", k, v, w, 2, &e));
    assert_int_equal(e.n, 3);
    assert_string_equal(e.labels[0], "fgsm");
    assert_string_equal(e.labels[2], "pgd#2");
    /* eps reaches every member; steps only those that have it. */
    assert_true(clasp_params_num(clasp_attack_params(e.members[0]), "eps") == 0.2f ||
                fabs(clasp_params_num(clasp_attack_params(e.members[0]), "eps") - 0.2) < 1e-9);
    assert_true(clasp_params_num(clasp_attack_params(e.members[1]), "steps") == 4);
    clasp_ensemble_free(&e);
    const char *bk[] = {"T"}, *bv[] = {"1"};
    assert_int_equal(clasp_ensemble_from_spec(reg, "fgsm,pgd", bk, bv, w, 1, &e), CLASP_ERR_CONFIG);
    assert_has(clasp_last_error(), "no attack of 'fgsm,pgd' has a parameter 'T'");
    assert_int_equal(clasp_ensemble_from_spec(reg, "fgsm,,pgd", NULL, NULL, NULL, 0, &e),
                     CLASP_ERR_CONFIG);
    assert_has(clasp_last_error(), "a comma-separated list");
    assert_int_equal(clasp_ensemble_from_spec(reg, "fgsm,nosuch", NULL, NULL, NULL, 0, &e),
                     CLASP_ERR_NOT_FOUND);
    assert_has(clasp_last_error(), "nosuch");
    const char *vk[] = {"version"}, *vv[] = {"slow"};
    assert_int_equal(clasp_ensemble_from_spec(reg, "autoattack", vk, vv, w, 1, &e),
                     CLASP_ERR_CONFIG);
    assert_has(clasp_last_error(), "autoattack version must be standard");
    const char *bad_eps[] = {"2"};
    assert_int_equal(clasp_ensemble_from_spec(reg, "fgsm,pgd", k, bad_eps, w, 1, &e),
                     CLASP_ERR_CONFIG);
    assert_has(clasp_last_error(), "--set");
    assert_null(e.members);
}

/* The command line refuses a bad list before it loads anything: exit 2
 * and the message on stderr. */
static void test_attack_cli_lists(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) skip();
    static const struct {
        const char *args, *text;
    } cases[] = {
        {"--attack fgsm,pgd --set T=1", "--set: no attack of 'fgsm,pgd' has a parameter 'T'"},
        {"--attack fgsm,,pgd", "a comma-separated list"},
        {"--attack autoattack --set eps=0.1 --set version=slow",
         "autoattack version must be standard"},
        {"--attack fgsm,autoattack", "autoattack is a preset of its own"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], out[2048] = "";
        snprintf(cmd, sizeof cmd, "'%s' attack --model /nonexistent.safetensors %s 2>&1", cli,
                 cases[i].args);
        int code = tu_run(cmd, out, sizeof out);
        assert_int_equal(code, 2);
        assert_has(out, cases[i].text);
    }
}

/* Runs `clasp attack ARGS` with stderr; returns the exit code, output in out. */
static int attack_cli(const char *args, char *out, size_t size)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "'%s' attack --attack fgsm %s 2>&1", getenv("CLASP_CLI"), args);
    return tu_run(cmd, out, size);
}

/* An --arch that is no architecture, or that contradicts the checkpoint's
 * own, is refused before any work (it was ignored: the checkpoint's model
 * ran with exit 0). */
static void test_attack_cli_arch(void **state)
{
    (void)state;
    if (!getenv("CLASP_CLI")) skip();
    char dir[256], path[300], args[1024], out[4096];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    /* Metadata alone: the check comes before the weights are read. */
    const char *json = "{\"__metadata__\":{\"clasp.arch\":\"conv3x3-4p1,relu,flatten,fc10\"}}";
    unsigned char file[256];
    uint64_t len = strlen(json);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)(len >> (8 * i));
    memcpy(file + 8, json, len);
    tu_write_file(path, file, 8 + len);

    snprintf(args, sizeof args, "--model '%s' --arch resnet18", path);
    assert_int_equal(attack_cli(args, out, sizeof out), 2);
    assert_has(out, "--arch 'resnet18' contradicts");
    assert_has(out, "'conv3x3-4p1,relu,flatten,fc10'");

    snprintf(args, sizeof args, "--model '%s' --arch nonsense-arch", path);
    assert_int_equal(attack_cli(args, out, sizeof out), 2);
    assert_has(out, "--arch 'nonsense-arch' is not an architecture");
    assert_int_equal(attack_cli("--model /nonexistent.safetensors --arch nonsense-arch", out,
                                sizeof out),
                     2);
    assert_has(out, "is not an architecture");

    /* The checkpoint's own architecture, written differently, is no
     * contradiction: the run goes on (to fail later for want of data). */
    snprintf(args, sizeof args,
             "--model '%s' --arch 'conv3x3-4p1, relu, flatten, fc10' --data '%s/none'", path, dir);
    attack_cli(args, out, sizeof out);
    assert_null(strstr(out, "contradicts"));
    assert_null(strstr(out, "not an architecture"));
    tu_rmdir(dir);
}

/* Output paths are checked before any work: each case names data that
 * does not exist, so a check made after loading it (as before, after the
 * whole training or attack) would report the data instead. */
static void test_output_paths_checked_first(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) skip();
    char dir[256], cmd[1500], out[4096], file[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/f", dir);
    tu_write_file(file, "x", 1);
    const struct {
        const char *args, *text;
    } cases[] = {
        {"train --save /nonexistent/m.safetensors", "folder /nonexistent does not exist"},
        {"train --save '%s'", "is a folder; name the file"},
        {"train --save '%s/f/m.safetensors'", "/f is not a folder"},
        {"attack --model m.safetensors --attack fgsm --save-adv /nonexistent/a.safetensors",
         "folder /nonexistent does not exist"},
        {"attack --model m.safetensors --attack fgsm --save-adv '%s'", "is a folder"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[600];
        snprintf(args, sizeof args, cases[i].args, dir);
        snprintf(cmd, sizeof cmd, "'%s' %s --dataset mnist --data '%s/no-data' 2>&1", cli, args,
                 dir);
        int code = tu_run(cmd, out, sizeof out);
        if (code != 2 || !strstr(out, cases[i].text))
            fail_msg("clasp %s: exit %d, expected 2 and '%s'; got:\n%s", args, code, cases[i].text,
                     out);
    }
    unlink(file);
    tu_rmdir(dir);
}

/* `clasp check` knows this machine's devices: a device no one has is an
 * error at experiment.device's file:line:col (it passed, and `run` then
 * failed naming CLASP_DEVICE and no line). */
static void test_check_device(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) skip();
    char dir[256], path[300], cmd[800], out[4096];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/d.yaml", dir);
    const char *y = "experiment:\n  name: t\n  device: \"nonexistent\"\n"
                    "data: {dataset: mnist, path: /nonexistent}\n" BASE_TRAIN BASE_EVAL;
    tu_write_file(path, y, strlen(y));
    snprintf(cmd, sizeof cmd, "'%s' check '%s' 2>&1", cli, path);
    int code = tu_run(cmd, out, sizeof out);
    assert_int_equal(code, 1);
    char want[400];
    snprintf(want, sizeof want,
             "%s:3:11: experiment.device 'nonexistent': device 'nonexistent' matches no device",
             path);
    assert_has(out, want);
    assert_null(strstr(out, "CLASP_DEVICE"));
    unlink(path);
    tu_rmdir(dir);
}

/* With no device, `clasp devices` says what the driver reported: PoCL
 * with no cache folder to create (HOME unusable) reports no device, and
 * "install a driver" pointed the wrong way. */
static void test_devices_says_what_the_driver_reported(void **state)
{
    (void)state;
    const char *cli = getenv("CLASP_CLI");
    if (!cli) skip();
    char cmd[800], out[4096];
    snprintf(cmd, sizeof cmd,
             "env -u XDG_CACHE_HOME -u POCL_CACHE_DIR HOME=/proc/clasp-none '%s' devices 2>&1",
             cli);
    int code = tu_run(cmd, out, sizeof out);
    if (code == 0) skip(); /* a driver that needs no cache folder */
    assert_has(out, "no OpenCL device found: ");
    if (!strstr(out, "' reports ") && !strstr(out, "found no platform ("))
        fail_msg("no driver report in:\n%s", out);
}

/* ---- evaluate.l2_eps and data.exclude_classes ------------------------------ */

static void test_l2_eps(void **state)
{
    (void)state;
    clasp_plan *p =
        parse_ok(BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: [0.5, 1.5]\n  attacks: [cw]\n");
    assert_int_equal(p->n_l2_eps, 2);
    assert_true(p->l2_eps[0] == 0.5 && p->l2_eps[1] == 1.5);
    char *text = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    clasp_plan *q = parse_ok(text);
    assert_int_equal(q->n_l2_eps, 2);
    assert_true(q->l2_eps[1] == 1.5);
    free(text);
    clasp_plan_free(q);
    clasp_plan_free(p);
    p = parse_ok(BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: 2\n  attacks: [cw]\n");
    assert_int_equal(p->n_l2_eps, 1);
    clasp_plan_free(p);
    /* Without the key the resolved YAML (and so the resume hash) is as before. */
    p = parse_ok(BASE_HEAD BASE_TRAIN BASE_EVAL);
    assert_int_equal(p->n_l2_eps, 0);
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    assert_null(strstr(text, "l2_eps"));
    assert_null(strstr(text, "exclude_classes"));
    free(text);
    clasp_plan_free(p);

    const char *y = BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: [0.5, -1]\n  attacks: [cw]\n";
    const char *msg = parse_err(y);
    assert_starts(msg, loc_of(y, "l2_eps", "-1"));
    assert_has(msg, "positive number");
    y = BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: [1, 0.5]\n  attacks: [cw]\n";
    msg = parse_err(y);
    assert_starts(msg, loc_of(y, "l2_eps", "0.5"));
    assert_has(msg, "must increase");
    y = BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: {a: 1}\n  attacks: [cw]\n";
    msg = parse_err(y);
    assert_starts(msg, loc_of(y, "l2_eps", "{"));
    y = BASE_HEAD BASE_TRAIN "evaluate:\n  l2_eps: [big]\n  attacks: [cw]\n";
    assert_has(parse_err(y), "got big");
}

static void test_exclude_classes(void **state)
{
    (void)state;
    static const char names[4][32] = {"T-shirt/top", "Trouser", "Coat", "Shirt"};
    const char *y = BASE_HEAD "data:\n  exclude_classes: [coat, 3]\n" BASE_TRAIN BASE_EVAL;
    clasp_plan *p = parse_ok(y);
    assert_int_equal(p->n_exclude, 2);
    int mask[4];
    assert_ok(clasp_plan_exclude_mask(p, 4, names, mask));
    assert_int_equal(mask[0], 0);
    assert_int_equal(mask[1], 0);
    assert_int_equal(mask[2], 1); /* names match without regard to case */
    assert_int_equal(mask[3], 1);
    char *text = NULL;
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    clasp_plan *q = parse_ok(text);
    assert_int_equal(q->n_exclude, 2);
    assert_string_equal(q->exclude[0], "coat");
    free(text);
    clasp_plan_free(q);
    /* An unknown name, an index out of range, a class listed twice (by
     * name and index), everything excluded: errors at the entry. */
    const char *cases[][3] = {
        {"[Trouser, Sweater]", "Sweater", "unknown class 'Sweater'"},
        {"[4]", "4", "index 4 is out of range"},
        {"[Shirt, 3]", "3", "listed twice"},
        {"[0, 1, 2, 3]", "0", "leaves no class"},
    };
    for (int i = 0; i < 4; i++) {
        char text2[512];
        snprintf(text2, sizeof text2,
                 BASE_HEAD "data:\n  exclude_classes: %s\n" BASE_TRAIN BASE_EVAL, cases[i][0]);
        clasp_plan *e = parse_ok(text2);
        assert_int_equal(clasp_plan_exclude_mask(e, 4, names, mask), CLASP_ERR_CONFIG);
        const char *msg = clasp_last_error();
        assert_starts(msg, loc_of(text2, "exclude_classes", cases[i][1]));
        assert_has(msg, cases[i][2]);
        clasp_plan_free(e);
    }
    clasp_plan_free(p);
    /* Wrong shapes fail while parsing. */
    y = BASE_HEAD "data:\n  exclude_classes: Shirt\n" BASE_TRAIN BASE_EVAL;
    const char *msg = parse_err(y);
    assert_starts(msg, loc_of(y, "exclude_classes", "Shirt"));
    assert_has(msg, "a list of class names or indices");
    y = BASE_HEAD "data:\n  exclude_classes: [[1]]\n" BASE_TRAIN BASE_EVAL;
    assert_has(parse_err(y), "each entry must be a class name or index");
}

/* data.groups: the file is read while the plan is (a missing or malformed
 * one is an error at the key that names the file and line), is left out of
 * the resume hash but kept in the resolved text, and maps onto a data
 * set's classes with clasp_plan_groups (errors at the key too). */
static void test_groups_file(void **state)
{
    (void)state;
    static const char names[4][32] = {"T-shirt/top", "Trouser", "Coat", "Shirt"};
    char dir[256], cwd[1024];
    tu_tmpdir(dir, sizeof dir);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    const char *y = BASE_HEAD "data:\n  groups: missing.txt\n" BASE_TRAIN BASE_EVAL;
    const char *msg = parse_err(y);
    assert_starts(msg, loc_of(y, "groups", "missing.txt"));
    assert_has(msg, "data.groups: missing.txt: cannot open");
    tu_write_file("bad.txt", "Coat,outer\nShirt\n", strlen("Coat,outer\nShirt\n"));
    y = BASE_HEAD "data:\n  groups: bad.txt\n" BASE_TRAIN BASE_EVAL;
    msg = parse_err(y);
    assert_starts(msg, loc_of(y, "groups", "bad.txt"));
    assert_has(msg, "bad.txt:2: expected CLASS<TAB>GROUP");
    /* Syntax is checked with the plan; the classes once the data set is
     * known. */
    tu_write_file("g.txt", "coat\touter\n3\ttops\n0\ttops\n",
                  strlen("coat\touter\n3\ttops\n0\ttops\n"));
    tu_write_file("unknown.txt", "Coat,outer\nSweater,outer\n",
                  strlen("Coat,outer\nSweater,outer\n"));
    y = BASE_HEAD "data:\n  groups: g.txt\n" BASE_TRAIN BASE_EVAL;
    clasp_plan *p = parse_ok(y);
    assert_string_equal(p->groups, "g.txt");
    clasp_class_groups g;
    assert_ok(clasp_plan_groups(p, 4, names, &g));
    assert_int_equal(g.n_groups, 3);
    assert_int_equal(g.group_of[2], 0);
    assert_int_equal(g.group_of[3], 1);
    assert_int_equal(g.group_of[0], 1);
    assert_int_equal(g.group_of[1], 2);
    assert_string_equal(g.names[2], CLASP_GROUPS_UNLISTED);
    clasp_class_groups_free(&g);
    /* Not hashed: a run resumes with another grouping (only the report
     * depends on it); the full text keeps it and parses back. */
    char h1[17], h2[17], *text = NULL;
    clasp_plan *q = parse_ok(BASE_HEAD BASE_TRAIN BASE_EVAL);
    assert_ok(clasp_plan_hash(p, h1, sizeof h1));
    assert_ok(clasp_plan_hash(q, h2, sizeof h2));
    assert_string_equal(h1, h2);
    assert_null(q->groups);
    assert_ok(clasp_plan_groups(q, 4, names, &g));
    assert_int_equal(g.n_groups, 0);
    clasp_plan_free(q);
    assert_ok(clasp_plan_to_yaml(p, 1, &text));
    assert_has(text, "groups: g.txt");
    q = parse_ok(text);
    assert_string_equal(q->groups, "g.txt");
    free(text);
    clasp_plan_free(q);
    clasp_plan_free(p);
    y = BASE_HEAD "data:\n  groups: unknown.txt\n" BASE_TRAIN BASE_EVAL;
    p = parse_ok(y);
    assert_int_equal(clasp_plan_groups(p, 4, names, &g), CLASP_ERR_CONFIG);
    msg = clasp_last_error();
    assert_starts(msg, loc_of(y, "groups", "unknown.txt"));
    assert_has(msg, "unknown.txt:2: unknown class 'Sweater'");
    assert_null(g.names);
    clasp_plan_free(p);
    remove("g.txt"), remove("bad.txt"), remove("unknown.txt");
    assert_int_equal(chdir(cwd), 0);
    tu_rmdir(dir);
}

/* The data path: after clasp_dataset_exclude no training batch holds an
 * excluded class, the others keep every example in order, and the class
 * count (the model's outputs) stays. */
static void test_exclude_data_path(void **state)
{
    (void)state;
    enum { N = 50, C = 4 };
    clasp_dataset d = {.n = N, .c = 1, .h = 2, .w = 2, .num_classes = C};
    d.x = malloc(N * 4 * sizeof(float));
    d.y = malloc(N * sizeof(int32_t));
    assert_non_null(d.x);
    assert_non_null(d.y);
    for (int i = 0; i < N; i++) {
        d.y[i] = (i * 7) % C;
        for (int j = 0; j < 4; j++) d.x[i * 4 + j] = (float)i; /* the example's original index */
    }
    const int mask[C] = {0, 1, 0, 1};
    size_t removed = clasp_dataset_exclude(&d, mask);
    size_t want = 0;
    for (int i = 0; i < N; i++) want += mask[(i * 7) % C];
    assert_int_equal(removed, want);
    assert_int_equal(d.n, N - want);
    assert_int_equal(d.num_classes, C);
    float prev = -1;
    for (size_t i = 0; i < d.n; i++) {
        int orig = (int)d.x[i * 4];
        assert_true(d.x[i * 4] > prev); /* order kept */
        prev = d.x[i * 4];
        assert_int_equal(d.y[i], (orig * 7) % C); /* images and labels stay paired */
        assert_false(mask[d.y[i]]);
    }
    clasp_ctx *ctx = tu_ctx();
    clasp_batcher *b;
    assert_ok(clasp_batcher_new(ctx, &d, 8, &b));
    size_t seen = 0;
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        clasp_batcher_start(b, 1, 9, epoch);
        for (;;) {
            clasp_tensor *x, *yt;
            int n;
            assert_ok(clasp_batcher_next(b, &x, &yt, &n, NULL));
            if (!n) break;
            int32_t yh[8];
            assert_ok(clasp_tensor_read(yt, yh));
            for (int i = 0; i < n; i++) assert_false(mask[yh[i]]);
            seen += (size_t)n;
        }
    }
    assert_int_equal(seen, 3 * d.n);
    clasp_batcher_free(b);
    clasp_ctx_free(ctx);
    clasp_dataset_free(&d);
}

/* ---- the schema tables ---------------------------------------------------- */

/* A YAML document from "path: value" entries ("train.models[].name: a"),
 * written as nested flow mappings; a path segment ending in "[]" is a list
 * of one mapping. A later entry with the same path replaces an earlier one. */
typedef struct doc_entry {
    char path[160], value[200];
} doc_entry;

typedef struct doc {
    doc_entry e[32];
    int n;
} doc;

static void doc_set(doc *d, const char *path, const char *value)
{
    /* A value for a mapping (or a list) replaces the entries inside it. */
    size_t pl = strlen(path);
    for (int i = 0; i < d->n; i++)
        if (!strncmp(d->e[i].path, path, pl) &&
            (d->e[i].path[pl] == '.' || !strncmp(d->e[i].path + pl, "[].", 3)))
            d->e[i--] = d->e[--d->n];
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->e[i].path, path)) {
            snprintf(d->e[i].value, sizeof d->e[i].value, "%s", value);
            return;
        }
    assert_true(d->n < 32);
    snprintf(d->e[d->n].path, sizeof d->e[0].path, "%s", path);
    snprintf(d->e[d->n].value, sizeof d->e[0].value, "%s", value);
    d->n++;
}

/* Writes the entries under `prefix` (with its trailing '.', or "") into buf. */
static void doc_render(const doc *d, const char *prefix, char *buf, size_t size)
{
    size_t pl = strlen(prefix), len = strlen(buf);
    char done[32][64];
    int nd = 0;
    for (int i = 0; i < d->n; i++) {
        const char *rest = d->e[i].path;
        if (strncmp(rest, prefix, pl)) continue;
        rest += pl;
        size_t sl = strcspn(rest, ".");
        char seg[64];
        snprintf(seg, sizeof seg, "%.*s", (int)sl, rest);
        int seen = 0;
        for (int j = 0; j < nd; j++) seen |= !strcmp(done[j], seg);
        if (seen) continue;
        snprintf(done[nd++], sizeof done[0], "%s", seg);
        int list = sl > 2 && !strcmp(seg + sl - 2, "[]");
        len += (size_t)snprintf(buf + len, size - len,
                                "%s%.*s: ", len && buf[len - 1] != '{' ? ", " : "",
                                (int)(list ? sl - 2 : sl), seg);
        if (!rest[sl]) {
            len += (size_t)snprintf(buf + len, size - len, "%s", d->e[i].value);
            continue;
        }
        char sub[200];
        snprintf(sub, sizeof sub, "%s%s.", prefix, seg);
        len += (size_t)snprintf(buf + len, size - len, list ? "[{" : "{");
        doc_render(d, sub, buf, size);
        len = strlen(buf);
        len += (size_t)snprintf(buf + len, size - len, list ? "}]" : "}");
    }
}

/* The resolved text of a document (NULL when it does not parse). */
static char *doc_resolve(const doc *d, int with_output)
{
    char text[4096] = "";
    doc_render(d, "", text, sizeof text);
    size_t len = strlen(text);
    /* A flow mapping at the top: one "{...}". */
    char full[4200];
    snprintf(full, sizeof full, "{%.*s}\n", (int)len, text);
    clasp_plan *p = NULL;
    if (clasp_plan_parse(reg, full, strlen(full), "t.yaml", &p) != CLASP_OK) return NULL;
    char *y = NULL;
    assert_ok(clasp_plan_to_yaml(p, with_output, &y));
    clasp_plan_free(p);
    return y;
}

/* Adds a row's `with` pairs ("k: v; /a.b: v") for a mapping at `path`. */
static void doc_with(doc *d, const char *path, const char *with)
{
    char buf[400];
    snprintf(buf, sizeof buf, "%s", with ? with : "");
    for (char *save = NULL, *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ') t++;
        char *colon = strstr(t, ": ");
        assert_non_null(colon);
        *colon = '\0';
        char full[200];
        if (*t == '/') snprintf(full, sizeof full, "%s", t + 1);
        else snprintf(full, sizeof full, "%s%s%s", path, *path ? "." : "", t);
        doc_set(d, full, colon + 2);
    }
}

/* Every key that parses reaches the resolved text, and so the resume hash
 * (clasp_plan_hash hashes that text): for each row of each table, a file
 * giving the row's example value resolves to a text that names the key
 * (or the key that carries it) and differs from the same file without it.
 * A new row without an example fails here, so no key escapes --resume's
 * "the experiment changed" check. */
static void test_every_key_reaches_hash(void **state)
{
    (void)state;
    char dir[256], cwd[1024];
    tu_tmpdir(dir, sizeof dir);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    tu_write_file("ckpt.safetensors", "", 0);
    tu_write_file("groups.txt", "0,first\n", strlen("0,first\n")); /* data.groups' example */
    doc base = {0};
    doc_set(&base, "experiment.name", "t");
    doc_set(&base, "train.epochs", "3");
    doc_set(&base, "train.models[].name", "a");
    doc_set(&base, "evaluate.attacks[].name", "fgsm");
    char *base_text = doc_resolve(&base, 0), *base_out = doc_resolve(&base, 1);
    assert_non_null(base_text);
    int checked = 0;
    for (int si = 0; plan_schema_all[si]; si++) {
        const plan_section *s = plan_schema_all[si];
        /* The top level's rows are the sections themselves; the ensemble
         * and preset entries are written out in full (test_ensembles
         * checks they read back the same); a defense's attack block is
         * an evaluation attack block's keys. */
        if (s == &plan_schema_root || s == &plan_schema_ensemble || s == &plan_schema_preset ||
            s == &plan_schema_preset_params || s == &plan_schema_attack)
            continue;
        for (int i = 0; i < s->n; i++) {
            const plan_key *k = &s->keys[i];
            if (!k->example)
                fail_msg("%s.%s has no example value (plan_schema.c)", s->path, k->key);
            doc with = base;
            doc_with(&with, s->path, k->with);
            doc var = with;
            char path[200];
            snprintf(path, sizeof path, "%s.%s", s->path, k->key);
            doc_set(&var, path, k->example);
            /* The output folder is left out of the hash on purpose (a run
             * moved elsewhere still resumes), and so are the rows marked
             * unhashed (data.workers): they must reach the full text. */
            int out = !strcmp(s->path, "output") || (k->flags & PF_UNHASHED);
            char *vt = doc_resolve(&var, out);
            if (!vt) fail_msg("%s = %s does not parse: %s", path, k->example, clasp_last_error());
            char *wt = doc_resolve(&with, out);
            const char *ref = wt ? wt : out ? base_out : base_text;
            /* A choice of one value (train.optimiser.name: sgd) can only be named. */
            int one = k->kind == PK_CHOICE && k->choices[0] && !k->choices[1];
            if (!one && !strcmp(vt, ref))
                fail_msg("%s = %s: the resolved text (and the resume hash) does not change", path,
                         k->example);
            char named[80];
            snprintf(named, sizeof named, "%s:", k->via ? k->via : k->key);
            if (!strstr(vt, named)) fail_msg("%s: the resolved text has no '%s'", path, named);
            free(vt);
            free(wt);
            checked++;
        }
    }
    assert_true(checked > 30);
    free(base_text);
    free(base_out);
    assert_int_equal(chdir(cwd), 0);
    tu_rmdir(dir);
}

/* The resolved text (and so the resume hash) of every shipped experiment,
 * and of a file giving every key, is byte for byte what the code before
 * the schema table wrote (tests/fixtures/plan): a state file of an older
 * run still resumes. The files' checkpoints are made empty in a folder of
 * their own, since the plan checks that they exist. */
static void test_emit_unchanged(void **state)
{
    (void)state;
    const char *fx = getenv("CLASP_PLAN_FIXTURES"), *readme = getenv("CLASP_EXPERIMENTS_README");
    if (!fx || !readme) skip();
    char exp_dir[1024], hashes[1100], dir[256], cwd[1024];
    snprintf(exp_dir, sizeof exp_dir, "%.*s", (int)(strrchr(readme, '/') - readme), readme);
    snprintf(hashes, sizeof hashes, "%s/hashes.txt", fx);
    FILE *hf = fopen(hashes, "r");
    assert_non_null(hf);
    tu_tmpdir(dir, sizeof dir);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(system("mkdir -p runs/quick && touch ckpt.safetensors "
                            "runs/quick/standard.safetensors runs/quick/pgd-at.safetensors "
                            "runs/quick/reweight.safetensors"),
                     0);
    char name[128], want_hash[32];
    int n = 0;
    while (fscanf(hf, "%127s %31s", name, want_hash) == 2) {
        char yaml[1300], want_path[1300];
        if (!strcmp(name, "every-key")) snprintf(yaml, sizeof yaml, "%s/every-key.yaml", fx);
        else snprintf(yaml, sizeof yaml, "%s/%s.yaml", exp_dir, name);
        snprintf(want_path, sizeof want_path, "%s/%s.resolved.yaml", fx, name);
        clasp_plan *p = NULL;
        if (clasp_plan_load(reg, yaml, &p) != CLASP_OK) fail_msg("%s", clasp_last_error());
        char *text = NULL, hash[17];
        assert_ok(clasp_plan_to_yaml(p, 1, &text));
        assert_ok(clasp_plan_hash(p, hash, sizeof hash));
        FILE *f = fopen(want_path, "rb");
        assert_non_null(f);
        static char want[1 << 16];
        size_t len = fread(want, 1, sizeof want - 1, f);
        fclose(f);
        want[len] = '\0';
        if (strcmp(text, want)) fail_msg("%s: the resolved text changed:\n%s", name, text);
        assert_string_equal(hash, want_hash);
        free(text);
        clasp_plan_free(p);
        n++;
    }
    fclose(hf);
    assert_int_equal(n, 7);
    assert_int_equal(chdir(cwd), 0);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
}

/* experiments/README.md's reference tables are the schema's own: each
 * "<!-- schema PATH -->" ... "<!-- end schema -->" block holds exactly
 * plan_schema_markdown's table of that mapping. CLASP_UPDATE_SCHEMA_DOCS=1
 * rewrites the blocks instead (after a change of plan_schema.c). */
static void test_readme_tables(void **state)
{
    (void)state;
    const char *path = getenv("CLASP_EXPERIMENTS_README");
    if (!path) skip();
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[1 << 18], out[1 << 18];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int update = getenv("CLASP_UPDATE_SCHEMA_DOCS") != NULL, blocks = 0;
    static const char open_tag[] = "<!-- schema ", end_tag[] = "<!-- end schema -->";
    size_t olen = 0;
    const char *at = text;
    for (const char *b; (b = strstr(at, open_tag));) {
        const char *eol = strstr(b, "-->\n");
        const char *e = strstr(b, end_tag);
        assert_non_null(eol);
        assert_non_null(e);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(eol - b - strlen(open_tag) - 1),
                 b + strlen(open_tag));
        const plan_section *s = NULL;
        for (int i = 0; plan_schema_all[i] && !s; i++)
            if (!strcmp(plan_schema_all[i]->path, name)) s = plan_schema_all[i];
        if (!s) fail_msg("README: no table '%s' in the schema", name);
        char *md = NULL;
        assert_ok(plan_schema_markdown(s, &md));
        const char *body = eol + 4;
        if (!update && ((size_t)(e - body) != strlen(md) || memcmp(body, md, strlen(md))))
            fail_msg("%s: the table of '%s' differs from the schema's (plan_schema.c); "
                     "CLASP_UPDATE_SCHEMA_DOCS=1 test_plan rewrites it",
                     path, name);
        olen += (size_t)snprintf(out + olen, sizeof out - olen, "%.*s%s", (int)(body - at), at, md);
        free(md);
        at = e;
        blocks++;
    }
    snprintf(out + olen, sizeof out - olen, "%s", at);
    assert_true(blocks >= 8);
    if (update) {
        f = fopen(path, "wb");
        assert_non_null(f);
        fputs(out, f);
        fclose(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key_reaches_hash),
        cmocka_unit_test(test_readme_tables),
        cmocka_unit_test(test_emit_unchanged),
        cmocka_unit_test(test_streamed_data),
        cmocka_unit_test(test_zoo_models),
        cmocka_unit_test(test_values_and_step_schedule),
        cmocka_unit_test(test_error_unknown_keys),
        cmocka_unit_test(test_dataset_names),
        cmocka_unit_test(test_error_types),
        cmocka_unit_test(test_error_ranges),
        cmocka_unit_test(test_error_plugins),
        cmocka_unit_test(test_error_missing),
        cmocka_unit_test(test_error_structure),
        cmocka_unit_test(test_many_keys_refused_fast),
        cmocka_unit_test(test_grid_attacks),
        cmocka_unit_test(test_grid_models),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_models_and_augment),
        cmocka_unit_test(test_alias_blowups),
        cmocka_unit_test(test_resolved_roundtrip),
        cmocka_unit_test(test_l2_eps),
        cmocka_unit_test(test_exclude_classes),
        cmocka_unit_test(test_exclude_data_path),
        cmocka_unit_test(test_groups_file),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_ensembles),
        cmocka_unit_test(test_ensemble_errors),
        cmocka_unit_test(test_autoattack_preset),
        cmocka_unit_test(test_ensemble_spec),
        cmocka_unit_test(test_attack_cli_lists),
        cmocka_unit_test(test_attack_cli_arch),
        cmocka_unit_test(test_output_paths_checked_first),
        cmocka_unit_test(test_check_device),
        cmocka_unit_test(test_devices_says_what_the_driver_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
