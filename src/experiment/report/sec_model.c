/* Section "model": what the model is (defense, source, checkpoint) and
 * how long it took. */
#include "experiment/model_fields.h"
#include "experiment/report/section.h"

void sec_model_md(clasp_buf *b, const report_ctx *x)
{
    const clasp_model_report *m = x->m;
    clasp_buf_puts(b, "\n## Model: ");
    report_md_text(b, m->name);
    clasp_buf_puts(b, "\n\n");
    if (m->source[0]) {
        clasp_buf_puts(b, "Existing model ");
        report_md_code(b, m->source);
        clasp_buf_puts(b, m->source_epochs ? ", fine-tuned; "
                          : m->defense[0]  ? ", fitted post hoc; "
                                           : ", evaluated as it is");
    }
    if (m->defense[0]) {
        clasp_buf_puts(b, "Defense ");
        report_md_code(b, m->defense);
        if (m->params[0]) {
            clasp_buf_puts(b, " (");
            report_md_text(b, m->params);
            clasp_buf_puts(b, ")");
        }
    } else if (!m->source[0] || m->source_epochs) {
        clasp_buf_puts(b, "Standard training");
    }
    if (m->checkpoint[0]) {
        clasp_buf_puts(b, "; checkpoint ");
        report_md_code(b, m->checkpoint);
    }
    /* An existing model evaluated as it is was not trained here. */
    if (m->source[0] && !m->source_epochs && !m->defense[0] && m->train_seconds == 0) {
        clasp_buf_puts(b, ". Evaluation took ");
    } else {
        clasp_buf_puts(b, ". Training took ");
        report_md_duration(b, m->train_seconds);
        clasp_buf_puts(b, ", evaluation ");
    }
    report_md_duration(b, m->eval_seconds);
    clasp_buf_puts(b, ".\n");
}

/* The model report's fields marked for the report (model_fields.c), in
 * table order. */
void sec_model_json(json_object *o, const report_ctx *x, int *bad)
{
    model_fields_json(o, x->m, x->r->num_classes, MF_REPORT, clasp_json_num, bad);
}

void sec_timings_json(json_object *o, const report_ctx *x, int *bad)
{
    json_object *t = clasp_json_obj(bad);
    clasp_json_set(t, "train_seconds", clasp_json_num(x->m->train_seconds, bad), bad);
    clasp_json_set(t, "eval_seconds", clasp_json_num(x->m->eval_seconds, bad), bad);
    clasp_json_set(o, "timings", t, bad);
}
