/* The report's worst cases per example: for each L-infinity budget with
 * two or more listed L-infinity entries (attacks and ensembles), an entry
 * derived from their per-example outcomes. An example is robust under the
 * worst case only if it is classified correctly clean and no entry flipped
 * it; its worst-case prediction is that of the first entry (in list order)
 * that flipped it, or its clean prediction when it was misclassified
 * clean. Attacks without a budget (cw) never take part. */
#ifndef CLASP_REPORT_WORST_H
#define CLASP_REPORT_WORST_H

#include "clasp/report.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* A copy of r whose models list, after their own attacks, the derived
 * worst-case entries (derived = 1). The copy shares everything else with
 * r; free it with report_worst_free. */
clasp_status report_worst_augment(const clasp_report *r, clasp_report *out);
void report_worst_free(clasp_report *aug);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
