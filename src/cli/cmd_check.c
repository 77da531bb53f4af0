/* clasp check: validate an experiment file and show what `clasp run` would
 * do, without any OpenCL work. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clasp/experiment.h"
#include "cli.h"

static char groups_line[700]; /* what check_groups found, for the summary */

/* data.groups against the data set's classes (the run's check, made
 * before anything trains); 0 when it maps (or is not given). */
static int check_groups(const clasp_plan *p, const clasp_dataset *d)
{
    clasp_class_groups g;
    if (clasp_plan_groups(p, d->num_classes, d->class_names, &g) != CLASP_OK) {
        fprintf(stderr, "clasp: %s\n", clasp_last_error());
        return 1;
    }
    if (g.n_groups)
        snprintf(groups_line, sizeof groups_line, "class groups for the report: %d from %s%s",
                 g.n_groups, p->groups,
                 g.n_unlisted ? " (the last: the classes the file does not list)" : "");
    clasp_class_groups_free(&g);
    return 0;
}

static void print_plugin(const clasp_plan_plugin *p)
{
    printf("%s(%s)", p->name, p->params_text);
}

static void print_defense(const clasp_plan_defense *d)
{
    print_plugin(&d->plugin);
    if (d->inner) {
        printf(" wrapping ");
        print_defense(d->inner);
    }
    if (d->attack) {
        printf(", attack ");
        print_plugin(d->attack);
    }
}

static void print_passes(const char *what, double v)
{
    if (v >= 1e9) printf("  %-12s %8.2f G example passes\n", what, v / 1e9);
    else printf("  %-12s %8.2f M example passes\n", what, v / 1e6);
}

/* Sizes after the split and the subsets; the data files are read (on the
 * host only) so that a wrong path is caught here too. */
static int data_sizes(const clasp_plan *p, size_t *train, size_t *val, size_t *test, char *excl,
                      size_t excl_size)
{
    clasp_dataset d = {0};
    const char *at = *p->data_loc ? p->data_loc : p->source;
    if (clasp_plan_streamed(p)) {
        /* What the run streams (the indexes: no image is decoded). */
        clasp_imagefolder *f = NULL, *tf = NULL, *vf = NULL;
        if (clasp_plan_open_folders(p, &f, &tf, &vf) != CLASP_OK) {
            fprintf(stderr, "clasp: %s: data: %s\n", at, clasp_last_error());
            return 1;
        }
        *train = tf ? clasp_imagefolder_info(tf)->n : 0;
        *val = vf ? clasp_imagefolder_info(vf)->n : 0;
        *test = clasp_imagefolder_info(f)->n;
        int bad = check_groups(p, clasp_imagefolder_info(f));
        clasp_imagefolder_free(f);
        clasp_imagefolder_free(tf);
        clasp_imagefolder_free(vf);
        return bad;
    }
    if (clasp_dataset_load(p->dataset, p->data_path, 1, &d) != CLASP_OK) {
        fprintf(stderr, "clasp: %s: data: %s\n", at, clasp_last_error());
        return 1;
    }
    size_t n = d.n;
    if (check_groups(p, &d)) {
        clasp_dataset_free(&d);
        return 1;
    }
    if (p->val_size >= n) {
        clasp_dataset_free(&d);
        fprintf(stderr,
                "clasp: %s: data.val_size %zu leaves no training examples (the training set has "
                "%zu)\n",
                at, p->val_size, n);
        return 1;
    }
    *val = p->val_size;
    *train = n - p->val_size;
    if (p->n_exclude) {
        /* The runner's order: split, then leave the classes out of both. */
        int mask[CLASP_MAX_CLASSES];
        clasp_dataset tr = {0}, va = {0};
        if (clasp_plan_exclude_mask(p, d.num_classes, d.class_names, mask) != CLASP_OK ||
            clasp_dataset_split(&d, p->val_size, p->seed, &tr, &va) != CLASP_OK) {
            fprintf(stderr, "clasp: %s\n", clasp_last_error());
            clasp_dataset_free(&d);
            return 1;
        }
        clasp_dataset_exclude(&tr, mask);
        clasp_dataset_exclude(&va, mask);
        *train = tr.n, *val = va.n;
        size_t len = (size_t)snprintf(excl, excl_size,
                                      "excluded from training and validation (still evaluated):");
        for (int k = 0, first = 1; k < tr.num_classes && len < excl_size; k++)
            if (mask[k]) {
                len += (size_t)snprintf(excl + len, excl_size - len, "%s %d (%s)", first ? "" : ",",
                                        k, tr.class_names[k]);
                first = 0;
            }
        clasp_dataset_free(&tr), clasp_dataset_free(&va);
    }
    clasp_dataset_free(&d);
    if (p->train_size && p->train_size < *train) *train = p->train_size;
    if (clasp_dataset_load(p->dataset, p->data_path, 0, &d) != CLASP_OK) {
        fprintf(stderr, "clasp: %s: data: %s\n", at, clasp_last_error());
        return 1;
    }
    *test = p->test_size && p->test_size < d.n ? p->test_size : d.n;
    clasp_dataset_free(&d);
    return 0;
}

/* experiment.device against this machine's devices (as `run` chooses):
 * a name no device has was only found by `run`, which blamed CLASP_DEVICE
 * and named no line. 0 when it is there (or not given). */
static int check_device(const clasp_plan *p)
{
    if (!p->device) return 0;
    clasp_device_info *list = NULL;
    size_t n = 0, index = 0;
    clasp_status st = clasp_device_list(&list, &n);
    if (st == CLASP_OK) st = clasp_device_choose(p->device, list, n, &index);
    free(list);
    if (st == CLASP_OK) return 0;
    fprintf(stderr, "clasp: %s: experiment.device '%s': %s\n", p->device_loc, p->device,
            clasp_last_error());
    return 1;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds of one example pass (forward and input gradient, an attack
 * step) of the first model's architecture on the run's device, measured at
 * the evaluation batch size: one warm-up call (kernel builds), then the
 * mean of three. 0 when it cannot be measured (the message says why). */
static double measure_pass(const clasp_plan *p)
{
    clasp_dataset d = {0};
    clasp_ctx *ctx = NULL;
    clasp_model *m = NULL;
    clasp_tensor *x = NULL, *y = NULL, *dx = NULL;
    double secs = 0;
    const clasp_plan_model *pm = p->n_models ? &p->models[0] : NULL;
    const char *arch = pm && pm->arch[0] ? pm->arch : p->arch;
    const float *mean = pm && pm->normalize ? pm->norm_mean : p->normalize ? p->norm_mean : NULL;
    const float *stdv = pm && pm->normalize ? pm->norm_std : p->norm_std;
    int b = p->eval_batch;
    /* The test set's shape and classes: an image folder's index only. */
    clasp_imagefolder *f = NULL;
    clasp_status st = clasp_plan_streamed(p) ? clasp_plan_open_folders(p, &f, NULL, NULL)
                                             : clasp_dataset_load(p->dataset, p->data_path, 0, &d);
    if (st == CLASP_OK && f) {
        d = *clasp_imagefolder_info(f);
        d.n = 0, d.x = NULL, d.y = NULL, d.class_names = NULL; /* a view: not freed */
    }
    if (st == CLASP_OK) st = clasp_ctx_new(p->device, &ctx);
    if (st == CLASP_OK)
        st = clasp_model_new_arch(ctx, arch, d.c, d.h, d.w, d.num_classes, mean, stdv, &m);
    if (st == CLASP_OK) st = clasp_model_init(m, 1);
    if (st == CLASP_OK) st = clasp_tensor_new4(ctx, b, d.c, d.h, d.w, &x);
    if (st == CLASP_OK) st = clasp_tensor_new4(ctx, b, d.c, d.h, d.w, &dx);
    if (st == CLASP_OK) st = clasp_tensor_new(ctx, CLASP_I32, 1, (int[]){b}, &y);
    if (st == CLASP_OK) st = clasp_tensor_fill(x, 0.5f);
    if (st == CLASP_OK) {
        int32_t *lab = calloc((size_t)b, sizeof *lab);
        st = lab ? clasp_tensor_write(y, lab) : clasp_error(CLASP_ERR_NOMEM, "out of memory");
        free(lab);
    }
    if (st == CLASP_OK) clasp_model_set_train(m, 0);
    double t0 = 0;
    for (int i = 0; st == CLASP_OK && i < 4; i++) {
        if (i == 1) t0 = now_seconds();
        st = clasp_model_input_grad(m, x, y, 1.0f, dx, NULL, NULL);
        if (st == CLASP_OK) st = clasp_ctx_finish(ctx);
    }
    if (st == CLASP_OK) secs = (now_seconds() - t0) / 3.0 / (double)b;
    else fprintf(stderr, "clasp check: cannot time a pass: %s\n", clasp_last_error());
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(dx);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    clasp_dataset_free(&d);
    clasp_imagefolder_free(f);
    return secs;
}

static void print_time(const char *what, double passes, double per_pass)
{
    double s = passes * per_pass;
    if (s >= 3600) printf("  %-12s %8.1f h\n", what, s / 3600);
    else if (s >= 60) printf("  %-12s %8.1f min\n", what, s / 60);
    else printf("  %-12s %8.1f s\n", what, s);
}

int cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    int show_yaml = 0, timed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--yaml")) show_yaml = 1;
        else if (!strcmp(argv[i], "--time")) timed = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: clasp check EXP.yaml [--yaml] [--time]\n"
                   "  validates the file and the plugin parameters, prints what would run;\n"
                   "  --yaml also prints the resolved configuration; --time measures one\n"
                   "  example pass of the first model on the device and estimates the time\n");
            return 0;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr,
                    "clasp check: unexpected argument '%s'\nusage: clasp check EXP.yaml [--yaml]\n",
                    argv[i]);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        fprintf(stderr, "usage: clasp check EXP.yaml [--yaml]\n");
        return 2;
    }
    clasp_registry *reg = NULL;
    clasp_plan *p = NULL;
    if (clasp_registry_open(&reg) != CLASP_OK) return cli_fail("loading plugins");
    if (clasp_plan_load(reg, file, &p) != CLASP_OK) {
        fprintf(stderr, "clasp: %s\n", clasp_last_error());
        clasp_registry_free(reg);
        return 1;
    }
    size_t train = 0, val = 0, test = 0;
    char excl[2048] = "";
    int rc = check_device(p);
    if (rc == 0) rc = data_sizes(p, &train, &val, &test, excl, sizeof excl);
    if (rc == 0) {
        static const char *const sched[] = {"constant", "cosine", "step"};
        size_t val_eval = p->val_eval_size && p->val_eval_size < val ? p->val_eval_size : val;
        printf("%s: experiment '%s', seed %llu%s%s\n", file, p->name, (unsigned long long)p->seed,
               p->device ? ", device " : "", p->device ? p->device : "");
        printf("data: %s (%s): %zu training, %zu validation (%zu evaluated per epoch), %zu test\n",
               p->dataset, p->data_path, train, val, val_eval, test);
        if (excl[0]) printf("  %s\n", excl);
        if (groups_line[0]) printf("  %s\n", groups_line);
        printf("model: %s\n", p->arch);
        if (p->no_train) printf("training: none (every model is a checkpoint)\n");
        else
            printf("training: %d epochs, batch %d, sgd lr %g momentum %g weight_decay %g, %s "
                   "schedule\n",
                   p->epochs, p->batch, p->lr, p->momentum, p->weight_decay, sched[p->schedule]);
        printf("models (%d):\n", p->n_models);
        for (int i = 0; i < p->n_models; i++) {
            printf("  %-28s ", p->models[i].name);
            const clasp_plan_model *pm = &p->models[i];
            if (pm->checkpoint[0] && pm->epochs) printf("fine-tuned %d epochs: ", pm->epochs);
            else if (pm->checkpoint[0] && pm->defense) printf("fitted post hoc: ");
            else if (pm->checkpoint[0]) printf("evaluated as it is");
            if (pm->defense) print_defense(pm->defense);
            else if (!pm->checkpoint[0]) printf("standard training");
            else if (pm->epochs) printf("standard training");
            if (pm->zoo[0]) printf(" [zoo %s %s: %s]", pm->zoo, pm->threat, pm->arch);
            else if (pm->arch[0]) printf(" [arch %s]", pm->arch);
            if (pm->checkpoint[0]) printf(" [checkpoint %s]", pm->checkpoint);
            printf("\n");
        }
        printf("attacks (%d), on %zu test examples, batch %d:\n", p->n_attacks, test,
               p->eval_batch);
        if (p->n_l2_eps) {
            printf("  unbounded attacks are also reported at L2 budgets");
            for (int i = 0; i < p->n_l2_eps; i++) printf("%s %g", i ? "," : "", p->l2_eps[i]);
            printf("\n");
        }
        for (int i = 0; i < p->n_attacks; i++) {
            const clasp_plan_attack *a = &p->attacks[i];
            printf("  %-28s ", a->label);
            if (!a->n_members) print_plugin(&a->plugin);
            else printf("ensemble, a cascade of %d:", a->n_members);
            for (int j = 0; j < a->n_members; j++) {
                printf("\n    %d. ", j + 1);
                print_plugin(&a->members[j]);
            }
            printf("\n");
        }
        clasp_plan_work w;
        clasp_plan_estimate(p, train, val, test, &w);
        printf("estimated work (forward+backward passes of one example; an attack costs what its "
               "plugin declares,\n"
               "an ensemble the sum of its members on every example, an upper bound):\n");
        for (int i = 0; i < p->n_attacks; i++) {
            const clasp_plan_attack *a = &p->attacks[i];
            for (int j = -1; j < a->n_members; j++) {
                const clasp_plan_plugin *pl = j < 0 ? &a->plugin : &a->members[j];
                if (pl->desc && !clasp_plan_attack_cost_known(pl))
                    printf("  (attack %s declares no cost: counted as one pass)\n", pl->name);
            }
        }
        print_passes("training", w.train);
        print_passes("validation", w.validate);
        print_passes("evaluation", w.evaluate);
        print_passes("total", w.train + w.validate + w.evaluate);
        double per = timed ? measure_pass(p) : 0;
        if (per > 0) {
            printf("estimated time on this device (one forward+input-gradient pass measured at "
                   "batch %d: %.3g ms an example;\na training pass costs about 1.5 of them):\n",
                   p->eval_batch, per * 1e3);
            print_time("training", 1.5 * w.train, per);
            print_time("validation", w.validate, per);
            print_time("evaluation", w.evaluate, per);
            print_time("total", 1.5 * w.train + w.validate + w.evaluate, per);
        }
        printf("output: %s (report.json, report.md, per_class.csv, charts/, one .safetensors per "
               "model)\n",
               p->output);
        if (show_yaml) {
            char *y = NULL;
            if (clasp_plan_to_yaml(p, 1, &y) == CLASP_OK) printf("\n%s", y);
            free(y);
        }
        printf("ok\n");
    }
    clasp_plan_free(p);
    clasp_registry_free(reg);
    return rc;
}
