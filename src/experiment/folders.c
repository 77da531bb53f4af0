/* The image folders a plan reads: the test split, and when something
 * trains the training split with its validation images held out. */
#include <stdio.h>
#include <string.h>

#include "clasp/experiment.h"

int clasp_plan_trains(const clasp_plan *p)
{
    for (int i = 0; i < p->n_models; i++)
        if (p->models[i].epochs > 0 || p->models[i].defense) return 1;
    return 0;
}

clasp_status clasp_plan_open_folders(const clasp_plan *p, clasp_imagefolder **test,
                                     clasp_imagefolder **train, clasp_imagefolder **val)
{
    *test = NULL;
    if (train) *train = NULL;
    if (val) *val = NULL;
    clasp_imagefolder_options fo = {
        .imagenet = !strcmp(p->dataset, "imagenet"),
        .subset = strcmp(p->data_subset, "all") != 0 ? p->data_subset : NULL,
        .preprocess = p->data_preprocess,
        .skip_bad = p->data_skip_bad,
        .limit = p->test_size,
    };
    if (!train || !val || !clasp_plan_trains(p)) {
        char dir[4096];
        CLASP_TRY(clasp_imagefolder_split_dir(p->data_path, 0, dir, sizeof dir));
        return clasp_imagefolder_open(dir, &fo, test);
    }
    /* DIR/train whole, then val_size of its images held out and
     * train_size kept. */
    clasp_imagefolder *all = NULL;
    clasp_status st = clasp_imagefolder_open_splits(p->data_path, &fo, &all, test);
    const char *tdir = st == CLASP_OK ? clasp_imagefolder_dir(all) : "";
    if (st == CLASP_OK && p->val_size >= clasp_imagefolder_info(all)->n)
        st = clasp_error(CLASP_ERR_CONFIG,
                         "%s: data.val_size %zu leaves no training images (the folder has %zu)",
                         tdir, p->val_size, clasp_imagefolder_info(all)->n);
    if (st == CLASP_OK) st = clasp_imagefolder_split(all, p->val_size, p->seed, train, val);
    clasp_imagefolder_free(all);
    if (st == CLASP_OK) clasp_imagefolder_truncate(*train, p->train_size);
    if (st != CLASP_OK) {
        clasp_imagefolder_free(*test);
        *test = NULL;
    }
    return st;
}
