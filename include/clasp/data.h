/* clasp — data sets on the host: IDX (MNIST, Fashion-MNIST), CIFAR-10 and
 * CIFAR-100 binary files, SVHN (MATLAB files), STL-10 binary files,
 * validation splits and seeded shuffling.
 *
 * Images are stored as float32 in [0,1], NCHW, one contiguous array; labels
 * as int32 in [0, num_classes). */
#ifndef CLASP_DATA_H
#define CLASP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* Up to 1000 classes (ImageNet). Names are at most 31 bytes of UTF-8:
 * every built-in table fits (torchvision's ImageNet names are at most 30),
 * and longer names from a file are cut (see clasp_imagefolder_load). */
#define CLASP_MAX_CLASSES 1000
#define CLASP_CLASS_NAME_MAX 32

typedef struct clasp_dataset {
    size_t n;    /* number of examples */
    int c, h, w; /* image shape */
    int num_classes;
    float *x;   /* n*c*h*w values in [0,1], owned */
    int32_t *y; /* n labels, owned */
    /* num_classes names on the heap (clasp_dataset_set_classes), owned;
     * a pointer so a dataset on the stack stays small at 1000 classes. */
    char (*class_names)[CLASP_CLASS_NAME_MAX];
} clasp_dataset;

/* Sets d->num_classes = k and gives d k empty class names (replacing any it
 * had). CLASP_ERR_INVALID unless 1 <= k <= CLASP_MAX_CLASSES. */
clasp_status clasp_dataset_set_classes(clasp_dataset *d, int k);

/* Default folder of Debian's dataset-fashion-mnist package. */
#define CLASP_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Reads one IDX image file (magic 0x00000803, u8 pixels) and its IDX label
 * file (magic 0x00000801). Either may be gzip-compressed (detected by
 * content, not name). Every label must be < num_classes. Errors name the
 * file and the byte offset: wrong magic, truncated data, count mismatch
 * between the two files, label out of range. On failure *out is zeroed. */
clasp_status clasp_idx_load(const char *images_path, const char *labels_path, int num_classes,
                            clasp_dataset *out);

/* Loads MNIST-layout files from `dir` (NULL = CLASP_FASHION_MNIST_DIR):
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte, with or without ".gz".
 * `fashion` selects the class names (Fashion-MNIST's ten or digits).
 * CLASP_ERR_NOT_FOUND, naming both paths tried, when a file is absent. */
clasp_status clasp_mnist_load(const char *dir, int train, int fashion, clasp_dataset *out);

/* Loads CIFAR-10 binary batches from `dir` (data_batch_1..5.bin for train,
 * test_batch.bin for test); class names from batches.meta.txt when present,
 * otherwise the standard ten. Each record: 1 label byte + 3072 pixel bytes. */
clasp_status clasp_cifar10_load(const char *dir, int train, clasp_dataset *out);

/* Loads CIFAR-100's binary version from `dir`: train.bin or test.bin,
 * records of 1 coarse label byte (< 20), 1 fine label byte (< 100) and the
 * 3072 pixel bytes laid out as in CIFAR-10. `coarse` = 0 gives the 100
 * fine classes, 1 the 20 superclasses; both labels are range-checked
 * either way. Class names from fine_label_names.txt (or
 * coarse_label_names.txt) when present, one per line, else the standard
 * ones. Errors name the file and the byte offset. */
clasp_status clasp_cifar100_load(const char *dir, int train, int coarse, clasp_dataset *out);

/* Loads SVHN's cropped digits from `dir`: train_32x32.mat or
 * test_32x32.mat (MATLAB files, read with libmatio). Variable X must be
 * uint8 of dims 32x32x3xN (X(row, col, channel, n)), variable y double or
 * uint8 of dims Nx1 (1xN is accepted too) with labels 1..10, where 10 means
 * the digit 0. Classes are the digits: label d (10 -> 0) is class d, named
 * "0".."9". Errors name the file, the variable and what was expected. */
clasp_status clasp_svhn_load(const char *dir, int train, clasp_dataset *out);

/* Loads STL-10's binary version from `dir`: train_X.bin + train_y.bin or
 * test_X.bin + test_y.bin. Images are 3x96x96 uint8, each channel plane
 * column-major (pixel (r, c) of channel ch of image i at byte
 * i*27648 + ch*9216 + c*96 + r); labels are one byte each, 1..10, stored
 * here as 0..9. Class names from class_names.txt when present, else the
 * standard ten. Errors name the file and the byte offset. */
clasp_status clasp_stl10_load(const char *dir, int train, clasp_dataset *out);

/* Names clasp_dataset_load knows, NULL-terminated: "fashion-mnist",
 * "mnist", "cifar10", "cifar100", "cifar100-coarse", "svhn", "stl10". */
extern const char *const clasp_dataset_names[];

/* The names as text for messages and usage lines, e.g. with last_sep
 * " or ": "fashion-mnist, mnist, ..., svhn or stl10" (cut to size). */
void clasp_dataset_names_text(char *buf, size_t size, const char *last_sep);

/* 1 when `name` is one of clasp_dataset_names (NULL gives 0). */
int clasp_dataset_known(const char *name);

/* Loads a data set by name (see clasp_dataset_names): "fashion-mnist"
 * (dir NULL = the default folder); every other needs dir. "cifar100" has
 * the fine labels, "cifar100-coarse" the 20 superclasses. On failure *out
 * is zeroed. */
clasp_status clasp_dataset_load(const char *name, const char *dir, int train, clasp_dataset *out);

/* Frees the arrays; safe on a zeroed or NULL dataset. */
void clasp_dataset_free(clasp_dataset *d);

/* Moves the last `n_val` examples of a seeded permutation of `all` into
 * *val and the rest into *train (both new datasets; `all` is freed and
 * zeroed). n_val may be 0 (then *val is empty with n = 0). The same seed
 * always gives the same split. Both parts keep the original order of `all`.
 * On failure `all` is left intact. */
clasp_status clasp_dataset_split(clasp_dataset *all, size_t n_val, uint64_t seed,
                                 clasp_dataset *train, clasp_dataset *val);

/* Keeps only the first n examples (n >= d->n leaves it unchanged). */
void clasp_dataset_truncate(clasp_dataset *d, size_t n);

/* Fills perm[0..n) with a permutation of 0..n-1 determined by (seed, epoch)
 * (Fisher–Yates driven by a counter-based generator). */
void clasp_shuffle(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch);

/* Removes, in place and keeping the order of the rest, every example whose
 * label c has mask[c] != 0 (mask: num_classes entries); returns how many
 * were removed. num_classes and the class names stay: a model trained on
 * what remains still has an output for every class. */
size_t clasp_dataset_exclude(clasp_dataset *d, const int *mask);

/* Per-class counts of d->y into counts[num_classes]. */
void clasp_dataset_class_counts(const clasp_dataset *d, size_t *counts);

/* Class names. */
extern const char *const clasp_fashion_mnist_classes[10];
extern const char *const clasp_cifar10_classes[10];
extern const char *const clasp_cifar100_fine_classes[100];
extern const char *const clasp_cifar100_coarse_classes[20];
extern const char *const clasp_stl10_classes[10];
extern const char *const clasp_digit_classes[10]; /* "0".."9" */

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
