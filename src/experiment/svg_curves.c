/* Charts for data sets with more than 20 classes, where a bar per class
 * stops being readable: the per-class robust accuracy of each attack
 * sorted ascending (one line per attack, the clean accuracy dashed), and a
 * histogram of per-class robust accuracy (one bar per attack and bin). */
#include "experiment/svg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const palette[10] = {
    "#e15759", "#4e79a7", "#f28e2b", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f",
};

#define ML 64.0
#define MT 96.0
#define PW 600.0
#define PH 260.0
#define BINS 10

static int dcmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Per-class rates num/den of the classes with examples, ascending. */
static int sorted_rates(const int64_t *num, const int64_t *den, int k, double *out)
{
    int n = 0;
    for (int c = 0; c < k; c++)
        if (den[c] > 0) out[n++] = clasp_rate(num[c], den[c]);
    qsort(out, (size_t)n, sizeof *out, dcmp);
    return n;
}

static void legend(clasp_buf *b, const clasp_model_report *m, int with_clean)
{
    double x = ML, y = 50;
    clasp_buf_puts(b, "<g font-size=\"11\">\n");
    if (with_clean) {
        svg_swatch(b, x, y, "#999999", "clean (dashed)");
        x += 120;
    }
    for (int j = 0; j < m->n_attacks; j++) {
        if (x > ML + PW - 60) x = ML, y += 18;
        svg_swatch(b, x, y, palette[j % 10], m->attacks[j].label);
        x += 30 + 6.8 * (double)clasp_utf8_len(m->attacks[j].label);
    }
    clasp_buf_puts(b, "</g>\n");
}

static void polyline(clasp_buf *b, const double *v, int n, const char *colour, int dashed)
{
    if (n == 0) return;
    clasp_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                     colour, dashed ? " stroke-dasharray=\"6,4\"" : "");
    for (int i = 0; i < n; i++) {
        double x = ML + (n == 1 ? PW / 2 : PW * i / (n - 1));
        clasp_buf_printf(b, "%.1f,%.1f ", x, MT + PH * (1 - v[i]));
    }
    clasp_buf_puts(b, "\"/>\n");
}

static clasp_status finish(clasp_buf *b, const char *path)
{
    svg_end(b);
    clasp_status s = clasp_buf_write(b, path);
    clasp_buf_free(b);
    return s;
}

clasp_status clasp_svg_curves(const char *path, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes;
    double *v = malloc((size_t)k * sizeof *v);
    if (!v) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    char title[512];
    snprintf(title, sizeof title, "%s: per-class robust accuracy, sorted", m->name);
    clasp_buf b = {0};
    svg_begin(&b, ML + PW + 24, MT + PH + 50, title,
              "each line: one attack's per-class accuracies from the least robust class up");
    legend(&b, m, 1);
    svg_percent_axis(&b, ML, MT, PW, PH);
    const clasp_attack_report *a0 = &m->attacks[0];
    int n = sorted_rates(a0->per_class.clean_correct, a0->per_class.count, k, v);
    polyline(&b, v, n, "#999999", 1);
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        n = sorted_rates(a->per_class.robust_correct, a->per_class.count, k, v);
        polyline(&b, v, n, palette[j % 10], 0);
    }
    clasp_buf_printf(&b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">classes, sorted by "
                     "accuracy (%d)</text>\n",
                     ML + PW / 2, MT + PH + 30, n);
    free(v);
    return finish(&b, path);
}

clasp_status clasp_svg_histogram(const char *path, const clasp_report *r,
                                 const clasp_model_report *m)
{
    int k = r->num_classes, na = m->n_attacks;
    int *bins = calloc((size_t)(na > 0 ? na : 1) * BINS, sizeof *bins);
    if (!bins) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    int top = 1;
    for (int j = 0; j < na; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        for (int c = 0; c < k; c++) {
            if (a->per_class.count[c] <= 0) continue;
            int bin =
                (int)(clasp_rate(a->per_class.robust_correct[c], a->per_class.count[c]) * BINS);
            if (bin >= BINS) bin = BINS - 1;
            if (bin < 0) bin = 0;
            if (++bins[j * BINS + bin] > top) top = bins[j * BINS + bin];
        }
    }
    char title[512];
    snprintf(title, sizeof title, "%s: histogram of per-class robust accuracy", m->name);
    clasp_buf b = {0};
    svg_begin(&b, ML + PW + 24, MT + PH + 50, title,
              "classes per 10-point bin, one bar per attack");
    legend(&b, m, 0);
    /* The count axis: five steps up to the tallest bar. */
    clasp_buf_puts(&b, "<g font-size=\"11\">\n");
    for (int i = 0; i <= 5; i++) {
        double y = MT + PH - PH * i / 5.0;
        clasp_buf_printf(&b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"1\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
                         "text-anchor=\"end\">%.0f</text>\n",
                         ML, y, ML + PW, y, i ? "#e3e3e3" : "#444", ML - 6, y + 4, top * i / 5.0);
    }
    clasp_buf_printf(&b,
                     "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\" "
                     "font-size=\"12\">classes</text>\n",
                     MT + PH / 2);
    double gw = PW / BINS, bw = (gw - 8) / (na > 0 ? na : 1);
    for (int i = 0; i < BINS; i++) {
        for (int j = 0; j < na; j++) {
            double h = PH * bins[j * BINS + i] / top;
            clasp_buf_printf(&b,
                             "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                             "fill=\"%s\"><title>",
                             ML + i * gw + 4 + j * bw, MT + PH - h, bw, h, palette[j % 10]);
            clasp_buf_xml(&b, m->attacks[j].label, 0);
            clasp_buf_printf(&b, ": %d classes at %d-%d%%</title></rect>\n", bins[j * BINS + i],
                             i * 10, i * 10 + 10);
        }
        clasp_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d%%</text>\n",
                         ML + i * gw, MT + PH + 16, i * 10);
    }
    clasp_buf_printf(&b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">100%%</text>\n"
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">robust accuracy of "
                     "the class</text>\n</g>\n",
                     ML + PW, MT + PH + 16, ML + PW / 2, MT + PH + 36);
    free(bins);
    return finish(&b, path);
}
