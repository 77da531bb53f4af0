/* clasp — experiments: a YAML file turned into a validated plan, and the
 * runner that trains the planned models, evaluates every attack on each
 * and writes the class-wise report.
 *
 * The schema is one table per YAML mapping (src/experiment/plan_schema.c):
 * it drives the parsing and its messages, the resolved YAML of
 * clasp_plan_to_yaml (and so clasp_plan_hash) and the reference tables of
 * experiments/README.md, which a test keeps equal to it. The sections are
 * experiment, data, model, train (with its models list, or a top-level
 * models list of checkpoints), evaluate and output; a list as the value of
 * a plugin parameter is a grid that expands into several attacks
 * (evaluate) or several models (defense blocks). Every error names
 * file:line:col (1-based) and what was expected.
 *
 * A plan points into the registry's plugin descriptors: the registry MUST
 * outlive the plan. */
#ifndef CLASP_EXPERIMENT_H
#define CLASP_EXPERIMENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "clasp/data.h"
#include "clasp/groups.h"
#include "clasp/registry.h"
#include "clasp/report.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* One plugin with every schema parameter resolved (defaults filled in,
 * grid point chosen). keys/values are the canonical text of each parameter
 * in schema order, ready for clasp_attack_new_desc/clasp_defense_new_desc;
 * where[i] is the "file:line:col" of the value in the YAML (of the block
 * for defaults). */
typedef struct clasp_plan_plugin {
    const clasp_plugin_desc *desc;
    char name[64];
    int n_params;
    char **keys, **values, **where;
    char params_text[512]; /* "eps=0.1, steps=20, ..." */
    char loc[160];         /* "file:line:col" of the block */
} clasp_plan_plugin;

/* An attack to evaluate (one grid point), or an ensemble: a cascade of
 * attacks run by the host (clasp/ensemble.h), from an `ensemble:` entry or
 * the autoattack preset. */
typedef struct clasp_plan_attack {
    char label[160];          /* unique, e.g. "tpgd T=0.5" */
    clasp_plan_plugin plugin; /* a single attack (desc NULL for an ensemble) */
    int n_members;            /* > 0: an ensemble of these, in cascade order */
    clasp_plan_plugin *members;
} clasp_plan_attack;

/* The L-infinity budget of a planned attack: the value of its budget
 * parameter when its plugin declares an L-infinity threat (see
 * clasp_attack_traits_of), for an ensemble the budget all its members
 * share; 0 for anything else (cw, mixed budgets). */
double clasp_plan_attack_linf_eps(const clasp_plan_attack *a);

/* A defense block: the plugin, its inner maximisation attack and the
 * defense it wraps (both optional; a wrapped defense wraps no further). */
typedef struct clasp_plan_defense {
    clasp_plan_plugin plugin;
    clasp_plan_plugin *attack;        /* NULL: none declared here */
    struct clasp_plan_defense *inner; /* NULL: wraps nothing */
} clasp_plan_defense;

/* A model to train (one grid point). */
typedef struct clasp_plan_model {
    char name[128];              /* unique, e.g. "standard", "pgd-at eps=0.05" */
    char file[160];              /* checkpoint file name in the output folder */
    char arch[256];              /* this model's architecture; "" = model.arch */
    clasp_plan_defense *defense; /* NULL: standard training */
    /* An existing model (`checkpoint:`): a model file of any format
     * clasp_ckpt_read takes, evaluated as it is (epochs 0, no defense),
     * fitted post hoc by a defense's finish hook (calibrate), or
     * fine-tuned from those weights for `epochs` epochs. "" = a model
     * trained from the seed for train.epochs. */
    char checkpoint[512];
    char zoo[96];   /* the RobustBench entry it was resolved from ("" = none) */
    char threat[8]; /* that entry's threat model ("Linf", "L2") */
    int epochs;     /* training epochs of this model (train.epochs, or the entry's) */
    int normalize;  /* the zoo entry's input normalisation (channels), else 0 */
    float norm_mean[CLASP_NORMALIZE_MAX_C], norm_std[CLASP_NORMALIZE_MAX_C];
    char loc[160]; /* "file:line:col" of the model entry */
} clasp_plan_model;

typedef enum clasp_lr_schedule {
    CLASP_LR_CONSTANT = 0,
    CLASP_LR_COSINE = 1, /* per batch, from lr down to 0 over all epochs */
    CLASP_LR_STEP = 2,   /* lr * gamma^(milestones passed), per epoch */
} clasp_lr_schedule;

#define CLASP_PLAN_MAX_MILESTONES 16
#define CLASP_PLAN_MAX_L2_EPS 8
#define CLASP_PLAN_MAX_EXCLUDE 100

typedef struct clasp_plan {
    char *source; /* the file as given (or the name given to parse) */
    /* experiment */
    char name[128];
    uint64_t seed;
    char *device; /* NULL: CLASP_DEVICE / the default device */
    /* data */
    char dataset[32];   /* one of clasp_dataset_names */
    char *data_path;    /* NULL only for fashion-mnist's default folder */
    size_t val_size;    /* examples split off the training set */
    size_t train_size;  /* 0: all that remain after the split */
    char data_loc[160]; /* "file:line:col" of the data section, for
                                   errors found when the data is loaded */
    /* data.exclude_classes: classes left out of training and validation
     * (names or indices as written; resolved against the data set's class
     * names by clasp_plan_exclude_mask once it is loaded). */
    int n_exclude;
    char exclude[CLASP_PLAN_MAX_EXCLUDE][32];
    char exclude_loc[CLASP_PLAN_MAX_EXCLUDE][160];
    /* model */
    char *arch; /* "default", a preset ("wrn-34-10") or a clasp_arch_parse string */
    char arch_loc[160];
    int normalize; /* channels of norm_mean/norm_std; 0: no input normalisation */
    float norm_mean[CLASP_NORMALIZE_MAX_C], norm_std[CLASP_NORMALIZE_MAX_C];
    /* train */
    int epochs, batch;
    double lr, momentum, weight_decay;
    clasp_lr_schedule schedule;
    int n_milestones;
    int milestones[CLASP_PLAN_MAX_MILESTONES];
    double gamma;
    size_t val_eval_size; /* validation examples evaluated per epoch (0: all) */
    int augment_pad;      /* random-crop padding in pixels (0: no crop) */
    int augment_flip;     /* random horizontal flips */
    int n_models;
    clasp_plan_model *models;
    /* 1: no train section; the models are a top-level list, each a
     * checkpoint evaluated or fitted post hoc (epochs 0). */
    int no_train;
    /* evaluate */
    size_t test_size; /* first N test examples (0: all) */
    int eval_batch;
    /* evaluate.l2_eps: L2 budgets at which unbounded attacks (cw) are
     * reported, ascending, each > 0; n_l2_eps may be 0. */
    int n_l2_eps;
    double l2_eps[CLASP_PLAN_MAX_L2_EPS];
    int n_attacks;
    clasp_plan_attack *attacks;
    /* output */
    char *output;
    /* "file:line:col" of experiment.device ("" when not given), for a
     * device this machine does not have (appended: the struct is public) */
    char device_loc[160];
    /* data, for the image folders (dataset imagefolder or imagenet), which
     * are streamed for evaluation (appended: the struct is public) */
    char data_subset[32];     /* "all" or "robustbench-5000" */
    char data_preprocess[32]; /* resolved: as given, else the zoo entry's, else Res256Crop224 */
    int data_workers;         /* decoding threads; 0: CLASP_STREAM_DEFAULT_WORKERS */
    int data_skip_bad;        /* data.skip_bad_images: leave out (and count) undecodable images */
    /* data.groups: a class -> group mapping file (clasp/groups.h) for the
     * report, checked when the plan is read; NULL: the built-in groups
     * (appended: the struct is public) */
    char *groups;
    char groups_loc[160]; /* "file:line:col" of data.groups */
} clasp_plan;

/* 1 when the plan's data set is an image folder (imagefolder, imagenet):
 * its splits are streamed, never held. */
int clasp_plan_streamed(const clasp_plan *p);

/* 1 when some model of the plan trains (epochs > 0) or has a defense. */
int clasp_plan_trains(const clasp_plan *p);

/* A streamed plan's folders, as indexes (no image decoded): *test the
 * test split (DIR/val, else DIR/test, else DIR; data.subset and
 * evaluate.test_size applied); when train and val are given and the plan
 * trains, DIR/train (which must exist and have the test split's classes)
 * split into *train and *val by data.val_size and the seed, *train cut to
 * data.train_size. Errors name the folder. */
clasp_status clasp_plan_open_folders(const clasp_plan *p, clasp_imagefolder **test,
                                     clasp_imagefolder **train, clasp_imagefolder **val);

/* Reads and validates an experiment file against the plugins in r. On
 * failure (CLASP_ERR_CONFIG, or CLASP_ERR_IO for an unreadable file) the
 * message starts with "file:line:col: " and *out is NULL. */
clasp_status clasp_plan_load(const clasp_registry *r, const char *path, clasp_plan **out);

/* The same from text in memory; `name` stands for the file in messages. */
clasp_status clasp_plan_parse(const clasp_registry *r, const char *text, size_t len,
                              const char *name, clasp_plan **out);

void clasp_plan_free(clasp_plan *p);

/* Resolves data.exclude_classes against a data set's K class names:
 * mask[c] = 1 for each excluded class. An entry of digits only is a class
 * index (0-based), anything else a class name (case-insensitive). An
 * unknown name, an index >= K, a class listed twice or every class
 * excluded is CLASP_ERR_CONFIG at the entry's file:line:col. */
clasp_status clasp_plan_exclude_mask(const clasp_plan *p, int num_classes,
                                     const char (*class_names)[32], int *mask);

/* Reads data.groups and maps it onto a data set's K class names
 * (clasp_class_groups_resolve). Without data.groups *out is left empty
 * (n_groups 0). Errors start with data.groups' file:line:col. */
clasp_status clasp_plan_groups(const clasp_plan *p, int num_classes, const char (*class_names)[32],
                               clasp_class_groups *out);

/* Replaces the output folder (the command line's --output). */
clasp_status clasp_plan_set_output(clasp_plan *p, const char *dir);

/* The resolved configuration as YAML text (defaults filled in, grids
 * expanded), which parses back to the same plan. with_output 0 leaves out
 * the output section (what the resume hash covers: the folder may be
 * named differently on the command line). *out is malloc'd. */
clasp_status clasp_plan_to_yaml(const clasp_plan *p, int with_output, char **out);

/* A 64-bit FNV-1a hash of the resolved YAML without the output section,
 * as 16 hex digits into buf (size >= 17). */
clasp_status clasp_plan_hash(const clasp_plan *p, char *buf, size_t size);

/* Learning rate at (epoch, batch) with batches_per_epoch batches. */
double clasp_plan_lr(const clasp_plan *p, int epoch, size_t batch, size_t batches_per_epoch);

/* The attack a model's defense uses for its inner maximisation and for the
 * robust validation metrics: the block's own, else its inner block's.
 * NULL when there is none (standard training, or a defense without one). */
const clasp_plan_plugin *clasp_plan_model_attack(const clasp_plan_model *m);

/* Rough work estimate in forward+backward passes over single examples,
 * for `clasp check`: attack cost = what the plugin declares
 * (clasp_plan_attack_cost). */
typedef struct clasp_plan_work {
    double train;    /* all models, all epochs */
    double validate; /* epoch-end validation */
    double evaluate; /* test evaluation, all attacks, all models */
} clasp_plan_work;
void clasp_plan_estimate(const clasp_plan *p, size_t train_n, size_t val_n, size_t test_n,
                         clasp_plan_work *out);
/* Cost of one attack on one example, in forward+backward pass pairs, from
 * the cost its plugin declares (clasp_attack_traits): (forward + backward)
 * / 2, at least 1; 1 when the plugin declares none. */
double clasp_plan_attack_cost(const clasp_plan_plugin *a);
/* 0 when a's plugin declares no cost (its estimate is then a guess). */
int clasp_plan_attack_cost_known(const clasp_plan_plugin *a);

/* ---- the runner -------------------------------------------------------- */

/* What the runner tells its caller; every member may be NULL. */
typedef struct clasp_run_hooks {
    void *user;
    /* A line of news ("model 2/3: pgd-at", "epoch 1: val clean 81.2% ..."). */
    void (*log)(void *user, const char *line);
    /* A phase with a known amount of work (examples): start, updates
     * (extra: short text such as "loss 0.41", may be NULL), end. */
    void (*progress_start)(void *user, const char *label, size_t total);
    void (*progress_update)(void *user, size_t done, const char *extra);
    void (*progress_end)(void *user);
    /* After each training batch (CLASP_RUN_STEP_BATCH) and each finished
     * attack (CLASP_RUN_STEP_ATTACK). Unlike the hooks above, which only
     * rank 0 calls, every rank of an MPI run calls this one; it may set
     * the stop flag. May be NULL. */
    void (*step)(void *user, int what);
} clasp_run_hooks;

enum { CLASP_RUN_STEP_BATCH = 1, CLASP_RUN_STEP_ATTACK = 2 };

typedef struct clasp_run_options {
    int resume; /* continue from <output>/state.safetensors */
    /* Set (to non-zero) by the caller's SIGINT handler; read between
     * batches. NULL: nothing interrupts the run. */
    volatile sig_atomic_t *stop;
    clasp_run_hooks hooks;
    /* The context's configuration (device, kernels, GEMM, tuning, cache
     * folder); NULL: clasp_ctx_opts_default. The runner reads no
     * environment: a program that wants the CLASP_* variables passes
     * clasp_ctx_opts_from_env's result. A plan's experiment.device, when
     * set, overrides the device named here. */
    const clasp_ctx_opts *ctx;
} clasp_run_options;

/* Runs the whole plan (see the top of this file and experiments/README.md)
 * with the plugins of r. Writes <output>/<model>.safetensors for each model
 * and, at the very end, the report (report.json last). On an interrupt
 * (the stop flag) it saves
 * <output>/state.safetensors and returns CLASP_ERR_INTERRUPTED; resuming
 * then gives the same report as an uninterrupted run. */
clasp_status clasp_experiment_run(const clasp_plan *p, const clasp_registry *r,
                                  const clasp_run_options *opt);

/* Training alone, as `clasp train` runs it: model `model` of p trained by
 * the runner's own training code (the same batches, augmentation,
 * learning-rate schedule, weight decay, defense step, validation after
 * each epoch, finish hook and atomic checkpoint write as in
 * clasp_experiment_run) on `train`, validated after each epoch on `val`
 * (which may be empty), with the checkpoint written to `checkpoint` (NULL:
 * none). p's data, evaluate and output sections are not read: the caller
 * gives the sets, both with the same image shape and classes (an error
 * in the architecture is reported as "<p->arch_loc>: ..."). `val_name`
 * names the validation set in the news ("test"; NULL: "validation"). No
 * state file and no report are written, so opt->resume must be 0; a stop
 * (opt->stop) returns CLASP_ERR_INTERRUPTED with nothing saved. *out
 * receives the model's report (epochs with their per-class validation
 * counts, calibration); free it with clasp_model_report_free. On failure it
 * is left zeroed. */
clasp_status clasp_experiment_train(const clasp_plan *p, int model, const clasp_dataset *train,
                                    const clasp_dataset *val, const char *val_name,
                                    const char *checkpoint, const clasp_run_options *opt,
                                    clasp_model_report *out);

/* The same on image folders, streamed: `train` in random-resized crops
 * and flips at the folder's image size, `val` as it is prepared for
 * evaluation (p->data_workers decoding threads each). Both stay the
 * caller's and must have the same classes and shape. */
clasp_status clasp_experiment_train_folders(const clasp_plan *p, int model,
                                            clasp_imagefolder *train, clasp_imagefolder *val,
                                            const char *val_name, const char *checkpoint,
                                            const clasp_run_options *opt, clasp_model_report *out);

/* The state file's path for a plan, into buf. */
void clasp_experiment_state_path(const clasp_plan *p, char *buf, size_t size);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
