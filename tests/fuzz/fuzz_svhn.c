/* libFuzzer harness for the SVHN reader, clasp_svhn_load (MATLAB files
 * read with libmatio, after the reader's own checks of the version 5
 * layout).
 *
 * The whole input is test_32x32.mat. An accepted file must give whole
 * images in [0,1] and digit labels; a refused one a clasp error naming the
 * file, never a crash in the reader or in libmatio. */
#include <stdint.h>
#include <string.h>

#include "clasp/data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char mat[4096];
    if (!mat[0]) fuzz_path(mat, sizeof mat, "test_32x32.mat");
    fuzz_write(mat, data, size);

    clasp_dataset d;
    clasp_status s = clasp_svhn_load(fuzz_dir(), 0, &d);
    if (s != CLASP_OK) {
        fuzz_check(!d.x && !d.y && d.n == 0, "svhn: failed load left data in the dataset");
        fuzz_check_error(fuzz_dir());
        return 0;
    }
    fuzz_check(d.n > 0 && d.c == 3 && d.h == 32 && d.w == 32 && d.num_classes == 10,
               "svhn: implausible shape n=%zu c=%d h=%d w=%d", d.n, d.c, d.h, d.w);
    for (size_t i = 0; i < d.n * 3072; i++)
        fuzz_check(d.x[i] >= 0.0f && d.x[i] <= 1.0f, "svhn: pixel %zu is %g, outside [0,1]", i,
                   (double)d.x[i]);
    for (size_t i = 0; i < d.n; i++)
        fuzz_check(d.y[i] >= 0 && d.y[i] < 10, "svhn: label %zu is %d", i, (int)d.y[i]);
    for (int k = 0; k < 10; k++)
        fuzz_check(d.class_names[k][0] == '0' + k && !d.class_names[k][1],
                   "svhn: class %d is named \"%.*s\"", k, CLASP_CLASS_NAME_MAX, d.class_names[k]);
    clasp_dataset_free(&d);
    return 0;
}
