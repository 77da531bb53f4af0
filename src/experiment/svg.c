/* The pieces the report's three SVG charts share (svg_internal.h); the
 * charts themselves are in svg_classes.c, svg_flow.c and svg_epochs.c,
 * written by hand so the project needs no plotting library. Text widths
 * are estimated from code-point counts because no font metrics are
 * available; margins leave room for that. */
#include "experiment/svg_internal.h"

static double text_w(const char *s, double fs)
{
    return (double)clasp_utf8_len(s) * fs * SVG_CW;
}

double svg_max_name_w(const clasp_report *r, double fs)
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
void svg_centred(clasp_buf *b, double w, double y, double fs, int bold, const char *text)
{
    size_t fit = (size_t)((w - 20) / (fs * (bold ? SVG_CW_BOLD : SVG_CW)));
    clasp_buf_printf(b,
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                     "font-size=\"%.0f\" %s>",
                     w / 2, y, fs, bold ? "font-weight=\"bold\"" : "fill=\"#555\"");
    clasp_buf_xml(b, text, fit < 8 ? 8 : fit);
    clasp_buf_puts(b, "</text>\n");
}

/* The document, a white background, a bold title and a grey subtitle
 * (the attack, usually, whose labels can be long). */
void svg_begin(clasp_buf *b, double w, double h, const char *title, const char *subtitle)
{
    clasp_buf_printf(b,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                     "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                     "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" "
                     "fill=\"#222\">\n<title>",
                     w, h, w, h);
    clasp_buf_xml(b, title, 0);
    clasp_buf_puts(b, " (");
    clasp_buf_xml(b, subtitle, 0);
    clasp_buf_printf(b,
                     ")</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                     "fill=\"#ffffff\"/>\n",
                     w, h);
    svg_centred(b, w, 22, 14, 1, title);
    svg_centred(b, w, 40, 11, 0, subtitle);
}

void svg_end(clasp_buf *b)
{
    clasp_buf_puts(b, "</svg>\n");
}

/* Horizontal grid lines and labels every 20 %, the y axis and its title. */
void svg_percent_axis(clasp_buf *b, double x0, double y0, double pw, double ph)
{
    clasp_buf_puts(b, "<g font-size=\"11\">\n");
    for (int p = 0; p <= 100; p += 20) {
        double y = y0 + ph - ph * p / 100.0;
        clasp_buf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                         "stroke=\"%s\" stroke-width=\"1\"/>\n",
                         x0, y, x0 + pw, y, p == 0 ? "#444" : "#e3e3e3");
        clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", x0 - 6,
                         y + 4, p);
    }
    clasp_buf_printf(b,
                     "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#444\" stroke-width=\"1\"/>\n",
                     x0, y0, x0, y0 + ph);
    clasp_buf_printf(b,
                     "<text transform=\"translate(16,%.1f) rotate(-90)\" "
                     "text-anchor=\"middle\" font-size=\"12\">accuracy (%%)</text>\n",
                     y0 + ph / 2);
    clasp_buf_puts(b, "</g>\n");
}

/* Class names under columns of width step starting at x0; rotated by 45
 * degrees when they would not fit side by side. */
void svg_class_ticks(clasp_buf *b, const clasp_report *r, double x0, double step, double y,
                     int rotate)
{
    clasp_buf_printf(b, "<g font-size=\"%.0f\">\n", SVG_TICK_FS);
    for (int k = 0; k < r->num_classes; k++) {
        double x = x0 + (k + 0.5) * step;
        if (rotate)
            clasp_buf_printf(b,
                             "<text transform=\"translate(%.1f,%.1f) rotate(-45)\" "
                             "text-anchor=\"end\">",
                             x + 4, y + 4);
        else clasp_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, y + 12);
        clasp_buf_xml(b, r->class_names[k], 0);
        clasp_buf_puts(b, "</text>\n");
    }
    clasp_buf_puts(b, "</g>\n");
}

/* Height the class tick labels take below the axis. */
double svg_class_ticks_h(double name_w, int rotate)
{
    return rotate ? name_w * SVG_SIN45 + 8 : 18;
}

void svg_swatch(clasp_buf *b, double x, double y, const char *colour, const char *label)
{
    clasp_buf_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                     "<text x=\"%.1f\" y=\"%.1f\">",
                     x, y, colour, x + 17, y + 10.5);
    clasp_buf_xml(b, label, 0);
    clasp_buf_puts(b, "</text>\n");
}
