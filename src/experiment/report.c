/* The class-wise report: report.json (everything, for machines),
 * per_class.csv (one row per model, attack and class, for spreadsheets),
 * report.md (what a person reads first) and the SVG charts. report.json is
 * written last, so its presence marks a complete report. This file checks
 * the input and writes the files in that order; report_internal.h says
 * which file builds what. */
#include "clasp/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "experiment/report_internal.h"
#include "experiment/report_worst.h"

typedef clasp_status (*file_writer)(const clasp_report *r, const chart_plan *plan,
                                    const char *path);

static clasp_status write_file(const clasp_report *r, const chart_plan *plan, const char *dir,
                               const char *name, file_writer fn)
{
    char *path = report_join_path(dir, name);
    if (!path) return clasp_error(CLASP_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    clasp_status s = fn(r, plan, path);
    free(path);
    return s;
}

static clasp_status check_attack(const clasp_attack_report *a, const char *model)
{
    if (!a->per_class.count || !a->per_class.clean_correct || !a->per_class.robust_correct ||
        !a->success || !a->flow)
        return clasp_error(CLASP_ERR_INVALID, "report: model %s, attack %s: missing counts", model,
                           a->label);
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
    clasp_status s = report_plan_charts(r, &plan);
    if (s != CLASP_OK) {
        report_worst_free(&aug);
        return s;
    }
    s = report_write_charts(r, &plan, dir);
    if (s == CLASP_OK) s = write_file(r, &plan, dir, "per_class.csv", report_write_csv);
    if (s == CLASP_OK) s = write_file(r, &plan, dir, "report.md", report_write_md);
    if (s == CLASP_OK) {
        char *charts = report_join_path(dir, "charts");
        if (charts) clasp_sync_dir(charts);
        free(charts);
        s = write_file(r, &plan, dir, "report.json", report_write_json);
    }
    if (s == CLASP_OK) clasp_sync_dir(dir);
    report_plan_free(&plan);
    report_worst_free(&aug);
    return s;
}
