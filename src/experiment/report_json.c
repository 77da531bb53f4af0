/* report.json: everything, for machines. The header here; then, model by
 * model, the sections of report/sections.c in their order, each adding its
 * keys to the model's object. */
#include "experiment/report_internal.h"

#include "experiment/report/section.h"

/* {"index": c, "name": ..., vkey: v}, or null when c < 0. */
json_object *report_json_class(const clasp_report *r, int c, const char *vkey, double v, int *bad)
{
    if (c < 0) return NULL;
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "index", clasp_json_int(c, bad), bad);
    clasp_json_set(o, "name", clasp_json_str(r->class_names[c], bad), bad);
    clasp_json_set(o, vkey, clasp_json_num(v, bad), bad);
    return o;
}

static json_object *json_header(const clasp_report *r, int *bad)
{
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "experiment", clasp_json_str(r->experiment, bad), bad);
    clasp_json_set(o, "clasp_version", clasp_json_str(r->clasp_version, bad), bad);
    clasp_json_set(o, "device", clasp_json_str(r->device, bad), bad);
    clasp_json_set(o, "seed", clasp_json_u64(r->seed, bad), bad);
    json_object *d = clasp_json_obj(bad);
    clasp_json_set(d, "name", clasp_json_str(r->dataset, bad), bad);
    clasp_json_set(d, "train_size", clasp_json_int((int64_t)r->train_size, bad), bad);
    clasp_json_set(d, "val_size", clasp_json_int((int64_t)r->val_size, bad), bad);
    clasp_json_set(d, "test_size", clasp_json_int((int64_t)r->test_size, bad), bad);
    clasp_json_set(d, "num_classes", clasp_json_int(r->num_classes, bad), bad);
    clasp_json_set(o, "dataset", d, bad);
    json_object *names = clasp_json_arr(bad);
    for (int c = 0; c < r->num_classes; c++)
        clasp_json_push(names, clasp_json_str(r->class_names[c], bad), bad);
    clasp_json_set(o, "class_names", names, bad);
    clasp_json_set(o, "config_path", clasp_json_str(r->config_path, bad), bad);
    clasp_json_set(o, "config", clasp_json_str(r->config_yaml, bad), bad);
    clasp_json_set(o, "started", clasp_json_str(r->started, bad), bad);
    clasp_json_set(o, "wall_seconds", clasp_json_num(r->wall_seconds, bad), bad);
    return o;
}

clasp_status report_write_json(const clasp_report *r, const chart_plan *plan, const char *path)
{
    int bad = 0;
    json_object *root = json_header(r, &bad);
    json_object *models = clasp_json_arr(&bad);
    for (int i = 0; i < r->n_models; i++) {
        model_facts f;
        clasp_status s = report_facts_compute(r, i, &f);
        if (s != CLASP_OK) {
            json_object_put(root);
            json_object_put(models);
            return s;
        }
        report_ctx x = {r, &r->models[i], &f, plan, i};
        json_object *o = clasp_json_obj(&bad);
        for (int j = 0; j < report_n_sections; j++)
            if (report_sections[j].json) report_sections[j].json(o, &x, &bad);
        clasp_json_push(models, o, &bad);
        report_facts_free(&f);
    }
    clasp_json_set(root, "models", models, &bad);
    clasp_status s = clasp_json_write(root, bad, path);
    json_object_put(root);
    return s;
}
