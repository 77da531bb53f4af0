/* Text for the report's files: UTF-8 lengths, XML escaping and the slugs
 * that chart file names are made of. */
#include "experiment/svg.h"

#include <stdio.h>

/* The sequence at p of a NUL-terminated string (the NUL ends any sequence
 * cut short). Invalid ones are rejected because XML parsers reject them. */
static size_t utf8_seq(const unsigned char *p)
{
    return clasp_utf8_seq(p, 4);
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
    else clasp_buf_putn(b, (const char *)p, k);
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
