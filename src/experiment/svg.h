/* clasp — internals of the report writer: a growable text buffer, atomic
 * file output, name slugs, XML escaping, and the hand-written SVG charts.
 * Not installed; used by report.c and svg.c only. */
#ifndef CLASP_EXPERIMENT_SVG_H
#define CLASP_EXPERIMENT_SVG_H

#include <stddef.h>

#include "clasp/eval.h"
#include "clasp/report.h"
#include "util/util.h"

/* A growable NUL-terminated text buffer. An allocation failure sets
 * `failed` and turns later appends into no-ops, so builders can append
 * freely and check once at the end (clasp_buf_write reports it). */
typedef struct clasp_buf {
    char *data;
    size_t len, cap;
    int failed;
} clasp_buf;

void clasp_buf_free(clasp_buf *b);
void clasp_buf_puts(clasp_buf *b, const char *s);
void clasp_buf_printf(clasp_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s with & < > " ' as entities, control characters and invalid
 * UTF-8 as '?', and at most max_chars code points (0: no limit); a cut
 * string ends in an ellipsis. */
void clasp_buf_xml(clasp_buf *b, const char *s, size_t max_chars);

/* Files are written with clasp_write_atomic (util/util.h). */
/* clasp_write_atomic of the buffer; CLASP_ERR_NOMEM when it failed to grow. */
clasp_status clasp_buf_write(const clasp_buf *b, const char *path);

/* Lower-cases s into out keeping [a-z0-9], with every other run of
 * characters collapsed to one '-', no leading or trailing '-', at most
 * max_len characters (out must hold max_len + 1); "x" when nothing is left. */
void clasp_slug(const char *s, char *out, size_t max_len);

/* Number of code points of a UTF-8 string (invalid bytes count as one). */
size_t clasp_utf8_len(const char *s);

/* The charts. Each builds the whole document and writes it atomically to
 * path. Accuracies are drawn in percent. */
clasp_status clasp_svg_classes(const char *path, const clasp_report *r,
                               const clasp_model_report *m, const clasp_attack_report *a);
clasp_status clasp_svg_flow(const char *path, const clasp_report *r,
                            const clasp_model_report *m, const clasp_attack_report *a);
/* Nonzero when the model has at least one epoch with validation counts,
 * i.e. when clasp_svg_epochs has something to draw. */
int clasp_svg_epochs_wanted(const clasp_report *r, const clasp_model_report *m);
clasp_status clasp_svg_epochs(const char *path, const clasp_report *r,
                              const clasp_model_report *m);

#endif
