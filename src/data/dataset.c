/* Dataset lifetime, validation splits, seeded shuffling, class counts. */
#include "clasp/data.h"
#include "data/data_internal.h"
#include "util/util.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* The split draws from its own epoch so it never coincides with the
 * training order of epoch 0 under the same seed. */
#define SPLIT_EPOCH UINT64_MAX

void clasp_dataset_free(clasp_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    free(d->class_names);
    memset(d, 0, sizeof *d);
}

clasp_status clasp_dataset_set_classes(clasp_dataset *d, int k)
{
    if (k < 1 || k > CLASP_MAX_CLASSES)
        return clasp_error(CLASP_ERR_INVALID, "%d classes, expected 1..%d", k, CLASP_MAX_CLASSES);
    char(*names)[CLASP_CLASS_NAME_MAX] = calloc((size_t)k, sizeof *names);
    if (!names) return clasp_error(CLASP_ERR_NOMEM, "out of memory for %d class names", k);
    free(d->class_names);
    d->class_names = names;
    d->num_classes = k;
    return CLASP_OK;
}

/* Uniform integer in [0, range) from counter-based draws (key, i, k),
 * using Lemire's multiply-shift with rejection, so there is no modulo bias
 * and draw i does not depend on how many draws came before it. */
static uint32_t uniform(uint64_t key, uint64_t i, uint32_t range)
{
    uint64_t stream = clasp_mix64(key ^ i);
    uint32_t threshold = (0u - range) % range; /* 2^32 mod range */
    for (uint64_t k = 0;; k++) {
        uint64_t m = (clasp_mix64(stream + k) >> 32) * (uint64_t)range;
        if ((uint32_t)m >= threshold) return (uint32_t)(m >> 32);
    }
}

void clasp_shuffle(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch)
{
    uint64_t key = clasp_mix64(seed ^ clasp_mix64(epoch));
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        uint32_t j = uniform(key, i - 1, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* An empty dataset with the shape and names of `like`, room for n. */
static clasp_status alloc_like(const clasp_dataset *like, size_t n, clasp_dataset *d)
{
    size_t img = (size_t)like->c * (size_t)like->h * (size_t)like->w;
    d->c = like->c;
    d->h = like->h;
    d->w = like->w;
    d->num_classes = like->num_classes;
    d->n = 0;
    if (like->class_names) {
        CLASP_TRY(clasp_dataset_set_classes(d, like->num_classes));
        memcpy(d->class_names, like->class_names,
               (size_t)like->num_classes * sizeof *d->class_names);
    }
    if (n == 0) return CLASP_OK;
    d->x = malloc(n * img * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    if (!d->x || !d->y)
        return clasp_error(CLASP_ERR_NOMEM, "dataset split: out of memory for %zu examples", n);
    return CLASP_OK;
}

static void append(clasp_dataset *d, const clasp_dataset *from, size_t i, size_t img)
{
    memcpy(d->x + d->n * img, from->x + i * img, img * sizeof *d->x);
    d->y[d->n] = from->y[i];
    d->n++;
}

clasp_status clasp_data_split_mask(size_t n, size_t n_val, uint64_t seed, unsigned char **in_val)
{
    *in_val = NULL;
    if (n_val > n || n > UINT32_MAX)
        return clasp_error(CLASP_ERR_INVALID, "split: %zu of %zu examples", n_val, n);
    uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
    unsigned char *mask = calloc(n ? n : 1, 1);
    if (!perm || !mask) {
        free(perm);
        free(mask);
        return clasp_error(CLASP_ERR_NOMEM, "split: out of memory");
    }
    clasp_shuffle(perm, n, seed, SPLIT_EPOCH);
    for (size_t i = n - n_val; i < n; i++) mask[perm[i]] = 1;
    free(perm);
    *in_val = mask;
    return CLASP_OK;
}

clasp_status clasp_dataset_split(clasp_dataset *all, size_t n_val, uint64_t seed,
                                 clasp_dataset *train, clasp_dataset *val)
{
    if (!all || !train || !val || train == val)
        return clasp_error(CLASP_ERR_INVALID, "clasp_dataset_split: bad arguments");
    if (n_val > all->n)
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_dataset_split: %zu validation examples requested, "
                           "but the dataset has only %zu",
                           n_val, all->n);
    if (all->n > UINT32_MAX)
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_dataset_split: %zu examples exceed the 2^32 limit", all->n);
    /* Built in locals so `train` or `val` may alias `all`. */
    clasp_dataset t, v;
    memset(&t, 0, sizeof t);
    memset(&v, 0, sizeof v);
    unsigned char *in_val = NULL;
    clasp_status s = clasp_data_split_mask(all->n, n_val, seed, &in_val);
    if (s == CLASP_OK) s = alloc_like(all, all->n - n_val, &t);
    if (s == CLASP_OK) s = alloc_like(all, n_val, &v);
    if (s == CLASP_OK) {
        /* Both parts keep the original order, so n_val = 0 leaves the
         * training set exactly as loaded. */
        size_t img = (size_t)all->c * (size_t)all->h * (size_t)all->w;
        for (size_t i = 0; i < all->n; i++) append(in_val[i] ? &v : &t, all, i, img);
    }
    free(in_val);
    if (s != CLASP_OK) {
        clasp_dataset_free(&t);
        clasp_dataset_free(&v);
        /* `all` stays intact on failure, even when an output aliases it. */
        if (train != all) memset(train, 0, sizeof *train);
        if (val != all) memset(val, 0, sizeof *val);
        return s;
    }
    clasp_dataset_free(all);
    *train = t;
    *val = v;
    return CLASP_OK;
}

void clasp_dataset_truncate(clasp_dataset *d, size_t n)
{
    if (!d || n >= d->n) return;
    if (!d->x) { /* labels only (an image folder's index): nothing to give back */
        d->n = n;
        return;
    }
    size_t img = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    d->n = n;
    if (n == 0) {
        free(d->x);
        free(d->y);
        d->x = NULL;
        d->y = NULL;
        return;
    }
    /* Give memory back when the allocator can; the old blocks stay valid
     * if it cannot. */
    float *x = realloc(d->x, n * img * sizeof *x);
    if (x) d->x = x;
    int32_t *y = realloc(d->y, n * sizeof *y);
    if (y) d->y = y;
}

size_t clasp_dataset_exclude(clasp_dataset *d, const int *mask)
{
    if (!d || !mask || d->n == 0) return 0;
    size_t img = (size_t)d->c * (size_t)d->h * (size_t)d->w, kept = 0, n = d->n;
    for (size_t i = 0; i < n; i++) {
        int32_t y = d->y[i];
        if (y >= 0 && y < d->num_classes && mask[y]) continue;
        if (kept != i) {
            memmove(d->x + kept * img, d->x + i * img, img * sizeof *d->x);
            d->y[kept] = y;
        }
        kept++;
    }
    clasp_dataset_truncate(d, kept);
    return n - kept;
}

void clasp_dataset_class_counts(const clasp_dataset *d, size_t *counts)
{
    for (int k = 0; k < d->num_classes; k++) counts[k] = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->y[i] >= 0 && d->y[i] < d->num_classes) counts[d->y[i]]++;
}

/* The data sets, once: name and loader. The first, Fashion-MNIST, is the
 * default and the only one with a packaged folder. */
static clasp_status load_fashion(const char *dir, int train, clasp_dataset *out)
{
    return clasp_mnist_load(dir, train, 1, out);
}
static clasp_status load_mnist(const char *dir, int train, clasp_dataset *out)
{
    return clasp_mnist_load(dir, train, 0, out);
}
static clasp_status load_cifar100(const char *dir, int train, clasp_dataset *out)
{
    return clasp_cifar100_load(dir, train, 0, out);
}
static clasp_status load_cifar100_coarse(const char *dir, int train, clasp_dataset *out)
{
    return clasp_cifar100_load(dir, train, 1, out);
}

/* Image folders through this path are decoded whole (small folders);
 * clasp attack streams them instead (clasp_stream). */
static clasp_status load_imagefolder(const char *dir, int train, clasp_dataset *out)
{
    return clasp_imagefolder_load(dir, NULL, train, out);
}
static clasp_status load_imagenet(const char *dir, int train, clasp_dataset *out)
{
    clasp_imagefolder_options o = {.imagenet = 1};
    return clasp_imagefolder_load(dir, &o, train, out);
}

#define CLASP_DATASETS(X)                      \
    X("fashion-mnist", load_fashion)           \
    X("mnist", load_mnist)                     \
    X("cifar10", clasp_cifar10_load)           \
    X("cifar100", load_cifar100)               \
    X("cifar100-coarse", load_cifar100_coarse) \
    X("svhn", clasp_svhn_load)                 \
    X("stl10", clasp_stl10_load)               \
    X("imagefolder", load_imagefolder)         \
    X("imagenet", load_imagenet)

typedef clasp_status (*dataset_loader)(const char *dir, int train, clasp_dataset *out);

const char *const clasp_dataset_names[] = {
#define DATASET_NAME_(name, fn) name,
    CLASP_DATASETS(DATASET_NAME_)
#undef DATASET_NAME_
        NULL,
};

static const dataset_loader loaders[] = {
#define DATASET_LOADER_(name, fn) fn,
    CLASP_DATASETS(DATASET_LOADER_)
#undef DATASET_LOADER_
};

/* Index of name in clasp_dataset_names, or -1. */
static int dataset_index(const char *name)
{
    for (int i = 0; name && clasp_dataset_names[i]; i++)
        if (!strcmp(name, clasp_dataset_names[i])) return i;
    return -1;
}

int clasp_dataset_is_folder(const char *name)
{
    return name && (!strcmp(name, "imagefolder") || !strcmp(name, "imagenet"));
}

int clasp_dataset_known(const char *name)
{
    return dataset_index(name) >= 0;
}

void clasp_dataset_names_text(char *buf, size_t size, const char *last_sep)
{
    size_t at = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; clasp_dataset_names[i] && at < size; i++) {
        const char *sep = i == 0 ? "" : clasp_dataset_names[i + 1] ? ", " : last_sep;
        int n = snprintf(buf + at, size - at, "%s%s", sep, clasp_dataset_names[i]);
        if (n < 0) break;
        at += (size_t)n;
    }
}

clasp_status clasp_dataset_load(const char *name, const char *dir, int train, clasp_dataset *out)
{
    if (!out) return clasp_error(CLASP_ERR_INVALID, "clasp_dataset_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) return clasp_error(CLASP_ERR_INVALID, "clasp_dataset_load: name is NULL");
    int i = dataset_index(name);
    if (i < 0) {
        char known[256];
        clasp_dataset_names_text(known, sizeof known, ", ");
        return clasp_error(CLASP_ERR_INVALID, "unknown data set '%s' (known: %s)", name, known);
    }
    /* Only Fashion-MNIST has a packaged default folder. */
    if (i > 0 && (!dir || !*dir))
        return clasp_error(CLASP_ERR_INVALID, "data set '%s' needs a folder (data path)", name);
    return loaders[i](dir, train, out);
}
