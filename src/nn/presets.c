/* Preset graphs: ResNet-18, PreAct ResNet-18, WideResNet and DeepMind's
 * WideResNet and PreAct ResNet-18, with the
 * module paths of the PyTorch definitions that published robust CIFAR
 * models use, so that their state dicts load unchanged:
 *
 *   resnet18         conv1, bn1, layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2},
 *                    layer{2..4}.0.shortcut.{0,1} (1x1 conv, BatchNorm), linear
 *   resnet34|50|101|152  the same family (RobustBench's resnet.py): 3x3
 *                    stem; 34 basic blocks [3,4,6,3]; 50, 101, 152 bottleneck
 *                    blocks layer*.*.{conv1,bn1,conv2,bn2,conv3,bn3} ([3,4,6,3],
 *                    [3,4,23,3], [3,8,36,3]), shortcut.{0,1}
 *   tv-resnet18|34|50|101|152, tv-wide-resnet50-2|101-2  torchvision's
 *                    ImageNet ResNets: conv1 7x7 stride 2, bn1, max-pool 3x3
 *                    stride 2 padding 1, the blocks above with downsample.{0,1}
 *                    for the shortcut (stride on the bottleneck's 3x3, as
 *                    torchvision >= 0.2), fc; wide: bottleneck inner width
 *                    doubled (width_per_group 128)
 *   preact-resnet18  conv1, layer*.*.{bn1,conv1,bn2,conv2},
 *                    layer{2..4}.0.shortcut.0 (1x1 conv), bn, linear
 *   wrn-D-W          conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2},
 *                    block*.layer.0.convShortcut where the channels change, bn1, fc
 *   preact-resnet18-nobn  preact-resnet18 without bn, its shortcut reading x
 *   dm-wrn-D-W       init_conv, layer.{0,1,2}.block.{i}.{batchnorm_0,conv_0,
 *                    batchnorm_1,conv_1,shortcut}, batchnorm, logits
 *   dm-preact-resnet18  conv_2d, layer_{0..3}.{0,1}.{batchnorm_0,conv_2d_1,
 *                    batchnorm_1,conv_2d_2,shortcut}, batchnorm, logits
 * (the DeepMind blocks: see dm_block and dm_preact_block). "-swish" puts
 * swish wherever the model applies its activation; "-padP" zero-pads the
 * input by P before the normalisation.
 *
 * Convolutions have no bias; the classifier has one. Blocks compute
 *   resnet:   relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 *   preact:   a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (shortcut(a) or x)
 *   wrn:      a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + (convShortcut(a) or x)
 *   bottleneck: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
 * and the heads: resnet relu(bn1(conv1(x))) first (torchvision's then
 * max-pools); preact relu(bn(.)) and
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
    int swish; /* the activation is swish, not relu */
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

/* The model's activation: relu, or swish for a "-swish" preset. */
static int act(builder *b, int in)
{
    return put(b, b->swish ? CLASP_LAYER_SWISH : CLASP_LAYER_RELU, NULL, in, 0, 0, 0, 0, 0);
}

/* Zero padding by left, right, top, bottom pixels. */
static int pad(builder *b, int in, int l, int r, int t, int bt)
{
    int i = put(b, CLASP_LAYER_PAD, NULL, in, 0, 0, 0, 0, 0);
    if (!b->bad)
        b->ls[i].pads[0] = l, b->ls[i].pads[1] = r, b->ls[i].pads[2] = t, b->ls[i].pads[3] = bt;
    return i;
}

/* The padding before DeepMind's unpadded 3x3 convolutions, TensorFlow's
 * "SAME": 1 on every side at stride 1, only right and bottom at stride 2. */
static int same_pad(builder *b, int in, int s)
{
    return s == 1 ? pad(b, in, 1, 1, 1, 1) : pad(b, in, 0, 1, 0, 1);
}

/* ResNet's basic block; returns the index of its output. The 1x1
 * shortcut, when the stride or channels change, is called `sc`
 * ("shortcut" in RobustBench's resnet.py, "downsample" in torchvision). */
/* The projection shortcut of a ResNet block when the stride or channels
 * change (sc_name.0, a 1x1 conv, then sc_name.1, a BatchNorm), else x. */
static int projection(builder *b, const char *prefix, const char *sc_name, int x, int cin, int cout,
                      int s)
{
    if (s == 1 && cin == cout) return x;
    char sc0[32], sc1[32];
    snprintf(sc0, sizeof sc0, "%s.0", sc_name);
    snprintf(sc1, sizeof sc1, "%s.1", sc_name);
    named_conv(b, prefix, sc0, x, cout, 1, s);
    return named(b, CLASP_LAYER_BATCHNORM2D, prefix, sc1, PREV);
}

/* convI then bnI, the pair every ResNet block repeats; returns the bn. */
static int conv_bn(builder *b, const char *prefix, int i, int in, int out, int k, int s)
{
    char c[16], n[16];
    snprintf(c, sizeof c, "conv%d", i);
    snprintf(n, sizeof n, "bn%d", i);
    named_conv(b, prefix, c, in, out, k, s);
    return named(b, CLASP_LAYER_BATCHNORM2D, prefix, n, PREV);
}

static int resnet_block(builder *b, const char *prefix, int x, int cin, int cout, int s,
                        const char *sc_name)
{
    conv_bn(b, prefix, 1, x, cout, 3, s);
    act(b, PREV);
    int main = conv_bn(b, prefix, 2, PREV, cout, 3, 1);
    int sc = projection(b, prefix, sc_name, x, cin, cout, s);
    put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
    return act(b, PREV);
}

/* The bottleneck block: 1x1 to `mid` channels, 3x3 at stride s, 1x1 to
 * cout, and the shortcut as in resnet_block. */
static int bottleneck_block(builder *b, const char *prefix, int x, int cin, int mid, int cout,
                            int s, const char *sc_name)
{
    conv_bn(b, prefix, 1, x, mid, 1, 1);
    act(b, PREV);
    conv_bn(b, prefix, 2, PREV, mid, 3, s);
    act(b, PREV);
    int main = conv_bn(b, prefix, 3, PREV, cout, 1, 1);
    int sc = projection(b, prefix, sc_name, x, cin, cout, s);
    put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
    return act(b, PREV);
}

/* PreAct ResNet's block and WideResNet's basic block: the same graph, with
 * the shortcut conv called shortcut.0 or convShortcut, reading the
 * pre-activation, or with sc_from_input the block's input itself (as
 * RobustBench's PreActBlock without out_shortcut). */
static int preact_block(builder *b, const char *prefix, int x, int cin, int cout, int s,
                        const char *sc_name, int sc_from_input)
{
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn1", x);
    int a = act(b, PREV);
    named_conv(b, prefix, "conv1", a, cout, 3, s);
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "bn2", PREV);
    act(b, PREV);
    int main = named_conv(b, prefix, "conv2", PREV, cout, 3, 1);
    int sc = x;
    if (s != 1 || cin != cout)
        sc = named_conv(b, prefix, sc_name, sc_from_input ? x : a, cout, 1, s);
    return put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
}

/* An unpadded 3x3 convolution (DeepMind's, after same_pad). */
static int named_conv_p0(builder *b, const char *prefix, const char *leaf, int in, int out, int k,
                         int s)
{
    int c = named_conv(b, prefix, leaf, in, out, k, s);
    if (!b->bad) b->ls[c].pad = 0;
    return c;
}

/* DeepMind's WideResNet block: a = act(batchnorm_0(x)); conv_1(act(
 * batchnorm_1(conv_0(same_pad(a))))) + (shortcut(a) when the channels
 * change, else x). */
static int dm_block(builder *b, const char *prefix, int x, int cin, int cout, int s)
{
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "batchnorm_0", x);
    int a = act(b, PREV);
    same_pad(b, a, s);
    named_conv_p0(b, prefix, "conv_0", PREV, cout, 3, s);
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "batchnorm_1", PREV);
    act(b, PREV);
    int main = named_conv(b, prefix, "conv_1", PREV, cout, 3, 1);
    int sc = cin != cout ? named_conv_p0(b, prefix, "shortcut", a, cout, 1, s) : x;
    return put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
}

/* DeepMind's PreAct ResNet block: conv_2d_2(act(batchnorm_1(conv_2d_1(
 * same_pad(act(batchnorm_0(x))))))) + (shortcut(same_pad(x)), a 3x3 conv of
 * the block's INPUT, when the stride or channels change, else x). */
static int dm_preact_block(builder *b, const char *prefix, int x, int cin, int cout, int s)
{
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "batchnorm_0", x);
    act(b, PREV);
    same_pad(b, PREV, s);
    named_conv_p0(b, prefix, "conv_2d_1", PREV, cout, 3, s);
    named(b, CLASP_LAYER_BATCHNORM2D, prefix, "batchnorm_1", PREV);
    act(b, PREV);
    int main = named_conv(b, prefix, "conv_2d_2", PREV, cout, 3, 1);
    int sc = x;
    if (s != 1 || cin != cout) {
        same_pad(b, x, s);
        sc = named_conv_p0(b, prefix, "shortcut", PREV, cout, 3, s);
    }
    return put(b, CLASP_LAYER_ADD, NULL, main, sc, 0, 0, 0, 0);
}

/* The preset families. */
enum { RESNET, PREACT, WRN, PREACT_NOBN, DM_WRN, DM_PREACT, TV_RESNET };

typedef struct preset {
    int kind, depth, width; /* width: WRN's widening, torchvision's inner-width factor */
    int base;               /* -wN: base width, 0 = the family's own */
    int swish;              /* -swish: swish instead of relu */
    int pad;                /* -padP: zero padding of the input before normalisation */
} preset;

/* "-D-W" of a WideResNet name. */
static int parse_wrn(const char **p, preset *ps)
{
    return clasp_nn_read_int(p, 10, &ps->depth) && *(*p)++ == '-' &&
           clasp_nn_read_int(p, 1, &ps->width) && (ps->depth - 4) % 6 == 0;
}

/* The blocks per stage of a ResNet depth; NULL for a depth ResNet lacks. */
static const int *resnet_stages(int depth)
{
    static const int d18[] = {2, 2, 2, 2}, d34[] = {3, 4, 6, 3}, d101[] = {3, 4, 23, 3},
                     d152[] = {3, 8, 36, 3};
    switch (depth) {
    case 18: return d18;
    case 34:
    case 50: return d34;
    case 101: return d101;
    case 152: return d152;
    default: return NULL;
    }
}

/* "resnetD" (D one of 18, 34, 50, 101, 152) at *p. */
static int parse_resnet_depth(const char **p, preset *ps)
{
    if (strncmp(*p, "resnet", 6)) return 0;
    *p += 6;
    return clasp_nn_read_int(p, 1, &ps->depth) && resnet_stages(ps->depth);
}

/* Parses a preset name, "<family>[-wN][-swish][-padP]"; 0 when it is none. */
static int parse_preset(const char *name, preset *ps)
{
    const char *p = name;
    memset(ps, 0, sizeof *ps);
    ps->depth = 18, ps->width = 1;
    /* Longer names first: "preact-resnet18-nobn" starts as "preact-resnet18". */
    if (!strncmp(p, "resnet", 6)) {
        ps->kind = RESNET;
        if (!parse_resnet_depth(&p, ps)) return 0;
    } else if (!strncmp(p, "tv-resnet", 9)) {
        p += 3, ps->kind = TV_RESNET;
        if (!parse_resnet_depth(&p, ps)) return 0;
    } else if (!strncmp(p, "tv-wide-resnet", 14)) {
        p += 8, ps->kind = TV_RESNET;
        if (!parse_resnet_depth(&p, ps) || ps->depth < 50 || *p++ != '-' ||
            !clasp_nn_read_int(&p, 1, &ps->width) || ps->width > 64)
            return 0;
    } else if (!strncmp(p, "preact-resnet18-nobn", 20)) ps->kind = PREACT_NOBN, p += 20;
    else if (!strncmp(p, "preact-resnet18", 15)) ps->kind = PREACT, p += 15;
    else if (!strncmp(p, "dm-preact-resnet18", 18)) ps->kind = DM_PREACT, p += 18;
    else if (!strncmp(p, "wrn-", 4)) {
        p += 4, ps->kind = WRN;
        if (!parse_wrn(&p, ps)) return 0;
    } else if (!strncmp(p, "dm-wrn-", 7)) {
        p += 7, ps->kind = DM_WRN;
        if (!parse_wrn(&p, ps)) return 0;
    } else return 0;
    /* The whole name counts: no silent cut after some length. */
    if (!strncmp(p, "-w", 2) && p[2] >= '0' && p[2] <= '9' &&
        (p += 2, !clasp_nn_read_int(&p, 1, &ps->base)))
        return 0;
    if (!strncmp(p, "-swish", 6)) ps->swish = 1, p += 6;
    if (!strncmp(p, "-pad", 4) && (p += 4, !clasp_nn_read_int(&p, 1, &ps->pad))) return 0;
    return !*p && ps->pad <= 4096;
}

int clasp_model_is_preset(const char *name)
{
    preset ps;
    return name && parse_preset(name, &ps);
}

/* Global average pooling, or PyTorch's avg_pool2d(x, k) of the DeepMind
 * and RobustBench definitions when the map is at least k. */
static void head(builder *b, int x, int classes, const char *fc, int map, int k)
{
    int pool = k && map >= k ? k : map;
    put(b, CLASP_LAYER_AVGPOOL2D, NULL, x, 0, 0, pool, pool, 0);
    put(b, CLASP_LAYER_FLATTEN, NULL, PREV, 0, 0, 0, 0, 0);
    int l = put(b, CLASP_LAYER_LINEAR, fc, PREV, 0, classes, 0, 0, 0);
    if (l >= 0) b->ls[l].no_bias = 0;
}

static void resnets(builder *b, const preset *ps, int x, int num_classes, int *map)
{
    char prefix[CLASP_LAYER_NAME_MAX];
    int w0 = ps->base ? ps->base : 64, cin = w0;
    int tv = ps->kind == TV_RESNET, bottleneck = (ps->kind == RESNET || tv) && ps->depth >= 50;
    const int *stages = resnet_stages(ps->depth);
    if (tv) {
        /* 7x7 stride 2 (padding 3), then max-pool 3x3 stride 2 padding 1:
         * both (H - 1) / 2 + 1. */
        x = conv(b, "conv1", x, w0, 7, 2);
        *map = (*map - 1) / 2 + 1;
    } else {
        x = conv(b, "conv1", x, w0, 3, 1);
    }
    if (ps->kind == RESNET || tv) {
        put(b, CLASP_LAYER_BATCHNORM2D, "bn1", PREV, 0, 0, 0, 0, 0);
        x = act(b, PREV);
    }
    if (tv) {
        x = put(b, CLASP_LAYER_MAXPOOL2D, NULL, x, 0, 0, 3, 2, 1);
        *map = (*map - 1) / 2 + 1;
    }
    const char *sc_name = tv ? "downsample" : "shortcut";
    for (int stage = 0; stage < 4; stage++) {
        int planes = w0 << stage, cout = bottleneck ? 4 * planes : planes;
        for (int blk = 0; blk < stages[stage]; blk++) {
            int s = stage > 0 && blk == 0 ? 2 : 1;
            snprintf(prefix, sizeof prefix, "layer%d.%d.", stage + 1, blk);
            if (bottleneck)
                x = bottleneck_block(b, prefix, x, cin, planes * ps->width, cout, s, sc_name);
            else if (ps->kind == RESNET || tv)
                x = resnet_block(b, prefix, x, cin, cout, s, sc_name);
            else
                x = preact_block(b, prefix, x, cin, cout, s, "shortcut.0", ps->kind == PREACT_NOBN);
            cin = cout;
            if (s == 2) *map = (*map - 1) / 2 + 1;
        }
    }
    if (ps->kind == PREACT) {
        put(b, CLASP_LAYER_BATCHNORM2D, "bn", x, 0, 0, 0, 0, 0);
        x = act(b, PREV);
    }
    head(b, x, num_classes, tv ? "fc" : "linear", *map, 0);
}

static void wrn(builder *b, const preset *ps, int x, int num_classes, int *map)
{
    char prefix[CLASP_LAYER_NAME_MAX];
    int w0 = ps->base ? ps->base : 16, n = (ps->depth - 4) / 6;
    x = conv(b, "conv1", x, w0, 3, 1);
    int cin = w0;
    for (int g = 0; g < 3; g++) {
        int cout = (16 << g) * ps->width;
        for (int i = 0; i < n; i++) {
            int s = g > 0 && i == 0 ? 2 : 1;
            snprintf(prefix, sizeof prefix, "block%d.layer.%d.", g + 1, i);
            x = preact_block(b, prefix, x, cin, cout, s, "convShortcut", 0);
            cin = cout;
            if (s == 2) *map = (*map - 1) / 2 + 1;
        }
    }
    put(b, CLASP_LAYER_BATCHNORM2D, "bn1", x, 0, 0, 0, 0, 0);
    x = act(b, PREV);
    head(b, x, num_classes, "fc", *map, 0);
    for (int i = 0; i < b->n && !b->bad; i++)
        if (b->ls[i].kind == CLASP_LAYER_CONV2D || b->ls[i].kind == CLASP_LAYER_LINEAR)
            b->ls[i].init = CLASP_INIT_KAIMING_FAN_OUT;
}

static void dm_models(builder *b, const preset *ps, int x, int num_classes, int *map)
{
    char prefix[CLASP_LAYER_NAME_MAX];
    int wide = ps->kind == DM_WRN;
    int w0 = ps->base ? ps->base : wide ? 16 : 64, cin = w0;
    x = conv(b, wide ? "init_conv" : "conv_2d", x, w0, 3, 1);
    int groups = wide ? 3 : 4, n = wide ? (ps->depth - 4) / 6 : 2;
    for (int g = 0; g < groups; g++) {
        int cout = wide ? (16 << g) * ps->width : w0 << g;
        for (int i = 0; i < n; i++) {
            int s = g > 0 && i == 0 ? 2 : 1;
            if (wide) snprintf(prefix, sizeof prefix, "layer.%d.block.%d.", g, i);
            else snprintf(prefix, sizeof prefix, "layer_%d.%d.", g, i);
            x = wide ? dm_block(b, prefix, x, cin, cout, s)
                     : dm_preact_block(b, prefix, x, cin, cout, s);
            cin = cout;
            /* 3x3 after padding 0,1,0,1: (H + 1 - 3) / 2 + 1 */
            if (s == 2) *map = (*map - 2) / 2 + 1;
        }
    }
    put(b, CLASP_LAYER_BATCHNORM2D, "batchnorm", x, 0, 0, 0, 0, 0);
    x = act(b, PREV);
    head(b, x, num_classes, "logits", *map, wide ? 8 : 4);
}

clasp_status clasp_model_new_preset(clasp_ctx *ctx, const char *name, int in_c, int in_h, int in_w,
                                    int num_classes, const float *mean, const float *std,
                                    clasp_model **out)
{
    *out = NULL;
    preset ps;
    if (!name || !parse_preset(name, &ps))
        return clasp_error(CLASP_ERR_CONFIG,
                           "architecture '%s' is not a preset; expected resnetD (D = 18, 34, 50, "
                           "101, 152), preact-resnet18, preact-resnet18-nobn, wrn-D-W, dm-wrn-D-W "
                           "(D = 6n+4), dm-preact-resnet18, tv-resnetD or tv-wide-resnetD-2 (D = "
                           "50, 101), optionally followed by -w<base width>, -swish and -pad<P>",
                           name ? name : "");
    if (in_c > CLASP_NORMALIZE_MAX_C && mean)
        return clasp_error(CLASP_ERR_CONFIG, "normalize takes at most %d channels",
                           CLASP_NORMALIZE_MAX_C);
    builder b = {0};
    b.swish = ps.swish;
    int x = -1;
    if (ps.pad) {
        /* Before normalisation, as DeepMind's models pad: the border is
         * black in pixel space, -mean/std after normalising. */
        x = pad(&b, x, ps.pad, ps.pad, ps.pad, ps.pad);
    }
    if (mean) {
        x = put(&b, CLASP_LAYER_NORMALIZE, "normalize", x, 0, 0, 0, 0, 0);
        for (int c = 0; c < in_c && !b.bad; c++) b.ls[x].mean[c] = mean[c], b.ls[x].std[c] = std[c];
    }
    int map = in_h + 2 * ps.pad; /* spatial size of the final map, for the pooling */
    if (ps.kind == RESNET || ps.kind == PREACT || ps.kind == PREACT_NOBN || ps.kind == TV_RESNET)
        resnets(&b, &ps, x, num_classes, &map);
    else if (ps.kind == WRN) wrn(&b, &ps, x, num_classes, &map);
    else dm_models(&b, &ps, x, num_classes, &map);
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
