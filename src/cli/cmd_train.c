/* clasp train: standard training of one model on an image data set, with
 * the test accuracy overall and per class. The training itself is the
 * experiment runner's (clasp_experiment_train). */
#include <stdlib.h>
#include <string.h>

#include "clasp/experiment.h"
#include "cli.h"

typedef struct train_opts {
    int epochs, batch;
    double lr, momentum, weight_decay;
    uint64_t seed;
    const char *data, *dataset, *save, *arch, *activation;
    long train_limit;
    const char *preprocess;
    int workers;
} train_opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: clasp train [--epochs N] [--batch N] [--lr X] [--momentum X] [--wd X]\n"
            "                   [--seed N] [--dataset NAME] [--data DIR]\n"
            "                   [--limit N] [--arch ARCH] [--activation relu|swish]\n"
            "                   [--save FILE.safetensors]\n"
            "  --arch ARCH     default (the default CNN), resnet18, preact-resnet18, wrn-D-W,\n"
            "                  preact-resnet18-nobn, dm-wrn-D-W, dm-preact-resnet18 (presets;\n"
            "                  -wN sets a base width, e.g. preact-resnet18-w16) or a layer list\n"
            "  --activation A  relu (default) or swish, the -swish preset suffix\n"
            "  image folders (--dataset imagefolder or imagenet) train on DIR/train,\n"
            "  streamed with torchvision's RandomResizedCrop and RandomHorizontalFlip at the\n"
            "  size DIR/val (or DIR/test) is prepared to, which is the per-epoch test:\n"
            "  --preprocess P  Res256Crop224 (default), Crop288, Res224, BicubicRes256Crop224\n"
            "                  or none (every image of the first one's size)\n"
            "  --workers N     decoding threads per set (default 1)\n");
    cli_print_dataset_option(stderr);
}

static int run(const train_opts *o)
{
    char arch[256];
    if (cli_arch_activation("clasp train", o->arch ? o->arch : "default", o->activation, arch,
                            sizeof arch))
        return 2;
    clasp_dataset train = {0}, test = {0};
    if (o->save && cli_check_output_file("--save", o->save)) return 2;
    /* Image folders are streamed (their indexes here); the others held. */
    int images = clasp_dataset_is_folder(o->dataset);
    clasp_imagefolder *tf = NULL, *vf = NULL;
    if ((o->preprocess || o->workers) && !images) {
        fprintf(stderr, "clasp train: --preprocess and --workers are for image folders "
                        "(imagefolder, imagenet)\n");
        return 2;
    }
    if (images) {
        if (!o->data) {
            fprintf(stderr, "clasp train: --dataset %s needs --data DIR\n", o->dataset);
            return 2;
        }
        clasp_imagefolder_options fo = {.imagenet = !strcmp(o->dataset, "imagenet"),
                                        .preprocess = o->preprocess};
        if (clasp_imagefolder_open_splits(o->data, &fo, &tf, &vf) != CLASP_OK)
            return cli_fail("reading the image folders");
        if (o->train_limit > 0) clasp_imagefolder_truncate(tf, (size_t)o->train_limit);
        train = *clasp_imagefolder_info(tf); /* views */
        test = *clasp_imagefolder_info(vf);
    } else {
        if (clasp_dataset_load(o->dataset, o->data, 1, &train) != CLASP_OK)
            return cli_fail("loading training data");
        if (clasp_dataset_load(o->dataset, o->data, 0, &test) != CLASP_OK) {
            clasp_dataset_free(&train);
            return cli_fail("loading test data");
        }
        if (o->train_limit > 0) clasp_dataset_truncate(&train, (size_t)o->train_limit);
    }
    /* A plan of one model, standard training with a cosine schedule,
     * trained by the experiment runner's code with the test set as the
     * per-epoch validation. */
    clasp_plan_model pm;
    memset(&pm, 0, sizeof pm);
    snprintf(pm.name, sizeof pm.name, "standard");
    snprintf(pm.file, sizeof pm.file, "standard");
    clasp_plan p;
    memset(&p, 0, sizeof p);
    char source[] = "clasp train";
    p.source = source;
    snprintf(p.name, sizeof p.name, "train");
    p.seed = o->seed;
    snprintf(p.dataset, sizeof p.dataset, "%s", o->dataset);
    p.arch = arch;
    snprintf(p.arch_loc, sizeof p.arch_loc, "--arch");
    p.epochs = o->epochs, p.batch = o->batch;
    p.lr = o->lr, p.momentum = o->momentum, p.weight_decay = o->weight_decay;
    p.schedule = CLASP_LR_COSINE;
    p.n_models = 1, p.models = &pm;
    p.eval_batch = images ? 64 : 256;
    p.data_workers = o->workers;
    fprintf(stderr, "training %zu images (%s), test %zu, %d epochs, batch %d\n", train.n,
            o->dataset, test.n, o->epochs, o->batch);
    cli_run_ui ui;
    clasp_run_options opt;
    memset(&opt, 0, sizeof opt);
    cli_run_hooks(&ui, &opt.hooks);
    clasp_ctx_opts ctx_opts;
    clasp_ctx_opts_from_env(&ctx_opts);
    opt.ctx = &ctx_opts;
    clasp_model_report rep;
    clasp_status st =
        images ? clasp_experiment_train_folders(&p, 0, tf, vf, "test", o->save, &opt, &rep)
               : clasp_experiment_train(&p, 0, &train, &test, "test", o->save, &opt, &rep);
    cli_run_ui_end(&ui);
    int rc = 0;
    if (st != CLASP_OK) {
        rc = cli_fail("training");
    } else {
        const clasp_epoch_report *last = &rep.epochs[rep.n_epochs - 1];
        double secs = 0;
        for (int e = 0; e < rep.n_epochs; e++) secs += rep.epochs[e].seconds;
        printf("test accuracy per class after %d epochs (%.1f s):\n", o->epochs, secs);
        const char *cols[] = {"accuracy"};
        const int64_t *vals[] = {last->val.clean_correct};
        if (last->val.count) cli_print_class_table(stdout, &test, 1, cols, vals, last->val.count);
        if (o->save) printf("saved %s\n", o->save);
    }
    clasp_model_report_free(&rep);
    if (images) {
        clasp_imagefolder_free(tf);
        clasp_imagefolder_free(vf);
    } else {
        clasp_dataset_free(&train);
        clasp_dataset_free(&test);
    }
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {3,    128,  0.05, 0.9, 5e-4, 1, NULL, "fashion-mnist",
                    NULL, NULL, NULL, 0,   NULL, 0};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--epochs")))
            o.epochs = (int)cli_parse_long("--epochs", v, 1, 100000);
        else if ((v = cli_opt(argc, argv, &i, "--batch")))
            o.batch = (int)cli_parse_long("--batch", v, 1, 65536);
        else if ((v = cli_opt(argc, argv, &i, "--lr"))) o.lr = cli_parse_double("--lr", v, 0, 100);
        else if ((v = cli_opt(argc, argv, &i, "--momentum")))
            o.momentum = cli_parse_double("--momentum", v, 0, 1);
        else if ((v = cli_opt(argc, argv, &i, "--wd")))
            o.weight_decay = cli_parse_double("--wd", v, 0, 1);
        else if ((v = cli_opt(argc, argv, &i, "--seed")))
            o.seed = (uint64_t)cli_parse_long("--seed", v, 0, 0x7fffffffL);
        else if ((v = cli_opt(argc, argv, &i, "--data"))) o.data = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset"))) o.dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--limit")))
            o.train_limit = cli_parse_long("--limit", v, 1, 100000000);
        else if ((v = cli_opt(argc, argv, &i, "--save"))) o.save = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch"))) o.arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--activation"))) o.activation = v;
        else if ((v = cli_opt(argc, argv, &i, "--preprocess"))) o.preprocess = v;
        else if ((v = cli_opt(argc, argv, &i, "--workers")))
            o.workers = (int)cli_parse_long("--workers", v, 1, 256);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "clasp train: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (!clasp_dataset_known(o.dataset)) {
        fprintf(stderr, "clasp train: unknown --dataset '%s'\n", o.dataset);
        usage();
        return 2;
    }
    return run(&o);
}
