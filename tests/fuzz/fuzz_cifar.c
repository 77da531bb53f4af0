/* libFuzzer harness for the CIFAR-10 reader, clasp_cifar10_load.
 *
 * The reader takes a folder, so one input becomes the files of a test
 * folder: bytes 0-1 (little-endian) give the length of batches.meta.txt,
 * which follows them (0: no such file, the standard class names apply);
 * the rest is test_batch.bin. */
#include <stdint.h>
#include <string.h>

#include "clasp/data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char batch[4096], meta[4096];
    if (!batch[0]) {
        fuzz_path(batch, sizeof batch, "test_batch.bin");
        fuzz_path(meta, sizeof meta, "batches.meta.txt");
    }
    size_t nm = 0;
    if (size >= 2) {
        nm = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
    }
    if (nm > size) nm = size;
    if (nm) fuzz_write(meta, data, nm);
    else fuzz_unlink(meta);
    fuzz_write(batch, data + nm, size - nm);

    clasp_dataset d;
    clasp_status s = clasp_cifar10_load(fuzz_dir(), 0, &d);
    if (s != CLASP_OK) {
        fuzz_check(!d.x && !d.y && d.n == 0, "cifar: failed load left data in the dataset");
        fuzz_check_error(fuzz_dir());
        return 0;
    }
    fuzz_check(d.n > 0 && d.c == 3 && d.h == 32 && d.w == 32 && d.num_classes == 10,
               "cifar: implausible shape n=%zu c=%d h=%d w=%d", d.n, d.c, d.h, d.w);
    for (size_t i = 0; i < d.n * 3072; i++)
        fuzz_check(d.x[i] >= 0.0f && d.x[i] <= 1.0f, "cifar: pixel %zu is %g, outside [0,1]", i,
                   (double)d.x[i]);
    for (size_t i = 0; i < d.n; i++)
        fuzz_check(d.y[i] >= 0 && d.y[i] < 10, "cifar: label %zu is %d", i, (int)d.y[i]);
    for (int k = 0; k < 10; k++) {
        size_t len = strnlen(d.class_names[k], CLASP_CLASS_NAME_MAX);
        fuzz_check(len > 0 && len < CLASP_CLASS_NAME_MAX,
                   "cifar: class name %d is empty or unterminated", k);
    }
    clasp_dataset_free(&d);
    return 0;
}
