/* The model report's own fields (clasp_model_report, clasp/report.h) as one
 * table, read by every walker of the struct: report.json's model object
 * (report/sec_model.c), the run state's save and load and the report's
 * free (runner_state.c). A new field of one of the types below is its
 * member in the struct and one row in model_fields.c. The nested lists
 * (epochs, attacks) and the sections that present fields in their own
 * layout (timings, calibration) keep their own code. */
#ifndef CLASP_MODEL_FIELDS_H
#define CLASP_MODEL_FIELDS_H

#include <stddef.h>

#include "clasp/report.h"
#include "util/json.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef enum model_field_type {
    MF_STR,    /* char[size] */
    MF_INT,    /* int */
    MF_I64,    /* int64_t */
    MF_FLOAT,  /* float */
    MF_DOUBLE, /* double */
    MF_FLOATS, /* float *, one per class; NULL: not kept */
    MF_I32S,   /* int32_t *, one per example (n_examples); NULL: not kept */
} model_field_type;

/* Where a field goes. */
enum {
    MF_STATE = 1,  /* the run state (so a resumed run has it) */
    MF_REPORT = 2, /* report.json's model object, in table order */
};

typedef struct model_field {
    const char *key; /* its name in both JSON texts */
    model_field_type type;
    size_t offset, size; /* of the member */
    int in;              /* MF_STATE | MF_REPORT */
    /* Arrays: whether the array is meaningful (else written as null);
     * NULL: whenever it is set. */
    int (*kept)(const clasp_model_report *m);
} model_field;

extern const model_field model_fields[];
extern const size_t model_n_fields;

/* The member of m that f describes. */
static inline void *model_field_ptr(const clasp_model_report *m, const model_field *f)
{
    return (char *)m + f->offset;
}

/* Sets key: value in o for each field marked `in` (MF_STATE or
 * MF_REPORT), in table order: strings and integers as JSON strings and
 * integers, every float and double (arrays' elements too) through num
 * (report.json: clasp_json_num; the state: exact hexadecimal text);
 * arrays of num_classes or n_examples entries, null when NULL or not kept.
 * Allocation failures set *bad (util/json.h). */
typedef json_object *(*model_num_fn)(double v, int *bad);
void model_fields_json(json_object *o, const clasp_model_report *m, int num_classes, int in,
                       model_num_fn num, int *bad);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
