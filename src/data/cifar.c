/* CIFAR-10 and CIFAR-100 binary files.
 *
 * A CIFAR-10 record is 1 label byte followed by 3072 pixel bytes: the 32x32
 * red plane, then green, then blue, each row-major. A CIFAR-100 record has
 * 2 label bytes (coarse, then fine) before the same pixels. The pixels are
 * already CHW, so a record maps straight onto one NCHW image. */
#include "clasp/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_FILES 5
#define CIFAR_MAX_LABELS 2
/* Records decoded per fread; keeps the scratch buffer near 3 MB. */
#define CIFAR_CHUNK 1024

/* One variant of the record layout. */
typedef struct cifar_format {
    const char *what;                          /* "CIFAR-10", for messages */
    int label_bytes;                           /* label bytes before the pixels */
    int limits[CIFAR_MAX_LABELS];              /* each label byte must be below this */
    const char *label_names[CIFAR_MAX_LABELS]; /* "coarse label", for messages */
    int use;                                   /* which label byte becomes y */
    const char *names_file;                    /* optional class-name file in the folder */
    const char *const *names;                  /* built-in class names */
} cifar_format;

static size_t record_size(const cifar_format *fmt)
{
    return (size_t)fmt->label_bytes + CIFAR_PIXELS;
}

/* Number of records in one file, checking its size first so nothing is
 * allocated for a file that cannot be right. */
static clasp_status count_records(const cifar_format *fmt, const char *path, size_t *records)
{
    long long size = 0, rec = (long long)record_size(fmt);
    CLASP_TRY(clasp_data_file_size(path, &size));
    if (size == 0)
        return clasp_error(CLASP_ERR_FORMAT, "%s: empty file, expected %s records of %lld bytes",
                           path, fmt->what, rec);
    if (size % rec != 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: size %lld is not a multiple of %lld (%d label byte%s + %d "
                           "pixel bytes); the record at byte %lld has only %lld bytes",
                           path, size, rec, fmt->label_bytes, fmt->label_bytes > 1 ? "s" : "",
                           CIFAR_PIXELS, size - size % rec, size % rec);
    *records = (size_t)(size / rec);
    return CLASP_OK;
}

/* Decodes `records` records of `path` into x (n*3072 floats) and y. */
static clasp_status read_file(const cifar_format *fmt, const char *path, size_t records,
                              unsigned char *buf, float *x, int32_t *y)
{
    size_t rsize = record_size(fmt);
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    clasp_status s = CLASP_OK;
    size_t done = 0;
    while (s == CLASP_OK && done < records) {
        size_t want = records - done < CIFAR_CHUNK ? records - done : CIFAR_CHUNK;
        size_t got = fread(buf, 1, want * rsize, f);
        if (got != want * rsize) {
            /* The size was checked, so this means I/O trouble or a file
             * that changed under us. */
            s = clasp_error(ferror(f) ? CLASP_ERR_IO : CLASP_ERR_FORMAT,
                            "%s: truncated at byte %zu, expected %zu bytes", path,
                            done * rsize + got, records * rsize);
            break;
        }
        for (size_t r = 0; s == CLASP_OK && r < want; r++) {
            const unsigned char *rec = buf + r * rsize;
            size_t i = done + r;
            for (int b = 0; b < fmt->label_bytes; b++)
                if (rec[b] >= fmt->limits[b]) {
                    s = clasp_error(CLASP_ERR_FORMAT,
                                    "%s: %s %u at byte %zu (record %zu) is out of range, "
                                    "expected < %d",
                                    path, fmt->label_names[b], rec[b], i * rsize + (size_t)b, i,
                                    fmt->limits[b]);
                    break;
                }
            y[r] = rec[fmt->use];
            float *img = x + r * CIFAR_PIXELS;
            const unsigned char *px = rec + fmt->label_bytes;
            for (size_t p = 0; p < CIFAR_PIXELS; p++) img[p] = (float)px[p] / 255.0f;
        }
        x += want * CIFAR_PIXELS;
        y += want;
        done += want;
    }
    fclose(f);
    return s;
}

static clasp_status cifar_load(const cifar_format *fmt, const char *dir, int nfiles,
                               const char *const *files, clasp_dataset *out)
{
    char paths[CIFAR_MAX_FILES][4096];
    size_t records[CIFAR_MAX_FILES], total = 0;
    for (int i = 0; i < nfiles; i++) {
        CLASP_TRY(clasp_data_join(paths[i], sizeof paths[i], dir, files[i]));
        CLASP_TRY(count_records(fmt, paths[i], &records[i]));
        total += records[i];
    }

    clasp_status s = CLASP_OK;
    unsigned char *buf = malloc((size_t)CIFAR_CHUNK * record_size(fmt));
    out->x = total <= SIZE_MAX / sizeof(float) / CIFAR_PIXELS
                 ? malloc(total * CIFAR_PIXELS * sizeof(float))
                 : NULL;
    out->y = malloc(total * sizeof(int32_t));
    if (!buf || !out->x || !out->y)
        s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu %s images", dir, total,
                        fmt->what);
    size_t at = 0;
    for (int i = 0; s == CLASP_OK && i < nfiles; i++) {
        s = read_file(fmt, paths[i], records[i], buf, out->x + at * CIFAR_PIXELS, out->y + at);
        at += records[i];
    }
    free(buf);
    int k = fmt->limits[fmt->use];
    if (s == CLASP_OK) s = clasp_data_class_names(dir, fmt->names_file, k, fmt->names, out);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    out->n = total;
    out->c = 3;
    out->h = 32;
    out->w = 32;
    out->num_classes = k;
    return CLASP_OK;
}

clasp_status clasp_cifar10_load(const char *dir, int train, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar10_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar10_load: dir is NULL");
    static const cifar_format fmt = {"CIFAR-10",           1, {10, 0},
                                     {"label", NULL},      0, "batches.meta.txt",
                                     clasp_cifar10_classes};
    static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"};
    static const char *const test_files[] = {"test_batch.bin"};
    return train ? cifar_load(&fmt, dir, 5, train_files, out)
                 : cifar_load(&fmt, dir, 1, test_files, out);
}

clasp_status clasp_cifar100_load(const char *dir, int train, int coarse, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar100_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar100_load: dir is NULL");
    /* Both labels are checked whichever is used: a record with a bad fine
     * label is a damaged file even when only coarse labels are wanted. */
    cifar_format fmt = {"CIFAR-100",
                        2,
                        {20, 100},
                        {"coarse label", "fine label"},
                        1,
                        "fine_label_names.txt",
                        clasp_cifar100_fine_classes};
    if (coarse) {
        fmt.use = 0;
        fmt.names_file = "coarse_label_names.txt";
        fmt.names = clasp_cifar100_coarse_classes;
    }
    const char *file = train ? "train.bin" : "test.bin";
    return cifar_load(&fmt, dir, 1, &file, out);
}
