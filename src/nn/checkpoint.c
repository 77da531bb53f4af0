/* Model checkpoints in safetensors with PyTorch's names and layouts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/safetensors.h"
#include "clasp/torchfile.h"
#include "clasp_config.h"
#include "nn/layers/layer.h"

static clasp_status add_tensor(clasp_st_file *f, const char *name, clasp_tensor *t)
{
    float *h = malloc((t->numel ? t->numel : 1) * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    int64_t shape[CLASP_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    clasp_status st = clasp_tensor_read(t, h);
    if (st == CLASP_OK) st = clasp_st_add(f, name, CLASP_ST_F32, t->ndim, shape, h);
    free(h);
    return st;
}

/* What the layers keep in metadata (constants that are not tensors, as
 * normalize's mean and std): each kind writes its own. */
static clasp_status save_layer_meta(const clasp_model *m, clasp_st_file *f)
{
    for (int i = 0; i < m->n_nodes; i++) {
        const clasp_node *n = &m->nodes[i];
        if (n->ops->save_meta) CLASP_TRY(n->ops->save_meta(m, n, f));
    }
    return CLASP_OK;
}

clasp_status clasp_model_save(clasp_model *m, const clasp_sgd *o, const clasp_kv *extra,
                              int n_extra, const char *path)
{
    clasp_st_file f;
    clasp_st_init(&f);
    char arch[1024], buf[64];
    clasp_model_arch(m, arch, sizeof arch);
    clasp_status st = clasp_st_set_meta(&f, "format", "pt");
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "clasp.version", CLASP_VERSION);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "clasp.arch", arch);
    snprintf(buf, sizeof buf, "%d,%d,%d", m->in_c, m->in_h, m->in_w);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "clasp.input", buf);
    snprintf(buf, sizeof buf, "%d", m->num_classes);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "clasp.classes", buf);
    if (st == CLASP_OK) st = save_layer_meta(m, &f);
    if (st == CLASP_OK && m->calibrated) {
        /* Calibration lives in metadata so the tensors stay a plain PyTorch
         * state dict. */
        size_t cap = (size_t)m->num_classes * 24 + 1;
        char *s = malloc(cap);
        if (!s) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        size_t len = 0;
        for (int k = 0; s && k < m->num_classes; k++)
            len += (size_t)snprintf(s + len, cap - len, "%s%.9g", k ? "," : "",
                                    (double)m->calib_offsets[k]);
        if (s) st = clasp_st_set_meta(&f, "clasp.calibration.offsets", s);
        free(s);
        snprintf(buf, sizeof buf, "%.9g", (double)m->calib_t);
        if (st == CLASP_OK) st = clasp_st_set_meta(&f, "clasp.calibration.temperature", buf);
    }
    for (int i = 0; st == CLASP_OK && i < n_extra; i++)
        st = clasp_st_set_meta(&f, extra[i].key, extra[i].value);
    /* The state dict: parameters and buffers in layer order, as
     * PyTorch's state_dict() lists them per module. */
    for (int i = 0; st == CLASP_OK && i < m->n_params; i++)
        st = add_tensor(&f, m->names[i], m->params[i]);
    for (int i = 0; st == CLASP_OK && i < m->n_buffers; i++) {
        const model_buffer *b = &m->buffers[i];
        if (b->is_i64) st = clasp_st_add(&f, b->name, CLASP_ST_I64, 0, NULL, &b->i64);
        else st = add_tensor(&f, b->name, b->t);
    }
    for (int i = 0; st == CLASP_OK && o && i < m->n_params; i++) {
        clasp_tensor *v = clasp_sgd_velocity((clasp_sgd *)o, i);
        if (!v) continue;
        char name[64];
        snprintf(name, sizeof name, "optimizer.%s.momentum", m->names[i]);
        st = add_tensor(&f, name, v);
    }
    if (st == CLASP_OK) st = clasp_st_write(&f, path);
    clasp_st_free(&f);
    return st;
}

static clasp_status load_into(clasp_tensor *t, const clasp_st_file *f, const char *name,
                              const char *path)
{
    const clasp_st_tensor *s = clasp_st_find(f, name);
    if (!s) return clasp_error(CLASP_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    int same = s->dtype == CLASP_ST_F32 && s->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = s->shape[d] == t->shape[d];
    if (!same) {
        char want[96] = "", got[96] = "";
        size_t a = 0, b = 0;
        for (int d = 0; d < t->ndim; d++)
            a += (size_t)snprintf(want + a, sizeof want - a, "%s%d", d ? "," : "", t->shape[d]);
        for (int d = 0; d < s->ndim && b < sizeof got; d++)
            b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", d ? "," : "",
                                  (long long)s->shape[d]);
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor '%s' has shape [%s]%s, the model needs [%s] F32", path, name,
                           got, s->dtype == CLASP_ST_F32 ? "" : " I32", want);
    }
    return clasp_tensor_write(t, s->data);
}

/* Every tensor of the file must be one the model expects (or a momentum
 * buffer of a state file): an unexpected name means another
 * architecture, and is reported before any missing one. */
/* 1 when `name` is in the comma-separated list (an item ending in '.'
 * is a prefix). */
static int ignored(const char *name, const char *list)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && p[len - 1] == '.' ? !strncmp(name, p, len)
                                     : len && strlen(name) == len && !strncmp(name, p, len))
            return 1;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

static clasp_status check_names(const clasp_model *m, const clasp_st_file *f, const char *path,
                                const char *ignore)
{
    for (size_t t = 0; t < f->n_tensors; t++) {
        const char *name = f->tensors[t].name;
        if (!strncmp(name, "optimizer.", 10)) continue;
        if (ignored(name, ignore)) continue;
        /* RobustBench's wrapper: checked against the model's normalize. */
        if (!strcmp(name, "normalize.mean") || !strcmp(name, "normalize.std")) continue;
        int known = 0;
        for (int i = 0; !known && i < m->n_params; i++) known = !strcmp(name, m->names[i]);
        for (int i = 0; !known && i < m->n_buffers; i++) known = !strcmp(name, m->buffers[i].name);
        if (!known) {
            char arch[200];
            clasp_model_arch(m, arch, sizeof arch);
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: unexpected tensor '%s' for the architecture '%s'%s", path, name,
                               arch,
                               ignore ? ""
                                      : " (a RobustBench model? --zoo NAME says which tensors "
                                        "it may carry)");
        }
    }
    return CLASP_OK;
}

/* A scalar int64 (PyTorch's num_batches_tracked); an I32 is taken too. */
static clasp_status load_i64(int64_t *v, const clasp_st_file *f, const char *name, const char *path)
{
    const clasp_st_tensor *s = clasp_st_find(f, name);
    if (!s) return clasp_error(CLASP_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    if (s->numel != 1 || (s->dtype != CLASP_ST_I64 && s->dtype != CLASP_ST_I32))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor '%s' must be one integer (I64), has %zu values", path, name,
                           s->numel);
    *v =
        s->dtype == CLASP_ST_I64 ? *(const int64_t *)s->data : (int64_t) * (const int32_t *)s->data;
    return CLASP_OK;
}

static clasp_status parse_floats(const char *text, float *out, int n, const char *path)
{
    const char *p = text;
    for (int k = 0; k < n; k++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v))
            return clasp_error(CLASP_ERR_FORMAT, "%s: calibration offset %d is not a number", path,
                               k);
        out[k] = (float)v;
        p = end;
        if (k + 1 < n) {
            if (*p != ',')
                return clasp_error(CLASP_ERR_FORMAT, "%s: expected %d calibration offsets", path,
                                   n);
            p++;
        }
    }
    if (*p) return clasp_error(CLASP_ERR_FORMAT, "%s: more than %d calibration offsets", path, n);
    return CLASP_OK;
}

static clasp_status load_calibration(clasp_model *m, const clasp_st_file *f, const char *path)
{
    const char *offs = clasp_st_meta(f, "clasp.calibration.offsets");
    const char *temp = clasp_st_meta(f, "clasp.calibration.temperature");
    if (!offs && !temp) return CLASP_OK;
    float *o = calloc((size_t)m->num_classes, sizeof *o);
    if (!o) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    float t = 1.0f;
    clasp_status st = offs ? parse_floats(offs, o, m->num_classes, path) : CLASP_OK;
    if (st == CLASP_OK && temp) st = parse_floats(temp, &t, 1, path);
    if (st == CLASP_OK) st = clasp_model_set_calibration(m, o, t);
    free(o);
    return st;
}

/* RobustBench's wrapper keeps its normalisation as the buffers
 * normalize.mean and normalize.std, [1,C,1,1] each. 1 when f has them (as C
 * floats in mean/std), 0 when it has neither; an error when they are not C
 * positive-std values. */
static clasp_status file_normalize(const clasp_st_file *f, int c, float *mean, float *std,
                                   const char *path, int *has)
{
    const clasp_st_tensor *m = clasp_st_find(f, "normalize.mean"),
                          *s = clasp_st_find(f, "normalize.std");
    *has = 0;
    if (!m && !s) return CLASP_OK;
    if (!m || !s || m->dtype != CLASP_ST_F32 || s->dtype != CLASP_ST_F32 || m->numel != (size_t)c ||
        s->numel != (size_t)c || c > CLASP_NORMALIZE_MAX_C)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: normalize.mean and normalize.std must both be %d F32 values, one "
                           "per input channel",
                           path, c);
    memcpy(mean, m->data, (size_t)c * sizeof *mean);
    memcpy(std, s->data, (size_t)c * sizeof *std);
    for (int k = 0; k < c; k++)
        if (!(std[k] > 0.0f) || !isfinite(mean[k]) || !isfinite(std[k]))
            return clasp_error(CLASP_ERR_FORMAT, "%s: normalize.std[%d] must be > 0", path, k);
    *has = 1;
    return CLASP_OK;
}

/* A file's normalize.mean/std against the model's normalisation: equal (to
 * float rounding), or an error saying which differs. */
static clasp_status check_file_normalize(const clasp_model *m, const clasp_st_file *f,
                                         const char *path)
{
    float mean[CLASP_NORMALIZE_MAX_C], stdv[CLASP_NORMALIZE_MAX_C];
    int has;
    CLASP_TRY(file_normalize(f, m->in_c, mean, stdv, path, &has));
    if (!has) return CLASP_OK;
    const clasp_layer_spec *norm = NULL;
    for (int i = 0; i < m->n_nodes && !norm; i++)
        if (m->nodes[i].spec.kind == CLASP_LAYER_NORMALIZE) norm = &m->nodes[i].spec;
    if (!norm)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: the file normalises its input (normalize.mean, normalize.std: "
                           "RobustBench's wrapper) but the model has no normalisation; give the "
                           "model its normalize (or --zoo NAME)",
                           path);
    for (int k = 0; k < m->in_c; k++)
        if (fabsf(norm->mean[k] - mean[k]) > 1e-6f * (1.0f + fabsf(mean[k])) ||
            fabsf(norm->std[k] - stdv[k]) > 1e-6f * stdv[k])
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: channel %d: the file normalises with mean %.9g, std %.9g; the "
                               "model with mean %.9g, std %.9g",
                               path, k, (double)mean[k], (double)stdv[k], (double)norm->mean[k],
                               (double)norm->std[k]);
    return CLASP_OK;
}

/* The architecture a PyTorch state dict without clasp metadata was saved
 * from, told by its tensor names (and, for widths, their shapes). */
static const char *detect_arch(const clasp_st_file *f, char *buf, size_t size)
{
    /* DeepMind's models (RobustBench's dm_wide_resnet.py); their activation
     * (relu or swish) is not in the names: the caller says it. */
    const clasp_st_tensor *dm = clasp_st_find(f, "init_conv.weight");
    const clasp_st_tensor *b0 = clasp_st_find(f, "layer.0.block.0.conv_0.weight");
    if (dm && dm->ndim == 4 && b0 && b0->ndim == 4 && clasp_st_find(f, "logits.weight")) {
        int n = 0, stem = (int)dm->shape[0];
        char name[96];
        for (; n < 1000; n++) {
            snprintf(name, sizeof name, "layer.0.block.%d.conv_0.weight", n);
            if (!clasp_st_find(f, name)) break;
        }
        if (b0->shape[0] <= 0 || b0->shape[0] % 16) return NULL;
        int width = (int)(b0->shape[0] / 16);
        if (stem == 16) snprintf(buf, size, "dm-wrn-%d-%d", 6 * n + 4, width);
        else snprintf(buf, size, "dm-wrn-%d-%d-w%d", 6 * n + 4, width, stem);
        return buf;
    }
    const clasp_st_tensor *dp = clasp_st_find(f, "conv_2d.weight");
    if (dp && dp->ndim == 4 && clasp_st_find(f, "layer_0.0.conv_2d_1.weight") &&
        clasp_st_find(f, "logits.weight")) {
        int stem = (int)dp->shape[0];
        if (stem == 64) snprintf(buf, size, "dm-preact-resnet18");
        else snprintf(buf, size, "dm-preact-resnet18-w%d", stem);
        return buf;
    }
    const clasp_st_tensor *c1 = clasp_st_find(f, "conv1.weight");
    if (!c1 || c1->ndim != 4) return NULL;
    int w0 = (int)c1->shape[0];
    if (clasp_st_find(f, "block1.layer.0.conv1.weight")) {
        int n = 0;
        char name[96];
        for (;; n++) {
            snprintf(name, sizeof name, "block1.layer.%d.conv1.weight", n);
            if (!clasp_st_find(f, name)) break;
        }
        const clasp_st_tensor *b1 = clasp_st_find(f, "block1.layer.0.conv1.weight");
        int width = (int)b1->shape[0] / 16;
        if (width <= 0 || b1->shape[0] % 16) return NULL;
        if (w0 == 16) snprintf(buf, size, "wrn-%d-%d", 6 * n + 4, width);
        else snprintf(buf, size, "wrn-%d-%d-w%d", 6 * n + 4, width, w0);
        return buf;
    }
    const clasp_st_tensor *l1 = clasp_st_find(f, "layer1.0.conv1.weight");
    int tv = c1->shape[2] == 7 && clasp_st_find(f, "fc.weight") != NULL;
    if (l1 && l1->ndim == 4 && (tv || clasp_st_find(f, "linear.weight"))) {
        /* ResNets: the depth from the blocks per stage, bottleneck blocks
         * by their conv3, a wide one by its inner width. */
        int bottleneck = clasp_st_find(f, "layer1.0.conv3.weight") != NULL, depth = 0;
        int blocks[4];
        char name[96];
        for (int s = 0; s < 4; s++) {
            for (blocks[s] = 0; blocks[s] < 64; blocks[s]++) {
                snprintf(name, sizeof name, "layer%d.%d.conv1.weight", s + 1, blocks[s]);
                if (!clasp_st_find(f, name)) break;
            }
        }
        static const struct {
            int blocks[4], basic, bottleneck;
        } depths[] = {{{2, 2, 2, 2}, 18, 0},
                      {{3, 4, 6, 3}, 34, 50},
                      {{3, 4, 23, 3}, 0, 101},
                      {{3, 8, 36, 3}, 0, 152}};
        for (size_t d = 0; d < sizeof depths / sizeof *depths; d++)
            if (!memcmp(blocks, depths[d].blocks, sizeof blocks))
                depth = bottleneck ? depths[d].bottleneck : depths[d].basic;
        if (!depth || w0 <= 0) return NULL;
        char wide[24] = "";
        if (bottleneck && l1->shape[0] != w0) {
            if (!tv || l1->shape[0] % w0) return NULL;
            snprintf(wide, sizeof wide, "-%d", (int)(l1->shape[0] / w0));
        }
        char base[48];
        if (tv) snprintf(base, sizeof base, "tv-%sresnet%d%s", *wide ? "wide-" : "", depth, wide);
        else if (clasp_st_find(f, "bn1.weight")) snprintf(base, sizeof base, "resnet%d", depth);
        /* PreAct ResNet with RobustBench's bn_before_fc=False has no "bn". */
        else if (depth == 18 && !bottleneck)
            snprintf(base, sizeof base, "%s",
                     clasp_st_find(f, "bn.weight") ? "preact-resnet18" : "preact-resnet18-nobn");
        else return NULL;
        if (w0 == 64) snprintf(buf, size, "%s", base);
        else snprintf(buf, size, "%s-w%d", base, w0);
        return buf;
    }
    return NULL;
}

/* The number of classes of a preset from its classifier's weight. */
static int preset_classes(const clasp_st_file *f)
{
    const clasp_st_tensor *t = clasp_st_find(f, "linear.weight");
    if (!t) t = clasp_st_find(f, "fc.weight");
    if (!t) t = clasp_st_find(f, "logits.weight"); /* DeepMind's models */
    return t && t->ndim == 2 ? (int)t->shape[0] : 0;
}

/* Any model file as a state dict (safetensors, or PyTorch's zip or legacy
 * pickle format), with what was read and which prefix was removed. */
static clasp_status read_any(const char *path, clasp_st_file *f, clasp_ckpt_info *info)
{
    clasp_ckpt_info tmp;
    return clasp_ckpt_read(path, f, info ? info : &tmp);
}

/* Every parameter and buffer of m from f (names checked first). */
static clasp_status load_tensors(clasp_model *m, const clasp_st_file *f, const char *path,
                                 const char *ignore)
{
    clasp_status st = check_names(m, f, path, ignore);
    if (st == CLASP_OK) st = check_file_normalize(m, f, path);
    for (int i = 0; st == CLASP_OK && i < m->n_params; i++)
        st = load_into(m->params[i], f, m->names[i], path);
    for (int i = 0; st == CLASP_OK && i < m->n_buffers; i++) {
        model_buffer *b = &m->buffers[i];
        if (b->is_i64) st = load_i64(&b->i64, f, b->name, path);
        else st = load_into(b->t, f, b->name, path);
    }
    if (st == CLASP_OK) st = load_calibration(m, f, path);
    return st;
}

clasp_status clasp_model_load_weights(clasp_model *m, const char *path, const char *ignore,
                                      clasp_ckpt_info *info)
{
    clasp_st_file f;
    CLASP_TRY(read_any(path, &f, info));
    clasp_status st = load_tensors(m, &f, path, ignore);
    clasp_st_free(&f);
    return st;
}

clasp_status clasp_model_load(clasp_ctx *ctx, const char *path, const char *arch_fallback,
                              const int *in_chw, clasp_model **out)
{
    return clasp_model_load_info(ctx, path, arch_fallback, in_chw, NULL, out);
}

clasp_status clasp_model_load_info(clasp_ctx *ctx, const char *path, const char *arch_fallback,
                                   const int *in_chw, clasp_ckpt_info *info, clasp_model **out)
{
    *out = NULL;
    clasp_st_file f;
    CLASP_TRY(read_any(path, &f, info));
    const char *arch = clasp_st_meta(&f, "clasp.arch");
    const char *input = clasp_st_meta(&f, "clasp.input");
    int c = 0, h = 0, w = 0;
    char detected[64];
    clasp_status st = CLASP_OK;
    if (!arch) arch = arch_fallback;
    /* A state dict whose names say which preset it is: that, unless the
     * caller named a preset itself. */
    if (!clasp_st_meta(&f, "clasp.arch") && !clasp_model_is_preset(arch)) {
        const char *d = detect_arch(&f, detected, sizeof detected);
        if (d) arch = d;
    }
    if (input) {
        if (sscanf(input, "%d,%d,%d", &c, &h, &w) != 3)
            st = clasp_error(CLASP_ERR_FORMAT, "%s: metadata clasp.input '%s' is not C,H,W", path,
                             input);
    } else if (in_chw) {
        c = in_chw[0], h = in_chw[1], w = in_chw[2];
    }
    if (st == CLASP_OK && (!arch || c <= 0))
        st = clasp_error(CLASP_ERR_FORMAT,
                         "%s: no clasp.arch/clasp.input metadata; give the architecture and input "
                         "shape",
                         path);
    clasp_model *m = NULL;
    if (st == CLASP_OK && clasp_model_is_preset(arch)) {
        /* A preset takes its normalisation as arguments: clasp's metadata,
         * or without it RobustBench's wrapper. */
        float mean[CLASP_NORMALIZE_MAX_C] = {0}, stdv[CLASP_NORMALIZE_MAX_C] = {0};
        int norm = 0, wrapped = 0;
        st = layer_normalize_read_meta(&f, path, c, mean, stdv, &norm);
        if (st == CLASP_OK && !norm) st = file_normalize(&f, c, mean, stdv, path, &wrapped);
        const char *cls = clasp_st_meta(&f, "clasp.classes");
        int k = cls ? atoi(cls) : preset_classes(&f);
        if (k <= 0)
            st = clasp_error(CLASP_ERR_FORMAT,
                             "%s: cannot tell the number of classes (no linear.weight, fc.weight "
                             "or logits.weight)",
                             path);
        if (st == CLASP_OK)
            st = clasp_model_new_preset(ctx, arch, c, h, w, k, norm || wrapped ? mean : NULL, stdv,
                                        &m);
    } else if (st == CLASP_OK) {
        clasp_layer_spec *ls = NULL;
        int n = 0;
        st = clasp_arch_parse(arch, &ls, &n);
        /* What the text leaves out, each kind from its metadata. */
        for (int i = 0; st == CLASP_OK && i < n; i++) {
            const layer_ops *o = layer_ops_of(ls[i].kind);
            if (o && o->load_meta) st = o->load_meta(&f, path, c, &ls[i]);
        }
        if (st == CLASP_OK) st = clasp_model_new(ctx, ls, n, c, h, w, &m);
        free(ls);
    }
    if (st == CLASP_OK) st = load_tensors(m, &f, path, NULL);
    clasp_st_free(&f);
    if (st != CLASP_OK) {
        clasp_model_free(m);
        return st;
    }
    *out = m;
    return CLASP_OK;
}

clasp_status clasp_sgd_load(clasp_sgd *o, const char *path)
{
    clasp_st_file f;
    CLASP_TRY(clasp_st_read(path, &f));
    clasp_status st = CLASP_OK;
    for (int i = 0; st == CLASP_OK && i < clasp_sgd_num_velocities(o); i++) {
        clasp_tensor *v = clasp_sgd_velocity(o, i);
        if (!v) continue;
        char name[64];
        snprintf(name, sizeof name, "optimizer.%s.momentum", clasp_sgd_model_param_name(o, i));
        st = load_into(v, &f, name, path);
    }
    clasp_st_free(&f);
    return st;
}

clasp_status clasp_checkpoint_meta(const char *path, const char *key, char *buf, size_t size)
{
    clasp_st_file f;
    CLASP_TRY(read_any(path, &f, NULL));
    const char *v = clasp_st_meta(&f, key);
    clasp_status st =
        v ? CLASP_OK : clasp_error(CLASP_ERR_NOT_FOUND, "%s: no metadata '%s'", path, key);
    if (v) snprintf(buf, size, "%s", v);
    clasp_st_free(&f);
    return st;
}

int clasp_ckpt_detect_arch(const clasp_st_file *f, char *buf, size_t size)
{
    return f && buf && size && detect_arch(f, buf, size) != NULL;
}
