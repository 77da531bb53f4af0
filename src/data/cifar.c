/* CIFAR-10 binary batches.
 *
 * Each record is 1 label byte followed by 3072 pixel bytes: the 32x32 red
 * plane, then green, then blue, each row-major. That is already CHW, so a
 * record maps straight onto one NCHW image. */
#include "clasp/data.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_MAX_FILES 5
/* Records decoded per fread; keeps the scratch buffer near 3 MB. */
#define CIFAR_CHUNK 1024

static clasp_status join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return clasp_error(CLASP_ERR_INVALID, "%s: folder path too long", dir);
    return CLASP_OK;
}

/* Number of records in one batch file, checking its size first so nothing
 * is allocated for a file that cannot be right. */
static clasp_status batch_records(const char *path, size_t *records)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long long size = (long long)st.st_size;
    if (size == 0)
        return clasp_error(CLASP_ERR_FORMAT, "%s: empty file, expected records of %d bytes",
                           path, CIFAR_RECORD);
    if (size % CIFAR_RECORD != 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: size %lld is not a multiple of %d (1 label byte + %d "
                           "pixel bytes); the record at byte %lld has only %lld bytes",
                           path, size, CIFAR_RECORD, CIFAR_PIXELS,
                           size - size % CIFAR_RECORD, size % CIFAR_RECORD);
    *records = (size_t)(size / CIFAR_RECORD);
    return CLASP_OK;
}

/* Decodes `records` records of `path` into x (n*3072 floats) and y. */
static clasp_status read_batch(const char *path, size_t records, unsigned char *buf,
                               float *x, int32_t *y)
{
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    clasp_status s = CLASP_OK;
    size_t done = 0;
    while (s == CLASP_OK && done < records) {
        size_t want = records - done < CIFAR_CHUNK ? records - done : CIFAR_CHUNK;
        size_t got = fread(buf, 1, want * CIFAR_RECORD, f);
        if (got != want * CIFAR_RECORD) {
            /* The size was checked, so this means I/O trouble or a file
             * that changed under us. */
            s = clasp_error(ferror(f) ? CLASP_ERR_IO : CLASP_ERR_FORMAT,
                            "%s: truncated at byte %zu, expected %zu bytes",
                            path, done * CIFAR_RECORD + got, records * CIFAR_RECORD);
            break;
        }
        for (size_t r = 0; r < want; r++) {
            const unsigned char *rec = buf + r * CIFAR_RECORD;
            size_t i = done + r;
            if (rec[0] >= CIFAR_CLASSES) {
                s = clasp_error(CLASP_ERR_FORMAT,
                                "%s: label %u at byte %zu (record %zu) is out of range, "
                                "expected < %d",
                                path, rec[0], i * CIFAR_RECORD, i, CIFAR_CLASSES);
                break;
            }
            y[r] = rec[0];
            float *img = x + r * CIFAR_PIXELS;
            for (size_t p = 0; p < CIFAR_PIXELS; p++) img[p] = (float)rec[1 + p] / 255.0f;
        }
        x += want * CIFAR_PIXELS;
        y += want;
        done += want;
    }
    fclose(f);
    return s;
}

/* Class names from batches.meta.txt: one per line, blank lines ignored.
 * A missing file means the standard names; a malformed one is an error,
 * since silently mislabelling the per-class report would be worse. */
static clasp_status read_meta(const char *dir, clasp_dataset *d)
{
    char path[4096], line[256];
    for (int k = 0; k < CIFAR_CLASSES; k++)
        snprintf(d->class_names[k], CLASP_CLASS_NAME_MAX, "%s", clasp_cifar10_classes[k]);
    CLASP_TRY(join(path, sizeof path, dir, "batches.meta.txt"));
    FILE *f = fopen(path, "r");
    if (!f) return CLASP_OK;
    char names[CIFAR_CLASSES][CLASP_CLASS_NAME_MAX];
    int count = 0, lineno = 0;
    clasp_status s = CLASP_OK;
    while (s == CLASP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        const char *name = line;
        while (isspace((unsigned char)*name)) name++;
        if (!*name) continue;
        if (count == CIFAR_CLASSES)
            s = clasp_error(CLASP_ERR_FORMAT, "%s: line %d: more than %d class names",
                            path, lineno, CIFAR_CLASSES);
        else if (strlen(name) >= CLASP_CLASS_NAME_MAX)
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: line %d: class name longer than %d characters", path,
                            lineno, CLASP_CLASS_NAME_MAX - 1);
        else
            memcpy(names[count++], name, strlen(name) + 1); /* length checked above */
    }
    if (s == CLASP_OK && ferror(f))
        s = clasp_error(CLASP_ERR_IO, "%s: read error", path);
    if (s == CLASP_OK && count != CIFAR_CLASSES)
        s = clasp_error(CLASP_ERR_FORMAT, "%s: %d class names, expected %d", path, count,
                        CIFAR_CLASSES);
    fclose(f);
    if (s == CLASP_OK) memcpy(d->class_names, names, sizeof names);
    return s;
}

clasp_status clasp_cifar10_load(const char *dir, int train, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar10_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return clasp_error(CLASP_ERR_INVALID, "clasp_cifar10_load: dir is NULL");

    char paths[CIFAR_MAX_FILES][4096];
    size_t records[CIFAR_MAX_FILES], total = 0;
    int nfiles = train ? 5 : 1;
    for (int i = 0; i < nfiles; i++) {
        char name[32];
        if (train)
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        CLASP_TRY(join(paths[i], sizeof paths[i], dir, name));
        CLASP_TRY(batch_records(paths[i], &records[i]));
        total += records[i];
    }

    clasp_status s = CLASP_OK;
    unsigned char *buf = malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD);
    out->x = total <= SIZE_MAX / sizeof(float) / CIFAR_PIXELS
                 ? malloc(total * CIFAR_PIXELS * sizeof(float))
                 : NULL;
    out->y = malloc(total * sizeof(int32_t));
    if (!buf || !out->x || !out->y)
        s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu CIFAR-10 images", dir,
                        total);
    size_t at = 0;
    for (int i = 0; s == CLASP_OK && i < nfiles; i++) {
        s = read_batch(paths[i], records[i], buf, out->x + at * CIFAR_PIXELS, out->y + at);
        at += records[i];
    }
    free(buf);
    if (s == CLASP_OK) s = read_meta(dir, out);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    out->n = total;
    out->c = 3;
    out->h = 32;
    out->w = 32;
    out->num_classes = CIFAR_CLASSES;
    return CLASP_OK;
}
