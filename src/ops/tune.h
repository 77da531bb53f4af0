/* Per-device GEMM tuning: time the GEMM candidates on the problems a
 * workload really issues, keep the fastest that computes the right thing,
 * and remember the choices in one small text file per device and driver in
 * the cache folder, loaded whenever a context first runs a GEMM.
 *
 * The file, tune-<16 hex digits>.txt in clasp_cache_dir() (the digits hash
 * the platform name, device name, device version and driver version), is
 * a header line of tab-separated fields
 *     clasp-tune 1  clasp VERSION  platform NAME  device NAME  version V  driver D
 * then optional '#' comment lines and one line per problem:
 *     ta tb m n k path tm tn wg splitk order gflops
 * e.g. "0 1 32 25 100352 dot 4 4 4 8 2 131.5". A file that does not parse,
 * names another device or driver, or lacks its final newline (truncated)
 * is ignored as a whole with one warning; a line whose parameters no longer
 * fit its problem is dropped. Not installed. */
#ifndef CLASP_TUNE_H
#define CLASP_TUNE_H

#include "clasp/model.h"
#include "ops/gemm_internal.h"

/* One problem's outcome. From a file only prob, chosen and gflops are set. */
typedef struct clasp_tune_entry {
    clasp_gemm_problem prob;
    clasp_gemm_params chosen;       /* fully resolved */
    clasp_gemm_params dflt;         /* the heuristic's pick, resolved */
    double gflops, default_gflops;  /* best times measured; 0 when unknown */
    int n_candidates, n_timed;      /* candidates listed, and actually timed */
} clasp_tune_entry;

/* Told before each problem (done of total finished; what: the problem) and
 * once at the end (done == total, what NULL). */
typedef void (*clasp_tune_progress_fn)(void *user, size_t done, size_t total,
                                       const char *what);

typedef struct clasp_tune_opts {
    double seconds;             /* total budget; 0: 120 */
    const clasp_model *model;   /* workload architecture; NULL: the default
                                 * CNN on 1x28x28 with 10 classes. The model
                                 * itself is never touched: a fresh copy runs */
    int batch;                  /* 0: 128 */
    int save;                   /* merge the results into the device's file */
    clasp_tune_progress_fn progress;
    void *user;
} clasp_tune_opts;

typedef struct clasp_tune_result {
    clasp_tune_entry *entries;  /* one per problem recorded, malloc'd */
    size_t n;
    double seconds;             /* wall time of the whole run */
    /* GEMM seconds of one workload pass (each problem times its calls)
     * with the heuristic's picks and with the chosen ones. */
    double default_s, tuned_s;
    int saved;                  /* the file was written */
    char path[1100];            /* the device's file; "" when caching is off */
} clasp_tune_result;

/* Records the GEMM problems of one training step, one input-gradient step
 * (what attacks run) and one inference pass of the workload, then times
 * the candidates of each (own kernels and CLBlast) within the budget,
 * cheapest problem first, each at least against the heuristic's pick. A
 * winner must beat that pick by 3% head to head and reproduce its result
 * exactly on random integer data; it becomes the context's choice and is
 * saved when asked and caching is on. The budget bounds the search; the
 * recording pass (which builds the workload's kernels), the first two
 * candidates of each problem and a few confirming samples always run, so
 * a tiny budget still gives a result. */
clasp_status clasp_tune_run(clasp_ctx *ctx, const clasp_tune_opts *opts,
                            clasp_tune_result *out);
void clasp_tune_result_free(clasp_tune_result *r);

/* Path of this device's tuning file; CLASP_ERR_NOT_FOUND when caching is
 * off. */
clasp_status clasp_tune_file_path(const clasp_ctx *ctx, char *buf, size_t size);

/* Reads and checks a tuning file for ctx's device: *entries (malloc'd;
 * free()) and *n, and the clasp version that wrote it (may be NULL).
 * CLASP_ERR_NOT_FOUND when there is no file, CLASP_ERR_FORMAT with the
 * reason when it must not be trusted. */
clasp_status clasp_tune_file_read(const clasp_ctx *ctx, const char *path,
                                  clasp_tune_entry **entries, size_t *n, char *version,
                                  size_t version_size);

/* Loads the device's file into ctx's GEMM choices (gemm.c calls it when a
 * context first uses GEMM). Never fails: problems are warned about on
 * stderr once per process and leave the heuristic in charge. */
void clasp_tune_load(clasp_ctx *ctx);

/* Deletes the device's file; *removed (may be NULL) says whether there was
 * one. CLASP_ERR_NOT_FOUND when caching is off. */
clasp_status clasp_tune_reset(const clasp_ctx *ctx, int *removed);

/* First use of a device: tunes for the given workload (model may be NULL,
 * batch 0 = 128) within `seconds` and saves the file when the device has no
 * usable tuning file yet, with a one-line notice on stderr. Does nothing
 * when CLASP_TUNE=0 or caching is off (a result that cannot be kept would
 * cost the same time on every run). Never fails: tuning only speeds
 * things up, so a failure is a warning. */
void clasp_tune_ensure(clasp_ctx *ctx, const clasp_model *model, int batch, double seconds);

#endif
