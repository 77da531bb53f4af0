/* clasp bench --loader-only: images/s of the image-folder data path alone
 * (read, decode, preprocess into batches by the stream's worker threads),
 * with 1 and 2 workers unless --workers says otherwise. A benchmark, not a
 * test: the numbers depend on the machine and what else runs on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: clasp bench --loader-only --data DIR [--dataset imagefolder|imagenet]\n"
               "                   [--preprocess NAME] [--samples N] [--batch N] [--workers N]\n"
               "                   [--train]\n"
               "  decodes and preprocesses the first N images (default 1000) of DIR (DIR/val\n"
               "  when present) in batches, with 1 and then 2 worker threads (or N), and\n"
               "  prints images/s; --train times RandomResizedCrop + flip instead\n");
}

int cli_bench_loader(int argc, char **argv)
{
    const char *dir = NULL, *dataset = "imagefolder", *prep = NULL;
    long samples = 1000;
    int batch = 32, workers = 0, train = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--loader-only")) continue;
        if (!strcmp(argv[i], "--train")) train = 1;
        else if ((v = cli_opt(argc, argv, &i, "--data"))) dir = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset"))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--preprocess"))) prep = v;
        else if ((v = cli_opt(argc, argv, &i, "--samples")))
            samples = cli_parse_long("--samples", v, 0, 100000000);
        else if ((v = cli_opt(argc, argv, &i, "--batch")))
            batch = (int)cli_parse_long("--batch", v, 1, 4096);
        else if ((v = cli_opt(argc, argv, &i, "--workers")))
            workers = (int)cli_parse_long("--workers", v, 1, 256);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!dir || !clasp_dataset_is_folder(dataset)) {
        usage(stderr);
        return 2;
    }
    char sub[4096];
    clasp_imagefolder *f = NULL;
    clasp_imagefolder_options o = {.imagenet = !strcmp(dataset, "imagenet"),
                                   .preprocess = prep,
                                   .limit = (size_t)samples};
    if (clasp_imagefolder_split_dir(dir, 0, sub, sizeof sub) != CLASP_OK ||
        clasp_imagefolder_open(sub, &o, &f) != CLASP_OK)
        return cli_fail("reading the image folder");
    const clasp_dataset *d = clasp_imagefolder_info(f);
    printf("loader: %zu images of %s, %dx%dx%d after %s, batch %d%s\n", d->n, sub, d->c, d->h, d->w,
           prep ? prep : "Res256Crop224", batch, train ? ", training crops" : "");
    int rc = 0;
    for (int wk = workers ? workers : 1; wk <= (workers ? workers : 2) && !rc; wk++) {
        clasp_stream *s = NULL;
        clasp_stream_options so = {.batch = batch, .workers = wk, .queue = 2, .train = train};
        if (clasp_stream_new(f, &so, &s) != CLASP_OK) {
            rc = cli_fail("starting the stream");
            break;
        }
        double t0 = clasp_now();
        size_t seen = 0;
        const float *x;
        const int32_t *y;
        int n;
        clasp_status st;
        while ((st = clasp_stream_next(s, &x, &y, &n, NULL)) == CLASP_OK && n) seen += (size_t)n;
        double dt = clasp_now() - t0;
        if (st != CLASP_OK) rc = cli_fail("decoding");
        else
            printf("  %d worker%s: %zu images in %.2f s, %.1f images/s\n", wk, wk > 1 ? "s" : "",
                   seen, dt, dt > 0 ? (double)seen / dt : 0.0);
        clasp_stream_free(s);
    }
    clasp_imagefolder_free(f);
    return rc;
}
