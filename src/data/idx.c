/* IDX reader (MNIST, Fashion-MNIST), raw or gzip-compressed.
 *
 * Layout: a big-endian u32 magic (0x00000803 for u8 images [n,rows,cols],
 * 0x00000801 for u8 labels [n]), one big-endian u32 per dimension, then the
 * bytes. Everything goes through zlib's gzread, which also reads raw files
 * unchanged, so offsets in messages always count bytes of the (decompressed)
 * IDX stream. */
#include "clasp/data.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_DIM 4096u
/* Bytes decoded per gzread: bounds the scratch buffer, and lets a bogus
 * header claiming gigabytes fail at the truncation, not at malloc. */
#define IDX_CHUNK (1u << 16)

typedef struct idx_reader {
    gzFile gz;
    const char *path;
    const char *where; /* "" or " of the decompressed data" */
    uint64_t off;      /* bytes consumed so far */
    uint64_t expect;   /* total size the header promises, for messages */
    uint32_t count;    /* first dimension */
} idx_reader;

static void idx_close(idx_reader *r)
{
    if (r->gz) gzclose(r->gz);
    r->gz = NULL;
}

/* Reads exactly n bytes; a short read is reported as truncation at the
 * offset where the data ended. */
static clasp_status idx_read(idx_reader *r, void *buf, size_t n, const char *what)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned want = n > IDX_CHUNK ? IDX_CHUNK : (unsigned)n;
        int got = gzread(r->gz, p, want);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(r->gz, &zerr);
            size_t plen = strlen(r->path);
            /* zlib prefixes its message with the path; we already do. */
            if (!strncmp(msg, r->path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
            if (zerr == Z_ERRNO)
                return clasp_error(CLASP_ERR_IO, "%s: read error near byte %" PRIu64 "%s: %s",
                                   r->path, r->off, r->where, strerror(errno));
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: corrupt gzip data near byte %" PRIu64 "%s (zlib: %s)", r->path,
                               r->off, r->where, msg);
        }
        r->off += (uint64_t)got;
        if (got == 0)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: truncated at byte %" PRIu64 "%s, expected %" PRIu64
                               " bytes (%s)",
                               r->path, r->off, r->where, r->expect, what);
        p += got;
        n -= (size_t)got;
    }
    return CLASP_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Opens `path`, checks the magic and reads the dimensions into dims[ndim].
 * Sniffs the first two bytes itself so the message can say whether offsets
 * refer to the decompressed stream. */
static clasp_status idx_open(idx_reader *r, const char *path, uint32_t magic, uint32_t *dims,
                             int ndim)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->where = "";
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sniff[2] = {0, 0};
    size_t ns = fread(sniff, 1, 2, f);
    fclose(f);
    if (ns == 2 && sniff[0] == 0x1f && sniff[1] == 0x8b) r->where = " of the decompressed data";

    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path,
                           errno ? strerror(errno) : "zlib could not allocate");
    unsigned char hdr[16];
    size_t hlen = 4 + 4 * (size_t)ndim;
    r->expect = hlen;
    /* Magic first: a wrong file is better reported as such than as a
     * header cut short. */
    clasp_status s = idx_read(r, hdr, 4, "IDX header");
    if (s != CLASP_OK) return s;
    uint32_t found = be32(hdr);
    if (found != magic) {
        const char *hint = found == IDX_MAGIC_IMAGES   ? " (this is an IDX image file)"
                           : found == IDX_MAGIC_LABELS ? " (this is an IDX label file)"
                                                       : "";
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: wrong magic 0x%08" PRIx32 " at byte 0%s, expected 0x%08" PRIx32
                           " (IDX u8 %s)%s",
                           path, found, r->where, magic,
                           magic == IDX_MAGIC_IMAGES ? "images" : "labels", hint);
    }
    s = idx_read(r, hdr + 4, hlen - 4, "IDX header");
    if (s != CLASP_OK) return s;
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        /* Only image sides are capped; the count merely has to be non-zero. */
        if (dims[i] == 0 || (i > 0 && dims[i] > IDX_MAX_DIM))
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: implausible dimension %" PRIu32 " at byte %zu%s, "
                               "expected %s",
                               path, dims[i], (size_t)(4 + 4 * i), r->where,
                               i == 0 ? "a count >= 1" : "a size in 1..4096");
        total *= dims[i];
    }
    r->count = dims[0];
    r->expect = hlen + total;
    return CLASP_OK;
}

/* Fails when anything follows the promised data: such a file is not what
 * the header says (e.g. a concatenation or the wrong dimensions). */
static clasp_status idx_expect_end(idx_reader *r)
{
    unsigned char extra;
    int got = gzread(r->gz, &extra, 1);
    if (got > 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: unexpected data at byte %" PRIu64 "%s, expected the "
                           "file to end after %" PRIu64 " bytes",
                           r->path, r->off, r->where, r->expect);
    return CLASP_OK;
}

/* Pixels -> float/255. The output grows with the data actually read so a
 * truncated file never costs the allocation its header claims. */
static clasp_status idx_read_pixels(idx_reader *r, size_t total, float **out)
{
    unsigned char *buf = malloc(IDX_CHUNK);
    if (!buf) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", r->path);
    float *x = NULL;
    size_t cap = 0, done = 0;
    clasp_status s = CLASP_OK;
    while (done < total) {
        size_t n = total - done < IDX_CHUNK ? total - done : IDX_CHUNK;
        if (done + n > cap) {
            size_t ncap = cap ? cap * 2 : (size_t)IDX_CHUNK * 16;
            if (ncap > total) ncap = total;
            float *nx = realloc(x, ncap * sizeof *x);
            if (!nx) {
                s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu pixels", r->path,
                                total);
                break;
            }
            x = nx;
            cap = ncap;
        }
        s = idx_read(r, buf, n, "pixel data");
        if (s != CLASP_OK) break;
        for (size_t i = 0; i < n; i++) x[done + i] = (float)buf[i] / 255.0f;
        done += n;
    }
    free(buf);
    if (s != CLASP_OK) {
        free(x);
        return s;
    }
    *out = x;
    return CLASP_OK;
}

static clasp_status idx_read_labels(idx_reader *r, size_t n, int num_classes, int32_t **out)
{
    unsigned char *buf = malloc(n);
    int32_t *y = malloc(n * sizeof *y);
    clasp_status s = CLASP_OK;
    if (!buf || !y)
        s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu labels", r->path, n);
    if (s == CLASP_OK) s = idx_read(r, buf, n, "label data");
    for (size_t i = 0; s == CLASP_OK && i < n; i++) {
        if (buf[i] >= num_classes)
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: label %u at byte %" PRIu64 "%s (example %zu) is out "
                            "of range, expected < %d",
                            r->path, buf[i], r->off - n + i, r->where, i, num_classes);
        else y[i] = buf[i];
    }
    free(buf);
    if (s != CLASP_OK) {
        free(y);
        return s;
    }
    *out = y;
    return CLASP_OK;
}

clasp_status clasp_idx_load(const char *images_path, const char *labels_path, int num_classes,
                            clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_idx_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return clasp_error(CLASP_ERR_INVALID, "clasp_idx_load: NULL path");
    if (num_classes < 1 || num_classes > CLASP_MAX_CLASSES)
        return clasp_error(CLASP_ERR_INVALID, "clasp_idx_load: num_classes %d not in 1..%d",
                           num_classes, CLASP_MAX_CLASSES);

    idx_reader im, lb;
    uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
    memset(&lb, 0, sizeof lb);
    clasp_status s = idx_open(&im, images_path, IDX_MAGIC_IMAGES, idims, 3);
    if (s == CLASP_OK) s = idx_open(&lb, labels_path, IDX_MAGIC_LABELS, ldims, 1);
    if (s == CLASP_OK && idims[0] != ldims[0])
        s = clasp_error(CLASP_ERR_FORMAT,
                        "%s: %" PRIu32 " labels (count at byte 4%s), but %s has %" PRIu32
                        " images; expected equal counts",
                        labels_path, ldims[0], lb.where, images_path, idims[0]);
    uint64_t total = (uint64_t)idims[0] * idims[1] * idims[2];
    if (s == CLASP_OK && total > SIZE_MAX / sizeof(float))
        s = clasp_error(CLASP_ERR_NOMEM, "%s: %" PRIu64 " pixels do not fit in memory", images_path,
                        total);
    if (s == CLASP_OK) s = idx_read_pixels(&im, (size_t)total, &out->x);
    if (s == CLASP_OK) s = idx_expect_end(&im);
    if (s == CLASP_OK) s = idx_read_labels(&lb, idims[0], num_classes, &out->y);
    if (s == CLASP_OK) s = idx_expect_end(&lb);
    idx_close(&im);
    idx_close(&lb);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    out->n = idims[0];
    out->c = 1;
    out->h = (int)idims[1];
    out->w = (int)idims[2];
    s = clasp_dataset_set_classes(out, num_classes);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    for (int k = 0; k < num_classes; k++)
        snprintf(out->class_names[k], CLASP_CLASS_NAME_MAX, "%d", k);
    return CLASP_OK;
}

/* First existing of "<dir>/<stem>.gz" and "<dir>/<stem>" into buf. */
static clasp_status find_idx(const char *dir, const char *stem, char *buf, size_t size)
{
    char raw[4096];
    struct stat st;
    int a = snprintf(buf, size, "%s/%s.gz", dir, stem);
    int b = snprintf(raw, sizeof raw, "%s/%s", dir, stem);
    if (a < 0 || (size_t)a >= size || b < 0 || (size_t)b >= sizeof raw)
        return clasp_error(CLASP_ERR_INVALID, "%s: folder path too long", dir);
    if (stat(buf, &st) == 0) return CLASP_OK;
    if (stat(raw, &st) == 0) {
        memcpy(buf, raw, (size_t)b + 1);
        return CLASP_OK;
    }
    return clasp_error(CLASP_ERR_NOT_FOUND, "%s: not found, tried %s and %s", stem, buf, raw);
}

clasp_status clasp_mnist_load(const char *dir, int train, int fashion, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_mnist_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) dir = CLASP_FASHION_MNIST_DIR;
    const char *prefix = train ? "train" : "t10k";
    char stem[64], images[4096], labels[4096];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    CLASP_TRY(find_idx(dir, stem, images, sizeof images));
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
    CLASP_TRY(find_idx(dir, stem, labels, sizeof labels));
    CLASP_TRY(clasp_idx_load(images, labels, 10, out));
    if (fashion)
        for (int k = 0; k < 10; k++)
            snprintf(out->class_names[k], CLASP_CLASS_NAME_MAX, "%s",
                     clasp_fashion_mnist_classes[k]);
    return CLASP_OK;
}
