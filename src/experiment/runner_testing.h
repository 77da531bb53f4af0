/* The runner's test-only entry point. Not installed and not exported from
 * the shared library: tests that need it link the static one. */
#ifndef CLASP_RUNNER_TESTING_H
#define CLASP_RUNNER_TESTING_H

#include "clasp/experiment.h"

/* clasp_experiment_run, interrupted as if by the stop flag after
 * stop_batches training batches or stop_attacks attack evaluations of this
 * call (0: never), so that tests can check that a resumed run gives the
 * report of an uninterrupted one. */
clasp_status clasp_experiment_run_stopping(const clasp_plan *p, const clasp_registry *r,
                                           const clasp_run_options *opt, long long stop_batches,
                                           long long stop_attacks);

#endif
