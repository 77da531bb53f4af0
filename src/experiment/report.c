/* The class-wise report: report.json (everything, for machines),
 * per_class.csv (one row per model, attack and class, for spreadsheets),
 * report.md (what a person reads first) and the SVG charts. report.json is
 * written last, so its presence marks a complete report. */
#include "clasp/report.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "experiment/report_worst.h"
#include "experiment/report_relations.h"
#include "experiment/svg.h"

double clasp_rate(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

/* ---- numbers derived from the counts ----------------------------------- */

typedef struct attack_summary {
    int64_t count, clean, robust, success;
    double clean_acc, robust_acc, success_rate;
    int worst, best; /* by robust accuracy among classes with examples; -1: none */
    double gap;      /* robust accuracy of best minus worst */
} attack_summary;

/* Lowest and highest per-class rate num/den among classes with den > 0;
 * ties go to the lower class index. */
static void extreme_classes(const int64_t *num, const int64_t *den, int k, int *worst, int *best)
{
    *worst = *best = -1;
    for (int i = 0; i < k; i++) {
        if (den[i] <= 0) continue;
        double r = clasp_rate(num[i], den[i]);
        if (*worst < 0 || r < clasp_rate(num[*worst], den[*worst])) *worst = i;
        if (*best < 0 || r > clasp_rate(num[*best], den[*best])) *best = i;
    }
}

static attack_summary summarize(const clasp_attack_report *a, int k)
{
    attack_summary s;
    s.count = clasp_class_sum(a->count, k);
    s.clean = clasp_class_sum(a->clean_correct, k);
    s.robust = clasp_class_sum(a->robust_correct, k);
    s.success = clasp_class_sum(a->success, k);
    s.clean_acc = clasp_rate(s.clean, s.count);
    s.robust_acc = clasp_rate(s.robust, s.count);
    s.success_rate = clasp_rate(s.success, s.clean);
    extreme_classes(a->robust_correct, a->count, k, &s.worst, &s.best);
    s.gap = s.worst < 0 ? 0
          : clasp_rate(a->robust_correct[s.best], a->count[s.best]) -
            clasp_rate(a->robust_correct[s.worst], a->count[s.worst]);
    return s;
}

static double class_robust(const clasp_attack_report *a, int c)
{
    return clasp_rate(a->robust_correct[c], a->count[c]);
}

/* A pair of attacks on one model, ordered so that b is the stronger one
 * (lower overall robust accuracy); on a tie they keep their order and
 * `tie` is set. The gain of b over a in class c is robust_a - robust_b. */
typedef struct attack_pair {
    const clasp_attack_report *a, *b;
    int tie;
} attack_pair;

static attack_pair make_pair(const clasp_attack_report *x, const clasp_attack_report *y, int k)
{
    double rx = summarize(x, k).robust_acc, ry = summarize(y, k).robust_acc;
    attack_pair p = {x, y, rx == ry};
    if (ry > rx) {
        p.a = y;
        p.b = x;
    }
    return p;
}

/* The attack with the lowest overall robust accuracy (first on a tie):
 * among the L-infinity attacks when there is one, since an unbounded
 * attack's robust accuracy is not on the same scale. */
static int strongest_attack(const clasp_model_report *m, int k)
{
    int linf = report_strongest_linf(m, k);
    if (linf >= 0) return linf;
    int best = 0;
    for (int i = 1; i < m->n_attacks; i++)
        if (!m->attacks[i].derived && summarize(&m->attacks[i], k).robust_acc <
            summarize(&m->attacks[best], k).robust_acc)
            best = i;
    return best;
}

/* The metric an epoch's validation is judged by: robust when measured. */
static const int64_t *epoch_val_metric(const clasp_epoch_report *e)
{
    return e->val_robust ? e->val_robust : e->val_clean;
}

static int epoch_has_val(const clasp_epoch_report *e, int k)
{
    return e->val_count && e->val_clean && clasp_class_sum(e->val_count, k) > 0;
}

/* ---- chart file names -------------------------------------------------- */

/* Slugs are cut so that "<model>-<attack>-NN-classes.svg" stays well
 * below the usual 255-byte file-name limit. */
#define STEM_MODEL 80
#define STEM_ATTACK 110
#define STEM_MAX 224

typedef char chart_stem[STEM_MAX];

typedef struct chart_plan {
    chart_stem *pair;   /* per (model, attack), models' attacks one after another */
    chart_stem *model;  /* per model, for the epochs chart */
    int *first;         /* index in pair of each model's first attack */
} chart_plan;

static void plan_free(chart_plan *p)
{
    free(p->pair);
    free(p->model);
    free(p->first);
    memset(p, 0, sizeof *p);
}

/* Appends -2, -3 ... to stem until no earlier stem (taken[0..n)) equals it,
 * since different names can share a slug ("a b" and "a-b"). */
static void make_unique(chart_stem stem, const chart_stem *taken, int n)
{
    char base[STEM_MAX];
    snprintf(base, sizeof base, "%s", stem);
    for (int suffix = 2;; suffix++) {
        int clash = 0;
        for (int i = 0; i < n && !clash; i++) clash = strcmp(taken[i], stem) == 0;
        if (!clash) return;
        snprintf(stem, STEM_MAX, "%.*s-%d", STEM_MAX - 16, base, suffix);
    }
}

static clasp_status plan_charts(const clasp_report *r, chart_plan *p)
{
    int total = 0;
    for (int i = 0; i < r->n_models; i++) total += r->models[i].n_attacks;
    p->pair = calloc(total > 0 ? (size_t)total : 1, sizeof *p->pair);
    p->model = calloc(r->n_models > 0 ? (size_t)r->n_models : 1, sizeof *p->model);
    p->first = calloc(r->n_models > 0 ? (size_t)r->n_models : 1, sizeof *p->first);
    if (!p->pair || !p->model || !p->first) {
        plan_free(p);
        return clasp_error(CLASP_ERR_NOMEM, "report charts: out of memory");
    }
    int n = 0;
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        char ms[STEM_MODEL + 1], as[STEM_ATTACK + 1];
        clasp_slug(m->name, ms, STEM_MODEL);
        snprintf(p->model[i], STEM_MAX, "%s", ms);
        make_unique(p->model[i], p->model, i);
        p->first[i] = n;
        for (int j = 0; j < m->n_attacks; j++, n++) {
            clasp_slug(m->attacks[j].label, as, STEM_ATTACK);
            snprintf(p->pair[n], STEM_MAX, "%s-%s", ms, as);
            make_unique(p->pair[n], p->pair, n);
        }
    }
    return CLASP_OK;
}

/* "charts/<stem>-<kind>.svg", relative to the report folder. */
static void chart_rel(char *out, size_t size, const char *stem, const char *kind)
{
    snprintf(out, size, "charts/%s-%s.svg", stem, kind);
}

/* ---- report.json ------------------------------------------------------- */

/* json-c calls below may fail for lack of memory; `bad` collects that so
 * the builders stay linear and one check at the end reports it. */
static void jset(json_object *o, const char *key, json_object *v, int *bad)
{
    if (!o || !v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

static void jset_null(json_object *o, const char *key, int *bad)
{
    if (!o || json_object_object_add(o, key, NULL) != 0) *bad = 1;
}

static void jpush(json_object *arr, json_object *v, int *bad)
{
    if (!arr || !v || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

/* A double with 12 significant digits (json-c's default prints 17, which
 * shows binary noise such as 0.90000000000000002); NULL for NaN and
 * infinities, which JSON cannot hold. */
static json_object *jdouble(double x)
{
    if (!isfinite(x)) return NULL;
    char s[40];
    int n = snprintf(s, sizeof s, "%.12g", x);
    /* Keep it a JSON number with a fraction, so readers see a double even
     * for whole values such as a loss of 1. */
    if (!strpbrk(s, ".e")) snprintf(s + n, sizeof s - (size_t)n, ".0");
    return json_object_new_double_s(x, s);
}

static void jset_num(json_object *o, const char *key, double x, int *bad)
{
    if (isfinite(x)) jset(o, key, jdouble(x), bad);
    else jset_null(o, key, bad);
}

static void jset_str(json_object *o, const char *key, const char *s, int *bad)
{
    jset(o, key, json_object_new_string(s ? s : ""), bad);
}

static void jset_int(json_object *o, const char *key, int64_t v, int *bad)
{
    jset(o, key, json_object_new_int64(v), bad);
}

static json_object *jints(const int64_t *v, int n, int *bad)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) jpush(arr, json_object_new_int64(v[i]), bad);
    if (!arr) *bad = 1;
    return arr;
}

static json_object *jfloats(const float *v, int n, int *bad)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *x = jdouble((double)v[i]);
        if (x) jpush(arr, x, bad);
        else if (arr && json_object_array_add(arr, NULL) != 0) *bad = 1;
    }
    if (!arr) *bad = 1;
    return arr;
}

/* Per-class rates num[i]/den[i]. */
static json_object *jrates(const int64_t *num, const int64_t *den, int n, int *bad)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) jpush(arr, jdouble(clasp_rate(num[i], den[i])), bad);
    if (!arr) *bad = 1;
    return arr;
}

/* {"index": c, "name": ..., key: value}, or null when c < 0. */
static void jset_class(json_object *o, const char *key, const clasp_report *r, int c,
                       const char *vkey, double v, int *bad)
{
    if (c < 0) {
        jset_null(o, key, bad);
        return;
    }
    json_object *x = json_object_new_object();
    jset_int(x, "index", c, bad);
    jset_str(x, "name", r->class_names[c], bad);
    jset_num(x, vkey, v, bad);
    jset(o, key, x, bad);
}

static json_object *json_validation(const clasp_report *r, const clasp_epoch_report *e, int *bad)
{
    int k = r->num_classes;
    json_object *v = json_object_new_object();
    int64_t n = clasp_class_sum(e->val_count, k);
    jset(v, "count", jints(e->val_count, k, bad), bad);
    jset(v, "clean_correct", jints(e->val_clean, k, bad), bad);
    jset(v, "clean_acc", jrates(e->val_clean, e->val_count, k, bad), bad);
    jset_num(v, "clean_overall", clasp_rate(clasp_class_sum(e->val_clean, k), n), bad);
    if (e->val_robust) {
        jset(v, "robust_correct", jints(e->val_robust, k, bad), bad);
        jset(v, "robust_acc", jrates(e->val_robust, e->val_count, k, bad), bad);
        jset_num(v, "robust_overall", clasp_rate(clasp_class_sum(e->val_robust, k), n), bad);
    } else {
        jset_null(v, "robust_correct", bad);
        jset_null(v, "robust_acc", bad);
        jset_null(v, "robust_overall", bad);
    }
    const int64_t *metric = epoch_val_metric(e);
    int worst, best;
    extreme_classes(metric, e->val_count, k, &worst, &best);
    jset_str(v, "worst_by", e->val_robust ? "robust" : "clean", bad);
    jset_class(v, "worst_class", r, worst, "acc",
               worst < 0 ? 0 : clasp_rate(metric[worst], e->val_count[worst]), bad);
    return v;
}

static json_object *json_epoch(const clasp_report *r, const clasp_epoch_report *e, int *bad)
{
    json_object *o = json_object_new_object();
    jset_int(o, "epoch", e->epoch, bad);
    jset_num(o, "train_loss", e->train_loss, bad);
    jset_num(o, "lr", e->lr, bad);
    jset_num(o, "seconds", e->seconds, bad);
    if (epoch_has_val(e, r->num_classes)) jset(o, "validation", json_validation(r, e, bad), bad);
    else jset_null(o, "validation", bad);
    if (e->class_weights) jset(o, "class_weights", jfloats(e->class_weights, r->num_classes, bad), bad);
    else jset_null(o, "class_weights", bad);
    return o;
}

static json_object *json_class_row(const clasp_report *r, const clasp_attack_report *a, int c,
                                   int *bad)
{
    json_object *o = json_object_new_object();
    jset_int(o, "class_index", c, bad);
    jset_str(o, "class", r->class_names[c], bad);
    jset_int(o, "count", a->count[c], bad);
    jset_int(o, "clean_correct", a->clean_correct[c], bad);
    jset_num(o, "clean_acc", clasp_rate(a->clean_correct[c], a->count[c]), bad);
    jset_int(o, "robust_correct", a->robust_correct[c], bad);
    jset_num(o, "robust_acc", clasp_rate(a->robust_correct[c], a->count[c]), bad);
    jset_int(o, "success", a->success[c], bad);
    jset_num(o, "success_rate", clasp_rate(a->success[c], a->clean_correct[c]), bad);
    return o;
}

static json_object *json_summary(const clasp_report *r, const clasp_attack_report *a, int *bad)
{
    attack_summary s = summarize(a, r->num_classes);
    json_object *o = json_object_new_object();
    jset_int(o, "count", s.count, bad);
    jset_int(o, "clean_correct", s.clean, bad);
    jset_int(o, "robust_correct", s.robust, bad);
    jset_int(o, "success", s.success, bad);
    jset_num(o, "clean_acc", s.clean_acc, bad);
    jset_num(o, "robust_acc", s.robust_acc, bad);
    jset_num(o, "success_rate", s.success_rate, bad);
    jset_class(o, "worst_class", r, s.worst, "robust_acc",
               s.worst < 0 ? 0 : class_robust(a, s.worst), bad);
    jset_class(o, "best_class", r, s.best, "robust_acc",
               s.best < 0 ? 0 : class_robust(a, s.best), bad);
    jset_num(o, "gap", s.gap, bad);
    return o;
}

static json_object *json_flow(const clasp_attack_report *a, int k, int *bad)
{
    json_object *rows = json_object_new_array();
    for (int i = 0; i < k; i++) jpush(rows, jints(a->flow + (size_t)i * k, k, bad), bad);
    if (!rows) *bad = 1;
    return rows;
}

/* An ensemble's or worst case's members: in order, with the per-class
 * counts of clean-correct examples each flipped first (and, for an
 * ensemble run as a cascade, the time inside each). */
static json_object *json_members(const clasp_report *r, const clasp_attack_report *a, int *bad)
{
    int k = r->num_classes, n = a->n_members;
    json_object *arr = json_object_new_array();
    for (int j = 0; j < n; j++) {
        json_object *o = json_object_new_object();
        jset_str(o, "label", a->member_labels[j], bad);
        json_object *ff = json_object_new_array();
        int64_t total = 0;
        for (int c = 0; c < k; c++) {
            int64_t v = a->first_flip[(size_t)c * (size_t)n + (size_t)j];
            total += v;
            jpush(ff, json_object_new_int64(v), bad);
        }
        if (!ff) *bad = 1;
        jset(o, "flipped_first", ff, bad);
        jset_int(o, "flipped_first_total", total, bad);
        if (a->member_seconds) jset_num(o, "seconds", a->member_seconds[j], bad);
        jpush(arr, o, bad);
    }
    if (!arr) *bad = 1;
    return arr;
}

static json_object *json_attack(const clasp_report *r, const clasp_attack_report *a,
                                const char *stem, int *bad)
{
    int k = r->num_classes;
    json_object *o = json_object_new_object();
    jset_str(o, "label", a->label, bad);
    jset_str(o, "plugin", a->plugin, bad);
    jset_str(o, "params", a->params, bad);
    jset_num(o, "seconds", a->seconds, bad);
    if (a->linf_eps > 0) jset_num(o, "linf_eps", a->linf_eps, bad);
    else jset_null(o, "linf_eps", bad);
    jset(o, "derived", json_object_new_boolean(a->derived != 0), bad);
    if (a->n_members) jset(o, "ensemble", json_members(r, a, bad), bad);
    json_object *rows = json_object_new_array();
    for (int c = 0; c < k; c++) jpush(rows, json_class_row(r, a, c, bad), bad);
    if (!rows) *bad = 1;
    jset(o, "per_class", rows, bad);
    jset(o, "flow", json_flow(a, k, bad), bad);
    jset(o, "summary", json_summary(r, a, bad), bad);
    jset(o, "unbounded", json_object_new_boolean(a->unbounded != 0), bad);
    json_object *l2 = report_json_l2(r, a, bad);
    if (l2) jset(o, "l2", l2, bad);
    else jset_null(o, "l2", bad);
    char rel[STEM_MAX + 32];
    json_object *charts = json_object_new_object();
    chart_rel(rel, sizeof rel, stem, "classes");
    jset_str(charts, "classes", rel, bad);
    chart_rel(rel, sizeof rel, stem, "flow");
    jset_str(charts, "flow", rel, bad);
    jset(o, "charts", charts, bad);
    return o;
}

/* Per-class gain of the stronger attack b over a: robust_a - robust_b. */
static json_object *json_pair(const clasp_report *r, attack_pair p, int *bad)
{
    int k = r->num_classes;
    json_object *o = json_object_new_object();
    jset_str(o, "a", p.a->label, bad);
    jset_str(o, "b", p.b->label, bad);
    if (p.tie) jset_null(o, "stronger", bad);
    else jset_str(o, "stronger", p.b->label, bad);
    json_object *gain = json_object_new_array();
    for (int c = 0; c < k; c++) jpush(gain, jdouble(class_robust(p.a, c) - class_robust(p.b, c)), bad);
    if (!gain) *bad = 1;
    jset(o, "gain", gain, bad);
    jset_num(o, "overall_gain", summarize(p.a, k).robust_acc - summarize(p.b, k).robust_acc, bad);
    return o;
}

static json_object *json_calibration(const clasp_report *r, const clasp_model_report *m, int *bad)
{
    json_object *o = json_object_new_object();
    jset(o, "enabled", json_object_new_boolean(m->calibrated != 0), bad);
    if (m->calibrated) {
        jset_num(o, "temperature", m->calib_temperature, bad);
        if (m->calib_offsets) jset(o, "offsets", jfloats(m->calib_offsets, r->num_classes, bad), bad);
        else jset_null(o, "offsets", bad);
    }
    return o;
}

static void json_model_runs(json_object *o, const clasp_report *r, const clasp_model_report *m,
                            const chart_plan *plan, int mi, int *bad)
{
    json_object *epochs = json_object_new_array();
    for (int i = 0; i < m->n_epochs; i++) jpush(epochs, json_epoch(r, &m->epochs[i], bad), bad);
    if (!epochs) *bad = 1;
    jset(o, "epochs", epochs, bad);
    json_object *attacks = json_object_new_array(), *pairs = json_object_new_array();
    for (int i = 0; i < m->n_attacks; i++) {
        jpush(attacks, json_attack(r, &m->attacks[i], plan->pair[plan->first[mi] + i], bad), bad);
        for (int j = i + 1; j < m->n_attacks; j++)
            if (!m->attacks[i].derived && !m->attacks[j].derived && !m->attacks[i].unbounded &&
                !m->attacks[j].unbounded)
                jpush(pairs, json_pair(r, make_pair(&m->attacks[i], &m->attacks[j], r->num_classes),
                                       bad), bad);
    }
    if (!attacks || !pairs) *bad = 1;
    jset(o, "attacks", attacks, bad);
    jset(o, "attack_pairs", pairs, bad);
}

static json_object *json_model(const clasp_report *r, const clasp_model_report *m,
                               const chart_plan *plan, int mi, int *bad)
{
    json_object *o = json_object_new_object();
    jset_str(o, "name", m->name, bad);
    jset_str(o, "defense", m->defense, bad);
    jset_str(o, "params", m->params, bad);
    jset_str(o, "checkpoint", m->checkpoint, bad);
    jset(o, "calibration", json_calibration(r, m, bad), bad);
    json_object *t = json_object_new_object();
    jset_num(t, "train_seconds", m->train_seconds, bad);
    jset_num(t, "eval_seconds", m->eval_seconds, bad);
    jset(o, "timings", t, bad);
    json_model_runs(o, r, m, plan, mi, bad);
    jset(o, "relations", report_json_relations(r, m, bad), bad);
    json_object *masking = report_json_masking(r, m, bad);
    if (masking) jset(o, "gradient_free_check", masking, bad);
    else jset_null(o, "gradient_free_check", bad);
    json_object *charts = json_object_new_object();
    if (clasp_svg_epochs_wanted(r, m)) {
        char rel[STEM_MAX + 32];
        chart_rel(rel, sizeof rel, plan->model[mi], "epochs");
        jset_str(charts, "epochs", rel, bad);
    } else {
        jset_null(charts, "epochs", bad);
    }
    jset(o, "charts", charts, bad);
    return o;
}

static json_object *json_header(const clasp_report *r, int *bad)
{
    json_object *o = json_object_new_object();
    jset_str(o, "experiment", r->experiment, bad);
    jset_str(o, "clasp_version", r->clasp_version, bad);
    jset_str(o, "device", r->device, bad);
    jset(o, "seed", json_object_new_uint64(r->seed), bad);
    json_object *d = json_object_new_object();
    jset_str(d, "name", r->dataset, bad);
    jset_int(d, "train_size", (int64_t)r->train_size, bad);
    jset_int(d, "val_size", (int64_t)r->val_size, bad);
    jset_int(d, "test_size", (int64_t)r->test_size, bad);
    jset_int(d, "num_classes", r->num_classes, bad);
    jset(o, "dataset", d, bad);
    json_object *names = json_object_new_array();
    for (int c = 0; c < r->num_classes; c++) jpush(names, json_object_new_string(r->class_names[c]), bad);
    if (!names) *bad = 1;
    jset(o, "class_names", names, bad);
    jset_str(o, "config_path", r->config_path, bad);
    jset_str(o, "config", r->config_yaml, bad);
    jset_str(o, "started", r->started, bad);
    jset_num(o, "wall_seconds", r->wall_seconds, bad);
    return o;
}

static clasp_status write_json(const clasp_report *r, const chart_plan *plan, const char *path)
{
    int bad = 0;
    json_object *root = json_header(r, &bad);
    json_object *models = json_object_new_array();
    for (int i = 0; i < r->n_models; i++) jpush(models, json_model(r, &r->models[i], plan, i, &bad), &bad);
    if (!models) bad = 1;
    jset(root, "models", models, &bad);
    const char *text = bad ? NULL : json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    clasp_status s = text ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    if (s == CLASP_OK) {
        size_t n = strlen(text);
        /* A trailing newline keeps the file friendly to line-based tools. */
        char *copy = malloc(n + 2);
        if (!copy) {
            s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
        } else {
            memcpy(copy, text, n);
            copy[n] = '\n';
            copy[n + 1] = '\0';
            s = clasp_write_atomic(path, copy, n + 1);
            free(copy);
        }
    }
    json_object_put(root);
    return s;
}

/* ---- per_class.csv ----------------------------------------------------- */

/* RFC 4180: a field holding a comma, quote or line break is quoted, with
 * inner quotes doubled. */
static void csv_field(clasp_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        clasp_buf_puts(b, s);
        return;
    }
    clasp_buf_puts(b, "\"");
    for (const char *p = s; *p; p++) clasp_buf_printf(b, *p == '"' ? "\"\"" : "%c", *p);
    clasp_buf_puts(b, "\"");
}

static void csv_row(clasp_buf *b, const clasp_report *r, const clasp_model_report *m,
                    const clasp_attack_report *a, int c)
{
    csv_field(b, m->name);
    clasp_buf_puts(b, ",");
    csv_field(b, a->label);
    clasp_buf_printf(b, ",%d,", c);
    csv_field(b, r->class_names[c]);
    clasp_buf_printf(b, ",%lld,%lld,%.6f,%lld,%.6f,%lld,%.6f,", (long long)a->count[c],
                     (long long)a->clean_correct[c], clasp_rate(a->clean_correct[c], a->count[c]),
                     (long long)a->robust_correct[c], class_robust(a, c),
                     (long long)a->success[c], clasp_rate(a->success[c], a->clean_correct[c]));
    /* Ensembles and worst cases: "member=count;..." of the examples each
     * member flipped first. */
    clasp_buf ff = {0};
    for (int j = 0; j < a->n_members; j++)
        clasp_buf_printf(&ff, "%s%s=%lld", j ? ";" : "", a->member_labels[j],
                         (long long)a->first_flip[(size_t)c * (size_t)a->n_members + (size_t)j]);
    csv_field(b, ff.data ? ff.data : "");
    clasp_buf_free(&ff);
    clasp_buf_puts(b, "\n");
}

static clasp_status write_csv(const clasp_report *r, const chart_plan *plan, const char *path)
{
    (void)plan;
    clasp_buf b = {0};
    clasp_buf_puts(&b, "model,attack,class_index,class,count,clean_correct,clean_acc,"
                       "robust_correct,robust_acc,success,success_rate,flipped_first_by\n");
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        for (int j = 0; j < m->n_attacks; j++)
            for (int c = 0; c < r->num_classes; c++) csv_row(&b, r, m, &m->attacks[j], c);
    }
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}

/* ---- report.md --------------------------------------------------------- */

/* Markdown text: characters that would start formatting or break a table
 * cell are backslash-escaped; line breaks become spaces. */
static void md_text(clasp_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') clasp_buf_puts(b, " ");
        else if (strchr("\\`*_[]<>|#", *p)) clasp_buf_printf(b, "\\%c", *p);
        else clasp_buf_printf(b, "%c", *p);
    }
}

/* A code span: backslash escapes do not work inside one, so backticks
 * become quotes instead. */
static void md_code(clasp_buf *b, const char *s)
{
    clasp_buf_puts(b, "`");
    for (const char *p = s; *p; p++)
        clasp_buf_printf(b, "%c", *p == '`' ? '\'' : *p == '\n' || *p == '\r' ? ' ' : *p);
    clasp_buf_puts(b, "`");
}

/* A class name in running text, in italics so names with commas or
 * spaces stand apart from the sentence. */
static void md_class(clasp_buf *b, const char *name)
{
    clasp_buf_puts(b, "*");
    md_text(b, name);
    clasp_buf_puts(b, "*");
}

static void md_duration(clasp_buf *b, double s)
{
    if (!isfinite(s) || s < 0) clasp_buf_puts(b, "n/a");
    else if (s < 60) clasp_buf_printf(b, "%.1f s", s);
    else if (s < 3600) clasp_buf_printf(b, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else clasp_buf_printf(b, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void md_header(clasp_buf *b, const clasp_report *r)
{
    clasp_buf_puts(b, "# clasp report: ");
    md_text(b, r->experiment);
    clasp_buf_puts(b, "\n\n- **Device:** ");
    md_text(b, r->device);
    clasp_buf_printf(b, "\n- **Seed:** %llu\n- **Dataset:** ", (unsigned long long)r->seed);
    md_text(b, r->dataset);
    clasp_buf_printf(b, ", %d classes; train %zu, validation %zu, test %zu (evaluated)\n",
                     r->num_classes, r->train_size, r->val_size, r->test_size);
    clasp_buf_puts(b, "- **Started:** ");
    md_text(b, r->started);
    clasp_buf_puts(b, "; **wall time:** ");
    md_duration(b, r->wall_seconds);
    clasp_buf_puts(b, "\n- **clasp** ");
    md_text(b, r->clasp_version);
    if (r->config_path && *r->config_path) {
        clasp_buf_puts(b, "; config ");
        md_code(b, r->config_path);
        clasp_buf_puts(b, " (resolved in report.json)");
    }
    clasp_buf_puts(b, "\n\nAccuracies are in percent; *robust* is the accuracy on the "
                      "attacked test examples.\n");
}

static void md_model_intro(clasp_buf *b, const clasp_model_report *m)
{
    clasp_buf_puts(b, "\n## Model: ");
    md_text(b, m->name);
    clasp_buf_puts(b, "\n\n");
    if (m->defense[0]) {
        clasp_buf_puts(b, "Defense ");
        md_code(b, m->defense);
        if (m->params[0]) {
            clasp_buf_puts(b, " (");
            md_text(b, m->params);
            clasp_buf_puts(b, ")");
        }
    } else {
        clasp_buf_puts(b, "Standard training");
    }
    if (m->checkpoint[0]) {
        clasp_buf_puts(b, "; checkpoint ");
        md_code(b, m->checkpoint);
    }
    clasp_buf_puts(b, ". Training took ");
    md_duration(b, m->train_seconds);
    clasp_buf_puts(b, ", evaluation ");
    md_duration(b, m->eval_seconds);
    clasp_buf_puts(b, ".\n");
}

/* Whether all attacks saw the same clean-correct counts, so one clean
 * column describes them all. */
static int clean_agrees(const clasp_model_report *m, int k)
{
    for (int j = 1; j < m->n_attacks; j++)
        for (int c = 0; c < k; c++)
            if (m->attacks[j].clean_correct[c] != m->attacks[0].clean_correct[c] ||
                m->attacks[j].count[c] != m->attacks[0].count[c])
                return 0;
    return 1;
}

static void md_class_table(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes;
    const clasp_attack_report *a0 = &m->attacks[0];
    clasp_buf_puts(b, "\n### Per-class accuracy\n\n| Class | n | Clean |");
    for (int j = 0; j < m->n_attacks; j++) {
        clasp_buf_puts(b, " ");
        md_text(b, m->attacks[j].label);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|---:|---:|");
    for (int j = 0; j < m->n_attacks; j++) clasp_buf_puts(b, "---:|");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, "\n| ");
        md_text(b, r->class_names[c]);
        clasp_buf_printf(b, " | %lld | %.1f |", (long long)a0->count[c],
                         100 * clasp_rate(a0->clean_correct[c], a0->count[c]));
        for (int j = 0; j < m->n_attacks; j++)
            clasp_buf_printf(b, " %.1f |", 100 * class_robust(&m->attacks[j], c));
    }
    attack_summary s0 = summarize(a0, k);
    clasp_buf_printf(b, "\n| **all** | %lld | %.1f |", (long long)s0.count, 100 * s0.clean_acc);
    for (int j = 0; j < m->n_attacks; j++)
        clasp_buf_printf(b, " %.1f |", 100 * summarize(&m->attacks[j], k).robust_acc);
    clasp_buf_puts(b, "\n");
    if (!clean_agrees(m, k)) {
        clasp_buf_puts(b, "\nThe attacks saw different clean counts; the n and Clean columns "
                          "are those of ");
        md_text(b, a0->label);
        clasp_buf_puts(b, " (each attack's own are in report.json).\n");
    }
}

static void md_attack_line(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a)
{
    attack_summary s = summarize(a, r->num_classes);
    clasp_buf_puts(b, "- **");
    md_text(b, a->label);
    clasp_buf_puts(b, a->unbounded ? "** (unbounded, see its L2 section" : "**");
    clasp_buf_printf(b, "%s: robust %.1f%% (clean %.1f%%), attack success %.1f%%", a->unbounded ? ")" : "",
                     100 * s.robust_acc, 100 * s.clean_acc, 100 * s.success_rate);
    if (s.worst >= 0) {
        clasp_buf_puts(b, "; worst class ");
        md_class(b, r->class_names[s.worst]);
        clasp_buf_printf(b, " %.1f%%, best class ", 100 * class_robust(a, s.worst));
        md_class(b, r->class_names[s.best]);
        clasp_buf_printf(b, " %.1f%%, gap %.1f points", 100 * class_robust(a, s.best),
                         100 * s.gap);
    }
    clasp_buf_puts(b, "\n");
}

/* All pairs while there are few; past six columns only the pairs with the
 * strongest attack, so the table stays readable. */
static int md_pair_shown(const clasp_model_report *m, int i, int j, int strongest)
{
    /* Listed L-infinity pairs only: not the derived worst cases, not the
     * unbounded attacks. */
    if (m->attacks[i].derived || m->attacks[j].derived) return 0;
    if (m->attacks[i].unbounded || m->attacks[j].unbounded) return 0;
    int listed = 0;
    for (int a = 0; a < m->n_attacks; a++) listed += !m->attacks[a].derived && !m->attacks[a].unbounded;
    int pairs = listed * (listed - 1) / 2;
    return pairs <= 6 || i == strongest || j == strongest;
}

static void md_gains(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, strongest = strongest_attack(m, k);
    clasp_buf_puts(b, "\n### Gains of stronger attacks\n\nPoints of robust accuracy that "
                      "the stronger attack (b) removes beyond the weaker one (a), "
                      "as \"b over a\"; negative where a is stronger on that class. "
                      "L\u221e attacks only: unbounded ones (cw) have their own L2 section.\n\n"
                      "| Class |");
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++) {
            if (!md_pair_shown(m, i, j, strongest)) continue;
            attack_pair p = make_pair(&m->attacks[i], &m->attacks[j], k);
            clasp_buf_puts(b, " ");
            md_text(b, p.b->label);
            clasp_buf_puts(b, " over ");
            md_text(b, p.a->label);
            clasp_buf_puts(b, " |");
        }
    clasp_buf_puts(b, "\n|---|");
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++)
            if (md_pair_shown(m, i, j, strongest)) clasp_buf_puts(b, "---:|");
    for (int c = 0; c <= k; c++) {
        clasp_buf_puts(b, "\n| ");
        if (c < k) md_text(b, r->class_names[c]);
        else clasp_buf_puts(b, "**all**");
        clasp_buf_puts(b, " |");
        for (int i = 0; i < m->n_attacks; i++)
            for (int j = i + 1; j < m->n_attacks; j++) {
                if (!md_pair_shown(m, i, j, strongest)) continue;
                attack_pair p = make_pair(&m->attacks[i], &m->attacks[j], k);
                double g = c < k ? class_robust(p.a, c) - class_robust(p.b, c)
                                 : summarize(p.a, k).robust_acc - summarize(p.b, k).robust_acc;
                clasp_buf_printf(b, " %+.1f |", 100 * g);
            }
    }
    clasp_buf_puts(b, "\n");
}

/* Past this many classes the flow table is a wall of numbers; the heat map
 * and report.json carry it instead. */
#define MD_FLOW_MAX_CLASSES 20

static void md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a);

static void md_flow(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes;
    const clasp_attack_report *a = &m->attacks[strongest_attack(m, k)];
    clasp_buf_puts(b, "\n### Flow under the strongest attack (");
    md_text(b, a->label);
    clasp_buf_puts(b, ")\n\n");
    md_flow_table(b, r, a);
}

static void md_flow_table(clasp_buf *b, const clasp_report *r, const clasp_attack_report *a)
{
    int k = r->num_classes;
    if (k > MD_FLOW_MAX_CLASSES) {
        clasp_buf_puts(b, "Too many classes for a table: see the flow chart below and "
                          "report.json.\n");
        return;
    }
    clasp_buf_puts(b, "Rows: true class; columns: prediction on the attacked example.\n\n"
                      "| true \\\\ predicted |");
    for (int c = 0; c < k; c++) {
        clasp_buf_puts(b, " ");
        md_text(b, r->class_names[c]);
        clasp_buf_puts(b, " |");
    }
    clasp_buf_puts(b, "\n|---|");
    for (int c = 0; c < k; c++) clasp_buf_puts(b, "---:|");
    for (int i = 0; i < k; i++) {
        clasp_buf_puts(b, "\n| ");
        md_text(b, r->class_names[i]);
        clasp_buf_puts(b, " |");
        for (int j = 0; j < k; j++)
            clasp_buf_printf(b, " %lld |", (long long)a->flow[(size_t)i * k + j]);
    }
    clasp_buf_puts(b, "\n");
}

/* Ensembles and worst cases: per class, robust accuracy and which member
 * flipped the class's examples first, then the worst case's flow. */
static void md_worst(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, budgets = 0;
    double seen[16];
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (a->derived || a->linf_eps <= 0) continue;
        int known = 0;
        for (int i = 0; i < budgets; i++) known |= seen[i] == a->linf_eps;
        if (!known && budgets < 16) seen[budgets++] = a->linf_eps;
    }
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (!a->n_members) continue;
        attack_summary s = summarize(a, k);
        clasp_buf_puts(b, "\n### ");
        clasp_buf_puts(b, a->derived ? "Worst case per example: " : "Ensemble: ");
        md_text(b, a->label);
        clasp_buf_puts(b, "\n\n");
        if (a->derived) {
            clasp_buf_printf(b, "Over every listed L-inf attack with eps = %g: ", a->linf_eps);
            for (int i = 0; i < a->n_members; i++) {
                clasp_buf_puts(b, i ? ", " : "");
                md_text(b, a->member_labels[i]);
            }
            clasp_buf_puts(b, ". An example counts as robust only if it is classified correctly clean "
                              "and none of them flipped it; \"flipped first\" credits the first in list "
                              "order. Unbounded attacks (no eps, e.g. cw) are left out.");
            if (budgets > 1) {
                clasp_buf_puts(b, " The listed L-inf attacks use different budgets (eps");
                for (int i = 0; i < budgets; i++) clasp_buf_printf(b, "%s %g", i ? "," : "", seen[i]);
                clasp_buf_puts(b, "), so worst cases are grouped by eps; a budget with a single "
                                  "attack has none.");
            }
            clasp_buf_puts(b, "\n\n");
        } else {
            clasp_buf_puts(b, "A cascade: each attack runs only on the clean-correct examples that "
                              "every earlier one failed to flip; an example counts as robust only if "
                              "all failed. Time: ");
            md_duration(b, a->seconds);
            for (int i = 0; i < a->n_members; i++) {
                clasp_buf_puts(b, i ? ", " : " (");
                md_text(b, a->member_labels[i]);
                clasp_buf_puts(b, " ");
                md_duration(b, a->member_seconds ? a->member_seconds[i] : 0);
            }
            clasp_buf_puts(b, ").\n\n");
        }
        clasp_buf_puts(b, "| Class | n | Clean-correct | Robust |");
        for (int i = 0; i < a->n_members; i++) {
            clasp_buf_puts(b, " flipped first by ");
            md_text(b, a->member_labels[i]);
            clasp_buf_puts(b, " |");
        }
        clasp_buf_puts(b, "\n|---|---:|---:|---:|");
        for (int i = 0; i < a->n_members; i++) clasp_buf_puts(b, "---:|");
        for (int c = 0; c <= k; c++) {
            clasp_buf_puts(b, "\n| ");
            if (c < k) md_text(b, r->class_names[c]);
            else clasp_buf_puts(b, "**all**");
            if (c < k)
                clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)a->count[c],
                                 (long long)a->clean_correct[c], 100 * class_robust(a, c));
            else
                clasp_buf_printf(b, " | %lld | %lld | %.1f |", (long long)s.count, (long long)s.clean,
                                 100 * s.robust_acc);
            for (int i = 0; i < a->n_members; i++) {
                int64_t v = 0;
                for (int cc = c < k ? c : 0; cc < (c < k ? c + 1 : k); cc++)
                    v += a->first_flip[(size_t)cc * (size_t)a->n_members + (size_t)i];
                clasp_buf_printf(b, " %lld |", (long long)v);
            }
        }
        clasp_buf_puts(b, "\n\nFlow of the worst case (misclassified clean examples keep their clean "
                          "prediction):\n\n");
        md_flow_table(b, r, a);
    }
}

static void md_weights(clasp_buf *b, const clasp_report *r, const float *w, const char *fmt)
{
    for (int c = 0; c < r->num_classes; c++) {
        clasp_buf_puts(b, c ? ", " : "");
        md_class(b, r->class_names[c]);
        clasp_buf_printf(b, fmt, (double)w[c]);
    }
}

static void md_epoch(clasp_buf *b, const clasp_report *r, const clasp_epoch_report *e)
{
    int k = r->num_classes;
    clasp_buf_printf(b, "- Epoch %d: loss %.4f, lr %.4g, ", e->epoch, e->train_loss, e->lr);
    md_duration(b, e->seconds);
    if (epoch_has_val(e, k)) {
        int64_t n = clasp_class_sum(e->val_count, k);
        clasp_buf_printf(b, "; validation clean %.1f%%",
                         100 * clasp_rate(clasp_class_sum(e->val_clean, k), n));
        if (e->val_robust)
            clasp_buf_printf(b, ", robust %.1f%%", 100 * clasp_rate(clasp_class_sum(e->val_robust, k), n));
        const int64_t *v = epoch_val_metric(e);
        int worst, best;
        extreme_classes(v, e->val_count, k, &worst, &best);
        clasp_buf_puts(b, ", worst class ");
        md_class(b, r->class_names[worst]);
        clasp_buf_printf(b, " (%.1f%% %s)", 100 * clasp_rate(v[worst], e->val_count[worst]),
                         e->val_robust ? "robust" : "clean");
    }
    if (e->class_weights) {
        clasp_buf_puts(b, "; class weights: ");
        md_weights(b, r, e->class_weights, " %.2f");
    }
    clasp_buf_puts(b, "\n");
}

static void md_training(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    if (m->n_epochs > 0) {
        clasp_buf_puts(b, "\n### Training\n\n");
        for (int i = 0; i < m->n_epochs; i++) md_epoch(b, r, &m->epochs[i]);
    }
    if (m->calibrated) {
        clasp_buf_printf(b, "\n### Calibration\n\nTemperature %.3f (for probabilities only: "
                            "predictions and every attack use the logits plus the offsets, never "
                            "divided by the temperature, so it cannot mask gradients)",
                         (double)m->calib_temperature);
        if (m->calib_offsets) {
            clasp_buf_puts(b, "; per-class logit offsets: ");
            md_weights(b, r, m->calib_offsets, " %+.3f");
        }
        clasp_buf_puts(b, ".\n");
    }
}

static void md_link(clasp_buf *b, const char *what, const char *label, const char *stem,
                    const char *kind)
{
    char rel[STEM_MAX + 32];
    chart_rel(rel, sizeof rel, stem, kind);
    clasp_buf_printf(b, "- %s", what);
    if (label) md_text(b, label);
    clasp_buf_printf(b, ": [%s](%s)\n", rel, rel);
}

static void md_charts(clasp_buf *b, const clasp_report *r, const clasp_model_report *m,
                      const chart_plan *plan, int mi)
{
    clasp_buf_puts(b, "\n### Charts\n\n");
    for (int j = 0; j < m->n_attacks; j++) {
        const char *stem = plan->pair[plan->first[mi] + j], *label = m->attacks[j].label;
        md_link(b, "Per-class clean and robust accuracy, ", label, stem, "classes");
        md_link(b, "Flow heat map, ", label, stem, "flow");
    }
    if (clasp_svg_epochs_wanted(r, m))
        md_link(b, "Per-class validation accuracy by epoch", NULL, plan->model[mi], "epochs");
}

static void md_model(clasp_buf *b, const clasp_report *r, const chart_plan *plan, int mi)
{
    const clasp_model_report *m = &r->models[mi];
    md_model_intro(b, m);
    if (m->n_attacks > 0) {
        md_class_table(b, r, m);
        clasp_buf_puts(b, "\n");
        for (int j = 0; j < m->n_attacks; j++) md_attack_line(b, r, &m->attacks[j]);
        int n_linf = 0;
        for (int j = 0; j < m->n_attacks; j++) n_linf += !m->attacks[j].unbounded && !m->attacks[j].derived;
        if (n_linf > 1) md_gains(b, r, m);
        md_flow(b, r, m);
        md_worst(b, r, m);
        report_md_masking(b, r, m);
        report_md_l2(b, r, m);
        report_md_relations(b, r, m);
    } else {
        clasp_buf_puts(b, "\nNo attacks were evaluated on this model.\n");
    }
    md_training(b, r, m);
    if (m->n_attacks > 0 || clasp_svg_epochs_wanted(r, m)) md_charts(b, r, m, plan, mi);
}

static clasp_status write_md(const clasp_report *r, const chart_plan *plan, const char *path)
{
    clasp_buf b = {0};
    md_header(&b, r);
    for (int i = 0; i < r->n_models; i++) md_model(&b, r, plan, i);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}

/* ---- the whole report -------------------------------------------------- */

/* "<dir>/<name>" in a new string. */
static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

typedef enum chart_kind { CHART_CLASSES, CHART_FLOW, CHART_EPOCHS } chart_kind;

static clasp_status write_chart(const char *dir, const char *stem, chart_kind kind,
                                const clasp_report *r, const clasp_model_report *m,
                                const clasp_attack_report *a)
{
    static const char *const names[] = {"classes", "flow", "epochs"};
    char rel[STEM_MAX + 32];
    chart_rel(rel, sizeof rel, stem, names[kind]);
    char *path = join_path(dir, rel);
    if (!path) return clasp_error(CLASP_ERR_NOMEM, "%s/%s: out of memory", dir, rel);
    clasp_status s = kind == CHART_CLASSES ? clasp_svg_classes(path, r, m, a)
                   : kind == CHART_FLOW    ? clasp_svg_flow(path, r, m, a)
                                           : clasp_svg_epochs(path, r, m);
    free(path);
    return s;
}

static clasp_status write_charts(const clasp_report *r, const chart_plan *plan, const char *dir)
{
    char *charts = join_path(dir, "charts");
    if (!charts) return clasp_error(CLASP_ERR_NOMEM, "%s/charts: out of memory", dir);
    if (mkdir(charts, 0777) != 0 && errno != EEXIST) {
        clasp_status s = clasp_error(CLASP_ERR_IO, "%s: %s", charts, strerror(errno));
        free(charts);
        return s;
    }
    free(charts);
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        for (int j = 0; j < m->n_attacks; j++) {
            const char *stem = plan->pair[plan->first[i] + j];
            CLASP_TRY(write_chart(dir, stem, CHART_CLASSES, r, m, &m->attacks[j]));
            CLASP_TRY(write_chart(dir, stem, CHART_FLOW, r, m, &m->attacks[j]));
        }
        if (clasp_svg_epochs_wanted(r, m))
            CLASP_TRY(write_chart(dir, plan->model[i], CHART_EPOCHS, r, m, NULL));
    }
    return CLASP_OK;
}

typedef clasp_status (*file_writer)(const clasp_report *r, const chart_plan *plan,
                                    const char *path);

static clasp_status write_file(const clasp_report *r, const chart_plan *plan, const char *dir,
                               const char *name, file_writer fn)
{
    char *path = join_path(dir, name);
    if (!path) return clasp_error(CLASP_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    clasp_status s = fn(r, plan, path);
    free(path);
    return s;
}

static clasp_status check_attack(const clasp_attack_report *a, const char *model)
{
    if (!a->count || !a->clean_correct || !a->robust_correct || !a->success || !a->flow)
        return clasp_error(CLASP_ERR_INVALID, "report: model %s, attack %s: missing counts",
                           model, a->label);
    return CLASP_OK;
}

static clasp_status check_report(const clasp_report *r, const char *dir)
{
    if (!r || !dir) return clasp_error(CLASP_ERR_INVALID, "clasp_report_write: NULL argument");
    if (r->num_classes < 1 || !r->class_names)
        return clasp_error(CLASP_ERR_INVALID, "report: no classes");
    if (r->n_models < 0 || (r->n_models > 0 && !r->models))
        return clasp_error(CLASP_ERR_INVALID, "report: bad model list");
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        if (m->n_attacks < 0 || (m->n_attacks > 0 && !m->attacks) || m->n_epochs < 0 ||
            (m->n_epochs > 0 && !m->epochs))
            return clasp_error(CLASP_ERR_INVALID, "report: model %s: bad attack or epoch list",
                               m->name);
        for (int j = 0; j < m->n_attacks; j++) CLASP_TRY(check_attack(&m->attacks[j], m->name));
    }
    struct stat st;
    if (stat(dir, &st) != 0) return clasp_error(CLASP_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return clasp_error(CLASP_ERR_IO, "%s: not a directory", dir);
    return CLASP_OK;
}

clasp_status clasp_report_write(const clasp_report *given, const char *dir)
{
    CLASP_TRY(check_report(given, dir));
    /* The worst cases over the listed attacks join each model's entries. */
    clasp_report aug;
    CLASP_TRY(report_worst_augment(given, &aug));
    const clasp_report *r = &aug;
    chart_plan plan = {0};
    clasp_status s = plan_charts(r, &plan);
    if (s != CLASP_OK) {
        report_worst_free(&aug);
        return s;
    }
    s = write_charts(r, &plan, dir);
    if (s == CLASP_OK) s = write_file(r, &plan, dir, "per_class.csv", write_csv);
    if (s == CLASP_OK) s = write_file(r, &plan, dir, "report.md", write_md);
    if (s == CLASP_OK) {
        char *charts = join_path(dir, "charts");
        if (charts) clasp_sync_dir(charts);
        free(charts);
        s = write_file(r, &plan, dir, "report.json", write_json);
    }
    if (s == CLASP_OK) clasp_sync_dir(dir);
    plan_free(&plan);
    report_worst_free(&aug);
    return s;
}
