/* Chart 2: the flow heat map (true class by prediction on the attacked
 * example). */
#include "experiment/svg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct flow_layout {
    double ml, mt, cell, grid, name_w, w, h, bar_x;
    int rotate;
} flow_layout;

static flow_layout flow_plan(const clasp_report *r)
{
    flow_layout L;
    int k = r->num_classes;
    L.name_w = svg_max_name_w(r, SVG_TICK_FS);
    L.cell = fmax(26, fmin(48, 480.0 / k));
    L.grid = k * L.cell;
    L.rotate = L.name_w > L.cell - 4;
    L.ml = 34 + L.name_w + 8;
    L.mt = 72;
    double mr = 20 + 14 + 40 + 22;
    L.w = L.ml + L.grid + mr;
    /* Narrow maps are centred in a frame wide enough for the titles. */
    if (L.w < 500) {
        L.ml += (500 - L.w) / 2;
        L.w = 500;
    }
    L.bar_x = L.ml + L.grid + 20;
    L.h = L.mt + L.grid + svg_class_ticks_h(L.name_w, L.rotate) + 30;
    return L;
}

/* White to dark blue by t in [0, 1]; *dark is set when white text reads
 * better than black on it, i.e. when the colour's relative luminance is
 * below 0.179, where both contrast ratios are equal (WCAG formulas). */
static void heat_colour(double t, char out[8], int *dark)
{
    static const double lo[3] = {255, 255, 255}, hi[3] = {8, 48, 107};
    static const double weight[3] = {0.2126, 0.7152, 0.0722};
    int c[3];
    double lum = 0;
    for (int i = 0; i < 3; i++) {
        c[i] = (int)lround(lo[i] + (hi[i] - lo[i]) * t);
        double v = c[i] / 255.0;
        lum += weight[i] * (v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
    *dark = lum < 0.179;
}

static void flow_cell(clasp_buf *b, const clasp_report *r, const flow_layout *L, int i, int j,
                      int64_t n, int64_t row)
{
    double t = row > 0 ? (double)n / (double)row : 0;
    double x = L->ml + j * L->cell, y = L->mt + i * L->cell;
    char fill[8];
    int dark;
    heat_colour(t, fill, &dark);
    clasp_buf_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                     "stroke=\"%s\" stroke-width=\"%s\"><title>true ",
                     x, y, L->cell, L->cell, row > 0 ? fill : "#f2f2f2",
                     i == j ? "#f28e2b" : "#ffffff", i == j ? "2" : "0.5");
    clasp_buf_xml(b, r->class_names[i], 0);
    clasp_buf_puts(b, " \xE2\x86\x92 predicted ");
    clasp_buf_xml(b, r->class_names[j], 0);
    clasp_buf_printf(b, ": %lld (%.1f%% of row)</title></rect>\n", (long long)n, 100 * t);
    char num[24];
    int len = snprintf(num, sizeof num, "%lld", (long long)n);
    double fs = fmin(11, L->cell * 0.85 / (len * SVG_CW));
    const char *ink = dark ? "#ffffff" : n == 0 ? "#b0b0b0" : "#222222";
    clasp_buf_printf(b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%.1f\" "
                     "fill=\"%s\">%s</text>\n",
                     x + L->cell / 2, y + L->cell / 2 + fs * 0.36, fs, ink, num);
}

static void flow_row_labels(clasp_buf *b, const clasp_report *r, const flow_layout *L)
{
    clasp_buf_printf(b, "<g font-size=\"%.0f\" text-anchor=\"end\">\n", SVG_TICK_FS);
    for (int i = 0; i < r->num_classes; i++) {
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", L->ml - 6,
                         L->mt + (i + 0.5) * L->cell + 4);
        clasp_buf_xml(b, r->class_names[i], 0);
        clasp_buf_puts(b, "</text>\n");
    }
    clasp_buf_puts(b, "</g>\n");
    clasp_buf_printf(b,
                     "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" "
                     "text-anchor=\"middle\">true class</text>\n",
                     L->ml - L->name_w - 22, L->mt + L->grid / 2);
}

/* Colour scale: the share of its true class's row that a cell holds. */
static void flow_scale(clasp_buf *b, const flow_layout *L)
{
    double x = L->bar_x, y = L->mt, h = L->grid;
    clasp_buf_printf(b,
                     "<defs><linearGradient id=\"heat\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
                     "<stop offset=\"0\" stop-color=\"#ffffff\"/>"
                     "<stop offset=\"1\" stop-color=\"#08306b\"/></linearGradient></defs>\n"
                     "<g font-size=\"10\">\n"
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" "
                     "fill=\"url(#heat)\" stroke=\"#888\" stroke-width=\"0.5\"/>\n",
                     x, y, h);
    for (int p = 0; p <= 100; p += 50)
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%d%%</text>\n", x + 18,
                         y + h - h * p / 100.0 +
                             (p == 100 ? 8
                              : p == 0 ? 0
                                       : 4),
                         p);
    clasp_buf_printf(b,
                     "<text transform=\"translate(%.1f,%.1f) rotate(90)\" "
                     "text-anchor=\"middle\" font-size=\"11\">share of row</text>\n"
                     "</g>\n",
                     x + 60, y + h / 2);
}

clasp_status clasp_svg_flow(const char *path, const clasp_report *r, const clasp_model_report *m,
                            const clasp_attack_report *a)
{
    flow_layout L = flow_plan(r);
    int k = r->num_classes;
    char title[512];
    snprintf(title, sizeof title, "%s: where each class goes under attack", m->name);
    char sub[200];
    snprintf(sub, sizeof sub, "attack: %s", a->label);
    clasp_buf b = {0};
    svg_begin(&b, L.w, L.h, title, sub);
    svg_centred(&b, L.w, 56, 11, 0,
                "counts; colour = share of the true class; outlined = still correct");
    clasp_buf_puts(&b, "<g>\n");
    for (int i = 0; i < k; i++) {
        int64_t row = clasp_class_sum(a->flow + (size_t)i * k, k);
        for (int j = 0; j < k; j++) flow_cell(&b, r, &L, i, j, a->flow[(size_t)i * k + j], row);
    }
    clasp_buf_puts(&b, "</g>\n");
    flow_row_labels(&b, r, &L);
    svg_class_ticks(&b, r, L.ml, L.cell, L.mt + L.grid + 4, L.rotate);
    clasp_buf_printf(&b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                     "predicted class (adversarial example)</text>\n",
                     L.ml + L.grid / 2, L.h - 10);
    flow_scale(&b, &L);
    svg_end(&b);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
