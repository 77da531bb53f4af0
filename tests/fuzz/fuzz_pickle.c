/* libFuzzer harness for the data-only pickle interpreter (src/nn/pickle.c)
 * on raw bytes, without a container around them.
 *
 * The input is run as a sequence of pickles, as a legacy torch.save stream
 * holds them, until one fails or the bytes end. A pickle that runs must
 * consume bytes inside the buffer and leave one value; one that fails must
 * say so with a message naming the input. */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "nn/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkl_ctx c;
    pkl_init(&c, "fuzz.pkl");
    size_t at = 0;
    while (at < size) {
        pkl_value *v = NULL;
        size_t used = 0;
        if (pkl_run(&c, data + at, size - at, at, &v, &used) != CLASP_OK) {
            fuzz_check_error("fuzz.pkl");
            break;
        }
        fuzz_check(v != NULL && used > 0 && used <= size - at,
                   "pickle: ran with %zu bytes of %zu and value %p", used, size - at, (void *)v);
        if (v->kind == PKL_TENSOR)
            fuzz_check(v->u.tensor.ndim >= 0 && v->u.tensor.ndim <= CLASP_ST_MAX_DIMS &&
                           v->u.tensor.storage < c.n_storages,
                       "pickle: tensor with ndim %d, storage %zu of %zu", v->u.tensor.ndim,
                       v->u.tensor.storage, c.n_storages);
        at += used;
    }
    pkl_free(&c);
    return 0;
}
