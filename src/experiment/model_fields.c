/* The model report's field table (model_fields.h). */
#include "experiment/model_fields.h"

#include <stdint.h>

static int calibrated(const clasp_model_report *m)
{
    return m->calibrated;
}

#define MEMBER_SIZE(member) sizeof(((clasp_model_report *)0)->member)
/* The member size each type stands for (strings: any). */
#define TYPE_SIZE(type)                        \
    ((type) == MF_INT      ? sizeof(int)       \
     : (type) == MF_I64    ? sizeof(int64_t)   \
     : (type) == MF_FLOAT  ? sizeof(float)     \
     : (type) == MF_DOUBLE ? sizeof(double)    \
     : (type) == MF_FLOATS ? sizeof(float *)   \
     : (type) == MF_I32S   ? sizeof(int32_t *) \
                           : 0)
/* A row; a member whose size does not fit its type fails to compile. */
#define ROW(key, type, member, in, kept)                                                           \
    {                                                                                              \
        key, type, offsetof(clasp_model_report, member),                                           \
            MEMBER_SIZE(member) +                                                                  \
                0 * sizeof(char[(type) == MF_STR || MEMBER_SIZE(member) == TYPE_SIZE(type) ? 1     \
                                                                                           : -1]), \
            in, kept                                                                               \
    }

#define BOTH (MF_STATE | MF_REPORT)

/* clang-format off */
const model_field model_fields[] = {
    ROW("name",               MF_STR,    name,               BOTH,      NULL),
    ROW("defense",            MF_STR,    defense,            BOTH,      NULL),
    ROW("params",             MF_STR,    params,             BOTH,      NULL),
    ROW("checkpoint",         MF_STR,    checkpoint,         BOTH,      NULL),
    /* Where an existing model came from ("" for one trained from the
     * seed): set from the plan on every run, resumed ones too. */
    ROW("source",             MF_STR,    source,             MF_REPORT, NULL),
    ROW("source_epochs",      MF_INT,    source_epochs,      MF_REPORT, NULL),
    ROW("calibrated",         MF_INT,    calibrated,         MF_STATE,  NULL),
    ROW("calib_offsets",      MF_FLOATS, calib_offsets,      MF_STATE,  calibrated),
    ROW("calib_temperature",  MF_FLOAT,  calib_temperature,  MF_STATE,  NULL),
    ROW("train_seconds",      MF_DOUBLE, train_seconds,      MF_STATE,  NULL),
    ROW("eval_seconds",       MF_DOUBLE, eval_seconds,       MF_STATE,  NULL),
    /* Before the per-example arrays: their length. */
    ROW("n_examples",         MF_I64,    n_examples,         MF_STATE,  NULL),
    ROW("labels",             MF_I32S,   labels,             MF_STATE,  NULL),
    ROW("clean_pred",         MF_I32S,   clean_pred,         MF_STATE,  NULL),
    ROW("class_weight_norms", MF_FLOATS, class_weight_norms, MF_STATE,  NULL),
};
/* clang-format on */

const size_t model_n_fields = sizeof model_fields / sizeof model_fields[0];

void model_fields_json(json_object *o, const clasp_model_report *m, int num_classes, int in,
                       model_num_fn num, int *bad)
{
    for (size_t i = 0; i < model_n_fields; i++) {
        const model_field *f = &model_fields[i];
        if (!(f->in & in)) continue;
        const void *p = model_field_ptr(m, f);
        int keep = !f->kept || f->kept(m);
        json_object *v = NULL;
        switch (f->type) {
        case MF_STR: v = clasp_json_str(p, bad); break;
        case MF_INT: v = clasp_json_int(*(const int *)p, bad); break;
        case MF_I64: v = clasp_json_int(*(const int64_t *)p, bad); break;
        case MF_FLOAT: v = num((double)*(const float *)p, bad); break;
        case MF_DOUBLE: v = num(*(const double *)p, bad); break;
        case MF_FLOATS: {
            const float *a = *(float *const *)p;
            if (!keep || !a) break;
            v = clasp_json_arr(bad);
            for (int k = 0; v && k < num_classes; k++)
                clasp_json_push(v, num((double)a[k], bad), bad);
            break;
        }
        case MF_I32S: {
            const int32_t *a = *(int32_t *const *)p;
            if (!keep || !a) break;
            v = clasp_json_arr(bad);
            for (int64_t k = 0; v && k < m->n_examples; k++)
                clasp_json_push(v, clasp_json_int(a[k], bad), bad);
            break;
        }
        }
        clasp_json_set(o, f->key, v, bad);
    }
}
