/* Internals of the experiment runner, shared by runner.c (the loop) and
 * runner_state.c (the resumable state file). */
#ifndef CLASP_RUNNER_INTERNAL_H
#define CLASP_RUNNER_INTERNAL_H

#include "clasp/batch.h"
#include "clasp/data.h"
#include "clasp/ensemble.h"
#include "clasp/eval.h"
#include "clasp/experiment.h"
#include "clasp/report.h"
#include "util/util.h"

/* Internal to libclasp: not exported from the shared library. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

enum { RUN_PHASE_TRAIN = 0, RUN_PHASE_EVAL = 1 };

/* Where the run stands: the next thing to do. */
typedef struct run_pos {
    int model;               /* index into plan->models */
    int phase;               /* RUN_PHASE_* */
    int epoch;               /* train: the epoch under way (0-based) */
    long long batch;         /* train: the next batch of that epoch */
    int attack;              /* eval: the next attack */
    double loss_sum, loss_n; /* train: the epoch's loss so far (sum of loss*n, n) */
} run_pos;

typedef struct runner {
    const clasp_plan *p;
    const clasp_registry *reg;
    const clasp_run_options *opt;
    clasp_ctx *ctx;
    clasp_dataset train, val, test;
    clasp_dataset val_eval; /* a view of val's first examples (not owned) */
    /* This rank's share of the in-order passes over val_eval and test
     * (views, not owned; the whole sets with one process): whole batches
     * from batch *_b0 on; *_nb_max is the most batches any rank has. */
    clasp_dataset val_shard, test_shard;
    size_t val_b0, test_b0, val_nb_max, test_nb_max;
    /* train_b serves the global batch; val_b and test_b the shards (NULL
     * for a rank whose share is empty). */
    clasp_batcher *train_b, *val_b, *test_b;
    /* Streamed sets (data.dataset imagefolder, imagenet): the folders'
     * indexes and the streams that decode them batch by batch for test_b,
     * train_b and val_b. train, val and test are then views of the indexes
     * (no pixels, not owned); train and val are empty (no folders) when
     * nothing trains. */
    clasp_imagefolder *folder, *train_folder, *val_folder;
    clasp_stream *stream, *train_stream, *val_stream;
    clasp_tensor *augmented;       /* the augmented training batch */
    clasp_tensor *part_x, *part_y; /* this rank's slice of it (several ranks) */
    long long stop_syncs;          /* stop checks of the evaluation under way */
    int stopping;                  /* a stop was seen (on any rank); stays set */
    clasp_attack_instance **attacks;
    clasp_ensemble *ensembles; /* per planned attack: its members (n 0 for a single attack) */
    int K;
    int excluded[CLASP_MAX_CLASSES]; /* data.exclude_classes as a mask */
    int any_excluded;
    clasp_class_groups groups; /* data.groups on the test set's classes (n_groups 0: none) */
    /* One report per planned model; reports[i] is complete for i < pos.model
     * and partial for pos.model. */
    clasp_model_report *reports;
    run_pos pos;
    int resumed; /* pos came from a state file */
    int lock_fd; /* rank 0's lock of the output folder; -1: none */
    char outdir[1024], state_path[1100];
    char hash[17];
    char started[32];
    double wall_before; /* wall seconds of earlier sessions */
    double t0;
    /* Training alone (clasp_experiment_train): the data sets are the
     * caller's (not freed here), no state file is written (state_path is
     * ""), and the checkpoint goes to save_to (NULL: none). */
    int train_only;
    const char *save_to;
    const char *val_name; /* the per-epoch set in news: "validation" or the caller's */
} runner;

enum {
    PURPOSE_TRAIN = 1,
    PURPOSE_VAL = 2,
    PURPOSE_FINISH = 3,
    PURPOSE_TEST = 4,
    PURPOSE_AUGMENT = 5
};

/* The model under way with its optimiser and plugin instances. */
typedef struct model_run {
    clasp_model *m;
    clasp_sgd *sgd;
    clasp_defense_instance *def, *inner;
    clasp_attack_instance *attack; /* the defense's inner maximisation */
    clasp_defense_env env;
    clasp_model_report *rep;
} model_run;

/* ---- runner_util.c ---- */

/* A Philox key for (model, epoch, purpose); the batch index becomes the
 * stream number of clasp_rng_make (which has 24 bits for it). */
uint64_t run_stream_key(uint64_t seed, int model, int epoch, int purpose);
/* The key of this rank's share of a stream (the key itself with one rank). */
uint64_t run_rank_key(uint64_t key);
void run_say(runner *R, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void run_progress_start(runner *R, const char *label, size_t total);
void run_progress_update(runner *R, size_t done, const char *extra);
void run_progress_end(runner *R);
/* clasp_eval_progress_fn with user = the runner. */
void run_eval_progress(void *user, size_t done, size_t total);
/* Whether to stop: a signal or a simulated limit on any rank. With several
 * ranks a collective: every rank asks at the same points. */
int run_stop_requested(runner *R);
/* Saves the state and returns CLASP_ERR_INTERRUPTED with the news. */
clasp_status run_interrupted(runner *R, model_run *mr);
double run_pct(int64_t a, int64_t b);
int64_t *run_dup64(const int64_t *v, size_t n);
double *run_dup_doubles(const double *v, size_t n);
clasp_status run_join_path(char *buf, size_t size, const char *dir, const char *name);
int run_file_exists(const char *path);

/* ---- runner_train.c ---- */

/* Epoch e of model mi from R->pos.batch on, then its epoch end. */
clasp_status run_train_epoch(runner *R, int mi, model_run *mr, int e);
/* The finish hook and the checkpoint. */
clasp_status run_finish_model(runner *R, int mi, model_run *mr);

/* ---- runner_state.c ---- */

/* Frees the arrays of one model report (not the struct itself). */
void run_report_free(clasp_model_report *r);

/* Writes the state (model weights and momentum, position, reports so far)
 * atomically. model/sgd: the model under way (sgd may be NULL). */
clasp_status run_state_save(runner *R, clasp_model *model, const clasp_sgd *sgd);

/* Reads the state file into R (position, reports, start time); refuses a
 * missing or corrupt file and a different configuration hash. */
clasp_status run_state_load(runner *R);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
