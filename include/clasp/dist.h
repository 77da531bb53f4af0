/* clasp — several processes on one experiment (MPI).
 *
 * `clasp run` started by mpirun trains data-parallel and evaluates sharded
 * (README, "Several processes with MPI"). A program calls clasp_dist_init
 * once, before anything touches OpenCL, and clasp_dist_finalize at the end.
 * MPI is started only when the process was launched by an MPI launcher
 * (its environment says so); otherwise, and in a build without MPI, the
 * process is rank 0 of 1 and everything runs as a single process. */
#ifndef CLASP_DIST_H
#define CLASP_DIST_H

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* 1 when this clasp was built with MPI. */
int clasp_dist_built(void);

/* Starts MPI when launched by mpirun (or another MPI launcher). Safe to
 * call once; argc/argv may be NULL. */
clasp_status clasp_dist_init(int *argc, char ***argv);

/* After clasp_dist_init: when several ranks share a node, each rank's
 * share of the CPU cores (the cores the launcher bound it to when it did,
 * else online cores / ranks here); 0 otherwise. The library sets nothing
 * with it: a program gives it to PoCL before its first OpenCL call (the
 * clasp command sets POCL_MAX_PTHREAD_COUNT, unless already set, and
 * POCL_AFFINITY=0). */
int clasp_dist_cpu_share(void);

/* This process's rank and the number of ranks (0 and 1 without MPI). */
int clasp_dist_rank(void);
int clasp_dist_size(void);

/* Ends MPI. failed != 0 with several ranks aborts the whole job
 * (MPI_Abort), so that no rank waits forever on one that gave up. */
void clasp_dist_finalize(int failed);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
