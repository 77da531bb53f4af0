/* Architecture text form: "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"

static clasp_status parse_item(const char *s, size_t len, size_t pos, clasp_layer_spec *l)
{
    char item[64];
    if (len == 0 || len >= sizeof item)
        return clasp_error(CLASP_ERR_CONFIG, "architecture: empty or too long item at character %zu",
                           pos + 1);
    memcpy(item, s, len);
    item[len] = '\0';
    memset(l, 0, sizeof *l);
    int a = 0, b = 0, c = 0, used = 0;
    if (!strcmp(item, "relu")) {
        l->kind = CLASP_LAYER_RELU;
        return CLASP_OK;
    }
    if (!strcmp(item, "flatten")) {
        l->kind = CLASP_LAYER_FLATTEN;
        return CLASP_OK;
    }
    if (sscanf(item, "conv%dx%d-%d%n", &a, &b, &c, &used) == 3 && a == b && a > 0 && c > 0) {
        l->kind = CLASP_LAYER_CONV2D;
        l->kernel = a;
        l->out = c;
        l->stride = 1;
        const char *rest = item + used;
        while (*rest) {
            int v = 0, u = 0;
            if (sscanf(rest, "s%d%n", &v, &u) == 1 && v > 0)
                l->stride = v;
            else if (sscanf(rest, "p%d%n", &v, &u) == 1 && v >= 0)
                l->pad = v;
            else
                goto bad;
            rest += u;
        }
        return CLASP_OK;
    }
    if (sscanf(item, "maxpool%d%n", &a, &used) == 1 && a > 0) {
        l->kind = CLASP_LAYER_MAXPOOL2D;
        l->kernel = a;
        l->stride = a;
        if (item[used] && !(sscanf(item + used, "s%d%n", &b, &c) == 1 && b > 0 && !item[used + c]))
            goto bad;
        if (item[used]) l->stride = b;
        return CLASP_OK;
    }
    if (sscanf(item, "fc%d%n", &a, &used) == 1 && a > 0 && !item[used]) {
        l->kind = CLASP_LAYER_LINEAR;
        l->out = a;
        return CLASP_OK;
    }
bad:
    return clasp_error(CLASP_ERR_CONFIG,
                       "architecture: '%s' at character %zu is not a layer; expected "
                       "conv<K>x<K>-<out>[s<stride>][p<pad>], maxpool<K>[s<stride>], "
                       "fc<out>, relu or flatten",
                       item, pos + 1);
}

clasp_status clasp_arch_parse(const char *text, clasp_layer_spec **layers, int *n)
{
    *layers = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    clasp_layer_spec *ls = calloc(cap, sizeof *ls);
    if (!ls) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    int count = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == ',' || *p == '\0') {
            const char *b = start, *e = p;
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
            clasp_status st = parse_item(b, (size_t)(e - b), (size_t)(b - text), &ls[count]);
            if (st != CLASP_OK) {
                free(ls);
                return st;
            }
            count++;
            if (!*p) break;
            start = p + 1;
        }
    }
    *layers = ls;
    *n = count;
    return CLASP_OK;
}

void clasp_arch_format(const clasp_layer_spec *ls, int n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++) {
        const clasp_layer_spec *l = &ls[i];
        const char *sep = i ? "," : "";
        int w = 0;
        switch (l->kind) {
        case CLASP_LAYER_CONV2D:
            w = snprintf(buf + len, size - len, "%sconv%dx%d-%d", sep, l->kernel, l->kernel, l->out);
            if (w > 0 && (size_t)w < size - len && l->stride > 1) {
                len += (size_t)w;
                w = snprintf(buf + len, size - len, "s%d", l->stride);
            }
            if (w > 0 && (size_t)w < size - len && l->pad > 0) {
                len += (size_t)w;
                w = snprintf(buf + len, size - len, "p%d", l->pad);
            }
            break;
        case CLASP_LAYER_MAXPOOL2D:
            if (l->stride && l->stride != l->kernel)
                w = snprintf(buf + len, size - len, "%smaxpool%ds%d", sep, l->kernel, l->stride);
            else
                w = snprintf(buf + len, size - len, "%smaxpool%d", sep, l->kernel);
            break;
        case CLASP_LAYER_LINEAR: w = snprintf(buf + len, size - len, "%sfc%d", sep, l->out); break;
        case CLASP_LAYER_RELU: w = snprintf(buf + len, size - len, "%srelu", sep); break;
        case CLASP_LAYER_FLATTEN: w = snprintf(buf + len, size - len, "%sflatten", sep); break;
        }
        if (w < 0) return;
        len += (size_t)w;
    }
}
