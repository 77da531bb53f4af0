/* Readers of the class-wise study's other data sets: CIFAR-100, SVHN (MAT
 * files written here with libmatio), STL-10, loading by name, and the
 * Fashion-MNIST to CIFAR-10 converter. Each reader gets tiny good files and
 * damaged ones; a damaged file must give an error that names the file and
 * the byte offset (or the MAT variable), and leave the dataset zeroed. */
#include "testutil.h"

#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>

#include "clasp/data.h"

/* ---- helpers ------------------------------------------------------------ */

static void join(char *buf, size_t size, const char *dir, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Asserts the status and that the message mentions every given string. */
static void assert_error(clasp_status got, clasp_status want, const char *a, const char *b)
{
    if (got != want)
        fail_msg("status %s, expected %s (%s)", clasp_status_string(got), clasp_status_string(want),
                 clasp_last_error());
    const char *msg = clasp_last_error();
    if (a && !strstr(msg, a)) fail_msg("message \"%s\" lacks \"%s\"", msg, a);
    if (b && !strstr(msg, b)) fail_msg("message \"%s\" lacks \"%s\"", msg, b);
}

static void assert_zeroed(const clasp_dataset *d)
{
    assert_null(d->x);
    assert_null(d->y);
    assert_int_equal(d->n, 0);
    assert_int_equal(d->num_classes, 0);
}

/* The test pattern: byte k of image i. */
static unsigned char pattern(size_t i, size_t k)
{
    return (unsigned char)((k * 7 + i * 31 + 3) & 255);
}

static float px(unsigned char v)
{
    return (float)v / 255.0f;
}

/* ---- CIFAR-100 ---------------------------------------------------------- */

#define C100_RECORD 3074

/* n records with the given coarse and fine labels; `extra` more bytes of a
 * cut-off record at the end. */
static void write_cifar100(const char *path, size_t n, const unsigned char *coarse,
                           const unsigned char *fine, size_t extra)
{
    size_t size = n * C100_RECORD + extra;
    unsigned char *buf = calloc(size ? size : 1, 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        unsigned char *rec = buf + i * C100_RECORD;
        rec[0] = coarse[i];
        rec[1] = fine[i];
        for (size_t k = 0; k < 3072; k++) rec[2 + k] = pattern(i, k);
    }
    tu_write_file(path, buf, size);
    free(buf);
}

static void cifar100_ok(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    const unsigned char coarse[3] = {4, 19, 0}, fine[3] = {0, 99, 42};
    join(p, sizeof p, dir, "train.bin");
    write_cifar100(p, 3, coarse, fine, 0);
    join(p, sizeof p, dir, "test.bin");
    write_cifar100(p, 2, coarse, fine, 0);

    clasp_dataset d;
    assert_ok(clasp_cifar100_load(dir, 1, 0, &d));
    assert_int_equal(d.n, 3);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    assert_int_equal(d.w, 32);
    assert_int_equal(d.num_classes, 100);
    assert_int_equal(d.y[0], 0);
    assert_int_equal(d.y[1], 99);
    assert_int_equal(d.y[2], 42);
    /* Image 2, blue plane, row 31, column 0: channel-major like CIFAR-10. */
    size_t k = 2 * 1024 + 31 * 32;
    assert_true(d.x[2 * 3072 + k] == px(pattern(2, k)));
    assert_string_equal(d.class_names[0], "apple");
    assert_string_equal(d.class_names[42], "leopard");
    assert_string_equal(d.class_names[99], "worm");
    clasp_dataset_free(&d);

    /* The coarse labels, by name as the CLI and plans ask for them. */
    assert_ok(clasp_dataset_load("cifar100-coarse", dir, 0, &d));
    assert_int_equal(d.n, 2);
    assert_int_equal(d.num_classes, 20);
    assert_int_equal(d.y[0], 4);
    assert_int_equal(d.y[1], 19);
    assert_string_equal(d.class_names[0], "aquatic_mammals");
    assert_string_equal(d.class_names[19], "vehicles_2");
    clasp_dataset_free(&d);

    /* Names from the folder's files when present. */
    char names[2000] = "";
    for (int i = 0; i < 100; i++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "f%d\n", i);
    }
    join(p, sizeof p, dir, "fine_label_names.txt");
    tu_write_file(p, names, strlen(names));
    join(p, sizeof p, dir, "coarse_label_names.txt");
    tu_write_file(p, "c0\nc1\n", 6);
    assert_ok(clasp_dataset_load("cifar100", dir, 0, &d));
    assert_string_equal(d.class_names[99], "f99");
    clasp_dataset_free(&d);
    /* Two names for twenty classes: refused rather than mislabelled. */
    assert_error(clasp_cifar100_load(dir, 0, 1, &d), CLASP_ERR_FORMAT, "coarse_label_names.txt",
                 "2 class names, expected 20");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void cifar100_bad(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    join(p, sizeof p, dir, "test.bin");
    clasp_dataset d;

    const unsigned char coarse[2] = {1, 2}, fine[2] = {3, 4};
    write_cifar100(p, 1, coarse, fine, 1000);
    clasp_status s = clasp_cifar100_load(dir, 0, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test.bin", "size 4074 is not a multiple of 3074");
    assert_error(s, CLASP_ERR_FORMAT, "record at byte 3074 has only 1000 bytes", NULL);
    assert_zeroed(&d);

    /* A CIFAR-10 file (3073-byte records) is not a CIFAR-100 one. */
    write_cifar100(p, 0, coarse, fine, 3073);
    assert_error(clasp_cifar100_load(dir, 0, 0, &d), CLASP_ERR_FORMAT, "test.bin", "size 3073");

    write_cifar100(p, 0, coarse, fine, 0);
    assert_error(clasp_cifar100_load(dir, 0, 0, &d), CLASP_ERR_FORMAT, "test.bin", "empty file");

    const unsigned char bad_fine[2] = {3, 100};
    write_cifar100(p, 2, coarse, bad_fine, 0);
    /* Checked even when only the coarse labels are used. */
    s = clasp_cifar100_load(dir, 0, 1, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test.bin: fine label 100 at byte 3075", "record 1");
    assert_zeroed(&d);

    const unsigned char bad_coarse[2] = {20, 0};
    write_cifar100(p, 2, bad_coarse, fine, 0);
    s = clasp_cifar100_load(dir, 0, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test.bin: coarse label 20 at byte 0", "expected < 20");
    assert_zeroed(&d);

    assert_error(clasp_cifar100_load(dir, 1, 0, &d), CLASP_ERR_IO, "train.bin", "No such file");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

/* ---- STL-10 -------------------------------------------------------------- */

#define STL_IMAGE 27648

/* n images of the test pattern; `cut` bytes fewer at the end. */
static void write_stl_x(const char *path, size_t n, size_t cut)
{
    size_t size = n * STL_IMAGE - cut;
    unsigned char *buf = malloc(size ? size : 1);
    assert_non_null(buf);
    for (size_t b = 0; b < size; b++) buf[b] = pattern(b / STL_IMAGE, b % STL_IMAGE);
    tu_write_file(path, buf, size);
    free(buf);
}

static void write_stl(const char *dir, const char *split, size_t n, const unsigned char *y,
                      size_t ny)
{
    char p[512], name[32];
    snprintf(name, sizeof name, "%s_X.bin", split);
    join(p, sizeof p, dir, name);
    write_stl_x(p, n, 0);
    snprintf(name, sizeof name, "%s_y.bin", split);
    join(p, sizeof p, dir, name);
    tu_write_file(p, y, ny);
}

static void stl10_ok(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    const unsigned char y[3] = {1, 10, 4};
    write_stl(dir, "train", 3, y, 3);
    write_stl(dir, "test", 2, y, 2);

    clasp_dataset d;
    assert_ok(clasp_stl10_load(dir, 1, &d));
    assert_int_equal(d.n, 3);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 96);
    assert_int_equal(d.w, 96);
    assert_int_equal(d.num_classes, 10);
    assert_int_equal(d.y[0], 0);
    assert_int_equal(d.y[1], 9);
    assert_int_equal(d.y[2], 3);
    /* Pixel (row 2, col 5) of channel 1 of image 2 is file byte
     * 2*27648 + 1*9216 + 5*96 + 2: the planes are column-major. */
    size_t in = 1 * 9216 + 5 * 96 + 2, out = 1 * 9216 + 2 * 96 + 5;
    assert_true(d.x[2 * STL_IMAGE + out] == px(pattern(2, in)));
    /* And a pixel off the diagonal the other way round. */
    in = 2 * 9216 + 90 * 96 + 1;
    out = 2 * 9216 + 1 * 96 + 90;
    assert_true(d.x[out] == px(pattern(0, in)));
    assert_string_equal(d.class_names[0], "airplane");
    assert_string_equal(d.class_names[7], "monkey");
    clasp_dataset_free(&d);

    const char *names = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
    join(p, sizeof p, dir, "class_names.txt");
    tu_write_file(p, names, strlen(names));
    assert_ok(clasp_dataset_load("stl10", dir, 0, &d));
    assert_int_equal(d.n, 2);
    assert_string_equal(d.class_names[9], "j");
    clasp_dataset_free(&d);

    /* UTF-8 names are kept; a byte that is not UTF-8 is an error naming
     * the file and its offset (it made a report.json no parser reads). */
    names = "a\nb\nc\nd\ne\nf\ng\nh\ni\n\xc3\xa9t\xc3\xa9\n";
    tu_write_file(p, names, strlen(names));
    assert_ok(clasp_dataset_load("stl10", dir, 0, &d));
    assert_string_equal(d.class_names[9], "\xc3\xa9t\xc3\xa9");
    clasp_dataset_free(&d);
    static const struct {
        const char *text, *where;
    } bad[] = {
        {"a\xff"
         "b\n",
         "line 1: byte 1 (0xff) is not valid UTF-8"},
        {"a\nb\xc3\n", "line 2: byte 3 (0xc3)"},           /* cut short */
        {"a\n\xc0\xafx\n", "line 2: byte 2 (0xc0)"},       /* overlong '/' */
        {"a\nb\n\xed\xa0\x80\n", "line 3: byte 4 (0xed)"}, /* a surrogate */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(p, bad[i].text, strlen(bad[i].text));
        clasp_status s = clasp_dataset_load("stl10", dir, 0, &d);
        assert_int_equal(s, CLASP_ERR_FORMAT);
        if (!strstr(clasp_last_error(), "class_names.txt") ||
            !strstr(clasp_last_error(), bad[i].where))
            fail_msg("case %zu: '%s' lacks '%s'", i, clasp_last_error(), bad[i].where);
    }
    tu_rmdir(dir);
}

static void stl10_bad(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    clasp_dataset d;
    const unsigned char y[3] = {1, 2, 3};

    /* Images cut short. */
    write_stl(dir, "test", 2, y, 2);
    join(p, sizeof p, dir, "test_X.bin");
    write_stl_x(p, 2, 100);
    clasp_status s = clasp_stl10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_X.bin: size 55196 is not a multiple of 27648",
                 "image at byte 27648 has only 27548 bytes");
    assert_zeroed(&d);

    /* More labels than images, and fewer. */
    write_stl(dir, "test", 2, y, 3);
    s = clasp_stl10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_y.bin: 3 labels", "test_X.bin has 2 images");
    assert_zeroed(&d);
    write_stl(dir, "test", 2, y, 1);
    s = clasp_stl10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_y.bin: 1 labels", "truncated");

    /* Labels are 1..10: 0 and 11 are out of range. */
    const unsigned char zero[2] = {3, 0}, eleven[3] = {1, 2, 11};
    write_stl(dir, "test", 2, zero, 2);
    s = clasp_stl10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_y.bin: label 0 at byte 1", "expected 1..10");
    assert_zeroed(&d);
    write_stl(dir, "test", 3, eleven, 3);
    s = clasp_stl10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_y.bin: label 11 at byte 2", "image 2");
    assert_zeroed(&d);

    assert_error(clasp_stl10_load(dir, 1, &d), CLASP_ERR_IO, "train_X.bin", "No such file");
    tu_rmdir(dir);
}

/* ---- SVHN ---------------------------------------------------------------- */

typedef struct mat_var {
    const char *name;
    enum matio_classes cls;
    enum matio_types type;
    int rank;
    size_t dims[4];
    const void *data;
} mat_var;

/* compress: 0 = version 5 plain, 1 = version 5 zlib, 2 = version 7.3
 * (HDF5); returns 0 when this libmatio cannot write that version. */
static int write_mat(const char *path, const mat_var *vars, int n, int compress)
{
    mat_t *m = Mat_CreateVer(path, NULL, compress == 2 ? MAT_FT_MAT73 : MAT_FT_MAT5);
    if (!m && compress == 2) return 0;
    if (!m) fail_msg("cannot create %s", path);
    for (int i = 0; i < n; i++) {
        size_t dims[4];
        memcpy(dims, vars[i].dims, sizeof dims);
        matvar_t *v = Mat_VarCreate(vars[i].name, vars[i].cls, vars[i].type, vars[i].rank, dims,
                                    (void *)vars[i].data, MAT_F_DONT_COPY_DATA);
        if (!v) fail_msg("Mat_VarCreate %s failed", vars[i].name);
        if (Mat_VarWrite(m, v, compress == 1 ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE) != 0)
            fail_msg("Mat_VarWrite %s failed", vars[i].name);
        Mat_VarFree(v);
    }
    Mat_Close(m);
    return 1;
}

#define SVHN_N 3
static unsigned char svhn_x[SVHN_N * 3072];
static const double svhn_y[SVHN_N] = {10, 1, 7};
static const unsigned char svhn_y8[SVHN_N] = {10, 1, 7};

static void fill_svhn_x(void)
{
    for (size_t b = 0; b < sizeof svhn_x; b++) svhn_x[b] = pattern(b / 3072, b % 3072);
}

static mat_var svhn_xvar(void)
{
    mat_var v = {"X", MAT_C_UINT8, MAT_T_UINT8, 4, {32, 32, 3, SVHN_N}, svhn_x};
    return v;
}

static mat_var svhn_yvar(void)
{
    mat_var v = {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {SVHN_N, 1, 0, 0}, svhn_y};
    return v;
}

static void check_svhn(const clasp_dataset *d)
{
    assert_int_equal(d->n, SVHN_N);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->num_classes, 10);
    /* 10 is the digit 0; the other labels are their digits. */
    assert_int_equal(d->y[0], 0);
    assert_int_equal(d->y[1], 1);
    assert_int_equal(d->y[2], 7);
    /* X(row 3, col 20, channel 2, image 1) is element 3 + 32*20 + 1024*2
     * + 3072*1 of the column-major array; out at NCHW [1][2][3][20]. */
    size_t in = 3 + 32 * 20 + 1024 * 2, out = 2 * 1024 + 3 * 32 + 20;
    assert_true(d->x[3072 + out] == px(pattern(1, in)));
    in = 31 + 32 * 0 + 1024 * 0;
    out = 31 * 32 + 0;
    assert_true(d->x[2 * 3072 + out] == px(pattern(2, in)));
    assert_string_equal(d->class_names[0], "0");
    assert_string_equal(d->class_names[9], "9");
}

static void svhn_ok(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    fill_svhn_x();
    mat_var vars[2] = {svhn_xvar(), svhn_yvar()};

    clasp_dataset d;
    join(p, sizeof p, dir, "train_32x32.mat");
    write_mat(p, vars, 2, 0);
    assert_ok(clasp_svhn_load(dir, 1, &d));
    check_svhn(&d);
    clasp_dataset_free(&d);

    /* Compressed, y as uint8 and 1xN, variables in the other order. */
    mat_var y8 = {"y", MAT_C_UINT8, MAT_T_UINT8, 2, {1, SVHN_N, 0, 0}, svhn_y8};
    mat_var rev[2] = {y8, svhn_xvar()};
    join(p, sizeof p, dir, "test_32x32.mat");
    write_mat(p, rev, 2, 1);
    assert_ok(clasp_dataset_load("svhn", dir, 0, &d));
    check_svhn(&d);
    clasp_dataset_free(&d);

    /* One image, as MATLAB saves it: X of rank 3, y 1x1. */
    mat_var x1 = {"X", MAT_C_UINT8, MAT_T_UINT8, 3, {32, 32, 3, 0}, svhn_x};
    mat_var y1 = {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {1, 1, 0, 0}, svhn_y};
    mat_var one[2] = {x1, y1};
    write_mat(p, one, 2, 0);
    assert_ok(clasp_svhn_load(dir, 0, &d));
    assert_int_equal(d.n, 1);
    assert_int_equal(d.y[0], 0);
    assert_true(d.x[2 * 1024 + 3 * 32 + 20] == px(pattern(0, 3 + 32 * 20 + 1024 * 2)));
    clasp_dataset_free(&d);

    /* Version 7.3 (HDF5), where this libmatio can write it. */
    if (write_mat(p, vars, 2, 2)) {
        assert_ok(clasp_svhn_load(dir, 0, &d));
        check_svhn(&d);
        clasp_dataset_free(&d);
    }
    tu_rmdir(dir);
}

/* Loads dir's test file written from vars; expects a format error naming
 * the file and the given text. */
static void svhn_expect(const char *dir, const mat_var *vars, int n, int compress, const char *a,
                        const char *b)
{
    char p[512];
    join(p, sizeof p, dir, "test_32x32.mat");
    write_mat(p, vars, n, compress);
    clasp_dataset d;
    clasp_status s = clasp_svhn_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_32x32.mat", a);
    assert_error(s, CLASP_ERR_FORMAT, b, NULL);
    assert_zeroed(&d);
}

static void svhn_bad_vars(void **state)
{
    (void)state;
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    fill_svhn_x();
    mat_var x = svhn_xvar(), y = svhn_yvar();

    /* Missing variables. */
    mat_var only_y[1] = {y}, only_x[1] = {x};
    svhn_expect(dir, only_y, 1, 0, "no variable 'X'", "expected uint8 32x32x3xN");
    svhn_expect(dir, only_x, 1, 0, "no variable 'y'", "Nx1");

    /* X of the wrong type, and of the wrong dims. */
    static double xd[SVHN_N * 3072];
    mat_var x_double = {"X", MAT_C_DOUBLE, MAT_T_DOUBLE, 4, {32, 32, 3, SVHN_N}, xd};
    mat_var v1[2] = {x_double, y};
    svhn_expect(dir, v1, 2, 0, "variable 'X' is double 32x32x3x3", "expected uint8 32x32x3xN");
    mat_var x_grey = {"X", MAT_C_UINT8, MAT_T_UINT8, 4, {32, 32, 1, SVHN_N}, svhn_x};
    mat_var v2[2] = {x_grey, y};
    svhn_expect(dir, v2, 2, 0, "variable 'X' is uint8 32x32x1x3", "expected uint8 32x32x3xN");
    mat_var x_flat = {"X", MAT_C_UINT8, MAT_T_UINT8, 2, {3072, SVHN_N, 0, 0}, svhn_x};
    mat_var v3[2] = {x_flat, y};
    svhn_expect(dir, v3, 2, 0, "variable 'X' is uint8 3072x3", "expected uint8 32x32x3xN");

    /* y of the wrong type, shape and count. */
    static const int32_t yi[SVHN_N] = {1, 2, 3};
    mat_var y_int = {"y", MAT_C_INT32, MAT_T_INT32, 2, {SVHN_N, 1, 0, 0}, yi};
    mat_var v4[2] = {x, y_int};
    svhn_expect(dir, v4, 2, 0, "variable 'y' is int32 3x1", "expected double or uint8 Nx1");
    static const double y6[6] = {1, 2, 3, 4, 5, 6};
    mat_var y_wide = {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {SVHN_N, 2, 0, 0}, y6};
    mat_var v5[2] = {x, y_wide};
    svhn_expect(dir, v5, 2, 0, "variable 'y' is double 3x2", "expected double or uint8 Nx1");
    mat_var y_short = {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {2, 1, 0, 0}, svhn_y};
    mat_var v6[2] = {x, y_short};
    svhn_expect(dir, v6, 2, 0, "variable 'y' is double 2x1", "'X' holds 3 images; expected 3x1");

    /* Labels outside 1..10, or not whole. */
    static const double y_eleven[SVHN_N] = {1, 11, 2}, y_zero[SVHN_N] = {0, 1, 2},
                        y_half[SVHN_N] = {1, 2, 2.5};
    mat_var bad = y;
    bad.data = y_eleven;
    mat_var v7[2] = {x, bad};
    svhn_expect(dir, v7, 2, 1, "variable 'y': y(2) = 11 is out of range", "1..10");
    bad.data = y_zero;
    mat_var v8[2] = {x, bad};
    svhn_expect(dir, v8, 2, 0, "variable 'y': y(1) = 0 is out of range", "1..10");
    bad.data = y_half;
    mat_var v9[2] = {x, bad};
    svhn_expect(dir, v9, 2, 0, "y(3) = 2.5", "integer");
    static const unsigned char y8_eleven[SVHN_N] = {11, 1, 1};
    mat_var bad8 = {"y", MAT_C_UINT8, MAT_T_UINT8, 2, {SVHN_N, 1, 0, 0}, y8_eleven};
    mat_var v10[2] = {x, bad8};
    svhn_expect(dir, v10, 2, 0, "y(1) = 11", "1..10");
    tu_rmdir(dir);
}

/* Copies the first `keep` bytes of src to dst (keep < 0: all but -keep). */
static long copy_cut(const char *src, const char *dst, long keep)
{
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    long n = (long)fread(buf, 1, sizeof buf, f);
    fclose(f);
    long k = keep < 0 ? n + keep : keep;
    tu_write_file(dst, buf, (size_t)k);
    return n;
}

static void svhn_bad_files(void **state)
{
    (void)state;
    char dir[256], full[512], p[512];
    tu_tmpdir(dir, sizeof dir);
    fill_svhn_x();
    mat_var vars[2] = {svhn_yvar(), svhn_xvar()};
    join(full, sizeof full, dir, "full.mat");
    join(p, sizeof p, dir, "test_32x32.mat");
    clasp_dataset d;
    char at[64];

    /* Uncompressed, cut inside X's pixels: found from the element lengths
     * (the reader must not hand back the missing bytes as pixels). */
    write_mat(full, vars, 2, 0);
    long size = copy_cut(full, p, -100);
    snprintf(at, sizeof at, "file ends at byte %ld", size - 100);
    clasp_status s = clasp_svhn_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_32x32.mat: truncated", at);
    assert_zeroed(&d);

    /* Compressed, cut short. */
    write_mat(full, vars, 2, 1);
    size = copy_cut(full, p, -50);
    s = clasp_svhn_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_32x32.mat", "truncated");
    assert_zeroed(&d);

    /* Compressed, X's stream overwritten with junk (same length). matio
     * stops inflating once it has the bytes it wants and never checks the
     * stream's checksum, so only damage that breaks decoding is caught;
     * junk over most of the stream does, here already in the array header
     * the reader inflates itself. */
    copy_cut(full, p, size);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    unsigned char tag[8];
    fseek(f, 128, SEEK_SET);
    assert_int_equal(fread(tag, 1, 8, f), 8);
    long y_len = tag[4] | tag[5] << 8 | tag[6] << 16 | (long)tag[7] << 24; /* little-endian */
    long x_at = 128 + 8 + y_len;
    fseek(f, x_at + 8 + 20, SEEK_SET);
    for (long i = x_at + 8 + 20; i < size - 8; i++) fputc(0x55, f);
    fclose(f);
    s = clasp_svhn_load(dir, 0, &d);
    snprintf(at, sizeof at, "the compressed array at byte %ld", x_at);
    assert_error(s, CLASP_ERR_FORMAT, "test_32x32.mat", at);
    assert_zeroed(&d);

    /* Not a MAT file at all, an empty one, and none. */
    const char junk[] = "this is not a MATLAB file, although it is long enough to have a "
                        "header of one hundred and twenty-eight bytes, as version 5 needs";
    tu_write_file(p, junk, sizeof junk);
    assert_error(clasp_svhn_load(dir, 0, &d), CLASP_ERR_FORMAT, "test_32x32.mat",
                 "not a MAT file of version 5 or 7.3");
    tu_write_file(p, "", 0);
    assert_error(clasp_svhn_load(dir, 0, &d), CLASP_ERR_FORMAT,
                 "test_32x32.mat: not a MAT file of version 5 or 7.3", "empty file");
    /* A good file four bytes along (found by tests/fuzz/fuzz_svhn): matio
     * took it for version 4 and allocated the 1.7 GB that bytes 16-19
     * ("AT-f") give as a name length; the header check refuses it first. */
    write_mat(full, vars, 2, 0);
    static unsigned char shifted[4 + (1 << 16)];
    f = fopen(full, "rb");
    assert_non_null(f);
    size_t got = fread(shifted + 4, 1, sizeof shifted - 4, f);
    fclose(f);
    tu_write_file(p, shifted, 4 + got);
    assert_error(clasp_svhn_load(dir, 0, &d), CLASP_ERR_FORMAT,
                 "test_32x32.mat: not a MAT file of version 5 or 7.3",
                 "no endian mark 'IM' or 'MI' at byte 126");
    assert_zeroed(&d);
    shifted[4 + 124] = 0x02, shifted[4 + 125] = 0x07; /* the mark back, a bad version */
    tu_write_file(p, shifted + 4, got);
    assert_error(clasp_svhn_load(dir, 0, &d), CLASP_ERR_FORMAT, "test_32x32.mat",
                 "version at byte 124 is neither 0x0100 nor 0x0200");
    assert_zeroed(&d);
    assert_error(clasp_svhn_load(dir, 1, &d), CLASP_ERR_IO, "train_32x32.mat", "No such file");
    tu_rmdir(dir);
}

/* Writes X (3 images) then y (4 labels) to path and raises X's image count
 * in its dimensions to 4, so X claims one image more than its data holds;
 * compress: X's element is then zlib-compressed the way matio stores it
 * (tag 15, length, the deflated matrix element). X sits at byte 128. */
static void write_x_claiming_more(const char *dir, const char *path, int compress)
{
    static const double y4[4] = {10, 1, 7, 2};
    char plain[512];
    join(plain, sizeof plain, dir, "plain.mat");
    mat_var vars[2] = {svhn_xvar(), {"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {4, 1, 0, 0}, y4}};
    write_mat(plain, vars, 2, 0);
    static unsigned char buf[1 << 16], packed[1 << 16];
    FILE *f = fopen(plain, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* X's element at byte 128: tag (8), array flags (16), dims tag (8), then
     * the four int32 dims, little-endian as this machine wrote them. */
    assert_int_equal(buf[128], 14);
    assert_int_equal(buf[128 + 32 + 12], SVHN_N);
    buf[128 + 32 + 12] = SVHN_N + 1;
    if (!compress) {
        tu_write_file(path, buf, n);
        return;
    }
    size_t x_len = 8 + (size_t)(buf[132] | buf[133] << 8 | buf[134] << 16 | (size_t)buf[135] << 24);
    uLongf packed_len = sizeof packed - 8;
    assert_int_equal(compress2(packed + 8, &packed_len, buf + 128, x_len, 6), Z_OK);
    packed[0] = 15, packed[1] = packed[2] = packed[3] = 0;
    for (int b = 0; b < 4; b++) packed[4 + b] = (unsigned char)(packed_len >> (8 * b));
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, 128, f), 128);
    assert_int_equal(fwrite(packed, 1, 8 + packed_len, f), 8 + packed_len);
    assert_int_equal(fwrite(buf + 128 + x_len, 1, n - 128 - x_len, f), n - 128 - x_len);
    fclose(f);
}

/* An array whose dimensions call for more values than its data holds (found
 * by tests/fuzz/fuzz_svhn): matio allocates by the dimensions and fills
 * what the data gives, so X came back with a fourth image of stale memory
 * (or, with a large count, asked for gigabytes). */
static void svhn_dims_beyond_data(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    fill_svhn_x();
    join(p, sizeof p, dir, "test_32x32.mat");
    clasp_dataset d;
    for (int compress = 0; compress < 2; compress++) {
        write_x_claiming_more(dir, p, compress);
        clasp_status s = clasp_svhn_load(dir, 0, &d);
        assert_error(s, CLASP_ERR_FORMAT,
                     compress ? "test_32x32.mat: the compressed array at byte 128"
                              : "test_32x32.mat: the array at byte 128",
                     "dimensions call for more values than its");
        assert_zeroed(&d);
    }
    tu_rmdir(dir);
}

/* Header parts claiming more bytes than their element holds (found by
 * tests/fuzz/fuzz_svhn): matio allocated what the tags said, 1.7 GB for a
 * name, before anything could be refused. */
static void svhn_header_beyond_element(void **state)
{
    (void)state;
    char dir[256], full[512], p[512];
    tu_tmpdir(dir, sizeof dir);
    fill_svhn_x();
    join(full, sizeof full, dir, "full.mat");
    join(p, sizeof p, dir, "test_32x32.mat");
    mat_var vars[2] = {svhn_xvar(), svhn_yvar()};
    write_mat(full, vars, 2, 0);
    static unsigned char buf[1 << 16];
    FILE *f = fopen(full, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* X at byte 128: its tag, the flags tag (length at 140), the flags,
     * the dims tag and four dims, then the name "X" packed into one
     * 8-byte tag at 176, here made a full tag of 0x662d5441 bytes. */
    static const struct {
        size_t at, n;
        const char *bytes, *what;
    } cases[] = {{140, 4, "AT-f", "its flags tag runs past its"},
                 {176, 8,
                  "\x01\x00\x00\x00"
                  "AT-f",
                  "its name runs past its"}};
    clasp_dataset d;
    for (int i = 0; i < 2; i++) {
        unsigned char keep[8];
        memcpy(keep, buf + cases[i].at, cases[i].n);
        memcpy(buf + cases[i].at, cases[i].bytes, cases[i].n);
        tu_write_file(p, buf, n);
        memcpy(buf + cases[i].at, keep, cases[i].n);
        clasp_status s = clasp_svhn_load(dir, 0, &d);
        assert_error(s, CLASP_ERR_FORMAT, "test_32x32.mat: the array at byte 128", cases[i].what);
        assert_zeroed(&d);
    }
    tu_rmdir(dir);
}

/* ---- loading by name ---------------------------------------------------- */

static void names_and_dispatch(void **state)
{
    (void)state;
    const char *want[] = {"fashion-mnist", "mnist", "cifar10",     "cifar100", "cifar100-coarse",
                          "svhn",          "stl10", "imagefolder", "imagenet"};
    int n = 0;
    while (clasp_dataset_names[n]) n++;
    assert_int_equal(n, 9);
    for (int i = 0; i < n; i++) {
        assert_string_equal(clasp_dataset_names[i], want[i]);
        assert_true(clasp_dataset_known(want[i]));
    }
    assert_false(clasp_dataset_known("cifar"));
    assert_false(clasp_dataset_known(NULL));

    clasp_dataset d;
    assert_error(clasp_dataset_load("imagenet1k", "/tmp", 0, &d), CLASP_ERR_INVALID,
                 "unknown data set 'imagenet1k'", "svhn, stl10");
    assert_zeroed(&d);
    for (int i = 1; i < n; i++)
        assert_error(clasp_dataset_load(want[i], NULL, 0, &d), CLASP_ERR_INVALID, want[i],
                     "needs a folder");

    /* Every built-in name fits, none is empty, and the tables are full. */
    for (int k = 0; k < 100; k++) {
        assert_non_null(clasp_cifar100_fine_classes[k]);
        assert_true(strlen(clasp_cifar100_fine_classes[k]) > 0);
        assert_true(strlen(clasp_cifar100_fine_classes[k]) < CLASP_CLASS_NAME_MAX);
    }
    for (int k = 0; k < 20; k++) {
        assert_non_null(clasp_cifar100_coarse_classes[k]);
        assert_true(strlen(clasp_cifar100_coarse_classes[k]) < CLASP_CLASS_NAME_MAX);
    }
    for (int k = 0; k < 10; k++) assert_non_null(clasp_stl10_classes[k]);
}

/* ---- tools/fashion_to_cifar.py ------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* n 28x28 images (pixel k of image i = pattern(i, k)) and labels i % 10,
 * gzip-compressed as Debian ships them. */
static void write_fashion(const char *dir, const char *prefix, uint32_t n)
{
    size_t size = 16 + (size_t)n * 784;
    unsigned char *buf = malloc(size);
    assert_non_null(buf);
    put_be32(buf, 0x00000803u);
    put_be32(buf + 4, n);
    put_be32(buf + 8, 28);
    put_be32(buf + 12, 28);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 784; k++) buf[16 + i * 784 + k] = pattern(i, k);
    char p[512], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    join(p, sizeof p, dir, name);
    gzFile gz = gzopen(p, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, buf, (unsigned)size), (int)size);
    gzclose(gz);
    put_be32(buf, 0x00000801u);
    for (size_t i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % 10);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", prefix);
    join(p, sizeof p, dir, name);
    gz = gzopen(p, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, buf, 8 + n), (int)(8 + n));
    gzclose(gz);
    free(buf);
}

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

static void fashion_to_cifar(void **state)
{
    (void)state;
    /* Set by the build when python3 is there. */
    const char *python = getenv("CLASP_PYTHON"), *script = getenv("CLASP_FASHION_TO_CIFAR");
    if (!python || !*python || !script || !*script) skip();
    char src[256], out[256], cmd[2048];
    tu_tmpdir(src, sizeof src);
    tu_tmpdir(out, sizeof out);
    write_fashion(src, "train", 13);
    write_fashion(src, "t10k", 4);

    snprintf(cmd, sizeof cmd, "'%s' '%s' --help > /dev/null", python, script);
    assert_int_equal(run_cmd(cmd), 0);
    /* --limit below one image per batch is refused. */
    snprintf(cmd, sizeof cmd, "'%s' '%s' --source '%s' --limit 4 '%s' 2> /dev/null", python, script,
             src, out);
    assert_int_equal(run_cmd(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --source '%s' --limit 12 '%s' > /dev/null", python, script,
             src, out);
    assert_int_equal(run_cmd(cmd), 0);

    clasp_dataset d;
    assert_ok(clasp_cifar10_load(out, 1, &d));
    assert_int_equal(d.n, 12); /* the limit, split 3+3+2+2+2 */
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.y[i], (int)(i % 10));
        const float *img = d.x + i * 3072;
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 32; c++) {
                int inside = r >= 2 && r < 30 && c >= 2 && c < 30;
                float want = inside ? px(pattern(i, (size_t)(r - 2) * 28 + (size_t)(c - 2))) : 0;
                for (int ch = 0; ch < 3; ch++)
                    if (img[ch * 1024 + r * 32 + c] != want)
                        fail_msg("image %zu channel %d (%d,%d): %g, expected %g", i, ch, r, c,
                                 (double)img[ch * 1024 + r * 32 + c], (double)want);
            }
    }
    assert_string_equal(d.class_names[0], "T-shirt/top");
    assert_string_equal(d.class_names[9], "Ankle boot");
    clasp_dataset_free(&d);
    assert_ok(clasp_dataset_load("cifar10", out, 0, &d));
    assert_int_equal(d.n, 4);
    assert_int_equal(d.y[3], 3);
    clasp_dataset_free(&d);

    /* A damaged source is reported, not converted. */
    char p[512];
    join(p, sizeof p, src, "t10k-labels-idx1-ubyte.gz");
    tu_write_file(p, "\x1f\x8b", 2);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --source '%s' '%s' 2> /dev/null", python, script, src,
             out);
    assert_int_equal(run_cmd(cmd), 1);
    tu_rmdir(src);
    tu_rmdir(out);
}

/* Found by the svhn fuzzer: a compressed element whose zlib stream stops
 * after 8 of its announced bytes. matio then allocated 4.7 GB from a tag
 * it never read; the reader refuses the file first. */
static void svhn_compressed_stream_cut_short(void **state)
{
    (void)state;
    static const unsigned char file[] = {
        0x4d, 0x41, 0x54, 0x4c, 0x41, 0x42, 0x20, 0x35, 0x2e, 0x30, 0x20, 0x4d, 0x41, 0x54,
        0x2d, 0x66, 0x69, 0x6c, 0x65, 0x2c, 0x20, 0x77, 0x72, 0x69, 0x74, 0x74, 0x65, 0x6e,
        0x20, 0x66, 0x6f, 0x72, 0x20, 0x74, 0x68, 0x65, 0x20, 0x63, 0x6c, 0x61, 0x73, 0x8d,
        0xdf, 0x66, 0x75, 0x7a, 0x7a, 0x20, 0x73, 0x65, 0x65, 0x64, 0x73, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x1f, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x24, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0xe9, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x49, 0x4d, 0x0f, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x78, 0x9c, 0xe3, 0x63,
        0x60, 0x60, 0x70, 0x00, 0x62, 0x37, 0x20, 0xe6, 0x80, 0xd2, 0x20, 0xc0, 0x0a, 0xe5,
        0x32, 0xa2, 0xe1, 0x4a, 0xa8, 0x3c, 0x27, 0x54, 0x1e, 0x02, 0x27, 0x2a, 0x2d, 0x34,
        0x30, 0x66, 0x69, 0x6c, 0x6f, 0x72, 0xea, 0xed, 0xf0, 0xf3, 0xf6, 0xf9, 0xfc, 0xff,
    };
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    join(p, sizeof p, dir, "test_32x32.mat");
    tu_write_file(p, file, sizeof file);
    clasp_dataset d;
    assert_int_equal(clasp_dataset_load("svhn", dir, 0, &d), CLASP_ERR_FORMAT);
    assert_non_null(
        strstr(clasp_last_error(), "the compressed array at byte 128: the compressed stream ends"));
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cifar100_ok),
        cmocka_unit_test(cifar100_bad),
        cmocka_unit_test(stl10_ok),
        cmocka_unit_test(stl10_bad),
        cmocka_unit_test(svhn_ok),
        cmocka_unit_test(svhn_bad_vars),
        cmocka_unit_test(svhn_bad_files),
        cmocka_unit_test(svhn_dims_beyond_data),
        cmocka_unit_test(svhn_header_beyond_element),
        cmocka_unit_test(svhn_compressed_stream_cut_short),
        cmocka_unit_test(names_and_dispatch),
        cmocka_unit_test(fashion_to_cifar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
