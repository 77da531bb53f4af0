/* JPEG (libjpeg-turbo) and PNG (libpng) decoding to RGB, matching PIL's
 * Image.open(...).convert("RGB"), which torchvision's ImageFolder uses. */
#include "data/imagefolder_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

void clasp_rgb_free(clasp_rgb *im)
{
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

static clasp_status alloc_rgb(clasp_rgb *im, long long w, long long h, const char *name)
{
    memset(im, 0, sizeof *im);
    if (w < 1 || h < 1 || w * h > CLASP_IMAGE_MAX_PIXELS)
        return clasp_error(CLASP_ERR_FORMAT, "%s: image of %lldx%lld pixels (at most %lld pixels)",
                           name, w, h, CLASP_IMAGE_MAX_PIXELS);
    im->px = malloc((size_t)(w * h * 3));
    if (!im->px)
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %lldx%lld pixels", name, w, h);
    im->w = (int)w;
    im->h = (int)h;
    return CLASP_OK;
}

/* ---- JPEG ----------------------------------------------------------------- */

typedef struct jerr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void jpeg_fail(j_common_ptr c)
{
    jerr *e = (jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are ignored as PIL ignores them, except the end of the data
 * before the image is complete: libjpeg would fill the rest with grey,
 * where PIL reports a truncated image. */
static void jpeg_note(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(c);
}

/* PIL's CMYK to RGB (Convert.c, cmyk2rgb): nk = 255 - k,
 * v = nk - round(c * nk / 255) with its rounding division. */
static unsigned char cmyk_channel(unsigned c, unsigned k)
{
    unsigned nk = 255 - k, t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (unsigned char)(v < 0 ? 0 : v);
}

static clasp_status decode_jpeg(const unsigned char *buf, size_t len, const char *name,
                                clasp_rgb *out)
{
    struct jpeg_decompress_struct ci;
    jerr e;
    /* volatile: read after longjmp. */
    unsigned char *volatile row = NULL;
    unsigned char *volatile px = NULL;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_note;
    e.msg[0] = '\0';
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&ci);
        free(row);
        free(px);
        memset(out, 0, sizeof *out);
        return clasp_error(CLASP_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", name, e.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    /* PIL's decoder settings are libjpeg's defaults: islow IDCT and fancy
     * upsampling; said here so that a changed default cannot change us. */
    ci.dct_method = JDCT_ISLOW;
    ci.do_fancy_upsampling = TRUE;
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    if (cmyk) ci.out_color_space = JCS_CMYK;
    else if (ci.num_components == 1) ci.out_color_space = JCS_GRAYSCALE;
    else ci.out_color_space = JCS_RGB;
    long long w = ci.image_width, h = ci.image_height;
    if (w < 1 || h < 1 || w * h > CLASP_IMAGE_MAX_PIXELS) {
        jpeg_destroy_decompress(&ci);
        return clasp_error(CLASP_ERR_FORMAT, "%s: image of %lldx%lld pixels (at most %lld pixels)",
                           name, w, h, CLASP_IMAGE_MAX_PIXELS);
    }
    jpeg_start_decompress(&ci);
    int comps = ci.output_components;
    clasp_rgb im;
    clasp_status st = alloc_rgb(&im, w, h, name);
    if (st == CLASP_OK) {
        px = im.px;
        row = malloc((size_t)w * (size_t)comps);
        if (!row) st = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", name);
    }
    if (st != CLASP_OK) {
        jpeg_destroy_decompress(&ci);
        free(row);
        free(px);
        return st;
    }
    while (ci.output_scanline < ci.output_height) {
        size_t y = ci.output_scanline;
        JSAMPROW r = row;
        jpeg_read_scanlines(&ci, &r, 1);
        unsigned char *o = px + y * (size_t)w * 3;
        for (long long x = 0; x < w; x++) {
            const unsigned char *s = row + x * comps;
            if (cmyk) {
                /* PIL reads every CMYK JPEG as Adobe's inverted CMYK. */
                unsigned k = 255u - s[3];
                o[3 * x] = cmyk_channel(255u - s[0], k);
                o[3 * x + 1] = cmyk_channel(255u - s[1], k);
                o[3 * x + 2] = cmyk_channel(255u - s[2], k);
            } else if (comps == 1) {
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = s[0];
            } else {
                memcpy(o + 3 * x, s, 3);
            }
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row);
    *out = im;
    return CLASP_OK;
}

/* ---- PNG ------------------------------------------------------------------ */

typedef struct png_src {
    const unsigned char *buf;
    size_t len, at;
    char msg[256];
} png_src;

static void png_read_mem(png_structp p, png_bytep dst, size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->at) png_error(p, "truncated PNG data");
    memcpy(dst, s->buf + s->at, n);
    s->at += n;
}

static void png_fail(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_warn(png_structp p, png_const_charp msg)
{
    (void)p, (void)msg;
}

static clasp_status decode_png(const unsigned char *buf, size_t len, const char *name,
                               clasp_rgb *out)
{
    png_src src = {.buf = buf, .len = len, .at = 0, .msg = ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!p || !info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", name);
    }
    unsigned char *volatile px = NULL;
    unsigned char *volatile row = NULL;
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(px);
        free(row);
        memset(out, 0, sizeof *out);
        return clasp_error(CLASP_ERR_FORMAT, "%s: corrupt or truncated PNG: %s (byte %zu)", name,
                           src.msg, src.at);
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_set_user_limits(p, 0x7fffffff, 0x7fffffff);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int depth = png_get_bit_depth(p, info), type = png_get_color_type(p, info);
    if ((long long)w * h > CLASP_IMAGE_MAX_PIXELS) {
        png_destroy_read_struct(&p, &info, NULL);
        return clasp_error(CLASP_ERR_FORMAT, "%s: image of %ux%u pixels (at most %lld pixels)",
                           name, (unsigned)w, (unsigned)h, CLASP_IMAGE_MAX_PIXELS);
    }
    /* To 8-bit samples without gamma or transparency handling, as PIL
     * opens them (tRNS chunks only matter for conversions to RGBA). */
    int grey = !(type & PNG_COLOR_MASK_COLOR) && type != PNG_COLOR_TYPE_PALETTE;
    int grey16 = grey && depth == 16 && !(type & PNG_COLOR_MASK_ALPHA);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (grey && depth < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (depth == 16 && !grey16) png_set_strip_16(p);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(p);
    int passes = png_set_interlace_handling(p);
    png_read_update_info(p, info);
    size_t rowbytes = png_get_rowbytes(p, info);
    int ch = png_get_channels(p, info);
    clasp_rgb im;
    clasp_status st = alloc_rgb(&im, w, h, name);
    if (st != CLASP_OK) {
        png_destroy_read_struct(&p, &info, NULL);
        return st;
    }
    px = im.px;
    /* Interlaced images need the whole image in the decoded layout. */
    row = malloc(rowbytes * (passes > 1 ? (size_t)h : 1));
    if (!row) {
        png_destroy_read_struct(&p, &info, NULL);
        free(px);
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", name);
    }
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++) {
            unsigned char *r = row + (passes > 1 ? (size_t)y * rowbytes : 0);
            png_read_row(p, r, NULL);
            if (pass < passes - 1) continue;
            unsigned char *o = px + (size_t)y * w * 3;
            for (png_uint_32 x = 0; x < w; x++) {
                if (grey16) {
                    /* PIL opens it as mode I; I to RGB clips at 255. */
                    unsigned v = (unsigned)r[2 * x] << 8 | r[2 * x + 1];
                    o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = (unsigned char)(v > 255 ? 255 : v);
                } else if (ch <= 2) {
                    /* Grey, or grey and alpha: the alpha is dropped. */
                    o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = r[(size_t)x * (size_t)ch];
                } else {
                    /* libpng expands a palette's tRNS to alpha: dropped. */
                    memcpy(o + 3 * x, r + (size_t)x * (size_t)ch, 3);
                }
            }
        }
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    free(row);
    *out = im;
    return CLASP_OK;
}

clasp_status clasp_image_decode(const unsigned char *buf, size_t len, const char *name,
                                clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return decode_jpeg(buf, len, name, out);
    if (len >= 8 && !png_sig_cmp(buf, 0, 8)) return decode_png(buf, len, name, out);
    if (len == 0) return clasp_error(CLASP_ERR_FORMAT, "%s: empty file", name);
    return clasp_error(CLASP_ERR_UNSUPPORTED,
                       "%s: not a JPEG or PNG image (clasp decodes those two formats)", name);
}

clasp_status clasp_image_load(const char *path, clasp_rgb *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long long size = -1;
    if (fseeko(f, 0, SEEK_END) == 0) size = (long long)ftello(f);
    if (size < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return clasp_error(CLASP_ERR_IO, "%s: cannot read", path);
    }
    if (size > CLASP_IMAGE_MAX_FILE) {
        fclose(f);
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %lld bytes, larger than the %lld an image may have", path, size,
                           CLASP_IMAGE_MAX_FILE);
    }
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != (size_t)size) {
        free(buf);
        return clasp_error(CLASP_ERR_IO, "%s: read error", path);
    }
    clasp_status st = clasp_image_decode(buf, got, path, out);
    free(buf);
    return st;
}
