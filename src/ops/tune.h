/* The tuner's internals (the public part is clasp/tune.h). Not installed. */
#ifndef CLASP_OPS_TUNE_H
#define CLASP_OPS_TUNE_H

#include "clasp/tune.h"
#include "ops/gemm_internal.h"

/* Loads the device's file into ctx's GEMM choices (gemm.c calls it when a
 * context first uses GEMM). Never fails: problems are warned about on
 * stderr once per process and leave the heuristic in charge. */
void clasp_tune_load(clasp_ctx *ctx);

#endif
