/* Architecture text form: "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10",
 * with optional labels and inputs for graphs: "conv3x3-8p1:a,relu,conv3x3-8p1:b,add(a+b)".
 * See clasp_arch_parse in clasp/model.h. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "nn/nn_internal.h"

#define ITEM_MAX 96

static clasp_status bad_item(const char *item, size_t pos)
{
    return clasp_error(CLASP_ERR_CONFIG,
                       "architecture: '%s' at character %zu is not a layer; expected "
                       "conv<K>x<K>-<out>[s<stride>][p<pad>][nb], maxpool<K>[s<stride>][p<pad>], "
                       "avgpool<K>[s<stride>], fc<out>[nb], pad<l>,<r>,<t>,<b>, relu, swish, "
                       "flatten, bn or add, each "
                       "optionally with :label and (input[+input])",
                       item, pos + 1);
}

int clasp_nn_read_int(const char **p, int min, int *v)
{
    const char *s = *p;
    long long x = 0;
    if (*s < '0' || *s > '9') return 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((x = x * 10 + (*s - '0')) > INT_MAX) return 0;
    if (x < min) return 0;
    *v = (int)x;
    *p = s;
    return 1;
}

/* "<K>[s<stride>]" after a pool's name. */
static int parse_pool(const char *rest, clasp_layer_spec *l)
{
    if (!clasp_nn_read_int(&rest, 1, &l->kernel)) return 0;
    l->stride = l->kernel;
    if (*rest == 's' && (rest++, !clasp_nn_read_int(&rest, 1, &l->stride))) return 0;
    if (*rest == 'p' && (rest++, !clasp_nn_read_int(&rest, 0, &l->pad))) return 0;
    return !*rest;
}

/* The layer part of an item (no label, no inputs). */
static int parse_kind(const char *item, clasp_layer_spec *l)
{
    int b = 0;
    if (!strcmp(item, "relu")) return l->kind = CLASP_LAYER_RELU, 1;
    if (!strcmp(item, "flatten")) return l->kind = CLASP_LAYER_FLATTEN, 1;
    if (!strcmp(item, "bn")) return l->kind = CLASP_LAYER_BATCHNORM2D, 1;
    if (!strcmp(item, "add")) return l->kind = CLASP_LAYER_ADD, 1;
    if (!strcmp(item, "swish")) return l->kind = CLASP_LAYER_SWISH, 1;
    /* What the formatter writes for a model's input normalisation; its
     * mean and std are not in the text (a checkpoint's clasp.normalize
     * metadata fills them, and a normalize left without them is refused
     * when the model is built). */
    if (!strcmp(item, "normalize")) return l->kind = CLASP_LAYER_NORMALIZE, 1;
    if (!strncmp(item, "pad", 3)) {
        const char *p = item + 3;
        for (int k = 0; k < 4; k++)
            if ((k && *p++ != ',') || !clasp_nn_read_int(&p, 0, &l->pads[k])) return 0;
        return l->kind = CLASP_LAYER_PAD, !*p;
    }
    if (!strncmp(item, "conv", 4)) {
        const char *p = item + 4;
        if (!clasp_nn_read_int(&p, 1, &l->kernel) || *p++ != 'x' || !clasp_nn_read_int(&p, 1, &b) ||
            b != l->kernel || *p++ != '-' || !clasp_nn_read_int(&p, 1, &l->out))
            return 0;
        l->kind = CLASP_LAYER_CONV2D;
        l->stride = 1;
        while (*p) {
            if (!strncmp(p, "nb", 2)) l->no_bias = 1, p += 2;
            else if (*p == 's') {
                if (p++, !clasp_nn_read_int(&p, 1, &l->stride)) return 0;
            } else if (*p == 'p') {
                if (p++, !clasp_nn_read_int(&p, 0, &l->pad)) return 0;
            } else return 0;
        }
        return 1;
    }
    if (!strncmp(item, "maxpool", 7))
        return l->kind = CLASP_LAYER_MAXPOOL2D, parse_pool(item + 7, l);
    if (!strncmp(item, "avgpool", 7))
        return l->kind = CLASP_LAYER_AVGPOOL2D, parse_pool(item + 7, l);
    if (!strncmp(item, "fc", 2)) {
        const char *p = item + 2;
        if (!clasp_nn_read_int(&p, 1, &l->out)) return 0;
        l->kind = CLASP_LAYER_LINEAR;
        if (!*p) return 1;
        if (!strcmp(p, "nb")) return l->no_bias = 1, 1;
    }
    return 0;
}

typedef struct label {
    char name[32];
} label;

static int find_label(const label *labels, int n, const char *name)
{
    if (!strcmp(name, "in")) return -1;
    /* Unlabelled items have the empty name: "add(a+)" must not find one. */
    if (!*name) return -2;
    for (int i = n - 1; i >= 0; i--)
        if (!strcmp(labels[i].name, name)) return i;
    return -2;
}

static clasp_status parse_item(const char *s, size_t len, size_t pos, int index, label *labels,
                               clasp_layer_spec *l)
{
    char item[ITEM_MAX];
    if (len == 0 || len >= sizeof item)
        return clasp_error(CLASP_ERR_CONFIG,
                           "architecture: empty or too long item at character %zu", pos + 1);
    memcpy(item, s, len);
    item[len] = '\0';
    memset(l, 0, sizeof *l);
    /* item[:label][(a[+b])] */
    char *inputs = NULL, *lab = NULL;
    char *paren = strchr(item, '(');
    if (paren) {
        if (item[len - 1] != ')') return bad_item(item, pos);
        item[len - 1] = '\0';
        *paren = '\0';
        inputs = paren + 1;
    }
    char *colon = strchr(item, ':');
    if (colon) {
        *colon = '\0';
        lab = colon + 1;
        if (!*lab || strlen(lab) >= sizeof labels[index].name || !strcmp(lab, "in"))
            return clasp_error(CLASP_ERR_CONFIG, "architecture: bad label '%s' at character %zu",
                               lab, pos + 1);
        snprintf(labels[index].name, sizeof labels[index].name, "%s", lab);
    }
    if (!parse_kind(item, l)) {
        if (paren) *paren = '(';
        if (colon) *colon = ':';
        return bad_item(item, pos);
    }
    if (inputs) {
        char *tok = inputs;
        for (;;) {
            char *plus = strchr(tok, '+');
            if (plus) *plus = '\0';
            if (l->n_inputs == CLASP_LAYER_MAX_INPUTS)
                return clasp_error(CLASP_ERR_CONFIG,
                                   "architecture: more than %d inputs at character %zu",
                                   CLASP_LAYER_MAX_INPUTS, pos + 1);
            int src = find_label(labels, index, tok);
            if (src < -1)
                return clasp_error(CLASP_ERR_CONFIG,
                                   "architecture: input '%s' at character %zu is not an earlier "
                                   "label or 'in'",
                                   tok, pos + 1);
            l->inputs[l->n_inputs++] = src;
            if (!plus) break;
            tok = plus + 1;
        }
        /* Naming just the item before is the same as naming none; one
         * spelling for both keeps the specs equal to those parsed from
         * clasp_arch_format's text, which leaves such a list out. */
        if (l->n_inputs == 1 && l->inputs[0] == index - 1) l->n_inputs = 0, l->inputs[0] = 0;
    }
    return CLASP_OK;
}

/* Whether the item starting at s (spaces before it allowed) is a pad, whose
 * four numbers are separated by the same ',' as the items. */
static int is_pad_item(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return !strncmp(s, "pad", 3) && s[3] >= '0' && s[3] <= '9';
}

clasp_status clasp_arch_parse(const char *text, clasp_layer_spec **layers, int *n)
{
    *layers = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    clasp_layer_spec *ls = calloc(cap, sizeof *ls);
    label *labels = calloc(cap, sizeof *labels);
    if (!ls || !labels) {
        free(ls), free(labels);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    int count = 0;
    const char *start = text;
    int pad_commas = 0; /* commas inside the current "pad<l>,<r>,<t>,<b>" item */
    for (const char *p = text;; p++) {
        if (*p == ',' && is_pad_item(start) && pad_commas < 3) {
            pad_commas++;
            continue;
        }
        if (*p == ',' || *p == '\0') {
            pad_commas = 0;
            const char *b = start, *e = p;
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
            clasp_status st =
                parse_item(b, (size_t)(e - b), (size_t)(b - text), count, labels, &ls[count]);
            if (st != CLASP_OK) {
                free(ls), free(labels);
                return st;
            }
            count++;
            if (!*p) break;
            start = p + 1;
        }
    }
    free(labels);
    *layers = ls;
    *n = count;
    return CLASP_OK;
}

/* Appends to buf; returns 0 once it no longer fits. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len >= size) return 0;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= size - *len) {
        *len = size;
        return 0;
    }
    *len += (size_t)w;
    return 1;
}

/* Whether layer i's input list differs from "the layer before it". */
static int explicit_inputs(const clasp_layer_spec *l, int i)
{
    return l->n_inputs && !(l->n_inputs == 1 && l->inputs[0] == i - 1);
}

void clasp_arch_format(const clasp_layer_spec *ls, int n, char *buf, size_t size)
{
    size_t len = 0;
    if (!size) return;
    buf[0] = '\0';
    /* A layer read out of order gets a label "l<index>". */
    char *needs_label = calloc((size_t)n + 1, 1);
    if (!needs_label) return;
    for (int i = 0; i < n; i++)
        if (explicit_inputs(&ls[i], i))
            for (int j = 0; j < ls[i].n_inputs; j++)
                if (ls[i].inputs[j] >= 0) needs_label[ls[i].inputs[j]] = 1;
    for (int i = 0; i < n; i++) {
        const clasp_layer_spec *l = &ls[i];
        if (i && !put(buf, size, &len, ",")) break;
        switch (l->kind) {
        case CLASP_LAYER_CONV2D:
            put(buf, size, &len, "conv%dx%d-%d", l->kernel, l->kernel, l->out);
            if (l->stride > 1) put(buf, size, &len, "s%d", l->stride);
            if (l->pad > 0) put(buf, size, &len, "p%d", l->pad);
            if (l->no_bias) put(buf, size, &len, "nb");
            break;
        case CLASP_LAYER_MAXPOOL2D:
        case CLASP_LAYER_AVGPOOL2D:
            put(buf, size, &len, "%s%d", l->kind == CLASP_LAYER_MAXPOOL2D ? "maxpool" : "avgpool",
                l->kernel);
            if (l->stride && l->stride != l->kernel) put(buf, size, &len, "s%d", l->stride);
            if (l->pad > 0) put(buf, size, &len, "p%d", l->pad);
            break;
        case CLASP_LAYER_LINEAR:
            put(buf, size, &len, "fc%d%s", l->out, l->no_bias ? "nb" : "");
            break;
        case CLASP_LAYER_RELU: put(buf, size, &len, "relu"); break;
        case CLASP_LAYER_FLATTEN: put(buf, size, &len, "flatten"); break;
        case CLASP_LAYER_BATCHNORM2D: put(buf, size, &len, "bn"); break;
        case CLASP_LAYER_ADD: put(buf, size, &len, "add"); break;
        case CLASP_LAYER_NORMALIZE: put(buf, size, &len, "normalize"); break;
        case CLASP_LAYER_SWISH: put(buf, size, &len, "swish"); break;
        case CLASP_LAYER_PAD:
            put(buf, size, &len, "pad%d,%d,%d,%d", l->pads[0], l->pads[1], l->pads[2], l->pads[3]);
            break;
        }
        if (needs_label[i]) put(buf, size, &len, ":l%d", i);
        if (explicit_inputs(l, i)) {
            put(buf, size, &len, "(");
            for (int j = 0; j < l->n_inputs; j++) {
                if (l->inputs[j] < 0) put(buf, size, &len, "%sin", j ? "+" : "");
                else put(buf, size, &len, "%sl%d", j ? "+" : "", l->inputs[j]);
            }
            put(buf, size, &len, ")");
        }
    }
    free(needs_label);
    if (len >= size) buf[size - 1] = '\0';
}
