/* STL-10 binary files (train_X.bin/train_y.bin, test_X.bin/test_y.bin).
 *
 * An image is 3 planes of 96x96 bytes (red, green, blue), each plane
 * column-major, as MATLAB wrote them: pixel (r, c) of channel ch is at byte
 * ch*9216 + c*96 + r of the image. Decoding transposes each plane to the
 * row-major NCHW layout the rest of clasp uses. Labels are one byte each,
 * 1..10. */
#include "clasp/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define STL_SIDE 96
#define STL_PLANE (STL_SIDE * STL_SIDE)
#define STL_IMAGE (3 * STL_PLANE)
#define STL_CLASSES 10

/* Checks both sizes against each other before anything is allocated. */
static clasp_status stl_count(const char *xpath, const char *ypath, size_t *n)
{
    long long xs = 0, ys = 0;
    CLASP_TRY(clasp_data_file_size(xpath, &xs));
    CLASP_TRY(clasp_data_file_size(ypath, &ys));
    if (xs == 0)
        return clasp_error(CLASP_ERR_FORMAT, "%s: empty file, expected images of %d bytes", xpath,
                           STL_IMAGE);
    if (xs % STL_IMAGE != 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: size %lld is not a multiple of %d (3x96x96 bytes); the image "
                           "at byte %lld has only %lld bytes",
                           xpath, xs, STL_IMAGE, xs - xs % STL_IMAGE, xs % STL_IMAGE);
    if (ys != xs / STL_IMAGE)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %lld labels (one byte each), but %s has %lld images; expected "
                           "equal counts%s",
                           ypath, ys, xpath, xs / STL_IMAGE,
                           ys < xs / STL_IMAGE ? " (truncated?)" : "");
    *n = (size_t)ys;
    return CLASP_OK;
}

static clasp_status stl_images(const char *path, size_t n, float *x)
{
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = malloc(STL_IMAGE);
    clasp_status s = buf ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; s == CLASP_OK && i < n; i++) {
        size_t got = fread(buf, 1, STL_IMAGE, f);
        if (got != STL_IMAGE) {
            /* The size was checked: I/O trouble or a file changed under us. */
            s = clasp_error(ferror(f) ? CLASP_ERR_IO : CLASP_ERR_FORMAT,
                            "%s: truncated at byte %zu, expected %zu bytes", path,
                            i * STL_IMAGE + got, n * STL_IMAGE);
            break;
        }
        float *img = x + i * STL_IMAGE;
        for (int ch = 0; ch < 3; ch++) {
            const unsigned char *plane = buf + ch * STL_PLANE;
            float *o = img + ch * STL_PLANE;
            for (int c = 0; c < STL_SIDE; c++)
                for (int r = 0; r < STL_SIDE; r++)
                    o[r * STL_SIDE + c] = (float)plane[c * STL_SIDE + r] / 255.0f;
        }
    }
    free(buf);
    fclose(f);
    return s;
}

static clasp_status stl_labels(const char *path, size_t n, int32_t *y)
{
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = malloc(n);
    clasp_status s = buf ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    size_t got = s == CLASP_OK ? fread(buf, 1, n, f) : 0;
    if (s == CLASP_OK && got != n)
        s = clasp_error(ferror(f) ? CLASP_ERR_IO : CLASP_ERR_FORMAT,
                        "%s: truncated at byte %zu, expected %zu bytes", path, got, n);
    for (size_t i = 0; s == CLASP_OK && i < n; i++) {
        if (buf[i] < 1 || buf[i] > STL_CLASSES)
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: label %u at byte %zu (image %zu) is out of range, expected "
                            "1..%d",
                            path, buf[i], i, i, STL_CLASSES);
        else y[i] = buf[i] - 1;
    }
    free(buf);
    fclose(f);
    return s;
}

clasp_status clasp_stl10_load(const char *dir, int train, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_stl10_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return clasp_error(CLASP_ERR_INVALID, "clasp_stl10_load: dir is NULL");
    char xpath[4096], ypath[4096];
    CLASP_TRY(clasp_data_join(xpath, sizeof xpath, dir, train ? "train_X.bin" : "test_X.bin"));
    CLASP_TRY(clasp_data_join(ypath, sizeof ypath, dir, train ? "train_y.bin" : "test_y.bin"));
    size_t n = 0;
    CLASP_TRY(stl_count(xpath, ypath, &n));

    clasp_status s = CLASP_OK;
    out->x =
        n <= SIZE_MAX / sizeof(float) / STL_IMAGE ? malloc(n * STL_IMAGE * sizeof(float)) : NULL;
    out->y = malloc(n * sizeof(int32_t));
    if (!out->x || !out->y)
        s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu STL-10 images", dir, n);
    /* Labels first: they are small, and a bad one fails fast. */
    if (s == CLASP_OK) s = stl_labels(ypath, n, out->y);
    if (s == CLASP_OK) s = stl_images(xpath, n, out->x);
    if (s == CLASP_OK)
        s = clasp_data_class_names(dir, "class_names.txt", STL_CLASSES, clasp_stl10_classes, out);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    out->n = n;
    out->c = 3;
    out->h = STL_SIDE;
    out->w = STL_SIDE;
    out->num_classes = STL_CLASSES;
    return CLASP_OK;
}
