/* Device-resident data set and batching. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/batch.h"
#include "clasp/ops.h"
#include "runtime/internal.h"

struct clasp_batcher {
    clasp_ctx *ctx;
    const clasp_dataset *d;
    int batch;
    size_t per;                  /* floats per example */
    clasp_tensor *x_all, *y_all; /* NULL in host-gather mode */
    /* Byte mode: x_all holds one byte per pixel (packed into 32-bit words)
     * and table the float each byte stands for; NULL when the data set is
     * not made of such values. */
    clasp_tensor *table;
    clasp_tensor *x, *y, *idx;
    uint32_t *perm;
    float *host_x; /* host-gather staging */
    int32_t *host_y;
    size_t pos;
    clasp_stream *stream; /* stream mode: batches come from here */
};

clasp_status clasp_batcher_new_stream(clasp_ctx *ctx, clasp_stream *s, const clasp_dataset *info,
                                      int batch, clasp_batcher **out)
{
    *out = NULL;
    if (batch <= 0 || info->n == 0)
        return clasp_error(CLASP_ERR_INVALID, "batcher: batch %d on %zu examples", batch, info->n);
    clasp_batcher *b = calloc(1, sizeof *b);
    if (!b) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    b->ctx = ctx;
    b->d = info;
    b->batch = batch;
    b->per = (size_t)info->c * (size_t)info->h * (size_t)info->w;
    b->stream = s;
    *out = b;
    return CLASP_OK;
}

clasp_status clasp_batcher_new(clasp_ctx *ctx, const clasp_dataset *d, int batch,
                               clasp_batcher **out)
{
    *out = NULL;
    if (batch <= 0 || d->n == 0)
        return clasp_error(CLASP_ERR_INVALID, "batcher: batch %d on %zu examples", batch, d->n);
    clasp_batcher *b = calloc(1, sizeof *b);
    if (!b) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    b->ctx = ctx;
    b->d = d;
    b->batch = batch;
    b->per = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    b->perm = malloc(d->n * sizeof *b->perm);
    clasp_status st = b->perm ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    const clasp_device_info *di = clasp_ctx_device(ctx);
    /* Every reader makes pixels as byte / 255: such a data set stays on the
     * device as bytes, a quarter of the floats (STL-10's training set:
     * 138 MB instead of 553 MB), and becomes floats when a batch is
     * gathered. */
    float table[256];
    for (int v = 0; v < 256; v++) table[v] = (float)v / 255.0f;
    size_t total = d->n * b->per;
    size_t words = (total + 3) / 4;
    unsigned char *packed = st == CLASP_OK ? calloc(words ? words : 1, 4) : NULL;
    int as_bytes = packed != NULL;
    for (size_t i = 0; as_bytes && i < total; i++) {
        float v = d->x[i];
        long q = v >= 0.0f && v <= 1.0f ? lrintf(v * 255.0f) : -1;
        if (q < 0 || table[q] != v) as_bytes = 0;
        else packed[i] = (unsigned char)q;
    }
    size_t bytes = as_bytes ? total : total * sizeof(float);
    int on_device = bytes <= di->max_alloc && bytes <= di->global_mem / 2;
    if (st == CLASP_OK && on_device) {
        if (as_bytes) {
            st = clasp_tensor_new(ctx, CLASP_I32, 1, (int[]){(int)words}, &b->x_all);
            if (st == CLASP_OK) st = clasp_tensor_write(b->x_all, packed);
            if (st == CLASP_OK) st = clasp_tensor_new1(ctx, 256, &b->table);
            if (st == CLASP_OK) st = clasp_tensor_write(b->table, table);
        } else {
            st = clasp_tensor_new(ctx, CLASP_F32, 2, (int[]){(int)d->n, (int)b->per}, &b->x_all);
            if (st == CLASP_OK) st = clasp_tensor_write(b->x_all, d->x);
        }
        if (st == CLASP_OK)
            st = clasp_tensor_new(ctx, CLASP_I32, 2, (int[]){(int)d->n, 1}, &b->y_all);
        if (st == CLASP_OK) st = clasp_tensor_write(b->y_all, d->y);
        if (st == CLASP_OK) st = clasp_tensor_new(ctx, CLASP_I32, 1, (int[]){batch}, &b->idx);
    } else if (st == CLASP_OK) {
        b->host_x = malloc((size_t)batch * b->per * sizeof(float));
        b->host_y = malloc((size_t)batch * sizeof(int32_t));
        if (!b->host_x || !b->host_y) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    free(packed);
    if (st != CLASP_OK) {
        clasp_batcher_free(b);
        return st;
    }
    clasp_batcher_start(b, 0, 0, 0);
    *out = b;
    return CLASP_OK;
}

void clasp_batcher_free(clasp_batcher *b)
{
    if (!b) return;
    clasp_tensor_free(b->x_all);
    clasp_tensor_free(b->table);
    clasp_tensor_free(b->y_all);
    clasp_tensor_free(b->x);
    clasp_tensor_free(b->y);
    clasp_tensor_free(b->idx);
    free(b->perm);
    free(b->host_x);
    free(b->host_y);
    free(b);
}

void clasp_batcher_start(clasp_batcher *b, int shuffle, uint64_t seed, uint64_t epoch)
{
    clasp_batcher_start_at(b, shuffle, seed, epoch, 0);
}

void clasp_batcher_start_at(clasp_batcher *b, int shuffle, uint64_t seed, uint64_t epoch,
                            size_t first_batch)
{
    size_t nb = clasp_batcher_count(b);
    if (first_batch > nb) first_batch = nb;
    size_t at = first_batch * (size_t)b->batch;
    b->pos = at < b->d->n ? at : b->d->n;
    if (b->stream) {
        clasp_stream_start_at(b->stream, shuffle, seed, epoch, first_batch);
        return;
    }
    if (shuffle) {
        clasp_shuffle(b->perm, b->d->n, seed, epoch);
    } else {
        for (size_t i = 0; i < b->d->n; i++) b->perm[i] = (uint32_t)i;
    }
}

size_t clasp_batcher_count(const clasp_batcher *b)
{
    return (b->d->n + (size_t)b->batch - 1) / (size_t)b->batch;
}

uint32_t clasp_batcher_index(const clasp_batcher *b, size_t i)
{
    if (b->stream) return (uint32_t)clasp_stream_index(b->stream, i);
    return b->perm[i];
}

/* Stream mode: the stream's next batch, uploaded. Skipped images make the
 * pass shorter; positions count what was yielded. */
static clasp_status next_streamed(clasp_batcher *b, clasp_tensor **x, clasp_tensor **y, int *n,
                                  size_t *first)
{
    const clasp_dataset *d = b->d;
    const float *hx;
    const int32_t *hy;
    int cnt;
    size_t at;
    CLASP_TRY(clasp_stream_next(b->stream, &hx, &hy, &cnt, &at));
    *n = cnt;
    if (first) *first = at;
    if (cnt == 0) return CLASP_OK;
    CLASP_TRY(clasp_tensor_ensure(b->ctx, &b->x, CLASP_F32, 4, (int[]){cnt, d->c, d->h, d->w}));
    CLASP_TRY(clasp_tensor_ensure(b->ctx, &b->y, CLASP_I32, 1, (int[]){cnt}));
    CLASP_TRY(clasp_tensor_write(b->x, hx));
    CLASP_TRY(clasp_tensor_write(b->y, hy));
    b->pos = at + (size_t)cnt;
    *x = b->x;
    *y = b->y;
    return CLASP_OK;
}

clasp_status clasp_batcher_next(clasp_batcher *b, clasp_tensor **x, clasp_tensor **y, int *n,
                                size_t *first)
{
    if (b->stream) return next_streamed(b, x, y, n, first);
    const clasp_dataset *d = b->d;
    size_t left = d->n - b->pos;
    int cnt = left < (size_t)b->batch ? (int)left : b->batch;
    *n = cnt;
    if (first) *first = b->pos;
    if (cnt == 0) return CLASP_OK;
    CLASP_TRY(clasp_tensor_ensure(b->ctx, &b->x, CLASP_F32, 4, (int[]){cnt, d->c, d->h, d->w}));
    CLASP_TRY(clasp_tensor_ensure(b->ctx, &b->y, CLASP_I32, 1, (int[]){cnt}));
    if (b->x_all) {
        CLASP_TRY(clasp_tensor_ensure(b->ctx, &b->idx, CLASP_I32, 1, (int[]){cnt}));
        /* The index upload is one small write; the gathers stay on the device. */
        CLASP_TRY(clasp_tensor_write(b->idx, b->perm + b->pos));
        if (b->table) CLASP_TRY(clasp_gather_rows_u8(b->x_all, b->table, d->n, b->idx, b->x));
        else CLASP_TRY(clasp_gather_rows(b->x_all, b->idx, b->x));
        CLASP_TRY(clasp_gather_rows(b->y_all, b->idx, b->y));
    } else {
        for (int i = 0; i < cnt; i++) {
            uint32_t k = b->perm[b->pos + (size_t)i];
            memcpy(b->host_x + (size_t)i * b->per, d->x + (size_t)k * b->per,
                   b->per * sizeof(float));
            b->host_y[i] = d->y[k];
        }
        CLASP_TRY(clasp_tensor_write(b->x, b->host_x));
        CLASP_TRY(clasp_tensor_write(b->y, b->host_y));
    }
    b->pos += (size_t)cnt;
    *x = b->x;
    *y = b->y;
    return CLASP_OK;
}
