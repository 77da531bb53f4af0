/* libFuzzer harness for the IDX reader, clasp_idx_load.
 *
 * The reader takes an image file and a label file by path, so one input
 * becomes two files: bytes 0-1 (little-endian) give the length of the label
 * file, which follows them; the rest is the image file. Either part may be
 * gzip data (the reader detects it by content). */
#include <stdint.h>
#include <string.h>

#include "clasp/data.h"
#include "fuzz_util.h"

#define CLASSES 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char images[4096], labels[4096];
    if (!images[0]) {
        fuzz_path(images, sizeof images, "images-idx3-ubyte");
        fuzz_path(labels, sizeof labels, "labels-idx1-ubyte");
    }
    size_t nl = 0;
    if (size >= 2) {
        nl = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
    }
    if (nl > size) nl = size;
    fuzz_write(labels, data, nl);
    fuzz_write(images, data + nl, size - nl);

    clasp_dataset d;
    clasp_status s = clasp_idx_load(images, labels, CLASSES, &d);
    if (s != CLASP_OK) {
        /* A refusal leaves nothing behind and says which file is wrong. */
        fuzz_check(!d.x && !d.y && d.n == 0, "idx: failed load left data in the dataset");
        fuzz_check_error(fuzz_dir());
        return 0;
    }
    fuzz_check(d.n > 0 && d.c == 1 && d.h > 0 && d.w > 0 && d.num_classes == CLASSES,
               "idx: implausible shape n=%zu c=%d h=%d w=%d", d.n, d.c, d.h, d.w);
    size_t pixels = d.n * (size_t)d.h * (size_t)d.w;
    for (size_t i = 0; i < pixels; i++)
        fuzz_check(d.x[i] >= 0.0f && d.x[i] <= 1.0f, "idx: pixel %zu is %g, outside [0,1]", i,
                   (double)d.x[i]);
    for (size_t i = 0; i < d.n; i++)
        fuzz_check(d.y[i] >= 0 && d.y[i] < CLASSES, "idx: label %zu is %d", i, (int)d.y[i]);
    clasp_dataset_free(&d);
    return 0;
}
