/* The model: a graph of layer nodes in topological order (see
 * layers/layer.h for what a layer kind provides). This file owns what is
 * common to every kind: wiring and shapes, parameters and buffers, the
 * forward walk, the backward walk that sums the gradients of a tensor read
 * by several nodes, and in-place execution.
 *
 * In place: relu and flatten run on their input's buffer when nothing else
 * reads it and the input's own backward does not need its output. That
 * saves a buffer and a pass per activation, as the first sequential model
 * did, and stays correct at fan-out points (a ResNet block's input feeds
 * both branches, so nothing runs in place on it).
 *
 * Eval-mode folding: in eval mode (unless the context's fold option is
 * off) a BatchNorm2d that is a convolution's only reader is folded into
 * it: the convolution runs with w * gamma / sqrt(var + eps) per output
 * channel and the matching bias (made once per version of the tensors
 * involved, layers/batchnorm2d.c), and the BatchNorm passes that output
 * through like an in-place node, forward and input-gradient backward.
 * Parameter gradients are never taken through folded weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers/layer.h"

/* ---- parameters and buffers ------------------------------------------- */

static clasp_status grow_params(clasp_model *m)
{
    if (m->n_params < m->cap_params) return CLASP_OK;
    int cap = m->cap_params ? 2 * m->cap_params : 16;
    clasp_tensor **p = realloc(m->params, (size_t)cap * sizeof *p);
    if (p) m->params = p;
    clasp_tensor **g = p ? realloc(m->grads, (size_t)cap * sizeof *g) : NULL;
    if (g) m->grads = g;
    char(*nm)[CLASP_PARAM_NAME_MAX] = g ? realloc(m->names, (size_t)cap * sizeof *nm) : NULL;
    if (nm) m->names = nm;
    int *d = nm ? realloc(m->decay, (size_t)cap * sizeof *d) : NULL;
    if (!d) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    m->decay = d;
    m->cap_params = cap;
    return CLASP_OK;
}

static clasp_status full_name(const clasp_node *n, const char *suffix, char *buf)
{
    int w = snprintf(buf, CLASP_PARAM_NAME_MAX, "%s.%s", n->name, suffix);
    if (w < 0 || w >= CLASP_PARAM_NAME_MAX)
        return clasp_error(CLASP_ERR_CONFIG, "layer '%s': parameter name too long", n->name);
    return CLASP_OK;
}

clasp_status model_add_param(clasp_model *m, clasp_node *n, const char *suffix, int ndim,
                             const int *shape, int decay, int *index)
{
    CLASP_TRY(grow_params(m));
    int i = m->n_params;
    CLASP_TRY(full_name(n, suffix, m->names[i]));
    m->params[i] = m->grads[i] = NULL;
    m->decay[i] = decay;
    m->n_params++;
    CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, ndim, shape, &m->params[i]));
    CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, ndim, shape, &m->grads[i]));
    *index = i;
    return CLASP_OK;
}

clasp_status model_add_buffer(clasp_model *m, clasp_node *n, const char *suffix, int ndim,
                              const int *shape, int i64, int *index)
{
    if (m->n_buffers == m->cap_buffers) {
        int cap = m->cap_buffers ? 2 * m->cap_buffers : 16;
        model_buffer *b = realloc(m->buffers, (size_t)cap * sizeof *b);
        if (!b) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        m->buffers = b;
        m->cap_buffers = cap;
    }
    model_buffer *b = &m->buffers[m->n_buffers];
    memset(b, 0, sizeof *b);
    CLASP_TRY(full_name(n, suffix, b->name));
    m->n_buffers++;
    b->is_i64 = i64;
    if (!i64) CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, ndim, shape, &b->t));
    *index = m->n_buffers - 1;
    return CLASP_OK;
}

/* ---- building ------------------------------------------------------------ */

/* Automatic names for unnamed layers: a kind with a name stem counts its
 * own (conv1, fc1, bn1, ...), the others share one count under their kind's
 * name (relu1, maxpool2d2, ...), as the first model named them.
 * counts[LAYER_KIND_COUNT] is the shared one. */
static void auto_name(clasp_node *n, int *counts)
{
    if (n->spec.name[0]) {
        snprintf(n->name, sizeof n->name, "%s", n->spec.name);
        return;
    }
    const char *stem = n->ops->name_stem;
    int *c = stem ? &counts[n->spec.kind] : &counts[LAYER_KIND_COUNT];
    snprintf(n->name, sizeof n->name, "%s%d", stem ? stem : n->ops->name, ++*c);
}

/* Which node's buffers hold each output: in place where it is safe (see
 * the top of this file), and, with fold, a folded BatchNorm passes its
 * convolution's output (already normalised) through. */
static void set_owners(clasp_model *m, int fold)
{
    for (int i = 0; i < m->n_nodes; i++) {
        clasp_node *n = &m->nodes[i];
        n->owner = i;
        n->in_place = 0;
        int src = n->in_idx[0];
        if ((fold && n->fold_conv >= 0) ||
            (n->ops->in_place && src >= 0 && m->nodes[src].consumers == 1 &&
             (n->ops->in_place == 2 || !m->nodes[src].ops->backward_needs_out))) {
            n->in_place = 1;
            n->owner = m->nodes[src].owner;
        }
    }
    m->folded = fold;
}

static clasp_status wire(clasp_model *m)
{
    int counts[LAYER_KIND_COUNT + 1] = {0};
    for (int i = 0; i < m->n_nodes; i++) {
        clasp_node *n = &m->nodes[i];
        const clasp_layer_spec *s = &n->spec;
        n->ops = layer_ops_of(s->kind);
        if (!n->ops)
            return clasp_error(CLASP_ERR_CONFIG, "layer %d: unknown kind %d", i + 1, (int)s->kind);
        auto_name(n, counts);
        for (int j = 0; j < CLASP_NODE_MAX_PARAMS; j++) n->param[j] = n->buffer[j] = -1;
        n->fold_bn = n->fold_conv = -1;
        n->n_in = s->n_inputs ? s->n_inputs : 1;
        if (n->n_in != n->ops->n_inputs)
            return clasp_error(CLASP_ERR_CONFIG, "layer %d (%s): takes %d input(s), %d given",
                               i + 1, n->ops->name, n->ops->n_inputs, n->n_in);
        for (int j = 0; j < n->n_in; j++) {
            int src = s->n_inputs ? s->inputs[j] : i - 1;
            if (src < -1 || src >= i)
                return clasp_error(CLASP_ERR_CONFIG,
                                   "layer %d (%s): input %d must be an earlier layer or the model "
                                   "input",
                                   i + 1, n->ops->name, src + 1);
            n->in_idx[j] = src;
            n->in[j] = src < 0 ? (node_shape){m->in_c, m->in_h, m->in_w, 1} : m->nodes[src].out;
            if (src >= 0) m->nodes[src].consumers++;
        }
        CLASP_TRY(n->ops->plan(m, n));
        n->params_upstream = n->param[0] >= 0;
        for (int j = 0; j < n->n_in; j++)
            if (n->in_idx[j] >= 0 && m->nodes[n->in_idx[j]].params_upstream) n->params_upstream = 1;
        if (n->out.c <= 0 || n->out.h <= 0 || n->out.w <= 0)
            return clasp_error(CLASP_ERR_CONFIG, "layer %d (%s): empty output", i + 1,
                               n->ops->name);
    }
    clasp_node *last = &m->nodes[m->n_nodes - 1];
    last->consumers++;
    if (last->out.is4d && (last->out.h != 1 || last->out.w != 1))
        return clasp_error(CLASP_ERR_CONFIG, "the model must end with a fully connected layer");
    m->num_classes = last->out.c;
    /* The BatchNorms eval mode folds (see the top of this file). */
    for (int i = 0; i < m->n_nodes; i++) {
        clasp_node *n = &m->nodes[i];
        int src = n->in_idx[0];
        if (n->spec.kind == CLASP_LAYER_BATCHNORM2D && src >= 0 &&
            m->nodes[src].spec.kind == CLASP_LAYER_CONV2D && m->nodes[src].consumers == 1) {
            n->fold_conv = src;
            m->nodes[src].fold_bn = i;
        }
    }
    set_owners(m, 0);
    m->grad_ready = calloc((size_t)m->n_nodes + 1, 1);
    if (!m->grad_ready) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    return CLASP_OK;
}

clasp_status clasp_model_new(clasp_ctx *ctx, const clasp_layer_spec *layers, int n_layers, int in_c,
                             int in_h, int in_w, clasp_model **out)
{
    *out = NULL;
    if (in_c <= 0 || in_h <= 0 || in_w <= 0 || n_layers <= 0)
        return clasp_error(CLASP_ERR_INVALID, "model: bad input shape %dx%dx%d or no layers", in_c,
                           in_h, in_w);
    clasp_model *m = calloc(1, sizeof *m);
    if (!m) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    m->nodes = calloc((size_t)n_layers, sizeof *m->nodes);
    if (!m->nodes) {
        free(m);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    m->ctx = ctx;
    m->in_c = in_c, m->in_h = in_h, m->in_w = in_w;
    m->n_nodes = n_layers;
    m->train = 1;
    m->calib_t = 1.0f;
    for (int i = 0; i < n_layers; i++) m->nodes[i].spec = layers[i];
    clasp_status st = wire(m);
    if (st != CLASP_OK) {
        clasp_model_free(m);
        return st;
    }
    *out = m;
    return CLASP_OK;
}

clasp_status clasp_model_new_default(clasp_ctx *ctx, int in_c, int in_h, int in_w, int num_classes,
                                     clasp_model **out)
{
    const clasp_layer_spec madry[] = {
        {.kind = CLASP_LAYER_CONV2D, .out = 32, .kernel = 5, .stride = 1, .pad = 2},
        {.kind = CLASP_LAYER_RELU},
        {.kind = CLASP_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2},
        {.kind = CLASP_LAYER_CONV2D, .out = 64, .kernel = 5, .stride = 1, .pad = 2},
        {.kind = CLASP_LAYER_RELU},
        {.kind = CLASP_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2},
        {.kind = CLASP_LAYER_FLATTEN},
        {.kind = CLASP_LAYER_LINEAR, .out = 1024},
        {.kind = CLASP_LAYER_RELU},
        {.kind = CLASP_LAYER_LINEAR, .out = num_classes},
    };
    return clasp_model_new(ctx, madry, (int)(sizeof madry / sizeof madry[0]), in_c, in_h, in_w,
                           out);
}

void clasp_model_arch(const clasp_model *m, char *buf, size_t size)
{
    if (m->preset[0]) {
        snprintf(buf, size, "%s", m->preset);
        return;
    }
    clasp_layer_spec *ls = malloc((size_t)m->n_nodes * sizeof *ls);
    if (!ls) {
        if (size) buf[0] = '\0';
        return;
    }
    for (int i = 0; i < m->n_nodes; i++) ls[i] = m->nodes[i].spec;
    clasp_arch_format(ls, m->n_nodes, buf, size);
    free(ls);
}

void clasp_model_free(clasp_model *m)
{
    if (!m) return;
    for (int i = 0; m->nodes && i < m->n_nodes; i++) {
        clasp_tensor_free(m->nodes[i].out_t);
        clasp_tensor_free(m->nodes[i].grad_t);
        for (int j = 0; j < CLASP_NODE_MAX_SCRATCH; j++) clasp_tensor_free(m->nodes[i].scratch[j]);
    }
    for (int i = 0; i < m->n_params; i++) {
        clasp_tensor_free(m->params[i]);
        clasp_tensor_free(m->grads[i]);
    }
    for (int i = 0; i < m->n_buffers; i++) clasp_tensor_free(m->buffers[i].t);
    for (int j = 0; j < CLASP_LAYER_MAX_INPUTS; j++) clasp_tensor_free(m->fan_scratch[j]);
    for (int j = 0; j < m->n_pool; j++) clasp_tensor_free(m->grad_pool[j]);
    free(m->grad_pool);
    free(m->last_use);
    free(m->params), free(m->grads), free(m->names), free(m->decay), free(m->buffers);
    clasp_tensor_free(m->calib_dev);
    clasp_tensor_free(m->calib_out);
    clasp_tensor_free(m->dlogits);
    clasp_tensor_free(m->loss);
    free(m->calib_offsets);
    free(m->grad_ready);
    free(m->nodes);
    free(m);
}

clasp_status layer_init_default(clasp_model *m, int weight, int bias, uint64_t seed)
{
    float bound = 1.0f / sqrtf((float)clasp_tensor_per_example(m->params[weight]));
    for (int k = 0; k < 2; k++) {
        int p = k ? bias : weight;
        if (p < 0) continue;
        clasp_tensor *t = m->params[p];
        float *h = malloc((t->numel ? t->numel : 1) * sizeof *h);
        if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        /* One stream per parameter tensor, so adding a layer does not
         * shift the others' initial values. */
        clasp_rng rng = clasp_rng_make(seed, (uint64_t)p + 1);
        clasp_rng_uniform_host(&rng, h, t->numel, -bound, bound);
        clasp_status st = clasp_tensor_write(t, h);
        free(h);
        CLASP_TRY(st);
    }
    return CLASP_OK;
}

clasp_status clasp_model_init(clasp_model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_nodes; i++) {
        clasp_node *n = &m->nodes[i];
        if (n->ops->init) CLASP_TRY(n->ops->init(m, n, seed));
    }
    return CLASP_OK;
}

void clasp_model_input_shape(const clasp_model *m, int *c, int *h, int *w)
{
    *c = m->in_c, *h = m->in_h, *w = m->in_w;
}

int clasp_model_num_classes(const clasp_model *m)
{
    return m->num_classes;
}
void clasp_model_set_train(clasp_model *m, int train)
{
    m->train = train != 0;
}
int clasp_model_is_train(const clasp_model *m)
{
    return m->train;
}
int clasp_model_num_params(const clasp_model *m)
{
    return m->n_params;
}
clasp_tensor *clasp_model_param(clasp_model *m, int i)
{
    /* The caller may write it: what was derived from it is stale. */
    clasp_tensor_touch(m->params[i]);
    return m->params[i];
}
clasp_tensor *clasp_model_grad(clasp_model *m, int i)
{
    return m->grads[i];
}
const char *clasp_model_param_name(const clasp_model *m, int i)
{
    return m->names[i];
}
int clasp_model_param_decays(const clasp_model *m, int i)
{
    return m->decay[i];
}
int clasp_model_num_buffers(const clasp_model *m)
{
    return m->n_buffers;
}
const char *clasp_model_buffer_name(const clasp_model *m, int i)
{
    return m->buffers[i].name;
}
clasp_tensor *clasp_model_buffer(clasp_model *m, int i)
{
    return m->buffers[i].t;
}
int64_t *clasp_model_buffer_i64(clasp_model *m, int i)
{
    return m->buffers[i].is_i64 ? &m->buffers[i].i64 : NULL;
}

size_t clasp_model_param_count(const clasp_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i]->numel;
    return n;
}

clasp_status clasp_model_set_calibration(clasp_model *m, const float *offsets, float temperature)
{
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return clasp_error(CLASP_ERR_INVALID, "calibration temperature must be > 0, got %g",
                           (double)temperature);
    if (!offsets && temperature == 1.0f) {
        m->calibrated = 0;
        m->calib_t = 1.0f;
        return CLASP_OK;
    }
    if (!m->calib_offsets) {
        m->calib_offsets = calloc((size_t)m->num_classes, sizeof(float));
        if (!m->calib_offsets) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    if (!m->calib_dev) CLASP_TRY(clasp_tensor_new1(m->ctx, m->num_classes, &m->calib_dev));
    for (int k = 0; k < m->num_classes; k++) m->calib_offsets[k] = offsets ? offsets[k] : 0.0f;
    CLASP_TRY(clasp_tensor_write(m->calib_dev, m->calib_offsets));
    m->calib_t = temperature;
    m->calibrated = 1;
    return CLASP_OK;
}

int clasp_model_calibration(const clasp_model *m, float *offsets, float *temperature)
{
    if (!m->calibrated) return 0;
    if (offsets) memcpy(offsets, m->calib_offsets, (size_t)m->num_classes * sizeof *offsets);
    if (temperature) *temperature = m->calib_t;
    return 1;
}

clasp_status clasp_model_class_weight_norms(clasp_model *m, float *out)
{
    const clasp_node *last = NULL;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].spec.kind == CLASP_LAYER_LINEAR) last = &m->nodes[i];
    if (!last || last->param[0] < 0 || last->out.c != m->num_classes)
        return clasp_error(CLASP_ERR_NOT_FOUND, "model: no linear layer with %d outputs",
                           m->num_classes);
    const clasp_tensor *w = m->params[last->param[0]];
    size_t in = w->numel / (size_t)m->num_classes;
    float *h = malloc(w->numel * sizeof *h);
    if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st = clasp_tensor_read(w, h);
    for (int k = 0; st == CLASP_OK && k < m->num_classes; k++) {
        double s = 0;
        for (size_t j = 0; j < in; j++)
            s += (double)h[(size_t)k * in + j] * (double)h[(size_t)k * in + j];
        out[k] = (float)sqrt(s);
    }
    free(h);
    return st;
}

/* ---- forward ------------------------------------------------------------- */

clasp_status layer_ensure_out(clasp_model *m, const clasp_node *n, clasp_tensor **t)
{
    if (n->out.is4d)
        return clasp_tensor_ensure(m->ctx, t, CLASP_F32, 4,
                                   (int[]){m->batch, n->out.c, n->out.h, n->out.w});
    return clasp_tensor_ensure(m->ctx, t, CLASP_F32, 2, (int[]){m->batch, n->out.c});
}

/* The tensor holding node i's output (i = -1: the model input). */
static const clasp_tensor *node_out(const clasp_model *m, int i)
{
    return i < 0 ? m->input : m->nodes[m->nodes[i].owner].out_t;
}

/* The pool's smallest buffer that holds `want` floats without
 * reallocating, taken out of it (NULL: none). */
static clasp_tensor *pool_take(clasp_model *m, size_t want)
{
    int best = -1;
    for (int j = 0; j < m->n_pool; j++) {
        size_t cap = m->grad_pool[j]->capacity;
        if (cap >= want && cap <= 2 * want + 64 && (best < 0 || cap < m->grad_pool[best]->capacity))
            best = j;
    }
    if (best < 0) return NULL;
    clasp_tensor *t = m->grad_pool[best];
    m->grad_pool[best] = m->grad_pool[--m->n_pool];
    return t;
}

static void pool_give(clasp_model *m, clasp_tensor **t)
{
    if (!*t) return;
    m->grad_pool[m->n_pool++] = *t;
    *t = NULL;
}

/* The pool, made on first use; emptied when the batch changes, rather than
 * keeping buffers of both sizes. Holds at most a buffer per node for the
 * outputs and one for the gradients. */
static clasp_status pool_ready(clasp_model *m)
{
    if (!m->grad_pool) {
        m->grad_pool = calloc(2 * (size_t)m->n_nodes, sizeof *m->grad_pool);
        m->last_use = malloc((size_t)m->n_nodes * sizeof *m->last_use);
        if (!m->grad_pool || !m->last_use)
            return clasp_error(CLASP_ERR_NOMEM, "model: out of memory");
    }
    if (m->pool_batch != m->batch) {
        for (int j = 0; j < m->n_pool; j++) clasp_tensor_free(m->grad_pool[j]);
        m->n_pool = 0;
        m->pool_batch = m->batch;
    }
    return CLASP_OK;
}

/* Node n's output or gradient buffer, from the pool when it has none. */
static clasp_status node_buffer(clasp_model *m, const clasp_node *n, clasp_tensor **t)
{
    if (!*t && m->n_pool) {
        size_t want = (size_t)m->batch * (size_t)n->out.c;
        if (n->out.is4d) want *= (size_t)n->out.h * (size_t)n->out.w;
        *t = pool_take(m, want);
    }
    return layer_ensure_out(m, n, t);
}

static clasp_status owner_grad(clasp_model *m, int o, clasp_tensor **g)
{
    CLASP_TRY(node_buffer(m, &m->nodes[o], &m->nodes[o].grad_t));
    *g = m->nodes[o].grad_t;
    return CLASP_OK;
}

/* Owner o's gradient is read by no later step of this backward. */
static void release_grad(clasp_model *m, int o)
{
    pool_give(m, &m->nodes[o].grad_t);
}

static clasp_status forward_pass(clasp_model *m, const clasp_tensor *x, int light,
                                 const clasp_tensor **logits);

clasp_status clasp_model_forward(clasp_model *m, const clasp_tensor *x, const clasp_tensor **logits)
{
    return forward_pass(m, x, 0, logits);
}

/* light (eval mode only): every output but the logits goes back to the
 * pool after its last reader, as no backward follows. */
static clasp_status forward_pass(clasp_model *m, const clasp_tensor *x, int light,
                                 const clasp_tensor **logits)
{
    if (x->dtype != CLASP_F32 || x->ndim != 4 || x->shape[1] != m->in_c || x->shape[2] != m->in_h ||
        x->shape[3] != m->in_w)
        return clasp_error(CLASP_ERR_INVALID, "model: input must be [N,%d,%d,%d]", m->in_c, m->in_h,
                           m->in_w);
    m->input = x;
    m->batch = x->shape[0];
    int fold = !m->train && !m->fold_off && clasp_ctx_options(m->ctx)->fold;
    if (fold != m->folded) set_owners(m, fold);
    light = light && !m->train;
    m->light = 0;
    CLASP_TRY(pool_ready(m));
    int final = m->nodes[m->n_nodes - 1].owner;
    if (light) {
        for (int i = 0; i < m->n_nodes; i++) m->last_use[i] = -1;
        for (int i = 0; i < m->n_nodes; i++) {
            const clasp_node *n = &m->nodes[i];
            m->last_use[n->owner] = i; /* an in-place node writes it */
            for (int j = 0; j < n->n_in; j++)
                if (n->in_idx[j] >= 0) m->last_use[m->nodes[n->in_idx[j]].owner] = i;
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        clasp_node *n = &m->nodes[i];
        const clasp_tensor *in[CLASP_LAYER_MAX_INPUTS] = {NULL, NULL};
        for (int j = 0; j < n->n_in; j++) in[j] = node_out(m, n->in_idx[j]);
        clasp_tensor *out;
        if (n->in_place) {
            out = (clasp_tensor *)in[0];
        } else {
            CLASP_TRY(node_buffer(m, n, &n->out_t));
            out = n->out_t;
        }
        CLASP_TRY(n->ops->forward(m, n, in, out));
        for (int j = 0; light && j < n->n_in; j++) {
            int src = n->in_idx[j];
            if (src < 0) continue;
            int o = m->nodes[src].owner;
            /* An in-place node's input is its own output: kept. */
            if (o != final && o != n->owner && m->last_use[o] == i)
                pool_give(m, &m->nodes[o].out_t);
        }
    }
    m->light = light;
    const clasp_tensor *z = node_out(m, m->n_nodes - 1);
    if (!m->train && m->calibrated) {
        CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->calib_out, CLASP_F32, 2,
                                      (int[]){m->batch, m->num_classes}));
        CLASP_TRY(clasp_tensor_copy(m->calib_out, z));
        /* Offsets only: the temperature never changes a prediction, and
         * dividing the logits every attack differentiates by a small T
         * would saturate the softmax and hide the gradient (masking). */
        CLASP_TRY(clasp_logit_adjust(m->calib_out, m->calib_dev, 1.0f));
        z = m->calib_out;
    }
    m->logits = z;
    *logits = z;
    return CLASP_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* The gradient buffer of owner node o (its output's shape). */
static clasp_status backward_node(clasp_model *m, int i, clasp_tensor *dx);

clasp_status clasp_model_backward(clasp_model *m, const clasp_tensor *dlogits, int param_grads,
                                  clasp_tensor *dx)
{
    if (!m->input) return clasp_error(CLASP_ERR_INVALID, "model: backward before forward");
    if (dlogits->numel != (size_t)m->batch * (size_t)m->num_classes)
        return clasp_error(CLASP_ERR_INVALID, "model: dlogits has %zu values, expected %d x %d",
                           dlogits->numel, m->batch, m->num_classes);
    if (dx && dx->numel != m->input->numel)
        return clasp_error(CLASP_ERR_INVALID, "model: dx has %zu values, the input %zu", dx->numel,
                           m->input->numel);
    m->want_param_grads = param_grads != 0;
    if (m->light && !(m->want_param_grads && m->folded)) {
        /* A prediction kept no activations (eval mode: the forward again
         * changes nothing). */
        const clasp_tensor *z;
        CLASP_TRY(clasp_model_forward(m, m->input, &z));
    }
    if (m->want_param_grads && m->folded) {
        /* A folded forward kept neither the convolutions' own outputs
         * nor anything a BatchNorm's parameter gradient needs: the
         * forward runs again unfolded (same values to rounding). */
        const clasp_tensor *z;
        m->fold_off = 1;
        clasp_status st = clasp_model_forward(m, m->input, &z);
        m->fold_off = 0;
        CLASP_TRY(st);
    }
    /* grad_ready[o + 1]: owner o's gradient holds a value in this pass
     * (index 0: the model input, i.e. dx). */
    memset(m->grad_ready, 0, (size_t)m->n_nodes + 1);
    /* The forward readied the pool for this batch; gradients an
     * interrupted backward left with their owners go back first. */
    for (int i = 0; i < m->n_nodes; i++) release_grad(m, i);
    int last = m->nodes[m->n_nodes - 1].owner;
    clasp_tensor *g;
    CLASP_TRY(owner_grad(m, last, &g));
    /* The caller's dlogits is copied once, so in-place backwards never
     * write into it. */
    CLASP_TRY(clasp_tensor_copy(g, dlogits));
    m->grad_ready[last + 1] = 1;
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        clasp_status st = backward_node(m, i, dx);
        /* An owner comes before the in-place nodes that share its
         * buffers: past it, its gradient is read no more. */
        if (m->nodes[i].owner == i) release_grad(m, i);
        CLASP_TRY(st);
    }
    /* Parameters no gradient reached (a branch the logits do not depend
     * on) have gradient zero, as the caller will read them all. */
    for (int i = 0; m->want_param_grads && i < m->n_nodes; i++) {
        const clasp_node *n = &m->nodes[i];
        if (m->grad_ready[n->owner + 1]) continue;
        for (int j = 0; j < CLASP_NODE_MAX_PARAMS && n->param[j] >= 0; j++)
            CLASP_TRY(clasp_tensor_fill(m->grads[n->param[j]], 0.0f));
    }
    return CLASP_OK;
}

/* Node i's step of the backward: its inputs' gradients from its output's. */
static clasp_status backward_node(clasp_model *m, int i, clasp_tensor *dx)
{
    clasp_node *n = &m->nodes[i];
    if (!m->grad_ready[n->owner + 1]) return CLASP_OK; /* nothing flows back through it */
    clasp_tensor *dout = m->nodes[n->owner].grad_t;
    clasp_tensor *din[CLASP_LAYER_MAX_INPUTS] = {NULL, NULL},
                 *target[CLASP_LAYER_MAX_INPUTS] = {NULL, NULL};
    int any = m->want_param_grads && n->param[0] >= 0;
    for (int j = 0; j < n->n_in; j++) {
        int src = n->in_idx[j];
        if (n->in_place) {
            din[j] = dout; /* the input's gradient is this very buffer */
            any = 1;
            continue;
        }
        int o = src < 0 ? -1 : m->nodes[src].owner;
        clasp_tensor *t = NULL;
        /* Only gradients someone asked for: the input's (dx), or on the
             * way to a parameter. */
        if (src < 0) t = dx;
        else if (dx || (m->want_param_grads && m->nodes[src].params_upstream))
            CLASP_TRY(owner_grad(m, o, &t));
        if (!t) continue;
        any = 1;
        if (!m->grad_ready[o + 1]) {
            din[j] = t; /* the first contribution is written directly */
            m->grad_ready[o + 1] = 1;
        } else {
            /* A tensor read by several nodes: this node's share goes
                 * through scratch and is added. */
            CLASP_TRY(
                clasp_tensor_ensure(m->ctx, &m->fan_scratch[j], CLASP_F32, t->ndim, t->shape));
            din[j] = m->fan_scratch[j];
            target[j] = t;
        }
    }
    if (!any) return CLASP_OK;
    const clasp_tensor *in[CLASP_LAYER_MAX_INPUTS] = {NULL, NULL};
    for (int j = 0; j < n->n_in; j++) in[j] = node_out(m, n->in_idx[j]);
    CLASP_TRY(n->ops->backward(m, n, in, node_out(m, i), dout, din));
    for (int j = 0; j < n->n_in; j++)
        if (target[j]) CLASP_TRY(clasp_axpy(target[j], 1.0f, din[j]));
    return CLASP_OK;
}

clasp_status clasp_model_predict(clasp_model *m, const clasp_tensor *x, clasp_tensor *pred)
{
    const clasp_tensor *z;
    CLASP_TRY(forward_pass(m, x, 1, &z));
    return clasp_argmax_rows(z, pred);
}

clasp_status clasp_model_input_grad(clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                                    float t, clasp_tensor *dx, clasp_tensor *pred,
                                    clasp_tensor *loss)
{
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, x, &z));
    int n = x->shape[0];
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->dlogits, CLASP_F32, 2, (int[]){n, m->num_classes}));
    CLASP_TRY(clasp_softmax_xent(z, y, t, NULL, 1.0f, loss, m->dlogits));
    if (pred) CLASP_TRY(clasp_argmax_rows(z, pred));
    return clasp_model_backward(m, m->dlogits, 0, dx);
}

clasp_ctx *clasp_model_ctx(const clasp_model *m)
{
    return m ? m->ctx : NULL;
}
