/* clasp train: standard training of the default CNN on an image data set,
 * with the test accuracy overall and per class. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/batch.h"
#include "clasp/eval.h"
#include "cli.h"
#include "clasp/tune.h"

typedef struct train_opts {
    int epochs, batch;
    double lr, momentum, weight_decay;
    uint64_t seed;
    const char *data, *dataset, *save, *arch;
    long train_limit;
} train_opts;

static void usage(void)
{
    fprintf(stderr,
            "usage: clasp train [--epochs N] [--batch N] [--lr X] [--momentum X] [--wd X]\n"
            "                   [--seed N] [--dataset NAME] [--data DIR]\n"
            "                   [--limit N] [--arch ARCH] [--save FILE.safetensors]\n"
            "  --arch ARCH     default (the default CNN), resnet18, preact-resnet18, wrn-D-W\n"
            "                  (presets; -wN sets a base width, e.g. preact-resnet18-w16) or a "
            "layer list\n");
    cli_print_dataset_option(stderr);
}

/* Clean accuracy per class of m on d, through the shared evaluation. */
static clasp_status evaluate(clasp_ctx *ctx, clasp_model *m, const clasp_dataset *d, int batch,
                             int64_t *count, int64_t *correct)
{
    clasp_batcher *b;
    CLASP_TRY(clasp_batcher_new(ctx, d, batch, &b));
    clasp_eval_result r = {0};
    clasp_status st = clasp_eval_run(m, b, NULL, &r);
    if (st == CLASP_OK) {
        memcpy(count, r.count, (size_t)d->num_classes * sizeof *count);
        memcpy(correct, r.clean_correct, (size_t)d->num_classes * sizeof *correct);
    }
    clasp_eval_result_free(&r);
    clasp_batcher_free(b);
    return st;
}

static int run(const train_opts *o)
{
    clasp_dataset train = {0}, test = {0};
    if (clasp_dataset_load(o->dataset, o->data, 1, &train) != CLASP_OK)
        return cli_fail("loading training data");
    if (clasp_dataset_load(o->dataset, o->data, 0, &test) != CLASP_OK) {
        clasp_dataset_free(&train);
        return cli_fail("loading test data");
    }
    if (o->train_limit > 0) clasp_dataset_truncate(&train, (size_t)o->train_limit);
    clasp_ctx *ctx = NULL;
    clasp_model *m = NULL;
    clasp_sgd *opt = NULL;
    clasp_batcher *b = NULL;
    int rc = 1;
    const char *what = "creating the OpenCL context";
    clasp_status st = clasp_ctx_new(NULL, &ctx);
    if (st == CLASP_OK) {
        what = "building the model";
        st = clasp_model_new_arch(ctx, o->arch ? o->arch : "default", train.c, train.h, train.w,
                                  train.num_classes, NULL, NULL, &m);
    }
    if (st == CLASP_OK) clasp_tune_ensure(ctx, m, o->batch, 60); /* first use of the device */
    if (st == CLASP_OK) st = clasp_model_init(m, o->seed);
    if (st == CLASP_OK)
        st = clasp_sgd_new(m, (float)o->lr, (float)o->momentum, (float)o->weight_decay, &opt);
    if (st == CLASP_OK) st = clasp_batcher_new(ctx, &train, o->batch, &b);
    if (st != CLASP_OK) goto done;
    fprintf(stderr,
            "device: %s\ntraining %zu images (%s), test %zu, %d epochs, batch %d, %zu parameters\n",
            clasp_ctx_device(ctx)->name, train.n, o->dataset, test.n, o->epochs, o->batch,
            clasp_model_param_count(m));
    int64_t count[CLASP_MAX_CLASSES], correct[CLASP_MAX_CLASSES];
    double t0 = clasp_now();
    what = "training";
    for (int e = 0; e < o->epochs && st == CLASP_OK; e++) {
        /* Cosine decay over all epochs: reaches good accuracy in few epochs. */
        size_t steps = clasp_batcher_count(b), done = 0;
        clasp_batcher_start(b, 1, o->seed, (uint64_t)e);
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, o->epochs);
        cli_progress p;
        cli_progress_start(&p, label, train.n);
        double loss_sum = 0;
        int loss_n = 0;
        for (size_t s = 0; st == CLASP_OK; s++) {
            clasp_tensor *x, *y;
            int n;
            st = clasp_batcher_next(b, &x, &y, &n, NULL);
            if (st != CLASP_OK || n == 0) break;
            clasp_sgd_set_lr(opt, (float)clasp_lr_cosine(o->lr, o->epochs, e, s, steps));
            float loss;
            /* Reading the loss waits for the device; do it now and then only. */
            int want = s % 25 == 0;
            st = clasp_train_step(m, opt, x, y, NULL, want ? &loss : NULL);
            if (st == CLASP_OK && want) loss_sum += loss, loss_n++;
            done += (size_t)n;
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f", loss_n ? loss_sum / loss_n : 0.0);
            cli_progress_update(&p, done, want ? extra : NULL);
        }
        if (st != CLASP_OK) break;
        cli_progress_end(&p);
        what = "evaluating";
        st = evaluate(ctx, m, &test, 256, count, correct);
        int64_t c = clasp_class_sum(correct, test.num_classes);
        int64_t t = clasp_class_sum(count, test.num_classes);
        if (st == CLASP_OK)
            fprintf(stderr, "epoch %d: mean loss %.4f, test accuracy %.2f%% (%.1f s elapsed)\n",
                    e + 1, loss_n ? loss_sum / loss_n : 0.0,
                    t ? 100.0 * (double)c / (double)t : 0.0, clasp_now() - t0);
        what = "training";
    }
    if (st != CLASP_OK) goto done;
    printf("test accuracy per class after %d epochs (%.1f s):\n", o->epochs, clasp_now() - t0);
    const char *cols[] = {"accuracy"};
    const int64_t *vals[] = {correct};
    cli_print_class_table(stdout, &test, 1, cols, vals, count);
    if (o->save) {
        what = "saving the checkpoint";
        st = clasp_model_save(m, NULL, NULL, 0, o->save);
        if (st == CLASP_OK) printf("saved %s\n", o->save);
    }
done:
    if (st != CLASP_OK) cli_fail(what);
    else rc = 0;
    clasp_batcher_free(b);
    clasp_sgd_free(opt);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    clasp_dataset_free(&train);
    clasp_dataset_free(&test);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {3, 128, 0.05, 0.9, 5e-4, 1, NULL, "fashion-mnist", NULL, NULL, 0};
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
