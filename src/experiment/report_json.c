/* report.json: everything, for machines. */
#include "experiment/report_internal.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/report_relations.h"

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
    int64_t n = clasp_class_sum(e->val.count, k);
    jset(v, "count", jints(e->val.count, k, bad), bad);
    jset(v, "clean_correct", jints(e->val.clean_correct, k, bad), bad);
    jset(v, "clean_acc", jrates(e->val.clean_correct, e->val.count, k, bad), bad);
    jset_num(v, "clean_overall", clasp_rate(clasp_class_sum(e->val.clean_correct, k), n), bad);
    if (e->val.robust_correct) {
        jset(v, "robust_correct", jints(e->val.robust_correct, k, bad), bad);
        jset(v, "robust_acc", jrates(e->val.robust_correct, e->val.count, k, bad), bad);
        jset_num(v, "robust_overall", clasp_rate(clasp_class_sum(e->val.robust_correct, k), n),
                 bad);
    } else {
        jset_null(v, "robust_correct", bad);
        jset_null(v, "robust_acc", bad);
        jset_null(v, "robust_overall", bad);
    }
    const int64_t *metric = report_epoch_val_metric(e);
    int worst, best;
    report_extreme_classes(metric, e->val.count, k, &worst, &best);
    jset_str(v, "worst_by", e->val.robust_correct ? "robust" : "clean", bad);
    jset_class(v, "worst_class", r, worst, "acc",
               worst < 0 ? 0 : clasp_rate(metric[worst], e->val.count[worst]), bad);
    return v;
}

static json_object *json_epoch(const clasp_report *r, const clasp_epoch_report *e, int *bad)
{
    json_object *o = json_object_new_object();
    jset_int(o, "epoch", e->epoch, bad);
    jset_num(o, "train_loss", e->train_loss, bad);
    jset_num(o, "lr", e->lr, bad);
    jset_num(o, "seconds", e->seconds, bad);
    if (report_epoch_has_val(e, r->num_classes))
        jset(o, "validation", json_validation(r, e, bad), bad);
    else jset_null(o, "validation", bad);
    if (e->class_weights)
        jset(o, "class_weights", jfloats(e->class_weights, r->num_classes, bad), bad);
    else jset_null(o, "class_weights", bad);
    return o;
}

static json_object *json_class_row(const clasp_report *r, const clasp_attack_report *a, int c,
                                   int *bad)
{
    json_object *o = json_object_new_object();
    jset_int(o, "class_index", c, bad);
    jset_str(o, "class", r->class_names[c], bad);
    jset_int(o, "count", a->per_class.count[c], bad);
    jset_int(o, "clean_correct", a->per_class.clean_correct[c], bad);
    jset_num(o, "clean_acc", clasp_rate(a->per_class.clean_correct[c], a->per_class.count[c]), bad);
    jset_int(o, "robust_correct", a->per_class.robust_correct[c], bad);
    jset_num(o, "robust_acc", clasp_rate(a->per_class.robust_correct[c], a->per_class.count[c]),
             bad);
    jset_int(o, "success", a->success[c], bad);
    jset_num(o, "success_rate", clasp_rate(a->success[c], a->per_class.clean_correct[c]), bad);
    return o;
}

static json_object *json_summary(const clasp_report *r, const clasp_attack_report *a, int *bad)
{
    attack_summary s = report_summarize(a, r->num_classes);
    json_object *o = json_object_new_object();
    jset_int(o, "count", s.count, bad);
    jset_int(o, "clean_correct", s.clean, bad);
    jset_int(o, "robust_correct", s.robust, bad);
    jset_int(o, "success", s.success, bad);
    jset_num(o, "clean_acc", s.clean_acc, bad);
    jset_num(o, "robust_acc", s.robust_acc, bad);
    jset_num(o, "success_rate", s.success_rate, bad);
    jset_class(o, "worst_class", r, s.worst, "robust_acc",
               s.worst < 0 ? 0 : report_class_robust(a, s.worst), bad);
    jset_class(o, "best_class", r, s.best, "robust_acc",
               s.best < 0 ? 0 : report_class_robust(a, s.best), bad);
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
    report_chart_rel(rel, sizeof rel, stem, "classes");
    jset_str(charts, "classes", rel, bad);
    report_chart_rel(rel, sizeof rel, stem, "flow");
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
    for (int c = 0; c < k; c++)
        jpush(gain, jdouble(report_class_robust(p.a, c) - report_class_robust(p.b, c)), bad);
    if (!gain) *bad = 1;
    jset(o, "gain", gain, bad);
    jset_num(o, "overall_gain",
             report_summarize(p.a, k).robust_acc - report_summarize(p.b, k).robust_acc, bad);
    return o;
}

static json_object *json_calibration(const clasp_report *r, const clasp_model_report *m, int *bad)
{
    json_object *o = json_object_new_object();
    jset(o, "enabled", json_object_new_boolean(m->calibrated != 0), bad);
    if (m->calibrated) {
        jset_num(o, "temperature", m->calib_temperature, bad);
        if (m->calib_offsets)
            jset(o, "offsets", jfloats(m->calib_offsets, r->num_classes, bad), bad);
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
                jpush(pairs,
                      json_pair(r, report_make_pair(&m->attacks[i], &m->attacks[j], r->num_classes),
                                bad),
                      bad);
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
    /* Where an existing model came from ("" for one trained from the seed). */
    jset_str(o, "source", m->source, bad);
    jset(o, "source_epochs", json_object_new_int(m->source_epochs), bad);
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
        report_chart_rel(rel, sizeof rel, plan->model[mi], "epochs");
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
    for (int c = 0; c < r->num_classes; c++)
        jpush(names, json_object_new_string(r->class_names[c]), bad);
    if (!names) *bad = 1;
    jset(o, "class_names", names, bad);
    jset_str(o, "config_path", r->config_path, bad);
    jset_str(o, "config", r->config_yaml, bad);
    jset_str(o, "started", r->started, bad);
    jset_num(o, "wall_seconds", r->wall_seconds, bad);
    return o;
}

clasp_status report_write_json(const clasp_report *r, const chart_plan *plan, const char *path)
{
    int bad = 0;
    json_object *root = json_header(r, &bad);
    json_object *models = json_object_new_array();
    for (int i = 0; i < r->n_models; i++)
        jpush(models, json_model(r, &r->models[i], plan, i, &bad), &bad);
    if (!models) bad = 1;
    jset(root, "models", models, &bad);
    const char *text =
        bad ? NULL
            : json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE);
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
