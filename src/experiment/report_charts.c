/* The report's chart files: one name per chart, unique within the
 * report, and the charts written under <dir>/charts. */
#include "experiment/report_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void report_plan_free(chart_plan *p)
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

clasp_status report_plan_charts(const clasp_report *r, chart_plan *p)
{
    int total = 0;
    for (int i = 0; i < r->n_models; i++) total += r->models[i].n_attacks;
    p->pair = calloc(total > 0 ? (size_t)total : 1, sizeof *p->pair);
    p->model = calloc(r->n_models > 0 ? (size_t)r->n_models : 1, sizeof *p->model);
    p->first = calloc(r->n_models > 0 ? (size_t)r->n_models : 1, sizeof *p->first);
    if (!p->pair || !p->model || !p->first) {
        report_plan_free(p);
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
void report_chart_rel(char *out, size_t size, const char *stem, const char *kind)
{
    snprintf(out, size, "charts/%s-%s.svg", stem, kind);
}
/* "<dir>/<name>" in a new string. */
char *report_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int report_has_bars(const clasp_report *r)
{
    return r->num_classes <= REPORT_SMALL_CLASSES;
}

int report_has_heatmap(const clasp_report *r)
{
    return r->num_classes <= REPORT_HEATMAP_MAX_CLASSES;
}

int report_has_epochs_chart(const clasp_report *r, const clasp_model_report *m)
{
    return r->num_classes <= REPORT_HEATMAP_MAX_CLASSES && clasp_svg_epochs_wanted(r, m);
}

int report_has_curves(const clasp_report *r, const clasp_model_report *m)
{
    return r->num_classes > REPORT_SMALL_CLASSES && m->n_attacks > 0;
}

typedef enum chart_kind {
    CHART_CLASSES,
    CHART_FLOW,
    CHART_EPOCHS,
    CHART_CURVE,
    CHART_HISTOGRAM
} chart_kind;

static clasp_status write_chart(const char *dir, const char *stem, chart_kind kind,
                                const clasp_report *r, const clasp_model_report *m,
                                const clasp_attack_report *a)
{
    static const char *const names[] = {"classes", "flow", "epochs", "curve", "histogram"};
    char rel[STEM_MAX + 32];
    report_chart_rel(rel, sizeof rel, stem, names[kind]);
    char *path = report_join_path(dir, rel);
    if (!path) return clasp_error(CLASP_ERR_NOMEM, "%s/%s: out of memory", dir, rel);
    clasp_status s = kind == CHART_CLASSES     ? clasp_svg_classes(path, r, m, a)
                     : kind == CHART_FLOW      ? clasp_svg_flow(path, r, m, a)
                     : kind == CHART_CURVE     ? clasp_svg_curves(path, r, m)
                     : kind == CHART_HISTOGRAM ? clasp_svg_histogram(path, r, m)
                                               : clasp_svg_epochs(path, r, m);
    free(path);
    return s;
}

clasp_status report_write_charts(const clasp_report *r, const chart_plan *plan, const char *dir)
{
    char *charts = report_join_path(dir, "charts");
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
            if (report_has_bars(r))
                CLASP_TRY(write_chart(dir, stem, CHART_CLASSES, r, m, &m->attacks[j]));
            if (report_has_heatmap(r))
                CLASP_TRY(write_chart(dir, stem, CHART_FLOW, r, m, &m->attacks[j]));
        }
        if (report_has_epochs_chart(r, m))
            CLASP_TRY(write_chart(dir, plan->model[i], CHART_EPOCHS, r, m, NULL));
        if (report_has_curves(r, m)) {
            CLASP_TRY(write_chart(dir, plan->model[i], CHART_CURVE, r, m, NULL));
            CLASP_TRY(write_chart(dir, plan->model[i], CHART_HISTOGRAM, r, m, NULL));
        }
    }
    return CLASP_OK;
}
