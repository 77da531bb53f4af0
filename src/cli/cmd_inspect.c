/* clasp inspect: what a model file holds (safetensors or a PyTorch
 * checkpoint): its tensors with dtype and shape, which entry and prefix
 * held the state dict, and which architecture the names fit.
 * clasp convert: a model file's state dict written as safetensors. */
#include <stdlib.h>
#include <string.h>

#include "clasp/safetensors.h"
#include "clasp/torchfile.h"
#include "cli.h"

static const char *dtype_name(clasp_st_dtype t)
{
    return t == CLASP_ST_F32 ? "F32" : t == CLASP_ST_I32 ? "I32" : "I64";
}

static void shape_text(const clasp_st_tensor *t, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", d ? ", " : "",
                                (long long)t->shape[d]);
    if (len < size) snprintf(buf + len, size - len, "]");
}

static void print_source(const char *path, const clasp_ckpt_info *info, const clasp_st_file *f)
{
    printf("%s: %s", path, info->format);
    if (info->entry[0]) printf(", state dict under '%s'", info->entry);
    else if (strcmp(info->format, "safetensors") != 0) printf(", the file is the state dict");
    const clasp_st_tensor *m = clasp_st_find(f, "normalize.mean"),
                          *s = clasp_st_find(f, "normalize.std");
    if (info->prefix[0]) printf(", prefix '%s' removed from every name", info->prefix);
    if (info->prefix[0] && m) printf(" but normalize.mean and normalize.std");
    printf("\n");
    /* RobustBench's Sequential(normalize, model) wrapper. */
    if (m && s && m->dtype == CLASP_ST_F32 && s->dtype == CLASP_ST_F32 && m->numel == s->numel &&
        m->numel <= 4) {
        printf("input normalisation (RobustBench's wrapper): mean");
        for (size_t i = 0; i < m->numel; i++) printf(" %.6g", (double)((const float *)m->data)[i]);
        printf(", std");
        for (size_t i = 0; i < s->numel; i++) printf(" %.6g", (double)((const float *)s->data)[i]);
        printf("\n");
    }
}

/* Which preset the names fit, checked by building it (3x32x32 input,
 * the classes of its classifier) and matching every tensor. */
static void print_fit(const char *path, const clasp_st_file *f)
{
    char arch[128];
    const char *meta = clasp_st_meta(f, "clasp.arch");
    if (meta) {
        printf("architecture: %s (clasp metadata)\n", meta);
        return;
    }
    if (!clasp_ckpt_detect_arch(f, arch, sizeof arch)) {
        printf("architecture: the names fit no preset (first tensor: '%s'); give --arch or "
               "--zoo\n",
               f->n_tensors ? f->tensors[0].name : "none");
        return;
    }
    clasp_ctx *ctx = NULL;
    clasp_model *m = NULL;
    int in[3] = {3, 32, 32};
    clasp_status st = clasp_ctx_new(NULL, &ctx);
    if (st == CLASP_OK) st = clasp_model_load(ctx, path, arch, in, &m);
    if (st == CLASP_OK)
        printf("architecture: %s (every tensor fits; relu or swish cannot be told from the names: "
               "--zoo or --arch ...-swish says which)\n",
               arch);
    else printf("architecture: closest preset %s, but: %s\n", arch, clasp_last_error());
    clasp_model_free(m);
    clasp_ctx_free(ctx);
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: clasp inspect FILE [--names-only]\n"
                   "Lists the tensors of a model file (safetensors, or a PyTorch .pt/.pth/.bin\n"
                   "written by torch.save, read without running its pickle), the entry and\n"
                   "prefix that held the state dict, and the preset architecture the names fit.\n");
            return 0;
        } else if (!strcmp(argv[i], "--names-only")) quiet = 1;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "clasp inspect: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "clasp inspect: give a model file\n");
        return 2;
    }
    clasp_st_file f;
    clasp_ckpt_info info;
    if (clasp_ckpt_read(path, &f, &info) != CLASP_OK) return cli_fail("reading the model file");
    print_source(path, &info, &f);
    size_t numel = 0;
    for (size_t t = 0; t < f.n_tensors; t++) {
        const clasp_st_tensor *s = &f.tensors[t];
        char shape[128];
        shape_text(s, shape, sizeof shape);
        numel += s->numel;
        if (!quiet) printf("  %-48s %-4s %s\n", s->name, dtype_name(s->dtype), shape);
        else printf("  %s\n", s->name);
    }
    printf("%zu tensors, %zu values\n", f.n_tensors, numel);
    for (size_t k = 0; k < f.n_meta; k++)
        if (strcmp(f.meta_keys[k], "format") != 0)
            printf("metadata %s = %s\n", f.meta_keys[k], f.meta_values[k]);
    print_fit(path, &f);
    clasp_st_free(&f);
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: clasp convert IN OUT.safetensors\n"
                   "Writes the state dict of a model file (a PyTorch .pt/.pth/.bin or a\n"
                   "safetensors file) as safetensors: PyTorch's tensor names (less a\n"
                   "DataParallel 'module.' or torch.compile '_orig_mod.' prefix), float32,\n"
                   "int64 kept. Written atomically.\n");
            return 0;
        } else if (argv[i][0] == '-' || (in && out)) {
            fprintf(stderr, "clasp convert: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else if (!in) in = argv[i];
        else out = argv[i];
    }
    if (!in || !out) {
        fprintf(stderr, "clasp convert: usage: clasp convert IN OUT.safetensors\n");
        return 2;
    }
    clasp_st_file f;
    clasp_ckpt_info info;
    if (clasp_ckpt_read(in, &f, &info) != CLASP_OK) return cli_fail("reading the model file");
    print_source(in, &info, &f);
    clasp_status st = CLASP_OK;
    if (!clasp_st_meta(&f, "format")) st = clasp_st_set_meta(&f, "format", "pt");
    if (st == CLASP_OK) st = clasp_st_write(&f, out);
    size_t n = f.n_tensors;
    clasp_st_free(&f);
    if (st != CLASP_OK) return cli_fail("writing the safetensors file");
    printf("wrote %s (%zu tensors)\n", out, n);
    return 0;
}
