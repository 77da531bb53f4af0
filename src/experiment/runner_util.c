/* Small helpers of the runner: random-stream keys, news and progress
 * through the caller's hooks, interrupts, counts, paths. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "experiment/dist_internal.h"
#include "experiment/runner_internal.h"

/* A Philox key for (model, epoch, purpose); the batch index becomes the
 * stream number of clasp_rng_make (which has 24 bits for it). */
uint64_t run_stream_key(uint64_t seed, int model, int epoch, int purpose)
{
    uint64_t id =
        ((uint64_t)purpose << 56) ^ ((uint64_t)(uint32_t)model << 32) ^ (uint64_t)(uint32_t)epoch;
    return clasp_mix64(seed ^ clasp_mix64(id));
}

uint64_t run_rank_key(uint64_t key)
{
    int rank = clasp_dist_rank();
    return clasp_dist_size() > 1
               ? clasp_mix64(key ^ clasp_mix64(0x72616e6b00000000ull + (uint64_t)rank))
               : key;
}

/* News and progress come from rank 0 only. */
void run_say(runner *R, const char *fmt, ...)
{
    const clasp_run_hooks *h = &R->opt->hooks;
    if (!h->log || clasp_dist_rank() != 0) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->user, line);
}

void run_progress_start(runner *R, const char *label, size_t total)
{
    if (R->opt->hooks.progress_start && clasp_dist_rank() == 0)
        R->opt->hooks.progress_start(R->opt->hooks.user, label, total);
}

void run_progress_update(runner *R, size_t done, const char *extra)
{
    if (R->opt->hooks.progress_update && clasp_dist_rank() == 0)
        R->opt->hooks.progress_update(R->opt->hooks.user, done, extra);
}

void run_progress_end(runner *R)
{
    if (R->opt->hooks.progress_end && clasp_dist_rank() == 0)
        R->opt->hooks.progress_end(R->opt->hooks.user);
}

int run_stop_requested(runner *R)
{
    /* A signal to any one rank (a scheduler's SIGTERM, Ctrl-C) stops all;
     * once seen, the answer stays yes. */
    if (dist_any(R->stopping || (R->opt->stop && *R->opt->stop))) R->stopping = 1;
    return R->stopping;
}

double run_pct(int64_t a, int64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

int64_t *run_dup64(const int64_t *v, size_t n)
{
    int64_t *d = malloc(n * sizeof *d);
    if (d) memcpy(d, v, n * sizeof *d);
    return d;
}

double *run_dup_doubles(const double *v, size_t n)
{
    double *d = malloc(n * sizeof *d + 1);
    if (d) memcpy(d, v, n * sizeof *d);
    return d;
}

/* dir/name into buf; refuses what does not fit rather than truncating. */
clasp_status run_join_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return clasp_error(CLASP_ERR_INVALID, "%s/%s: path too long", dir, name);
    return CLASP_OK;
}

int run_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

void run_eval_progress(void *user, size_t done, size_t total)
{
    (void)total;
    run_progress_update(user, done, NULL);
}

/* Saves the state and returns CLASP_ERR_INTERRUPTED with the news. */
clasp_status run_interrupted(runner *R, model_run *mr)
{
    CLASP_TRY(run_state_save(R, mr->m, mr->sgd));
    /* No rank ends before rank 0 has written the state: a launcher may end
     * the whole job when the first rank exits with a nonzero status. */
    dist_barrier();
    if (!R->state_path[0]) return clasp_error(CLASP_ERR_INTERRUPTED, "interrupted");
    return clasp_error(CLASP_ERR_INTERRUPTED, "interrupted; the state is saved in %s",
                       R->state_path);
}
