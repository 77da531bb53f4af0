/* clasp — a data set on the device, served in (shuffled) batches.
 *
 * The images and labels are uploaded once; each batch is gathered on the
 * device from an index list, so no example makes a host round trip. When the
 * set is larger than the device allows in one buffer, batches are gathered
 * on the host and uploaded with one write each instead. */
#ifndef CLASP_BATCH_H
#define CLASP_BATCH_H

#include "clasp/data.h"
#include "clasp/tensor.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

typedef struct clasp_batcher clasp_batcher;

/* `d` must outlive the batcher (the host fallback reads it). */
clasp_status clasp_batcher_new(clasp_ctx *ctx, const clasp_dataset *d, int batch,
                               clasp_batcher **out);
void clasp_batcher_free(clasp_batcher *b);

/* A batcher over a stream (an image folder decoded by worker threads):
 * each batch is the stream's next, uploaded with one write, so the set is
 * never held. `info` (clasp_imagefolder_info) gives the count and shape;
 * both must outlive the batcher. Batches have the stream's size. */
clasp_status clasp_batcher_new_stream(clasp_ctx *ctx, clasp_stream *s, const clasp_dataset *info,
                                      int batch, clasp_batcher **out);

/* Starts a pass over the set: shuffled by (seed, epoch) when shuffle, else in
 * order. */
void clasp_batcher_start(clasp_batcher *b, int shuffle, uint64_t seed, uint64_t epoch);

/* The same pass from batch `first_batch` on (a resumed epoch): the batches
 * before it are neither gathered nor, for a stream, decoded. */
void clasp_batcher_start_at(clasp_batcher *b, int shuffle, uint64_t seed, uint64_t epoch,
                            size_t first_batch);

/* Next batch: *x [n,C,H,W] and *y int32 [n] (owned by the batcher, valid
 * until the next call); *n is 0 at the end of the pass. The last batch may
 * be smaller. `first` (may be NULL) receives the position in the pass of the
 * batch's first example. */
clasp_status clasp_batcher_next(clasp_batcher *b, clasp_tensor **x, clasp_tensor **y, int *n,
                                size_t *first);

/* Number of batches in a pass. */
size_t clasp_batcher_count(const clasp_batcher *b);

/* The example index (into the data set) at position i of the current pass. */
uint32_t clasp_batcher_index(const clasp_batcher *b, size_t i);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
