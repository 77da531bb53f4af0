/* libFuzzer harness for the PyTorch checkpoint reader, clasp_torch_read:
 * the zip container (libzip, data.pkl, storage entries) and the legacy
 * stream (magic, sys info, pickles, storage records), on a file written
 * from the input.
 *
 * A failed read leaves the file object empty and names the file; a read
 * that succeeds returns F32 or I64 tensors whose shapes match their sizes
 * and whose names are unique. */
#include <stdint.h>
#include <string.h>

#include "clasp/torchfile.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[4096];
    if (!in[0]) fuzz_path(in, sizeof in, "input.pt");
    fuzz_write(in, data, size);

    clasp_st_file f;
    clasp_ckpt_info info;
    if (clasp_torch_read(in, &f, &info) != CLASP_OK) {
        fuzz_check(f.n_tensors == 0 && !f.tensors, "torchzip: failed read left tensors");
        fuzz_check_error(in);
        return 0;
    }
    fuzz_check(!strcmp(info.format, "pytorch-zip") || !strcmp(info.format, "pytorch-legacy"),
               "torchzip: format \"%s\"", info.format);
    for (size_t i = 0; i < f.n_tensors; i++) {
        const clasp_st_tensor *t = &f.tensors[i];
        fuzz_check(t->name && t->data && (t->dtype == CLASP_ST_F32 || t->dtype == CLASP_ST_I64),
                   "torchzip: tensor %zu lacks a name or data, or has dtype %d", i, (int)t->dtype);
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) numel *= (size_t)t->shape[k];
        fuzz_check(t->ndim >= 0 && t->ndim <= CLASP_ST_MAX_DIMS && numel == t->numel,
                   "torchzip: \"%s\": ndim %d, numel %zu, shape says %zu", t->name, t->ndim,
                   t->numel, numel);
        fuzz_check(clasp_st_find(&f, t->name) == t, "torchzip: name \"%s\" twice", t->name);
        /* Touch every element: ASan catches a short buffer. */
        volatile uint8_t sum = 0;
        const uint8_t *p = t->data;
        size_t bytes = t->numel * (t->dtype == CLASP_ST_F32 ? 4 : 8);
        for (size_t b = 0; b < bytes; b++) sum ^= p[b];
        (void)sum;
    }
    clasp_st_free(&f);
    return 0;
}
