/* clasp — safetensors reader and writer (host side).
 *
 * The JSON header is parsed and produced by json-c; only the framing is done
 * here: an 8-byte little-endian header length N, N bytes of JSON (padded with
 * spaces so the data area starts 8-byte aligned), then the tensors' raw bytes
 * back to back in the order they were added. Reading checks everything the
 * header claims against the file before any data is trusted; like the
 * reference implementation it also requires the tensors to cover the data
 * area exactly (no overlap, no unclaimed bytes). */
#include "clasp/safetensors.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>

/* Tensor bytes are copied to and from the file unchanged, which is only
 * correct when the host stores numbers the way the format does. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "clasp safetensors I/O needs a little-endian host"
#endif

#define ST_META_KEY "__metadata__"
#define ST_MAX_ELEM 8u             /* the widest dtype, I64 */
#define ST_ALIGN 8u                /* data area alignment in the file */
#define ST_MAX_HEADER 100000000ull /* same cap as the reference format */
/* Metadata key of the checksum clasp writes (8 hex digits). */
#define ST_CRC_KEY "clasp.crc32"

static const char *const st_dtype_names[] = {"F32", "I32", "I64"};
#define ST_N_DTYPES 3

static size_t st_elem_size(clasp_st_dtype d)
{
    return d == CLASP_ST_I64 ? 8u : 4u;
}

/* ---------------------------------------------------------------- memory */

void clasp_st_init(clasp_st_file *f)
{
    if (f) memset(f, 0, sizeof *f);
}

void clasp_st_free(clasp_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    clasp_st_init(f);
}

const clasp_st_tensor *clasp_st_find(const clasp_st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *clasp_st_meta(const clasp_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* Element count of a shape, or false when its byte size would not fit in
 * memory or in a file offset. A zero extent makes the product zero even if
 * the other extents alone would overflow. */
static bool st_numel(int ndim, const int64_t *shape, size_t *numel)
{
    uint64_t limit = (SIZE_MAX < INT64_MAX ? SIZE_MAX : INT64_MAX) / ST_MAX_ELEM;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) {
            *numel = 0;
            return true;
        }
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > limit / n) return false;
        n *= (uint64_t)shape[i];
    }
    *numel = (size_t)n;
    return true;
}

/* Never returns NULL for an empty tensor, so callers may always pass
 * t->data to memcpy and friends. */
static void *st_alloc_data(size_t numel, clasp_st_dtype d)
{
    return malloc(numel ? numel * st_elem_size(d) : 1);
}

/* ------------------------------------------------------------- building */

static clasp_status st_check_new_tensor(const clasp_st_file *f, const char *name,
                                        clasp_st_dtype dtype, int ndim, const int64_t *shape,
                                        const void *data, size_t *numel)
{
    if (!f || !name) return clasp_error(CLASP_ERR_INVALID, "clasp_st_add: NULL file or name");
    if (dtype != CLASP_ST_F32 && dtype != CLASP_ST_I32 && dtype != CLASP_ST_I64)
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: tensor \"%s\": "
                           "unknown dtype %d",
                           name, (int)dtype);
    if (ndim < 0 || ndim > CLASP_ST_MAX_DIMS || (ndim > 0 && !shape))
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: tensor \"%s\": "
                           "ndim %d, expected 0..%d with a shape",
                           name, ndim, CLASP_ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return clasp_error(CLASP_ERR_INVALID,
                               "clasp_st_add: tensor \"%s\": "
                               "shape[%d] is %" PRId64 ", expected >= 0",
                               name, i, shape[i]);
    /* The key is taken by the metadata object in the header. */
    if (strcmp(name, ST_META_KEY) == 0)
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: \"%s\" is reserved "
                           "for metadata",
                           name);
    if (clasp_st_find(f, name))
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: duplicate tensor "
                           "name \"%s\"",
                           name);
    if (!st_numel(ndim, shape, numel))
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: tensor \"%s\": "
                           "shape is too large",
                           name);
    if (*numel > 0 && !data)
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_st_add: tensor \"%s\": "
                           "NULL data for %zu elements",
                           name, *numel);
    return CLASP_OK;
}

clasp_status clasp_st_add(clasp_st_file *f, const char *name, clasp_st_dtype dtype, int ndim,
                          const int64_t *shape, const void *data)
{
    size_t numel = 0;
    CLASP_TRY(st_check_new_tensor(f, name, dtype, ndim, shape, data, &numel));

    char *name_copy = strdup(name);
    void *data_copy = st_alloc_data(numel, dtype);
    clasp_st_tensor *grown = NULL;
    if (name_copy && data_copy) grown = realloc(f->tensors, (f->n_tensors + 1) * sizeof *grown);
    if (!grown) {
        free(name_copy);
        free(data_copy);
        return clasp_error(CLASP_ERR_NOMEM,
                           "clasp_st_add: tensor \"%s\": out "
                           "of memory",
                           name);
    }
    f->tensors = grown;
    if (numel) memcpy(data_copy, data, numel * st_elem_size(dtype));

    clasp_st_tensor *t = &f->tensors[f->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = name_copy;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data_copy;
    return CLASP_OK;
}

/* Appends a key/value pair; both strings are already owned copies. */
static clasp_status st_push_meta(clasp_st_file *f, char *key, char *value)
{
    char **keys = realloc(f->meta_keys, (f->n_meta + 1) * sizeof *keys);
    if (keys) f->meta_keys = keys;
    char **values = keys ? realloc(f->meta_values, (f->n_meta + 1) * sizeof *values) : NULL;
    if (!values) return CLASP_ERR_NOMEM;
    f->meta_values = values;
    f->meta_keys[f->n_meta] = key;
    f->meta_values[f->n_meta] = value;
    f->n_meta++;
    return CLASP_OK;
}

clasp_status clasp_st_set_meta(clasp_st_file *f, const char *key, const char *value)
{
    if (!f || !key || !value)
        return clasp_error(CLASP_ERR_INVALID, "clasp_st_set_meta: NULL argument");
    char *value_copy = strdup(value);
    if (!value_copy) goto nomem;
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) {
            free(f->meta_values[i]);
            f->meta_values[i] = value_copy;
            return CLASP_OK;
        }
    char *key_copy = strdup(key);
    if (key_copy && st_push_meta(f, key_copy, value_copy) == CLASP_OK) return CLASP_OK;
    free(key_copy);
    free(value_copy);
nomem:
    return clasp_error(CLASP_ERR_NOMEM, "clasp_st_set_meta: \"%s\": out of memory", key);
}

/* -------------------------------------------------------------- writing */

/* Adds `val` under `key`, taking ownership of `val` even on failure so
 * callers need a single error path. NULL `val` (a failed json-c allocation)
 * is reported as a failure. */
static bool st_json_put(json_object *obj, const char *key, json_object *val)
{
    if (!val) return false;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

static bool st_json_push(json_object *arr, json_object *val)
{
    if (!val) return false;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

static json_object *st_int_array(const int64_t *v, int n)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; arr && i < n; i++)
        if (!st_json_push(arr, json_object_new_int64(v[i]))) {
            json_object_put(arr);
            return NULL;
        }
    return arr;
}

static json_object *st_tensor_entry(const clasp_st_tensor *t, uint64_t begin)
{
    int64_t offsets[2] = {(int64_t)begin,
                          (int64_t)(begin + (uint64_t)t->numel * st_elem_size(t->dtype))};
    json_object *e = json_object_new_object();
    if (!e) return NULL;
    /* Key order here is the order readers see; keep the reference's. */
    if (!st_json_put(e, "dtype", json_object_new_string(st_dtype_names[t->dtype])) ||
        !st_json_put(e, "shape", st_int_array(t->shape, t->ndim)) ||
        !st_json_put(e, "data_offsets", st_int_array(offsets, 2))) {
        json_object_put(e);
        return NULL;
    }
    return e;
}

static int st_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* CRC-32 over what a reader takes from the file: every metadata pair but
 * the checksum's own (in key order, so the header's order does not
 * matter), then each tensor's name and bytes in file order. Truncation is
 * caught by the layout checks; this catches changed bytes, so a corrupt
 * checkpoint or state file is refused instead of half-loaded. */
static clasp_status st_crc(const clasp_st_file *f, const char *path, uint32_t *out)
{
    const char **keys = malloc((f->n_meta ? f->n_meta : 1) * sizeof *keys);
    if (!keys) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    size_t n = 0;
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], ST_CRC_KEY) != 0) keys[n++] = f->meta_keys[i];
    qsort(keys, n, sizeof *keys, st_cmp_str);
    uLong c = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < n; i++) {
        const char *v = clasp_st_meta(f, keys[i]);
        c = crc32(c, (const Bytef *)keys[i], (uInt)strlen(keys[i]) + 1);
        c = crc32(c, (const Bytef *)v, (uInt)strlen(v) + 1);
    }
    free(keys);
    for (size_t i = 0; i < f->n_tensors; i++) {
        const clasp_st_tensor *t = &f->tensors[i];
        c = crc32(c, (const Bytef *)t->name, (uInt)strlen(t->name) + 1);
        /* crc32_z takes a size_t length: tensors may pass 4 GiB. */
        if (t->numel) c = crc32_z(c, (const Bytef *)t->data, t->numel * st_elem_size(t->dtype));
    }
    *out = (uint32_t)c;
    return CLASP_OK;
}

static json_object *st_meta_object(const clasp_st_file *f, uint32_t crc)
{
    json_object *m = json_object_new_object();
    for (size_t i = 0; m && i < f->n_meta; i++) {
        if (!strcmp(f->meta_keys[i], ST_CRC_KEY)) continue; /* recomputed below */
        if (!st_json_put(m, f->meta_keys[i], json_object_new_string(f->meta_values[i]))) {
            json_object_put(m);
            return NULL;
        }
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08" PRIx32, crc);
    if (m && !st_json_put(m, ST_CRC_KEY, json_object_new_string(hex))) {
        json_object_put(m);
        return NULL;
    }
    return m;
}

/* The header JSON object: metadata first (with the checksum), then each tensor with
 * its offsets, laid out contiguously in order. */
static clasp_status st_header_json(const clasp_st_file *f, const char *path, json_object **out)
{
    uint32_t crc;
    CLASP_TRY(st_crc(f, path, &crc));
    json_object *root = json_object_new_object();
    bool ok = root != NULL;
    if (ok) ok = st_json_put(root, ST_META_KEY, st_meta_object(f, crc));
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < f->n_tensors; i++) {
        const clasp_st_tensor *t = &f->tensors[i];
        /* json-c would silently replace a duplicate key, leaving the header
         * and the data out of step; clasp_st_add forbids this, but the struct
         * is public and may have been filled by hand. */
        if (json_object_object_get_ex(root, t->name, NULL)) {
            json_object_put(root);
            return clasp_error(CLASP_ERR_INVALID,
                               "%s: duplicate tensor name "
                               "\"%s\"",
                               path, t->name);
        }
        ok = st_json_put(root, t->name, st_tensor_entry(t, offset));
        offset += (uint64_t)t->numel * st_elem_size(t->dtype);
    }
    if (!ok) {
        json_object_put(root);
        return clasp_error(CLASP_ERR_NOMEM,
                           "%s: out of memory building the "
                           "header",
                           path);
    }
    *out = root;
    return CLASP_OK;
}

/* Serialised header padded with spaces to a multiple of ST_ALIGN, so that
 * 8 + length (the data area start) is aligned too. */
static clasp_status st_header_bytes(const clasp_st_file *f, const char *path, char **out,
                                    size_t *out_len)
{
    json_object *root = NULL;
    CLASP_TRY(st_header_json(f, path, &root));
    size_t len = 0;
    const char *text =
        json_object_to_json_string_length(root,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                          &len);
    size_t padded = (len + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
    char *buf = text ? malloc(padded) : NULL;
    if (buf) {
        memcpy(buf, text, len);
        memset(buf + len, ' ', padded - len);
    }
    json_object_put(root);
    if (!buf)
        return clasp_error(CLASP_ERR_NOMEM,
                           "%s: out of memory serialising "
                           "the header",
                           path);
    *out = buf;
    *out_len = padded;
    return CLASP_OK;
}

/* The file's bytes; the atomic file flushes and syncs them. */
static int st_write_stream(FILE *fp, const clasp_st_file *f, const char *hdr, size_t hdr_len)
{
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)hdr_len >> (8 * i));
    bool ok = fwrite(len_le, 1, 8, fp) == 8 && fwrite(hdr, 1, hdr_len, fp) == hdr_len;
    for (size_t i = 0; ok && i < f->n_tensors; i++) {
        size_t bytes = f->tensors[i].numel * st_elem_size(f->tensors[i].dtype);
        ok = bytes == 0 || fwrite(f->tensors[i].data, 1, bytes, fp) == bytes;
    }
    return ok;
}

clasp_status clasp_st_write(const clasp_st_file *f, const char *path)
{
    if (!f || !path) return clasp_error(CLASP_ERR_INVALID, "clasp_st_write: NULL argument");
    char *hdr = NULL;
    size_t hdr_len = 0;
    CLASP_TRY(st_header_bytes(f, path, &hdr, &hdr_len));
    clasp_atomic_file a;
    clasp_status s = clasp_atomic_open(&a, path, "wb");
    if (s == CLASP_OK) s = clasp_atomic_commit(&a, st_write_stream(a.f, f, hdr, hdr_len));
    free(hdr);
    return s;
}

/* -------------------------------------------------------------- reading */

/* One tensor's byte range in the data area, kept while validating. */
typedef struct st_range {
    uint64_t begin, end;
} st_range;

/* Reads exactly n bytes at `offset`, retrying short reads. */
static clasp_status st_pread(int fd, const char *path, void *buf, size_t n, uint64_t offset)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return clasp_error(CLASP_ERR_IO, "%s: read failed at byte %" PRIu64 ": %s", path,
                               offset, strerror(errno));
        if (got == 0)
            return clasp_error(CLASP_ERR_IO,
                               "%s: file ended at byte %" PRIu64
                               " while reading (changed while open?)",
                               path, offset);
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return CLASP_OK;
}

/* Reads the length prefix and the raw header bytes (NUL-terminated). */
static clasp_status st_read_header(int fd, const char *path, uint64_t file_size, char **out,
                                   size_t *out_len)
{
    if (file_size < 8)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: file is %" PRIu64 " bytes, "
                           "shorter than the 8-byte header length",
                           path, file_size);
    unsigned char len_le[8];
    CLASP_TRY(st_pread(fd, path, len_le, 8, 0));
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | len_le[i];
    /* The cap keeps a corrupt length from turning into a huge allocation. */
    if (n > ST_MAX_HEADER)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: header length %" PRIu64 " (bytes 0-7) exceeds the %llu-byte limit",
                           path, n, ST_MAX_HEADER);
    if (n > file_size - 8)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: header length %" PRIu64 " (bytes 0-7) is larger than the %" PRIu64
                           " bytes after it",
                           path, n, file_size - 8);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path,
                           n);
    clasp_status s = st_pread(fd, path, buf, (size_t)n, 8);
    if (s != CLASP_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = (size_t)n;
    return CLASP_OK;
}

static bool st_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses the header text into a JSON object. Positions in messages are file
 * byte offsets (header text starts at byte 8). */
static clasp_status st_parse_json(const char *path, const char *text, size_t len, json_object **out)
{
    /* JSON text cannot contain a raw NUL, and json-c would stop at one. */
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: NUL byte in the header at byte "
                           "%zu",
                           path, 8 + (size_t)(nul - text));
    json_tokener *tok = json_tokener_new();
    if (!tok) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    /* Trailing bytes are checked below, for a clearer message than json-c's
     * strict mode gives. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    clasp_status s = CLASP_OK;
    if (err == json_tokener_continue)
        s = clasp_error(CLASP_ERR_FORMAT,
                        "%s: header JSON is incomplete: the "
                        "header ends at byte %zu before the JSON does",
                        path, 8 + len);
    else if (err != json_tokener_success)
        s = clasp_error(CLASP_ERR_FORMAT,
                        "%s: header JSON parse error at byte "
                        "%zu: %s",
                        path, 8 + end, json_tokener_error_desc(err));
    else {
        while (end < len && st_is_space(text[end])) end++;
        if (end < len)
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: unexpected '%c' after the "
                            "header JSON at byte %zu, expected only space padding",
                            path, text[end], 8 + end);
        else if (!json_object_is_type(root, json_type_object))
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: header JSON is %s, expected an "
                            "object of tensors",
                            path, json_type_to_name(json_object_get_type(root)));
    }
    if (s != CLASP_OK) {
        json_object_put(root);
        return s;
    }
    *out = root;
    return CLASP_OK;
}

static const char *st_type_name(const json_object *v)
{
    return json_type_to_name(json_object_get_type(v));
}

/* Looks up member `key` of a tensor entry and checks its JSON type. */
static clasp_status st_member(const char *path, const char *name, json_object *entry,
                              const char *key, json_type want, json_object **out)
{
    if (!json_object_object_get_ex(entry, key, out))
        return clasp_error(CLASP_ERR_FORMAT, "%s: tensor \"%s\": missing \"%s\"", path, name, key);
    if (!json_object_is_type(*out, want))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": \"%s\" is %s, "
                           "expected %s",
                           path, name, key, st_type_name(*out), json_type_to_name(want));
    return CLASP_OK;
}

/* Reads element i of a JSON array as a non-negative integer. */
static clasp_status st_uint_at(const char *path, const char *name, const char *key,
                               json_object *arr, size_t i, uint64_t *out)
{
    json_object *v = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(v, json_type_int))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": %s[%zu] is %s, "
                           "expected an integer",
                           path, name, key, i, st_type_name(v));
    int64_t x = json_object_get_int64(v);
    if (x < 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": %s[%zu] is %" PRId64 ", expected >= 0", path, name,
                           key, i, x);
    /* json-c keeps integers above INT64_MAX as unsigned; get_int64 clamps
     * them, get_uint64 does not. */
    *out = json_object_get_uint64(v);
    return CLASP_OK;
}

static clasp_status st_parse_dtype(const char *path, const char *name, json_object *entry,
                                   clasp_st_dtype *out)
{
    json_object *v;
    CLASP_TRY(st_member(path, name, entry, "dtype", json_type_string, &v));
    const char *s = json_object_get_string(v);
    for (int d = 0; d < ST_N_DTYPES; d++)
        if (strcmp(s, st_dtype_names[d]) == 0) {
            *out = (clasp_st_dtype)d;
            return CLASP_OK;
        }
    return clasp_error(CLASP_ERR_FORMAT,
                       "%s: tensor \"%s\": unknown dtype \"%s\" "
                       "(supported: F32, I32, I64)",
                       path, name, s);
}

static clasp_status st_parse_shape(const char *path, const char *name, json_object *entry,
                                   clasp_st_tensor *t)
{
    json_object *v;
    CLASP_TRY(st_member(path, name, entry, "shape", json_type_array, &v));
    size_t n = json_object_array_length(v);
    if (n > CLASP_ST_MAX_DIMS)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": shape has %zu "
                           "dimensions, at most %d are supported",
                           path, name, n, CLASP_ST_MAX_DIMS);
    for (size_t i = 0; i < n; i++) {
        uint64_t d;
        CLASP_TRY(st_uint_at(path, name, "shape", v, i, &d));
        if (d > INT64_MAX)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: tensor \"%s\": shape[%zu] "
                               "is too large",
                               path, name, i);
        t->shape[i] = (int64_t)d;
    }
    t->ndim = (int)n;
    if (!st_numel(t->ndim, t->shape, &t->numel))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": shape is too "
                           "large",
                           path, name);
    return CLASP_OK;
}

static clasp_status st_parse_offsets(const char *path, const char *name, json_object *entry,
                                     const clasp_st_tensor *t, uint64_t data_size, st_range *r)
{
    json_object *v;
    CLASP_TRY(st_member(path, name, entry, "data_offsets", json_type_array, &v));
    if (json_object_array_length(v) != 2)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": data_offsets has "
                           "%zu elements, expected [begin, end]",
                           path, name, json_object_array_length(v));
    CLASP_TRY(st_uint_at(path, name, "data_offsets", v, 0, &r->begin));
    CLASP_TRY(st_uint_at(path, name, "data_offsets", v, 1, &r->end));
    if (r->begin > r->end)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                           "] has begin after end",
                           path, name, r->begin, r->end);
    if (r->end > data_size)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": data_offsets end %" PRIu64 " is beyond the %" PRIu64
                           "-byte data area",
                           path, name, r->end, data_size);
    uint64_t want = (uint64_t)t->numel * st_elem_size(t->dtype);
    if (r->end - r->begin != want)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": data_offsets span %" PRIu64
                           " bytes, expected %" PRIu64 " (%zu %s elements)",
                           path, name, r->end - r->begin, want, t->numel, st_dtype_names[t->dtype]);
    return CLASP_OK;
}

/* Fills t (name owned) and r from one header entry; data is read later. */
static clasp_status st_parse_tensor(const char *path, const char *name, json_object *entry,
                                    uint64_t data_size, clasp_st_tensor *t, st_range *r)
{
    if (!json_object_is_type(entry, json_type_object))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": entry is %s, "
                           "expected an object with dtype, shape and data_offsets",
                           path, name, st_type_name(entry));
    memset(t, 0, sizeof *t);
    CLASP_TRY(st_parse_dtype(path, name, entry, &t->dtype));
    CLASP_TRY(st_parse_shape(path, name, entry, t));
    CLASP_TRY(st_parse_offsets(path, name, entry, t, data_size, r));
    t->name = strdup(name);
    if (!t->name) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    return CLASP_OK;
}

static clasp_status st_parse_meta(const char *path, json_object *meta, clasp_st_file *out)
{
    if (!json_object_is_type(meta, json_type_object))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: \"%s\" is %s, expected an object "
                           "of strings",
                           path, ST_META_KEY, st_type_name(meta));
    struct json_object_iterator it = json_object_iter_begin(meta);
    struct json_object_iterator end = json_object_iter_end(meta);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        if (!json_object_is_type(v, json_type_string))
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: %s value for \"%s\" is %s, "
                               "expected a string",
                               path, ST_META_KEY, key, st_type_name(v));
        char *k = strdup(key), *val = strdup(json_object_get_string(v));
        if (!k || !val || st_push_meta(out, k, val) != CLASP_OK) {
            free(k);
            free(val);
            return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    return CLASP_OK;
}

/* Walks the header in its own order (json-c keeps insertion order), so
 * tensors come back in the order the writer listed them. */
static clasp_status st_parse_entries(const char *path, json_object *root, uint64_t data_size,
                                     clasp_st_file *out, st_range *ranges)
{
    struct json_object_iterator it = json_object_iter_begin(root);
    struct json_object_iterator end = json_object_iter_end(root);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        if (strcmp(key, ST_META_KEY) == 0) {
            CLASP_TRY(st_parse_meta(path, v, out));
            continue;
        }
        size_t i = out->n_tensors;
        clasp_st_tensor *t = &out->tensors[i];
        clasp_status s = st_parse_tensor(path, key, v, data_size, t, &ranges[i]);
        if (s != CLASP_OK) {
            free(t->name);
            return s;
        }
        out->n_tensors++;
    }
    return CLASP_OK;
}

/* A range with the index of its tensor, so it can be sorted by offset. */
typedef struct st_slot {
    st_range r;
    size_t index;
} st_slot;

static int st_cmp_slots(const void *a, const void *b)
{
    const st_range *ra = &((const st_slot *)a)->r, *rb = &((const st_slot *)b)->r;
    if (ra->begin != rb->begin) return ra->begin < rb->begin ? -1 : 1;
    if (ra->end != rb->end) return ra->end < rb->end ? -1 : 1;
    return 0;
}

/* Walks the non-empty ranges in offset order, which must tile the data area
 * exactly, as the reference format requires: an overlap would let two
 * tensors alias, and a gap or unused tail means the header and the data
 * disagree (json-c keeps only the last of two entries with the same name,
 * which shows up here as a gap). Empty tensors own no bytes; any offset
 * within the area is accepted for them. */
static clasp_status st_check_tiling(const char *path, const clasp_st_file *f, const st_slot *slots,
                                    uint64_t data_size)
{
    const st_slot *prev = NULL;
    uint64_t covered = 0;
    for (size_t k = 0; k < f->n_tensors; k++) {
        const st_slot *cur = &slots[k];
        if (cur->r.begin == cur->r.end) continue;
        if (cur->r.begin < covered)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: tensors \"%s\" [%" PRIu64 ", %" PRIu64 ") and \"%s\" [%" PRIu64
                               ", %" PRIu64 ") overlap in the data area",
                               path, f->tensors[prev->index].name, prev->r.begin, prev->r.end,
                               f->tensors[cur->index].name, cur->r.begin, cur->r.end);
        if (cur->r.begin > covered)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: data area bytes [%" PRIu64 ", %" PRIu64
                               ") before tensor \"%s\" belong to no "
                               "tensor (duplicate name or bad offsets?)",
                               path, covered, cur->r.begin, f->tensors[cur->index].name);
        covered = cur->r.end;
        prev = cur;
    }
    if (covered != data_size)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: data area bytes [%" PRIu64 ", %" PRIu64
                           ") at the end belong to no tensor (trailing "
                           "garbage or a missing entry?)",
                           path, covered, data_size);
    return CLASP_OK;
}

static clasp_status st_check_layout(const char *path, const clasp_st_file *f,
                                    const st_range *ranges, uint64_t data_size)
{
    size_t n = f->n_tensors;
    st_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    if (!slots) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) slots[i] = (st_slot){ranges[i], i};
    qsort(slots, n, sizeof *slots, st_cmp_slots);
    clasp_status s = st_check_tiling(path, f, slots, data_size);
    free(slots);
    return s;
}

static clasp_status st_read_data(int fd, const char *path, uint64_t data_start, clasp_st_file *f,
                                 const st_range *ranges)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        clasp_st_tensor *t = &f->tensors[i];
        t->data = st_alloc_data(t->numel, t->dtype);
        if (!t->data)
            return clasp_error(CLASP_ERR_NOMEM,
                               "%s: tensor \"%s\": out of memory "
                               "for %zu elements",
                               path, t->name, t->numel);
        CLASP_TRY(st_pread(fd, path, t->data, t->numel * st_elem_size(t->dtype),
                           data_start + ranges[i].begin));
    }
    return CLASP_OK;
}

/* Files written by clasp carry a checksum; files from elsewhere (PyTorch's
 * safetensors) have none and are taken as they are. */
static clasp_status st_check_crc(const char *path, clasp_st_file *f)
{
    const char *stored = clasp_st_meta(f, ST_CRC_KEY);
    if (!stored) return CLASP_OK;
    char *end;
    errno = 0;
    unsigned long want = strtoul(stored, &end, 16);
    if (strlen(stored) != 8 || *end || errno)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: metadata \"%s\" is \"%.40s\", expected 8 hex "
                           "digits",
                           path, ST_CRC_KEY, stored);
    uint32_t got;
    CLASP_TRY(st_crc(f, path, &got));
    if (got != (uint32_t)want)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: the file is corrupt: its contents do not match "
                           "the checksum in its header (CRC-32 %08" PRIx32 " computed, %s stored)",
                           path, got, stored);
    f->verified = 1;
    /* Checked: like the header length, the checksum is framing, not
     * metadata a caller set, so it does not come back as such. */
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], ST_CRC_KEY)) {
            free(f->meta_keys[i]);
            free(f->meta_values[i]);
            memmove(f->meta_keys + i, f->meta_keys + i + 1,
                    (f->n_meta - i - 1) * sizeof *f->meta_keys);
            memmove(f->meta_values + i, f->meta_values + i + 1,
                    (f->n_meta - i - 1) * sizeof *f->meta_values);
            f->n_meta--;
            break;
        }
    return CLASP_OK;
}

/* Everything after opening: header, validation, data. */
static clasp_status st_read_fd(int fd, const char *path, clasp_st_file *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return clasp_error(CLASP_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    uint64_t file_size = (uint64_t)st.st_size;
    char *text = NULL;
    size_t len = 0;
    CLASP_TRY(st_read_header(fd, path, file_size, &text, &len));
    json_object *root = NULL;
    clasp_status s = st_parse_json(path, text, len, &root);
    free(text);
    if (s != CLASP_OK) return s;

    size_t n_entries = (size_t)json_object_object_length(root);
    st_range *ranges = calloc(n_entries ? n_entries : 1, sizeof *ranges);
    out->tensors = calloc(n_entries ? n_entries : 1, sizeof *out->tensors);
    if (!ranges || !out->tensors)
        s = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu header entries", path,
                        n_entries);
    uint64_t data_start = 8 + (uint64_t)len;
    uint64_t data_size = file_size - data_start;
    if (s == CLASP_OK) s = st_parse_entries(path, root, data_size, out, ranges);
    if (s == CLASP_OK) s = st_check_layout(path, out, ranges, data_size);
    if (s == CLASP_OK) s = st_read_data(fd, path, data_start, out, ranges);
    if (s == CLASP_OK) s = st_check_crc(path, out);
    free(ranges);
    json_object_put(root);
    return s;
}

clasp_status clasp_st_read(const char *path, clasp_st_file *out)
{
    if (!path || !out) return clasp_error(CLASP_ERR_INVALID, "clasp_st_read: NULL argument");
    clasp_st_init(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return clasp_error(errno == ENOENT ? CLASP_ERR_NOT_FOUND : CLASP_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    clasp_status s = st_read_fd(fd, path, out);
    close(fd);
    if (s != CLASP_OK) clasp_st_free(out);
    return s;
}
