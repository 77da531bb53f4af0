/* Per-device GEMM tuning (see tune.h for the file format).
 *
 * Why per device: the heuristic in gemm.c was fitted on one CPU; tile
 * sizes, split-K and walk order trade cache reuse against parallelism
 * differently on every device, and CLBlast's tuned kernels win on GPUs but
 * not on PoCL. Timing the few distinct problems a workload issues is
 * cheap next to a training run, and the answer only changes with the
 * device or its driver, hence one file keyed on those.
 *
 * The search times candidates by host wall clock around enqueue and
 * clFinish, which is what a caller waits for (several kernels for split-K
 * and transposes, and CLBlast's own launches, all count). Each candidate
 * runs once untimed first so that program builds are not counted. Rounds
 * alternate over the surviving candidates and keep each one's minimum:
 * on a shared machine the minimum is the least disturbed sample. */
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clasp_config.h"
#include "ops/tune.h"
#include "runtime/internal.h"
#include "util/util.h"

#define TUNE_MAGIC "clasp-tune 1"
#define DEFAULT_SECONDS 120.0
#define MAX_CANDIDATES 48
#define MAX_PROBLEMS 256
#define MAX_ROUNDS 8    /* samples per surviving candidate, at most */
#define MIN_GAIN 0.03   /* a candidate must beat the heuristic's pick by 3% */
#define CONFIRM_PAIRS 8 /* head-to-head samples before a candidate is pinned */

/* ---- the file ------------------------------------------------------- */

/* The file's path, or 0 when caching is off or the path does not fit;
 * sets no error, so that loading on every context's first GEMM leaves the
 * caller's last error alone. */
static int tune_path(const clasp_ctx *ctx, char *buf, size_t size)
{
    const char *dir = clasp_ctx_cache(ctx);
    if (!dir) return 0;
    const char *parts[] = {ctx->info.platform_name, ctx->info.name, ctx->info.version,
                           ctx->info.driver};
    uint64_t h = CLASP_FNV1A_INIT;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = clasp_fnv1a(parts[i], strlen(parts[i]) + 1, h); /* NUL separates the parts */
    int n = snprintf(buf, size, "%s/tune-%016llx.txt", dir, (unsigned long long)h);
    return n >= 0 && (size_t)n < size;
}

clasp_status clasp_tune_file_path(const clasp_ctx *ctx, char *buf, size_t size)
{
    if (!clasp_ctx_cache(ctx))
        return clasp_error(CLASP_ERR_NOT_FOUND, "the cache is off (CLASP_CACHE_DIR=off)");
    if (!tune_path(ctx, buf, size))
        return clasp_error(CLASP_ERR_INVALID, "tune: cache folder path too long");
    return CLASP_OK;
}

/* Device strings as written in the header: tabs and line breaks would
 * break its fields, so they become spaces (on writing and comparing). */
static void clean_field(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = src[i] == '\t' || src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
    dst[i] = '\0';
}

/* The header's device part, which must match exactly for the file to
 * count: everything after the clasp version field. */
static void device_fields(const clasp_ctx *ctx, char *buf, size_t size)
{
    char p[128], d[128], v[128], r[128];
    clean_field(p, sizeof p, ctx->info.platform_name);
    clean_field(d, sizeof d, ctx->info.name);
    clean_field(v, sizeof v, ctx->info.version);
    clean_field(r, sizeof r, ctx->info.driver);
    snprintf(buf, size, "platform %s\tdevice %s\tversion %s\tdriver %s", p, d, v, r);
}

static const clasp_gemm_path parseable_paths[] = {CLASP_GEMM_GENERAL, CLASP_GEMM_TILED,
                                                  CLASP_GEMM_CLBLAST, CLASP_GEMM_DOT};

/* One problem line; 0 when it is malformed. */
static int parse_line(const char *line, clasp_tune_entry *e)
{
    char path[16];
    int used = -1;
    memset(e, 0, sizeof *e);
    clasp_gemm_problem *q = &e->prob;
    clasp_gemm_params *p = &e->chosen;
    if (sscanf(line, "%d %d %d %d %d %15s %d %d %d %d %d %lf %n", &q->ta, &q->tb, &q->m, &q->n,
               &q->k, path, &p->tm, &p->tn, &p->wg, &p->splitk, &p->order, &e->gflops,
               &used) != 12 ||
        used < 0 || line[used] != '\0')
        return 0;
    if ((q->ta != 0 && q->ta != 1) || (q->tb != 0 && q->tb != 1) || q->m < 1 || q->n < 1 ||
        q->k < 0 || !isfinite(e->gflops) || e->gflops < 0)
        return 0;
    p->path = CLASP_GEMM_AUTO;
    for (size_t i = 0; i < sizeof parseable_paths / sizeof parseable_paths[0]; i++)
        if (!strcmp(path, clasp_gemm_path_name(parseable_paths[i]))) p->path = parseable_paths[i];
    if (p->path == CLASP_GEMM_AUTO) return 0;
    /* The same bounds gemm.c checks, so that a line either loads or the
     * file is rejected as a whole; whether the tile fits is checked later,
     * per line. */
    int tile_ok = p->path == CLASP_GEMM_DOT
                      ? p->tm >= 0 && p->tm <= 8 && p->tn >= 0 && p->tn <= 8
                      : p->tm >= 0 && p->tm <= 16 && (p->tn == 0 || p->tn == 16 || p->tn == 32);
    return tile_ok && p->wg >= 0 && p->wg <= 64 && p->splitk >= 0 && p->splitk <= 256 &&
           p->order >= 0 && p->order <= 2;
}

static int same_problem(const clasp_gemm_problem *a, const clasp_gemm_problem *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->m == b->m && a->n == b->n && a->k == b->k;
}

clasp_status clasp_tune_file_read(const clasp_ctx *ctx, const char *path,
                                  clasp_tune_entry **entries, size_t *n, char *version,
                                  size_t version_size)
{
    *entries = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return clasp_error(CLASP_ERR_NOT_FOUND, "%s: no such file", path);
        return clasp_error(CLASP_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char line[1024], want[600];
    const char *why = NULL;
    clasp_tune_entry *list = NULL;
    size_t count = 0, cap = 0;
    unsigned lineno = 0;
    device_fields(ctx, want, sizeof want);
    while (!why && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        /* A last line without its newline is what a cut-off write leaves. */
        if (len == 0 || line[len - 1] != '\n') {
            why = len + 1 == sizeof line ? "line too long" : "truncated (no final newline)";
            break;
        }
        line[--len] = '\0';
        if (lineno == 1) {
            /* clasp-tune 1 \t clasp VERSION \t <device fields> */
            char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            if (!t1 || !t2 || (size_t)(t1 - line) != strlen(TUNE_MAGIC) ||
                strncmp(line, TUNE_MAGIC, strlen(TUNE_MAGIC)) || strncmp(t1 + 1, "clasp ", 6)) {
                why = "not a clasp tuning file";
            } else if (strcmp(t2 + 1, want)) {
                why = "written for another device or driver";
            } else if (version && version_size) {
                size_t vn = (size_t)(t2 - (t1 + 7));
                if (vn >= version_size) vn = version_size - 1;
                memcpy(version, t1 + 7, vn);
                version[vn] = '\0';
            }
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') continue;
        clasp_tune_entry e;
        if (!parse_line(line, &e)) {
            why = "malformed line";
            break;
        }
        if (count == cap) {
            size_t nc = cap ? 2 * cap : 32;
            clasp_tune_entry *grown = realloc(list, nc * sizeof *grown);
            if (!grown) {
                free(list);
                fclose(f);
                return clasp_error(CLASP_ERR_NOMEM, "out of memory");
            }
            list = grown;
            cap = nc;
        }
        list[count++] = e;
    }
    int read_err = ferror(f);
    fclose(f);
    if (!why && read_err) why = "read error";
    if (!why && lineno == 0) why = "empty";
    if (why) {
        free(list);
        if (lineno > 1) return clasp_error(CLASP_ERR_FORMAT, "%s: line %u: %s", path, lineno, why);
        return clasp_error(CLASP_ERR_FORMAT, "%s: %s", path, why);
    }
    *entries = list;
    *n = count;
    return CLASP_OK;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const clasp_gemm_problem *a = &((const clasp_tune_entry *)pa)->prob;
    const clasp_gemm_problem *b = &((const clasp_tune_entry *)pb)->prob;
    const int ka[5] = {a->ta, a->tb, a->m, a->n, a->k}, kb[5] = {b->ta, b->tb, b->m, b->n, b->k};
    for (int i = 0; i < 5; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

/* Writes the entries (sorted) through a temporary file and a rename, so
 * that a reader never sees half a file. */
static clasp_status write_file(const clasp_ctx *ctx, const char *path, clasp_tune_entry *e,
                               size_t n)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (slash) CLASP_TRY(clasp_mkdir_p(dir));
    qsort(e, n, sizeof *e, cmp_entry);
    char dev[600];
    clasp_atomic_file a;
    CLASP_TRY(clasp_atomic_open(&a, path, "w"));
    FILE *f = a.f;
    device_fields(ctx, dev, sizeof dev);
    int ok = fprintf(f, "%s\tclasp %s\t%s\n", TUNE_MAGIC, CLASP_VERSION, dev) > 0 &&
             fprintf(f, "# ta tb m n k path tm tn wg splitk order gflops\n") > 0;
    for (size_t i = 0; ok && i < n; i++) {
        const clasp_gemm_problem *q = &e[i].prob;
        const clasp_gemm_params *p = &e[i].chosen;
        ok = fprintf(f, "%d %d %d %d %d %s %d %d %d %d %d %.1f\n", q->ta, q->tb, q->m, q->n, q->k,
                     clasp_gemm_path_name(p->path), p->tm, p->tn, p->wg, p->splitk, p->order,
                     e[i].gflops) > 0;
    }
    return clasp_atomic_commit(&a, ok);
}

/* ---- loading -------------------------------------------------------- */

/* One warning per process and kind: every context loads the file, and a
 * bad file would otherwise repeat the same line for each. */
static atomic_int warned_bad, warned_dropped;

void clasp_tune_load(clasp_ctx *ctx)
{
    char path[1100];
    if (!tune_path(ctx, path, sizeof path) || access(path, F_OK) != 0) return;
    clasp_tune_entry *e;
    size_t n;
    clasp_status st = clasp_tune_file_read(ctx, path, &e, &n, NULL, 0);
    if (st != CLASP_OK) {
        if (!atomic_exchange(&warned_bad, 1))
            fprintf(stderr,
                    "clasp: warning: ignoring the GEMM tuning file: %s (run 'clasp tune' to "
                    "redo it); using the built-in heuristic\n",
                    clasp_last_error());
        clasp_error_clear();
        return;
    }
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        const clasp_gemm_problem *q = &e[i].prob;
        clasp_gemm_params p = e[i].chosen;
        /* A choice that no longer fits its problem (the tile rules
         * changed) would make every such GEMM fail; the heuristic is the
         * safe answer. */
        if (clasp_gemm_resolve(ctx, q->ta, q->tb, q->m, q->n, q->k, &p) != CLASP_OK ||
            clasp_gemm_set_choice(ctx, q->ta, q->tb, q->m, q->n, q->k, &p) != CLASP_OK) {
            clasp_error_clear();
            dropped++;
        }
    }
    free(e);
    if (dropped && !atomic_exchange(&warned_dropped, 1))
        fprintf(stderr,
                "clasp: warning: %s: %zu tuned GEMM choice%s no longer fit%s and %s ignored\n",
                path, dropped, dropped == 1 ? "" : "s", dropped == 1 ? "s" : "",
                dropped == 1 ? "is" : "are");
}

clasp_status clasp_tune_reset(const clasp_ctx *ctx, int *removed)
{
    char path[1100];
    if (removed) *removed = 0;
    CLASP_TRY(clasp_tune_file_path(ctx, path, sizeof path));
    if (unlink(path) == 0) {
        if (removed) *removed = 1;
        return CLASP_OK;
    }
    if (errno == ENOENT) return CLASP_OK;
    return clasp_error(CLASP_ERR_IO, "%s: %s", path, strerror(errno));
}

/* ---- the workload --------------------------------------------------- */

/* Runs the caller's workload once with recording on. */
static clasp_status record_workload(clasp_ctx *ctx, const clasp_tune_opts *o,
                                    clasp_gemm_problem *probs, size_t *n_probs)
{
    *n_probs = 0;
    if (!o->workload)
        return clasp_error(CLASP_ERR_INVALID, "clasp_tune_run: no workload to record");
    clasp_status st = clasp_gemm_record(ctx, 1);
    if (st == CLASP_OK) st = o->workload(o->workload_user, ctx);
    if (st == CLASP_OK) st = clasp_ctx_finish(ctx);
    /* Recording stops on every path: a stale recording would grow forever. */
    clasp_status st2 = clasp_gemm_record(ctx, 0);
    if (st == CLASP_OK) st = st2;
    if (st == CLASP_OK) *n_probs = clasp_gemm_recorded(ctx, probs, MAX_PROBLEMS);
    if (*n_probs > MAX_PROBLEMS) *n_probs = MAX_PROBLEMS;
    return st;
}

/* ---- timing one problem ---------------------------------------------- */

typedef struct bench_problem {
    clasp_ctx *ctx;
    clasp_gemm_problem q;
    clasp_tensor *a, *b, *c;
    int lda, ldb, ldc;
    int reps; /* calls per sample, so that tiny problems are not all launch noise */
} bench_problem;

static clasp_status run_candidate(const bench_problem *bp, const clasp_gemm_params *p)
{
    const clasp_gemm_problem *q = &bp->q;
    return clasp_gemm_with(bp->ctx, p, q->ta, q->tb, q->m, q->n, q->k, 1.0f, bp->a, 0, bp->lda,
                           bp->b, 0, bp->ldb, 0.0f, bp->c, 0, bp->ldc);
}

/* Seconds per call, over bp->reps back-to-back calls. */
static clasp_status sample(const bench_problem *bp, const clasp_gemm_params *p, double *sec)
{
    CLASP_TRY(clasp_ctx_finish(bp->ctx));
    double t0 = clasp_now();
    for (int r = 0; r < bp->reps; r++) CLASP_TRY(run_candidate(bp, p));
    CLASP_TRY(clasp_ctx_finish(bp->ctx));
    *sec = (clasp_now() - t0) / bp->reps;
    return CLASP_OK;
}

/* Random small integers: every product and partial sum is then exact in
 * float whatever the summation order (|sum| <= 4k < 2^24), so a correct
 * candidate reproduces the reference bit for bit and any indexing error
 * shows, however long K is. */
static clasp_status fill_ints(clasp_tensor *t, uint64_t seed, int range)
{
    float *h = malloc(t->numel * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_rng rng = clasp_rng_make(seed, 11);
    clasp_rng_uniform_host(&rng, h, t->numel, -(float)range - 0.5f, (float)range + 0.5f);
    for (size_t i = 0; i < t->numel; i++) {
        float v = roundf(h[i]);
        h[i] = v > (float)range ? (float)range : v < -(float)range ? -(float)range : v;
    }
    clasp_status st = clasp_tensor_write(t, h);
    free(h);
    return st;
}

/* Runs p into C (first filled with NaN, which beta = 0 must overwrite)
 * and compares with ref. *ok = 0 on any difference beyond tol. */
static clasp_status verify(const bench_problem *bp, const clasp_gemm_params *p, const float *ref,
                           double tol, int *ok)
{
    size_t n = (size_t)bp->q.m * (size_t)bp->q.n;
    float *got = malloc(n * sizeof *got);
    if (!got) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st = clasp_tensor_fill(bp->c, NAN);
    if (st == CLASP_OK) st = run_candidate(bp, p);
    if (st == CLASP_OK) st = clasp_tensor_read(bp->c, got);
    *ok = st == CLASP_OK;
    for (size_t i = 0; *ok && i < n; i++)
        if (!(fabs((double)got[i] - (double)ref[i]) <= tol)) *ok = 0;
    free(got);
    return st;
}

void clasp_gemm_params_describe(const clasp_gemm_params *p, char *buf, size_t size)
{
    if (p->path == CLASP_GEMM_TILED || p->path == CLASP_GEMM_DOT)
        snprintf(buf, size, "%s %dx%d wg%d s%d o%d", clasp_gemm_path_name(p->path), p->tm, p->tn,
                 p->wg, p->splitk, p->order);
    else snprintf(buf, size, "%s", clasp_gemm_path_name(p->path));
}

enum { C_ALIVE, C_DROPPED, C_FAILED, C_UNTRIED };

/* Times the candidates of one problem until `deadline` (the first two
 * always) and fills e. */
static clasp_status tune_problem(clasp_ctx *ctx, const clasp_gemm_problem *q, double deadline,
                                 clasp_tune_entry *e)
{
    clasp_gemm_params cand[MAX_CANDIDATES];
    int nc = clasp_gemm_candidates(ctx, q->ta, q->tb, q->m, q->n, q->k, cand, MAX_CANDIDATES);
    if (nc > MAX_CANDIDATES) nc = MAX_CANDIDATES;
    e->prob = *q;
    e->n_candidates = nc;
    e->dflt = cand[0];
    e->chosen = cand[0];
    double flop = 2.0 * q->m * (double)q->n * q->k;

    bench_problem bp = {ctx,  *q, NULL, NULL, NULL, q->ta ? q->m : q->k, q->tb ? q->k : q->n,
                        q->n, 1};
    if (bp.lda < 1) bp.lda = 1;
    if (bp.ldb < 1) bp.ldb = 1;
    size_t na = (size_t)q->m * q->k, nb = (size_t)q->k * q->n, nm = (size_t)q->m * q->n;
    /* Tensors take int sizes; a problem this large keeps its heuristic. */
    if (q->k == 0 || na > INT32_MAX || nb > INT32_MAX || nm > INT32_MAX) return CLASP_OK;
    float *ref = malloc(nm * sizeof *ref);
    double best[MAX_CANDIDATES];
    int state[MAX_CANDIDATES];
    for (int i = 0; i < nc; i++) {
        best[i] = INFINITY;
        state[i] = C_UNTRIED;
    }
    clasp_status st = ref ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (st == CLASP_OK) st = clasp_tensor_new1(ctx, (int)na, &bp.a);
    if (st == CLASP_OK) st = clasp_tensor_new1(ctx, (int)nb, &bp.b);
    if (st == CLASP_OK) st = clasp_tensor_new1(ctx, (int)nm, &bp.c);
    int range = q->k <= (1 << 22) ? 2 : 1;
    double tol = q->k <= (1 << 24) ? 0.0 : 1e-6 * q->k;
    if (st == CLASP_OK) st = fill_ints(bp.a, 1000u + (uint64_t)q->m, range);
    if (st == CLASP_OK) st = fill_ints(bp.b, 2000u + (uint64_t)q->n, range);

    /* The reference: the heuristic's pick, which runs today anyway. Its
     * first call also builds its program and fills the buffer pool. */
    if (st == CLASP_OK) st = run_candidate(&bp, &cand[0]);
    if (st == CLASP_OK) st = clasp_tensor_read(bp.c, ref);
    double t0 = 0;
    if (st == CLASP_OK) st = sample(&bp, &cand[0], &t0);
    if (st == CLASP_OK) {
        /* Samples of at least ~2 ms: below that, launch and clFinish jitter
         * decide the order. */
        if (t0 < 2e-3) bp.reps = t0 > 0 ? (int)(2e-3 / t0) + 1 : 64;
        if (bp.reps > 64) bp.reps = 64;
        if (bp.reps > 1) st = sample(&bp, &cand[0], &t0);
    }
    if (st == CLASP_OK) {
        best[0] = t0;
        state[0] = C_ALIVE;
        e->n_timed = 1;
    }
    double fastest = best[0];

    /* Round 0: warm each candidate up (its build is not timed) and take one
     * sample; one far behind the fastest so far is not sampled again. */
    for (int i = 1; st == CLASP_OK && i < nc; i++) {
        if (i >= 2 && clasp_now() >= deadline) break;
        double t;
        clasp_status cs = run_candidate(&bp, &cand[i]);
        if (cs == CLASP_OK) cs = sample(&bp, &cand[i], &t);
        if (cs != CLASP_OK) {
            /* A candidate that cannot run here (CLBlast refusing a shape, a
             * work-group limit at enqueue) is simply not a candidate. Were
             * the device itself broken, the next clFinish would say so and
             * end the run. */
            clasp_error_clear();
            state[i] = C_FAILED;
            continue;
        }
        best[i] = t;
        e->n_timed++;
        /* Far behind after one sample: noise does not explain 3x. */
        state[i] = t > 3 * fastest ? C_DROPPED : C_ALIVE;
        if (t < fastest) fastest = t;
    }

    /* Further rounds over the survivors, alternating direction so that no
     * candidate always runs right after the same neighbour. */
    for (int round = 1; st == CLASP_OK && round < MAX_ROUNDS && clasp_now() < deadline; round++) {
        int alive = 0;
        for (int j = 0; st == CLASP_OK && j < nc; j++) {
            int i = round % 2 ? nc - 1 - j : j;
            if (state[i] != C_ALIVE) continue;
            double t;
            st = sample(&bp, &cand[i], &t);
            if (st == CLASP_OK && t < best[i]) best[i] = t;
            if (best[i] < fastest) fastest = best[i];
            alive++;
        }
        /* The heuristic's pick stays in every round: the speed-up is
         * measured against it, and one disturbed sample must not make it
         * look slow. */
        for (int i = 1; i < nc; i++)
            if (state[i] == C_ALIVE && best[i] > 1.5 * fastest) state[i] = C_DROPPED;
        if (alive <= 1) break;
    }

    /* The fastest candidate that reproduces the reference, if it beats the
     * heuristic's pick by more than the noise between equal kernels: a
     * pinned choice that is only luckily faster just hides later
     * improvements to the heuristic. */
    while (st == CLASP_OK) {
        int pick = 0;
        for (int i = 1; i < nc; i++)
            if ((state[i] == C_ALIVE || state[i] == C_DROPPED) && best[i] < best[pick]) pick = i;
        if (pick == 0 || best[pick] > (1.0 - MIN_GAIN) * best[0]) break;
        int ok = 0;
        clasp_status vs = verify(&bp, &cand[pick], ref, tol, &ok);
        if (vs != CLASP_OK || !ok) {
            char d[64];
            clasp_gemm_params_describe(&cand[pick], d, sizeof d);
            fprintf(stderr, "clasp: warning: tune: %s %s for gemm t%d%d m=%d n=%d k=%d; not used\n",
                    d, vs != CLASP_OK ? "failed" : "gave wrong results", q->ta, q->tb, q->m, q->n,
                    q->k);
            clasp_error_clear();
            state[pick] = C_FAILED;
            continue;
        }
        /* Head to head with the heuristic's pick before pinning it: pairs
         * taken back to back see the same load on a shared machine, which
         * a lead built up across rounds may not have. */
        for (int r = 0; st == CLASP_OK && r < CONFIRM_PAIRS && (r < 3 || clasp_now() < deadline);
             r++) {
            double t;
            st = sample(&bp, &cand[0], &t);
            if (st == CLASP_OK && t < best[0]) best[0] = t;
            if (st == CLASP_OK) st = sample(&bp, &cand[pick], &t);
            if (st == CLASP_OK && t < best[pick]) best[pick] = t;
        }
        if (st == CLASP_OK && best[pick] <= (1.0 - MIN_GAIN) * best[0]) e->chosen = cand[pick];
        break;
    }
    if (st == CLASP_OK) {
        e->default_gflops = flop / best[0] * 1e-9;
        int pick = 0;
        for (int i = 0; i < nc; i++)
            if (!memcmp(&cand[i], &e->chosen, sizeof cand[i])) pick = i;
        e->gflops = flop / best[pick] * 1e-9;
    }
    free(ref);
    clasp_tensor_free(bp.a);
    clasp_tensor_free(bp.b);
    clasp_tensor_free(bp.c);
    return st;
}

/* ---- the search ----------------------------------------------------- */

static int cmp_flops(const void *pa, const void *pb)
{
    const clasp_gemm_problem *a = pa, *b = pb;
    double fa = (double)a->m * a->n * a->k, fb = (double)b->m * b->n * b->k;
    return fa < fb ? -1 : fa > fb;
}

/* Merges results into the device's file: entries already there for other
 * problems (another model or batch) stay. */
static clasp_status save_results(clasp_ctx *ctx, const char *path, const clasp_tune_entry *res,
                                 size_t n)
{
    clasp_tune_entry *old = NULL;
    size_t n_old = 0;
    if (clasp_tune_file_read(ctx, path, &old, &n_old, NULL, 0) != CLASP_OK) {
        /* Missing or untrusted: replaced by this run's results alone. */
        clasp_error_clear();
        old = NULL;
        n_old = 0;
    }
    clasp_tune_entry *all = malloc((n_old + n + 1) * sizeof *all);
    if (!all) {
        free(old);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    size_t count = 0;
    for (size_t i = 0; i < n_old; i++) {
        int replaced = 0;
        for (size_t j = 0; j < n && !replaced; j++)
            replaced = same_problem(&old[i].prob, &res[j].prob);
        if (!replaced) all[count++] = old[i];
    }
    for (size_t j = 0; j < n; j++)
        if (res[j].chosen.path != CLASP_GEMM_AUTO) all[count++] = res[j];
    free(old);
    clasp_status st = write_file(ctx, path, all, count);
    free(all);
    return st;
}

clasp_status clasp_tune_run(clasp_ctx *ctx, const clasp_tune_opts *opts, clasp_tune_result *out)
{
    memset(out, 0, sizeof *out);
    clasp_tune_opts o = opts ? *opts : (clasp_tune_opts){0};
    if (o.seconds <= 0) o.seconds = DEFAULT_SECONDS;
    double start = clasp_now();
    if (!tune_path(ctx, out->path, sizeof out->path)) out->path[0] = '\0';

    clasp_gemm_problem *probs = malloc(MAX_PROBLEMS * sizeof *probs);
    if (!probs) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    size_t np = 0;
    if (o.progress) o.progress(o.user, 0, 1, "recording the workload");
    clasp_status st = record_workload(ctx, &o, probs, &np);
    /* Cheapest first: small problems finish their rounds early and leave
     * their share of the budget to the large ones after them. */
    if (st == CLASP_OK) qsort(probs, np, sizeof *probs, cmp_flops);
    if (st == CLASP_OK && np) {
        out->entries = calloc(np, sizeof *out->entries);
        if (!out->entries) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; st == CLASP_OK && i < np; i++) {
        const clasp_gemm_problem *q = &probs[i];
        char what[96];
        snprintf(what, sizeof what, "gemm t%d%d %dx%dx%d", q->ta, q->tb, q->m, q->n, q->k);
        if (o.progress) o.progress(o.user, i, np, what);
        double t = clasp_now(), left = o.seconds - (t - start);
        double deadline = t + (left > 0 ? left / (double)(np - i) : 0);
        clasp_tune_entry *e = &out->entries[i];
        st = tune_problem(ctx, q, deadline, e);
        if (st != CLASP_OK) break;
        out->n = i + 1;
        /* Timing was skipped for problems too large for a tensor. */
        if (e->n_timed == 0) continue;
        double flop = 2.0 * q->m * (double)q->n * q->k;
        out->default_s += q->calls * flop / (e->default_gflops * 1e9);
        out->tuned_s += q->calls * flop / (e->gflops * 1e9);
        st = clasp_gemm_set_choice(ctx, q->ta, q->tb, q->m, q->n, q->k, &e->chosen);
    }
    free(probs);
    if (st == CLASP_OK && o.progress) o.progress(o.user, np, np, NULL);
    if (st == CLASP_OK && o.save && out->path[0]) {
        /* Only measured problems go to the file; others keep the heuristic. */
        size_t kept = 0;
        clasp_tune_entry *res = malloc((out->n + 1) * sizeof *res);
        if (!res) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (size_t i = 0; res && i < out->n; i++)
            if (out->entries[i].n_timed) res[kept++] = out->entries[i];
        if (st == CLASP_OK) st = save_results(ctx, out->path, res, kept);
        free(res);
        out->saved = st == CLASP_OK;
    }
    out->seconds = clasp_now() - start;
    if (st != CLASP_OK) {
        clasp_tune_result_free(out);
        return st;
    }
    return CLASP_OK;
}

void clasp_tune_result_free(clasp_tune_result *r)
{
    if (!r) return;
    free(r->entries);
    r->entries = NULL;
    r->n = 0;
}

/* ---- first use ------------------------------------------------------ */

/* The notice goes to log when given (the runner's news), else to stderr
 * as one line: the notice now, the outcome when done. */
static void say(void (*log)(void *, const char *), void *user, int end, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log) {
        log(user, line);
        return;
    }
    fprintf(stderr, end ? "%s\n" : "clasp: %s... ", line);
    fflush(stderr);
}

void clasp_tune_ensure_workload_log(clasp_ctx *ctx, clasp_tune_workload_fn workload, void *user,
                                    double seconds, void (*log)(void *user, const char *line),
                                    void *log_user)
{
    if (!clasp_ctx_options(ctx)->tune) return;
    char path[1100];
    if (!tune_path(ctx, path, sizeof path)) return;
    clasp_tune_entry *e = NULL;
    size_t n = 0;
    clasp_status st = clasp_tune_file_read(ctx, path, &e, &n, NULL, 0);
    free(e);
    if (st == CLASP_OK) return;
    clasp_error_clear();
    say(log, log_user, 0,
        "no GEMM tuning for this device yet: tuning (at most ~%.0f s, once; CLASP_TUNE=0 skips)",
        seconds);
    clasp_tune_opts o = {.seconds = seconds,
                         .workload = workload,
                         .workload_user = user,
                         .save = 1};
    clasp_tune_result r;
    st = clasp_tune_run(ctx, &o, &r);
    if (st != CLASP_OK) {
        say(log, log_user, 1, "%sfailed: %s; using the built-in heuristic",
            log ? "GEMM tuning " : "", clasp_last_error());
        clasp_error_clear();
        return;
    }
    say(log, log_user, 1, "%sdone in %.0f s, GEMM %.2fx faster", log ? "GEMM tuning " : "",
        r.seconds, r.tuned_s > 0 ? r.default_s / r.tuned_s : 1.0);
    clasp_tune_result_free(&r);
}

void clasp_tune_ensure_workload(clasp_ctx *ctx, clasp_tune_workload_fn workload, void *user,
                                double seconds)
{
    clasp_tune_ensure_workload_log(ctx, workload, user, seconds, NULL, NULL);
}
