/* libFuzzer harness for the safetensors reader, clasp_st_read.
 *
 * The input is the whole file. A file the reader accepts must also hold
 * what the header promised, and must survive a write and a second read
 * unchanged: the writer is what makes every checkpoint clasp saves. */
#include <stdint.h>
#include <string.h>

#include "clasp/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tensors(const clasp_st_file *f)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        const clasp_st_tensor *t = &f->tensors[i];
        fuzz_check(t->name && t->data, "safetensors: tensor %zu lacks a name or data", i);
        fuzz_check(t->ndim >= 0 && t->ndim <= CLASP_ST_MAX_DIMS, "safetensors: \"%s\": ndim %d",
                   t->name, t->ndim);
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            fuzz_check(t->shape[k] >= 0, "safetensors: \"%s\": negative extent", t->name);
            numel *= (size_t)t->shape[k];
        }
        fuzz_check(numel == t->numel, "safetensors: \"%s\": numel %zu, shape says %zu", t->name,
                   t->numel, numel);
        fuzz_check(clasp_st_find(f, t->name) == t,
                   "safetensors: two tensors are found by the name \"%s\"", t->name);
    }
    for (size_t i = 0; i < f->n_meta; i++)
        fuzz_check(clasp_st_meta(f, f->meta_keys[i]) == f->meta_values[i],
                   "safetensors: two metadata entries are found by the key \"%s\"",
                   f->meta_keys[i]);
}

static void check_same(const clasp_st_file *a, const clasp_st_file *b)
{
    fuzz_check(a->n_tensors == b->n_tensors && a->n_meta == b->n_meta,
               "safetensors: rewritten file has %zu tensors and %zu metadata keys, not %zu and %zu",
               b->n_tensors, b->n_meta, a->n_tensors, a->n_meta);
    for (size_t i = 0; i < a->n_tensors; i++) {
        const clasp_st_tensor *t = &a->tensors[i], *u = clasp_st_find(b, t->name);
        fuzz_check(u && u->dtype == t->dtype && u->ndim == t->ndim && u->numel == t->numel &&
                       !memcmp(u->shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim) &&
                       !memcmp(u->data, t->data, t->numel * 4),
                   "safetensors: tensor \"%s\" changed when written and read back", t->name);
    }
    for (size_t i = 0; i < a->n_meta; i++) {
        const char *v = clasp_st_meta(b, a->meta_keys[i]);
        fuzz_check(v && !strcmp(v, a->meta_values[i]),
                   "safetensors: metadata \"%s\" changed when written and read back",
                   a->meta_keys[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[4096], out[4096];
    if (!in[0]) {
        fuzz_path(in, sizeof in, "input.safetensors");
        fuzz_path(out, sizeof out, "rewritten.safetensors");
    }
    fuzz_write(in, data, size);

    clasp_st_file f;
    if (clasp_st_read(in, &f) != CLASP_OK) {
        fuzz_check(f.n_tensors == 0 && !f.tensors && f.n_meta == 0,
                   "safetensors: failed read left entries in the file object");
        fuzz_check_error(in);
        return 0;
    }
    check_tensors(&f);
    clasp_st_file g;
    if (clasp_st_write(&f, out) != CLASP_OK)
        fuzz_check(0, "safetensors: cannot write back what was read: %s", clasp_last_error());
    if (clasp_st_read(out, &g) != CLASP_OK)
        fuzz_check(0, "safetensors: cannot read back what was written: %s", clasp_last_error());
    check_same(&f, &g);
    clasp_st_free(&g);
    clasp_st_free(&f);
    return 0;
}
