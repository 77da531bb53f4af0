/* The report's building blocks (text buffer, atomic files, slugs, XML
 * escaping) and its three SVG charts, written by hand so the project needs
 * no plotting library. Text widths are estimated from code-point counts
 * because no font metrics are available; margins leave room for that. */
#include "experiment/svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- text buffer ------------------------------------------------------ */

void clasp_buf_free(clasp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(clasp_buf *b, size_t extra)
{
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static void buf_putn(clasp_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void clasp_buf_puts(clasp_buf *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

void clasp_buf_printf(clasp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        buf_putn(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p, 0 when it is invalid. Overlong
 * forms and surrogates are rejected because XML parsers reject them. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n) return 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

size_t clasp_utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
        size_t k = utf8_seq(p);
        p += k ? k : 1;
    }
    return n;
}

static void xml_char(clasp_buf *b, const unsigned char *p, size_t k)
{
    if (k == 0) {
        clasp_buf_puts(b, "?");
        return;
    }
    switch (p[0]) {
    case '&': clasp_buf_puts(b, "&amp;"); return;
    case '<': clasp_buf_puts(b, "&lt;"); return;
    case '>': clasp_buf_puts(b, "&gt;"); return;
    case '"': clasp_buf_puts(b, "&quot;"); return;
    case '\'': clasp_buf_puts(b, "&apos;"); return;
    default: break;
    }
    if (p[0] < 0x20) clasp_buf_puts(b, "?"); /* not allowed in XML 1.0 text */
    else buf_putn(b, (const char *)p, k);
}

void clasp_buf_xml(clasp_buf *b, const char *s, size_t max_chars)
{
    size_t total = clasp_utf8_len(s);
    size_t keep = max_chars && total > max_chars ? max_chars - 1 : total;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < keep; i++) {
        size_t k = utf8_seq(p);
        xml_char(b, p, k);
        p += k ? k : 1;
    }
    if (keep < total) clasp_buf_puts(b, "\xE2\x80\xA6"); /* U+2026 ellipsis */
}

/* ---- files and names -------------------------------------------------- */

clasp_status clasp_buf_write(const clasp_buf *b, const char *path)
{
    if (b->failed) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    return clasp_write_atomic(path, b->data ? b->data : "", b->len);
}

void clasp_slug(const char *s, char *out, size_t max_len)
{
    size_t n = 0;
    int dash = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < max_len; p++) {
        unsigned c = *p;
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0) {
                if (n + 1 >= max_len) break; /* no room for the dash and a character */
                out[n++] = '-';
            }
            dash = 0;
            out[n++] = (char)c;
        } else {
            dash = 1;
        }
    }
    out[n] = '\0';
    if (n == 0) snprintf(out, max_len + 1, "x");
}

/* ---- shared chart pieces ---------------------------------------------- */

/* Average glyph advance as a fraction of the font size (sans-serif). */
#define SVG_CW 0.62
/* Tableau 10: ten colours that stay apart for most colour vision. */
static const char *const svg_palette[10] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f",
};
#define SVG_CLEAN "#4e79a7"
#define SVG_ROBUST "#e15759"
#define SVG_TICK_FS 11.0
#define SVG_SIN45 0.7072

static double text_w(const char *s, double fs)
{
    return (double)clasp_utf8_len(s) * fs * SVG_CW;
}

static double max_name_w(const clasp_report *r, double fs)
{
    double w = 0;
    for (int k = 0; k < r->num_classes; k++) {
        double t = text_w(r->class_names[k], fs);
        if (t > w) w = t;
    }
    return w;
}

/* Bold titles run wider than the plain text SVG_CW describes. */
#define SVG_CW_BOLD 0.68

/* One centred line of text, bold black or plain grey, cut to the width w
 * (the document's <title> keeps it whole). */
static void svg_centred(clasp_buf *b, double w, double y, double fs, int bold, const char *text)
{
    size_t fit = (size_t)((w - 20) / (fs * (bold ? SVG_CW_BOLD : SVG_CW)));
    clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                        "font-size=\"%.0f\" %s>", w / 2, y, fs,
                     bold ? "font-weight=\"bold\"" : "fill=\"#555\"");
    clasp_buf_xml(b, text, fit < 8 ? 8 : fit);
    clasp_buf_puts(b, "</text>\n");
}

/* The document, a white background, a bold title and a grey subtitle
 * (the attack, usually, whose labels can be long). */
static void svg_begin(clasp_buf *b, double w, double h, const char *title, const char *subtitle)
{
    clasp_buf_printf(b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
        "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
        "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" "
        "fill=\"#222\">\n<title>", w, h, w, h);
    clasp_buf_xml(b, title, 0);
    clasp_buf_puts(b, " (");
    clasp_buf_xml(b, subtitle, 0);
    clasp_buf_printf(b, ")</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                        "fill=\"#ffffff\"/>\n", w, h);
    svg_centred(b, w, 22, 14, 1, title);
    svg_centred(b, w, 40, 11, 0, subtitle);
}

static void svg_end(clasp_buf *b)
{
    clasp_buf_puts(b, "</svg>\n");
}

/* Horizontal grid lines and labels every 20 %, the y axis and its title. */
static void svg_percent_axis(clasp_buf *b, double x0, double y0, double pw, double ph)
{
    clasp_buf_puts(b, "<g font-size=\"11\">\n");
    for (int p = 0; p <= 100; p += 20) {
        double y = y0 + ph - ph * p / 100.0;
        clasp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"%s\" stroke-width=\"1\"/>\n",
                         x0, y, x0 + pw, y, p == 0 ? "#444" : "#e3e3e3");
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
                         x0 - 6, y + 4, p);
    }
    clasp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                        "stroke=\"#444\" stroke-width=\"1\"/>\n", x0, y0, x0, y0 + ph);
    clasp_buf_printf(b, "<text transform=\"translate(16,%.1f) rotate(-90)\" "
                        "text-anchor=\"middle\" font-size=\"12\">accuracy (%%)</text>\n",
                     y0 + ph / 2);
    clasp_buf_puts(b, "</g>\n");
}

/* Class names under columns of width step starting at x0; rotated by 45
 * degrees when they would not fit side by side. */
static void svg_class_ticks(clasp_buf *b, const clasp_report *r, double x0, double step,
                            double y, int rotate)
{
    clasp_buf_printf(b, "<g font-size=\"%.0f\">\n", SVG_TICK_FS);
    for (int k = 0; k < r->num_classes; k++) {
        double x = x0 + (k + 0.5) * step;
        if (rotate)
            clasp_buf_printf(b, "<text transform=\"translate(%.1f,%.1f) rotate(-45)\" "
                                "text-anchor=\"end\">", x + 4, y + 4);
        else
            clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x,
                             y + 12);
        clasp_buf_xml(b, r->class_names[k], 0);
        clasp_buf_puts(b, "</text>\n");
    }
    clasp_buf_puts(b, "</g>\n");
}

/* Height the class tick labels take below the axis. */
static double class_ticks_h(double name_w, int rotate)
{
    return rotate ? name_w * SVG_SIN45 + 8 : 18;
}

static void svg_swatch(clasp_buf *b, double x, double y, const char *colour, const char *label)
{
    clasp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\">", x, y, colour, x + 17, y + 10.5);
    clasp_buf_xml(b, label, 0);
    clasp_buf_puts(b, "</text>\n");
}

/* ---- chart 1: per-class clean vs robust bars ---------------------------- */

typedef struct bars_layout {
    double ml, mt, pw, ph, gw, bw, name_w, w, h;
    int rotate;
} bars_layout;

static bars_layout bars_plan(const clasp_report *r)
{
    bars_layout L;
    int k = r->num_classes;
    L.name_w = max_name_w(r, SVG_TICK_FS);
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
    L.h = L.mt + L.ph + class_ticks_h(L.name_w, L.rotate) + 30;
    return L;
}

/* One bar with its value above and a tooltip. */
static void svg_bar(clasp_buf *b, const bars_layout *L, double x, double acc, const char *colour,
                    const char *cls, const char *what, int64_t num, int64_t den)
{
    double hgt = L->ph * acc;
    double y = L->mt + L->ph - hgt;
    clasp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                        "<title>", x, y, L->bw, hgt, colour);
    clasp_buf_xml(b, cls, 0);
    clasp_buf_printf(b, ": %s %.1f%% (%lld/%lld)</title></rect>\n", what, 100 * acc,
                     (long long)num, (long long)den);
    clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\" "
                        "fill=\"#555\">%.0f</text>\n", x + L->bw / 2, y - 3, 100 * acc);
}

static void bars_body(clasp_buf *b, const clasp_report *r, const bars_layout *L,
                      const clasp_attack_report *a)
{
    clasp_buf_puts(b, "<g>\n");
    for (int k = 0; k < r->num_classes; k++) {
        double cx = L->ml + (k + 0.5) * L->gw;
        if (a->count[k] <= 0) {
            clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                                "font-size=\"9\" fill=\"#888\">n/a</text>\n",
                             cx, L->mt + L->ph - 4);
            continue;
        }
        svg_bar(b, L, cx - L->bw - 1, clasp_rate(a->clean_correct[k], a->count[k]), SVG_CLEAN,
                r->class_names[k], "clean", a->clean_correct[k], a->count[k]);
        svg_bar(b, L, cx + 1, clasp_rate(a->robust_correct[k], a->count[k]), SVG_ROBUST,
                r->class_names[k], "robust", a->robust_correct[k], a->count[k]);
    }
    clasp_buf_puts(b, "</g>\n");
}

clasp_status clasp_svg_classes(const char *path, const clasp_report *r,
                               const clasp_model_report *m, const clasp_attack_report *a)
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

/* ---- chart 2: flow heat map ------------------------------------------- */

typedef struct flow_layout {
    double ml, mt, cell, grid, name_w, w, h, bar_x;
    int rotate;
} flow_layout;

static flow_layout flow_plan(const clasp_report *r)
{
    flow_layout L;
    int k = r->num_classes;
    L.name_w = max_name_w(r, SVG_TICK_FS);
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
    L.h = L.mt + L.grid + class_ticks_h(L.name_w, L.rotate) + 30;
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
    clasp_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
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
    clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%.1f\" "
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
    clasp_buf_printf(b, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" "
                        "text-anchor=\"middle\">true class</text>\n",
                     L->ml - L->name_w - 22, L->mt + L->grid / 2);
}

/* Colour scale: the share of its true class's row that a cell holds. */
static void flow_scale(clasp_buf *b, const flow_layout *L)
{
    double x = L->bar_x, y = L->mt, h = L->grid;
    clasp_buf_printf(b, "<defs><linearGradient id=\"heat\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
                        "<stop offset=\"0\" stop-color=\"#ffffff\"/>"
                        "<stop offset=\"1\" stop-color=\"#08306b\"/></linearGradient></defs>\n"
                        "<g font-size=\"10\">\n"
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" "
                        "fill=\"url(#heat)\" stroke=\"#888\" stroke-width=\"0.5\"/>\n",
                     x, y, h);
    for (int p = 0; p <= 100; p += 50)
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%d%%</text>\n", x + 18,
                         y + h - h * p / 100.0 + (p == 100 ? 8 : p == 0 ? 0 : 4), p);
    clasp_buf_printf(b, "<text transform=\"translate(%.1f,%.1f) rotate(90)\" "
                        "text-anchor=\"middle\" font-size=\"11\">share of row</text>\n"
                        "</g>\n", x + 60, y + h / 2);
}

clasp_status clasp_svg_flow(const char *path, const clasp_report *r,
                            const clasp_model_report *m, const clasp_attack_report *a)
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
    clasp_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                         "predicted class (adversarial example)</text>\n",
                     L.ml + L.grid / 2, L.h - 10);
    flow_scale(&b, &L);
    svg_end(&b);
    clasp_status s = clasp_buf_write(&b, path);
    clasp_buf_free(&b);
    return s;
}

/* ---- chart 3: per-class validation accuracy over epochs ----------------- */

static int epoch_has_val(const clasp_epoch_report *e, int k)
{
    return e->val_count && e->val_clean && clasp_class_sum(e->val_count, k) > 0;
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
        if (epoch_has_val(&m->epochs[i], k) && m->epochs[i].val_robust) return 1;
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
    L.w = L.ml + L.pw + 24 + 30 + max_name_w(r, SVG_TICK_FS) + 12;
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
        clasp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
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
        clasp_buf_printf(b, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" "
                            "fill=\"%s\"/>\n", x, y - 4, x + 4, y, x, y + 4, x - 4, y, c);
        break;
    }
}

static const int64_t *epoch_metric(const clasp_epoch_report *e, int robust)
{
    return robust ? e->val_robust : e->val_clean;
}

/* Whether epoch e has a point for class k. */
static int epoch_point(const clasp_epoch_report *e, int robust, int k, int nk)
{
    return epoch_has_val(e, nk) && epoch_metric(e, robust) && e->val_count[k] > 0;
}

static double epoch_y(const epochs_layout *L, const clasp_epoch_report *e, int k)
{
    return L->mt + L->ph * (1 - clasp_rate(epoch_metric(e, L->robust)[k], e->val_count[k]));
}

static void epochs_class_line(clasp_buf *b, const clasp_model_report *m, const epochs_layout *L,
                              int k, int nk)
{
    int n = 0;
    for (int i = 0; i < m->n_epochs; i++) n += epoch_point(&m->epochs[i], L->robust, k, nk);
    clasp_buf_puts(b, "<g>\n");
    /* A polyline needs two points; a single epoch shows as markers only. */
    if (n >= 2) {
        clasp_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                            "stroke-dasharray=\"%s\" points=\"", svg_palette[k % 10],
                         svg_dashes[(k / 10) % 4]);
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
        clasp_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                            "stroke-width=\"2\" stroke-dasharray=\"%s\"/>\n",
                         x, y, x + 22, y, svg_palette[k % 10], svg_dashes[(k / 10) % 4]);
        epochs_marker(b, x + 11, y, k);
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 28, y + 4);
        clasp_buf_xml(b, r->class_names[k], 0);
        clasp_buf_puts(b, "</text>\n");
    }
    clasp_buf_puts(b, "</g>\n");
}

clasp_status clasp_svg_epochs(const char *path, const clasp_report *r,
                              const clasp_model_report *m)
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
