/* Chart 1: per-class clean and robust accuracy as bars. */
#include "experiment/svg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVG_CLEAN "#4e79a7"
#define SVG_ROBUST "#e15759"

typedef struct bars_layout {
    double ml, mt, pw, ph, gw, bw, name_w, w, h;
    int rotate;
} bars_layout;

static bars_layout bars_plan(const clasp_report *r)
{
    bars_layout L;
    int k = r->num_classes;
    L.name_w = svg_max_name_w(r, SVG_TICK_FS);
    L.gw = k <= 20 ? 56 : 36;
    L.pw = k * L.gw;
    if (L.pw < 460) {
        L.pw = 460;
        L.gw = L.pw / k;
    }
    L.bw = fmin(24, L.gw * 0.36);
    L.rotate = L.name_w > L.gw - 6;
    L.ml = 64;
    /* Rotated labels hang to the left of their tick. */
    double hang = L.rotate ? L.name_w * SVG_SIN45 - L.gw / 2 + 12 : 0;
    if (L.ml < hang) L.ml = hang;
    L.mt = 78;
    L.ph = 260;
    L.w = L.ml + L.pw + 24;
    L.h = L.mt + L.ph + svg_class_ticks_h(L.name_w, L.rotate) + 30;
    return L;
}

/* One bar with its value above and a tooltip. */
static void svg_bar(clasp_buf *b, const bars_layout *L, double x, double acc, const char *colour,
                    const char *cls, const char *what, int64_t num, int64_t den)
{
    double hgt = L->ph * acc;
    double y = L->mt + L->ph - hgt;
    clasp_buf_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                     "<title>",
                     x, y, L->bw, hgt, colour);
    clasp_buf_xml(b, cls, 0);
    clasp_buf_printf(b, ": %s %.1f%% (%lld/%lld)</title></rect>\n", what, 100 * acc, (long long)num,
                     (long long)den);
    clasp_buf_printf(b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\" "
                     "fill=\"#555\">%.0f</text>\n",
                     x + L->bw / 2, y - 3, 100 * acc);
}

static void bars_body(clasp_buf *b, const clasp_report *r, const bars_layout *L,
                      const clasp_attack_report *a)
{
    clasp_buf_puts(b, "<g>\n");
    for (int k = 0; k < r->num_classes; k++) {
        double cx = L->ml + (k + 0.5) * L->gw;
        if (a->per_class.count[k] <= 0) {
            clasp_buf_printf(b,
                             "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                             "font-size=\"9\" fill=\"#888\">n/a</text>\n",
                             cx, L->mt + L->ph - 4);
            continue;
        }
        svg_bar(b, L, cx - L->bw - 1,
                clasp_rate(a->per_class.clean_correct[k], a->per_class.count[k]), SVG_CLEAN,
                r->class_names[k], "clean", a->per_class.clean_correct[k], a->per_class.count[k]);
        svg_bar(b, L, cx + 1, clasp_rate(a->per_class.robust_correct[k], a->per_class.count[k]),
                SVG_ROBUST, r->class_names[k], "robust", a->per_class.robust_correct[k],
                a->per_class.count[k]);
    }
    clasp_buf_puts(b, "</g>\n");
}

clasp_status clasp_svg_classes(const char *path, const clasp_report *r, const clasp_model_report *m,
                               const clasp_attack_report *a)
{
    bars_layout L = bars_plan(r);
    char title[512];
    snprintf(title, sizeof title, "%s: per-class accuracy", m->name);
    char sub[200];
    snprintf(sub, sizeof sub, "attack: %s", a->label);
    clasp_buf b = {0};
    svg_begin(&b, L.w, L.h, title, sub);
    clasp_buf_puts(&b, "<g font-size=\"11\">\n");
    svg_swatch(&b, L.ml, 50, SVG_CLEAN, "clean");
    svg_swatch(&b, L.ml + 70, 50, SVG_ROBUST, "robust (under attack)");
    clasp_buf_puts(&b, "</g>\n");
    svg_percent_axis(&b, L.ml, L.mt, L.pw, L.ph);
    bars_body(&b, r, &L, a);
    svg_class_ticks(&b, r, L.ml, L.gw, L.mt + L.ph + 4, L.rotate);
    clasp_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">class</text>\n",
                     L.ml + L.pw / 2, L.h - 10);
    svg_end(&b);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}
