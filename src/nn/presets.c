/* Preset graphs: ResNet-18, PreAct ResNet-18 and WideResNet, with the
 * module paths of the PyTorch definitions that published robust CIFAR
 * models use, so that their state dicts load unchanged:
 *
 *   resnet18         conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2},
 *                    layer{2..4}.0.shortcut.{0,1} (1x1 conv, BatchNorm), linear
 *   preact-resnet18  conv1, layer*.*.{bn1,conv1,bn2,conv2},
 *                    layer{2..4}.0.shortcut.0 (1x1 conv), bn, linear
 *   wrn-D-W          conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2},
 *                    block*.layer.0.convShortcut where the channels change, bn1, fc
 *
 * Convolutions have no bias; the classifier has one. Blocks compute
 *   resnet:   relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 *   preact:   a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (shortcut(a) or x)
 *   wrn:      a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (convShortcut(a) or x)
 * and the heads: resnet relu(bn1(conv1(x))) first; preact relu(bn(.)) and
 * wrn relu(bn1(.)) last; then average pooling over the whole final map (4x4
 * for 32x32 inputs on resnets, 8x8 on WRN) and the linear layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

enum { PREV = -3 };

typedef struct builder {
    clasp_layer_spec *ls;
    int n, cap;
    int bad;
} builder;

/* Appends a layer reading `in0` (PREV: the layer before; -1: the model
 * input) and, for add, `in1`; returns its index. */
static int put(builder *b, clasp_layer_kind kind, const char *name, int in0, int in1, int out,
               int k, int s, int p)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        clasp_layer_spec *g = realloc(b->ls, (size_t)cap * sizeof *g);
        if (!g) {
            b->bad = 1;
            return b->n - 1;
        }
        b->ls = g, b->cap = cap;
    }
    clasp_layer_spec *l = &b->ls[b->n];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->out = out, l->kernel = k, l->stride = s, l->pad = p;
    l->no_bias = kind == CLASP_LAYER_CONV2D;
    if (name) snprintf(l->name, sizeof l->name, "%s", name);
    if (in0 != PREV || kind == CLASP_LAYER_ADD) {
        l->n_inputs = kind == CLASP_LAYER_ADD ? 2 : 1;
        l->inputs[0] = in0 == PREV ? b->n - 1 : in0;
        l->inputs[1] = in1;
    }
    return b->n++;
}

static int conv(builder *b, const char *name, int in, int out, int k, int s)
{
    return put(b, CLASP_LAYER_CONV2D, name, in, 0, out, k, s, k / 2);
}

/* prefix + leaf; the preset names are short, so it always fits. */
static void join(char *name, const char *prefix, const char *leaf)
{
    size_t a = strlen(prefix), c = strlen(leaf);
    if (a + c >= CLASP_LAYER_NAME_MAX) a = c = 0;
    memcpy(name, prefix, a);
    memcpy(name + a, leaf, c);
    name[a + c] = '\0';
}

static int named(builder *b, clasp_layer_kind kind, const char *prefix, const char *leaf, int in)
{
    char name[CLASP_LAYER_NAME_MAX];
    join(name, prefix, leaf);
    return put(b, kind, name, in, 0, 0, 0, 0, 0);
}

static int named_conv(builder *b, const char *prefix, const char *leaf, int in, int out, int k,
                      int s)
{
    char name[CLASP_LAYER_NAME_MAX];
    join(name, prefix, leaf);
    return conv(b, name, in, out, k, s);
}

static int relu(builder *b, int in)
{
    return put(b, CLASP_LAYER_RELU, NULL, in, 0, 0, 0, 0, 0);
}

/* ResNet's basic block; returns the index of its output. */
static int resnet_block(builder *b, const char *prefix, int x, int cin, int cout, int s)
{
    named_conv(b, prefix, "conv1", x, cout, 3, s);
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn1", PREV);
    relu(b, PREV);
    named_conv(b, prefix, "conv2", PREV, cout, 3, 1);
    int main = named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn2", PREV);
    int sc = x;
    if (s != 1 || cin != cout) {
        named_conv(b, prefix, "shortcut.0", x, cout, 1, s);
        sc = named(b, CLASP_LAYER_BATCHNORM2D, prefix, "shortcut.1", PREV);
    }
    put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
    return relu(b, PREV);
}

/* PreAct ResNet's block and WideResNet's basic block: the same graph, with
 * the shortcut conv called shortcut.0 or convShortcut. */
static int preact_block(builder *b, const char *prefix, int x, int cin, int cout, int s,
                        const char *sc_name)
{
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn1", x);
    int a = relu(b, PREV);
    named_conv(b, prefix, "conv1", a, cout, 3, s);
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn2", PREV);
    relu(b, PREV);
    int main = named_conv(b, prefix, "conv2", PREV, cout, 3, 1);
    int sc = x;
    if (s != 1 || cin != cout) sc = named_conv(b, prefix, sc_name, a, cout, 1, s);
    return put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
}

/* Parses "resnet18", "preact-resnet18", "wrn-D-W", each with an optional
 * "-wN"; 0 when the name is none of them. */
static int parse_preset(const char *name, int *kind, int *depth, int *width, int *base)
{
    const char *p = name;
    *depth = 18, *width = 1, *base = 0;
    if (!strncmp(p, "resnet18", 8)) *kind = 0, p += 8;
    else if (!strncmp(p, "preact-resnet18", 15)) *kind = 1, p += 15;
    else if (!strncmp(p, "wrn-", 4)) {
        p += 4;
        if (!clasp_nn_read_int(&p, 10, depth) || *p++ != '-' || !clasp_nn_read_int(&p, 1, width))
            return 0;
        *kind = 2;
    } else return 0;
    /* The whole name counts: no silent cut after some length. */
    if (!strncmp(p, "-w", 2) && (p += 2, !clasp_nn_read_int(&p, 1, base))) return 0;
    if (*p) return 0;
    return *kind != 2 || (*depth - 4) % 6 == 0;
}

int clasp_model_is_preset(const char *name)
{
    int k, d, w, b;
    return name && parse_preset(name, &k, &d, &w, &b);
}

static void head(builder *b, int x, int classes, const char *fc, int map)
{
    put(b, CLASP_LAYER_AVGPOOL2D, NULL, x, 0, 0, map, map, 0);
    put(b, CLASP_LAYER_FLATTEN, NULL, PREV, 0, 0, 0, 0, 0);
    int l = put(b, CLASP_LAYER_LINEAR, fc, PREV, 0, classes, 0, 0, 0);
    if (l >= 0) b->ls[l].no_bias = 0;
}

clasp_status clasp_model_new_preset(clasp_ctx *ctx, const char *name, int in_c, int in_h, int in_w,
                                    int num_classes, const float *mean, const float *std,
                                    clasp_model **out)
{
    *out = NULL;
    int kind, depth, width, base;
    if (!name || !parse_preset(name, &kind, &depth, &width, &base))
        return clasp_error(CLASP_ERR_CONFIG,
                           "architecture '%s' is not a preset; expected resnet18, preact-resnet18 "
                           "or wrn-D-W "
                           "(D = 6n+4), optionally followed by -w<base width>",
                           name ? name : "");
    if (in_c > CLASP_NORMALIZE_MAX_C && mean)
        return clasp_error(CLASP_ERR_CONFIG, "normalize takes at most %d channels",
                           CLASP_NORMALIZE_MAX_C);
    builder b = {0};
    int x = -1;
    if (mean) {
        x = put(&b, CLASP_LAYER_NORMALIZE, "normalize", -1, 0, 0, 0, 0, 0);
        for (int c = 0; c < in_c && !b.bad; c++) b.ls[x].mean[c] = mean[c], b.ls[x].std[c] = std[c];
    }
    int map = in_h; /* spatial size of the final map, for the pooling */
    char prefix[CLASP_LAYER_NAME_MAX];
    if (kind < 2) {
        int w0 = base ? base : 64, cin = w0;
        x = conv(&b, "conv1", x, w0, 3, 1);
        if (kind == 0) {
            put(&b, CLASP_LAYER_BATCHNORM2D, "bn1", PREV, 0, 0, 0, 0, 0);
            x = relu(&b, PREV);
        }
        for (int stage = 0; stage < 4; stage++) {
            int cout = w0 << stage;
            for (int blk = 0; blk < 2; blk++) {
                int s = stage > 0 && blk == 0 ? 2 : 1;
                snprintf(prefix, sizeof prefix, "layer%d.%d.", stage + 1, blk);
                x = kind == 0 ? resnet_block(&b, prefix, x, cin, cout, s)
                              : preact_block(&b, prefix, x, cin, cout, s, "shortcut.0");
                cin = cout;
                if (s == 2) map = (map - 1) / 2 + 1;
            }
        }
        if (kind == 1) {
            put(&b, CLASP_LAYER_BATCHNORM2D, "bn", x, 0, 0, 0, 0, 0);
            x = relu(&b, PREV);
        }
        head(&b, x, num_classes, "linear", map);
    } else {
        int w0 = base ? base : 16, n = (depth - 4) / 6;
        x = conv(&b, "conv1", x, w0, 3, 1);
        int cin = w0;
        for (int g = 0; g < 3; g++) {
            int cout = (16 << g) * width;
            for (int i = 0; i < n; i++) {
                int s = g > 0 && i == 0 ? 2 : 1;
                snprintf(prefix, sizeof prefix, "block%d.layer.%d.", g + 1, i);
                x = preact_block(&b, prefix, x, cin, cout, s, "convShortcut");
                cin = cout;
                if (s == 2) map = (map - 1) / 2 + 1;
            }
        }
        put(&b, CLASP_LAYER_BATCHNORM2D, "bn1", x, 0, 0, 0, 0, 0);
        x = relu(&b, PREV);
        head(&b, x, num_classes, "fc", map);
        for (int i = 0; i < b.n && !b.bad; i++)
            if (b.ls[i].kind == CLASP_LAYER_CONV2D || b.ls[i].kind == CLASP_LAYER_LINEAR)
                b.ls[i].init = CLASP_INIT_KAIMING_FAN_OUT;
    }
    if (b.bad) {
        free(b.ls);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    clasp_status st = clasp_model_new(ctx, b.ls, b.n, in_c, in_h, in_w, out);
    free(b.ls);
    if (st == CLASP_OK) snprintf((*out)->preset, sizeof(*out)->preset, "%s", name);
    return st;
}

clasp_status clasp_model_new_arch(clasp_ctx *ctx, const char *arch, int in_c, int in_h, int in_w,
                                  int num_classes, const float *mean, const float *std,
                                  clasp_model **out)
{
    *out = NULL;
    if (mean && in_c > CLASP_NORMALIZE_MAX_C)
        return clasp_error(CLASP_ERR_CONFIG, "normalize takes at most %d channels",
                           CLASP_NORMALIZE_MAX_C);
    if (clasp_model_is_preset(arch))
        return clasp_model_new_preset(ctx, arch, in_c, in_h, in_w, num_classes, mean, std, out);
    clasp_layer_spec *ls = NULL;
    int n = 0;
    clasp_status st;
    if (!arch || !strcmp(arch, "default")) {
        char text[160];
        snprintf(text, sizeof text,
                 "conv5x5-32p2,relu,maxpool2,conv5x5-64p2,relu,maxpool2,flatten,fc1024,relu,fc%d",
                 num_classes);
        st = clasp_arch_parse(text, &ls, &n);
    } else {
        st = clasp_arch_parse(arch, &ls, &n);
    }
    if (st == CLASP_OK && mean) {
        /* Normalisation first; the list's own inputs shift by one. */
        clasp_layer_spec *g = realloc(ls, (size_t)(n + 1) * sizeof *g);
        if (!g) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        else {
            ls = g;
            memmove(ls + 1, ls, (size_t)n * sizeof *ls);
            memset(ls, 0, sizeof *ls);
            ls[0].kind = CLASP_LAYER_NORMALIZE;
            for (int c = 0; c < in_c; c++) ls[0].mean[c] = mean[c], ls[0].std[c] = std[c];
            for (int i = 1; i <= n; i++)
                for (int j = 0; j < ls[i].n_inputs; j++) ls[i].inputs[j] += 1;
            n++;
        }
    }
    if (st == CLASP_OK) st = clasp_model_new(ctx, ls, n, in_c, in_h, in_w, out);
    free(ls);
    if (st == CLASP_OK && clasp_model_num_classes(*out) != num_classes) {
        int k = clasp_model_num_classes(*out);
        clasp_model_free(*out);
        *out = NULL;
        return clasp_error(CLASP_ERR_CONFIG,
                           "the architecture ends with %d outputs but the data set has %d classes",
                           k, num_classes);
    }
    return st;
}
