/* Data readers: IDX (raw and gzip), CIFAR-10 batches, splits, shuffling. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "clasp/data.h"

/* ---- helpers ------------------------------------------------------------ */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* IDX images: n x rows x cols, pixel k = (k * 7 + 3) & 255; only `keep`
 * pixel bytes are written (for truncation tests). Returns the byte count. */
static size_t make_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t rows,
                          uint32_t cols, size_t keep)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t k = 0; k < keep; k++) buf[16 + k] = (unsigned char)((k * 7 + 3) & 255);
    return 16 + keep;
}

static size_t make_labels(unsigned char *buf, uint32_t n, const unsigned char *labels)
{
    put_be32(buf, 0x00000801u);
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    if (!gz) fail_msg("gzopen %s failed", path);
    if (gzwrite(gz, data, (unsigned)n) != (int)n) fail_msg("gzwrite %s failed", path);
    gzclose(gz);
}

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
}

/* A 3-image 2x3 set with labels {1, 9, 0}, written raw or gzipped. */
static void write_small_idx(const char *dir, int gz, char *images, char *labels)
{
    unsigned char ib[64], lb[16];
    const unsigned char y[3] = {1, 9, 0};
    size_t ni = make_images(ib, 0x00000803u, 3, 2, 3, 18);
    size_t nl = make_labels(lb, 3, y);
    join(images, 512, dir, gz ? "img.gz" : "img");
    join(labels, 512, dir, gz ? "lab.gz" : "lab");
    if (gz) {
        write_gz(images, ib, ni);
        write_gz(labels, lb, nl);
    } else {
        tu_write_file(images, ib, ni);
        tu_write_file(labels, lb, nl);
    }
}

static void check_small(const clasp_dataset *d)
{
    assert_int_equal(d->n, 3);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, 2);
    assert_int_equal(d->w, 3);
    assert_int_equal(d->num_classes, 10);
    for (size_t k = 0; k < 18; k++) assert_true(d->x[k] == (float)((k * 7 + 3) & 255) / 255.0f);
    assert_int_equal(d->y[0], 1);
    assert_int_equal(d->y[1], 9);
    assert_int_equal(d->y[2], 0);
    assert_string_equal(d->class_names[9], "9");
}

/* ---- IDX ---------------------------------------------------------------- */

static void idx_raw_ok(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    tu_tmpdir(dir, sizeof dir);
    write_small_idx(dir, 0, images, labels);
    clasp_dataset d;
    assert_ok(clasp_idx_load(images, labels, 10, &d));
    check_small(&d);
    clasp_dataset_free(&d);
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void idx_gz_ok(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    tu_tmpdir(dir, sizeof dir);
    write_small_idx(dir, 1, images, labels);
    clasp_dataset d;
    assert_ok(clasp_idx_load(images, labels, 10, &d));
    check_small(&d);
    clasp_dataset_free(&d);
    tu_rmdir(dir);
}

/* clasp_mnist_load prefers ".gz" but falls back to the raw name. */
static void mnist_layout_mixed(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512], p[512];
    tu_tmpdir(dir, sizeof dir);
    write_small_idx(dir, 1, images, labels);
    join(p, sizeof p, dir, "t10k-images-idx3-ubyte.gz");
    assert_int_equal(rename(images, p), 0);
    write_small_idx(dir, 0, images, labels);
    join(p, sizeof p, dir, "t10k-labels-idx1-ubyte");
    assert_int_equal(rename(labels, p), 0);
    clasp_dataset d;
    assert_ok(clasp_mnist_load(dir, 0, 1, &d));
    assert_int_equal(d.n, 3);
    assert_string_equal(d.class_names[0], "T-shirt/top");
    assert_string_equal(d.class_names[9], "Ankle boot");
    clasp_dataset_free(&d);

    /* No training files: both candidate paths are named. */
    clasp_status s = clasp_mnist_load(dir, 1, 1, &d);
    join(p, sizeof p, dir, "train-images-idx3-ubyte.gz");
    assert_error(s, CLASP_ERR_NOT_FOUND, p, NULL);
    /* The raw path is a prefix of the .gz one, so look for it after "and". */
    snprintf(p, sizeof p, "and %s/train-images-idx3-ubyte", dir);
    assert_error(s, CLASP_ERR_NOT_FOUND, p, NULL);
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void idx_wrong_magic(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    tu_tmpdir(dir, sizeof dir);
    write_small_idx(dir, 0, images, labels);
    clasp_dataset d;
    /* Swapped arguments: the label file has the wrong magic for images. */
    clasp_status s = clasp_idx_load(labels, images, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, labels, "magic");
    assert_error(s, CLASP_ERR_FORMAT, "0x00000801", "0x00000803");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void idx_truncated(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    unsigned char ib[64], lb[16];
    const unsigned char y[3] = {0, 1, 2};
    tu_tmpdir(dir, sizeof dir);
    join(images, sizeof images, dir, "img");
    join(labels, sizeof labels, dir, "lab.gz");
    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 2, 3, 10));
    write_gz(labels, lb, make_labels(lb, 3, y));
    clasp_dataset d;
    clasp_status s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, images, "truncated at byte 26,");
    assert_error(s, CLASP_ERR_FORMAT, "expected 34 bytes", NULL);
    assert_zeroed(&d);

    /* Truncated inside a gzip stream: offsets count decompressed bytes. */
    write_gz(images, ib, make_images(ib, 0x00000803u, 3, 2, 3, 10));
    s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, "truncated at byte 26 of the decompressed data", NULL);

    /* A header cut short. */
    tu_write_file(images, ib, 6);
    s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, "truncated at byte 6,", "header");
    tu_rmdir(dir);
}

static void idx_count_mismatch(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    unsigned char ib[64], lb[16];
    const unsigned char y[2] = {0, 1};
    tu_tmpdir(dir, sizeof dir);
    join(images, sizeof images, dir, "img");
    join(labels, sizeof labels, dir, "lab");
    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 2, 3, 18));
    tu_write_file(labels, lb, make_labels(lb, 2, y));
    clasp_dataset d;
    clasp_status s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, labels, images);
    assert_error(s, CLASP_ERR_FORMAT, "2 labels", "3 images");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void idx_label_out_of_range(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    unsigned char ib[64], lb[16];
    const unsigned char y[3] = {1, 12, 0};
    tu_tmpdir(dir, sizeof dir);
    join(images, sizeof images, dir, "img");
    join(labels, sizeof labels, dir, "lab");
    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 2, 3, 18));
    tu_write_file(labels, lb, make_labels(lb, 3, y));
    clasp_dataset d;
    clasp_status s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, labels, "label 12 at byte 9");
    assert_zeroed(&d);
    /* The same labels are fine with more classes. */
    assert_ok(clasp_idx_load(images, labels, 13, &d));
    assert_string_equal(d.class_names[12], "12");
    clasp_dataset_free(&d);
    tu_rmdir(dir);
}

static void idx_bad_dims_and_missing(void **state)
{
    (void)state;
    char dir[256], images[512], labels[512];
    unsigned char ib[64];
    tu_tmpdir(dir, sizeof dir);
    write_small_idx(dir, 0, images, labels);
    clasp_dataset d;

    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 0, 3, 0));
    clasp_status s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, images, "dimension 0 at byte 8");

    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 2, 5000, 0));
    s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, "dimension 5000 at byte 12", NULL);

    /* Trailing bytes mean the header does not describe the file. */
    tu_write_file(images, ib, make_images(ib, 0x00000803u, 3, 2, 3, 18) + 1);
    s = clasp_idx_load(images, labels, 10, &d);
    assert_error(s, CLASP_ERR_FORMAT, "unexpected data at byte 34", NULL);

    char missing[512];
    join(missing, sizeof missing, dir, "nope");
    s = clasp_idx_load(missing, labels, 10, &d);
    assert_error(s, CLASP_ERR_IO, missing, "No such file");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

/* ---- CIFAR-10 ----------------------------------------------------------- */

/* Record r: label labels[r], pixel p = (p + 31 * r) & 255. */
static void write_cifar(const char *path, size_t records, const unsigned char *labels, size_t extra)
{
    size_t n = records * 3073 + extra;
    unsigned char *b = calloc(n ? n : 1, 1);
    assert_non_null(b);
    for (size_t r = 0; r < records; r++) {
        b[r * 3073] = labels[r];
        for (size_t p = 0; p < 3072; p++) b[r * 3073 + 1 + p] = (unsigned char)((p + 31 * r) & 255);
    }
    tu_write_file(path, b, n);
    free(b);
}

static void cifar_ok(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    const unsigned char y[2] = {3, 9};
    join(p, sizeof p, dir, "test_batch.bin");
    write_cifar(p, 2, y, 0);
    clasp_dataset d;
    assert_ok(clasp_cifar10_load(dir, 0, &d));
    assert_int_equal(d.n, 2);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    assert_int_equal(d.w, 32);
    assert_int_equal(d.num_classes, 10);
    assert_int_equal(d.y[0], 3);
    assert_int_equal(d.y[1], 9);
    /* Image 1, green plane (c=1), row 2, column 5. */
    size_t at = 1 * 3072 + 1 * 1024 + 2 * 32 + 5;
    assert_true(d.x[at] == (float)((1024 + 2 * 32 + 5 + 31) & 255) / 255.0f);
    assert_string_equal(d.class_names[0], "airplane");
    assert_string_equal(d.class_names[9], "truck");
    clasp_dataset_free(&d);

    /* Names from batches.meta.txt, with CRLF and a trailing blank line. */
    const char *meta = "a0\r\na1\na2\na3\na4\na5\na6\na7\na8\n  a9  \n\n";
    join(p, sizeof p, dir, "batches.meta.txt");
    tu_write_file(p, meta, strlen(meta));
    /* Training: five batches concatenated in order. */
    const unsigned char one[1] = {7};
    for (int i = 1; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        join(p, sizeof p, dir, name);
        write_cifar(p, 1, one, 0);
    }
    assert_ok(clasp_cifar10_load(dir, 1, &d));
    assert_int_equal(d.n, 5);
    assert_int_equal(d.y[4], 7);
    assert_string_equal(d.class_names[0], "a0");
    assert_string_equal(d.class_names[9], "a9");
    clasp_dataset_free(&d);

    /* A meta file with the wrong number of names is an error. */
    join(p, sizeof p, dir, "batches.meta.txt");
    tu_write_file(p, "x\ny\n", 4);
    assert_error(clasp_cifar10_load(dir, 1, &d), CLASP_ERR_FORMAT, "batches.meta.txt",
                 "2 class names");
    assert_zeroed(&d);
    tu_rmdir(dir);
}

static void cifar_bad(void **state)
{
    (void)state;
    char dir[256], p[512];
    tu_tmpdir(dir, sizeof dir);
    join(p, sizeof p, dir, "test_batch.bin");
    clasp_dataset d;

    const unsigned char ok[2] = {1, 2};
    write_cifar(p, 1, ok, 100);
    clasp_status s = clasp_cifar10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "test_batch.bin", "size 3173");
    assert_error(s, CLASP_ERR_FORMAT, "record at byte 3073 has only 100 bytes", NULL);
    assert_zeroed(&d);

    const unsigned char bad[2] = {1, 10};
    write_cifar(p, 2, bad, 0);
    s = clasp_cifar10_load(dir, 0, &d);
    assert_error(s, CLASP_ERR_FORMAT, "label 10 at byte 3073", "record 1");
    assert_zeroed(&d);

    s = clasp_cifar10_load(dir, 1, &d);
    assert_error(s, CLASP_ERR_IO, "data_batch_1.bin", "No such file");
    tu_rmdir(dir);
}

/* ---- splits, shuffling, counts ------------------------------------------ */

/* n examples of 1x2x2; x[i*4] = i identifies the example, y = i % 10. */
static void make_dataset(clasp_dataset *d, size_t n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = 1;
    d->h = 2;
    d->w = 2;
    d->num_classes = 10;
    d->x = calloc(n * 4, sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    assert_non_null(d->x);
    assert_non_null(d->y);
    for (size_t i = 0; i < n; i++) {
        d->x[i * 4] = (float)i;
        d->y[i] = (int32_t)(i % 10);
    }
    assert_int_equal(clasp_dataset_set_classes(d, d->num_classes), CLASP_OK);
    strcpy(d->class_names[3], "three");
}

static void split_deterministic(void **state)
{
    (void)state;
    clasp_dataset all, t1, v1, t2, v2, t3, v3;
    make_dataset(&all, 100);
    assert_ok(clasp_dataset_split(&all, 20, 42, &t1, &v1));
    assert_zeroed(&all);
    assert_int_equal(t1.n, 80);
    assert_int_equal(v1.n, 20);
    assert_string_equal(v1.class_names[3], "three");
    assert_int_equal(v1.h, 2);

    /* The union is the original set, each example once, labels attached. */
    int seen[100] = {0};
    for (size_t i = 0; i < t1.n; i++) seen[(int)t1.x[i * 4]]++;
    for (size_t i = 0; i < v1.n; i++) seen[(int)v1.x[i * 4]]++;
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
    for (size_t i = 0; i < v1.n; i++) assert_int_equal(v1.y[i], (int)v1.x[i * 4] % 10);

    make_dataset(&all, 100);
    assert_ok(clasp_dataset_split(&all, 20, 42, &t2, &v2));
    assert_memory_equal(v1.x, v2.x, 20 * 4 * sizeof(float));
    assert_memory_equal(t1.y, t2.y, 80 * sizeof(int32_t));

    make_dataset(&all, 100);
    assert_ok(clasp_dataset_split(&all, 20, 43, &t3, &v3));
    assert_true(memcmp(v1.x, v3.x, 20 * 4 * sizeof(float)) != 0);

    clasp_dataset_free(&t1);
    clasp_dataset_free(&v1);
    clasp_dataset_free(&t2);
    clasp_dataset_free(&v2);
    clasp_dataset_free(&t3);
    clasp_dataset_free(&v3);

    /* n_val = 0 keeps everything, in order; too many is refused. */
    make_dataset(&all, 10);
    assert_ok(clasp_dataset_split(&all, 0, 1, &t1, &v1));
    assert_int_equal(t1.n, 10);
    assert_int_equal(v1.n, 0);
    assert_null(v1.x);
    for (size_t i = 0; i < 10; i++) assert_true(t1.x[i * 4] == (float)i);
    assert_int_equal(clasp_dataset_split(&t1, 11, 1, &t2, &v2), CLASP_ERR_INVALID);
    assert_int_equal(t1.n, 10);
    /* The output may alias the input. */
    assert_ok(clasp_dataset_split(&t1, 10, 1, &t1, &v2));
    assert_int_equal(t1.n, 0);
    assert_int_equal(v2.n, 10);
    clasp_dataset_free(&t1);
    clasp_dataset_free(&v1);
    clasp_dataset_free(&v2);
}

static void shuffle_permutation(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    clasp_shuffle(a, N, 5, 0);
    clasp_shuffle(b, N, 5, 0);
    assert_memory_equal(a, b, N * sizeof *a);
    char seen[N] = {0};
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(a[i] < N);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    assert_true(fixed < 20); /* about 1 expected for a random permutation */
    clasp_shuffle(b, N, 5, 1);
    assert_true(memcmp(a, b, N * sizeof *a) != 0);
    clasp_shuffle(b, N, 6, 0);
    assert_true(memcmp(a, b, N * sizeof *a) != 0);

    /* Pinned values: the order must not change across platforms or
     * releases, or saved experiments would stop reproducing. */
    uint32_t p[8];
    clasp_shuffle(p, 8, 0, 0);
    const uint32_t pinned[8] = {3, 1, 4, 6, 7, 2, 0, 5};
    assert_memory_equal(p, pinned, sizeof p);

    clasp_shuffle(a, 1, 5, 0);
    assert_int_equal(a[0], 0);
    clasp_shuffle(a, 0, 5, 0); /* must not touch anything */
    free(a);
    free(b);
}

static void counts_and_truncate(void **state)
{
    (void)state;
    clasp_dataset d;
    make_dataset(&d, 25);
    size_t counts[10];
    clasp_dataset_class_counts(&d, counts);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], k < 5 ? 3 : 2);
    clasp_dataset_truncate(&d, 100);
    assert_int_equal(d.n, 25);
    clasp_dataset_truncate(&d, 12);
    assert_int_equal(d.n, 12);
    assert_true(d.x[11 * 4] == 11.0f);
    clasp_dataset_class_counts(&d, counts);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[2], 1);
    clasp_dataset_truncate(&d, 0);
    assert_int_equal(d.n, 0);
    clasp_dataset_free(&d);
    clasp_dataset_free(NULL);
}

/* ---- the real thing, when installed ------------------------------------- */

static void real_fashion_mnist(void **state)
{
    (void)state;
    struct stat st;
    if (stat(CLASP_FASHION_MNIST_DIR, &st) != 0) skip();
    clasp_dataset d;
    assert_ok(clasp_mnist_load(NULL, 0, 1, &d));
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    assert_int_equal(d.num_classes, 10);
    size_t counts[10];
    clasp_dataset_class_counts(&d, counts);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], 1000);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < d.n * 784; i++) {
        lo = d.x[i] < lo ? d.x[i] : lo;
        hi = d.x[i] > hi ? d.x[i] : hi;
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    assert_string_equal(d.class_names[8], "Bag");
    clasp_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idx_raw_ok),
        cmocka_unit_test(idx_gz_ok),
        cmocka_unit_test(mnist_layout_mixed),
        cmocka_unit_test(idx_wrong_magic),
        cmocka_unit_test(idx_truncated),
        cmocka_unit_test(idx_count_mismatch),
        cmocka_unit_test(idx_label_out_of_range),
        cmocka_unit_test(idx_bad_dims_and_missing),
        cmocka_unit_test(cifar_ok),
        cmocka_unit_test(cifar_bad),
        cmocka_unit_test(split_deterministic),
        cmocka_unit_test(shuffle_permutation),
        cmocka_unit_test(counts_and_truncate),
        cmocka_unit_test(real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
