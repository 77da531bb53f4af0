/* The pieces the three SVG charts share (svg.c): the document frame, the
 * percent axis, class-name ticks and legend swatches. Not installed. */
#ifndef CLASP_EXPERIMENT_SVG_INTERNAL_H
#define CLASP_EXPERIMENT_SVG_INTERNAL_H

#include "experiment/svg.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Average glyph advance as a fraction of the font size (sans-serif). */
#define SVG_CW 0.62
#define SVG_TICK_FS 11.0
#define SVG_SIN45 0.7072

/* Estimated width of the longest class name at font size fs. */
double svg_max_name_w(const clasp_report *r, double fs);
/* One centred line of text, bold black or plain grey, cut to the width w. */
void svg_centred(clasp_buf *b, double w, double y, double fs, int bold, const char *text);
/* The document, a white background, a bold title and a grey subtitle. */
void svg_begin(clasp_buf *b, double w, double h, const char *title, const char *subtitle);
void svg_end(clasp_buf *b);
/* Horizontal grid lines and labels every 20 %, the y axis and its title. */
void svg_percent_axis(clasp_buf *b, double x0, double y0, double pw, double ph);
/* Class names under columns of width step starting at x0; rotated by 45
 * degrees when they would not fit side by side. */
void svg_class_ticks(clasp_buf *b, const clasp_report *r, double x0, double step, double y,
                     int rotate);
/* Height the class tick labels take below the axis. */
double svg_class_ticks_h(double name_w, int rotate);
/* A colour square and its label, for legends. */
void svg_swatch(clasp_buf *b, double x, double y, const char *colour, const char *label);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
