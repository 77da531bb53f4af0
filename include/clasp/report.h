/* clasp — the class-wise report of an experiment.
 *
 * The runner fills these structures; clasp_report_write turns them into
 * the output folder's report.json, per_class.csv, report.md and SVG charts.
 * All per-class arrays have num_classes entries; flow is num_classes x
 * num_classes, row = true class, column = prediction on the adversarial
 * example. Counts are over the evaluated test subset. */
#ifndef CLASP_REPORT_H
#define CLASP_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* One attack (one grid point of its parameters) on one model. */
typedef struct clasp_attack_report {
    char label[160];          /* e.g. "pgd eps=0.1 steps=20" (unique within a model) */
    char plugin[64];          /* plugin name, e.g. "pgd" */
    char params[512];         /* resolved parameters as "k=v, k=v" */
    int64_t *count;           /* examples per class */
    int64_t *clean_correct;   /* per class */
    int64_t *robust_correct;  /* per class: adversarial prediction == label */
    int64_t *success;         /* per class: clean-correct examples the attack flipped */
    int64_t *flow;            /* [true][adv prediction] counts */
    double seconds;           /* wall time of the attack */
} clasp_attack_report;

/* One epoch of training. */
typedef struct clasp_epoch_report {
    int epoch;                /* 1-based */
    double train_loss;        /* mean over the epoch */
    double lr;
    double seconds;
    int64_t *val_count;       /* per class (NULL when no validation split) */
    int64_t *val_clean;       /* per class clean correct on validation */
    int64_t *val_robust;      /* per class robust correct on validation (may be NULL) */
    float *class_weights;     /* per-class loss weights in use (NULL when none) */
} clasp_epoch_report;

/* One trained model: a defense (or standard training) with its settings. */
typedef struct clasp_model_report {
    char name[128];           /* unique, e.g. "standard", "pgd-at", "trades beta=6" */
    char defense[64];         /* plugin name, "" for standard training */
    char params[512];         /* resolved defense parameters "k=v, ..." */
    char checkpoint[512];     /* path relative to the output folder */
    int n_epochs;
    clasp_epoch_report *epochs;
    int n_attacks;
    clasp_attack_report *attacks;
    int calibrated;           /* inference-time calibration in use */
    float *calib_offsets;     /* per class, when calibrated */
    float calib_temperature;
    double train_seconds, eval_seconds;
} clasp_model_report;

typedef struct clasp_report {
    char experiment[128];
    char clasp_version[32];
    char device[256];
    uint64_t seed;
    char dataset[64];
    size_t train_size, val_size, test_size;  /* test_size = evaluated subset */
    int num_classes;
    char (*class_names)[32];                 /* num_classes names */
    const char *config_yaml;                 /* resolved config (defaults filled) as YAML text */
    const char *config_path;                 /* the experiment file as given */
    char started[32];                        /* ISO 8601 UTC */
    double wall_seconds;
    int n_models;
    clasp_model_report *models;
} clasp_report;

/* Writes report.json, per_class.csv, report.md and the charts
 * (charts/<model>-<attack>-classes.svg: per-class clean vs robust bars;
 * charts/<model>-<attack>-flow.svg: flow heat map; charts/<model>-epochs.svg:
 * per-class validation robust (or clean) accuracy over epochs) into dir,
 * which must exist. Each file is written atomically (temp + rename);
 * report.json is written last, so its presence marks a complete report. */
clasp_status clasp_report_write(const clasp_report *r, const char *dir);

/* Per-class accuracy helpers (0 when count is 0). */
double clasp_rate(int64_t num, int64_t den);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
