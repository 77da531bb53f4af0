/* Architecture text form: "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10",
 * with optional labels and inputs for graphs: "conv3x3-8p1:a,relu,conv3x3-8p1:b,add(a+b)".
 * See clasp_arch_parse in clasp/model.h. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "nn/layers/layer.h"

#define ITEM_MAX 96

/* "...: expected conv<K>x<K>-<out>[s<stride>][p<pad>][nb], fc<out>[nb], relu,
 * ... or pad<l>,<r>,<t>,<b>, each ...": every listed kind's syntax, in the
 * table's order. */
static clasp_status bad_item(const char *item, size_t pos)
{
    char expected[1024];
    size_t len = 0;
    int listed = 0;
    for (int k = 0; k < LAYER_KIND_COUNT; k++) {
        const layer_ops *o = layer_ops_of((clasp_layer_kind)k);
        if (o->syntax && !*o->syntax) continue;
        listed++;
    }
    expected[0] = '\0';
    for (int k = 0, i = 0; k < LAYER_KIND_COUNT && len < sizeof expected; k++) {
        const layer_ops *o = layer_ops_of((clasp_layer_kind)k);
        if (o->syntax && !*o->syntax) continue;
        const char *sep = !i ? "" : i == listed - 1 ? " or " : ", ";
        int w = snprintf(expected + len, sizeof expected - len, "%s%s", sep,
                         o->syntax ? o->syntax : o->keyword);
        if (w > 0) len += (size_t)w;
        i++;
    }
    return clasp_error(CLASP_ERR_CONFIG,
                       "architecture: '%s' at character %zu is not a layer; expected %s, each "
                       "optionally with :label and (input[+input])",
                       item, pos + 1, expected);
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

/* The layer part of an item (no label, no inputs): the kinds whose keyword
 * it starts with, in turn, until one reads it. */
static int parse_kind(const char *item, clasp_layer_spec *l)
{
    for (int k = 0; k < LAYER_KIND_COUNT; k++) {
        const layer_ops *o = layer_ops_of((clasp_layer_kind)k);
        size_t n = strlen(o->keyword);
        if (strncmp(item, o->keyword, n)) continue;
        memset(l, 0, sizeof *l);
        l->kind = (clasp_layer_kind)k;
        if (o->parse ? o->parse(item + n, l) : !item[n]) return 1;
    }
    memset(l, 0, sizeof *l);
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

/* The commas inside the item starting at s (spaces before it allowed),
 * which do not end it: its kind's item_commas when it is a keyword with
 * such commas followed by a digit ("pad0,1,0,1"), else 0. */
static int item_commas_at(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    for (int k = 0; k < LAYER_KIND_COUNT; k++) {
        const layer_ops *o = layer_ops_of((clasp_layer_kind)k);
        size_t n = strlen(o->keyword);
        if (o->item_commas && !strncmp(s, o->keyword, n) && s[n] >= '0' && s[n] <= '9')
            return o->item_commas;
    }
    return 0;
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
    /* Commas the current item may still hold ("pad<l>,<r>,<t>,<b>": 3). */
    int inner = item_commas_at(text);
    for (const char *p = text;; p++) {
        if (*p == ',' && inner > 0) {
            inner--;
            continue;
        }
        if (*p == ',' || *p == '\0') {
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
            inner = item_commas_at(start);
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
        const layer_ops *o = layer_ops_of(l->kind);
        char item[ITEM_MAX];
        if (o && o->format) o->format(l, item, sizeof item);
        else snprintf(item, sizeof item, "%s", o ? o->keyword : "");
        put(buf, size, &len, "%s", item);
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
