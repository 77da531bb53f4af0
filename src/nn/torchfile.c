/* clasp — torch.save files as state dicts: the two containers (zip and
 * legacy), finding the state dict in what the pickle built, and gathering
 * each tensor view out of its storage into a contiguous F32 or I64 copy.
 *
 * The pickle is run first and completely (nn/pickle.c refuses unknown
 * globals there), then only the storages the chosen state dict uses are
 * read, each checked against the size the pickle declares for it and the
 * size the container really holds. */
#include "clasp/torchfile.h"
#include "nn/pickle.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zip.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "clasp's PyTorch reader needs a little-endian host"
#endif

#define TF_MAX_TENSORS (1u << 16)
#define TF_MAX_PICKLE (256u << 20) /* bytes of data.pkl */
/* Deflate cannot expand data more than about 1032 times; a zip entry that
 * claims more is lying about its size. */
#define TF_MAX_DEFLATE_RATIO 1040u
#define TF_LEGACY_PROTOCOL 1001

static const char *const tf_wrapper_keys[] = {"state_dict", "model", "model_state_dict", "net"};
static const char *const tf_prefixes[] = {"module.", "_orig_mod."};

static void tf_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

/* ------------------------------------------------------ the state dict */

static bool tf_is_tensor_dict(const pkl_value *v)
{
    if (v->kind != PKL_DICT || v->u.seq.n == 0) return false;
    for (size_t i = 0; i < v->u.seq.n; i += 2)
        if (v->u.seq.items[i]->kind != PKL_STR || v->u.seq.items[i + 1]->kind != PKL_TENSOR)
            return false;
    return true;
}

static const char *tf_kind_name(pkl_kind k)
{
    static const char *const names[] = {"None", "bool", "int",    "float",   "string", "tuple",
                                        "list", "dict", "global", "storage", "tensor"};
    return names[k];
}

/* The dict of tensors in `root` and the key it is under ("" for the root). */
static clasp_status tf_find_state(const char *path, const pkl_value *root, const pkl_value **sd,
                                  clasp_ckpt_info *info)
{
    info->entry[0] = 0;
    if (tf_is_tensor_dict(root)) {
        *sd = root;
        return CLASP_OK;
    }
    if (root->kind != PKL_DICT)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: the saved object is a %s, expected a dict (a state dict or a "
                           "checkpoint holding one)",
                           path, tf_kind_name(root->kind));
    for (size_t w = 0; w < sizeof tf_wrapper_keys / sizeof *tf_wrapper_keys; w++)
        for (size_t i = 0; i < root->u.seq.n; i += 2) {
            const pkl_value *k = root->u.seq.items[i], *v = root->u.seq.items[i + 1];
            if (k->kind == PKL_STR && !strcmp(k->u.str.s, tf_wrapper_keys[w]) &&
                tf_is_tensor_dict(v)) {
                *sd = v;
                tf_copy(info->entry, sizeof info->entry, tf_wrapper_keys[w]);
                return CLASP_OK;
            }
        }
    const pkl_value *found = NULL, *found_key = NULL;
    size_t n_found = 0;
    char keys[256] = "";
    size_t kl = 0;
    for (size_t i = 0; i < root->u.seq.n; i += 2) {
        const pkl_value *k = root->u.seq.items[i], *v = root->u.seq.items[i + 1];
        if (kl < sizeof keys - 1)
            kl += (size_t)snprintf(keys + kl, sizeof keys - kl, "%s%.40s", i ? ", " : "",
                                   k->kind == PKL_STR ? k->u.str.s : tf_kind_name(k->kind));
        if (k->kind == PKL_STR && tf_is_tensor_dict(v)) {
            found = v;
            found_key = k;
            n_found++;
        }
    }
    if (n_found == 1) {
        *sd = found;
        tf_copy(info->entry, sizeof info->entry, found_key->u.str.s);
        return CLASP_OK;
    }
    return clasp_error(CLASP_ERR_FORMAT,
                       "%s: no state dict: the saved dict (keys %s) is not a dict of tensors "
                       "and has %s entry that is one (expected state_dict, model, "
                       "model_state_dict, net or a single dict of tensors)",
                       path, keys[0] ? keys : "none", n_found ? "more than one" : "no");
}

/* --------------------------------------------------------- conversion */

static float tf_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | man << 13;
    else if (exp) bits = sign | (exp + 112) << 23 | man << 13;
    else if (!man) bits = sign;
    else {
        /* Subnormal: shift the mantissa up to an implicit 1. */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* count elements of s from element i on, `step` apart, to dst[0..count):
 * float32 for the float dtypes, int64 for the others. */
static void tf_convert(void *dst, const pkl_storage *s, uint64_t i, uint64_t step, uint64_t count)
{
    const uint8_t *p = s->data;
    float *f = dst;
    int64_t *l = dst;
    for (uint64_t k = 0; k < count; k++, i += step) {
        const uint8_t *e = p + i * pkl_dtype_size(s->dtype);
        switch (s->dtype) {
        case PKL_F32: memcpy(&f[k], e, 4); break;
        case PKL_F16: {
            uint16_t h;
            memcpy(&h, e, 2);
            f[k] = tf_half(h);
            break;
        }
        case PKL_BF16: {
            uint32_t b = (uint32_t)e[0] << 16 | (uint32_t)e[1] << 24;
            memcpy(&f[k], &b, 4);
            break;
        }
        case PKL_F64: {
            double d;
            memcpy(&d, e, 8);
            f[k] = (float)d;
            break;
        }
        case PKL_I64: memcpy(&l[k], e, 8); break;
        case PKL_I32: {
            int32_t v;
            memcpy(&v, e, 4);
            l[k] = v;
            break;
        }
        case PKL_I16: {
            int16_t v;
            memcpy(&v, e, 2);
            l[k] = v;
            break;
        }
        case PKL_I8: l[k] = (int8_t)e[0]; break;
        case PKL_U8: l[k] = e[0]; break;
        case PKL_BOOLT: l[k] = e[0] != 0; break;
        }
    }
}

static bool tf_is_float(pkl_dtype d)
{
    return d == PKL_F32 || d == PKL_F16 || d == PKL_BF16 || d == PKL_F64;
}

/* Checks a view against its storage (overflow-safe) and copies it out. */
static clasp_status tf_gather(const char *path, const char *name, const pkl_value *v,
                              const pkl_storage *s, clasp_st_tensor *t)
{
    int nd = v->u.tensor.ndim;
    const int64_t *shape = v->u.tensor.shape, *stride = v->u.tensor.stride;
    uint64_t numel = 1, last = (uint64_t)v->u.tensor.offset;
    bool empty = false;
    for (int i = 0; i < nd; i++) empty |= shape[i] == 0;
    for (int i = 0; i < nd && !empty; i++) {
        uint64_t span;
        if (__builtin_mul_overflow((uint64_t)shape[i], numel, &numel) || numel > s->numel)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: tensor \"%s\": more elements than its storage \"%s\" holds "
                               "(%" PRIu64 "), expected a view inside it",
                               path, name, s->key, s->numel);
        if (__builtin_mul_overflow((uint64_t)shape[i] - 1, (uint64_t)stride[i], &span) ||
            __builtin_add_overflow(last, span, &last))
            return clasp_error(CLASP_ERR_FORMAT, "%s: tensor \"%s\": strides overflow", path, name);
    }
    if (empty) numel = 0;
    if ((numel && last >= s->numel) || (uint64_t)v->u.tensor.offset > s->numel)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: tensor \"%s\": offset %" PRId64 " and strides reach element "
                           "%" PRIu64 " of storage \"%s\", which has %" PRIu64,
                           path, name, v->u.tensor.offset, last, s->key, s->numel);
    memset(t, 0, sizeof *t);
    t->dtype = tf_is_float(s->dtype) ? CLASP_ST_F32 : CLASP_ST_I64;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = shape[i];
    t->numel = (size_t)numel;
    size_t es = t->dtype == CLASP_ST_F32 ? 4 : 8;
    t->data = malloc(numel ? numel * es : 1);
    t->name = strdup(name);
    if (!t->data || !t->name) {
        free(t->data);
        free(t->name);
        t->data = t->name = NULL;
        return clasp_error(CLASP_ERR_NOMEM, "%s: tensor \"%s\": out of memory", path, name);
    }
    if (!numel) return CLASP_OK;
    /* Odometer over all dimensions but the last, which is one strided run. */
    uint64_t inner = nd ? (uint64_t)shape[nd - 1] : 1, istep = nd ? (uint64_t)stride[nd - 1] : 1;
    int64_t idx[CLASP_ST_MAX_DIMS] = {0};
    uint8_t *dst = t->data;
    for (uint64_t done = 0; done < numel; done += inner) {
        uint64_t src = (uint64_t)v->u.tensor.offset;
        for (int i = 0; i < nd - 1; i++) src += (uint64_t)idx[i] * (uint64_t)stride[i];
        tf_convert(dst + done * es, s, src, istep, inner);
        for (int i = nd - 2; i >= 0; i--) {
            if (++idx[i] < shape[i]) break;
            idx[i] = 0;
        }
    }
    return CLASP_OK;
}

/* ------------------------------------------------------------- output */

static int tf_cmp_names(const void *a, const void *b)
{
    return strcmp((*(const clasp_st_tensor *const *)a)->name,
                  (*(const clasp_st_tensor *const *)b)->name);
}

static clasp_status tf_check_unique(const char *path, const clasp_st_file *f)
{
    if (f->n_tensors < 2) return CLASP_OK;
    const clasp_st_tensor **p = malloc(f->n_tensors * sizeof *p);
    if (!p) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < f->n_tensors; i++) p[i] = &f->tensors[i];
    qsort(p, f->n_tensors, sizeof *p, tf_cmp_names);
    clasp_status s = CLASP_OK;
    for (size_t i = 1; i < f->n_tensors && s == CLASP_OK; i++)
        if (!strcmp(p[i]->name, p[i - 1]->name))
            s = clasp_error(CLASP_ERR_FORMAT, "%s: tensor name \"%.100s\" appears twice", path,
                            p[i]->name);
    free(p);
    return s;
}

/* Removes "module." and "_orig_mod." (in any nesting) while every name has
 * one and keeps something after it, then RobustBench's "model." (below). */
static void tf_strip(clasp_st_file *f, clasp_ckpt_info *info)
{
    info->prefix[0] = 0;
    bool changed = f->n_tensors > 0;
    while (changed) {
        changed = false;
        for (size_t p = 0; p < sizeof tf_prefixes / sizeof *tf_prefixes; p++) {
            size_t pl = strlen(tf_prefixes[p]), have = strlen(info->prefix);
            if (have + pl >= sizeof info->prefix) continue;
            bool all = true;
            for (size_t i = 0; i < f->n_tensors && all; i++)
                all =
                    !strncmp(f->tensors[i].name, tf_prefixes[p], pl) && f->tensors[i].name[pl] != 0;
            if (!all) continue;
            for (size_t i = 0; i < f->n_tensors; i++) {
                char *n = f->tensors[i].name;
                memmove(n, n + pl, strlen(n + pl) + 1);
            }
            memcpy(info->prefix + have, tf_prefixes[p], pl + 1);
            changed = true;
        }
    }
    /* RobustBench's wrapper, Sequential(normalize, model): its buffers
     * normalize.mean and normalize.std stay (the model loader reads them as
     * the normalisation), every other name loses "model.". */
    size_t have = strlen(info->prefix), models = 0, others = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *n = f->tensors[i].name;
        if (!strcmp(n, "normalize.mean") || !strcmp(n, "normalize.std")) others++;
        else if (!strncmp(n, "model.", 6) && n[6]) models++;
    }
    if (models && models + others == f->n_tensors && have + 6 < sizeof info->prefix) {
        for (size_t i = 0; i < f->n_tensors; i++) {
            char *n = f->tensors[i].name;
            if (!strncmp(n, "model.", 6)) memmove(n, n + 6, strlen(n + 6) + 1);
        }
        memcpy(info->prefix + have, "model.", 7);
    }
}

/* The container's job: set data and n_bytes of storage k. */
typedef clasp_status (*tf_load_fn)(void *src, pkl_ctx *c, size_t k);

static clasp_status tf_build(const char *path, pkl_ctx *c, const pkl_value *root, tf_load_fn load,
                             void *src, clasp_st_file *out, clasp_ckpt_info *info)
{
    const pkl_value *sd;
    CLASP_TRY(tf_find_state(path, root, &sd, info));
    size_t n = sd->u.seq.n / 2;
    if (n > TF_MAX_TENSORS)
        return clasp_error(CLASP_ERR_FORMAT, "%s: %zu tensors, expected at most %u", path, n,
                           TF_MAX_TENSORS);
    uint64_t total_in = 0, total_out = 0;
    bool *counted = calloc(c->n_storages ? c->n_storages : 1, sizeof *counted);
    if (!counted) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        size_t k = sd->u.seq.items[2 * i + 1]->u.tensor.storage;
        clasp_status s = c->storages[k].data ? CLASP_OK : load(src, c, k);
        if (s != CLASP_OK) {
            free(counted);
            return s;
        }
        if (!counted[k]) total_in += c->storages[k].numel;
        counted[k] = true;
    }
    free(counted);
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        const pkl_value *v = sd->u.seq.items[2 * i + 1];
        const char *name = sd->u.seq.items[2 * i]->u.str.s;
        CLASP_TRY(tf_gather(path, name, v, &c->storages[v->u.tensor.storage], &out->tensors[i]));
        out->n_tensors++;
        /* Views may share storages, but not so much that a small file
         * makes a huge state dict. */
        total_out += out->tensors[i].numel;
        if (total_out > 4 * total_in + 4096)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: the tensors hold %" PRIu64 " elements, more than 4 times "
                               "their storages' %" PRIu64,
                               path, total_out, total_in);
    }
    CLASP_TRY(tf_check_unique(path, out));
    tf_strip(out, info);
    return CLASP_OK;
}

static clasp_status tf_check_storage_size(const char *path, const char *where, const pkl_storage *s,
                                          uint64_t have)
{
    uint64_t want;
    if (__builtin_mul_overflow(s->numel, (uint64_t)pkl_dtype_size(s->dtype), &want) || want != have)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %s: storage \"%s\" holds %" PRIu64 " bytes, expected %" PRIu64
                           " %s elements of %zu bytes",
                           path, where, s->key, have, s->numel, pkl_dtype_name(s->dtype),
                           pkl_dtype_size(s->dtype));
    return CLASP_OK;
}

/* ----------------------------------------------------------------- zip */

typedef struct tf_zip {
    const char *path;
    zip_t *z;
    char prefix[256]; /* "<archive>/" */
    uint64_t file_size;
} tf_zip;

static clasp_status tf_zip_read(tf_zip *t, zip_int64_t idx, const char *name, uint64_t limit,
                                uint8_t **buf, uint64_t *size)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(t->z, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_SIZE))
        return clasp_error(CLASP_ERR_FORMAT, "%s: zip entry %s: cannot stat: %s", t->path, name,
                           zip_strerror(t->z));
    uint64_t ratio = st.comp_method == ZIP_CM_STORE ? 1 : TF_MAX_DEFLATE_RATIO;
    if (st.size > limit || st.comp_size > t->file_size || st.size > st.comp_size * ratio + 64)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: zip entry %s: %" PRIu64 " bytes (%" PRIu64
                           " compressed) in a file of %" PRIu64 ", expected at most %" PRIu64,
                           t->path, name, (uint64_t)st.size, (uint64_t)st.comp_size, t->file_size,
                           limit);
    *buf = malloc(st.size ? st.size : 1);
    if (!*buf) return clasp_error(CLASP_ERR_NOMEM, "%s: %s: out of memory", t->path, name);
    zip_file_t *zf = zip_fopen_index(t->z, (zip_uint64_t)idx, 0);
    uint64_t got = 0;
    while (zf && got < st.size) {
        zip_int64_t r = zip_fread(zf, *buf + got, st.size - got);
        if (r <= 0) break;
        got += (uint64_t)r;
    }
    /* Reading past the end makes libzip check the CRC. */
    uint8_t extra;
    zip_int64_t tail = zf ? zip_fread(zf, &extra, 1) : -1;
    const char *err = zf ? zip_file_strerror(zf) : zip_strerror(t->z);
    char msg[128];
    tf_copy(msg, sizeof msg, err);
    if (zf) zip_fclose(zf);
    if (got != st.size || tail != 0) {
        free(*buf);
        *buf = NULL;
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: zip entry %s: read %" PRIu64 " of %" PRIu64 " bytes (%s)", t->path,
                           name, got, (uint64_t)st.size, tail > 0 ? "longer than stated" : msg);
    }
    *size = st.size;
    return CLASP_OK;
}

static clasp_status tf_zip_load(void *src, pkl_ctx *c, size_t k)
{
    tf_zip *t = src;
    pkl_storage *s = &c->storages[k];
    char name[512];
    snprintf(name, sizeof name, "%sdata/%.200s", t->prefix, s->key);
    zip_int64_t idx = zip_name_locate(t->z, name, 0);
    if (idx < 0)
        return clasp_error(CLASP_ERR_FORMAT, "%s: no zip entry %s for storage \"%s\"", t->path,
                           name, s->key);
    uint8_t *buf;
    uint64_t size;
    uint64_t want = s->numel * pkl_dtype_size(s->dtype);
    if (s->numel > UINT64_MAX / 8) want = UINT64_MAX;
    CLASP_TRY(tf_zip_read(t, idx, name, want, &buf, &size));
    s->owned = buf;
    s->data = buf;
    s->n_bytes = size;
    return tf_check_storage_size(t->path, name, s, size);
}

static clasp_status tf_zip_find_pickle(tf_zip *t, zip_int64_t *pkl)
{
    zip_int64_t n = zip_get_num_entries(t->z, 0);
    *pkl = -1;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(t->z, (zip_uint64_t)i, 0);
        const char *slash = nm ? strchr(nm, '/') : NULL;
        if (!slash || strcmp(slash, "/data.pkl") != 0) continue;
        if (*pkl >= 0)
            return clasp_error(CLASP_ERR_FORMAT, "%s: two */data.pkl entries, expected one",
                               t->path);
        if ((size_t)(slash - nm) + 2 > sizeof t->prefix)
            return clasp_error(CLASP_ERR_FORMAT, "%s: archive name too long", t->path);
        memcpy(t->prefix, nm, (size_t)(slash - nm) + 1);
        t->prefix[slash - nm + 1] = 0;
        *pkl = i;
    }
    if (*pkl < 0)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: a zip file without <archive>/data.pkl, expected a torch.save "
                           "checkpoint",
                           t->path);
    return CLASP_OK;
}

static clasp_status tf_zip_byteorder(tf_zip *t)
{
    char name[300];
    snprintf(name, sizeof name, "%sbyteorder", t->prefix);
    zip_int64_t idx = zip_name_locate(t->z, name, 0);
    if (idx < 0) return CLASP_OK; /* older writers: little-endian */
    uint8_t *buf;
    uint64_t size;
    CLASP_TRY(tf_zip_read(t, idx, name, 16, &buf, &size));
    bool little = size == 6 && !memcmp(buf, "little", 6);
    free(buf);
    if (!little)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: %s is not \"little\": big-endian checkpoints "
                           "are not supported",
                           t->path, name);
    return CLASP_OK;
}

static clasp_status tf_read_zip(const char *path, clasp_st_file *out, clasp_ckpt_info *info)
{
    int err = 0;
    tf_zip t = {.path = path};
    struct stat st;
    if (stat(path, &st) != 0)
        return clasp_error(errno == ENOENT ? CLASP_ERR_NOT_FOUND : CLASP_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    t.file_size = (uint64_t)st.st_size;
    t.z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!t.z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        clasp_status s = clasp_error(CLASP_ERR_FORMAT, "%s: not a readable zip archive: %s", path,
                                     zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return s;
    }
    tf_copy(info->format, sizeof info->format, "pytorch-zip");
    zip_int64_t pidx;
    uint8_t *pbuf = NULL;
    uint64_t plen = 0;
    char pname[512];
    clasp_status s = tf_zip_find_pickle(&t, &pidx);
    if (s == CLASP_OK) s = tf_zip_byteorder(&t);
    snprintf(pname, sizeof pname, "%s: %sdata.pkl", path, t.prefix);
    if (s == CLASP_OK)
        s = tf_zip_read(&t, pidx, pname + strlen(path) + 2, TF_MAX_PICKLE, &pbuf, &plen);
    pkl_ctx c;
    pkl_init(&c, pname);
    pkl_value *root = NULL;
    size_t used;
    if (s == CLASP_OK) s = pkl_run(&c, pbuf, (size_t)plen, 0, &root, &used);
    if (s == CLASP_OK) s = tf_build(path, &c, root, tf_zip_load, &t, out, info);
    pkl_free(&c);
    free(pbuf);
    zip_discard(t.z);
    return s;
}

/* -------------------------------------------------------------- legacy */

typedef struct tf_legacy {
    const char *path;
    const uint8_t *map;
    uint64_t size;
    uint64_t storages_at;  /* file offset of the first storage */
    const pkl_value *keys; /* the list of storage keys, in file order */
} tf_legacy;

/* Walks all storages in file order, checking each against the pickle and
 * the bytes left, and that the file ends with the last one. */
static clasp_status tf_legacy_storages(tf_legacy *t, pkl_ctx *c)
{
    uint64_t at = t->storages_at;
    for (size_t i = 0; i < t->keys->u.seq.n; i++) {
        const char *key = t->keys->u.seq.items[i]->u.str.s;
        pkl_storage *s = NULL;
        for (size_t j = 0; j < c->n_storages && !s; j++)
            if (!strcmp(c->storages[j].key, key)) s = &c->storages[j];
        if (!s)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: byte %" PRIu64 ": storage key \"%.40s\" in the key list is "
                               "not used by the pickle",
                               t->path, at, key);
        if (s->data)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: byte %" PRIu64 ": storage \"%.40s\" listed twice", t->path, at,
                               key);
        if (t->size - at < 8)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: byte %" PRIu64 ": truncated, expected the element count of "
                               "storage \"%s\"",
                               t->path, at, key);
        uint64_t count, bytes;
        memcpy(&count, t->map + at, 8);
        if (__builtin_mul_overflow(count, (uint64_t)pkl_dtype_size(s->dtype), &bytes) ||
            bytes > t->size - at - 8)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: byte %" PRIu64 ": truncated: storage \"%s\" of %" PRIu64
                               " %s elements, but only %" PRIu64 " bytes are left",
                               t->path, at, key, count, pkl_dtype_name(s->dtype), t->size - at - 8);
        char where[64];
        snprintf(where, sizeof where, "byte %" PRIu64, at);
        s->data = t->map + at + 8;
        s->n_bytes = bytes;
        CLASP_TRY(tf_check_storage_size(t->path, where, s, bytes));
        at += 8 + bytes;
    }
    if (at != t->size)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: byte %" PRIu64 ": %" PRIu64 " bytes after the last storage, "
                           "expected the end of the file",
                           t->path, at, t->size - at);
    return CLASP_OK;
}

/* Every storage the pickle names was found by tf_legacy_storages. */
static clasp_status tf_legacy_load(void *src, pkl_ctx *c, size_t k)
{
    tf_legacy *t = src;
    return clasp_error(CLASP_ERR_FORMAT,
                       "%s: storage \"%s\" is not in the file's list of storage keys", t->path,
                       c->storages[k].key);
}

static clasp_status tf_legacy_parse(tf_legacy *t, pkl_ctx *c, pkl_value **root)
{
    /* The magic number is 80 bits, beyond what the interpreter keeps, so
     * its pickle is compared byte for byte: PROTO p, LONG1 10 bytes, STOP. */
    static const uint8_t magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                    0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    if (t->size < 2 + sizeof magic || t->map[0] != 0x80 || memcmp(t->map + 2, magic, sizeof magic))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: byte 0: expected the pickled magic number of a legacy PyTorch "
                           "file (0x1950a86a20f9469cfc6c)",
                           t->path);
    uint64_t at = 2 + sizeof magic;
    pkl_value *v;
    size_t used;
    CLASP_TRY(pkl_run(c, t->map + at, t->size - at, at, &v, &used));
    if (v->kind != PKL_INT || v->u.i != TF_LEGACY_PROTOCOL)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: byte %" PRIu64 ": protocol version is not %d, expected a "
                           "torch.save legacy file",
                           t->path, at, TF_LEGACY_PROTOCOL);
    at += used;
    uint64_t info_at = at;
    CLASP_TRY(pkl_run(c, t->map + at, t->size - at, at, &v, &used));
    at += used;
    if (v->kind != PKL_DICT)
        return clasp_error(CLASP_ERR_FORMAT, "%s: byte %" PRIu64 ": expected the system info dict",
                           t->path, info_at);
    for (size_t i = 0; i < v->u.seq.n; i += 2) {
        const pkl_value *k = v->u.seq.items[i], *x = v->u.seq.items[i + 1];
        if (k->kind == PKL_STR && !strcmp(k->u.str.s, "little_endian") &&
            (x->kind != PKL_BOOL || !x->u.i))
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s: byte %" PRIu64 ": a big-endian checkpoint, not supported",
                               t->path, info_at);
    }
    c->legacy = 1;
    CLASP_TRY(pkl_run(c, t->map + at, t->size - at, at, root, &used));
    at += used;
    uint64_t keys_at = at;
    pkl_value *keys;
    CLASP_TRY(pkl_run(c, t->map + at, t->size - at, at, &keys, &used));
    at += used;
    bool ok = keys->kind == PKL_LIST;
    for (size_t i = 0; ok && i < keys->u.seq.n; i++) ok = keys->u.seq.items[i]->kind == PKL_STR;
    if (!ok)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s: byte %" PRIu64 ": expected the list of storage keys", t->path,
                           keys_at);
    t->keys = keys;
    t->storages_at = at;
    return tf_legacy_storages(t, c);
}

static clasp_status tf_read_legacy(const char *path, clasp_st_file *out, clasp_ckpt_info *info)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return clasp_error(errno == ENOENT ? CLASP_ERR_NOT_FOUND : CLASP_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return clasp_error(CLASP_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    }
    tf_legacy t = {.path = path, .size = (uint64_t)st.st_size};
    void *map = t.size ? mmap(NULL, (size_t)t.size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return clasp_error(t.size ? CLASP_ERR_IO : CLASP_ERR_FORMAT, "%s: cannot map: %s", path,
                           t.size ? strerror(errno) : "empty file");
    t.map = map;
    tf_copy(info->format, sizeof info->format, "pytorch-legacy");
    pkl_ctx c;
    pkl_init(&c, path);
    pkl_value *root = NULL;
    clasp_status s = tf_legacy_parse(&t, &c, &root);
    if (s == CLASP_OK) s = tf_build(path, &c, root, tf_legacy_load, &t, out, info);
    pkl_free(&c);
    munmap(map, (size_t)t.size);
    return s;
}

/* ---------------------------------------------------------------- API */

static clasp_status tf_sniff(const char *path, uint8_t head[16], size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return clasp_error(errno == ENOENT ? CLASP_ERR_NOT_FOUND : CLASP_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    ssize_t r = read(fd, head, 16);
    close(fd);
    if (r < 0) return clasp_error(CLASP_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    *n = (size_t)r;
    return CLASP_OK;
}

static bool tf_is_zip(const uint8_t *h, size_t n)
{
    return n >= 4 && !memcmp(h, "PK\3\4", 4);
}

static clasp_status tf_finish(clasp_status s, clasp_st_file *out)
{
    if (s != CLASP_OK) clasp_st_free(out);
    return s;
}

/* What both entry points do first: check the arguments, empty *out and
 * *info (info may be NULL: then `local`), and read the file's first bytes. */
static clasp_status tf_begin(const char *fn, const char *path, clasp_st_file *out,
                             clasp_ckpt_info **info, clasp_ckpt_info *local, uint8_t *head,
                             size_t *n)
{
    if (!path || !out) return clasp_error(CLASP_ERR_INVALID, "%s: NULL argument", fn);
    clasp_st_init(out);
    if (!*info) *info = local;
    memset(*info, 0, sizeof **info);
    return tf_sniff(path, head, n);
}

clasp_status clasp_torch_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info)
{
    clasp_ckpt_info local;
    uint8_t head[16];
    size_t n;
    CLASP_TRY(tf_begin("clasp_torch_read", path, out, &info, &local, head, &n));
    if (tf_is_zip(head, n)) return tf_finish(tf_read_zip(path, out, info), out);
    return tf_finish(tf_read_legacy(path, out, info), out);
}

clasp_status clasp_ckpt_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info)
{
    clasp_ckpt_info local;
    uint8_t head[16];
    size_t n;
    CLASP_TRY(tf_begin("clasp_ckpt_read", path, out, &info, &local, head, &n));
    /* safetensors first: an 8-byte header length, then the JSON object.
     * The length's low byte may be anything (0x80 too, a pickle's first
     * byte); a legacy file's ninth byte is inside its magic number, never
     * '{'. */
    if (n > 8 && head[8] == '{') {
        CLASP_TRY(clasp_st_read(path, out));
        tf_copy(info->format, sizeof info->format, "safetensors");
        tf_strip(out, info);
        return CLASP_OK;
    }
    if (tf_is_zip(head, n) || (n && head[0] == 0x80)) return clasp_torch_read(path, out, info);
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0; i < n && i < 8; i++) snprintf(hex + 3 * i, 4, "%02x ", head[i]);
    if (n) hex[3 * (n < 8 ? n : 8) - 1] = 0;
    return clasp_error(CLASP_ERR_FORMAT,
                       "%s: not a safetensors file, a PyTorch zip checkpoint or a legacy PyTorch "
                       "checkpoint (first bytes: %s)",
                       path, n ? hex : "none, the file is empty");
}
