/* SVHN cropped digits (train_32x32.mat, test_32x32.mat), read with libmatio.
 *
 * X is uint8 of dims 32x32x3xN in MATLAB's column-major order, so X(r, c,
 * ch, n) is element r + 32*c + 1024*ch + 3072*n; y holds labels 1..10,
 * where 10 stands for the digit 0. The output is NCHW with class d for
 * digit d.
 *
 * libmatio does the reading. What it does not do for us: it reads a
 * variable cut short in an uncompressed file without complaint (the missing
 * bytes arrive as whatever the buffer held); it reports damaged compressed
 * data only to its log; and it believes every length in a header,
 * allocating what a name tag or an array's dimensions say and filling what
 * the data gives (stale memory, or a request for gigabytes). So before
 * matio reads: the file must have a version 5 or 7.3 header (matio probes
 * anything else as version 4, believing its bytes too); each top-level
 * element of a version 5 file must fit in the file; and each array's header
 * parts must fit in its element, with a numeric array's data length
 * matching its dimensions (a compressed array is checked from its inflated
 * head). And matio's log is captured while we read: anything it reports is
 * an error here. */
#include "clasp/data.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <matio.h>
#include <zlib.h>

#include "data/data_internal.h"

#define SVHN_SIDE 32
#define SVHN_IMAGE (3 * SVHN_SIDE * SVHN_SIDE)
#define SVHN_CLASSES 10
/* Version 5 MAT files: a 128-byte header, then tagged elements. */
#define MAT5_HEADER 128
/* Bytes of a matrix element read to find its dimensions and data tag:
 * flags, up to a few dozen dimensions and a name of up to 63 characters. */
#define MAT5_MATRIX_HEAD 512

/* ---- matio's log ----------------------------------------------------------- */

static _Thread_local char matio_msg[256];

/* Keeps the first warning or worse of a load; debug chatter is ignored. */
static void capture_log(int level, char *message)
{
    if (level > (MATIO_LOG_LEVEL_WARNING) || matio_msg[0]) return;
    snprintf(matio_msg, sizeof matio_msg, "%s", message ? message : "unknown problem");
}

/* ---- helpers --------------------------------------------------------------- */

static const char *class_name(enum matio_classes c)
{
    switch (c) {
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OPAQUE: return "opaque";
    default: return "empty";
    }
}

/* "uint8 32x32x3x10" (or "complex double 5x1") into buf. */
static const char *describe(const matvar_t *v, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s%s ", v->isComplex ? "complex " : "",
                     v->isLogical ? "logical" : class_name(v->class_type));
    for (int i = 0; i < v->rank && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%zu", i ? "x" : "", v->dims[i]);
    return buf;
}

static uint32_t get32(const unsigned char *p, int swap)
{
    return swap ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bytes of one value of a version 5 data type; 0 for the types that do not
 * hold plain numbers (matio judges those). */
static long long mat5_type_size(uint32_t type)
{
    switch (type) {
    case 1:
    case 2: return 1; /* miINT8, miUINT8 */
    case 3:
    case 4: return 2; /* miINT16, miUINT16 */
    case 5:
    case 6:
    case 7: return 4; /* miINT32, miUINT32, miSINGLE */
    case 9:
    case 12:
    case 13: return 8; /* miDOUBLE, miINT64, miUINT64 */
    default: return 0;
    }
}

/* One sub-element tag at p[*off] of a matrix whose contents are len bytes,
 * `have` of them at hand: type, byte count, where its data starts, and
 * *off moved past it. 1 when it fits in len, 0 when it does not, -1 when
 * the tag is not at hand. */
static int mat5_sub(const unsigned char *p, size_t have, long long len, int swap, long long *off,
                    uint32_t *type, long long *bytes, long long *data)
{
    if (*off + 8 > (long long)have) return -1;
    uint32_t t = get32(p + *off, swap);
    if (t >> 16) {
        /* Small data element: up to 4 bytes packed into the tag itself. */
        *type = t & 0xffff, *bytes = t >> 16, *data = *off + 4;
        *off += 8;
        return *bytes <= 4;
    }
    *type = t, *bytes = get32(p + *off + 4, swap), *data = *off + 8;
    *off += 8 + (*bytes + 7) / 8 * 8;
    return *data + *bytes <= len;
}

/* A part of an array's header that mat5_sub could not place (r = 0 or
 * -1): an error when it runs past the element or the element ends first;
 * left to matio when it lies beyond the bytes at hand (a compressed stream
 * that does not inflate, which matio reports, or a header longer than
 * MAT5_MATRIX_HEAD, whose lengths are bounded by the element anyway). */
static clasp_status sub_missing(const char *path, const char *where, int r, size_t have,
                                long long len, const char *what)
{
    if (r < 0 && (long long)have < len) return CLASP_OK;
    return clasp_error(CLASP_ERR_FORMAT, "%s: %s: its %s %s its %lld-byte element", path, where,
                       what, r < 0 ? "is missing from" : "runs past", len);
}

/* Checks the header of one matrix element (p: its first `have` of len bytes
 * after the tag) before matio reads it: matio allocates what the header
 * says (a name's length, a numeric array's values by its dimensions) and
 * fills what the data gives. So every part must fit in the element, the
 * class must be one matio reads without nesting (numbers or text: an SVHN
 * file holds X and y), and a numeric real part must hold exactly the
 * values its dimensions call for. */
static clasp_status check_matrix(const char *path, const char *where, const unsigned char *p,
                                 size_t have, long long len, int swap)
{
    long long off = 0, bytes = 0, data = 0, numel = 1;
    uint32_t type = 0;
    int r = mat5_sub(p, have, len, swap, &off, &type, &bytes, &data);
    if (r < 1) return sub_missing(path, where, r, have, len, "flags tag");
    if (type != 6 || bytes != 8 || data + 8 > (long long)have)
        return clasp_error(CLASP_ERR_FORMAT, "%s: %s: its flags are not 8 bytes of uint32", path,
                           where);
    uint32_t flags = get32(p + data, swap), cls = flags & 0xff;
    if (cls != 4 && (cls < 6 || cls > 15))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %s is of MATLAB class %u, expected numbers or text (X and y)", path,
                           where, cls);
    r = mat5_sub(p, have, len, swap, &off, &type, &bytes, &data);
    if (r < 1) return sub_missing(path, where, r, have, len, "dimensions tag");
    if (type != 5 || bytes % 4 || bytes < 8)
        return clasp_error(CLASP_ERR_FORMAT, "%s: %s has no valid dimensions (2 or more int32)",
                           path, where);
    if (data + bytes > (long long)have) return CLASP_OK; /* beyond the head: bounded by len */
    int over = 0;
    for (long long d = 0; d < bytes; d += 4) {
        long long dim = (int32_t)get32(p + data + d, swap);
        if (dim < 0)
            return clasp_error(CLASP_ERR_FORMAT, "%s: %s has dimension %lld", path, where, dim);
        /* A count past the element's length is wrong anyway; capping it
         * keeps the product from overflowing. */
        numel *= dim;
        if (numel > len) numel = len + 1, over = 1;
    }
    r = mat5_sub(p, have, len, swap, &off, &type, &bytes, &data);
    if (r < 1) return sub_missing(path, where, r, have, len, "name");
    r = mat5_sub(p, have, len, swap, &off, &type, &bytes, &data);
    if (r < 0 && numel == 0 && (long long)have == len) return CLASP_OK; /* empty: no data */
    if (r < 1) return sub_missing(path, where, r, have, len, "data tag");
    long long size = mat5_type_size(type);
    if (cls == 4 || !size) return CLASP_OK; /* text, or stored in a type matio converts */
    if (over)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %s: its dimensions call for more values than its %lld-byte "
                           "element can hold",
                           path, where, len);
    if (bytes != numel * size)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %s: its dimensions call for %lld values of %lld bytes, but its "
                           "data has %lld bytes",
                           path, where, numel, size, bytes);
    return CLASP_OK;
}

/* The head of a compressed element (`len` bytes at `at`, the tag already
 * read), inflated into out (size bytes): *got bytes of it, as far as it
 * inflates. deflate shrinks
 * by at most 1032:1, so an inflated length claimed beyond that is refused
 * here, before matio would allocate for it. */
static clasp_status inflate_head(FILE *f, const char *path, long long at, long long len, int swap,
                                 unsigned char *out, size_t size, size_t *got)
{
    unsigned char in[4096];
    size_t n = fread(in, 1, len < (long long)sizeof in ? (size_t)len : sizeof in, f);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return clasp_error(CLASP_ERR_NOMEM, "%s: zlib could not start", path);
    z.next_in = in, z.avail_in = (uInt)n;
    z.next_out = out, z.avail_out = (uInt)size;
    inflate(&z, Z_SYNC_FLUSH);
    *got = size - z.avail_out;
    inflateEnd(&z);
    /* What inflated before damage is checked all the same: matio stops
     * once it has the bytes it wants, so it never sees a bad checksum at
     * the end of a short stream. Damage before the header ends is left to
     * matio, whose complaint names the variable. */
    long long inner = *got >= 8 ? get32(out + 4, swap) : 0;
    if (inner + 8 > len * 1032 + 64)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: the compressed element at byte %lld claims %lld bytes inflated, "
                           "more than its %lld bytes can hold",
                           path, at, inner + 8, len);
    return CLASP_OK;
}

/* Walks the tags of a version 5 file's top-level elements and checks that
 * each fits in the file, and that each numeric array's data matches its
 * dimensions (check_matrix). Headers only; matio reads the contents. */
static clasp_status check_mat5_length(const char *path, long long size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open", path);
    unsigned char hdr[MAT5_HEADER], tag[8], head[MAT5_MATRIX_HEAD];
    clasp_status s = CLASP_OK;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr) {
        s = clasp_error(CLASP_ERR_FORMAT, "%s: truncated at byte %lld, expected a %d-byte header",
                        path, size, MAT5_HEADER);
    }
    /* The endian indicator, the characters 'M','I' as one 16-bit value,
     * reads "IM" byte by byte in a little-endian file, "MI" in a big-endian
     * one. */
    int swap = s == CLASP_OK && hdr[126] == 'M' && hdr[127] == 'I';
    long long at = MAT5_HEADER;
    while (s == CLASP_OK && size - at >= 8) {
        if (fseek(f, (long)at, SEEK_SET) != 0 || fread(tag, 1, 8, f) != 8) {
            s = clasp_error(CLASP_ERR_IO, "%s: read error at byte %lld", path, at);
            break;
        }
        /* Only matrices (14) and compressed matrices (15) live at the top
         * level; anything else is left to matio to judge. */
        uint32_t type = get32(tag, swap);
        if (type != 14 && type != 15) break;
        long long len = get32(tag + 4, swap);
        if (len > size - at - 8) {
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: truncated: the element at byte %lld needs %lld bytes, but the "
                            "file ends at byte %lld",
                            path, at, 8 + len, size);
            break;
        }
        size_t got = 0;
        char where[64];
        snprintf(where, sizeof where, "the %sarray at byte %lld", type == 15 ? "compressed " : "",
                 at);
        if (type == 14) {
            got = fread(head, 1, len < (long long)sizeof head ? (size_t)len : sizeof head, f);
            s = check_matrix(path, where, head, got, len, swap);
        } else {
            s = inflate_head(f, path, at, len, swap, head, sizeof head, &got);
            /* A stream that stops before the element it announces is
             * damaged: matio would go on with a tag it never read. */
            if (s == CLASP_OK && got < sizeof head &&
                (got < 8 || (long long)got < 8 + (long long)get32(head + 4, swap)))
                s = clasp_error(CLASP_ERR_FORMAT,
                                "%s: %s: the compressed stream ends after %zu bytes, short of the "
                                "element it announces",
                                path, where, got);
            if (s == CLASP_OK && got >= 8 && get32(head, swap) == 14)
                s = check_matrix(path, where, head + 8, got - 8, get32(head + 4, swap), swap);
        }
        at += 8 + len;
    }
    fclose(f);
    return s;
}

/* Refuses, before matio sees it, a file without the 128-byte header of
 * version 5 or 7.3 (version 0x0100 or 0x0200, then the endian mark). matio
 * takes any such file for version 4, which cannot hold a 4-D uint8 array
 * anyway, and its version 4 probe allocates whatever the first bytes say a
 * name's length is: "MATLAB 5.0" four bytes in asked for 1.7 GB. */
static clasp_status check_mat_header(const char *path, long long size)
{
    unsigned char hdr[MAT5_HEADER];
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open", path);
    got = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    int swap = got == sizeof hdr && hdr[126] == 'M' && hdr[127] == 'I';
    int mark = got == sizeof hdr && (swap || (hdr[126] == 'I' && hdr[127] == 'M'));
    unsigned version =
        swap ? (unsigned)hdr[124] << 8 | hdr[125] : (unsigned)hdr[125] << 8 | hdr[124];
    if (!mark || (version != 0x0100 && version != 0x0200))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: not a MAT file of version 5 or 7.3 (%s), expected variables X "
                           "(uint8 32x32x3xN) and y",
                           path,
                           size == 0          ? "empty file"
                           : got < sizeof hdr ? "shorter than the 128-byte header"
                           : !mark            ? "no endian mark 'IM' or 'MI' at byte 126"
                                              : "version at byte 124 is neither 0x0100 nor 0x0200");
    return CLASP_OK;
}

static clasp_status bad_var(const char *path, const matvar_t *v, const char *name,
                            const char *expected)
{
    char got[128];
    return clasp_error(CLASP_ERR_FORMAT, "%s: variable '%s' is %s, expected %s", path, name,
                       describe(v, got, sizeof got), expected);
}

/* Reads the header of X and y and checks type and shape; *n = images. */
static clasp_status check_vars(mat_t *mat, const char *path, size_t *n, int *y_double)
{
    static const char x_expected[] = "uint8 32x32x3xN (row, column, channel, image)";
    static const char y_expected[] = "double or uint8 Nx1 with labels 1..10";
    matio_msg[0] = '\0';
    matvar_t *x = Mat_VarReadInfo(mat, "X");
    matvar_t *y = x ? Mat_VarReadInfo(mat, "y") : NULL;
    clasp_status s = CLASP_OK;
    char got[128];
    if ((!x || !y) && matio_msg[0]) {
        /* Damaged rather than absent. */
        s = clasp_error(CLASP_ERR_FORMAT,
                        "%s: variable '%s': cannot read its header (libmatio: %s)", path,
                        x ? "y" : "X", matio_msg);
    } else if (!x || !y) {
        s = clasp_error(CLASP_ERR_FORMAT, "%s: no variable '%s', expected %s", path, x ? "y" : "X",
                        x ? y_expected : x_expected);
    } else if (x->class_type != MAT_C_UINT8 || x->isComplex || x->isLogical ||
               (x->rank != 4 && x->rank != 3) || x->dims[0] != SVHN_SIDE ||
               x->dims[1] != SVHN_SIDE || x->dims[2] != 3 || (x->rank == 4 && x->dims[3] == 0)) {
        /* Rank 3 is one image: MATLAB drops trailing singleton dims. */
        s = bad_var(path, x, "X", x_expected);
    } else if ((y->class_type != MAT_C_DOUBLE && y->class_type != MAT_C_UINT8) || y->isComplex ||
               y->isLogical || y->rank != 2 || (y->dims[1] != 1 && y->dims[0] != 1)) {
        s = bad_var(path, y, "y", y_expected);
    } else if (y->dims[0] * y->dims[1] != (x->rank == 4 ? x->dims[3] : 1)) {
        size_t images = x->rank == 4 ? x->dims[3] : 1;
        s = clasp_error(CLASP_ERR_FORMAT,
                        "%s: variable 'y' is %s, but 'X' holds %zu images; expected %zux1", path,
                        describe(y, got, sizeof got), images, images);
    } else {
        *n = x->rank == 4 ? x->dims[3] : 1;
        *y_double = y->class_type == MAT_C_DOUBLE;
    }
    Mat_VarFree(x);
    Mat_VarFree(y);
    return s;
}

/* Reads one variable's data, insisting on `bytes` bytes and a quiet log. */
static clasp_status read_var(mat_t *mat, const char *path, const char *name, size_t bytes,
                             matvar_t **out)
{
    matio_msg[0] = '\0';
    matvar_t *v = Mat_VarRead(mat, name);
    if (!v || !v->data || v->nbytes != bytes || matio_msg[0]) {
        Mat_VarFree(v);
        return clasp_error(CLASP_ERR_FORMAT, "%s: variable '%s': cannot read its %zu bytes%s%s%s",
                           path, name, bytes, matio_msg[0] ? " (libmatio: " : "", matio_msg,
                           matio_msg[0] ? ")" : "");
    }
    *out = v;
    return CLASP_OK;
}

static clasp_status decode(const char *path, const matvar_t *x, const matvar_t *y, size_t n,
                           clasp_dataset *out)
{
    for (size_t i = 0; i < n; i++) {
        double v = y->class_type == MAT_C_DOUBLE ? ((const double *)y->data)[i]
                                                 : ((const uint8_t *)y->data)[i];
        if (!(v >= 1 && v <= SVHN_CLASSES) || v != floor(v))
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: variable 'y': y(%zu) = %g is out of range, expected an "
                               "integer 1..10 (10 for the digit 0)",
                               path, i + 1, v);
        out->y[i] = (int32_t)v % SVHN_CLASSES;
    }
    const uint8_t *px = x->data;
    for (size_t i = 0; i < n; i++) {
        float *img = out->x + i * SVHN_IMAGE;
        const uint8_t *src = px + i * SVHN_IMAGE;
        for (int ch = 0; ch < 3; ch++)
            for (int c = 0; c < SVHN_SIDE; c++)
                for (int r = 0; r < SVHN_SIDE; r++)
                    img[(ch * SVHN_SIDE + r) * SVHN_SIDE + c] =
                        (float)src[(ch * SVHN_SIDE + c) * SVHN_SIDE + r] / 255.0f;
    }
    return CLASP_OK;
}

static clasp_status svhn_read(mat_t *mat, const char *path, clasp_dataset *out)
{
    size_t n = 0;
    int y_double = 0;
    CLASP_TRY(check_vars(mat, path, &n, &y_double));
    if (n > SIZE_MAX / sizeof(float) / SVHN_IMAGE)
        return clasp_error(CLASP_ERR_NOMEM, "%s: %zu images do not fit in memory", path, n);
    matvar_t *x = NULL, *y = NULL;
    clasp_status s = read_var(mat, path, "y", n * (y_double ? sizeof(double) : 1), &y);
    if (s == CLASP_OK) s = read_var(mat, path, "X", n * SVHN_IMAGE, &x);
    if (s == CLASP_OK) {
        out->x = malloc(n * SVHN_IMAGE * sizeof(float));
        out->y = malloc(n * sizeof(int32_t));
        if (!out->x || !out->y)
            s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu SVHN images", path, n);
    }
    if (s == CLASP_OK) s = decode(path, x, y, n, out);
    Mat_VarFree(x);
    Mat_VarFree(y);
    if (s == CLASP_OK) out->n = n;
    return s;
}

clasp_status clasp_svhn_load(const char *dir, int train, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_svhn_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return clasp_error(CLASP_ERR_INVALID, "clasp_svhn_load: dir is NULL");
    char path[4096];
    long long size = 0;
    CLASP_TRY(
        clasp_data_join(path, sizeof path, dir, train ? "train_32x32.mat" : "test_32x32.mat"));
    CLASP_TRY(clasp_data_file_size(path, &size));

    CLASP_TRY(check_mat_header(path, size));

    /* matio's log is process-wide; ours only while we read, then its own
     * default (printing to stderr) again. */
    matio_msg[0] = '\0';
    Mat_LogInitFunc("clasp", capture_log);
    clasp_status s = CLASP_OK;
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat)
        s = clasp_error(CLASP_ERR_FORMAT, "%s: not a MAT file of version 5 or 7.3%s%s%s", path,
                        matio_msg[0] ? " (libmatio: " : "", matio_msg, matio_msg[0] ? ")" : "");
    if (s == CLASP_OK && Mat_GetVersion(mat) == MAT_FT_MAT5) s = check_mat5_length(path, size);
    if (s == CLASP_OK) s = svhn_read(mat, path, out);
    if (mat) Mat_Close(mat);
    Mat_LogInit("clasp");
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    out->c = 3;
    out->h = SVHN_SIDE;
    out->w = SVHN_SIDE;
    s = clasp_dataset_set_classes(out, SVHN_CLASSES);
    if (s != CLASP_OK) {
        clasp_dataset_free(out);
        return s;
    }
    for (int k = 0; k < SVHN_CLASSES; k++)
        snprintf(out->class_names[k], CLASP_CLASS_NAME_MAX, "%s", clasp_digit_classes[k]);
    return CLASP_OK;
}
