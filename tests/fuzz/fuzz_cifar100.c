/* libFuzzer harness for the CIFAR-100 reader, through clasp_dataset_load
 * with the names "cifar100" (fine labels) and "cifar100-coarse".
 *
 * The reader takes a folder, so one input becomes the files of a data
 * folder: byte 0 picks the variant (bit 0: coarse labels, bit 1: the
 * training file train.bin instead of test.bin); bytes 1-2 (little-endian)
 * give the length of the class-name file (fine_label_names.txt, or
 * coarse_label_names.txt for the coarse variant), which follows them (0: no
 * such file, the standard names apply); the rest is the record file. */
#include <stdint.h>
#include <string.h>

#include "clasp/data.h"
#include "fuzz_util.h"

#define PIXELS 3072
#define RECORD (2 + PIXELS)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char train[4096], test[4096], fine[4096], coarse_names[4096];
    if (!train[0]) {
        fuzz_path(train, sizeof train, "train.bin");
        fuzz_path(test, sizeof test, "test.bin");
        fuzz_path(fine, sizeof fine, "fine_label_names.txt");
        fuzz_path(coarse_names, sizeof coarse_names, "coarse_label_names.txt");
    }
    int mode = size ? data[0] : 0, coarse = mode & 1, is_train = mode >> 1 & 1;
    if (size) data++, size--;
    size_t nn = 0;
    if (size >= 2) {
        nn = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
    }
    if (nn > size) nn = size;
    /* Only the files this variant reads exist, so the folder is a function
     * of the input alone. */
    const char *names = coarse ? coarse_names : fine;
    fuzz_unlink(coarse ? fine : coarse_names);
    if (nn) fuzz_write(names, data, nn);
    else fuzz_unlink(names);
    const uint8_t *recs = data + nn;
    size_t nrecs = size - nn;
    fuzz_unlink(is_train ? test : train);
    fuzz_write(is_train ? train : test, recs, nrecs);

    clasp_dataset d;
    clasp_status s =
        clasp_dataset_load(coarse ? "cifar100-coarse" : "cifar100", fuzz_dir(), is_train, &d);
    if (s != CLASP_OK) {
        fuzz_check(!d.x && !d.y && d.n == 0, "cifar100: failed load left data in the dataset");
        fuzz_check_error(fuzz_dir());
        return 0;
    }
    int k = coarse ? 20 : 100;
    fuzz_check(d.n > 0 && d.n * RECORD == nrecs && d.c == 3 && d.h == 32 && d.w == 32 &&
                   d.num_classes == k,
               "cifar100: implausible shape n=%zu c=%d h=%d w=%d classes=%d from %zu bytes", d.n,
               d.c, d.h, d.w, d.num_classes, nrecs);
    /* Every accepted record decodes exactly: both labels in range, the
     * chosen one as y, the pixels as they are (already CHW). */
    for (size_t i = 0; i < d.n; i++) {
        const uint8_t *rec = recs + i * RECORD;
        fuzz_check(rec[0] < 20 && rec[1] < 100, "cifar100: record %zu has labels %u/%u", i, rec[0],
                   rec[1]);
        fuzz_check(d.y[i] == rec[coarse ? 0 : 1], "cifar100: label %zu is %d, the file says %u", i,
                   (int)d.y[i], rec[coarse ? 0 : 1]);
        for (size_t p = 0; p < PIXELS; p++)
            fuzz_check(d.x[i * PIXELS + p] == (float)rec[2 + p] / 255.0f,
                       "cifar100: pixel %zu of image %zu is %g, the file says %u", p, i,
                       (double)d.x[i * PIXELS + p], rec[2 + p]);
    }
    for (int c = 0; c < k; c++) {
        size_t len = strnlen(d.class_names[c], CLASP_CLASS_NAME_MAX);
        fuzz_check(len > 0 && len < CLASP_CLASS_NAME_MAX,
                   "cifar100: class name %d is empty or unterminated", c);
    }
    clasp_dataset_free(&d);
    return 0;
}
