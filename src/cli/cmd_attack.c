/* clasp attack: runs one attack plugin against a checkpoint on the first N
 * test examples and prints clean and robust accuracy, overall and per
 * class; optionally saves the adversarial examples. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clasp/ensemble.h"
#include "clasp/eval.h"
#include "clasp/groups.h"
#include "clasp/registry.h"
#include "clasp/safetensors.h"
#include "clasp/zoo.h"
#include "cli.h"

#define MAX_SETS 64

typedef struct attack_opts {
    const char *model, *attack, *data, *dataset, *save_adv, *arch, *zoo, *threat;
    const char *subset, *preprocess, *groups;
    int dataset_given, workers, skip_bad;
    const char *sets[MAX_SETS];
    int n_sets;
    long samples;
    int batch;
    uint64_t seed;
} attack_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: clasp attack --model FILE --attack NAME[,NAME...] [--set "
               "KEY=VALUE]...\n"
               "                    [--arch ARCH | --zoo NAME [--threat Linf|L2]]\n"
               "                    [--samples N] [--batch N] [--seed N]\n"
               "                    [--dataset NAME] [--data DIR]\n"
               "                    [--save-adv OUT.safetensors]\n"
               "                    [--subset robustbench-5000] [--preprocess NAME]\n"
               "                    [--workers N] [--skip-bad-images] [--groups FILE]\n");
    cli_print_dataset_option(f);
    fprintf(f,
            "  --arch ARCH   the architecture of a checkpoint without clasp metadata (a PyTorch\n"
            "                state dict): resnet18, resnet50, preact-resnet18, wrn-D-W,\n"
            "                tv-resnet50 (torchvision's), ... (-wN for a base width; README\n"
            "                lists them) or a layer list; default: told by the tensor names, else "
            "the\n"
            "                default CNN; one that differs from a clasp checkpoint's own is an\n"
            "                error\n"
            "  --model F     a model file: safetensors, or a PyTorch .pt/.pth/.bin (torch.save;\n"
            "                read as data, its pickle never run)\n"
            "  --zoo NAME    a RobustBench entry (clasp zoo lists them): its architecture,\n"
            "                activation, normalisation, classes, data set and (ImageNet)\n"
            "                preprocessing; --dataset and --threat choose where a name exists\n"
            "                for several\n"
            "  --attack A    a plugin; a list a,b,c runs them as a cascade (each on the examples\n"
            "                the earlier ones failed to flip); autoattack is the preset\n"
            "                apgd,apgd-t,fab,square (--set version=fast: apgd,apgd-t)\n"
            "  --samples N   attack the first N test examples (default 1000; 0 = all)\n"
            "  --set K=V     an attack parameter; `clasp plugins NAME` lists them; with a list,\n"
            "                it goes to every member that has it\n"
            "  --save-adv F  write x_adv, labels, clean_pred and adv_pred to F\n"
            "  --groups F    also print clean and robust accuracy per class group: F has one\n"
            "                line CLASS<TAB>GROUP (or CLASS,GROUP) per class, CLASS a class\n"
            "                name, a WordNet id (imagenet) or an index; # starts a comment;\n"
            "                classes left out form the group (unlisted) (README: The report)\n"
            "  image folders (--dataset imagefolder or imagenet; DIR/val or DIR/test when\n"
            "  present, else DIR itself) are streamed: decoded by worker threads ahead of\n"
            "  the device, a few batches in memory:\n"
            "  --subset S    robustbench-5000: RobustBench's 5000 ImageNet evaluation images\n"
            "  --preprocess P  Res256Crop224 (default, or the zoo entry's), Crop288, Res224,\n"
            "                BicubicRes256Crop224 or none, as RobustBench names them\n"
            "  --workers N   decoding threads (default 1, for a 2-core machine whose other\n"
            "                core runs the device)\n"
            "  --skip-bad-images  leave out (and count) images that cannot be decoded\n"
            "                instead of stopping at the first\n");
}

/* The adversarial examples of the whole run, kept on the host for
 * --save-adv (filled batch by batch by the evaluation callback). */
typedef struct adv_store {
    size_t per;
    float *x;
    int32_t *y, *clean, *adv;
} adv_store;

static clasp_status keep_batch(void *user, size_t first, const clasp_tensor *x,
                               const clasp_tensor *y, const clasp_tensor *x_adv,
                               const clasp_tensor *clean_pred, const clasp_tensor *adv_pred)
{
    adv_store *s = user;
    (void)x;
    CLASP_TRY(clasp_tensor_read(x_adv, s->x + first * s->per));
    CLASP_TRY(clasp_tensor_read(y, s->y + first));
    CLASP_TRY(clasp_tensor_read(clean_pred, s->clean + first));
    return clasp_tensor_read(adv_pred, s->adv + first);
}

typedef struct run_ctx {
    cli_progress bar;
    adv_store *store;
} run_ctx;

static void on_progress(void *user, size_t done, size_t total)
{
    run_ctx *rc = user;
    /* The last batch is shown by cli_progress_end. */
    if (done < total) cli_progress_update(&rc->bar, done, NULL);
}

static clasp_status on_batch(void *user, size_t first, const clasp_tensor *x, const clasp_tensor *y,
                             const clasp_tensor *x_adv, const clasp_tensor *clean_pred,
                             const clasp_tensor *adv_pred)
{
    run_ctx *rc = user;
    return keep_batch(rc->store, first, x, y, x_adv, clean_pred, adv_pred);
}

static clasp_status save_adv(const attack_opts *o, const clasp_dataset *d, const adv_store *s,
                             const char *params)
{
    clasp_st_file f;
    clasp_st_init(&f);
    int64_t n = (int64_t)d->n;
    int64_t xs[4] = {n, d->c, d->h, d->w}, ys[1] = {n};
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    clasp_status st = clasp_st_add(&f, "x_adv", CLASP_ST_F32, 4, xs, s->x);
    if (st == CLASP_OK) st = clasp_st_add(&f, "labels", CLASP_ST_I32, 1, ys, s->y);
    if (st == CLASP_OK) st = clasp_st_add(&f, "clean_pred", CLASP_ST_I32, 1, ys, s->clean);
    if (st == CLASP_OK) st = clasp_st_add(&f, "adv_pred", CLASP_ST_I32, 1, ys, s->adv);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "attack", o->attack);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "params", params);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "model", o->model);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "dataset", o->dataset);
    if (st == CLASP_OK) st = clasp_st_set_meta(&f, "seed", seed);
    int built = st == CLASP_OK;
    if (built) st = clasp_st_write(&f, o->save_adv);
    if (st != CLASP_OK && built) {
        /* The attack's work is not thrown away: a file beside the target
         * (its folder was writable when the run began). */
        char msg[1024], keep[4200];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        snprintf(keep, sizeof keep, "%s.unsaved.%ld", o->save_adv, (long)getpid());
        if (clasp_st_write(&f, keep) == CLASP_OK)
            st = clasp_error(st, "%s; the result is kept in %s", msg, keep);
        else st = clasp_error(st, "%s", msg);
    }
    clasp_st_free(&f);
    return st;
}

/* A layer list in its canonical text, or the text itself (a preset). */
static void canonical_arch(const char *arch, char *buf, size_t size)
{
    clasp_layer_spec *ls = NULL;
    int n = 0;
    if (!clasp_model_is_preset(arch) && clasp_arch_parse(arch, &ls, &n) == CLASP_OK)
        clasp_arch_format(ls, n, buf, size);
    else snprintf(buf, size, "%s", arch);
    free(ls);
    clasp_error_clear();
}

/* --arch is for checkpoints without an architecture of their own: one
 * that is no architecture, or that contradicts the checkpoint's, was
 * ignored before and the checkpoint's model ran. 0 when it may be used. */
static int check_arch(const attack_opts *o)
{
    clasp_layer_spec *ls = NULL;
    int n = 0;
    if (strcmp(o->arch, "default") && !clasp_model_is_preset(o->arch) &&
        clasp_arch_parse(o->arch, &ls, &n) != CLASP_OK) {
        fprintf(stderr, "clasp attack: --arch '%s' is not an architecture: %s\n", o->arch,
                clasp_last_error());
        return 1;
    }
    free(ls);
    char own[4096], a[4096], b[4096];
    if (clasp_checkpoint_meta(o->model, "clasp.arch", own, sizeof own) != CLASP_OK) {
        clasp_error_clear(); /* none (or unreadable: loading the model says so) */
        return 0;
    }
    canonical_arch(own, a, sizeof a);
    canonical_arch(o->arch, b, sizeof b);
    if (!strcmp(a, b)) return 0;
    fprintf(stderr,
            "clasp attack: --arch '%s' contradicts the architecture %s carries ('%s'); leave "
            "--arch out for a clasp checkpoint\n",
            o->arch, o->model, own);
    return 1;
}

/* The default CNN's architecture, for checkpoints (e.g. from PyTorch) that
 * carry no architecture of their own. */
static void default_arch(int num_classes, char *buf, size_t size)
{
    snprintf(buf, size,
             "conv5x5-32p2,relu,maxpool2,conv5x5-64p2,relu,maxpool2,flatten,fc1024,relu,fc%d",
             num_classes);
}

/* Unbounded attacks: the median L2 distance of each class's successes
 * (res->l2_success is grouped by class, ascending). */
static void print_l2(const clasp_dataset *d, const clasp_eval_result *res)
{
    printf("unbounded attack: median L2 distance of the examples it flipped, per class:\n");
    const float *v = res->l2_success;
    for (int k = 0; k < res->per_class.num_classes; k++) {
        int64_t n = res->attack_success[k];
        if (!cli_class_listed(res->per_class.num_classes, res->per_class.count[k])) continue;
        if (n > 0)
            printf("  %-16s %8.3f  (%lld flipped)\n", d->class_names[k],
                   n % 2 ? (double)v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + (double)v[n / 2]),
                   (long long)n);
        else printf("  %-16s        -  (none flipped)\n", d->class_names[k]);
        v += n;
    }
}

/* Clean and robust accuracy per group of --groups, each the sum of its
 * classes' examples. */
static void print_groups(const clasp_class_groups *g, const clasp_eval_result *res)
{
    const clasp_class_counts *pc = &res->per_class;
    printf("per class group (%s):\n  %-24s %7s %6s %10s %10s\n", g->source, "group", "classes", "n",
           "clean", "robust");
    for (int gi = 0; gi < g->n_groups; gi++) {
        int64_t n = 0, clean = 0, robust = 0;
        int classes = 0;
        for (int c = 0; c < pc->num_classes; c++)
            if (g->group_of[c] == gi) {
                classes++;
                n += pc->count[c], clean += pc->clean_correct[c], robust += pc->robust_correct[c];
            }
        printf("  %-24s %7d %6lld %9.2f%% %9.2f%%\n", g->names[gi], classes, (long long)n,
               n ? 100.0 * (double)clean / (double)n : 0.0,
               n ? 100.0 * (double)robust / (double)n : 0.0);
    }
}

static int run(const attack_opts *o)
{
    clasp_registry *reg = NULL;
    clasp_attack_instance *atk = NULL;
    clasp_ensemble ens = {0};
    int cascade = strchr(o->attack, ',') || !strcmp(o->attack, CLASP_AUTOATTACK);
    clasp_dataset test = {0};
    clasp_imagefolder *folder = NULL; /* streamed test set; `test` is then its index */
    clasp_stream *stream = NULL;
    clasp_ctx *ctx = NULL;
    clasp_model *m = NULL;
    clasp_batcher *b = NULL;
    clasp_eval_result res = {0};
    adv_store store = {0};
    clasp_class_groups groups = {0};
    int rc = 1;
    const char *what = "loading plugins";
    const char *keys[MAX_SETS], *vals[MAX_SETS], *where[MAX_SETS];
    char keybuf[MAX_SETS][64];

    clasp_status st = clasp_registry_open(&reg);
    /* Parameters first: a typo should not wait for the data to load. */
    for (int i = 0; st == CLASP_OK && i < o->n_sets; i++) {
        const char *eq = strchr(o->sets[i], '=');
        size_t kl = eq ? (size_t)(eq - o->sets[i]) : 0;
        if (!eq || kl == 0 || kl >= sizeof keybuf[i]) {
            fprintf(stderr, "clasp attack: --set expects KEY=VALUE, got '%s'\n", o->sets[i]);
            clasp_registry_free(reg);
            return 2;
        }
        memcpy(keybuf[i], o->sets[i], kl);
        keybuf[i][kl] = '\0';
        keys[i] = keybuf[i], vals[i] = eq + 1, where[i] = "--set";
    }
    if (st == CLASP_OK) {
        what = "setting up the attack";
        if (cascade)
            st = clasp_ensemble_from_spec(reg, o->attack, keys, vals, where, o->n_sets, &ens);
        else st = clasp_attack_new(reg, o->attack, keys, vals, where, o->n_sets, &atk);
        if (st == CLASP_ERR_NOT_FOUND || st == CLASP_ERR_CONFIG) {
            fprintf(stderr, "clasp attack: %s\n", clasp_last_error());
            clasp_registry_free(reg);
            return 2;
        }
    }
    if (st == CLASP_OK && ((o->arch && check_arch(o)) ||
                           (o->save_adv && cli_check_output_file("--save-adv", o->save_adv)))) {
        clasp_attack_free(atk);
        clasp_ensemble_free(&ens);
        clasp_registry_free(reg);
        return 2;
    }
    /* A bad --groups file, too, stops before the data and the model load
     * (its classes are checked once the data set's names are known). */
    if (st == CLASP_OK && o->groups && clasp_class_groups_read(o->groups, &groups) != CLASP_OK) {
        fprintf(stderr, "clasp attack: --groups: %s\n", clasp_last_error());
        clasp_attack_free(atk);
        clasp_ensemble_free(&ens);
        clasp_registry_free(reg);
        return 2;
    }
    const clasp_zoo_entry *zoo = NULL;
    if (st == CLASP_OK && o->zoo) {
        what = "finding the zoo entry";
        st = clasp_zoo_find(o->zoo, o->dataset_given ? o->dataset : NULL, o->threat, &zoo);
        if (st == CLASP_OK && !zoo->arch)
            st = clasp_error(CLASP_ERR_CONFIG, "zoo entry %s (%s %s) is not supported: %s",
                             zoo->name, zoo->dataset, zoo->threat,
                             zoo->why_not ? zoo->why_not : "unknown architecture");
        if (st != CLASP_OK) {
            fprintf(stderr, "clasp attack: %s\n", clasp_last_error());
            clasp_class_groups_free(&groups);
            clasp_attack_free(atk);
            clasp_ensemble_free(&ens);
            clasp_registry_free(reg);
            return 2;
        }
    }
    /* The zoo entry's data set unless one was given. */
    attack_opts resolved = *o;
    if (zoo && !o->dataset_given) resolved.dataset = zoo->dataset;
    /* ... and its preprocessing (RobustBench's name) unless one was given. */
    if (zoo && !o->preprocess && zoo->preprocessing) resolved.preprocess = zoo->preprocessing;
    o = &resolved;
    const char *dataset = o->dataset;
    if (st == CLASP_OK) {
        what = "loading test data";
        int images = clasp_dataset_is_folder(dataset);
        if (images) {
            char dir[4096];
            clasp_imagefolder_options fo = {.imagenet = !strcmp(dataset, "imagenet"),
                                            .subset = o->subset,
                                            .preprocess = o->preprocess,
                                            .skip_bad = o->skip_bad,
                                            .limit = o->samples > 0 ? (size_t)o->samples : 0};
            st = o->data
                     ? clasp_imagefolder_split_dir(o->data, 0, dir, sizeof dir)
                     : clasp_error(CLASP_ERR_INVALID, "data set '%s' needs --data DIR", dataset);
            if (st == CLASP_OK) st = clasp_imagefolder_open(dir, &fo, &folder);
            if (st == CLASP_OK) test = *clasp_imagefolder_info(folder); /* a view */
        } else if (o->subset || o->preprocess || o->skip_bad) {
            st = clasp_error(CLASP_ERR_INVALID, "--subset, --preprocess and --skip-bad-images "
                                                "are for image folders (imagefolder, imagenet)");
        } else {
            st = clasp_dataset_load(dataset, o->data, 0, &test);
        }
    }
    if (st != CLASP_OK) goto done;
    if (!folder && o->samples > 0) clasp_dataset_truncate(&test, (size_t)o->samples);
    if (o->groups && clasp_class_groups_resolve(&groups, dataset, test.num_classes,
                                                test.class_names) != CLASP_OK) {
        fprintf(stderr, "clasp attack: --groups: %s\n", clasp_last_error());
        rc = 2;
        goto done;
    }

    what = "creating the OpenCL context";
    st = clasp_ctx_new(NULL, &ctx);
    if (st == CLASP_OK) {
        what = "loading the model";
        char arch[160];
        default_arch(test.num_classes, arch, sizeof arch);
        clasp_ckpt_info info;
        memset(&info, 0, sizeof info);
        if (zoo) {
            st = clasp_model_new_arch(ctx, zoo->arch, test.c, test.h, test.w, zoo->num_classes,
                                      zoo->has_normalize ? zoo->mean : NULL, zoo->std, &m);
            if (st == CLASP_OK)
                st = clasp_model_load_weights(m, o->model, zoo->ignore_tensors, &info);
        } else {
            st = clasp_model_load_info(ctx, o->model, o->arch ? o->arch : arch,
                                       (int[]){test.c, test.h, test.w}, &info, &m);
        }
        if (st == CLASP_OK) {
            char a[200];
            clasp_model_arch(m, a, sizeof a);
            fprintf(stderr, "model: %s (%s%s%s%s%s%s), %s%s%s\n", o->model, info.format,
                    info.entry[0] ? ", state dict under '" : "", info.entry,
                    info.entry[0] ? "'" : "", info.prefix[0] ? ", removed the prefix " : "",
                    info.prefix, zoo ? "zoo entry " : "architecture ", zoo ? zoo->name : a,
                    zoo ? "" : "");
            if (zoo)
                fprintf(stderr, "zoo: %s, %s %s, %d classes, architecture %s%s%s%s\n", zoo->name,
                        zoo->dataset, zoo->threat, zoo->num_classes, zoo->arch,
                        zoo->has_normalize ? ", normalised by the entry's mean/std" : "",
                        o->preprocess ? ", preprocessing " : "",
                        o->preprocess ? o->preprocess : "");
        }
    }
    if (st != CLASP_OK) goto done;
    int c, h, w;
    clasp_model_input_shape(m, &c, &h, &w);
    if (c != test.c || h != test.h || w != test.w ||
        clasp_model_num_classes(m) != test.num_classes) {
        st = clasp_error(CLASP_ERR_CONFIG,
                         "%s takes %dx%dx%d inputs and %d classes, but %s has %dx%dx%d images and "
                         "%d "
                         "classes (use --dataset)",
                         o->model, c, h, w, clasp_model_num_classes(m), o->dataset, test.c, test.h,
                         test.w, test.num_classes);
        goto done;
    }
    what = "preparing batches";
    if (folder) {
        clasp_stream_options so = {.batch = o->batch, .workers = o->workers, .queue = 2};
        st = clasp_stream_new(folder, &so, &stream);
        if (st == CLASP_OK)
            st =
                clasp_batcher_new_stream(ctx, stream, clasp_imagefolder_info(folder), o->batch, &b);
    } else {
        st = clasp_batcher_new(ctx, &test, o->batch, &b);
    }
    if (st != CLASP_OK) goto done;
    if (o->save_adv) {
        store.per = (size_t)test.c * (size_t)test.h * (size_t)test.w;
        store.x = malloc(test.n * store.per * sizeof(float));
        store.y = malloc(test.n * sizeof(int32_t));
        store.clean = malloc(test.n * sizeof(int32_t));
        store.adv = malloc(test.n * sizeof(int32_t));
        if (!store.x || !store.y || !store.clean || !store.adv) {
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory for %zu adversarial images", test.n);
            goto done;
        }
    }

    char params[512] = "";
    if (atk) clasp_params_format(clasp_attack_params(atk), params, sizeof params);
    for (int j = 0; j < ens.n; j++) {
        char mp[400];
        size_t len = strlen(params);
        clasp_params_format(clasp_attack_params(ens.members[j]), mp, sizeof mp);
        snprintf(params + len, sizeof params - len, "%s%s: %s", j ? "; " : "", ens.labels[j], mp);
    }
    fprintf(stderr, "device: %s\nattack: %s (%s) on %zu %s test images, batch %d, seed %llu\n",
            clasp_ctx_device(ctx)->name, o->attack, params, test.n, o->dataset, o->batch,
            (unsigned long long)o->seed);
    run_ctx rctx = {.store = &store};
    cli_progress_start(&rctx.bar, o->attack, test.n);
    clasp_eval_options opt = {
        .attack = atk,
        .members = ens.members,
        .n_members = ens.n,
        .seed = o->seed,
        .progress = on_progress,
        .on_batch = o->save_adv ? on_batch : NULL,
        .user = &rctx,
        .total = test.n,
        /* An unbounded attack (no eps budget, e.g. cw) is read by its
         * distances: measure them. */
        .l2 = !ens.n && !clasp_plugin_is_linf(clasp_attack_desc(atk)),
    };
    what = "attacking";
    st = clasp_eval_run(m, b, &opt, &res);
    if (st != CLASP_OK) goto done;
    cli_progress_end(&rctx.bar);

    int64_t clean = clasp_counts_clean(&res.per_class);
    int64_t robust = clasp_counts_robust(&res.per_class);
    int64_t success = clasp_class_sum(res.attack_success, res.per_class.num_classes);
    printf("attack %s (%s) on %lld examples of %s\n", o->attack, params, (long long)res.total,
           o->model);
    if (ens.n) {
        /* Per class: clean and robust accuracy under the cascade, then the
         * number of examples each member flipped first. */
        printf("robust: correct clean and flipped by no member; then the examples each member "
               "flipped first\n");
        printf("  %-14s %6s %10s %10s", "class", "n", "clean", "robust");
        for (int j = 0; j < ens.n; j++) printf(" %10.10s", ens.labels[j]);
        printf("\n");
        for (int c = 0; c <= test.num_classes; c++) {
            int all = c == test.num_classes;
            int64_t n = all ? res.total : res.per_class.count[c];
            if (!all && !cli_class_listed(test.num_classes, n)) continue;
            int64_t cc = all ? clasp_counts_clean(&res.per_class) : res.per_class.clean_correct[c];
            int64_t rc =
                all ? clasp_counts_robust(&res.per_class) : res.per_class.robust_correct[c];
            printf("  %-14s %6lld %9.2f%% %9.2f%%", all ? "all" : test.class_names[c], (long long)n,
                   n ? 100.0 * (double)cc / (double)n : 0.0,
                   n ? 100.0 * (double)rc / (double)n : 0.0);
            for (int j = 0; j < ens.n; j++) {
                int64_t f = 0;
                for (int k = all ? 0 : c; k < (all ? test.num_classes : c + 1); k++)
                    f += res.first_flip[(size_t)k * (size_t)ens.n + (size_t)j];
                printf(" %10lld", (long long)f);
            }
            printf("\n");
        }
    } else {
        const char *cols[] = {"clean", "robust"};
        const int64_t *vals2[] = {res.per_class.clean_correct, res.per_class.robust_correct};
        cli_print_class_table(stdout, &test, 2, cols, vals2, res.per_class.count);
    }
    printf("clean accuracy %.2f%%, robust accuracy %.2f%%, attack success %.2f%% of "
           "clean-correct\n",
           res.total ? 100.0 * (double)clean / (double)res.total : 0.0,
           res.total ? 100.0 * (double)robust / (double)res.total : 0.0,
           clean ? 100.0 * (double)success / (double)clean : 0.0);
    if (o->groups) print_groups(&groups, &res);
    if (res.l2_success) print_l2(&test, &res);
    printf("time %.2f s (attack %.2f s, %.1f images/s)\n", res.seconds, res.attack_seconds,
           res.seconds > 0 ? (double)res.total / res.seconds : 0.0);
    for (int j = 0; j < ens.n; j++) {
        int64_t f = 0;
        for (int c = 0; c < test.num_classes; c++)
            f += res.first_flip[(size_t)c * (size_t)ens.n + (size_t)j];
        printf("  %d. %-12s %8.2f s, flipped first %lld\n", j + 1, ens.labels[j],
               res.member_seconds[j], (long long)f);
    }
    if (o->save_adv) {
        what = "saving adversarial examples";
        st = save_adv(o, &test, &store, params);
        if (st != CLASP_OK) goto done;
        printf("saved %s (x_adv, labels, clean_pred, adv_pred)\n", o->save_adv);
    }
    rc = 0;
done:
    if (st != CLASP_OK) cli_fail(what);
    free(store.x), free(store.y), free(store.clean), free(store.adv);
    clasp_eval_result_free(&res);
    clasp_class_groups_free(&groups);
    /* The attack keeps device buffers of ctx: free it before ctx. */
    clasp_attack_free(atk);
    clasp_ensemble_free(&ens);
    clasp_batcher_free(b);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    if (stream && clasp_stream_skipped(stream))
        printf("skipped %zu images that could not be decoded (--skip-bad-images)\n",
               clasp_stream_skipped(stream));
    clasp_stream_free(stream);
    if (folder) memset(&test, 0, sizeof test); /* a view of the folder's index */
    clasp_imagefolder_free(folder);
    clasp_dataset_free(&test);
    clasp_registry_free(reg);
    return rc;
}

int cmd_attack(int argc, char **argv)
{
    attack_opts o = {.dataset = "fashion-mnist", .samples = 1000, .batch = 128, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--model"))) o.model = v;
        else if ((v = cli_opt(argc, argv, &i, "--attack"))) o.attack = v;
        else if ((v = cli_opt(argc, argv, &i, "--set"))) {
            if (o.n_sets == MAX_SETS) {
                fprintf(stderr, "clasp attack: at most %d --set options\n", MAX_SETS);
                return 2;
            }
            o.sets[o.n_sets++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--samples")))
            o.samples = cli_parse_long("--samples", v, 0, 100000000);
        else if ((v = cli_opt(argc, argv, &i, "--batch")))
            o.batch = (int)cli_parse_long("--batch", v, 1, 65536);
        else if ((v = cli_opt(argc, argv, &i, "--seed")))
            o.seed = (uint64_t)cli_parse_long("--seed", v, 0, 0x7fffffffL);
        else if ((v = cli_opt(argc, argv, &i, "--data"))) o.data = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset"))) o.dataset = v, o.dataset_given = 1;
        else if ((v = cli_opt(argc, argv, &i, "--zoo"))) o.zoo = v;
        else if ((v = cli_opt(argc, argv, &i, "--threat"))) o.threat = v;
        else if ((v = cli_opt(argc, argv, &i, "--save-adv"))) o.save_adv = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch"))) o.arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--subset"))) o.subset = v;
        else if ((v = cli_opt(argc, argv, &i, "--preprocess"))) o.preprocess = v;
        else if ((v = cli_opt(argc, argv, &i, "--workers")))
            o.workers = (int)cli_parse_long("--workers", v, 1, 256);
        else if ((v = cli_opt(argc, argv, &i, "--groups"))) o.groups = v;
        else if (!strcmp(argv[i], "--skip-bad-images")) o.skip_bad = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "clasp attack: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model || !o.attack) {
        fprintf(stderr, "clasp attack: %s is required\n", !o.model ? "--model" : "--attack");
        usage(stderr);
        return 2;
    }
    if (o.zoo && o.arch) {
        fprintf(stderr, "clasp attack: give --zoo or --arch, not both (the zoo entry names the "
                        "architecture)\n");
        return 2;
    }
    if (o.threat && !o.zoo) {
        fprintf(stderr, "clasp attack: --threat chooses among a zoo name's entries; give --zoo\n");
        return 2;
    }
    if (!clasp_dataset_known(o.dataset)) {
        char names[256];
        clasp_dataset_names_text(names, sizeof names, " or ");
        fprintf(stderr, "clasp attack: --dataset must be %s, got '%s'\n", names, o.dataset);
        return 2;
    }
    return run(&o);
}
