/* clasp — per-device GEMM tuning.
 *
 * Time the GEMM candidates on the problems a workload really issues, keep
 * the fastest that computes the right thing, and remember the choices in
 * one small text file per device and driver in the cache folder, loaded
 * whenever a context first runs a GEMM.
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
 * fit its problem is dropped.
 *
 * The tuner (ops) knows GEMMs only: what workload to record comes from the
 * caller as a function (clasp_tune_workload_fn); clasp_tune_model_workload
 * is the one the model layer provides. */
#ifndef CLASP_TUNE_H
#define CLASP_TUNE_H

#include <stddef.h>

#include "clasp/export.h"
#include "clasp/model.h"
#include "clasp/runtime.h"
#include "clasp/status.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* ---- GEMM implementations ------------------------------------------- */

typedef enum clasp_gemm_path {
    CLASP_GEMM_AUTO = 0, /* let clasp choose (recorded choice, else heuristic) */
    CLASP_GEMM_GENERAL,  /* own kernel, one element per work-item, any shape */
    CLASP_GEMM_TILED,    /* own register-tiled kernel, with transposes/split-K */
    CLASP_GEMM_CLBLAST,  /* CLBlast's Sgemm */
    CLASP_GEMM_DOT,      /* own NT-only kernel in dot-product form, split-K */
    CLASP_GEMM_PATH_COUNT_
} clasp_gemm_path;

/* One candidate implementation. Zero fields mean "default for the shape". */
typedef struct clasp_gemm_params {
    clasp_gemm_path path;
    int tm, tn; /* tile of C per work-item: TILED tm 1..16, tn 16|32;
                   * DOT tm, tn 1..8 */
    int wg;     /* TILED, DOT: work-items per group along M */
    int splitk; /* TILED, DOT: number of K chunks (1 = no split) */
    int order;  /* TILED, DOT: 1 = work-items walk along N first, 2 = along M */
} clasp_gemm_params;

/* One line for a choice, e.g. "tiled 4x16 wg8 s1 o1" or "clblast". */
void clasp_gemm_params_describe(const clasp_gemm_params *p, char *buf, size_t size);

/* Short name of a path ("tiled"). */
const char *clasp_gemm_path_name(clasp_gemm_path p);

/* Completes p for this problem as clasp_gemm_with would (path AUTO: the
 * heuristic's pick), ignoring forced and recorded choices;
 * CLASP_ERR_UNSUPPORTED when p cannot run it. The tuner's check that a
 * stored choice still fits. */
clasp_status clasp_gemm_resolve(const clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k,
                                clasp_gemm_params *p);

/* One GEMM problem as clasp_gemm sees it; calls counts how often a
 * recording saw it (0 elsewhere). */
typedef struct clasp_gemm_problem {
    int ta, tb, m, n, k;
    int calls;
} clasp_gemm_problem;

/* ---- tuning ---------------------------------------------------------- */

/* One problem's outcome. From a file only prob, chosen and gflops are set. */
typedef struct clasp_tune_entry {
    clasp_gemm_problem prob;
    clasp_gemm_params chosen;      /* fully resolved */
    clasp_gemm_params dflt;        /* the heuristic's pick, resolved */
    double gflops, default_gflops; /* best times measured; 0 when unknown */
    int n_candidates, n_timed;     /* candidates listed, and actually timed */
} clasp_tune_entry;

/* Told before each problem (done of total finished; what: the problem) and
 * once at the end (done == total, what NULL). */
typedef void (*clasp_tune_progress_fn)(void *user, size_t done, size_t total, const char *what);

/* Runs the workload to tune for on ctx, once: the tuner records the GEMM
 * problems it issues (clasp_gemm calls on ctx). It MUST leave the caller's
 * own data alone (work on copies) and return CLASP_OK or a status with a
 * message. */
typedef clasp_status (*clasp_tune_workload_fn)(void *user, clasp_ctx *ctx);

typedef struct clasp_tune_opts {
    double seconds; /* total budget; 0: 120 */
    /* MUST be set: what to record (e.g. clasp_tune_model_workload with a
     * clasp_tune_model as workload_user). */
    clasp_tune_workload_fn workload;
    void *workload_user;
    int save; /* merge the results into the device's file */
    clasp_tune_progress_fn progress;
    void *user;
} clasp_tune_opts;

typedef struct clasp_tune_result {
    clasp_tune_entry *entries; /* one per problem recorded, malloc'd */
    size_t n;
    double seconds; /* wall time of the whole run */
    /* GEMM seconds of one workload pass (each problem times its calls)
     * with the heuristic's picks and with the chosen ones. */
    double default_s, tuned_s;
    int saved;       /* the file was written */
    char path[1100]; /* the device's file; "" when caching is off */
} clasp_tune_result;

/* Records the GEMM problems of the workload, then times the candidates of
 * each (own kernels and CLBlast) within the budget, cheapest problem
 * first, each at least against the heuristic's pick. A winner must beat
 * that pick by 3% head to head and reproduce its result exactly on random
 * integer data; it becomes the context's choice and is saved when asked
 * and caching is on. The budget bounds the search; the recording pass
 * (which builds the workload's kernels), the first two candidates of each
 * problem and a few confirming samples always run, so a tiny budget still
 * gives a result. */
clasp_status clasp_tune_run(clasp_ctx *ctx, const clasp_tune_opts *opts, clasp_tune_result *out);
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

/* Deletes the device's file; *removed (may be NULL) says whether there was
 * one. CLASP_ERR_NOT_FOUND when caching is off. */
clasp_status clasp_tune_reset(const clasp_ctx *ctx, int *removed);

/* First use of a device: tunes for the workload within `seconds` and
 * saves the file when the device has no usable tuning file yet, with a
 * one-line notice on stderr (clasp_tune_ensure_workload_log: through a
 * log hook). Does nothing when the context's options turn
 * first-use tuning off (clasp_ctx_opts.tune, CLASP_TUNE=0 for the CLI) or
 * caching is off (a result that cannot be kept would cost the same time on
 * every run). Never fails: tuning only speeds things up, so a failure is a
 * warning. */
void clasp_tune_ensure_workload(clasp_ctx *ctx, clasp_tune_workload_fn workload, void *user,
                                double seconds);

/* clasp_tune_ensure_workload with its notice (before tuning) and outcome
 * (after) given to log as two lines instead of stderr; log NULL: stderr. */
void clasp_tune_ensure_workload_log(clasp_ctx *ctx, clasp_tune_workload_fn workload, void *user,
                                    double seconds, void (*log)(void *user, const char *line),
                                    void *log_user);

/* ---- the model layer's workload -------------------------------------- */

/* One training step, one input-gradient step (what attacks run) and one
 * inference pass of a fresh model with `model`'s architecture (NULL: the
 * default CNN on 1x28x28 with 10 classes) on `batch` random examples (0:
 * 128). `model` itself is never touched. */
typedef struct clasp_tune_model {
    const clasp_model *model;
    int batch;
} clasp_tune_model;

/* A clasp_tune_workload_fn; user is a const clasp_tune_model *. */
clasp_status clasp_tune_model_workload(void *user, clasp_ctx *ctx);

/* clasp_tune_ensure_workload with clasp_tune_model_workload. */
void clasp_tune_ensure(clasp_ctx *ctx, const clasp_model *model, int batch, double seconds);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
