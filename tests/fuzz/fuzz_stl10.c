/* libFuzzer harness for the STL-10 reader, clasp_stl10_load.
 *
 * The reader takes a folder, so one input becomes the files of a test
 * folder: bytes 0-1 (little-endian) give the length of class_names.txt
 * (0: no such file, the standard names apply), bytes 2-3 the length of
 * test_y.bin; the two files follow in that order, and the rest is
 * test_X.bin. */
#include <stdint.h>
#include <string.h>

#include "clasp/data.h"
#include "fuzz_util.h"

#define SIDE 96
#define PLANE (SIDE * SIDE)
#define IMAGE (3 * PLANE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a 2-byte little-endian length off the front of the input (0 when
 * fewer than 2 bytes are left). */
static size_t take(const uint8_t **data, size_t *size)
{
    size_t n = 0;
    if (*size >= 2) {
        n = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
        *data += 2;
        *size -= 2;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char xpath[4096], ypath[4096], names[4096];
    if (!xpath[0]) {
        fuzz_path(xpath, sizeof xpath, "test_X.bin");
        fuzz_path(ypath, sizeof ypath, "test_y.bin");
        fuzz_path(names, sizeof names, "class_names.txt");
    }
    size_t nn = take(&data, &size), ny = take(&data, &size);
    if (nn > size) nn = size;
    if (nn) fuzz_write(names, data, nn);
    else fuzz_unlink(names);
    data += nn;
    size -= nn;
    if (ny > size) ny = size;
    const uint8_t *labels = data, *images = data + ny;
    size_t nx = size - ny;
    fuzz_write(ypath, labels, ny);
    fuzz_write(xpath, images, nx);

    clasp_dataset d;
    clasp_status s = clasp_stl10_load(fuzz_dir(), 0, &d);
    if (s != CLASP_OK) {
        fuzz_check(!d.x && !d.y && d.n == 0, "stl10: failed load left data in the dataset");
        fuzz_check_error(fuzz_dir());
        return 0;
    }
    fuzz_check(d.n > 0 && d.n == ny && d.n * IMAGE == nx && d.c == 3 && d.h == SIDE &&
                   d.w == SIDE && d.num_classes == 10,
               "stl10: implausible shape n=%zu c=%d h=%d w=%d from %zu label and %zu image bytes",
               d.n, d.c, d.h, d.w, ny, nx);
    /* Labels 1..10 become 0..9; each column-major plane becomes row-major. */
    for (size_t i = 0; i < d.n; i++) {
        fuzz_check(labels[i] >= 1 && labels[i] <= 10 && d.y[i] == labels[i] - 1,
                   "stl10: label %zu is %d, the file says %u", i, (int)d.y[i], labels[i]);
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < SIDE; r++)
                for (int c = 0; c < SIDE; c++) {
                    float v = d.x[i * IMAGE + (size_t)(ch * PLANE + r * SIDE + c)];
                    uint8_t b = images[i * IMAGE + (size_t)(ch * PLANE + c * SIDE + r)];
                    fuzz_check(v == (float)b / 255.0f,
                               "stl10: image %zu channel %d pixel (%d,%d) is %g, the file says %u",
                               i, ch, r, c, (double)v, b);
                }
    }
    for (int k = 0; k < 10; k++) {
        size_t len = strnlen(d.class_names[k], CLASP_CLASS_NAME_MAX);
        fuzz_check(len > 0 && len < CLASP_CLASS_NAME_MAX,
                   "stl10: class name %d is empty or unterminated", k);
    }
    clasp_dataset_free(&d);
    return 0;
}
