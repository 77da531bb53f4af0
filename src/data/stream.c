/* A bounded queue of batches of an image folder, filled in pass order by a
 * pool of worker threads. Batch b of the pass lives in slot b % queue;
 * workers claim images one by one (so all of them work on the oldest
 * batches first) but never an image of a batch whose slot still holds an
 * older batch, so at most `queue` batches exist at once. */
#include "data/imagefolder_internal.h"
#include "util/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_BATCH ((size_t)-1)

typedef struct slot {
    float *x;
    int32_t *y;
    unsigned char *ok;
    size_t batch_no; /* the batch it holds, NO_BATCH when free */
    int want, done;
    size_t err_item; /* lowest failing pass position, NO_BATCH when none */
    char err[1024];
} slot;

struct clasp_stream {
    const clasp_imagefolder *f;
    const clasp_dataset *meta;
    int batch, queue, nworkers, train;
    size_t n, per;
    uint32_t *perm;
    uint64_t key;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t *threads;
    int nthreads;
    size_t next_item; /* next pass position to claim */
    size_t base;      /* the oldest batch not given back */
    int holding;      /* the caller holds batch `base` */
    int inflight, stop, held, peak;
    unsigned gen;
    size_t yielded, skipped;
};

static void *worker(void *arg)
{
    clasp_stream *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        size_t i = s->next_item, b = i / (size_t)s->batch;
        if (i >= s->n || b >= s->base + (size_t)s->queue) {
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        slot *sl = &s->slots[b % (size_t)s->queue];
        if (sl->batch_no != b) {
            /* First image of the batch: the slot is free (its previous
             * batch, b - queue < base, was given back). */
            sl->batch_no = b;
            size_t left = s->n - b * (size_t)s->batch;
            sl->want = left < (size_t)s->batch ? (int)left : s->batch;
            sl->done = 0;
            sl->err_item = NO_BATCH;
            if (++s->held > s->peak) s->peak = s->held;
        }
        s->next_item++;
        s->inflight++;
        unsigned gen = s->gen;
        size_t j = i % (size_t)s->batch, idx = s->perm[i];
        uint64_t key = clasp_mix64(s->key ^ clasp_mix64((uint64_t)idx + 1));
        pthread_mutex_unlock(&s->mu);

        clasp_status st = clasp_imagefolder_get(s->f, idx, s->train, key, sl->x + j * s->per);
        char msg[1024] = "";
        if (st != CLASP_OK) snprintf(msg, sizeof msg, "%s", clasp_last_error());

        pthread_mutex_lock(&s->mu);
        s->inflight--;
        if (gen == s->gen) {
            sl->y[j] = s->meta->y[idx];
            sl->ok[j] = st == CLASP_OK;
            if (st != CLASP_OK && !clasp_imagefolder_skip_bad(s->f) && i < sl->err_item) {
                sl->err_item = i;
                memcpy(sl->err, msg, sizeof sl->err);
            }
            sl->done++;
        }
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void clasp_stream_free(clasp_stream *s)
{
    if (!s) return;
    if (s->threads) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        for (int t = 0; t < s->nthreads; t++) pthread_join(s->threads[t], NULL);
        free(s->threads);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    for (int q = 0; s->slots && q < s->queue; q++) {
        free(s->slots[q].x);
        free(s->slots[q].y);
        free(s->slots[q].ok);
    }
    free(s->slots);
    free(s->perm);
    free(s);
}

clasp_status clasp_stream_new(const clasp_imagefolder *f, const clasp_stream_options *o,
                              clasp_stream **out)
{
    *out = NULL;
    const clasp_dataset *m = clasp_imagefolder_info(f);
    if (!o || o->batch <= 0 || o->workers < 0 || o->queue < 0 || m->n == 0 || m->n > UINT32_MAX)
        return clasp_error(CLASP_ERR_INVALID, "stream: bad options (batch %d, %zu images)",
                           o ? o->batch : 0, m->n);
    clasp_stream *s = calloc(1, sizeof *s);
    if (!s) return clasp_error(CLASP_ERR_NOMEM, "stream: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    s->f = f;
    s->meta = m;
    s->batch = o->batch;
    s->queue = o->queue ? o->queue : 2;
    s->nworkers = o->workers ? o->workers : CLASP_STREAM_DEFAULT_WORKERS;
    s->train = o->train;
    s->n = o->limit && o->limit < m->n ? o->limit : m->n;
    s->per = (size_t)m->c * (size_t)m->h * (size_t)m->w;
    s->perm = malloc(m->n * sizeof *s->perm);
    s->slots = calloc((size_t)s->queue, sizeof *s->slots);
    clasp_status st =
        s->perm && s->slots ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "stream: out of memory");
    for (int q = 0; st == CLASP_OK && q < s->queue; q++) {
        slot *sl = &s->slots[q];
        sl->x = malloc((size_t)s->batch * s->per * sizeof *sl->x);
        sl->y = malloc((size_t)s->batch * sizeof *sl->y);
        sl->ok = malloc((size_t)s->batch);
        sl->batch_no = NO_BATCH;
        if (!sl->x || !sl->y || !sl->ok)
            st = clasp_error(CLASP_ERR_NOMEM, "stream: out of memory for %d batches of %d images",
                             s->queue, s->batch);
    }
    if (st == CLASP_OK) {
        for (size_t i = 0; i < m->n; i++) s->perm[i] = (uint32_t)i;
        s->threads = calloc((size_t)s->nworkers, sizeof *s->threads);
        if (!s->threads) st = clasp_error(CLASP_ERR_NOMEM, "stream: out of memory");
    }
    for (int t = 0; st == CLASP_OK && t < s->nworkers; t++) {
        if (pthread_create(&s->threads[t], NULL, worker, s) != 0)
            st = clasp_error(CLASP_ERR_INVALID, "stream: cannot start decoding thread %d", t + 1);
        else s->nthreads++;
    }
    if (st != CLASP_OK) {
        clasp_stream_free(s);
        return st;
    }
    *out = s;
    return CLASP_OK;
}

clasp_status clasp_stream_start(clasp_stream *s, int shuffle, uint64_t seed, uint64_t epoch)
{
    return clasp_stream_start_at(s, shuffle, seed, epoch, 0);
}

clasp_status clasp_stream_start_at(clasp_stream *s, int shuffle, uint64_t seed, uint64_t epoch,
                                   size_t first_batch)
{
    size_t all = s->meta->n;
    pthread_mutex_lock(&s->mu);
    /* Stop claiming, let the images being decoded finish, then reset. */
    s->next_item = s->n;
    s->gen++;
    while (s->inflight) pthread_cond_wait(&s->done, &s->mu);
    /* A limited pass covers the folder's first `limit` images, as a
     * truncated folder's pass would. */
    if (shuffle) clasp_shuffle(s->perm, s->n, seed, epoch);
    else
        for (size_t i = 0; i < all; i++) s->perm[i] = (uint32_t)i;
    for (int q = 0; q < s->queue; q++) s->slots[q].batch_no = NO_BATCH;
    s->key = clasp_mix64(seed ^ clasp_mix64(epoch + 0x9e3779b97f4a7c15ull));
    s->held = 0;
    size_t nb = (s->n + (size_t)s->batch - 1) / (size_t)s->batch;
    s->base = first_batch < nb ? first_batch : nb;
    s->holding = 0;
    s->yielded = s->base * (size_t)s->batch;
    if (s->yielded > s->n) s->yielded = s->n;
    s->skipped = 0;
    s->next_item = s->yielded;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return CLASP_OK;
}

clasp_status clasp_stream_next(clasp_stream *s, const float **x, const int32_t **y, int *n,
                               size_t *first)
{
    *n = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->holding) {
            s->slots[s->base % (size_t)s->queue].batch_no = NO_BATCH;
            s->held--;
            s->base++;
            s->holding = 0;
            pthread_cond_broadcast(&s->work);
        }
        if (first) *first = s->yielded;
        if (s->base * (size_t)s->batch >= s->n) break;
        slot *sl = &s->slots[s->base % (size_t)s->queue];
        while (!(sl->batch_no == s->base && sl->done == sl->want))
            pthread_cond_wait(&s->done, &s->mu);
        s->holding = 1;
        if (sl->err_item != NO_BATCH) {
            clasp_status st = clasp_error(CLASP_ERR_FORMAT, "%s", sl->err);
            pthread_mutex_unlock(&s->mu);
            return st;
        }
        /* Skipped images leave no gap. */
        int m = 0;
        for (int j = 0; j < sl->want; j++) {
            if (!sl->ok[j]) continue;
            if (m != j) {
                memmove(sl->x + (size_t)m * s->per, sl->x + (size_t)j * s->per,
                        s->per * sizeof *sl->x);
                sl->y[m] = sl->y[j];
            }
            m++;
        }
        s->skipped += (size_t)(sl->want - m);
        if (m == 0) continue;
        s->yielded += (size_t)m;
        *x = sl->x;
        *y = sl->y;
        *n = m;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return CLASP_OK;
}

size_t clasp_stream_index(const clasp_stream *s, size_t i)
{
    return i < s->n ? s->perm[i] : (size_t)-1;
}

size_t clasp_stream_skipped(const clasp_stream *s)
{
    return s->skipped;
}

int clasp_stream_peak_batches(const clasp_stream *s)
{
    return s->peak;
}
