/* clasp — internals of the report writer: name slugs, UTF-8 and XML
 * escaping (svg_text.c) and the hand-written SVG charts (svg*.c). The text
 * buffer they write into is util/util.h's clasp_buf. Not installed; used
 * by the report*.c and svg*.c files only. */
#ifndef CLASP_EXPERIMENT_SVG_H
#define CLASP_EXPERIMENT_SVG_H

#include <stddef.h>

#include "clasp/eval.h"
#include "clasp/report.h"
#include "util/util.h"

/* Appends s with & < > " ' as entities, control characters and invalid
 * UTF-8 as '?', and at most max_chars code points (0: no limit); a cut
 * string ends in an ellipsis. */
void clasp_buf_xml(clasp_buf *b, const char *s, size_t max_chars);

/* Lower-cases s into out keeping [a-z0-9], with every other run of
 * characters collapsed to one '-', no leading or trailing '-', at most
 * max_len characters (out must hold max_len + 1); "x" when nothing is left. */
void clasp_slug(const char *s, char *out, size_t max_len);

/* Number of code points of a UTF-8 string (invalid bytes count as one). */
size_t clasp_utf8_len(const char *s);

/* The charts (svg_classes.c, svg_flow.c, svg_epochs.c). Each builds the
 * whole document and writes it atomically to path. Accuracies are drawn
 * in percent. */
clasp_status clasp_svg_classes(const char *path, const clasp_report *r, const clasp_model_report *m,
                               const clasp_attack_report *a);
clasp_status clasp_svg_flow(const char *path, const clasp_report *r, const clasp_model_report *m,
                            const clasp_attack_report *a);
/* Nonzero when the model has at least one epoch with validation counts,
 * i.e. when clasp_svg_epochs has something to draw. */
int clasp_svg_epochs_wanted(const clasp_report *r, const clasp_model_report *m);
clasp_status clasp_svg_epochs(const char *path, const clasp_report *r, const clasp_model_report *m);
/* Past 20 classes (svg_curves.c): per attack, the per-class robust
 * accuracy sorted ascending as one line (the clean accuracy too); and a
 * histogram of per-class robust accuracy, one bar per attack and bin. */
clasp_status clasp_svg_curves(const char *path, const clasp_report *r, const clasp_model_report *m);
clasp_status clasp_svg_histogram(const char *path, const clasp_report *r,
                                 const clasp_model_report *m);

#endif
