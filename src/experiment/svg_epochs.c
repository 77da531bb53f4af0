/* Chart 3: per-class validation accuracy over the epochs. */
#include "experiment/svg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tableau 10: ten colours that stay apart for most colour vision. */
static const char *const svg_palette[10] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f",
};

static int epoch_has_val(const clasp_epoch_report *e, int k)
{
    return e->val.count && e->val.clean_correct && clasp_class_sum(e->val.count, k) > 0;
}

int clasp_svg_epochs_wanted(const clasp_report *r, const clasp_model_report *m)
{
    for (int i = 0; i < m->n_epochs; i++)
        if (epoch_has_val(&m->epochs[i], r->num_classes)) return 1;
    return 0;
}

typedef struct epochs_layout {
    double ml, mt, pw, ph, w, h;
    int e_min, e_max, robust;
} epochs_layout;

static int epochs_robust(const clasp_model_report *m, int k)
{
    for (int i = 0; i < m->n_epochs; i++)
        if (epoch_has_val(&m->epochs[i], k) && m->epochs[i].val.robust_correct) return 1;
    return 0;
}

static epochs_layout epochs_plan(const clasp_report *r, const clasp_model_report *m)
{
    epochs_layout L;
    int k = r->num_classes;
    L.e_min = INT32_MAX;
    L.e_max = INT32_MIN;
    for (int i = 0; i < m->n_epochs; i++) {
        if (!epoch_has_val(&m->epochs[i], k)) continue;
        if (m->epochs[i].epoch < L.e_min) L.e_min = m->epochs[i].epoch;
        if (m->epochs[i].epoch > L.e_max) L.e_max = m->epochs[i].epoch;
    }
    L.robust = epochs_robust(m, k);
    L.pw = fmax(440, fmin(720, (L.e_max - L.e_min) * 48.0));
    L.ph = fmax(260, k * 18.0 + 8);
    L.ml = 64;
    L.mt = 58;
    L.w = L.ml + L.pw + 24 + 30 + svg_max_name_w(r, SVG_TICK_FS) + 12;
    L.h = L.mt + L.ph + 50;
    return L;
}

static double epoch_x(const epochs_layout *L, int e)
{
    if (L->e_max == L->e_min) return L->ml + L->pw / 2;
    return L->ml + 12 + (L->pw - 24) * (double)(e - L->e_min) / (double)(L->e_max - L->e_min);
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most ~10 ticks. */
static int epoch_tick_step(int span)
{
    for (int p = 1;; p *= 10) {
        if (span <= 10 * p) return p;
        if (span <= 20 * p) return 2 * p;
        if (span <= 50 * p) return 5 * p;
        if (p > INT32_MAX / 100) return p * 10;
    }
}

static void epochs_x_axis(clasp_buf *b, const epochs_layout *L)
{
    int step = epoch_tick_step(L->e_max - L->e_min);
    double y = L->mt + L->ph;
    clasp_buf_puts(b, "<g font-size=\"11\" text-anchor=\"middle\">\n");
    int first = (L->e_min + step - 1) / step * step;
    if (L->e_min <= 0) first = L->e_min;
    for (int e = first; e <= L->e_max; e += step) {
        double x = epoch_x(L, e);
        clasp_buf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                         "stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\">%d</text>\n",
                         x, y, x, y + 4, x, y + 17, e);
        if (e > INT32_MAX - step) break;
    }
    clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">epoch</text>\n</g>\n",
                     L->ml + L->pw / 2, L->h - 10);
}

/* Ten colours, then dash patterns and marker shapes for classes past ten. */
static const char *const svg_dashes[4] = {"none", "6 3", "2 3", "9 3 2 3"};

static void epochs_marker(clasp_buf *b, double x, double y, int k)
{
    const char *c = svg_palette[k % 10];
    switch ((k / 10) % 3) {
    case 0:
        clasp_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\"/>\n", x, y, c);
        break;
    case 1:
        clasp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"6\" height=\"6\" fill=\"%s\"/>\n",
                         x - 3, y - 3, c);
        break;
    default:
        clasp_buf_printf(b,
                         "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" "
                         "fill=\"%s\"/>\n",
                         x, y - 4, x + 4, y, x, y + 4, x - 4, y, c);
        break;
    }
}

static const int64_t *epoch_metric(const clasp_epoch_report *e, int robust)
{
    return robust ? e->val.robust_correct : e->val.clean_correct;
}

/* Whether epoch e has a point for class k. */
static int epoch_point(const clasp_epoch_report *e, int robust, int k, int nk)
{
    return epoch_has_val(e, nk) && epoch_metric(e, robust) && e->val.count[k] > 0;
}

static double epoch_y(const epochs_layout *L, const clasp_epoch_report *e, int k)
{
    return L->mt + L->ph * (1 - clasp_rate(epoch_metric(e, L->robust)[k], e->val.count[k]));
}

static void epochs_class_line(clasp_buf *b, const clasp_model_report *m, const epochs_layout *L,
                              int k, int nk)
{
    int n = 0;
    for (int i = 0; i < m->n_epochs; i++) n += epoch_point(&m->epochs[i], L->robust, k, nk);
    clasp_buf_puts(b, "<g>\n");
    /* A polyline needs two points; a single epoch shows as markers only. */
    if (n >= 2) {
        clasp_buf_printf(b,
                         "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                         "stroke-dasharray=\"%s\" points=\"",
                         svg_palette[k % 10], svg_dashes[(k / 10) % 4]);
        for (int i = 0; i < m->n_epochs; i++)
            if (epoch_point(&m->epochs[i], L->robust, k, nk))
                clasp_buf_printf(b, "%.1f,%.1f ", epoch_x(L, m->epochs[i].epoch),
                                 epoch_y(L, &m->epochs[i], k));
        clasp_buf_puts(b, "\"/>\n");
    }
    for (int i = 0; i < m->n_epochs; i++)
        if (epoch_point(&m->epochs[i], L->robust, k, nk))
            epochs_marker(b, epoch_x(L, m->epochs[i].epoch), epoch_y(L, &m->epochs[i], k), k);
    clasp_buf_puts(b, "</g>\n");
}

static void epochs_legend(clasp_buf *b, const clasp_report *r, const epochs_layout *L)
{
    double x = L->ml + L->pw + 24;
    clasp_buf_puts(b, "<g font-size=\"11\">\n");
    for (int k = 0; k < r->num_classes; k++) {
        double y = L->mt + 8 + k * 18.0;
        clasp_buf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"2\" stroke-dasharray=\"%s\"/>\n",
                         x, y, x + 22, y, svg_palette[k % 10], svg_dashes[(k / 10) % 4]);
        epochs_marker(b, x + 11, y, k);
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 28, y + 4);
        clasp_buf_xml(b, r->class_names[k], 0);
        clasp_buf_puts(b, "</text>\n");
    }
    clasp_buf_puts(b, "</g>\n");
}

clasp_status clasp_svg_epochs(const char *path, const clasp_report *r, const clasp_model_report *m)
{
    epochs_layout L = epochs_plan(r, m);
    char title[512];
    snprintf(title, sizeof title, "%s: per-class validation accuracy by epoch", m->name);
    clasp_buf b = {0};
    svg_begin(&b, L.w, L.h, title,
              L.robust ? "robust accuracy on the validation split, one line per class"
                       : "clean accuracy on the validation split, one line per class");
    svg_percent_axis(&b, L.ml, L.mt, L.pw, L.ph);
    epochs_x_axis(&b, &L);
    for (int k = 0; k < r->num_classes; k++) epochs_class_line(&b, m, &L, k, r->num_classes);
    epochs_legend(&b, r, &L);
    svg_end(&b);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
