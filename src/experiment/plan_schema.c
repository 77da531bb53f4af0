/* The experiment schema: one table of keys per YAML mapping, and the
 * generic walkers that parse a mapping by its table and emit the resolved
 * plan from it. A plain key (a number, a text, a choice, a flag) is one row
 * here and a field of clasp_plan; a key with a structure of its own names
 * a parse hook (plan.c) and an emit hook (plan_emit.c). */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/data.h"
#include "experiment/plan_internal.h"

/* ---- typed values ---------------------------------------------------------- */

static void range_text(double min, double max, int open_min, char *buf, size_t size)
{
    /* Named as such: %g would print 9.0072e+15, and ">= 0" alone hid the
     * upper bound that a seed of 1e99 violates. */
    if (max == PLAN_MAX_EXACT)
        snprintf(buf, size, "in %s%g, 2^53-1 = 9007199254740991]", open_min ? "(" : "[", min);
    else if (max >= 1e15) snprintf(buf, size, "%s %g", open_min ? ">" : ">=", min);
    else snprintf(buf, size, "in %s%g, %g]", open_min ? "(" : "[", min, max);
}

/* A scalar (not a list, not a mapping), with a message naming sec.key. */
static clasp_status want_scalar(const pctx *c, const yaml_node_t *v, const char *sec,
                                const char *key, const char *expect)
{
    if (v->type == YAML_SCALAR_NODE) return CLASP_OK;
    return plan_err(c, v, "%s.%s expects %s, got %s%s", sec, key, expect, ykind(v),
                    v->type == YAML_SEQUENCE_NODE ? " (lists make grids only in plugin params)"
                                                  : "");
}

clasp_status plan_get_whole(const pctx *c, const ymap *m, const char *sec, const char *key,
                            double min, double max, double def, double *out)
{
    yaml_node_t *v = ymap_get(m, key);
    *out = def;
    if (yis_null(v)) return CLASP_OK;
    char range[96];
    range_text(min, max, 0, range, sizeof range);
    CLASP_TRY(want_scalar(c, v, sec, key, "a whole number"));
    const char *s = yscalar(v);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(d) || d != floor(d) || strpbrk(s, "xX"))
        return plan_err(c, v, "%s.%s expects a whole number %s, got '%s'", sec, key, range, s);
    if (d < min || d > max) return plan_err(c, v, "%s.%s must be %s, got %s", sec, key, range, s);
    *out = d;
    return CLASP_OK;
}

clasp_status plan_get_real(const pctx *c, const ymap *m, const char *sec, const char *key,
                           double min, double max, int open_min, int open_max, double def,
                           double *out)
{
    yaml_node_t *v = ymap_get(m, key);
    *out = def;
    if (yis_null(v)) return CLASP_OK;
    char range[96];
    if (open_max) snprintf(range, sizeof range, "in %s%g, %g)", open_min ? "(" : "[", min, max);
    else range_text(min, max, open_min, range, sizeof range);
    CLASP_TRY(want_scalar(c, v, sec, key, "a number"));
    const char *s = yscalar(v);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(d))
        return plan_err(c, v, "%s.%s expects a number %s, got '%s'", sec, key, range, s);
    if (d < min || d > max || (open_min && d == min) || (open_max && d == max))
        return plan_err(c, v, "%s.%s must be %s, got %s", sec, key, range, s);
    *out = d;
    return CLASP_OK;
}

clasp_status plan_get_text(const pctx *c, const ymap *m, const char *sec, const char *key,
                           const char *def, char **out)
{
    yaml_node_t *v = ymap_get(m, key);
    const char *s = def;
    if (!yis_null(v)) {
        CLASP_TRY(want_scalar(c, v, sec, key, "a text value"));
        s = yscalar(v);
        if (!*s) return plan_err(c, v, "%s.%s must not be empty", sec, key);
    }
    *out = NULL;
    if (!s) return CLASP_OK;
    *out = strdup(s);
    return *out ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
}

clasp_status plan_get_choice(const pctx *c, yaml_node_t *v, const char *sec, const char *key,
                             const char *const *choices, int def, int *out)
{
    *out = def;
    if (yis_null(v)) return CLASP_OK;
    CLASP_TRY(want_scalar(c, v, sec, key, "a text value"));
    const char *s = yscalar(v);
    char list[200] = "";
    size_t len = 0;
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(s, choices[i])) return *out = i, CLASP_OK;
        if (len < sizeof list)
            len +=
                (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i]);
    }
    return plan_err(c, v, "%s.%s: unknown value '%s' (expected one of: %s)", sec, key, s, list);
}

clasp_status plan_get_row(const pctx *c, const ymap *m, const plan_section *s, const char *key,
                          double def, double *out)
{
    const plan_key *k = plan_schema_find(s, key);
    if (k->kind == PK_REAL)
        return plan_get_real(c, m, s->path, key, k->min, k->max, (k->flags & PF_OPEN_MIN) != 0,
                             (k->flags & PF_OPEN_MAX) != 0, def, out);
    return plan_get_whole(c, m, s->path, key, k->min, k->max, def, out);
}

int plan_bool_text(const char *s, int *out)
{
    if (!s) return 0;
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) return *out = 1, 1;
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) return *out = 0, 1;
    return 0;
}

/* ---- fields ---------------------------------------------------------------- */

static void *field(clasp_plan *p, const plan_key *k)
{
    return (char *)p + k->off;
}

static const void *cfield(const clasp_plan *p, const plan_key *k)
{
    return (const char *)p + k->off;
}

static void set_whole(clasp_plan *p, const plan_key *k, double v)
{
    if (k->size == sizeof(int)) *(int *)field(p, k) = (int)v;
    else *(uint64_t *)field(p, k) = (uint64_t)v; /* size_t and uint64_t */
}

static unsigned long long get_whole_field(const clasp_plan *p, const plan_key *k)
{
    if (k->size == sizeof(int)) return (unsigned long long)*(const int *)cfield(p, k);
    return (unsigned long long)*(const uint64_t *)cfield(p, k);
}

/* ---- walking a table --------------------------------------------------------- */

const plan_key *plan_schema_find(const plan_section *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i].key, key)) return &s->keys[i];
    return NULL;
}

clasp_status plan_only(const pctx *c, const ymap *m, const char *what, const plan_section *s)
{
    const char *known[64];
    int n = 0;
    for (int i = 0; i < s->n && n < 63; i++) known[n++] = s->keys[i].key;
    known[n] = NULL;
    return ymap_only(c, m, what, known);
}

static clasp_status parse_row(pctx *c, const ymap *m, const plan_section *s, const plan_key *k)
{
    clasp_plan *p = c->plan;
    yaml_node_t *v = ymap_get(m, k->key);
    if (k->applies && !yis_null(v) && !k->applies(p))
        return plan_err(c, ymap_keynode(m, k->key), "%s.%s applies to %s only", s->path, k->key,
                        k->applies_doc);
    if (k->parse) return k->parse(c, m, k, v);
    if (k->flags & PF_SKIP) return CLASP_OK;
    double d = 0;
    switch (k->kind) {
    case PK_WHOLE:
        CLASP_TRY(plan_get_whole(c, m, s->path, k->key, k->min, k->max, k->def, &d));
        set_whole(p, k, d);
        return CLASP_OK;
    case PK_REAL:
        CLASP_TRY(plan_get_real(c, m, s->path, k->key, k->min, k->max,
                                (k->flags & PF_OPEN_MIN) != 0, (k->flags & PF_OPEN_MAX) != 0,
                                k->def, &d));
        *(double *)field(p, k) = d;
        return CLASP_OK;
    case PK_TEXT: {
        char *t = NULL;
        CLASP_TRY(plan_get_text(c, m, s->path, k->key, k->def_text, &t));
        if (!(k->flags & PF_FIXED)) {
            free(*(char **)field(p, k));
            *(char **)field(p, k) = t;
            return CLASP_OK;
        }
        clasp_status st = CLASP_OK;
        if (t && strlen(t) >= k->size)
            st = plan_err(c, v, "%s.%s is too long (at most %zu characters)", s->path, k->key,
                          k->size - 1);
        else snprintf((char *)field(p, k), k->size, "%s", t ? t : "");
        free(t);
        return st;
    }
    case PK_CHOICE: {
        int which = (int)k->def;
        CLASP_TRY(plan_get_choice(c, v, s->path, k->key, k->choices, which, &which));
        if (k->off < 0) return CLASP_OK;
        if (k->flags & PF_FIXED) snprintf((char *)field(p, k), k->size, "%s", k->choices[which]);
        else *(int *)field(p, k) = which;
        return CLASP_OK;
    }
    case PK_BOOL: {
        int b = (int)k->def;
        if (!yis_null(v) && !plan_bool_text(yscalar(v), &b))
            return plan_err(c, v, "%s.%s expects true or false, got %s", s->path, k->key,
                            yscalar(v) ? yscalar(v) : ykind(v));
        *(int *)field(p, k) = b;
        return CLASP_OK;
    }
    case PK_MAP: return plan_parse_section(c, v, k->sub);
    case PK_CUSTOM: break;
    }
    return CLASP_OK;
}

clasp_status plan_parse_section(pctx *c, yaml_node_t *n, const plan_section *s)
{
    if (s->parse) return s->parse(c, n, s);
    ymap m = {0};
    int absent = !n || (s->null_ok && yis_null(n));
    if (!absent) {
        CLASP_TRY(ymap_open(c, n, s->what, &m));
    }
    clasp_status st = absent ? CLASP_OK : plan_only(c, &m, s->what, s);
    for (int i = 0; st == CLASP_OK && i < s->n; i++) st = parse_row(c, &m, s, &s->keys[i]);
    ymap_close(&m);
    return st;
}

void plan_emit_section(plan_em *e, const clasp_plan *p, const plan_section *s, int with_output)
{
    pe_map_start(e, s->flow);
    for (int i = 0; i < s->n; i++) {
        const plan_key *k = &s->keys[i];
        if (k->flags & (PF_VIA | PF_SKIP)) continue;
        if ((k->flags & PF_UNHASHED) && !with_output) continue;
        if (k->shown && !k->shown(p)) continue;
        if (k->kind == PK_TEXT && !(k->flags & PF_FIXED) && !*(char *const *)cfield(p, k))
            continue; /* an optional text left out */
        pe_scalar(e, k->key);
        if (k->emit) {
            k->emit(e, p, k);
            continue;
        }
        switch (k->kind) {
        case PK_WHOLE: pe_whole(e, get_whole_field(p, k)); break;
        case PK_REAL: pe_num(e, *(const double *)cfield(p, k)); break;
        case PK_TEXT:
            pe_scalar(e, k->flags & PF_FIXED ? (const char *)cfield(p, k)
                                             : *(char *const *)cfield(p, k));
            break;
        case PK_CHOICE:
            pe_scalar(e, k->off < 0              ? k->choices[(int)k->def]
                         : (k->flags & PF_FIXED) ? (const char *)cfield(p, k)
                                                 : k->choices[*(const int *)cfield(p, k)]);
            break;
        case PK_BOOL: pe_scalar(e, *(const int *)cfield(p, k) ? "true" : "false"); break;
        case PK_MAP: plan_emit_section(e, p, k->sub, with_output); break;
        case PK_CUSTOM: pe_scalar(e, ""); break;
        }
    }
    pe_map_end(e);
}

/* ---- the reference tables of experiments/README.md --------------------------- */

void plan_key_range(const plan_key *k, char *buf, size_t size)
{
    *buf = '\0';
    if (k->kind != PK_WHOLE && k->kind != PK_REAL) return;
    if (k->max >= 1e9 && k->max != PLAN_MAX_EXACT)
        snprintf(buf, size, "≥ %g", k->min); /* a bound only against typing errors */
    else if (k->flags & PF_OPEN_MAX)
        snprintf(buf, size, "%s%g, %g)", k->flags & PF_OPEN_MIN ? "(" : "[", k->min, k->max);
    else {
        char t[96];
        range_text(k->min, k->max, (k->flags & PF_OPEN_MIN) != 0, t, sizeof t);
        snprintf(buf, size, "%s", strncmp(t, "in ", 3) ? t : t + 3);
    }
}

typedef struct mdbuf {
    char *s;
    size_t len, cap;
    int nomem;
} mdbuf;

static void md(mdbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void md(mdbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->nomem
                    ? -1
                    : vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->nomem = 1;
            return;
        }
        b->s = s, b->cap = cap;
    }
}

static void md_type(mdbuf *b, const plan_key *k)
{
    if (k->type_doc) return md(b, "%s", k->type_doc);
    switch (k->kind) {
    case PK_WHOLE: return md(b, "integer");
    case PK_REAL: return md(b, "number");
    case PK_TEXT: return md(b, "text");
    case PK_BOOL: return md(b, "`true` \\| `false`");
    case PK_MAP: return md(b, "mapping");
    case PK_CHOICE:
        for (int i = 0; k->choices[i]; i++) md(b, "%s`%s`", i ? " \\| " : "", k->choices[i]);
        return;
    case PK_CUSTOM: return;
    }
}

static void md_default(mdbuf *b, const plan_key *k)
{
    if (k->def_doc) return md(b, "%s", k->def_doc);
    if (k->flags & PF_REQUIRED) return md(b, "required");
    switch (k->kind) {
    case PK_WHOLE:
    case PK_REAL: return md(b, "`%g`", k->def);
    case PK_TEXT: return md(b, k->def_text ? "`%s`" : "none", k->def_text);
    case PK_BOOL: return md(b, "`%s`", k->def ? "true" : "false");
    case PK_CHOICE: return md(b, "`%s`", k->choices[(int)k->def]);
    case PK_MAP: return md(b, "see below");
    case PK_CUSTOM: return md(b, "none");
    }
}

static void md_rows(mdbuf *b, const plan_section *s, const char *prefix)
{
    for (int i = 0; i < s->n; i++) {
        const plan_key *k = &s->keys[i];
        char range[96];
        plan_key_range(k, range, sizeof range);
        md(b, "| `%s%s` | ", prefix, k->key);
        md_type(b, k);
        md(b, " | ");
        md_default(b, k);
        md(b, " | %s | %s |\n", k->range_doc ? k->range_doc : range, k->doc ? k->doc : "");
        if (k->kind == PK_MAP && k->sub) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s%s.", prefix, k->key);
            md_rows(b, k->sub, sub);
        }
    }
}

clasp_status plan_schema_markdown(const plan_section *s, char **out)
{
    mdbuf b = {0};
    md(&b, "| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    md_rows(&b, s, "");
    if (b.nomem) {
        free(b.s);
        *out = NULL;
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    *out = b.s;
    return CLASP_OK;
}

/* ---- the tables ------------------------------------------------------------ */

#define F(field) .off = offsetof(clasp_plan, field), .size = sizeof(((clasp_plan *)0)->field)
#define NOF .off = -1
#define N(a) (int)(sizeof(a) / sizeof(a)[0])

static int shown_exclude(const clasp_plan *p)
{
    return p->n_exclude > 0;
}
static int images(const clasp_plan *p)
{
    return clasp_plan_streamed(p);
}
static int not_images(const clasp_plan *p)
{
    return !clasp_plan_streamed(p);
}
#define IMAGES                          \
    .applies = images, .shown = images, \
    .applies_doc = "image folders (data.dataset imagefolder or imagenet)"
#define SPLIT .applies = not_images, .applies_doc = "data sets held in memory (not image folders)"
/* The split keys matter to a streamed plan only when something trains. */
static int shown_split(const clasp_plan *p)
{
    return !clasp_plan_streamed(p) || clasp_plan_trains(p);
}
/* In the order of imagefolder.c's table (parse_prep). */
static const char *const preprocessings[] = {"Res256Crop224",        "Crop288", "Res224",
                                             "BicubicRes256Crop224", "none",    NULL};
static const char *const subsets[] = {"all", "robustbench-5000", NULL};
/* A streamed set in the completeness test: nothing may train on it. */
#define WITH_IMAGES "dataset: imagefolder; path: x; /train.models[].checkpoint: ckpt.safetensors"
static int shown_normalize(const clasp_plan *p)
{
    return p->normalize > 0;
}
static int shown_step(const clasp_plan *p)
{
    return p->schedule == CLASP_LR_STEP;
}
static int shown_l2(const clasp_plan *p)
{
    return p->n_l2_eps > 0;
}
static int shown_train(const clasp_plan *p)
{
    return !p->no_train;
}
static int shown_root_models(const clasp_plan *p)
{
    return p->no_train;
}

static const char *const optimisers[] = {"sgd", NULL};
static const char *const schedules[] = {"constant", "cosine", "step", NULL};

/* clang-format off */
static const plan_key experiment_keys[] = {
    {.key = "name", .kind = PK_TEXT, .flags = PF_REQUIRED | PF_FIXED, .parse = plan_p_name,
     F(name), .example = "other", .range_doc = "no `/`",
     .doc = "experiment name; the default output folder is `runs/<name>`"},
    {.key = "seed", .kind = PK_WHOLE, F(seed), .min = 0, .max = PLAN_MAX_EXACT, .def = 1,
     .example = "7",
     .doc = "every random stream (weight init, split, shuffling, attack starts) derives from it"},
    {.key = "device", .kind = PK_TEXT, F(device), .parse = plan_p_device, .example = "'0:0'",
     .def_doc = "`CLASP_DEVICE`, else the default device", .range_doc = "`P:D` or a name substring",
     .doc = "OpenCL device, overriding the `CLASP_DEVICE` environment variable; `clasp check` "
            "looks it up among this machine's devices"},
};
static const plan_section experiment_sec = {"experiment", "experiment", 0, 0, experiment_keys,
                                            N(experiment_keys), NULL};

static const plan_key data_keys[] = {
    {.key = "dataset", .kind = PK_CHOICE, .flags = PF_FIXED, F(dataset),
     .choices = clasp_dataset_names, .def = 0, .example = "mnist", .with = "path: x",
     .doc = "which reader and class names; `cifar100` has the 100 fine classes, "
            "`cifar100-coarse` the 20 superclasses"},
    {.key = "path", .kind = PK_TEXT, F(data_path), .parse = plan_p_path, .example = "some/dir",
     .def_doc = "`/usr/share/datasets/fashion-mnist` for fashion-mnist; required otherwise",
     .doc = "folder with the data set's files: IDX files (`train-images-idx3-ubyte[.gz]`, …), "
            "CIFAR-10 batches (`data_batch_1.bin`, …), CIFAR-100 `train.bin`/`test.bin`, SVHN "
            "`train_32x32.mat`/`test_32x32.mat`, STL-10 "
            "`train_X.bin`/`train_y.bin`/`test_X.bin`/`test_y.bin` (see the main README's Data "
            "section)"},
    {.key = "val_size", .kind = PK_WHOLE, F(val_size), .min = 1, .max = 1e9, .def = 5000,
     .example = "100", .shown = shown_split, .range_doc = "≥ 1, < training set",
     .doc = "examples held out of the training set (a seeded split) for epoch-end validation "
            "and calibration; for an image folder, images held out of `DIR/train`"},
    {.key = "train_size", .kind = PK_WHOLE, F(train_size), .min = 0, .max = 1e9, .def = 0,
     .example = "300", .shown = shown_split, .def_doc = "`0` (all)",
     .doc = "keep only the first N training examples after the split (quick runs)"},
    {.key = "exclude_classes", .kind = PK_CUSTOM, NOF, .parse = plan_p_exclude,
     .emit = plan_e_exclude, .shown = shown_exclude, .example = "[Shirt]", SPLIT,
     .type_doc = "list of class names or indices", .def_doc = "`[]`",
     .range_doc = "known classes, not all",
     .doc = "classes left out of training and validation (see below)"},
    {.key = "subset", .kind = PK_CHOICE, .flags = PF_FIXED, F(data_subset), .choices = subsets,
     .def = 0, IMAGES, .example = "robustbench-5000", .with = WITH_IMAGES,
     .doc = "`robustbench-5000`: RobustBench's 5000 ImageNet evaluation images "
            "(`DIR/<wnid>/ILSVRC2012_val_*.JPEG`), in its list's order; `evaluate.test_size` "
            "takes the first N of them"},
    {.key = "preprocess", .kind = PK_CHOICE, .flags = PF_FIXED, F(data_preprocess),
     .choices = preprocessings, .parse = plan_p_preprocess, IMAGES, .example = "Crop288",
     .with = WITH_IMAGES, .def_doc = "the zoo entry's (`model.zoo` or the models' `zoo`), else "
                                     "`Res256Crop224`",
     .doc = "RobustBench's names: `Res256Crop224` resizes the shorter side to 256 (bilinear, "
            "antialiased) and crops the centre 224×224, `Crop288` crops the centre 288, `Res224` "
            "resizes to 224×224, `BicubicRes256Crop224` as the first with bicubic resizing; "
            "`none` takes the images as they are (all of the first one's size)"},
    {.key = "workers", .kind = PK_WHOLE, .flags = PF_UNHASHED, F(data_workers), .min = 0,
     .max = 64, .def = 0, IMAGES, .example = "2", .with = WITH_IMAGES,
     .def_doc = "`0` (one thread)",
     .doc = "threads decoding and preprocessing images ahead of the device (two batches "
            "ahead); not part of the resume check, since the images and their order do not "
            "depend on it"},
    {.key = "skip_bad_images", .kind = PK_BOOL, F(data_skip_bad), .def = 0, IMAGES,
     .example = "true", .with = WITH_IMAGES,
     .doc = "leave out images that cannot be decoded (the run's news counts them) instead of "
            "stopping at the first with an error naming it"},
    {.key = "groups", .kind = PK_TEXT, .flags = PF_UNHASHED, F(groups), .parse = plan_p_groups,
     .example = "groups.txt", .def_doc = "CIFAR-100's superclasses for `cifar100`, else none",
     .range_doc = "a mapping file",
     .doc = "class groups for the report: a text file of `CLASS<TAB>GROUP` (or `CLASS,GROUP`) "
            "lines (see below); read by `clasp check`. Not part of the resume check: only the "
            "report depends on it"},
};
static const plan_section data_sec = {"data", "data", 0, 0, data_keys, N(data_keys), NULL};

static const plan_key normalize_keys[] = {
    {.key = "mean", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED, .example = "[0.5]",
     .with = "std: [0.25]",
     .type_doc = "list of numbers", .range_doc = "1 to 4 values",
     .doc = "subtracted from each input channel"},
    {.key = "std", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED, .example = "[0.5]",
     .with = "mean: [0.3]",
     .type_doc = "list of numbers", .range_doc = "as many as `mean`, each > 0",
     .doc = "then divided by"},
};
static const plan_section normalize_sec = {"model.normalize", "model.normalize", 1, 0,
                                           normalize_keys, N(normalize_keys), NULL};

static const plan_key model_keys[] = {
    {.key = "arch", .kind = PK_TEXT, F(arch), .def_text = "default", .example = "resnet18",
     .doc = "`default` is Madry et al.'s CNN (conv5x5-32, pool, conv5x5-64, pool, fc1024, fc "
            "classes); `resnet18`, `preact-resnet18` and `wrn` are the presets (PyTorch "
            "state-dict names of the robust-model zoos; the name forms `preact-resnet18-w16` and "
            "`wrn-34-10` work too); otherwise a layer list such as "
            "`conv5x5-32p2,relu,maxpool2,flatten,fc10` (`conv{K}x{K}-{out}[s{stride}][p{pad}][nb]`, "
            "`maxpool{K}[s{stride}]`, `avgpool{K}[s{stride}]`, `fc{out}[nb]`, `bn`, `add`, `relu`, "
            "`flatten`; `:label` names an item and `(a+b)` its inputs, `in` the model input). The "
            "last layer must have one output per class."},
    {.key = "depth", .kind = PK_WHOLE, NOF, .flags = PF_VIA, .via = "arch", .min = 10,
     .max = 1000, .def = 28, .example = "16", .with = "arch: wrn",
     .doc = "`wrn` only: 6n+4 (10, 16, 22, 28, 34, ...)"},
    {.key = "width", .kind = PK_WHOLE, NOF, .flags = PF_VIA, .via = "arch", .min = 1,
     .max = 4096, .def = 64, .example = "16", .with = "arch: resnet18",
     .def_doc = "`10` for `wrn`, `64` for the resnets",
     .doc = "`wrn`: the widen factor; `resnet18`, `preact-resnet18`: the base width (16 makes a "
            "model small enough for a CPU)"},
    {.key = "normalize", .kind = PK_MAP, NOF, .sub = &normalize_sec, .emit = plan_e_normalize,
     .shown = shown_normalize, .example = "{mean: [0.3], std: [0.25]}",
     .def_doc = "none",
     .doc = "input normalisation inside the model, one value per input channel: inputs and "
            "attack budgets stay in [0,1] pixels"},
    {.key = "zoo", .kind = PK_TEXT, NOF, .flags = PF_VIA, .via = "arch",
     .example = "Carmon2019Unlabeled", .with = "/data.dataset: cifar10; /data.path: x",
     .doc = "a RobustBench entry name (`clasp zoo` lists them) for every model: the "
            "architecture and input normalisation come from the entry (it excludes `arch`, "
            "`depth`, `width` and `normalize`)"},
};
static const plan_section model_sec = {"model", "model", 0, 0, model_keys, N(model_keys),
                                       plan_p_model};

static const plan_key optimiser_keys[] = {
    {.key = "name", .kind = PK_CHOICE, NOF, .choices = optimisers, .def = 0, .example = "sgd",
     .doc = "the only optimiser for now"},
    {.key = "lr", .kind = PK_REAL, F(lr), .flags = PF_OPEN_MIN, .min = 0, .max = 10, .def = 0.05,
     .example = "0.1", .doc = "base learning rate"},
    {.key = "momentum", .kind = PK_REAL, F(momentum), .flags = PF_OPEN_MAX, .min = 0, .max = 1,
     .def = 0.9, .example = "0.5"},
    {.key = "weight_decay", .kind = PK_REAL, F(weight_decay), .flags = PF_OPEN_MAX, .min = 0,
     .max = 1, .def = 5e-4, .example = "0.001"},
};
static const plan_section optimiser_sec = {"train.optimiser", "train.optimiser", 1, 1,
                                           optimiser_keys, N(optimiser_keys), NULL};

static const plan_key schedule_keys[] = {
    {.key = "name", .kind = PK_CHOICE, F(schedule), .choices = schedules, .def = 1,
     .example = "constant"},
    {.key = "milestones", .kind = PK_CUSTOM, NOF, .emit = plan_e_milestones,
     .shown = shown_step, .example = "[2]", .with = "name: step",
     .type_doc = "list of integers", .def_doc = "required for `step`",
     .range_doc = "increasing, in [1, epochs]",
     .doc = "`step`: lr is multiplied by `gamma` from each milestone epoch on (0-based epoch "
            "index ≥ milestone, as PyTorch's MultiStepLR)"},
    {.key = "gamma", .kind = PK_REAL, F(gamma), .flags = PF_OPEN_MIN, .min = 0, .max = 1,
     .def = 0.1, .shown = shown_step, .example = "0.5", .with = "name: step; milestones: [1]",
     .doc = "`step` only"},
};
static const plan_section schedule_sec = {"train.schedule", "train.schedule", 1, 1,
                                          schedule_keys, N(schedule_keys), plan_p_schedule};

static const plan_key augment_keys[] = {
    {.key = "crop", .kind = PK_WHOLE, F(augment_pad), .min = 0, .max = 64, .def = 0,
     .example = "2", .doc = "padding in pixels of the random crop (0: none)"},
    {.key = "flip", .kind = PK_BOOL, F(augment_flip), .def = 0, .example = "true",
     .doc = "random horizontal flips"},
};
static const plan_section augment_sec = {"train.augment", "train.augment", 1, 1, augment_keys,
                                         N(augment_keys), plan_p_augment};

static const plan_key train_keys[] = {
    {.key = "epochs", .kind = PK_WHOLE, F(epochs), .min = 1, .max = 100000, .def = 10,
     .example = "4", .doc = "epochs per model"},
    {.key = "batch", .kind = PK_WHOLE, F(batch), .min = 1, .max = 65536, .def = 128,
     .example = "32", .doc = "training batch size"},
    {.key = "optimiser", .kind = PK_MAP, NOF, .sub = &optimiser_sec, .example = "{lr: 0.2}",
     .doc = "SGD with momentum and weight decay (PyTorch's convention)"},
    {.key = "schedule", .kind = PK_MAP, NOF, .sub = &schedule_sec, .example = "constant",
     .type_doc = "`constant` \\| `cosine` \\| mapping", .def_doc = "`cosine`",
     .doc = "learning-rate schedule; `cosine` decays per batch from `lr` to 0 over all epochs"},
    {.key = "val_eval_size", .kind = PK_WHOLE, F(val_eval_size), .min = 0, .max = 1e9,
     .def = 1000, .example = "50", .range_doc = "≥ 0 (0 = all)",
     .doc = "validation examples evaluated at each epoch end (clean, and robust under the "
            "model's attack); the first N of the split, to bound the time. The finish hook "
            "(calibration) always gets the whole split"},
    {.key = "augment", .kind = PK_MAP, NOF, .sub = &augment_sec, .example = "true",
     .applies = not_images,
     .applies_doc = "data sets held in memory (image folders train with torchvision's "
                    "RandomResizedCrop and RandomHorizontalFlip)",
     .type_doc = "`true` \\| `false` \\| `{crop, flip}`", .def_doc = "by data set",
     .doc = "random crop from the zero-padded image and horizontal flip, seeded per batch, on "
            "the device; default `{crop: 4, flip: true}` for cifar10/cifar100, `{crop: 12, "
            "flip: true}` for stl10, off for the others; `true` means the data set's crop and a "
            "flip"},
    {.key = "models", .kind = PK_CUSTOM, NOF, .flags = PF_REQUIRED,
     .parse = plan_p_train_models, .emit = plan_e_models, .example = "[{name: b}]",
     .type_doc = "list of model entries", .range_doc = "non-empty",
     .doc = "the models to train, in order"},
};
static const plan_section train_sec = {"train", "train", 0, 0, train_keys, N(train_keys), NULL};

static const plan_key evaluate_keys[] = {
    {.key = "test_size", .kind = PK_WHOLE, F(test_size), .min = 0, .max = 1e9, .def = 0,
     .example = "200", .def_doc = "`0` (all)", .doc = "the first N test examples"},
    {.key = "batch", .kind = PK_WHOLE, F(eval_batch), .min = 1, .max = 65536, .def = 200,
     .example = "50", .doc = "evaluation batch size"},
    {.key = "l2_eps", .kind = PK_CUSTOM, NOF, .parse = plan_p_l2_eps, .emit = plan_e_l2_eps,
     .shown = shown_l2, .example = "[0.5, 1]",
     .type_doc = "number or ascending list of numbers", .range_doc = "each > 0",
     .doc = "L2 budgets at which unbounded attacks (cw) are reported, e.g. `[1, 2]`"},
    {.key = "attacks", .kind = PK_CUSTOM, NOF, .flags = PF_REQUIRED, .parse = plan_p_attacks,
     .emit = plan_e_attacks, .example = "[pgd]", .type_doc = "list of attack blocks",
     .range_doc = "non-empty", .doc = "every attack runs on every model"},
};
static const plan_section evaluate_sec = {"evaluate", "evaluate", 0, 0, evaluate_keys,
                                          N(evaluate_keys), NULL};

static const plan_key output_keys[] = {
    {.key = "dir", .kind = PK_TEXT, F(output), .parse = plan_p_output_dir, .example = "out/x",
     .def_doc = "`runs/<experiment.name>`",
     .doc = "the output folder (made if missing); `clasp run --output DIR` overrides it"},
};
static const plan_section output_sec = {"output", "output", 0, 1, output_keys, N(output_keys),
                                        NULL};

/* Order matters: train's milestones check epochs, the models' epochs
 * follow train's, output defaults to the experiment name. */
static const plan_key root_keys[] = {
    {.key = "experiment", .kind = PK_MAP, NOF, .flags = PF_REQUIRED, .sub = &experiment_sec},
    {.key = "data", .kind = PK_MAP, NOF, .sub = &data_sec},
    {.key = "model", .kind = PK_MAP, NOF, .sub = &model_sec},
    {.key = "train", .kind = PK_MAP, NOF, .flags = PF_REQUIRED, .sub = &train_sec,
     .parse = plan_p_train, .shown = shown_train},
    {.key = "models", .kind = PK_CUSTOM, NOF, .parse = plan_p_root_models, .emit = plan_e_models,
     .shown = shown_root_models},
    {.key = "evaluate", .kind = PK_MAP, NOF, .flags = PF_REQUIRED, .sub = &evaluate_sec},
    /* Not hashed: a run moved to another folder still resumes. */
    {.key = "output", .kind = PK_MAP, NOF, .flags = PF_UNHASHED, .sub = &output_sec},
};
const plan_section plan_schema_root = {"", "the experiment file", 0, 0, root_keys, N(root_keys),
                                       NULL};

/* Plugin blocks: plan_plugins.c and plan_ensemble.c parse them (grids
 * expand into several models or attacks) and plan_emit.c writes them; the
 * rows name their keys (the known keys of messages) and document them. */
static const plan_key model_entry_keys[] = {
    {.key = "name", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "b", .type_doc = "text",
     .def_doc = "the defense's name, the zoo entry's, or `standard`",
     .doc = "unique; also names the checkpoint `<output>/<name>.safetensors` (characters other "
            "than letters, digits and `-._=+,` become `_`); `state` and `report` are reserved"},
    {.key = "arch", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "resnet18",
     .type_doc = "text", .def_doc = "`model.arch`",
     .doc = "this model's own architecture (a preset name such as `wrn-16-2` or a layer list), "
            "to compare architectures in one experiment"},
    {.key = "defense", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "pgd-at",
     .type_doc = "defense block", .def_doc = "none (standard training)",
     .doc = "a defense block"},
    {.key = "checkpoint", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP,
     .example = "ckpt.safetensors", .type_doc = "text",
     .doc = "an existing model to start from instead of the seed's weights: a clasp "
            "checkpoint, a safetensors state dict or a PyTorch `.pt`/`.pth`/`.bin` "
            "(`torch.save`, read as data; see the README's *PyTorch checkpoints*). Relative "
            "paths are relative to the working folder; a missing file is an error of `clasp "
            "check`"},
    {.key = "zoo", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "Carmon2019Unlabeled",
     .with = "checkpoint: ckpt.safetensors; /data.dataset: cifar10; /data.path: x",
     .type_doc = "text",
     .doc = "a RobustBench entry name (`clasp zoo` lists them): the architecture, activation, "
            "input normalisation and classes come from the entry, for the data set of "
            "`data.dataset`. Needs `checkpoint` (the entry's weights) and takes no `arch`"},
    {.key = "threat", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "L2",
     .with = "zoo: Standard; checkpoint: ckpt.safetensors; /data.dataset: cifar10; "
             "/data.path: x",
     .type_doc = "`Linf` \\| `L2`", .def_doc = "the only one",
     .doc = "the entry's threat model, where the zoo name exists for both"},
    {.key = "epochs", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "2",
     .with = "checkpoint: ckpt.safetensors", .type_doc = "integer",
     .def_doc = "`0` with a checkpoint", .range_doc = "only with `checkpoint`",
     .doc = "fine-tuning epochs from the checkpoint's weights (with the `train` section's "
            "optimiser and schedule)"},
};
const plan_section plan_schema_model_entry = {"train.models[]", "a model entry", 0, 0,
                                              model_entry_keys, N(model_entry_keys), NULL};
static const plan_key defense_keys[] = {
    {.key = "name", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED, .example = "trades",
     .type_doc = "text",
     .doc = "a defense plugin (`clasp plugins` lists them: pgd-at, trades, reweight, calibrate)"},
    {.key = "params", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "{mix: 0.5}",
     .with = "name: pgd-at",
     .type_doc = "mapping", .def_doc = "the plugin's defaults",
     .doc = "the plugin's parameters (defaults for those left out); a list makes a grid"},
    {.key = "attack", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP,
     .example = "{name: pgd, params: {eps: 0.2}}", .with = "name: pgd-at", .type_doc = "attack block `{name, params}`",
     .def_doc = "none",
     .doc = "the defense's inner maximisation (pgd-at trains on its examples; calibrate fits "
            "on its examples), and the attack of the robust validation at each epoch end. "
            "trades has its own inner loop, but an attack given with it still serves the "
            "validation"},
    {.key = "inner", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "pgd-at",
     .with = "name: reweight", .type_doc = "defense block", .def_doc = "none",
     .doc = "another defense block that this one wraps (reweight and calibrate wrap pgd-at or "
            "trades); without one a wrapper trains like standard training"},
};
const plan_section plan_schema_defense = {"train.models[].defense", "defense block", 0, 0,
                                          defense_keys, N(defense_keys), NULL};
static const plan_key attack_keys[] = {
    {.key = "name", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED},
    {.key = "params", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP},
};
const plan_section plan_schema_attack = {"train.models[].defense.attack", "attack block", 0, 0,
                                         attack_keys, N(attack_keys), NULL};
static const plan_key eval_attack_keys[] = {
    {.key = "name", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED, .example = "pgd"},
    {.key = "label", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "f"},
    {.key = "params", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP, .example = "{eps: 0.2}"},
};
const plan_section plan_schema_eval_attack = {"evaluate.attacks[]", "attack block", 0, 0,
                                              eval_attack_keys, N(eval_attack_keys), NULL};
static const plan_key ensemble_keys[] = {
    {.key = "ensemble", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED},
    {.key = "label", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP},
};
const plan_section plan_schema_ensemble = {"evaluate.attacks[]", "an ensemble entry", 0, 0,
                                           ensemble_keys, N(ensemble_keys), NULL};
static const plan_key preset_keys[] = {
    {.key = "name", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED},
    {.key = "label", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP},
    {.key = "params", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP},
};
const plan_section plan_schema_preset = {"evaluate.attacks[]", "autoattack entry", 0, 0,
                                         preset_keys, N(preset_keys), NULL};
static const plan_key preset_params_keys[] = {
    {.key = "eps", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP | PF_REQUIRED},
    {.key = "version", .kind = PK_CUSTOM, NOF, .flags = PF_SKIP},
};
const plan_section plan_schema_preset_params = {"autoattack params", "autoattack params", 1, 0,
                                                preset_params_keys, N(preset_params_keys), NULL};
/* clang-format on */

const plan_section *const plan_schema_all[] = {&plan_schema_root,
                                               &experiment_sec,
                                               &data_sec,
                                               &model_sec,
                                               &normalize_sec,
                                               &train_sec,
                                               &optimiser_sec,
                                               &schedule_sec,
                                               &augment_sec,
                                               &evaluate_sec,
                                               &output_sec,
                                               &plan_schema_model_entry,
                                               &plan_schema_defense,
                                               &plan_schema_attack,
                                               &plan_schema_eval_attack,
                                               &plan_schema_ensemble,
                                               &plan_schema_preset,
                                               &plan_schema_preset_params,
                                               NULL};
