/* Sequential model: shapes, parameters, forward and backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

static clasp_status plan_layers(clasp_model *m)
{
    int c = m->in_c, h = m->in_h, w = m->in_w, is4d = 1;
    int n_conv = 0, n_fc = 0;
    for (int i = 0; i < m->n_layers; i++) {
        clasp_layer *L = &m->layers[i];
        clasp_layer_spec *s = &L->spec;
        L->in_c = c, L->in_h = h, L->in_w = w;
        L->param = -1;
        switch (s->kind) {
        case CLASP_LAYER_CONV2D: {
            if (!is4d) return clasp_error(CLASP_ERR_CONFIG, "layer %d: conv after flatten", i + 1);
            if (s->stride <= 0) s->stride = 1;
            int oh = (h + 2 * s->pad - s->kernel) / s->stride + 1;
            int ow = (w + 2 * s->pad - s->kernel) / s->stride + 1;
            if (h + 2 * s->pad < s->kernel || oh <= 0 || ow <= 0)
                return clasp_error(CLASP_ERR_CONFIG,
                                   "layer %d: conv %dx%d does not fit a %dx%d input", i + 1,
                                   s->kernel, s->kernel, h, w);
            if (m->n_params + 2 > CLASP_MODEL_MAX_PARAMS)
                return clasp_error(CLASP_ERR_CONFIG, "too many layers with parameters");
            L->param = m->n_params;
            n_conv++;
            snprintf(m->names[m->n_params++], 32, "conv%d.weight", n_conv);
            snprintf(m->names[m->n_params++], 32, "conv%d.bias", n_conv);
            c = s->out, h = oh, w = ow;
            break;
        }
        case CLASP_LAYER_MAXPOOL2D:
            if (!is4d) return clasp_error(CLASP_ERR_CONFIG, "layer %d: max-pool after flatten", i + 1);
            if (s->stride <= 0) s->stride = s->kernel;
            if (h < s->kernel || w < s->kernel)
                return clasp_error(CLASP_ERR_CONFIG, "layer %d: max-pool %d on a %dx%d input",
                                   i + 1, s->kernel, h, w);
            h = (h - s->kernel) / s->stride + 1;
            w = (w - s->kernel) / s->stride + 1;
            break;
        case CLASP_LAYER_RELU:
            L->alias = 1;
            break;
        case CLASP_LAYER_FLATTEN:
            L->alias = 1;
            c = c * h * w, h = 1, w = 1, is4d = 0;
            break;
        case CLASP_LAYER_LINEAR:
            if (is4d && (h != 1 || w != 1))
                return clasp_error(CLASP_ERR_CONFIG,
                                   "layer %d: fully connected layer needs a flatten before it", i + 1);
            if (m->n_params + 2 > CLASP_MODEL_MAX_PARAMS)
                return clasp_error(CLASP_ERR_CONFIG, "too many layers with parameters");
            L->param = m->n_params;
            n_fc++;
            snprintf(m->names[m->n_params++], 32, "fc%d.weight", n_fc);
            snprintf(m->names[m->n_params++], 32, "fc%d.bias", n_fc);
            c = s->out, h = 1, w = 1, is4d = 0;
            break;
        default:
            return clasp_error(CLASP_ERR_CONFIG, "layer %d: unknown kind %d", i + 1, (int)s->kind);
        }
        L->out_c = c, L->out_h = h, L->out_w = w, L->out_4d = is4d;
    }
    if (m->n_layers == 0 || is4d)
        return clasp_error(CLASP_ERR_CONFIG, "the model must end with a fully connected layer");
    m->num_classes = c;
    return CLASP_OK;
}

static clasp_status alloc_params(clasp_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        clasp_layer *L = &m->layers[i];
        if (L->param < 0) continue;
        int wshape[4], wdims, bshape[1] = {L->spec.out};
        if (L->spec.kind == CLASP_LAYER_CONV2D) {
            wdims = 4;
            wshape[0] = L->spec.out, wshape[1] = L->in_c;
            wshape[2] = wshape[3] = L->spec.kernel;
        } else {
            wdims = 2;
            wshape[0] = L->spec.out, wshape[1] = L->in_c * L->in_h * L->in_w;
        }
        CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, wdims, wshape, &m->params[L->param]));
        CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, wdims, wshape, &m->grads[L->param]));
        CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, 1, bshape, &m->params[L->param + 1]));
        CLASP_TRY(clasp_tensor_new(m->ctx, CLASP_F32, 1, bshape, &m->grads[L->param + 1]));
        CLASP_TRY(clasp_tensor_fill(m->params[L->param + 1], 0.0f));
    }
    return CLASP_OK;
}

clasp_status clasp_model_new(clasp_ctx *ctx, const clasp_layer_spec *layers, int n_layers,
                             int in_c, int in_h, int in_w, clasp_model **out)
{
    *out = NULL;
    if (in_c <= 0 || in_h <= 0 || in_w <= 0 || n_layers <= 0)
        return clasp_error(CLASP_ERR_INVALID, "model: bad input shape %dx%dx%d or no layers",
                           in_c, in_h, in_w);
    clasp_model *m = calloc(1, sizeof *m);
    if (!m) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    m->layers = calloc((size_t)n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    m->ctx = ctx;
    m->in_c = in_c, m->in_h = in_h, m->in_w = in_w;
    m->n_layers = n_layers;
    m->train = 1;
    m->calib_t = 1.0f;
    for (int i = 0; i < n_layers; i++) m->layers[i].spec = layers[i];
    clasp_status st = plan_layers(m);
    if (st == CLASP_OK) st = alloc_params(m);
    if (st != CLASP_OK) {
        clasp_model_free(m);
        return st;
    }
    *out = m;
    return CLASP_OK;
}

clasp_status clasp_model_new_default(clasp_ctx *ctx, int in_c, int in_h, int in_w,
                                     int num_classes, clasp_model **out)
{
    const clasp_layer_spec madry[] = {
        {CLASP_LAYER_CONV2D, 32, 5, 1, 2}, {CLASP_LAYER_RELU, 0, 0, 0, 0},
        {CLASP_LAYER_MAXPOOL2D, 0, 2, 2, 0}, {CLASP_LAYER_CONV2D, 64, 5, 1, 2},
        {CLASP_LAYER_RELU, 0, 0, 0, 0}, {CLASP_LAYER_MAXPOOL2D, 0, 2, 2, 0},
        {CLASP_LAYER_FLATTEN, 0, 0, 0, 0}, {CLASP_LAYER_LINEAR, 1024, 0, 0, 0},
        {CLASP_LAYER_RELU, 0, 0, 0, 0}, {CLASP_LAYER_LINEAR, num_classes, 0, 0, 0},
    };
    return clasp_model_new(ctx, madry, (int)(sizeof madry / sizeof madry[0]), in_c, in_h, in_w,
                           out);
}

void clasp_model_arch(const clasp_model *m, char *buf, size_t size)
{
    clasp_layer_spec ls[256];
    int n = m->n_layers < 256 ? m->n_layers : 256;
    for (int i = 0; i < n; i++) ls[i] = m->layers[i].spec;
    clasp_arch_format(ls, n, buf, size);
}

void clasp_model_free(clasp_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) {
        clasp_tensor_free(m->layers[i].out);
        clasp_tensor_free(m->layers[i].grad);
        clasp_tensor_free(m->layers[i].idx);
    }
    for (int i = 0; i < m->n_params; i++) {
        clasp_tensor_free(m->params[i]);
        clasp_tensor_free(m->grads[i]);
    }
    clasp_tensor_free(m->calib_dev);
    clasp_tensor_free(m->calib_out);
    clasp_tensor_free(m->calib_grad);
    clasp_tensor_free(m->dlogits);
    clasp_tensor_free(m->loss);
    free(m->calib_offsets);
    free(m->layers);
    free(m);
}

clasp_status clasp_model_init(clasp_model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_layers; i++) {
        clasp_layer *L = &m->layers[i];
        if (L->param < 0) continue;
        /* One stream per parameter tensor, so adding a layer does not
         * shift the others' initial values. */
        for (int j = 0; j < 2; j++) {
            clasp_tensor *t = m->params[L->param + j];
            float bound = 1.0f / sqrtf((float)clasp_tensor_per_example(m->params[L->param]));
            float *h = malloc(t->numel * sizeof *h);
            if (!h) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
            clasp_rng rng = clasp_rng_make(seed, (uint64_t)(L->param + j) + 1);
            clasp_rng_uniform_host(&rng, h, t->numel, -bound, bound);
            clasp_status st = clasp_tensor_write(t, h);
            free(h);
            CLASP_TRY(st);
        }
    }
    return CLASP_OK;
}

void clasp_model_input_shape(const clasp_model *m, int *c, int *h, int *w)
{
    *c = m->in_c, *h = m->in_h, *w = m->in_w;
}

int clasp_model_num_classes(const clasp_model *m) { return m->num_classes; }
void clasp_model_set_train(clasp_model *m, int train) { m->train = train != 0; }
int clasp_model_is_train(const clasp_model *m) { return m->train; }
int clasp_model_num_params(const clasp_model *m) { return m->n_params; }
clasp_tensor *clasp_model_param(clasp_model *m, int i) { return m->params[i]; }
clasp_tensor *clasp_model_grad(clasp_model *m, int i) { return m->grads[i]; }
const char *clasp_model_param_name(const clasp_model *m, int i) { return m->names[i]; }

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

static const clasp_tensor *layer_input(const clasp_model *m, int i)
{
    for (int j = i - 1; j >= 0; j--)
        if (!m->layers[j].alias) return m->layers[j].out;
    return m->input;
}

static clasp_status ensure_out(clasp_model *m, clasp_layer *L, int n, clasp_tensor **t)
{
    if (L->out_4d)
        return clasp_tensor_ensure(m->ctx, t, CLASP_F32, 4, (int[]){n, L->out_c, L->out_h, L->out_w});
    return clasp_tensor_ensure(m->ctx, t, CLASP_F32, 2, (int[]){n, L->out_c});
}

clasp_status clasp_model_forward(clasp_model *m, const clasp_tensor *x, const clasp_tensor **logits)
{
    if (x->dtype != CLASP_F32 || x->ndim != 4 || x->shape[1] != m->in_c || x->shape[2] != m->in_h ||
        x->shape[3] != m->in_w)
        return clasp_error(CLASP_ERR_INVALID, "model: input must be [N,%d,%d,%d]", m->in_c, m->in_h,
                           m->in_w);
    int n = x->shape[0];
    m->input = x;
    m->batch = n;
    for (int i = 0; i < m->n_layers; i++) {
        clasp_layer *L = &m->layers[i];
        const clasp_tensor *in = layer_input(m, i);
        /* A leading relu must not write into the caller's x. */
        if (L->alias && in == x && L->spec.kind == CLASP_LAYER_RELU) L->alias = 0;
        if (L->alias) {
            if (L->spec.kind == CLASP_LAYER_RELU)
                CLASP_TRY(clasp_relu_forward(in, (clasp_tensor *)in));
            continue;
        }
        CLASP_TRY(ensure_out(m, L, n, &L->out));
        const clasp_tensor *w = L->param >= 0 ? m->params[L->param] : NULL;
        const clasp_tensor *b = L->param >= 0 ? m->params[L->param + 1] : NULL;
        switch (L->spec.kind) {
        case CLASP_LAYER_CONV2D:
            CLASP_TRY(clasp_conv2d_forward(in, w, b, L->spec.stride, L->spec.pad, L->out));
            break;
        case CLASP_LAYER_LINEAR: CLASP_TRY(clasp_linear_forward(in, w, b, L->out)); break;
        case CLASP_LAYER_MAXPOOL2D:
            CLASP_TRY(clasp_tensor_ensure(m->ctx, &L->idx, CLASP_I32, 4, L->out->shape));
            CLASP_TRY(clasp_maxpool2d_forward(in, L->spec.kernel, L->spec.stride, L->out, L->idx));
            break;
        case CLASP_LAYER_RELU: CLASP_TRY(clasp_relu_forward(in, L->out)); break;
        case CLASP_LAYER_FLATTEN: CLASP_TRY(clasp_tensor_copy(L->out, in)); break;
        }
    }
    const clasp_tensor *z = layer_input(m, m->n_layers);
    if (!m->train && m->calibrated) {
        CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->calib_out, CLASP_F32, 2, (int[]){n, m->num_classes}));
        CLASP_TRY(clasp_tensor_copy(m->calib_out, z));
        CLASP_TRY(clasp_logit_adjust(m->calib_out, m->calib_dev, m->calib_t));
        z = m->calib_out;
    }
    m->logits = z;
    *logits = z;
    return CLASP_OK;
}

/* Gradient buffer for the output of layer i (walking back over aliases). */
static clasp_status grad_of_output(clasp_model *m, int i, clasp_tensor **g)
{
    while (i >= 0 && m->layers[i].alias) i--;
    if (i < 0) {
        *g = NULL;
        return CLASP_OK;
    }
    CLASP_TRY(ensure_out(m, &m->layers[i], m->batch, &m->layers[i].grad));
    *g = m->layers[i].grad;
    return CLASP_OK;
}

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
    /* dy: gradient w.r.t. the current layer's output. The caller's dlogits is
     * copied once so in-place layer backwards never write into it. */
    clasp_tensor *dy;
    CLASP_TRY(grad_of_output(m, m->n_layers - 1, &dy));
    CLASP_TRY(clasp_tensor_copy(dy, dlogits));
    if (!m->train && m->calibrated && m->calib_t != 1.0f)
        CLASP_TRY(clasp_scale(dy, 1.0f / m->calib_t));
    for (int i = m->n_layers - 1; i >= 0; i--) {
        clasp_layer *L = &m->layers[i];
        const clasp_tensor *in = layer_input(m, i);
        int first = 1; /* no layer with work below this one */
        for (int j = i - 1; j >= 0; j--)
            if (!m->layers[j].alias) first = 0;
        if (L->alias) {
            if (L->spec.kind == CLASP_LAYER_RELU) {
                /* The relu output is its (aliased) input buffer. */
                if (first && dx) {
                    CLASP_TRY(clasp_relu_backward(in, dy, dx));
                    return CLASP_OK;
                }
                CLASP_TRY(clasp_relu_backward(in, dy, dy));
            } else if (first && dx) {
                return clasp_tensor_copy(dx, dy);
            }
            continue;
        }
        clasp_tensor *din = NULL;
        if (!first) CLASP_TRY(grad_of_output(m, i - 1, &din));
        else din = dx;
        clasp_tensor *dw = param_grads && L->param >= 0 ? m->grads[L->param] : NULL;
        clasp_tensor *db = param_grads && L->param >= 0 ? m->grads[L->param + 1] : NULL;
        const clasp_tensor *w = L->param >= 0 ? m->params[L->param] : NULL;
        switch (L->spec.kind) {
        case CLASP_LAYER_CONV2D:
            if (din || dw)
                CLASP_TRY(clasp_conv2d_backward(in, w, dy, L->spec.stride, L->spec.pad, din, dw, db));
            break;
        case CLASP_LAYER_LINEAR:
            if (din || dw) CLASP_TRY(clasp_linear_backward(in, w, dy, din, dw, db));
            break;
        case CLASP_LAYER_MAXPOOL2D:
            if (din) CLASP_TRY(clasp_maxpool2d_backward(dy, L->idx, din));
            break;
        case CLASP_LAYER_RELU:
            if (din) CLASP_TRY(clasp_relu_backward(L->out, dy, din));
            break;
        case CLASP_LAYER_FLATTEN:
            if (din) CLASP_TRY(clasp_tensor_copy(din, dy));
            break;
        }
        if (first) break;
        dy = din;
    }
    return CLASP_OK;
}

clasp_status clasp_model_predict(clasp_model *m, const clasp_tensor *x, clasp_tensor *pred)
{
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, x, &z));
    return clasp_argmax_rows(z, pred);
}

clasp_status clasp_model_input_grad(clasp_model *m, const clasp_tensor *x, const clasp_tensor *y,
                                    float t, clasp_tensor *dx, clasp_tensor *pred, clasp_tensor *loss)
{
    const clasp_tensor *z;
    CLASP_TRY(clasp_model_forward(m, x, &z));
    int n = x->shape[0];
    CLASP_TRY(clasp_tensor_ensure(m->ctx, &m->dlogits, CLASP_F32, 2, (int[]){n, m->num_classes}));
    CLASP_TRY(clasp_softmax_xent(z, y, t, NULL, 1.0f, loss, m->dlogits));
    if (pred) CLASP_TRY(clasp_argmax_rows(z, pred));
    return clasp_model_backward(m, m->dlogits, 0, dx);
}
