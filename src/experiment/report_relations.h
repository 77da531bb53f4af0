/* Parts of the report beyond the per-attack tables (report_relations.c):
 * the L2 section of unbounded attacks and the class-wise relations
 * (classifier row norms, pairs of L-infinity attacks, T-PGD against PGD),
 * for report.json and report.md. report_json.c and report_md.c call these. */
#ifndef CLASP_REPORT_RELATIONS_H
#define CLASP_REPORT_RELATIONS_H

#include <json-c/json.h>

#include "clasp/report.h"
#include "experiment/svg.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Overall robust accuracy of an attack (robust / count over all classes). */
double report_robust_all(const clasp_attack_report *a, int k);

/* The L-infinity attack with the lowest overall robust accuracy (first on
 * a tie); -1 when the model has none. Unbounded attacks never count. */
int report_strongest_linf(const clasp_model_report *m, int k);

/* The "l2" object of an unbounded attack (per-class median and mean L2
 * distance of its successes, robust accuracy at each budget); NULL for a
 * bounded attack or when the distances were not measured. *bad is set on
 * allocation failure. */
json_object *report_json_l2(const clasp_report *r, const clasp_attack_report *a, int *bad);

/* The model's "relations" object. */
json_object *report_json_relations(const clasp_report *r, const clasp_model_report *m, int *bad);

/* The gradient-free check: the model's gradient-free L-infinity attack
 * (plugin "square") against its strongest gradient-based one, overall and
 * per class; NULL when the model lacks either. */
json_object *report_json_masking(const clasp_report *r, const clasp_model_report *m, int *bad);
void report_md_masking(clasp_buf *b, const clasp_report *r, const clasp_model_report *m);

/* report.md: the L2 section (nothing when the model has no unbounded
 * attack) and the relations section. */
void report_md_l2(clasp_buf *b, const clasp_report *r, const clasp_model_report *m);
void report_md_relations(clasp_buf *b, const clasp_report *r, const clasp_model_report *m);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
