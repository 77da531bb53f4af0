/* The runner's side of several processes (dist.c): everything it asks of
 * MPI goes through these few calls, which are no-ops (or trivial) with one
 * process and in a build without MPI. */
#ifndef CLASP_DIST_INTERNAL_H
#define CLASP_DIST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/dist.h"
#include "clasp/eval.h"
#include "clasp/model.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Rank among the ranks of this node, and their number. */
int dist_local_rank(void);
int dist_local_size(void);

/* The device spec for this rank when the configuration (`configured`, the
 * context options' device; NULL or "": none) names none: with several
 * ranks on a node that has several GPUs, the local rank's GPU ("P:D" in
 * buf); otherwise NULL (the configured device, else the default one). */
const char *dist_device_spec(const char *configured, char *buf, size_t size);

/* This rank's contiguous share [*begin, *end) of n items (batches): the
 * first n % size ranks get one more. */
void dist_shard(size_t n, size_t *begin, size_t *end);
/* The most items any rank's share has. */
size_t dist_shard_max(size_t n);

/* Waits for every rank. */
void dist_barrier(void);

/* Element-wise sums over the ranks, in place, the same on every rank.
 * Integers are exact; doubles are summed in the MPI library's order. */
clasp_status dist_sum_i64(int64_t *v, size_t n);
clasp_status dist_sum_f64(double *v, size_t n);
clasp_status dist_max_f64(double *v, size_t n);

/* Stop flag: nonzero on any rank is nonzero on all (a collective: every
 * rank calls it at the same point). */
int dist_any(int flag);

/* Gradient averaging: every rank's parameter gradients become
 * sum over ranks of weight_r * grad_r, where weight_r is the rank's share
 * of the global batch (its examples / the batch's). have == 0: this rank
 * had no examples in the batch; it contributes zeros without reading its
 * (stale) gradients. Bucketed (whole parameters, ~4 MB per bucket), each
 * bucket's allreduce started as soon as it is read back from the device. */
clasp_status dist_allreduce_grads(clasp_model *m, float weight, int have);

/* BatchNorm running statistics (and every other float buffer) from rank 0
 * to all, as PyTorch DDP does before each forward by default. */
clasp_status dist_bcast_buffers(clasp_model *m);

/* Compares a checksum of the parameters and buffers across ranks; a
 * difference is an error naming `when` and the ranks' checksums. */
clasp_status dist_check_params(clasp_model *m, const char *when);

/* Sums an evaluation result over the ranks, in place, exactly: every
 * per-class count and K x K matrix, and the total; seconds become the
 * slowest rank's. A rank that evaluated nothing passes a result with
 * num_classes set and NULL arrays (zeros). The one place to extend when
 * clasp_eval_result grows a field. */
clasp_status dist_reduce_eval(clasp_eval_result *r);

/* dist_reduce_eval for a test pass, plus what the report keeps per
 * example: the shards' per-example outcomes gathered in pass order, an
 * ensemble's first flippers summed (its members' times: the slowest
 * rank's), and with l2 the distances of the successes, grouped by class
 * and ascending, as one process would have them. */
clasp_status dist_reduce_eval_examples(clasp_eval_result *r, int n_members, int l2);

/* Per-example arrays of a sharded pass in pass order: each rank holds
 * n_local elements of elem_bytes for its contiguous slice (ranks in order);
 * out (n_total elements) receives all of them on every rank. */
clasp_status dist_gather_examples(const void *local, size_t n_local, size_t elem_bytes, void *out,
                                  size_t n_total);

/* Seconds spent in dist_allreduce_grads (device reads and writes and the
 * MPI waits) and calls so far, and the bytes one call sends. */
void dist_grad_stats(double *seconds, double *wait_seconds, long long *calls, size_t *bytes);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
