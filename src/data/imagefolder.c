/* Image folders: DIR/<class>/<image> as torchvision's ImageFolder reads
 * them, and ILSVRC's validation layout (WordNet-id class folders). Only the
 * index (paths, labels, class names) is held; images are decoded on
 * demand (clasp_imagefolder_get, clasp_stream). */
#include "data/data_internal.h"
#include "data/imagefolder_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct clasp_imagefolder {
    clasp_dataset meta; /* x NULL; y the labels; shape after preprocessing */
    char **paths;
    size_t cap;
    clasp_prep prep;
    int skip_bad;
    char *dir; /* the folder it was opened from */
};

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static clasp_status strv_push(strv *s, const char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = strdup(str);
    if (!s->v[s->n]) return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    s->n++;
    return CLASP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* torchvision's IMG_EXTENSIONS, compared case-insensitively as there. */
static int image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                      ".pgm", ".tif",  ".tiff", ".webp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t e = strlen(ext[i]);
        if (n >= e && !strcasecmp(name + n - e, ext[i])) return 1;
    }
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sorted names of the entries of dir that are folders (want_dirs) or image
 * files (links followed, as os.scandir's is_dir and os.walk(followlinks)). */
static clasp_status list_dir(const char *dir, int want_dirs, strv *out, strv *subdirs)
{
    DIR *d = opendir(dir);
    if (!d) return clasp_error(CLASP_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
    clasp_status st = CLASP_OK;
    char path[4096];
    struct dirent *e;
    while (st == CLASP_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        st = clasp_data_join(path, sizeof path, dir, e->d_name);
        if (st != CLASP_OK) break;
        int folder = is_dir(path);
        if (want_dirs ? folder : (!folder && image_name(e->d_name))) st = strv_push(out, e->d_name);
        else if (folder && subdirs) st = strv_push(subdirs, e->d_name);
    }
    closedir(d);
    /* qsort's array must not be NULL, even for no element (an empty list). */
    if (st == CLASP_OK && out->n) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    if (st == CLASP_OK && subdirs && subdirs->n)
        qsort(subdirs->v, subdirs->n, sizeof *subdirs->v, cmp_str);
    return st;
}

static clasp_status add_sample(clasp_imagefolder *f, const char *path, int label)
{
    clasp_dataset *m = &f->meta;
    if (m->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1024;
        char **p = realloc(f->paths, cap * sizeof *p);
        if (p) f->paths = p;
        int32_t *y = p ? realloc(m->y, cap * sizeof *y) : NULL;
        if (!p || !y) return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
        m->y = y;
        f->cap = cap;
    }
    f->paths[m->n] = strdup(path);
    if (!f->paths[m->n]) return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    m->y[m->n++] = label;
    return CLASP_OK;
}

/* Every folder under dir (dir itself included), links followed. */
static clasp_status walk_roots(const char *dir, strv *roots, int depth)
{
    if (depth > 32) return clasp_error(CLASP_ERR_FORMAT, "%s: folders nested too deep", dir);
    CLASP_TRY(strv_push(roots, dir));
    strv files = {0}, subs = {0};
    clasp_status st = list_dir(dir, 1, &subs, NULL);
    char path[4096];
    for (size_t i = 0; st == CLASP_OK && i < subs.n; i++) {
        st = clasp_data_join(path, sizeof path, dir, subs.v[i]);
        if (st == CLASP_OK) st = walk_roots(path, roots, depth + 1);
    }
    strv_free(&files);
    strv_free(&subs);
    return st;
}

/* Files of one class folder in the order of torchvision's
 * sorted(os.walk(...)): folders by their path as a string ("a/b-c" before
 * "a/b/c"), each folder's files by name. */
static clasp_status walk(clasp_imagefolder *f, const char *dir, int label)
{
    strv roots = {0};
    clasp_status st = walk_roots(dir, &roots, 0);
    if (st == CLASP_OK) qsort(roots.v, roots.n, sizeof *roots.v, cmp_str);
    char path[4096];
    for (size_t r = 0; st == CLASP_OK && r < roots.n; r++) {
        strv files = {0};
        st = list_dir(roots.v[r], 0, &files, NULL);
        for (size_t i = 0; st == CLASP_OK && i < files.n; i++) {
            st = clasp_data_join(path, sizeof path, roots.v[r], files.v[i]);
            if (st == CLASP_OK) st = add_sample(f, path, label);
        }
        strv_free(&files);
    }
    strv_free(&roots);
    return st;
}

/* Copies name into dst (CLASP_CLASS_NAME_MAX bytes): whole when it fits,
 * else up to the last ", " that fits (WordNet synonym lists), else cut at
 * a UTF-8 character boundary. */
static void set_name(char *dst, const char *name)
{
    size_t n = strlen(name);
    if (n < CLASP_CLASS_NAME_MAX) {
        memcpy(dst, name, n + 1);
        return;
    }
    size_t cut = 0;
    for (size_t i = 0; i + 1 < CLASP_CLASS_NAME_MAX; i++)
        if (name[i] == ',' && name[i + 1] == ' ') cut = i;
    if (!cut) {
        cut = CLASP_CLASS_NAME_MAX - 1;
        while (cut > 0 && ((unsigned char)name[cut] & 0xc0) == 0x80) cut--;
    }
    memcpy(dst, name, cut);
    dst[cut] = '\0';
}

/* Names from "<file>" lines "<folder name> <readable name>" (LOC_synset_
 * mapping.txt, classes.txt); folders it does not list keep their names. */
static clasp_status names_file(const char *path, const strv *classes, clasp_dataset *m)
{
    FILE *f = fopen(path, "r");
    if (!f) return CLASP_OK;
    char line[1024];
    int lineno = 0;
    clasp_status st = CLASP_OK;
    while (st == CLASP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            st = clasp_error(CLASP_ERR_FORMAT, "%s: line %d: longer than %zu characters", path,
                             lineno, sizeof line - 2);
            break;
        }
        while (len && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        char *key = line;
        while (isspace((unsigned char)*key)) key++;
        if (!*key) continue;
        char *name = key;
        while (*name && !isspace((unsigned char)*name)) name++;
        if (*name) *name++ = '\0';
        while (isspace((unsigned char)*name)) name++;
        if (!*name) {
            st = clasp_error(CLASP_ERR_FORMAT,
                             "%s: line %d: expected \"<folder> <class name>\", got \"%s\"", path,
                             lineno, key);
            break;
        }
        for (size_t k = 0; k < classes->n; k++)
            if (!strcmp(classes->v[k], key)) set_name(m->class_names[k], name);
    }
    fclose(f);
    return st;
}

static clasp_status parse_prep(const char *name, clasp_prep *p)
{
    static const struct {
        const char *name;
        clasp_prep p;
    } t[] = {{"Res256Crop224", CLASP_PREP_RES256CROP224},
             {"Crop288", CLASP_PREP_CROP288},
             {"Res224", CLASP_PREP_RES224},
             {"BicubicRes256Crop224", CLASP_PREP_BICUBIC_RES256CROP224},
             {"none", CLASP_PREP_NONE}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcasecmp(name, t[i].name)) {
            *p = t[i].p;
            return CLASP_OK;
        }
    return clasp_error(CLASP_ERR_INVALID,
                       "unknown preprocessing '%s' (known: Res256Crop224, Crop288, Res224, "
                       "BicubicRes256Crop224, none)",
                       name);
}

static int prep_side(clasp_prep p)
{
    return p == CLASP_PREP_CROP288 ? 288 : p == CLASP_PREP_NONE ? 0 : 224;
}

/* cls[k]: the label of class folder k (its ImageNet-1k index for
 * `imagenet`, else k); map[j]: the folder of label j, -1 when absent. */
static clasp_status subset_samples(clasp_imagefolder *f, const char *dir, const strv *classes,
                                   const int *cls)
{
    int map[1000];
    for (int k = 0; k < 1000; k++) {
        map[k] = -1;
        for (size_t j = 0; j < classes->n; j++)
            if (!strcmp(classes->v[j], clasp_imagenet_wnids[k])) map[k] = (int)j;
    }
    char rel[64], path[4096];
    for (size_t i = 0; i < 5000; i++) {
        const clasp_imagenet_subset_entry *e = &clasp_robustbench_5000[i];
        if (map[e->cls] < 0)
            return clasp_error(CLASP_ERR_NOT_FOUND,
                               "%s: subset robustbench-5000 needs class folder %s (image %zu of "
                               "the "
                               "list), which is absent",
                               dir, clasp_imagenet_wnids[e->cls], i + 1);
        snprintf(rel, sizeof rel, "%s/ILSVRC2012_val_%08u.JPEG", clasp_imagenet_wnids[e->cls],
                 (unsigned)e->number);
        CLASP_TRY(clasp_data_join(path, sizeof path, dir, rel));
        CLASP_TRY(add_sample(f, path, cls[map[e->cls]]));
    }
    return CLASP_OK;
}

/* The ImageNet-1k index of a WordNet id; -1 when it is none. The table is
 * sorted (the classes' usual order), so a binary search finds it. */
static int imagenet_index(const char *wnid)
{
    int lo = 0, hi = 999;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(wnid, clasp_imagenet_wnids[mid]);
        if (!c) return mid;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

/* `imagenet`: the classes are ImageNet-1k's 1000, in their usual order (the
 * sorted WordNet ids, as torchvision's ImageFolder numbers a full
 * validation folder), whatever subset of them has folders, so labels match
 * the outputs of a 1000-class model; names from the shipped table, then a
 * LOC_synset_mapping.txt or classes.txt. `imagefolder`: the sorted folders. */
static clasp_status set_classes(const char *dir, const clasp_imagefolder_options *o,
                                const strv *classes, int *cls, clasp_dataset *m)
{
    if (!o->imagenet) {
        for (size_t k = 0; k < classes->n; k++) cls[k] = (int)k;
        CLASP_TRY(clasp_dataset_set_classes(m, (int)classes->n));
        for (size_t k = 0; k < classes->n; k++) set_name(m->class_names[k], classes->v[k]);
        return CLASP_OK;
    }
    for (size_t k = 0; k < classes->n; k++)
        if ((cls[k] = imagenet_index(classes->v[k])) < 0)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: class folder '%s' is not an ImageNet-1k WordNet id "
                               "(nXXXXXXXX); "
                               "use --dataset imagefolder for other classes",
                               dir, classes->v[k]);
    CLASP_TRY(clasp_dataset_set_classes(m, 1000));
    for (int j = 0; j < 1000; j++) set_name(m->class_names[j], clasp_imagenet_classes[j]);
    /* Kaggle's ILSVRC layout keeps the mapping next to the split's folder;
     * a classes.txt beside the classes wins. */
    char *wnids[1000];
    for (int j = 0; j < 1000; j++) wnids[j] = (char *)clasp_imagenet_wnids[j];
    strv all = {wnids, 1000, 0};
    const char *files[] = {"../LOC_synset_mapping.txt", "LOC_synset_mapping.txt", "classes.txt"};
    char path[4096];
    for (size_t i = 0; i < 3; i++) {
        CLASP_TRY(clasp_data_join(path, sizeof path, dir, files[i]));
        CLASP_TRY(names_file(path, &all, m));
    }
    return CLASP_OK;
}

static clasp_status open_folder(const char *dir, const clasp_imagefolder_options *o,
                                clasp_imagefolder *f)
{
    strv classes = {0};
    int *cls = NULL;
    clasp_status st = list_dir(dir, 1, &classes, NULL);
    if (st == CLASP_OK && classes.n == 0)
        st = clasp_error(CLASP_ERR_FORMAT, "%s: no class folders (expected DIR/<class>/<image>)",
                         dir);
    if (st == CLASP_OK && classes.n > CLASP_MAX_CLASSES)
        st = clasp_error(CLASP_ERR_FORMAT, "%s: %zu class folders, at most %d", dir, classes.n,
                         CLASP_MAX_CLASSES);
    if (st == CLASP_OK && !(cls = malloc(classes.n * sizeof *cls)))
        st = clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    clasp_dataset *m = &f->meta;
    if (st == CLASP_OK) st = set_classes(dir, o, &classes, cls, m);
    int subset = o->subset && *o->subset;
    if (st == CLASP_OK && subset && strcmp(o->subset, "robustbench-5000"))
        st = clasp_error(CLASP_ERR_INVALID, "unknown subset '%s' (known: robustbench-5000)",
                         o->subset);
    if (st == CLASP_OK && subset) st = subset_samples(f, dir, &classes, cls);
    char path[4096];
    for (size_t k = 0; st == CLASP_OK && !subset && k < classes.n; k++) {
        size_t before = m->n;
        st = clasp_data_join(path, sizeof path, dir, classes.v[k]);
        if (st == CLASP_OK) st = walk(f, path, cls[k]);
        if (st == CLASP_OK && m->n == before)
            st = clasp_error(CLASP_ERR_FORMAT,
                             "%s: class folder '%s' has no image files (.jpg, .jpeg, .png, ...)",
                             dir, classes.v[k]);
    }
    free(cls);
    strv_free(&classes);
    return st;
}

clasp_status clasp_imagefolder_open(const char *dir, const clasp_imagefolder_options *opt,
                                    clasp_imagefolder **out)
{
    static const clasp_imagefolder_options none = {0};
    const clasp_imagefolder_options *o = opt ? opt : &none;
    *out = NULL;
    if (!dir || !*dir) return clasp_error(CLASP_ERR_INVALID, "image folder: no folder given");
    clasp_imagefolder *f = calloc(1, sizeof *f);
    if (!f) return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    f->skip_bad = o->skip_bad;
    f->dir = strdup(dir);
    if (!f->dir) {
        free(f);
        return clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    }
    clasp_status st = parse_prep(o->preprocess ? o->preprocess : "Res256Crop224", &f->prep);
    if (st == CLASP_OK) st = open_folder(dir, o, f);
    if (st == CLASP_OK && o->limit && o->limit < f->meta.n) {
        for (size_t i = o->limit; i < f->meta.n; i++) free(f->paths[i]);
        f->meta.n = o->limit;
    }
    if (st == CLASP_OK && f->prep == CLASP_PREP_NONE && f->meta.n) {
        /* Without a resize every image must have the first one's size. */
        clasp_rgb im;
        st = clasp_image_load(f->paths[0], &im);
        f->meta.h = im.h;
        f->meta.w = im.w;
        clasp_rgb_free(&im);
    } else {
        f->meta.h = f->meta.w = prep_side(f->prep);
    }
    f->meta.c = 3;
    if (st != CLASP_OK) {
        clasp_imagefolder_free(f);
        return st;
    }
    *out = f;
    return CLASP_OK;
}

void clasp_imagefolder_free(clasp_imagefolder *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->meta.n; i++) free(f->paths[i]);
    free(f->paths);
    free(f->dir);
    clasp_dataset_free(&f->meta);
    free(f);
}

const char *clasp_imagefolder_dir(const clasp_imagefolder *f)
{
    return f->dir;
}

const clasp_dataset *clasp_imagefolder_info(const clasp_imagefolder *f)
{
    return &f->meta;
}

const char *clasp_imagefolder_path(const clasp_imagefolder *f, size_t i)
{
    return i < f->meta.n ? f->paths[i] : NULL;
}

int clasp_imagefolder_skip_bad(const clasp_imagefolder *f)
{
    return f->skip_bad;
}

clasp_status clasp_imagefolder_get(const clasp_imagefolder *f, size_t i, int train, uint64_t key,
                                   float *x)
{
    if (i >= f->meta.n)
        return clasp_error(CLASP_ERR_INVALID, "image folder: image %zu of %zu", i, f->meta.n);
    clasp_rgb im, pre;
    CLASP_TRY(clasp_image_load(f->paths[i], &im));
    int w = f->meta.w, h = f->meta.h;
    /* Training crops come out at the evaluation size, so one model serves
     * both. */
    clasp_status st =
        train ? clasp_preprocess_train(&im, w, h, key, &pre) : clasp_preprocess(&im, f->prep, &pre);
    clasp_rgb_free(&im);
    CLASP_TRY(st);
    if (pre.w != w || pre.h != h) {
        clasp_rgb_free(&pre);
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: image of %dx%d pixels, but the set's images are %dx%d (choose a "
                           "preprocessing that resizes)",
                           f->paths[i], pre.w, pre.h, w, h);
    }
    /* ToTensor: HWC bytes to CHW floats in [0, 1]. */
    size_t plane = (size_t)w * (size_t)h;
    for (size_t j = 0; j < plane; j++)
        for (int c = 0; c < 3; c++) x[(size_t)c * plane + j] = (float)pre.px[3 * j + c] / 255.0f;
    clasp_rgb_free(&pre);
    return CLASP_OK;
}

/* An empty folder with f's classes, shape and settings, room for n images. */
static clasp_status folder_like(const clasp_imagefolder *f, size_t n, clasp_imagefolder **out)
{
    clasp_imagefolder *g = calloc(1, sizeof *g);
    clasp_status st = g ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    if (st == CLASP_OK) st = clasp_dataset_set_classes(&g->meta, f->meta.num_classes);
    if (st == CLASP_OK) {
        memcpy(g->meta.class_names, f->meta.class_names,
               (size_t)f->meta.num_classes * sizeof *g->meta.class_names);
        g->meta.c = f->meta.c, g->meta.h = f->meta.h, g->meta.w = f->meta.w;
        g->prep = f->prep;
        g->skip_bad = f->skip_bad;
        g->dir = strdup(f->dir);
        g->cap = n ? n : 1;
        g->paths = calloc(g->cap, sizeof *g->paths);
        g->meta.y = malloc(g->cap * sizeof *g->meta.y);
        if (!g->paths || !g->meta.y || !g->dir)
            st = clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
    }
    if (st != CLASP_OK) {
        clasp_imagefolder_free(g);
        return st;
    }
    *out = g;
    return CLASP_OK;
}

clasp_status clasp_imagefolder_split(const clasp_imagefolder *all, size_t n_val, uint64_t seed,
                                     clasp_imagefolder **train, clasp_imagefolder **val)
{
    *train = *val = NULL;
    const clasp_dataset *m = &all->meta;
    if (n_val > m->n)
        return clasp_error(CLASP_ERR_INVALID,
                           "image folder: %zu validation images requested, but it has only %zu",
                           n_val, m->n);
    unsigned char *in_val = NULL;
    clasp_imagefolder *t = NULL, *v = NULL;
    clasp_status st = clasp_data_split_mask(m->n, n_val, seed, &in_val);
    if (st == CLASP_OK) st = folder_like(all, m->n - n_val, &t);
    if (st == CLASP_OK) st = folder_like(all, n_val, &v);
    for (size_t i = 0; st == CLASP_OK && i < m->n; i++) {
        clasp_imagefolder *g = in_val[i] ? v : t;
        g->paths[g->meta.n] = strdup(all->paths[i]);
        if (!g->paths[g->meta.n]) st = clasp_error(CLASP_ERR_NOMEM, "image folder: out of memory");
        else g->meta.y[g->meta.n++] = m->y[i];
    }
    free(in_val);
    if (st != CLASP_OK) {
        clasp_imagefolder_free(t);
        clasp_imagefolder_free(v);
        return st;
    }
    *train = t;
    *val = v;
    return CLASP_OK;
}

void clasp_imagefolder_truncate(clasp_imagefolder *f, size_t n)
{
    if (!n || n >= f->meta.n) return;
    for (size_t i = n; i < f->meta.n; i++) free(f->paths[i]);
    f->meta.n = n;
}

clasp_status clasp_imagefolder_decode(const clasp_imagefolder *f, const char *what,
                                      clasp_dataset *out)
{
    memset(out, 0, sizeof *out);
    const clasp_dataset *m = &f->meta;
    size_t per = (size_t)m->c * (size_t)m->h * (size_t)m->w;
    if (m->n > SIZE_MAX / sizeof(float) / per)
        return clasp_error(CLASP_ERR_NOMEM, "%s: too many images to hold", what);
    clasp_status st = clasp_dataset_set_classes(out, m->num_classes);
    if (st == CLASP_OK) {
        memcpy(out->class_names, m->class_names, (size_t)m->num_classes * sizeof *out->class_names);
        out->c = m->c, out->h = m->h, out->w = m->w;
        out->x = malloc((m->n ? m->n : 1) * per * sizeof *out->x);
        out->y = malloc((m->n ? m->n : 1) * sizeof *out->y);
        if (!out->x || !out->y)
            st = clasp_error(CLASP_ERR_NOMEM, "%s: out of memory for %zu images of %dx%dx%d", what,
                             m->n, m->c, m->h, m->w);
    }
    for (size_t i = 0; st == CLASP_OK && i < m->n; i++) {
        st = clasp_imagefolder_get(f, i, 0, 0, out->x + out->n * per);
        if (st != CLASP_OK && f->skip_bad && st != CLASP_ERR_NOMEM) {
            clasp_error_clear();
            st = CLASP_OK;
            continue;
        }
        if (st == CLASP_OK) out->y[out->n++] = m->y[i];
    }
    if (st != CLASP_OK) clasp_dataset_free(out);
    return st;
}

clasp_status clasp_imagefolder_split_dir(const char *dir, int train, char *buf, size_t size)
{
    const char *const cands[2][2] = {{"val", "test"}, {"train", NULL}};
    for (int i = 0; i < 2 && cands[train ? 1 : 0][i]; i++) {
        CLASP_TRY(clasp_data_join(buf, size, dir, cands[train ? 1 : 0][i]));
        if (is_dir(buf)) return CLASP_OK;
    }
    int n = snprintf(buf, size, "%s", dir);
    if (n < 0 || (size_t)n >= size) return clasp_error(CLASP_ERR_INVALID, "%s: path too long", dir);
    return CLASP_OK;
}

/* The two splits must number their classes alike: torchvision numbers
 * each folder's sorted class folders by itself, so a class missing from
 * one of them would shift every label after it. */
static clasp_status same_classes(const char *tdir, const clasp_dataset *t, const char *vdir,
                                 const clasp_dataset *v)
{
    int k = t->num_classes < v->num_classes ? t->num_classes : v->num_classes;
    for (int c = 0; c < k; c++)
        if (strcmp(t->class_names[c], v->class_names[c]) != 0)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s and %s have different classes: class %d is '%s' in one and "
                               "'%s' in the other (both need the same class folders)",
                               tdir, vdir, c, t->class_names[c], v->class_names[c]);
    if (t->num_classes != v->num_classes)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s and %s have different classes: %d class folders in one, %d in the "
                           "other (both need the same class folders)",
                           tdir, vdir, t->num_classes, v->num_classes);
    return CLASP_OK;
}

clasp_status clasp_imagefolder_open_splits(const char *dir, const clasp_imagefolder_options *o,
                                           clasp_imagefolder **train, clasp_imagefolder **test)
{
    *train = *test = NULL;
    char vdir[4096], tdir[4096];
    CLASP_TRY(clasp_imagefolder_split_dir(dir, 0, vdir, sizeof vdir));
    CLASP_TRY(clasp_imagefolder_split_dir(dir, 1, tdir, sizeof tdir));
    if (!strcmp(tdir, vdir))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: training needs the training images in %s/train beside the test "
                           "images in %s/val (or %s/test)",
                           dir, dir, dir, dir);
    static const clasp_imagefolder_options none = {0};
    clasp_imagefolder_options to = o ? *o : none;
    to.subset = NULL; /* the subset and the limit are the test set's */
    to.limit = 0;
    clasp_imagefolder *t = NULL, *v = NULL;
    clasp_status st = clasp_imagefolder_open(tdir, &to, &t);
    if (st == CLASP_OK) st = clasp_imagefolder_open(vdir, o, &v);
    if (st == CLASP_OK)
        st = same_classes(tdir, clasp_imagefolder_info(t), vdir, clasp_imagefolder_info(v));
    if (st == CLASP_OK && (t->meta.w != v->meta.w || t->meta.h != v->meta.h))
        st = clasp_error(CLASP_ERR_FORMAT, "%s has images of %dx%d but %s of %dx%d", tdir,
                         t->meta.w, t->meta.h, vdir, v->meta.w, v->meta.h);
    if (st != CLASP_OK) {
        clasp_imagefolder_free(t);
        clasp_imagefolder_free(v);
        return st;
    }
    *train = t;
    *test = v;
    return CLASP_OK;
}

clasp_status clasp_imagefolder_load(const char *dir, const clasp_imagefolder_options *o, int train,
                                    clasp_dataset *out)
{
    memset(out, 0, sizeof *out);
    char sub[4096];
    CLASP_TRY(clasp_imagefolder_split_dir(dir, train, sub, sizeof sub));
    clasp_imagefolder *f;
    CLASP_TRY(clasp_imagefolder_open(sub, o, &f));
    clasp_status st = clasp_imagefolder_decode(f, sub, out);
    clasp_imagefolder_free(f);
    return st;
}
