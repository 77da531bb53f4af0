/* clasp bench: images/s of a model (the default CNN, a preset such as
 * resnet18, or a layer list) for inference, standard training, PGD-10
 * adversarial training and the PGD-10 attack alone, on the chosen device,
 * and the peak device memory. A benchmark, not a test: the numbers depend
 * on the machine. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clasp/tune.h"

typedef struct bench {
    clasp_ctx *ctx;
    clasp_model *m;
    clasp_sgd *opt;
    clasp_tensor *x, *y, *xadv, *grad, *pred;
    clasp_rng rng;
    int batch;
} bench;

/* Inference as evaluation runs it (and as PyTorch's bench does, under
 * model.eval()): eval mode, BatchNorm normalising with its running
 * statistics, which it neither computes from the batch nor updates. */
static clasp_status step_inference(bench *b)
{
    clasp_model_set_train(b->m, 0);
    clasp_status st = clasp_model_predict(b->m, b->x, b->pred);
    clasp_model_set_train(b->m, 1);
    return st;
}

static clasp_status step_train(bench *b)
{
    return clasp_train_step(b->m, b->opt, b->x, b->y, NULL, NULL);
}

/* A random start in the eps-ball around x and 10 signed-gradient steps in
 * eval mode, into b->xadv. */
static clasp_status pgd10(bench *b, float eps, float alpha)
{
    CLASP_TRY(clasp_rng_uniform(&b->rng, b->xadv, -eps, eps));
    CLASP_TRY(clasp_axpy(b->xadv, 1.0f, b->x));
    CLASP_TRY(clasp_clamp(b->xadv, 0.0f, 1.0f));
    clasp_model_set_train(b->m, 0);
    for (int s = 0; s < 10; s++) {
        CLASP_TRY(clasp_model_input_grad(b->m, b->xadv, b->y, 1.0f, b->grad, NULL, NULL));
        CLASP_TRY(clasp_pgd_step(b->xadv, b->grad, b->x, alpha, eps, 0.0f, 1.0f));
    }
    clasp_model_set_train(b->m, 1);
    return CLASP_OK;
}

/* Madry et al.'s PGD adversarial training step: PGD-10, then one SGD step
 * on the result. */
static clasp_status step_pgd10(bench *b)
{
    CLASP_TRY(pgd10(b, 0.1f, 0.025f));
    return clasp_train_step(b->m, b->opt, b->xadv, b->y, NULL, NULL);
}

/* The attack alone, as evaluation runs it (CIFAR's eps 8/255). */
static clasp_status step_pgd10_attack(bench *b)
{
    return pgd10(b, 8.0f / 255.0f, 2.0f / 255.0f);
}

/* Runs `step` until `seconds` have passed (at least min_iters times) after
 * `warmup` untimed runs; returns images per second. */
static clasp_status measure(bench *b, clasp_status (*step)(bench *), int warmup, int min_iters,
                            double seconds, double *ips)
{
    for (int i = 0; i < warmup; i++) CLASP_TRY(step(b));
    CLASP_TRY(clasp_ctx_finish(b->ctx));
    if (clasp_profile_enabled(b->ctx)) clasp_profile_reset(b->ctx);
    double t0 = clasp_now(), t;
    int iters = 0;
    do {
        CLASP_TRY(step(b));
        iters++;
        /* Finishing each iteration keeps the clock honest without adding
         * a host read inside the step. */
        CLASP_TRY(clasp_ctx_finish(b->ctx));
        t = clasp_now() - t0;
    } while (iters < min_iters || t < seconds);
    *ips = (double)iters * b->batch / t;
    return CLASP_OK;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: clasp bench [--arch ARCH] [--activation relu|swish] [--input CxHxW] [--classes K]\n"
        "                   [--batch N] [--seconds S] [--only "
        "inference|train|pgd10-at|pgd10-attack]\n"
        "  --arch ARCH     default (the default CNN, on 1x28x28), resnet18, preact-resnet18,\n"
        "                  preact-resnet18-nobn, dm-wrn-D-W, dm-preact-resnet18,\n"
        "                  wrn-D-W (presets, on 3x32x32; -wN sets a base width), tv-resnet50 and\n"
        "                  the other torchvision ResNets (on 3x224x224) or a layer list\n"
        "  --activation A  relu (default) or swish, the -swish preset suffix\n"
        "  --input CxHxW   input shape (default: by architecture, as above)\n"
        "  --loader-only   time the image-folder data path instead (clasp bench --loader-only\n"
        "                  --help)\n");
}

int cmd_bench(int argc, char **argv)
{
    int batch = 128, classes = 10, c = 0, h = 0, w = 0;
    double seconds = 5;
    const char *only = NULL, *arch = "default", *activation = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--loader-only")) return cli_bench_loader(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--batch")))
            batch = (int)cli_parse_long("--batch", v, 1, 4096);
        else if ((v = cli_opt(argc, argv, &i, "--seconds")))
            seconds = cli_parse_double("--seconds", v, 0, 3600);
        else if ((v = cli_opt(argc, argv, &i, "--only"))) only = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch"))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--activation"))) activation = v;
        else if ((v = cli_opt(argc, argv, &i, "--classes")))
            classes = (int)cli_parse_long("--classes", v, 2, 1000);
        else if ((v = cli_opt(argc, argv, &i, "--input"))) {
            char end;
            if (sscanf(v, "%dx%dx%d%c", &c, &h, &w, &end) != 3 || c <= 0 || h <= 0 || w <= 0) {
                fprintf(stderr, "clasp bench: --input expects CxHxW such as 3x32x32, got '%s'\n",
                        v);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (only && strcmp(only, "inference") && strcmp(only, "train") && strcmp(only, "pgd10-at") &&
        strcmp(only, "pgd10-attack")) {
        usage(stderr);
        return 2;
    }
    char arch_buf[256];
    if (cli_arch_activation("clasp bench", arch, activation, arch_buf, sizeof arch_buf)) return 2;
    arch = arch_buf;
    if (!c) {
        int preset = clasp_model_is_preset(arch);
        c = preset ? 3 : 1, h = w = preset ? (!strncmp(arch, "tv-", 3) ? 224 : 32) : 28;
    }
    bench b = {0};
    b.batch = batch;
    b.rng = clasp_rng_make(1, 99);
    clasp_status st = clasp_ctx_new(NULL, &b.ctx);
    if (st != CLASP_OK) return cli_fail("creating the OpenCL context");
    st = clasp_model_new_arch(b.ctx, arch, c, h, w, classes, NULL, NULL, &b.m);
    if (st == CLASP_OK) clasp_tune_ensure(b.ctx, b.m, batch, 60); /* first use of the device */
    if (st == CLASP_OK) st = clasp_model_init(b.m, 1);
    if (st == CLASP_OK) st = clasp_sgd_new(b.m, 0.01f, 0.9f, 5e-4f, &b.opt);
    if (st == CLASP_OK) st = clasp_tensor_new4(b.ctx, batch, c, h, w, &b.x);
    if (st == CLASP_OK) st = clasp_tensor_new4(b.ctx, batch, c, h, w, &b.xadv);
    if (st == CLASP_OK) st = clasp_tensor_new4(b.ctx, batch, c, h, w, &b.grad);
    if (st == CLASP_OK) st = clasp_tensor_new(b.ctx, CLASP_I32, 1, &batch, &b.y);
    if (st == CLASP_OK) st = clasp_tensor_new(b.ctx, CLASP_I32, 1, &batch, &b.pred);
    if (st == CLASP_OK) st = clasp_rng_uniform(&b.rng, b.x, 0.0f, 1.0f);
    if (st == CLASP_OK) {
        int32_t *labels = malloc((size_t)batch * sizeof *labels);
        if (!labels) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (int i = 0; labels && i < batch; i++) labels[i] = i % classes;
        if (labels) st = clasp_tensor_write(b.y, labels);
        free(labels);
    }
    if (st == CLASP_OK) {
        char name[200];
        clasp_model_arch(b.m, name, sizeof name);
        printf("device     %s\n", clasp_ctx_device(b.ctx)->name);
        printf("model      %s (%zu parameters) on %dx%dx%d, batch %d\n",
               strcmp(arch, "default") ? name : "default CNN", clasp_model_param_count(b.m), c, h,
               w, batch);
        fflush(stdout);
    }
    static const struct {
        const char *name;
        clasp_status (*step)(bench *);
        int warmup, min_iters;
    } work[] = {
        {"inference", step_inference, 3, 10},
        {"train", step_train, 2, 5},
        {"pgd10-at", step_pgd10, 1, 3},
        {"pgd10-attack", step_pgd10_attack, 1, 3},
    };
    for (size_t w = 0; st == CLASP_OK && w < sizeof work / sizeof work[0]; w++) {
        if (only && strcmp(only, work[w].name)) continue;
        double ips = 0;
        st = measure(&b, work[w].step, work[w].warmup, work[w].min_iters, seconds, &ips);
        if (st == CLASP_OK) printf("%-12s images/s  %.1f\n", work[w].name, ips);
        fflush(stdout);
        if (st == CLASP_OK && clasp_profile_enabled(b.ctx)) clasp_profile_print(b.ctx, stderr);
    }
    if (st == CLASP_OK) {
        size_t peak = 0;
        clasp_ctx_device_bytes(b.ctx, &peak);
        printf("%-12s MiB       %.1f\n", "peak-memory", (double)peak / (1024.0 * 1024.0));
    }
    int rc = st == CLASP_OK ? 0 : cli_fail("benchmark");
    clasp_tensor_free(b.x);
    clasp_tensor_free(b.xadv);
    clasp_tensor_free(b.grad);
    clasp_tensor_free(b.y);
    clasp_tensor_free(b.pred);
    clasp_sgd_free(b.opt);
    clasp_model_free(b.m);
    clasp_ctx_free(b.ctx);
    return rc;
}
