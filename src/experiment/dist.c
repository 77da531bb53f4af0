/* Several processes on one experiment: the only file that speaks MPI.
 *
 * The runner sees ranks, sums and a stop flag (dist_internal.h). Without
 * MPI (a build without it, or a process not started by an MPI launcher)
 * there is one rank and every call below is trivial, so the rest of clasp
 * has one code path. */
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clasp_config.h"
#include "clasp/runtime.h"
#include "experiment/dist_internal.h"

#if CLASP_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local_rank = 0, g_local_size = 1;

/* Gradient traffic, for the training summary and the benchmark. */
static double g_grad_seconds, g_wait_seconds;
static long long g_grad_calls;
static size_t g_grad_bytes;

/* Host staging for gradients and checksums. */
static float *g_buf;
static size_t g_cap;

#if CLASP_HAVE_MPI
static int g_started; /* this process called MPI_Init */

static clasp_status ensure_buf(size_t n)
{
    if (n <= g_cap) return CLASP_OK;
    float *b = realloc(g_buf, n * sizeof *b);
    if (!b) return clasp_error(CLASP_ERR_NOMEM, "out of memory (%zu gradient floats)", n);
    g_buf = b, g_cap = n;
    return CLASP_OK;
}

/* FNV-1a over bytes. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}
#endif

int clasp_dist_built(void)
{
    return CLASP_HAVE_MPI;
}
int clasp_dist_rank(void)
{
    return g_rank;
}
int clasp_dist_size(void)
{
    return g_size;
}
int dist_local_rank(void)
{
    return g_local_rank;
}
int dist_local_size(void)
{
    return g_local_size;
}

/* Set by mpirun/mpiexec (Open MPI, MPICH, Intel MPI) and by srun (PMI/PMIx). */
static int launched_by_mpi(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK",
                                 "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

/* PoCL's CPU device starts one thread per core it sees: with several ranks
 * on a node each would start them all. Each rank gets its share: the cores
 * the launcher bound it to when it did, else online cores / ranks here. */
int clasp_dist_cpu_share(void)
{
    if (g_local_size <= 1) return 0;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    int mine = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) mine = CPU_COUNT(&set);
    long share = mine > 0 && mine < online ? mine : online / g_local_size;
    return share < 1 ? 1 : (int)share;
}

clasp_status clasp_dist_init(int *argc, char ***argv)
{
#if CLASP_HAVE_MPI
    if (g_started || !launched_by_mpi()) return CLASP_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS)
        return clasp_error(CLASP_ERR_IO, "MPI_Init failed");
    g_started = !inited;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &g_local_rank);
    MPI_Comm_size(node, &g_local_size);
    MPI_Comm_free(&node);
#else
    (void)argc, (void)argv;
    /* Copies that do not know of each other would write one output
     * folder at once. */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (launched_by_mpi() && n && atoi(n) > 1)
        return clasp_error(
            CLASP_ERR_CONFIG,
            "started by an MPI launcher with %s processes, but this clasp was built without MPI; "
            "install an MPI library (Debian: libopenmpi-dev) and rebuild, or run one process",
            n);
#endif
    return CLASP_OK;
}

void clasp_dist_finalize(int failed)
{
    free(g_buf);
    g_buf = NULL, g_cap = 0;
#if CLASP_HAVE_MPI
    if (!g_started) return;
    g_started = 0;
    if (failed && g_size > 1) {
        fflush(stdout), fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
#else
    (void)failed;
#endif
}

const char *dist_device_spec(const char *configured, char *buf, size_t size)
{
    if (g_local_size <= 1 || (configured && *configured)) return NULL;
    clasp_device_info *list = NULL;
    size_t n = 0;
    if (clasp_device_list(&list, &n) != CLASP_OK) {
        clasp_error_clear();
        return NULL;
    }
    size_t gpus = 0;
    /* The devices that take the GPU code path (clasp_device_kind): GPUs,
     * and simulators of one, as the default device choice counts them. */
    for (size_t i = 0; i < n; i++) gpus += clasp_device_kind_of(&list[i]) != CLASP_DEVICE_CPU;
    const char *spec = NULL;
    if (gpus > 1) {
        size_t want = (size_t)g_local_rank % gpus;
        for (size_t i = 0, g = 0; i < n && !spec; i++)
            if (clasp_device_kind_of(&list[i]) != CLASP_DEVICE_CPU && g++ == want) {
                snprintf(buf, size, "%d:%d", list[i].platform, list[i].device);
                spec = buf;
            }
    }
    free(list);
    return spec;
}

void dist_shard(size_t n, size_t *begin, size_t *end)
{
    size_t q = n / (size_t)g_size, r = n % (size_t)g_size, k = (size_t)g_rank;
    *begin = k * q + (k < r ? k : r);
    *end = *begin + q + (k < r);
}

size_t dist_shard_max(size_t n)
{
    return (n + (size_t)g_size - 1) / (size_t)g_size;
}

void dist_barrier(void)
{
#if CLASP_HAVE_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

#if CLASP_HAVE_MPI
/* MPI counts are int: long arrays go in pieces. */
static void allreduce_pieces(void *v, size_t n, size_t elem, MPI_Datatype t, MPI_Op op)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t o = 0; o < n; o += piece) {
        size_t c = n - o < piece ? n - o : piece;
        MPI_Allreduce(MPI_IN_PLACE, (char *)v + o * elem, (int)c, t, op, MPI_COMM_WORLD);
    }
}
#endif

/* One line per reduction: a no-op with one rank or without MPI. */
#if CLASP_HAVE_MPI
#define REDUCE(v, n, type, op) \
    (g_size > 1 ? allreduce_pieces(v, n, sizeof *(v), type, op) : (void)0)
#else
#define REDUCE(v, n, type, op) ((void)(v), (void)(n))
#endif

clasp_status dist_sum_i64(int64_t *v, size_t n)
{
    REDUCE(v, n, MPI_INT64_T, MPI_SUM);
    return CLASP_OK;
}

clasp_status dist_sum_f64(double *v, size_t n)
{
    REDUCE(v, n, MPI_DOUBLE, MPI_SUM);
    return CLASP_OK;
}

clasp_status dist_max_f64(double *v, size_t n)
{
    REDUCE(v, n, MPI_DOUBLE, MPI_MAX);
    return CLASP_OK;
}

int dist_any(int flag)
{
#if CLASP_HAVE_MPI
    if (g_size > 1) {
        int any = flag != 0;
        MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
        return any;
    }
#endif
    return flag != 0;
}

/* ---- gradients ---------------------------------------------------------- */

/* ~4 MB per bucket: large enough that latency does not dominate, small
 * enough that the first buckets travel while later ones are read back. */
#define BUCKET_FLOATS ((size_t)1 << 20)

clasp_status dist_allreduce_grads(clasp_model *m, float weight, int have)
{
#if CLASP_HAVE_MPI
    if (g_size <= 1) return CLASP_OK;
    double t0 = clasp_now();
    int np = clasp_model_num_params(m);
    size_t total = 0;
    for (int i = 0; i < np; i++) total += clasp_model_grad(m, i)->numel;
    CLASP_TRY(ensure_buf(total));
    MPI_Request *req = malloc((size_t)(np ? np : 1) * sizeof *req);
    int *last =
        malloc((size_t)(np ? np : 1) * sizeof *last); /* one past a bucket's last parameter */
    if (!req || !last) {
        free(req), free(last);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    clasp_status st = CLASP_OK;
    size_t off = 0, start = 0;
    int nb = 0;
    for (int i = 0; i < np && st == CLASP_OK; i++) {
        const clasp_tensor *g = clasp_model_grad(m, i);
        float *dst = g_buf + off;
        if (have) {
            st = clasp_tensor_read(g, dst);
            if (weight != 1.0f)
                for (size_t j = 0; j < g->numel; j++) dst[j] *= weight;
        } else {
            memset(dst, 0, g->numel * sizeof *dst);
        }
        off += g->numel;
        if (st == CLASP_OK && (off - start >= BUCKET_FLOATS || i == np - 1)) {
            MPI_Iallreduce(MPI_IN_PLACE, g_buf + start, (int)(off - start), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD, &req[nb]);
            last[nb++] = i + 1;
            start = off;
        } else if (nb) {
            /* Open MPI moves non-blocking collectives on inside MPI calls. */
            int done;
            MPI_Testall(nb, req, &done, MPI_STATUSES_IGNORE);
        }
    }
    if (st != CLASP_OK) {
        /* A failed read leaves the job to MPI_Abort (clasp_dist_finalize);
         * the buckets started are waited for first. */
        MPI_Waitall(nb, req, MPI_STATUSES_IGNORE);
        free(req), free(last);
        return st;
    }
    off = 0;
    for (int k = 0, i = 0; k < nb; k++) {
        double w0 = clasp_now();
        MPI_Wait(&req[k], MPI_STATUS_IGNORE);
        g_wait_seconds += clasp_now() - w0;
        for (; i < last[k] && st == CLASP_OK; i++) {
            clasp_tensor *g = clasp_model_grad(m, i);
            st = clasp_tensor_write(g, g_buf + off);
            off += g->numel;
        }
    }
    free(req), free(last);
    g_grad_bytes = total * sizeof(float);
    g_grad_calls++;
    g_grad_seconds += clasp_now() - t0;
    return st;
#else
    (void)m, (void)weight, (void)have;
    return CLASP_OK;
#endif
}

void dist_grad_stats(double *seconds, double *wait_seconds, long long *calls, size_t *bytes)
{
    *seconds = g_grad_seconds;
    *wait_seconds = g_wait_seconds;
    *calls = g_grad_calls;
    *bytes = g_grad_bytes;
}

clasp_status dist_bcast_buffers(clasp_model *m)
{
#if CLASP_HAVE_MPI
    if (g_size <= 1) return CLASP_OK;
    /* All float buffers in one message (int64 counters advance alike on
     * every rank). */
    int nb = clasp_model_num_buffers(m);
    size_t total = 0, off = 0;
    for (int i = 0; i < nb; i++)
        total += clasp_model_buffer(m, i) ? clasp_model_buffer(m, i)->numel : 0;
    if (!total) return CLASP_OK;
    CLASP_TRY(ensure_buf(total));
    for (int i = 0; g_rank == 0 && i < nb; i++) {
        clasp_tensor *t = clasp_model_buffer(m, i);
        if (!t) continue;
        CLASP_TRY(clasp_tensor_read(t, g_buf + off));
        off += t->numel;
    }
    MPI_Bcast(g_buf, (int)total, MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (int i = 0; g_rank != 0 && i < nb; i++) {
        clasp_tensor *t = clasp_model_buffer(m, i);
        if (!t) continue;
        CLASP_TRY(clasp_tensor_write(t, g_buf + off));
        off += t->numel;
    }
    return CLASP_OK;
#else
    (void)m;
    return CLASP_OK;
#endif
}

clasp_status dist_check_params(clasp_model *m, const char *when)
{
#if CLASP_HAVE_MPI
    if (g_size <= 1) return CLASP_OK;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < clasp_model_num_params(m); i++) {
        const clasp_tensor *t = clasp_model_param(m, i);
        CLASP_TRY(ensure_buf(t->numel));
        CLASP_TRY(clasp_tensor_read(t, g_buf));
        h = fnv(h, g_buf, t->numel * sizeof(float));
    }
    for (int i = 0; i < clasp_model_num_buffers(m); i++) {
        const clasp_tensor *t = clasp_model_buffer(m, i);
        if (!t) {
            h = fnv(h, clasp_model_buffer_i64(m, i), sizeof(int64_t));
            continue;
        }
        CLASP_TRY(ensure_buf(t->numel));
        CLASP_TRY(clasp_tensor_read(t, g_buf));
        h = fnv(h, g_buf, t->numel * sizeof(float));
    }
    unsigned long long lo = h, hi = h, first = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    MPI_Bcast(&first, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    if (lo != hi)
        return clasp_error(
            CLASP_ERR_INVALID,
            "the model's parameters differ between ranks %s (checksum %016llx on rank 0, %016llx "
            "on rank %d): the ranks must run the same clasp on the same kind of device, from the "
            "same state file",
            when, first, (unsigned long long)h, g_rank);
    return CLASP_OK;
#else
    (void)m, (void)when;
    return CLASP_OK;
#endif
}

/* ---- evaluation --------------------------------------------------------- */

/* Every count array of clasp_eval_result, with its length: K per class, or
 * K*K for a matrix. A new count field is one more line here. */
static const struct {
    size_t offset;
    int square;
} eval_counts[] = {
    {offsetof(clasp_eval_result, per_class.count), 0},
    {offsetof(clasp_eval_result, per_class.clean_correct), 0},
    {offsetof(clasp_eval_result, per_class.robust_correct), 0},
    {offsetof(clasp_eval_result, attack_success), 0},
    {offsetof(clasp_eval_result, confusion), 1},
    {offsetof(clasp_eval_result, flow), 1},
};
/* Times: the slowest rank's. */
static const size_t eval_seconds[] = {
    offsetof(clasp_eval_result, seconds),
    offsetof(clasp_eval_result, attack_seconds),
};

clasp_status dist_reduce_eval(clasp_eval_result *r)
{
    const size_t nf = sizeof eval_counts / sizeof eval_counts[0];
    size_t K = (size_t)r->per_class.num_classes, len = 1;
    for (size_t f = 0; f < nf; f++) len += eval_counts[f].square ? K * K : K;
    int64_t *v = calloc(len, sizeof *v);
    if (!v) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    size_t o = 0;
    v[o++] = r->total;
    for (size_t f = 0; f < nf; f++) {
        int64_t *a = *(int64_t **)((char *)r + eval_counts[f].offset);
        size_t n = eval_counts[f].square ? K * K : K;
        if (a) memcpy(v + o, a, n * sizeof *v);
        o += n;
    }
    clasp_status st = dist_sum_i64(v, len);
    double secs[sizeof eval_seconds / sizeof eval_seconds[0]];
    for (size_t s = 0; s < sizeof secs / sizeof secs[0]; s++)
        secs[s] = *(double *)((char *)r + eval_seconds[s]);
    if (st == CLASP_OK) st = dist_max_f64(secs, sizeof secs / sizeof secs[0]);
    for (size_t s = 0; st == CLASP_OK && s < sizeof secs / sizeof secs[0]; s++)
        *(double *)((char *)r + eval_seconds[s]) = secs[s];
    o = 0;
    if (st == CLASP_OK) r->total = v[o++];
    for (size_t f = 0; st == CLASP_OK && f < nf; f++) {
        int64_t **a = (int64_t **)((char *)r + eval_counts[f].offset);
        size_t n = eval_counts[f].square ? K * K : K;
        if (!*a && !(*a = malloc(n * sizeof **a)))
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        else memcpy(*a, v + o, n * sizeof *v);
        o += n;
    }
    free(v);
    return st;
}

clasp_status dist_gather_examples(const void *local, size_t n_local, size_t elem_bytes, void *out,
                                  size_t n_total)
{
#if CLASP_HAVE_MPI
    if (g_size > 1) {
        long long mine = (long long)n_local, *all = malloc((size_t)g_size * sizeof *all);
        int *counts = malloc((size_t)g_size * sizeof *counts),
            *displs = malloc((size_t)g_size * sizeof *displs);
        clasp_status st =
            all && counts && displs ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
        /* Every rank takes part in the collectives, whatever happened above. */
        MPI_Allgather(&mine, 1, MPI_LONG_LONG, all, all ? 1 : 0, MPI_LONG_LONG, MPI_COMM_WORLD);
        size_t sum = 0;
        for (int k = 0; st == CLASP_OK && k < g_size; k++) {
            size_t bytes = (size_t)all[k] * elem_bytes;
            if (bytes > (size_t)2147483647 || sum * elem_bytes > (size_t)2147483647)
                st = clasp_error(CLASP_ERR_INVALID,
                                 "gathering %zu bytes per rank: more than MPI's int counts", bytes);
            counts[k] = (int)bytes, displs[k] = (int)(sum * elem_bytes);
            sum += (size_t)all[k];
        }
        if (st == CLASP_OK && sum != n_total)
            st = clasp_error(CLASP_ERR_INVALID, "gathering %zu examples, the ranks hold %zu",
                             n_total, sum);
        if (st == CLASP_OK)
            MPI_Allgatherv(local, (int)(n_local * elem_bytes), MPI_BYTE, out, counts, displs,
                           MPI_BYTE, MPI_COMM_WORLD);
        free(all), free(counts), free(displs);
        return st;
    }
#endif
    if (n_local != n_total)
        return clasp_error(CLASP_ERR_INVALID, "gathering %zu examples, this process holds %zu",
                           n_total, n_local);
    if (n_total) memcpy(out, local, n_total * elem_bytes);
    return CLASP_OK;
}

typedef struct l2_pair {
    int32_t cls;
    float dist;
} l2_pair;

static int l2_pair_cmp(const void *a, const void *b)
{
    const l2_pair *x = a, *y = b;
    if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
    return (x->dist > y->dist) - (x->dist < y->dist);
}

/* The L2 distances of every rank's successes, grouped by class and
 * ascending within one, as one process would have them (before the counts
 * are summed: each rank's attack_success says how many it has per class). */
static clasp_status gather_l2(clasp_eval_result *res)
{
    int K = res->per_class.num_classes;
    int64_t mine = 0, total = 0;
    for (int c = 0; res->attack_success && c < K; c++) mine += res->attack_success[c];
    total = mine;
    CLASP_TRY(dist_sum_i64(&total, 1));
    l2_pair *local = malloc((size_t)mine * sizeof *local + 1),
            *all = malloc((size_t)total * sizeof *all + 1);
    clasp_status st = local && all ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    for (int c = 0, i = 0; st == CLASP_OK && c < K && res->attack_success; c++)
        for (int64_t j = 0; j < res->attack_success[c]; j++, i++)
            local[i] = (l2_pair){.cls = c, .dist = res->l2_success ? res->l2_success[i] : 0.0f};
    /* Every rank takes part in the collective, whatever happened above. */
    clasp_status g = dist_gather_examples(local, st == CLASP_OK ? (size_t)mine : 0, sizeof *local,
                                          all, st == CLASP_OK ? (size_t)total : 0);
    if (st == CLASP_OK) st = g;
    if (st == CLASP_OK) {
        qsort(all, (size_t)total, sizeof *all, l2_pair_cmp);
        float *d = malloc((size_t)total * sizeof *d + 1);
        if (!d) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; d && i < total; i++) d[i] = all[i].dist;
        if (d) free(res->l2_success), res->l2_success = d;
    }
    free(local), free(all);
    return st;
}

/* A shard's per-example outcomes, in pass order, and an ensemble's first
 * flippers summed over the ranks (the slowest rank's member times). */
static clasp_status gather_outcomes(clasp_eval_result *res, size_t local, int nm)
{
    size_t total = (size_t)res->total;
    int32_t **arrays[] = {&res->ex_label, &res->ex_clean, &res->ex_adv};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        int32_t *all = malloc(total * sizeof *all + 1);
        if (!all) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        clasp_status st = dist_gather_examples(*arrays[i], local, sizeof(int32_t), all, total);
        if (st != CLASP_OK) {
            free(all);
            return st;
        }
        free(*arrays[i]);
        *arrays[i] = all;
    }
    if (nm > 0) {
        if (!res->first_flip || !res->member_seconds) {
            /* A rank with no batches: zeros to add. */
            free(res->first_flip), free(res->member_seconds);
            res->first_flip =
                calloc((size_t)res->per_class.num_classes * (size_t)nm, sizeof *res->first_flip);
            res->member_seconds = calloc((size_t)nm, sizeof *res->member_seconds);
            if (!res->first_flip || !res->member_seconds)
                return clasp_error(CLASP_ERR_NOMEM, "out of memory");
            res->n_members = nm;
        }
        CLASP_TRY(dist_sum_i64(res->first_flip, (size_t)res->per_class.num_classes * (size_t)nm));
        CLASP_TRY(dist_max_f64(res->member_seconds, (size_t)nm));
    }
    return CLASP_OK;
}

clasp_status dist_reduce_eval_examples(clasp_eval_result *r, int n_members, int l2)
{
    if (clasp_dist_size() <= 1) return dist_reduce_eval(r);
    size_t local = (size_t)r->total;
    /* Before the counts are summed: each rank's attack_success says how
     * many distances it holds per class. */
    if (l2) CLASP_TRY(gather_l2(r));
    CLASP_TRY(dist_reduce_eval(r));
    return gather_outcomes(r, local, n_members);
}
