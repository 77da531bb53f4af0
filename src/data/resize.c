/* PIL-style resampling and torchvision's crops, on 8-bit RGB images.
 *
 * The resize follows the algorithm of PIL's Resample.c as documented by
 * its behaviour: per output pixel a window of the filter's support times
 * max(1, in/out) around the centre (x + 0.5) * in/out, weights evaluated at
 * (i - centre + 0.5) / max(1, in/out) and normalised, turned into
 * fixed-point integers of 22 fractional bits (rounded half away from zero),
 * summed with a rounding offset and clipped to 0..255; horizontal pass
 * first, its 8-bit result the vertical pass's input. */
#include "data/imagefolder_internal.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic with a = -0.5, as PIL's BICUBIC. */
static double bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Fixed-point weights of every output position along one axis: out
 * positions, each with bounds[2*i] (first input) and bounds[2*i+1] (count),
 * and `ksize` weights from k[i*ksize]. */
typedef struct axis {
    int ksize;
    int *bounds;
    int32_t *k;
} axis;

static void axis_free(axis *a)
{
    free(a->bounds);
    free(a->k);
}

static clasp_status axis_make(int in, int out, clasp_filter f, axis *a)
{
    double (*fn)(double) = f == CLASP_FILTER_BICUBIC ? bicubic : bilinear;
    double support = f == CLASP_FILTER_BICUBIC ? 2.0 : 1.0;
    double scale = (double)in / out, filterscale = scale < 1.0 ? 1.0 : scale;
    support *= filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->bounds = malloc((size_t)out * 2 * sizeof *a->bounds);
    a->k = malloc((size_t)out * (size_t)a->ksize * sizeof *a->k);
    double *pre = malloc((size_t)a->ksize * sizeof *pre);
    if (!a->bounds || !a->k || !pre) {
        free(pre);
        axis_free(a);
        return clasp_error(CLASP_ERR_NOMEM, "resize: out of memory");
    }
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax;
        if (xmin < 0) xmin = 0;
        xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = fn((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = a->k + (size_t)xx * (size_t)a->ksize;
        for (int x = 0; x < a->ksize; x++) {
            double w = x < xmax && ww != 0.0 ? pre[x] / ww : 0.0;
            double v = w * (double)(1 << PRECISION_BITS);
            k[x] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
        }
        a->bounds[2 * xx] = xmin;
        a->bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    return CLASP_OK;
}

static unsigned char clip8(int64_t v)
{
    v >>= PRECISION_BITS;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void pass_h(const clasp_rgb *in, const axis *a, clasp_rgb *out)
{
    for (int y = 0; y < out->h; y++) {
        const unsigned char *r = in->px + (size_t)y * (size_t)in->w * 3;
        unsigned char *o = out->px + (size_t)y * (size_t)out->w * 3;
        for (int x = 0; x < out->w; x++) {
            int xmin = a->bounds[2 * x], n = a->bounds[2 * x + 1];
            const int32_t *k = a->k + (size_t)x * (size_t)a->ksize;
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int i = 0; i < n; i++) {
                const unsigned char *p = r + (size_t)(xmin + i) * 3;
                s0 += (int64_t)p[0] * k[i];
                s1 += (int64_t)p[1] * k[i];
                s2 += (int64_t)p[2] * k[i];
            }
            o[3 * x] = clip8(s0);
            o[3 * x + 1] = clip8(s1);
            o[3 * x + 2] = clip8(s2);
        }
    }
}

static void pass_v(const clasp_rgb *in, const axis *a, clasp_rgb *out)
{
    size_t stride = (size_t)in->w * 3;
    for (int y = 0; y < out->h; y++) {
        int ymin = a->bounds[2 * y], n = a->bounds[2 * y + 1];
        const int32_t *k = a->k + (size_t)y * (size_t)a->ksize;
        unsigned char *o = out->px + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < n; i++)
                s += (int64_t)in->px[(size_t)(ymin + i) * stride + x] * k[i];
            o[x] = clip8(s);
        }
    }
}

static clasp_status rgb_new(clasp_rgb *im, int w, int h)
{
    im->w = w;
    im->h = h;
    im->px = malloc((size_t)w * (size_t)h * 3);
    if (!im->px) return clasp_error(CLASP_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    return CLASP_OK;
}

static clasp_status rgb_copy(const clasp_rgb *in, clasp_rgb *out)
{
    CLASP_TRY(rgb_new(out, in->w, in->h));
    memcpy(out->px, in->px, (size_t)in->w * (size_t)in->h * 3);
    return CLASP_OK;
}

clasp_status clasp_rgb_resize(const clasp_rgb *in, int ow, int oh, clasp_filter f, clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    if (ow < 1 || oh < 1) return clasp_error(CLASP_ERR_INVALID, "resize to %dx%d", ow, oh);
    if (ow == in->w && oh == in->h) return rgb_copy(in, out);
    clasp_rgb mid = {0};
    const clasp_rgb *src = in;
    clasp_status st = CLASP_OK;
    if (ow != in->w) {
        axis a;
        CLASP_TRY(axis_make(in->w, ow, f, &a));
        st = rgb_new(&mid, ow, in->h);
        if (st == CLASP_OK) pass_h(in, &a, &mid);
        axis_free(&a);
        if (st != CLASP_OK) {
            clasp_rgb_free(&mid);
            return st;
        }
        src = &mid;
    }
    if (oh != in->h) {
        axis a;
        st = axis_make(in->h, oh, f, &a);
        if (st == CLASP_OK) {
            st = rgb_new(out, ow, oh);
            if (st == CLASP_OK) pass_v(src, &a, out);
            axis_free(&a);
        }
        clasp_rgb_free(&mid);
        if (st != CLASP_OK) clasp_rgb_free(out);
        return st;
    }
    *out = mid;
    return CLASP_OK;
}

clasp_status clasp_rgb_crop(const clasp_rgb *in, int left, int top, int w, int h, clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    CLASP_TRY(rgb_new(out, w, h));
    memset(out->px, 0, (size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++) {
        int sy = top + y;
        if (sy < 0 || sy >= in->h) continue;
        for (int x = 0; x < w; x++) {
            int sx = left + x;
            if (sx < 0 || sx >= in->w) continue;
            memcpy(out->px + ((size_t)y * (size_t)w + (size_t)x) * 3,
                   in->px + ((size_t)sy * (size_t)in->w + (size_t)sx) * 3, 3);
        }
    }
    return CLASP_OK;
}

/* Python's int(round(d / 2.0)) for an integer d >= 0: half to even. */
static int half_round_even(int d)
{
    int q = d / 2;
    if (d % 2 == 0) return q;
    return q % 2 == 0 ? q : q + 1;
}

void clasp_center_crop_box(int w, int h, int cw, int ch, int *left, int *top)
{
    /* A crop larger than the image: torchvision pads (left/top by the
     * floor of half the difference), then crops the padded image at 0. */
    *left = cw > w ? -((cw - w) / 2) : half_round_even(w - cw);
    *top = ch > h ? -((ch - h) / 2) : half_round_even(h - ch);
}

/* torchvision's Resize(size) for one int: the shorter side becomes size,
 * the longer int(size * long / short). */
static void resize_short(int w, int h, int size, int *ow, int *oh)
{
    if (w <= h) {
        *ow = size;
        *oh = (int)((double)size * h / w);
    } else {
        *oh = size;
        *ow = (int)((double)size * w / h);
    }
}

static clasp_status resize_crop(const clasp_rgb *in, int size, int crop, clasp_filter f,
                                clasp_rgb *out)
{
    int ow, oh, l, t;
    resize_short(in->w, in->h, size, &ow, &oh);
    clasp_rgb r;
    CLASP_TRY(clasp_rgb_resize(in, ow, oh, f, &r));
    clasp_center_crop_box(r.w, r.h, crop, crop, &l, &t);
    clasp_status st = clasp_rgb_crop(&r, l, t, crop, crop, out);
    clasp_rgb_free(&r);
    return st;
}

/* Uniform double in [0, 1) from draw i of key. */
static double unif(uint64_t key, uint64_t i)
{
    return (double)(clasp_mix64(key ^ clasp_mix64(i + 1)) >> 11) * (1.0 / 9007199254740992.0);
}

/* Python's int(round(v)) for v >= 0 (half to even). */
static int py_round(double v)
{
    double r = nearbyint(v); /* the default rounding mode is to nearest even */
    return (int)r;
}

void clasp_rrc_box(int w, int h, uint64_t key, int *left, int *top, int *cw, int *ch)
{
    double area = (double)w * h, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int t = 0; t < 10; t++) {
        double target = area * (0.08 + (1.0 - 0.08) * unif(key, 4 * (uint64_t)t));
        double ar = exp(lr0 + (lr1 - lr0) * unif(key, 4 * (uint64_t)t + 1));
        int tw = py_round(sqrt(target * ar)), th = py_round(sqrt(target / ar));
        if (tw > 0 && tw <= w && th > 0 && th <= h) {
            *top = (int)(unif(key, 4 * (uint64_t)t + 2) * (h - th + 1));
            *left = (int)(unif(key, 4 * (uint64_t)t + 3) * (w - tw + 1));
            *cw = tw;
            *ch = th;
            return;
        }
    }
    double in_ratio = (double)w / h;
    if (in_ratio < 3.0 / 4.0) {
        *cw = w;
        *ch = py_round(w / (3.0 / 4.0));
    } else if (in_ratio > 4.0 / 3.0) {
        *ch = h;
        *cw = py_round(h * (4.0 / 3.0));
    } else {
        *cw = w;
        *ch = h;
    }
    *top = (h - *ch) / 2;
    *left = (w - *cw) / 2;
}

clasp_status clasp_preprocess_train(const clasp_rgb *in, int w, int h, uint64_t key, clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    int l, t, cw, ch;
    clasp_rrc_box(in->w, in->h, key, &l, &t, &cw, &ch);
    clasp_rgb c;
    CLASP_TRY(clasp_rgb_crop(in, l, t, cw, ch, &c));
    clasp_status st = clasp_rgb_resize(&c, w, h, CLASP_FILTER_BILINEAR, out);
    clasp_rgb_free(&c);
    if (st == CLASP_OK && unif(key, 1000) < 0.5) {
        for (int y = 0; y < out->h; y++) {
            unsigned char *r = out->px + (size_t)y * (size_t)out->w * 3;
            for (int a = 0, b = out->w - 1; a < b; a++, b--)
                for (int c3 = 0; c3 < 3; c3++) {
                    unsigned char v = r[3 * a + c3];
                    r[3 * a + c3] = r[3 * b + c3];
                    r[3 * b + c3] = v;
                }
        }
    }
    return st;
}

clasp_status clasp_preprocess(const clasp_rgb *in, clasp_prep p, clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    switch (p) {
    case CLASP_PREP_NONE: return rgb_copy(in, out);
    case CLASP_PREP_RES256CROP224: return resize_crop(in, 256, 224, CLASP_FILTER_BILINEAR, out);
    case CLASP_PREP_BICUBIC_RES256CROP224:
        return resize_crop(in, 256, 224, CLASP_FILTER_BICUBIC, out);
    case CLASP_PREP_RES224: return clasp_rgb_resize(in, 224, 224, CLASP_FILTER_BILINEAR, out);
    case CLASP_PREP_CROP288: {
        int l, t;
        clasp_center_crop_box(in->w, in->h, 288, 288, &l, &t);
        return clasp_rgb_crop(in, l, t, 288, 288, out);
    }
    }
    return clasp_error(CLASP_ERR_INVALID, "unknown preprocessing %d", (int)p);
}
