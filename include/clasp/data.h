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
 * "mnist", "cifar10", "cifar100", "cifar100-coarse", "svhn", "stl10",
 * "imagefolder", "imagenet". */
extern const char *const clasp_dataset_names[];

/* The names as text for messages and usage lines, e.g. with last_sep
 * " or ": "fashion-mnist, mnist, ..., svhn or stl10" (cut to size). */
void clasp_dataset_names_text(char *buf, size_t size, const char *last_sep);

/* 1 when `name` is one of clasp_dataset_names (NULL gives 0). */
int clasp_dataset_known(const char *name);

/* 1 for the image-folder data sets ("imagefolder", "imagenet"), which are
 * streamed rather than held (NULL gives 0). */
int clasp_dataset_is_folder(const char *name);

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

/* ---- Image folders ------------------------------------------------------
 * DIR/<class>/<image> as torchvision's ImageFolder reads it: classes are
 * the sorted names of DIR's folders, images every file (in subfolders too)
 * whose name ends in .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp (any
 * case), in the order of sorted(os.walk). JPEG and PNG are decoded (others
 * are an error naming the file); pixels are those of PIL's
 * Image.open(path).convert("RGB"), so EXIF orientation is not applied.
 * Only the index is held: images are decoded when asked for. */
typedef struct clasp_imagefolder clasp_imagefolder;

typedef struct clasp_imagefolder_options {
    /* ILSVRC layout: class folders are WordNet ids (n01440764, ...), any
     * subset of ImageNet-1k's; the classes are then all 1000 in their usual
     * order (label = the id's index among the sorted 1000, as a full
     * validation folder numbers them), named
     * from LOC_synset_mapping.txt (in DIR or its parent) or DIR/classes.txt
     * (lines "<folder> <name>"), else from the table clasp ships
     * (torchvision's ImageNet names); names are cut to 31 bytes at a ", "
     * between synonyms. Without it a class is named by its folder. */
    int imagenet;
    /* NULL or "robustbench-5000": RobustBench's 5000 ImageNet evaluation
     * images, in its list's order (DIR/<wnid>/ILSVRC2012_val_*.JPEG). */
    const char *subset;
    /* RobustBench's names: "Res256Crop224" (the default), "Crop288",
     * "Res224", "BicubicRes256Crop224", or "none" (ToTensor only: every
     * image must have the first one's size). */
    const char *preprocess;
    /* 1: an image that cannot be decoded is left out and counted (see
     * clasp_stream_skipped) instead of being an error. */
    int skip_bad;
    /* Keep only the first `limit` images (0: all). */
    size_t limit;
} clasp_imagefolder_options;

/* Reads the folder's index. Errors name the folder: no class folders, a
 * class folder without images, more than CLASP_MAX_CLASSES classes. */
clasp_status clasp_imagefolder_open(const char *dir, const clasp_imagefolder_options *o,
                                    clasp_imagefolder **out);
void clasp_imagefolder_free(clasp_imagefolder *f);

/* The set as a dataset without pixels: n, the shape after preprocessing
 * (3 x 224 x 224 for Res256Crop224), num_classes, class_names and the
 * labels y; x is NULL. Owned by the folder. */
const clasp_dataset *clasp_imagefolder_info(const clasp_imagefolder *f);

/* The split's folder of an image-folder data set: DIR/train for training,
 * DIR/val (else DIR/test) for testing, when present; else DIR itself. */
clasp_status clasp_imagefolder_split_dir(const char *dir, int train, char *buf, size_t size);

/* Both splits of DIR for training: DIR/train (every image; o's subset and
 * limit are not applied) and the test split (DIR/val, else DIR/test, with
 * o as given). DIR/train must exist, and both must have the same classes
 * in the same order (torchvision numbers each folder's classes by itself)
 * and the same image size; errors name the folders. */
clasp_status clasp_imagefolder_open_splits(const char *dir, const clasp_imagefolder_options *o,
                                           clasp_imagefolder **train, clasp_imagefolder **test);

/* The folder the index was read from. */
const char *clasp_imagefolder_dir(const clasp_imagefolder *f);

/* Decodes the whole split (see clasp_imagefolder_split_dir) into memory:
 * for small folders only (what clasp_dataset_load("imagefolder") does);
 * large sets are streamed (clasp_stream). */
clasp_status clasp_imagefolder_load(const char *dir, const clasp_imagefolder_options *o, int train,
                                    clasp_dataset *out);

/* Splits `all`'s images into *train and *val, two new folders that keep
 * the original order: the n_val images held out are those
 * clasp_dataset_split holds out of a set of that size under `seed`. `all`
 * is not changed. */
clasp_status clasp_imagefolder_split(const clasp_imagefolder *all, size_t n_val, uint64_t seed,
                                     clasp_imagefolder **train, clasp_imagefolder **val);

/* Keeps the first n images (0, or n at least the count: all). */
void clasp_imagefolder_truncate(clasp_imagefolder *f, size_t n);

/* Decodes every image with the evaluation preprocessing into *out (a new
 * dataset with pixels, f's classes); images that cannot be decoded are
 * left out under skip_bad. `what` names the set in errors. */
clasp_status clasp_imagefolder_decode(const clasp_imagefolder *f, const char *what,
                                      clasp_dataset *out);

/* Path of image i (NULL past the end). */
const char *clasp_imagefolder_path(const clasp_imagefolder *f, size_t i);

/* Decodes and preprocesses image i into x (c*h*w floats, CHW, in [0,1]).
 * train: torchvision's RandomResizedCrop(224) and RandomHorizontalFlip
 * instead of the evaluation preprocessing, drawn from `key` (the same key,
 * the same crop). Errors name the file. Safe from several threads. */
clasp_status clasp_imagefolder_get(const clasp_imagefolder *f, size_t i, int train, uint64_t key,
                                   float *x);

/* ---- Streaming ------------------------------------------------------------
 * Batches of an image folder decoded ahead by a pool of worker threads into
 * a bounded queue: at most `queue` batches exist at once (memory: queue x
 * batch x c*h*w floats), every image is yielded once per pass, in the
 * pass's order. */
typedef struct clasp_stream clasp_stream;

typedef struct clasp_stream_options {
    int batch;    /* images per batch (> 0) */
    int workers;  /* decoding threads; 0: CLASP_STREAM_DEFAULT_WORKERS */
    int queue;    /* batches decoded ahead; 0: 2 */
    int train;    /* random-resized-crop and flip (see clasp_imagefolder_get) */
    size_t limit; /* a pass yields the folder's first `limit` images only (0: all) */
} clasp_stream_options;

/* One worker: on a 2-core machine the other core stays with the device
 * (PoCL on the CPU); set workers for more. */
#define CLASP_STREAM_DEFAULT_WORKERS 1

/* `f` must outlive the stream. The stream starts a pass in order. */
clasp_status clasp_stream_new(const clasp_imagefolder *f, const clasp_stream_options *o,
                              clasp_stream **out);
void clasp_stream_free(clasp_stream *s);

/* Starts a pass (abandoning the current one): shuffled by (seed, epoch) as
 * clasp_shuffle when shuffle, else in order; training crops are drawn from
 * (seed, epoch, image). */
clasp_status clasp_stream_start(clasp_stream *s, int shuffle, uint64_t seed, uint64_t epoch);

/* The same pass from batch `first_batch` on, the earlier ones not decoded
 * (a resumed epoch). */
clasp_status clasp_stream_start_at(clasp_stream *s, int shuffle, uint64_t seed, uint64_t epoch,
                                   size_t first_batch);

/* The next batch: *x (n*c*h*w floats) and *y (n labels), valid until the
 * next call; *n is 0 at the end of the pass. *first (may be NULL): how many
 * images the pass yielded before this batch. Blocks until the batch is
 * decoded. A bad image (without skip_bad) is an error naming its file. */
clasp_status clasp_stream_next(clasp_stream *s, const float **x, const int32_t **y, int *n,
                               size_t *first);

/* The image index (into the folder) of pass position i (before skips). */
size_t clasp_stream_index(const clasp_stream *s, size_t i);

/* Images left out by skip_bad so far in this pass. */
size_t clasp_stream_skipped(const clasp_stream *s);

/* The most batches that were held at once (decoding or decoded, not yet
 * given back) since the stream was made: never more than the queue. */
int clasp_stream_peak_batches(const clasp_stream *s);

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
