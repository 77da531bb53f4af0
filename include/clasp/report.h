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

#include "clasp/counts.h"
#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* One attack (one grid point of its parameters) on one model. */
typedef struct clasp_attack_report {
    char label[160];              /* e.g. "pgd eps=0.1 steps=20" (unique within a model) */
    char plugin[64];              /* plugin name, e.g. "pgd" */
    char params[512];             /* resolved parameters as "k=v, k=v" */
    clasp_class_counts per_class; /* robust_correct: adversarial prediction == label */
    int64_t *success;             /* per class: clean-correct examples the attack flipped */
    int64_t *flow;                /* [true][adv prediction] counts */
    double seconds;               /* wall time of the attack */
    /* Ensembles and worst cases (see clasp/ensemble.h). */
    double linf_eps; /* L-infinity budget; 0: not an L-infinity attack (cw) */
    int derived;     /* made by the report: the worst case over the
                                 entries named in member_labels */
    int n_members;   /* > 0: an ensemble (or worst case) of these */
    char (*member_labels)[160];
    int64_t *first_flip;    /* [class * n_members + j]: clean-correct examples
                                 member j flipped first */
    double *member_seconds; /* [n_members] time inside each member (ensembles) */
    /* Per example (n_examples of the model report; NULL: not kept): the
     * prediction under the attack, an ensemble's worst case. */
    int32_t *adv_pred;
    /* 0 (the default): an L-infinity attack with a budget (its plugin's
     * schema has a float parameter "eps", see clasp_plugin_is_linf).
     * 1: unbounded (e.g. cw, an L2 attack without a budget): never "the
     * strongest" next to L-infinity attacks, never in the gain tables or
     * the relations, reported with its L2 distances instead. */
    int unbounded;
    /* Unbounded attacks: the L2 distance of each success (clean-correct
     * example flipped), grouped by class (success[c] values for class c),
     * ascending within a class; NULL when not measured. */
    float *l2_dist;
    /* What the attack's plugin declares of itself (clasp_attack_traits in
     * clasp/plugin.h), copied when it runs; the report reads these, never
     * the plugin's name. traits_known 0 (a state file written before these
     * fields, or a report filled by hand): the report falls back to the
     * names of the built-in attacks (gradient-free: "square"; temperature
     * "T" of "tpgd", equal to "pgd" at 1; budget "eps"). */
    int traits_known;
    int gradient_free;      /* forward passes only (the gradient-free check) */
    char budget[32];        /* L-infinity budget parameter, e.g. "eps"; "" none */
    char temperature[32];   /* temperature parameter, e.g. "T"; "" none */
    char equals_at_one[64]; /* the plugin it equals at temperature 1, e.g. "pgd" */
} clasp_attack_report;

/* One epoch of training. */
typedef struct clasp_epoch_report {
    int epoch;         /* 1-based */
    double train_loss; /* mean over the epoch */
    double lr;
    double seconds;
    /* Per class on validation (count NULL when no validation split;
     * robust_correct NULL without an attack). */
    clasp_class_counts val;
    float *class_weights; /* per-class loss weights in use (NULL when none) */
} clasp_epoch_report;

/* One trained model: a defense (or standard training) with its settings. */
typedef struct clasp_model_report {
    char name[128];       /* unique, e.g. "standard", "pgd-at", "trades beta=6" */
    char defense[64];     /* plugin name, "" for standard training */
    char params[512];     /* resolved defense parameters "k=v, ..." */
    char checkpoint[512]; /* path relative to the output folder */
    int n_epochs;
    clasp_epoch_report *epochs;
    int n_attacks;
    clasp_attack_report *attacks;
    int calibrated;       /* inference-time calibration in use */
    float *calib_offsets; /* per class, when calibrated */
    float calib_temperature;
    double train_seconds, eval_seconds;
    /* Per example of the evaluated test subset (0 / NULL: not kept): label
     * and clean prediction, for worst cases over the attacks' adv_pred. */
    int64_t n_examples;
    int32_t *labels, *clean_pred;
    /* Per class: the L2 norm of the class's row of the last linear layer's
     * weight (the classifier); NULL when the model has none. */
    float *class_weight_norms;
    /* An existing model's file it started from ("" = the seed's weights)
     * and its training epochs there (0: evaluated as it is, or fitted
     * post hoc). Set from the plan on every run, resumed ones too. */
    char source[512];
    int source_epochs;
} clasp_model_report;

/* Frees the arrays of a model report filled by clasp_experiment_train
 * (not the struct itself) and zeroes it. */
void clasp_model_report_free(clasp_model_report *r);

typedef struct clasp_report {
    char experiment[128];
    char clasp_version[32];
    char device[256];
    uint64_t seed;
    char dataset[64];
    size_t train_size, val_size, test_size; /* test_size = evaluated subset */
    int num_classes;
    char (*class_names)[32]; /* num_classes names */
    const char *config_yaml; /* resolved config (defaults filled) as YAML text */
    const char *config_path; /* the experiment file as given */
    char started[32];        /* ISO 8601 UTC */
    double wall_seconds;
    int n_models;
    clasp_model_report *models;
    /* L2 budgets at which unbounded attacks' robust accuracy is reported
     * (an example counts as robust there unless the attack flipped it
     * within the budget); may be 0. */
    int n_l2_eps;
    const double *l2_eps;
    /* Per class, 1 when the class was left out of training and validation
     * (data.exclude_classes): still evaluated, but left out of the
     * class-wise correlations, which would only measure the exclusion.
     * NULL: none. */
    const int *excluded;
    /* Class groups (clasp/groups.h, resolved on these classes) that the
     * report aggregates by; NULL: the built-in ones (CIFAR-100's
     * superclasses), if the data set has them. */
    const struct clasp_class_groups *groups;
} clasp_report;

/* Writes report.json, per_class.csv, report.md and the charts
 * (charts/<model>-<attack>-classes.svg: per-class clean vs robust bars;
 * charts/<model>-<attack>-flow.svg: flow heat map; charts/<model>-epochs.svg:
 * per-class validation robust (or clean) accuracy over epochs) into dir,
 * which must exist. Each file is written atomically (temp + rename);
 * report.json is written last, so its presence marks a complete report. */
clasp_status clasp_report_write(const clasp_report *r, const char *dir);

/* Spearman's rank correlation of x and y (n pairs): Pearson's correlation
 * of their ranks, tied values sharing the average of the ranks they span.
 * NaN when undefined: n < 2, a non-finite value, or either vector constant
 * (report.json writes null, report.md a dash). */
double clasp_spearman(const double *x, const double *y, int n);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
