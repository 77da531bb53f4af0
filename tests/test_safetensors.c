/* safetensors: round trips, the exact byte layout, every malformed-file
 * error the reader promises, atomic writes and clasp_st_add's checks. */
#include "testutil.h"

#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clasp/safetensors.h"

/* ------------------------------------------------------------- helpers */

typedef struct fixture {
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    tu_tmpdir(fx->dir, sizeof fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_rmdir(fx->dir);
    free(fx);
    return 0;
}

static void join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Writes a file by hand: the given header length, header text, data. */
static void craft_raw(const char *path, uint64_t hdr_len, const char *hdr, size_t hdr_bytes,
                      const void *data, size_t data_len)
{
    size_t n = 8 + hdr_bytes + data_len;
    unsigned char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hdr_len >> (8 * i));
    memcpy(buf + 8, hdr, hdr_bytes);
    if (data_len) memcpy(buf + 8 + hdr_bytes, data, data_len);
    tu_write_file(path, buf, n);
    free(buf);
}

/* The common case: a correct length prefix, then `data_len` bytes of data. */
static void craft(const char *path, const char *hdr, size_t data_len)
{
    unsigned char data[64] = {0};
    assert_true(data_len <= sizeof data);
    craft_raw(path, strlen(hdr), hdr, strlen(hdr), data, data_len);
}

/* Expects clasp_st_read to fail with CLASP_ERR_FORMAT, leave `out` empty and
 * report a message naming the file and containing each of the NULL-terminated
 * `needles`. */
static void expect_format_(const char *path, const char *first, ...)
{
    clasp_st_file f;
    clasp_st_init(&f);
    clasp_status s = clasp_st_read(path, &f);
    const char *msg = clasp_last_error();
    if (s != CLASP_ERR_FORMAT)
        fail_msg("%s: expected malformed input, got %s: %s", path, clasp_status_string(s), msg);
    assert_int_equal(f.n_tensors, 0);
    assert_null(f.tensors);
    assert_int_equal(f.n_meta, 0);
    if (!strstr(msg, path)) fail_msg("message lacks the path: %s", msg);
    va_list ap;
    va_start(ap, first);
    for (const char *needle = first; needle; needle = va_arg(ap, const char *))
        if (!strstr(msg, needle)) fail_msg("message lacks \"%s\": %s", needle, msg);
    va_end(ap);
}
#define expect_format(path, ...) expect_format_(path, __VA_ARGS__, (const char *)NULL)

/* Writes `hdr` (correct length, 64 zero data bytes unless told) to a file
 * named `name` in the fixture folder and expects the read to fail. */
#define bad_file(fx, name, hdr, data_len, ...) \
    do {                                       \
        char p_[512];                          \
        join(p_, sizeof p_, (fx)->dir, name);  \
        craft(p_, hdr, data_len);              \
        expect_format(p_, __VA_ARGS__);        \
    } while (0)

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------- round trip */

static void round_trip_keeps_everything(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "model.safetensors");

    /* Bit patterns a float conversion would disturb: -0, a NaN payload,
     * a denormal, infinity. */
    uint32_t wbits[6] = {0x80000000u, 0x7fc12345u, 0x00000001u,
                         0x7f800000u, 0x3f800000u, 0xc0490fdbu};
    float w[6];
    memcpy(w, wbits, sizeof w);
    int32_t labels[4] = {0, -1, 2147483647, -2147483647 - 1};
    float scalar = 2.5f;
    int64_t w_shape[2] = {2, 3}, l_shape[1] = {4}, e_shape[2] = {0, 5};

    clasp_st_file f;
    clasp_st_init(&f);
    assert_ok(clasp_st_add(&f, "layer1.weight", CLASP_ST_F32, 2, w_shape, w));
    assert_ok(clasp_st_add(&f, "labels", CLASP_ST_I32, 1, l_shape, labels));
    assert_ok(clasp_st_add(&f, "scale", CLASP_ST_F32, 0, NULL, &scalar));
    assert_ok(clasp_st_add(&f, "empty", CLASP_ST_I32, 2, e_shape, NULL));
    assert_ok(clasp_st_set_meta(&f, "format", "pt"));
    assert_ok(clasp_st_set_meta(&f, "note", "first"));
    assert_ok(clasp_st_set_meta(&f, "note", "quote \" slash / ü"));
    assert_int_equal(f.n_meta, 2);
    assert_ok(clasp_st_write(&f, path));
    clasp_st_free(&f);
    assert_int_equal(count_entries(fx->dir), 1); /* no temp file left */

    clasp_st_file g;
    assert_ok(clasp_st_read(path, &g));
    assert_int_equal(g.n_tensors, 4);
    const char *order[4] = {"layer1.weight", "labels", "scale", "empty"};
    for (int i = 0; i < 4; i++) assert_string_equal(g.tensors[i].name, order[i]);

    const clasp_st_tensor *t = &g.tensors[0];
    assert_int_equal(t->dtype, CLASP_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_memory_equal(t->data, wbits, sizeof wbits);

    t = clasp_st_find(&g, "labels");
    assert_ptr_equal(t, &g.tensors[1]);
    assert_int_equal(t->dtype, CLASP_ST_I32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->numel, 4);
    assert_memory_equal(t->data, labels, sizeof labels);

    t = clasp_st_find(&g, "scale");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_memory_equal(t->data, &scalar, sizeof scalar);

    t = clasp_st_find(&g, "empty");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 5);
    assert_int_equal(t->numel, 0);
    assert_non_null(t->data);

    assert_null(clasp_st_find(&g, "missing"));
    assert_int_equal(g.n_meta, 2);
    assert_string_equal(clasp_st_meta(&g, "format"), "pt");
    assert_string_equal(clasp_st_meta(&g, "note"), "quote \" slash / ü");
    assert_null(clasp_st_meta(&g, "absent"));
    clasp_st_free(&g);
    clasp_st_free(&g); /* freeing twice is harmless */
}

static void overwrite_replaces_file(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "w.safetensors");
    int64_t shape[1] = {1};
    float a = 1.0f, b = 2.0f;
    clasp_st_file f;
    clasp_st_init(&f);
    assert_ok(clasp_st_add(&f, "x", CLASP_ST_F32, 1, shape, &a));
    assert_ok(clasp_st_write(&f, path));
    clasp_st_free(&f);
    assert_ok(clasp_st_add(&f, "y", CLASP_ST_F32, 1, shape, &b));
    assert_ok(clasp_st_write(&f, path));
    clasp_st_free(&f);

    assert_ok(clasp_st_read(path, &f));
    assert_int_equal(f.n_tensors, 1);
    assert_string_equal(f.tensors[0].name, "y");
    assert_memory_equal(f.tensors[0].data, &b, sizeof b);
    clasp_st_free(&f);
}

static void empty_file_object_round_trips(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "empty.safetensors");
    clasp_st_file f;
    clasp_st_init(&f);
    assert_ok(clasp_st_write(&f, path));
    assert_ok(clasp_st_read(path, &f));
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.n_meta, 0);
    clasp_st_free(&f);
}

/* ---------------------------------------------------------- byte layout */

static void byte_layout_is_exact(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "tiny.safetensors");
    float a[2] = {1.0f, -2.0f};
    int32_t b[1] = {0x01020304};
    int64_t sa[1] = {2}, sb[1] = {1};
    clasp_st_file f;
    clasp_st_init(&f);
    assert_ok(clasp_st_add(&f, "a", CLASP_ST_F32, 1, sa, a));
    assert_ok(clasp_st_add(&f, "b", CLASP_ST_I32, 1, sb, b));
    assert_ok(clasp_st_write(&f, path));
    clasp_st_free(&f);

    size_t len;
    unsigned char *buf = slurp(path, &len);
    uint64_t n = le64(buf);
    /* The checksum: zlib's CRC-32 of "a\0", the 8 bytes of a, "b\0" and
     * the 4 bytes of b (computed independently with Python's zlib.crc32). */
    const char *json = "{\"__metadata__\":{\"clasp.crc32\":\"e1f3cdb9\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    size_t jlen = strlen(json);
    assert_int_equal((8 + n) % 8, 0);       /* aligned data area */
    assert_true(n >= jlen && n < jlen + 8); /* minimal padding */
    assert_int_equal(len, 8 + n + 12);
    assert_memory_equal(buf + 8, json, jlen);
    for (size_t i = jlen; i < n; i++) assert_int_equal(buf[8 + i], ' ');

    const unsigned char *data = buf + 8 + n;
    const unsigned char one[4] = {0x00, 0x00, 0x80, 0x3f};    /* 1.0f LE */
    const unsigned char minus2[4] = {0x00, 0x00, 0x00, 0xc0}; /* -2.0f LE */
    const unsigned char i32[4] = {0x04, 0x03, 0x02, 0x01};
    assert_memory_equal(data + 0, one, 4);
    assert_memory_equal(data + 4, minus2, 4);
    assert_memory_equal(data + 8, i32, 4);
    free(buf);
}

/* ------------------------------------------------- reading foreign files */

static void reads_header_order_and_metadata_anywhere(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "order.safetensors");
    /* Listed z, metadata, a, but stored a first: header order wins. Also
     * padded with a newline and spaces, and an unknown member in "a". */
    const char *hdr =
        "{\"z\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
        "\"__metadata__\":{\"b\":\"2\",\"a\":\"1\"},"
        "\"a\":{\"shape\":[],\"data_offsets\":[0,4],\"dtype\":\"F32\",\"extra\":1}}\n  ";
    unsigned char data[8] = {0x00, 0x00, 0x80, 0x3f, 0x07, 0x00, 0x00, 0x00};
    craft_raw(path, strlen(hdr), hdr, strlen(hdr), data, sizeof data);

    clasp_st_file f;
    assert_ok(clasp_st_read(path, &f));
    assert_int_equal(f.n_tensors, 2);
    assert_string_equal(f.tensors[0].name, "z");
    assert_string_equal(f.tensors[1].name, "a");
    assert_int_equal(*(const int32_t *)f.tensors[0].data, 7);
    assert_true(*(const float *)f.tensors[1].data == 1.0f);
    assert_int_equal(f.tensors[1].ndim, 0);
    assert_int_equal(f.n_meta, 2);
    assert_string_equal(f.meta_keys[0], "b");
    assert_string_equal(f.meta_keys[1], "a");
    assert_string_equal(clasp_st_meta(&f, "a"), "1");
    clasp_st_free(&f);
}

static void missing_file_is_not_found(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "nope.safetensors");
    clasp_st_file f;
    assert_int_equal(clasp_st_read(path, &f), CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), path));
    assert_int_equal(f.n_tensors, 0);
}

/* ----------------------------------------------------- malformed files */

static void rejects_bad_framing(void **state)
{
    fixture *fx = *state;
    char path[512];

    join(path, sizeof path, fx->dir, "short.safetensors");
    tu_write_file(path, "\x05\x00\x00\x00\x00", 5);
    expect_format(path, "5 bytes", "shorter");

    join(path, sizeof path, fx->dir, "zero.safetensors");
    tu_write_file(path, "", 0);
    expect_format(path, "0 bytes", "shorter");

    join(path, sizeof path, fx->dir, "long-header.safetensors");
    craft_raw(path, 100, "{}", 2, NULL, 0);
    expect_format(path, "header length 100", "larger than the 2 bytes");

    join(path, sizeof path, fx->dir, "huge-header.safetensors");
    craft_raw(path, 100000001ull, "{}", 2, NULL, 0);
    expect_format(path, "100000001", "limit");

    join(path, sizeof path, fx->dir, "max-header.safetensors");
    craft_raw(path, UINT64_MAX, "{}", 2, NULL, 0);
    expect_format(path, "18446744073709551615", "limit");
}

static void rejects_bad_json(void **state)
{
    fixture *fx = *state;
    char path[512];

    bad_file(fx, "syntax.st", "{\"a\": [1, }", 0, "parse error", "at byte");
    bad_file(fx, "incomplete.st", "{\"a\": {\"dtype\"", 0, "incomplete");
    bad_file(fx, "empty-header.st", "", 0, "incomplete");
    bad_file(fx, "trailing.st", "{} x", 0, "'x'", "byte 11");
    bad_file(fx, "two-objects.st", "{}{}", 0, "byte 10");
    bad_file(fx, "array.st", "[1, 2]", 0, "array", "expected an object");
    bad_file(fx, "string.st", "\"hi\"", 0, "string", "expected an object");

    join(path, sizeof path, fx->dir, "nul.st");
    craft_raw(path, 4, "{}\0 ", 4, NULL, 0);
    expect_format(path, "NUL", "byte 10");

    join(path, sizeof path, fx->dir, "utf8.st");
    const char *bad_utf8 = "{\"__metadata__\":{\"k\":\"\xff\xfe\"}}";
    craft(path, bad_utf8, 0);
    expect_format(path, "parse error", "byte 30");
}

static void rejects_bad_entries(void **state)
{
    fixture *fx = *state;
    bad_file(fx, "not-object.st", "{\"w\": 5}", 0, "\"w\"", "entry is int", "expected an object");
    bad_file(fx, "no-dtype.st", "{\"w\": {\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"",
             "missing \"dtype\"");
    bad_file(fx, "no-shape.st", "{\"w\": {\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "\"w\"",
             "missing \"shape\"");
    bad_file(fx, "no-offsets.st", "{\"w\": {\"dtype\":\"F32\",\"shape\":[1]}}", 4, "\"w\"",
             "missing \"data_offsets\"");
    bad_file(fx, "dtype-type.st", "{\"w\": {\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "\"w\"", "\"dtype\" is int", "expected string");
    bad_file(fx, "shape-type.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "\"w\"",
             "\"shape\" is string", "expected array");
    bad_file(fx, "shape-elem.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "\"w\"",
             "shape[0] is double", "integer");
    bad_file(fx, "offsets-type.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, "\"w\"",
             "\"data_offsets\" is object");
    bad_file(fx, "offsets-elem.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, "\"w\"",
             "data_offsets[1] is string");
    bad_file(fx, "dtype.st", "{\"w\": {\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 4,
             "\"w\"", "unknown dtype \"F16\"", "supported: F32, I32");
    bad_file(fx, "neg-shape.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, "\"w\"",
             "shape[1] is -1");
    bad_file(fx, "many-dims.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
             "\"data_offsets\":[0,4]}}",
             4, "\"w\"", "9 dimensions", "at most 8");
    bad_file(fx, "huge-shape.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
             "\"data_offsets\":[0,4]}}",
             4, "\"w\"", "too large");
    bad_file(fx, "huge-dim.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[18446744073709551615],"
             "\"data_offsets\":[0,4]}}",
             4, "\"w\"", "shape[0]", "too large");
}

static void rejects_bad_offsets(void **state)
{
    fixture *fx = *state;
    bad_file(fx, "one-offset.st", "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}",
             8, "\"w\"", "1 elements", "[begin, end]");
    bad_file(fx, "three-offsets.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "\"w\"",
             "3 elements");
    bad_file(fx, "neg-offset.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-4,4]}}", 8, "\"w\"",
             "data_offsets[0] is -4");
    bad_file(fx, "reversed.st", "{\"w\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
             8, "\"w\"", "[8, 0]", "begin after end");
    bad_file(fx, "beyond.st", "{\"w\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
             8, "\"w\"", "end 16", "beyond the 8-byte data area");
    bad_file(fx, "way-beyond.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[18446744073709551612,18446744073709551615]}}",
             8, "\"w\"", "beyond");
    bad_file(fx, "size.st", "{\"w\": {\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,8]}}",
             32, "\"w\"", "span 8 bytes", "expected 24", "6 I32");
    bad_file(fx, "overlap.st",
             "{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"e\": {\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
             "\"b\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, "\"a\" [0, 8)", "\"b\" [4, 12)", "overlap");
    bad_file(fx, "nested-overlap.st",
             "{\"big\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
             "\"mid\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
             "\"end\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
             16, "\"big\"", "\"mid\"", "overlap");
    bad_file(fx, "gap.st",
             "{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             12, "bytes [4, 8)", "before tensor \"b\"", "no tensor");
    bad_file(fx, "tail.st", "{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
             "bytes [4, 12)", "at the end", "no tensor");
    bad_file(fx, "no-tensors-but-data.st", "{}", 4, "bytes [0, 4)", "no tensor");
    /* json-c keeps only the last of two equal keys; the first one's bytes
     * are then left unclaimed. */
    bad_file(fx, "duplicate.st",
             "{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, "bytes [0, 4)", "\"w\"", "duplicate");
    bad_file(fx, "same.st",
             "{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\": {\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             4, "overlap");
}

static void rejects_bad_metadata(void **state)
{
    fixture *fx = *state;
    bad_file(fx, "meta-int.st", "{\"__metadata__\":{\"ok\":\"1\",\"epochs\":10}}", 0,
             "__metadata__", "\"epochs\"", "is int", "expected a string");
    bad_file(fx, "meta-null.st", "{\"__metadata__\":{\"x\":null}}", 0, "\"x\"", "is null");
    bad_file(fx, "meta-array.st", "{\"__metadata__\":[\"a\"]}", 0, "__metadata__", "is array",
             "expected an object");
    /* A later bad entry must not leak what was already parsed (ASan). */
    bad_file(fx, "late-error.st",
             "{\"__metadata__\":{\"k\":\"v\"},"
             "\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\": {\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}",
             12, "\"b\"", "F64");
}

/* -------------------------------------------------------- atomic writes */

static void write_into_missing_folder_fails_cleanly(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "no/such/folder/m.safetensors");
    clasp_st_file f;
    clasp_st_init(&f);
    float x = 1;
    assert_ok(clasp_st_add(&f, "x", CLASP_ST_F32, 0, NULL, &x));
    assert_int_equal(clasp_st_write(&f, path), CLASP_ERR_IO);
    assert_non_null(strstr(clasp_last_error(), path));
    assert_int_equal(count_entries(fx->dir), 0);
    clasp_st_free(&f);
}

/* The temporary name "<path>.tmp.<pid>" exceeds NAME_MAX for a 250-byte
 * file name, so creating it fails even as root; the existing file at the
 * target must survive untouched. */
static void failed_write_keeps_old_file(void **state)
{
    fixture *fx = *state;
    char name[251], path[512];
    memset(name, 'n', 250);
    name[250] = '\0';
    join(path, sizeof path, fx->dir, name);
    tu_write_file(path, "old contents", 12);

    clasp_st_file f;
    clasp_st_init(&f);
    float x = 1;
    assert_ok(clasp_st_add(&f, "x", CLASP_ST_F32, 0, NULL, &x));
    assert_int_equal(clasp_st_write(&f, path), CLASP_ERR_IO);
    assert_non_null(strstr(clasp_last_error(), "temporary"));
    clasp_st_free(&f);

    size_t len;
    unsigned char *buf = slurp(path, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(buf, "old contents", 12);
    free(buf);
    assert_int_equal(count_entries(fx->dir), 1);
}

/* A directory at the target makes the final rename fail after the whole
 * temporary file was written: it must be removed again. */
static void failed_rename_removes_temp_file(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "is-a-dir");
    assert_int_equal(mkdir(path, 0700), 0);

    clasp_st_file f;
    clasp_st_init(&f);
    float x = 1;
    assert_ok(clasp_st_add(&f, "x", CLASP_ST_F32, 0, NULL, &x));
    assert_int_equal(clasp_st_write(&f, path), CLASP_ERR_IO);
    assert_non_null(strstr(clasp_last_error(), "renaming"));
    clasp_st_free(&f);
    assert_int_equal(count_entries(fx->dir), 1); /* just the folder */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rmdir(path);
}

static void read_only_folder_keeps_old_file(void **state)
{
    fixture *fx = *state;
    /* Root ignores folder permissions; the tests above cover this path. */
    if (geteuid() == 0) skip();
    char path[512];
    join(path, sizeof path, fx->dir, "ro.safetensors");
    tu_write_file(path, "old", 3);
    assert_int_equal(chmod(fx->dir, 0500), 0);

    clasp_st_file f;
    clasp_st_init(&f);
    float x = 1;
    assert_ok(clasp_st_add(&f, "x", CLASP_ST_F32, 0, NULL, &x));
    clasp_status s = clasp_st_write(&f, path);
    clasp_st_free(&f);
    assert_int_equal(chmod(fx->dir, 0700), 0);
    assert_int_equal(s, CLASP_ERR_IO);

    size_t len;
    unsigned char *buf = slurp(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "old", 3);
    free(buf);
    assert_int_equal(count_entries(fx->dir), 1);
}

/* ------------------------------------------------------- clasp_st_add */

static void add_rejects_bad_tensors(void **state)
{
    (void)state;
    clasp_st_file f;
    clasp_st_init(&f);
    int64_t shape[1] = {2}, neg[1] = {-2};
    float v[2] = {1, 2};
    assert_ok(clasp_st_add(&f, "w", CLASP_ST_F32, 1, shape, v));

    assert_int_equal(clasp_st_add(&f, "w", CLASP_ST_I32, 1, shape, v), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "duplicate"));
    assert_non_null(strstr(clasp_last_error(), "\"w\""));
    assert_int_equal(clasp_st_add(&f, "__metadata__", CLASP_ST_F32, 1, shape, v),
                     CLASP_ERR_INVALID);
    assert_int_equal(clasp_st_add(&f, "n", CLASP_ST_F32, 1, neg, v), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "-2"));
    assert_int_equal(clasp_st_add(&f, "d", CLASP_ST_F32, CLASP_ST_MAX_DIMS + 1, shape, v),
                     CLASP_ERR_INVALID);
    assert_int_equal(clasp_st_add(&f, "d", CLASP_ST_F32, -1, shape, v), CLASP_ERR_INVALID);
    assert_int_equal(clasp_st_add(&f, "t", (clasp_st_dtype)7, 1, shape, v), CLASP_ERR_INVALID);
    assert_int_equal(clasp_st_add(&f, "z", CLASP_ST_F32, 1, shape, NULL), CLASP_ERR_INVALID);
    assert_int_equal(clasp_st_add(&f, NULL, CLASP_ST_F32, 1, shape, v), CLASP_ERR_INVALID);
    int64_t huge[2] = {INT64_MAX, 4};
    assert_int_equal(clasp_st_add(&f, "h", CLASP_ST_F32, 2, huge, v), CLASP_ERR_INVALID);

    assert_int_equal(f.n_tensors, 1);
    /* The copy is taken at add time. */
    v[0] = 99;
    assert_true(((const float *)f.tensors[0].data)[0] == 1.0f);
    clasp_st_free(&f);

    clasp_st_file zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    clasp_st_free(&zeroed);
    assert_null(clasp_st_find(&zeroed, "w"));
    assert_null(clasp_st_meta(&zeroed, "k"));
}

/* ---------------------------------------------------------- corruption */

/* Every single changed byte of a clasp-written file, in the metadata or in
 * the data, is refused as corrupt (or as malformed, where it breaks the
 * framing first); none is read back as a different file. */
static void changed_bytes_are_refused(void **state)
{
    fixture *fx = *state;
    char path[512];
    join(path, sizeof path, fx->dir, "c.safetensors");
    float w[6] = {0.5f, -1.0f, 2.0f, 3.5f, -0.25f, 8.0f};
    int64_t shape[2] = {2, 3};
    clasp_st_file f;
    clasp_st_init(&f);
    assert_ok(clasp_st_add(&f, "w", CLASP_ST_F32, 2, shape, w));
    assert_ok(clasp_st_set_meta(&f, "clasp.state", "{\"epoch\":3}"));
    assert_ok(clasp_st_write(&f, path));
    clasp_st_free(&f);
    size_t len;
    unsigned char *good = slurp(path, &len);
    uint64_t hdr = le64(good);
    int corrupt = 0;
    for (size_t i = 8; i < len; i++) {
        if (i >= 8 + hdr - 8 && i < 8 + hdr && good[i] == ' ') continue; /* padding */
        unsigned char *bad = malloc(len);
        assert_non_null(bad);
        memcpy(bad, good, len);
        bad[i] ^= 0x10;
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(bad, 1, len, fp), len);
        fclose(fp);
        free(bad);
        clasp_status st = clasp_st_read(path, &f);
        if (st == CLASP_OK) {
            /* Only a changed checksum key name passes: the file then looks
             * like one without a checksum, and says so. */
            if (f.verified) fail_msg("byte %zu changed, yet the file was read as verified", i);
            assert_null(clasp_st_meta(&f, "clasp.crc32"));
            clasp_st_free(&f);
            continue;
        }
        assert_int_equal(st, CLASP_ERR_FORMAT);
        if (strstr(clasp_last_error(), "is corrupt")) corrupt++;
        assert_int_equal(f.n_tensors, 0); /* nothing half-loaded */
    }
    /* The data bytes and the metadata value are caught by the checksum. */
    assert_true(corrupt >= 24 + 10);
    /* The intact file reads back verified. */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(good, 1, len, fp), len);
    fclose(fp);
    assert_ok(clasp_st_read(path, &f));
    assert_true(f.verified);
    clasp_st_free(&f);
    free(good);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(round_trip_keeps_everything),
        T(overwrite_replaces_file),
        T(empty_file_object_round_trips),
        T(byte_layout_is_exact),
        T(reads_header_order_and_metadata_anywhere),
        T(missing_file_is_not_found),
        T(rejects_bad_framing),
        T(rejects_bad_json),
        T(rejects_bad_entries),
        T(rejects_bad_offsets),
        T(rejects_bad_metadata),
        T(write_into_missing_folder_fails_cleanly),
        T(failed_write_keeps_old_file),
        T(failed_rename_removes_temp_file),
        T(read_only_folder_keeps_old_file),
        T(add_rejects_bad_tensors),
        T(changed_bytes_are_refused),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
