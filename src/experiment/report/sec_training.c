/* Section "training": the epochs (loss, learning rate, validation and its
 * worst class, class weights) and the calibration. */
#include "experiment/report/section.h"

#include "clasp/counts.h"

static void md_weights(clasp_buf *b, const clasp_report *r, const float *w, const char *fmt)
{
    for (int c = 0; c < r->num_classes; c++) {
        clasp_buf_puts(b, c ? ", " : "");
        report_md_class(b, r->class_names[c]);
        clasp_buf_printf(b, fmt, (double)w[c]);
    }
}

static void md_epoch(clasp_buf *b, const clasp_report *r, const clasp_epoch_report *e)
{
    int k = r->num_classes;
    clasp_buf_printf(b, "- Epoch %d: loss %.4f, lr %.4g, ", e->epoch, e->train_loss, e->lr);
    report_md_duration(b, e->seconds);
    if (report_epoch_has_val(e, k)) {
        int64_t n = clasp_class_sum(e->val.count, k);
        clasp_buf_printf(b, "; validation clean %.1f%%",
                         100 * clasp_rate(clasp_class_sum(e->val.clean_correct, k), n));
        if (e->val.robust_correct)
            clasp_buf_printf(b, ", robust %.1f%%",
                             100 * clasp_rate(clasp_class_sum(e->val.robust_correct, k), n));
        const int64_t *v = report_epoch_val_metric(e);
        int worst, best;
        report_extreme_classes(v, e->val.count, k, &worst, &best);
        clasp_buf_puts(b, ", worst class ");
        report_md_class(b, r->class_names[worst]);
        clasp_buf_printf(b, " (%.1f%% %s)", 100 * clasp_rate(v[worst], e->val.count[worst]),
                         e->val.robust_correct ? "robust" : "clean");
    }
    if (e->class_weights) {
        clasp_buf_puts(b, "; class weights: ");
        if (k > REPORT_SMALL_CLASSES) clasp_buf_puts(b, "in report.json");
        else md_weights(b, r, e->class_weights, " %.2f");
    }
    clasp_buf_puts(b, "\n");
}

void sec_training_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_report *r = x->r;
    const clasp_model_report *m = x->m;
    if (m->n_epochs > 0) {
        clasp_buf_puts(b, "\n### Training\n\n");
        for (int i = 0; i < m->n_epochs; i++) md_epoch(b, r, &m->epochs[i]);
    }
    if (m->calibrated) {
        clasp_buf_printf(b,
                         "\n### Calibration\n\nTemperature %.3f (for probabilities only: "
                         "predictions and every attack use the logits plus the offsets, never "
                         "divided by the temperature, so it cannot mask gradients)",
                         (double)m->calib_temperature);
        if (m->calib_offsets) {
            clasp_buf_puts(b, "; per-class logit offsets: ");
            if (r->num_classes > REPORT_SMALL_CLASSES) clasp_buf_puts(b, "in report.json");
            else md_weights(b, r, m->calib_offsets, " %+.3f");
        }
        clasp_buf_puts(b, ".\n");
    }
}

void sec_calibration_json(json_object *o, const report_ctx *x, int *bad)
{
    const clasp_model_report *m = x->m;
    json_object *c = clasp_json_obj(bad);
    clasp_json_set(c, "enabled", clasp_json_bool(m->calibrated, bad), bad);
    if (m->calibrated) {
        clasp_json_set(c, "temperature", clasp_json_num(m->calib_temperature, bad), bad);
        clasp_json_set(c, "offsets", clasp_json_floats(m->calib_offsets, x->r->num_classes, bad),
                       bad);
    }
    clasp_json_set(o, "calibration", c, bad);
}

static json_object *json_rates(const int64_t *num, const int64_t *den, int n, int *bad)
{
    json_object *arr = clasp_json_arr(bad);
    for (int i = 0; i < n; i++)
        clasp_json_push(arr, clasp_json_num(clasp_rate(num[i], den[i]), bad), bad);
    return arr;
}

static json_object *json_validation(const clasp_report *r, const clasp_epoch_report *e, int *bad)
{
    int k = r->num_classes;
    json_object *v = clasp_json_obj(bad);
    int64_t n = clasp_class_sum(e->val.count, k);
    clasp_json_set(v, "count", clasp_json_ints(e->val.count, k, bad), bad);
    clasp_json_set(v, "clean_correct", clasp_json_ints(e->val.clean_correct, k, bad), bad);
    clasp_json_set(v, "clean_acc", json_rates(e->val.clean_correct, e->val.count, k, bad), bad);
    clasp_json_set(v, "clean_overall",
                   clasp_json_num(clasp_rate(clasp_class_sum(e->val.clean_correct, k), n), bad),
                   bad);
    if (e->val.robust_correct) {
        clasp_json_set(v, "robust_correct", clasp_json_ints(e->val.robust_correct, k, bad), bad);
        clasp_json_set(v, "robust_acc", json_rates(e->val.robust_correct, e->val.count, k, bad),
                       bad);
        clasp_json_set(v, "robust_overall",
                       clasp_json_num(clasp_rate(clasp_class_sum(e->val.robust_correct, k), n),
                                      bad),
                       bad);
    } else {
        clasp_json_set(v, "robust_correct", NULL, bad);
        clasp_json_set(v, "robust_acc", NULL, bad);
        clasp_json_set(v, "robust_overall", NULL, bad);
    }
    const int64_t *metric = report_epoch_val_metric(e);
    int worst, best;
    report_extreme_classes(metric, e->val.count, k, &worst, &best);
    clasp_json_set(v, "worst_by", clasp_json_str(e->val.robust_correct ? "robust" : "clean", bad),
                   bad);
    clasp_json_set(v, "worst_class",
                   report_json_class(r, worst, "acc",
                                     worst < 0 ? 0 : clasp_rate(metric[worst], e->val.count[worst]),
                                     bad),
                   bad);
    return v;
}

static json_object *json_epoch(const clasp_report *r, const clasp_epoch_report *e, int *bad)
{
    json_object *o = clasp_json_obj(bad);
    clasp_json_set(o, "epoch", clasp_json_int(e->epoch, bad), bad);
    clasp_json_set(o, "train_loss", clasp_json_num(e->train_loss, bad), bad);
    clasp_json_set(o, "lr", clasp_json_num(e->lr, bad), bad);
    clasp_json_set(o, "seconds", clasp_json_num(e->seconds, bad), bad);
    clasp_json_set(o, "validation",
                   report_epoch_has_val(e, r->num_classes) ? json_validation(r, e, bad) : NULL,
                   bad);
    clasp_json_set(o, "class_weights", clasp_json_floats(e->class_weights, r->num_classes, bad),
                   bad);
    return o;
}

void sec_epochs_json(json_object *o, const report_ctx *x, int *bad)
{
    json_object *epochs = clasp_json_arr(bad);
    for (int i = 0; i < x->m->n_epochs; i++)
        clasp_json_push(epochs, json_epoch(x->r, &x->m->epochs[i], bad), bad);
    clasp_json_set(o, "epochs", epochs, bad);
}
