/* The experiment runner: data, then for each planned model training with
 * its defense, epoch-end validation, the finish hook, a checkpoint and the
 * evaluation of every attack; the report comes last.
 *
 * Determinism: every random stream is a function of the seed and of where
 * it is used (model, epoch, batch, purpose), never of a running counter,
 * so a run resumed from its state file continues with the very numbers an
 * uninterrupted run would have used. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clasp/zoo.h"
#include "clasp_config.h"
#include "experiment/dist_internal.h"
#include "clasp/zoo.h"
#include "experiment/runner_internal.h"
#include "clasp/tune.h"

void clasp_experiment_state_path(const clasp_plan *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s/state.safetensors", p->output);
}

/* ---- data ------------------------------------------------------------- */

/* Image folders: their indexes only (labels, class names, the shape after
 * preprocessing); the pixels are decoded batch by batch when used, so a set
 * of any size runs in the memory of a few batches. */
static clasp_status open_folder(runner *R)
{
    const clasp_plan *p = R->p;
    const char *at = *p->data_loc ? p->data_loc : p->source;
    clasp_status st = clasp_plan_open_folders(p, &R->folder, &R->train_folder, &R->val_folder);
    if (st != CLASP_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        return clasp_error(CLASP_ERR_CONFIG, "%s: data: %s", at, msg);
    }
    R->test = *clasp_imagefolder_info(R->folder);
    if (R->train_folder) {
        R->train = *clasp_imagefolder_info(R->train_folder);
        R->val = *clasp_imagefolder_info(R->val_folder);
    } else {
        R->train = R->test;
        R->train.n = 0;
        R->val = R->train;
    }
    R->val_eval = R->val;
    if (p->val_eval_size && p->val_eval_size < R->val.n) R->val_eval.n = p->val_eval_size;
    R->K = R->test.num_classes;
    return CLASP_OK;
}

static clasp_status load_data(runner *R)
{
    const clasp_plan *p = R->p;
    clasp_dataset all = {0};
    const char *at = *p->data_loc ? p->data_loc : p->source;
    if (clasp_plan_streamed(p)) return open_folder(R);
    if (clasp_dataset_load(p->dataset, p->data_path, 1, &all) != CLASP_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        return clasp_error(CLASP_ERR_CONFIG, "%s: data: %s", at, msg);
    }
    if (p->val_size >= all.n) {
        size_t n = all.n;
        clasp_dataset_free(&all);
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s: data.val_size %zu leaves no training examples (the training set "
                           "has %zu)",
                           at, p->val_size, n);
    }
    clasp_status st = clasp_dataset_split(&all, p->val_size, p->seed, &R->train, &R->val);
    clasp_dataset_free(&all);
    CLASP_TRY(st);
    /* Excluded classes leave training and validation after the split, so
     * the remaining examples are those of the same run without exclusion;
     * the test set keeps every class (where do the excluded classes'
     * examples go?) and the model keeps an output for each. */
    if (p->n_exclude) {
        CLASP_TRY(
            clasp_plan_exclude_mask(p, R->train.num_classes, R->train.class_names, R->excluded));
        clasp_dataset_exclude(&R->train, R->excluded);
        clasp_dataset_exclude(&R->val, R->excluded);
        R->any_excluded = 1;
    }
    if (p->train_size) clasp_dataset_truncate(&R->train, p->train_size);
    if (clasp_dataset_load(p->dataset, p->data_path, 0, &R->test) != CLASP_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        return clasp_error(CLASP_ERR_CONFIG, "%s: data: %s", at, msg);
    }
    if (p->test_size) clasp_dataset_truncate(&R->test, p->test_size);
    R->K = R->train.num_classes;
    R->val_eval = R->val;
    if (p->val_eval_size && p->val_eval_size < R->val.n) R->val_eval.n = p->val_eval_size;
    return CLASP_OK;
}

/* ---- models ------------------------------------------------------------- */

static clasp_status new_model(runner *R, int mi, clasp_model **out)
{
    const clasp_plan *p = R->p;
    const char *arch = mi >= 0 && p->models[mi].arch[0] ? p->models[mi].arch : p->arch;
    const clasp_dataset *d = &R->train;
    if (p->normalize && p->normalize != d->c)
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s: model.normalize has %d values per list but the data has %d "
                           "channels",
                           p->arch_loc, p->normalize, d->c);
    /* A zoo entry's normalisation is the entry's own, not model.normalize. */
    const clasp_plan_model *pm = mi >= 0 ? &p->models[mi] : NULL;
    const float *mean = pm && pm->normalize ? pm->norm_mean : p->normalize ? p->norm_mean : NULL;
    const float *stdv = pm && pm->normalize ? pm->norm_std : p->norm_std;
    clasp_status st = clasp_model_new_arch(R->ctx, arch, d->c, d->h, d->w, R->K, mean, stdv, out);
    if (st != CLASP_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        if (arch != p->arch)
            return clasp_error(CLASP_ERR_CONFIG, "model '%s': arch %s: %s", p->models[mi].name,
                               arch, msg);
        /* Training alone: arch_loc names the caller's option itself. */
        return clasp_error(CLASP_ERR_CONFIG, "%s: %s%s", p->arch_loc,
                           R->train_only ? "" : "model.arch: ", msg);
    }
    return CLASP_OK;
}

/* An existing model's weights (the entry's checkpoint): into the entry's
 * architecture (its zoo entry's or arch), else as the file describes
 * itself (clasp metadata, or a preset told by the tensor names). */
static clasp_status load_existing(runner *R, int mi, clasp_model **out)
{
    const clasp_plan_model *pm = &R->p->models[mi];
    const clasp_dataset *d = &R->train;
    clasp_ckpt_info info;
    memset(&info, 0, sizeof info);
    clasp_status st;
    if (pm->zoo[0] || pm->arch[0]) {
        st = new_model(R, mi, out);
        /* The tensors a zoo entry's published file may carry beyond the
         * model's own. */
        const clasp_zoo_entry *e = NULL;
        if (st == CLASP_OK && pm->zoo[0])
            st = clasp_zoo_find(pm->zoo, R->p->dataset, pm->threat, &e);
        if (st == CLASP_OK)
            st =
                clasp_model_load_weights(*out, pm->checkpoint, e ? e->ignore_tensors : NULL, &info);
    } else {
        st = clasp_model_load_info(R->ctx, pm->checkpoint, NULL, (int[]){d->c, d->h, d->w}, &info,
                                   out);
        int c = 0, h = 0, w = 0;
        if (st == CLASP_OK) clasp_model_input_shape(*out, &c, &h, &w);
        if (st == CLASP_OK &&
            (c != d->c || h != d->h || w != d->w || clasp_model_num_classes(*out) != R->K))
            st = clasp_error(CLASP_ERR_CONFIG,
                             "%s takes %dx%dx%d inputs and %d classes, but the data has %dx%dx%d "
                             "images and %d classes",
                             pm->checkpoint, c, h, w, clasp_model_num_classes(*out), d->c, d->h,
                             d->w, R->K);
    }
    if (st != CLASP_OK) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        clasp_model_free(*out);
        *out = NULL;
        return clasp_error(st, "%s: model '%s': %s", pm->loc, pm->name, msg);
    }
    char arch[160];
    clasp_model_arch(*out, arch, sizeof arch);
    run_say(R, "  weights from %s (%s%s%s%s%s), architecture %s%s%s", pm->checkpoint, info.format,
            info.entry[0] ? ", entry '" : "", info.entry, info.entry[0] ? "'" : "",
            info.prefix[0] ? ", prefix removed" : "", arch, pm->zoo[0] ? ", zoo entry " : "",
            pm->zoo);
    return CLASP_OK;
}

static clasp_status new_attack(const clasp_plan_plugin *a, clasp_attack_instance **out)
{
    return clasp_attack_new_desc(a->desc, (const char *const *)a->keys,
                                 (const char *const *)a->values, (const char *const *)a->where,
                                 a->n_params, out);
}

static clasp_status new_defense(const clasp_plan_plugin *d, clasp_defense_instance **out)
{
    return clasp_defense_new_desc(d->desc, (const char *const *)d->keys,
                                  (const char *const *)d->values, (const char *const *)d->where,
                                  d->n_params, out);
}

static void model_run_free(model_run *mr)
{
    clasp_defense_free(mr->def);
    clasp_defense_free(mr->inner);
    clasp_attack_free(mr->attack);
    clasp_sgd_free(mr->sgd);
    clasp_model_free(mr->m);
    memset(mr, 0, sizeof *mr);
}

/* The model's plugin instances, and the fixed part of its report. */
static clasp_status setup_plugins(runner *R, int mi, model_run *mr)
{
    const clasp_plan_model *pm = &R->p->models[mi];
    const clasp_plan_plugin *atk = clasp_plan_model_attack(pm);
    if (atk) CLASP_TRY(new_attack(atk, &mr->attack));
    if (pm->defense) {
        CLASP_TRY(new_defense(&pm->defense->plugin, &mr->def));
        if (pm->defense->inner) CLASP_TRY(new_defense(&pm->defense->inner->plugin, &mr->inner));
    }
    clasp_model_report *rep = mr->rep;
    snprintf(rep->name, sizeof rep->name, "%s", pm->name);
    snprintf(rep->checkpoint, sizeof rep->checkpoint, "%s.safetensors", pm->file);
    if (pm->defense) {
        const clasp_plan_defense *d = pm->defense;
        snprintf(rep->defense, sizeof rep->defense, "%s", d->plugin.name);
        /* "k=v, ...", then the wrapped defense and the attack; a long
         * description is cut at the report's field size. */
        const char *parts[] = {d->plugin.params_text,
                               d->inner ? ", inner " : NULL,
                               d->inner ? d->inner->plugin.name : NULL,
                               d->inner ? "(" : NULL,
                               d->inner ? d->inner->plugin.params_text : NULL,
                               d->inner ? ")" : NULL,
                               atk ? ", attack " : NULL,
                               atk ? atk->name : NULL,
                               atk ? "(" : NULL,
                               atk ? atk->params_text : NULL,
                               atk ? ")" : NULL};
        size_t len = 0;
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            for (const char *c = parts[i] && !len && parts[i][0] == ',' ? parts[i] + 2 : parts[i];
                 c && *c && len + 1 < sizeof rep->params; c++)
                rep->params[len++] = *c;
        rep->params[len] = '\0';
    }
    return CLASP_OK;
}

/* ---- evaluation --------------------------------------------------------- */

static clasp_status eval_batch_check(void *user, size_t first, const clasp_tensor *x,
                                     const clasp_tensor *y, const clasp_tensor *x_adv,
                                     const clasp_tensor *clean_pred, const clasp_tensor *adv_pred)
{
    (void)first, (void)x, (void)y, (void)x_adv, (void)clean_pred, (void)adv_pred;
    runner *R = user;
    R->stop_syncs++;
    return run_stop_requested(R) ? clasp_error(CLASP_ERR_INTERRUPTED, "interrupted") : CLASP_OK;
}

/* What the report needs to know of an attack, from its plugin's traits
 * (never its name). An ensemble uses gradients through its members and has
 * their common budget. */
static void keep_traits(clasp_attack_report *ar, const clasp_plan_attack *pa)
{
    ar->traits_known = 1;
    ar->gradient_free = 0;
    ar->budget[0] = ar->temperature[0] = ar->equals_at_one[0] = '\0';
    if (pa->n_members) {
        snprintf(ar->budget, sizeof ar->budget, "eps");
        return;
    }
    clasp_attack_traits t;
    clasp_attack_traits_of(pa->plugin.desc, &t);
    ar->gradient_free = t.gradient_free != 0;
    snprintf(ar->budget, sizeof ar->budget, "%s", t.budget ? t.budget : "");
    snprintf(ar->temperature, sizeof ar->temperature, "%s", t.temperature ? t.temperature : "");
    snprintf(ar->equals_at_one, sizeof ar->equals_at_one, "%s",
             t.equals_at_one ? t.equals_at_one : "");
}

/* The per-example outcomes and an ensemble's first flippers, for the
 * report's worst cases (and the state file, so a resumed run has them). */
static clasp_status keep_outcomes(runner *R, clasp_model_report *rep, clasp_attack_report *ar,
                                  const clasp_plan_attack *pa, clasp_eval_result *res)
{
    int K = R->K, nm = res->n_members;
    ar->linf_eps = clasp_plan_attack_linf_eps(pa);
    if (!rep->labels) {
        rep->n_examples = res->total;
        rep->labels = malloc((size_t)res->total * sizeof(int32_t) + 1);
        rep->clean_pred = malloc((size_t)res->total * sizeof(int32_t) + 1);
        if (!rep->labels || !rep->clean_pred) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        memcpy(rep->labels, res->ex_label, (size_t)res->total * sizeof(int32_t));
        memcpy(rep->clean_pred, res->ex_clean, (size_t)res->total * sizeof(int32_t));
    } else if (rep->n_examples != res->total) {
        return clasp_error(CLASP_ERR_INVALID, "evaluation: %lld examples, %lld before",
                           (long long)res->total, (long long)rep->n_examples);
    }
    ar->adv_pred = malloc((size_t)res->total * sizeof(int32_t) + 1);
    if (!ar->adv_pred) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    memcpy(ar->adv_pred, res->ex_adv, (size_t)res->total * sizeof(int32_t));
    if (nm > 0) {
        ar->member_labels = calloc((size_t)nm, sizeof *ar->member_labels);
        ar->member_seconds = run_dup_doubles(res->member_seconds, (size_t)nm);
        ar->first_flip = run_dup64(res->first_flip, (size_t)K * (size_t)nm);
        if (!ar->member_labels || !ar->member_seconds || !ar->first_flip)
            return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        ar->n_members = nm;
        for (int j = 0; j < nm; j++)
            snprintf(ar->member_labels[j], sizeof ar->member_labels[j], "%s",
                     R->ensembles[pa - R->p->attacks].labels[j]);
        for (int j = 0; j < nm; j++) {
            int64_t f = 0;
            for (int c = 0; c < K; c++) f += res->first_flip[(size_t)c * (size_t)nm + (size_t)j];
            run_say(R, "    %d. %-20s flipped first %lld  (%.1f s)", j + 1,
                    R->ensembles[pa - R->p->attacks].labels[j], (long long)f,
                    res->member_seconds[j]);
        }
    }
    return CLASP_OK;
}

/* One pass of attack j over this rank's shard of the test set, summed over
 * the ranks. Every rank checks for a stop after each batch, and as often
 * as the rank with the most batches, so the checks (collectives) pair up. */
static clasp_status evaluate_shard(runner *R, model_run *mr, clasp_eval_options *o,
                                   clasp_eval_result *res)
{
    o->shard_batch = R->test_b0;
    o->shard_first = R->test_b0 * (size_t)R->p->eval_batch;
    o->total = R->test_shard.n;
    R->stop_syncs = 0;
    clasp_status st = CLASP_OK;
    if (R->test_b) {
        st = clasp_eval_run(mr->m, R->test_b, o, res);
    } else {
        memset(res, 0, sizeof *res);
        res->per_class.num_classes = R->K;
    }
    while (st == CLASP_OK && R->stop_syncs < (long long)R->test_nb_max) {
        R->stop_syncs++;
        if (run_stop_requested(R)) st = clasp_error(CLASP_ERR_INTERRUPTED, "interrupted");
    }
    if (st == CLASP_OK) st = dist_reduce_eval_examples(res, o->n_members, o->l2);
    if (st != CLASP_OK) clasp_eval_result_free(res);
    return st;
}

static clasp_status evaluate(runner *R, model_run *mr)
{
    const clasp_plan *p = R->p;
    int K = R->K;
    clasp_model_report *rep = mr->rep;
    /* A resumed report holds only the attacks done so far. */
    /* The classifier's row norms, for the report's relations (a model
     * without a linear classifier has none). */
    if (!rep->class_weight_norms) {
        float *w = malloc((size_t)K * sizeof *w);
        if (!w) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        clasp_status ws = clasp_model_class_weight_norms(mr->m, w);
        if (ws == CLASP_OK) rep->class_weight_norms = w;
        else free(w);
        if (ws != CLASP_OK && ws != CLASP_ERR_NOT_FOUND) return ws;
    }
    clasp_attack_report *all = realloc(rep->attacks, (size_t)p->n_attacks * sizeof *all);
    if (!all) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    memset(all + rep->n_attacks, 0, (size_t)(p->n_attacks - rep->n_attacks) * sizeof *all);
    rep->attacks = all;
    for (int j = R->pos.attack; j < p->n_attacks; j++) {
        const clasp_plan_attack *pa = &p->attacks[j];
        clasp_eval_options o = {0};
        o.attack = R->attacks[j];
        o.members = R->ensembles[j].members;
        o.n_members = R->ensembles[j].n;
        /* One seed for every attack and model: tpgd with T = 1 then
         * reproduces pgd exactly, and models meet the same random starts. */
        o.seed = run_stream_key(p->seed, 0, 0, PURPOSE_TEST);
        o.progress = run_eval_progress;
        o.on_batch = eval_batch_check;
        o.user = R;
        /* An ensemble is L-infinity (the plan accepts no other). */
        int unbounded = !pa->n_members && !clasp_plugin_is_linf(pa->plugin.desc);
        o.l2 = unbounded;
        char label[220];
        snprintf(label, sizeof label, "  %s", pa->label);
        run_progress_start(R, label, R->test_shard.n);
        clasp_eval_result res;
        /* Attacks poll the stop between their steps (one process only:
         * with several ranks a stop must land at the same batch on every
         * rank, so they stop between batches). */
        if (clasp_dist_size() == 1) clasp_stop_flag_set(R->opt->stop);
        clasp_status st = evaluate_shard(R, mr, &o, &res);
        clasp_stop_flag_set(NULL);
        if (st == CLASP_ERR_INTERRUPTED) R->stopping = 1;
        run_progress_end(R);
        if (st == CLASP_ERR_INTERRUPTED) return run_interrupted(R, mr);
        CLASP_TRY(st);
        if (R->stream && clasp_stream_skipped(R->stream) && j == 0)
            run_say(R, "  %zu images left out: they cannot be decoded (data.skip_bad_images)",
                    clasp_stream_skipped(R->stream));
        clasp_attack_report *ar = &rep->attacks[j];
        snprintf(ar->label, sizeof ar->label, "%s", pa->label);
        snprintf(ar->plugin, sizeof ar->plugin, "%s", pa->n_members ? "ensemble" : pa->plugin.name);
        snprintf(ar->params, sizeof ar->params, "%s", pa->plugin.params_text);
        /* An ensemble: "apgd(eps=0.1, ...); square(...)", cut at the field's size. */
        for (int i = 0; i < pa->n_members; i++) {
            size_t len = strlen(ar->params);
            snprintf(ar->params + len, sizeof ar->params - len, "%s%s(%s)", i ? "; " : "",
                     pa->members[i].name, pa->members[i].params_text);
        }
        clasp_status cst = clasp_counts_copy(&ar->per_class, &res.per_class, 1);
        ar->success = run_dup64(res.attack_success, (size_t)K);
        ar->flow = run_dup64(res.flow, (size_t)K * (size_t)K);
        ar->seconds = res.seconds;
        ar->unbounded = unbounded;
        keep_traits(ar, pa);
        if (unbounded) {
            int64_t ns = clasp_class_sum(res.attack_success, K);
            ar->l2_dist = malloc((size_t)(ns ? ns : 1) * sizeof *ar->l2_dist);
            if (ar->l2_dist && res.l2_success)
                memcpy(ar->l2_dist, res.l2_success, (size_t)ns * sizeof *ar->l2_dist);
        }
        CLASP_TRY(keep_outcomes(R, rep, ar, pa, &res));
        rep->eval_seconds += res.seconds;
        rep->n_attacks = j + 1;
        int64_t n = res.total;
        run_say(R, "  %-24s clean %.2f%%  robust %.2f%%  (%.1f s)", pa->label,
                run_pct(clasp_counts_clean(&res.per_class), n),
                run_pct(clasp_counts_robust(&res.per_class), n), res.seconds);
        clasp_eval_result_free(&res);
        if (cst != CLASP_OK || !ar->success || !ar->flow || (unbounded && !ar->l2_dist))
            return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        R->pos.attack = j + 1;
        if (R->opt->hooks.step) R->opt->hooks.step(R->opt->hooks.user, CLASP_RUN_STEP_ATTACK);
        if (run_stop_requested(R)) return run_interrupted(R, mr);
        CLASP_TRY(run_state_save(R, mr->m, NULL));
    }
    return CLASP_OK;
}

/* ---- one model ---------------------------------------------------------- */

/* The model's plugin instances and the defense's fixed env. */
static clasp_status start_model(runner *R, int mi, model_run *mr)
{
    const clasp_plan *p = R->p;
    clasp_status st = setup_plugins(R, mi, mr);
    mr->env.size = sizeof mr->env;
    mr->env.num_classes = R->K;
    mr->env.attack = mr->attack;
    mr->env.inner = mr->inner;
    mr->env.epochs = p->epochs;
    mr->env.seed = p->seed;
    return st;
}

/* Training of model mi from R->pos on: a new model from the seed (or the
 * state file's when resuming), its epochs, the finish hook and the
 * checkpoint. The one training path of clasp: the runner's models and
 * clasp_experiment_train's alike. */
static clasp_status train_model(runner *R, int mi, model_run *mr, int resuming)
{
    const clasp_plan *p = R->p;
    clasp_status st = CLASP_OK;
    if (resuming) {
        st = clasp_model_load(R->ctx, R->state_path, NULL, NULL, &mr->m);
        if (st == CLASP_OK)
            st = clasp_sgd_new(mr->m, (float)p->lr, (float)p->momentum, (float)p->weight_decay,
                               &mr->sgd);
        if (st == CLASP_OK) st = clasp_sgd_load(mr->sgd, R->state_path);
        mr->env.model = mr->m;
        /* Replay the epoch-end hooks with the recorded metrics, so
         * wrapper state (e.g. reweight's class weights) is what it was. */
        for (int e = 0; st == CLASP_OK && mr->def && e < mr->rep->n_epochs; e++) {
            mr->env.epoch = e;
            st = clasp_defense_run_epoch_end(mr->def, &mr->env, &mr->rep->epochs[e].val);
        }
    } else {
        if (p->models[mi].checkpoint[0]) {
            st = load_existing(R, mi, &mr->m);
        } else {
            st = new_model(R, mi, &mr->m);
            if (st == CLASP_OK) st = clasp_model_init(mr->m, p->seed);
        }
        if (st == CLASP_OK)
            st = clasp_sgd_new(mr->m, (float)p->lr, (float)p->momentum, (float)p->weight_decay,
                               &mr->sgd);
        /* From the first batch on there is always a state to resume:
         * a kill inside the first epoch restarts this model, not the
         * models before it. */
        if (st == CLASP_OK) st = run_state_save(R, mr->m, mr->sgd);
    }
    mr->env.model = mr->m;
    /* Every rank starts from the same weights: the seed's, or the
     * state file's (which all ranks read; see README). */
    if (st == CLASP_OK)
        st = dist_check_params(mr->m, resuming ? "after loading the state" : "at the start");
    if (st == CLASP_OK) clasp_model_set_train(mr->m, 1);
    for (int e = R->pos.epoch; st == CLASP_OK && e < p->epochs; e++)
        st = run_train_epoch(R, mi, mr, e);
    if (st == CLASP_OK) st = run_finish_model(R, mi, mr);
    return st;
}

static clasp_status run_model_epochs(runner *R, int mi);

/* Each model trains for its own epochs (a checkpoint's fine-tuning, or 0):
 * the runner sees a plan whose train.epochs are this model's while it
 * runs, so the schedule, the news and the hooks all agree. */
static clasp_status run_model(runner *R, int mi)
{
    const clasp_plan *whole = R->p;
    clasp_plan mine = *whole;
    mine.epochs = whole->models[mi].epochs;
    R->p = &mine;
    clasp_status st = run_model_epochs(R, mi);
    R->p = whole;
    return st;
}

static clasp_status run_model_epochs(runner *R, int mi)
{
    const clasp_plan *p = R->p;
    const clasp_plan_model *pm = &p->models[mi];
    model_run mr = {0};
    mr.rep = &R->reports[mi];
    int resuming = R->resumed && R->pos.model == mi;
    if (!resuming) {
        R->pos = (run_pos){.model = mi};
        run_report_free(mr.rep);
    }
    run_say(R, "model %d/%d: %s%s%s", mi + 1, p->n_models, pm->name, resuming ? " (resumed)" : "",
            pm->checkpoint[0] ? (p->epochs     ? " (fine-tuned from its checkpoint)"
                                 : pm->defense ? " (its checkpoint, fitted post hoc)"
                                               : " (its checkpoint, as it is)")
            : pm->defense     ? ""
                              : " (standard training)");
    clasp_status st = start_model(R, mi, &mr);
    if (st == CLASP_OK && R->pos.phase == RUN_PHASE_TRAIN) {
        st = train_model(R, mi, &mr, resuming);
        if (st == CLASP_OK) {
            R->pos.phase = RUN_PHASE_EVAL;
            R->pos.attack = 0;
            clasp_sgd_free(mr.sgd);
            mr.sgd = NULL;
            if (run_stop_requested(R)) st = run_interrupted(R, &mr);
            else st = run_state_save(R, mr.m, NULL);
        }
    } else if (st == CLASP_OK) {
        char path[1400];
        st = run_join_path(path, sizeof path, R->outdir, mr.rep->checkpoint);
        if (st == CLASP_OK) st = clasp_model_load(R->ctx, path, NULL, NULL, &mr.m);
    }
    if (st == CLASP_OK) st = evaluate(R, &mr);
    model_run_free(&mr);
    return st;
}

/* ---- the report ------------------------------------------------------- */

static clasp_status write_report(runner *R)
{
    const clasp_plan *p = R->p;
    clasp_report rep;
    memset(&rep, 0, sizeof rep);
    char *yaml = NULL;
    CLASP_TRY(clasp_plan_to_yaml(p, 1, &yaml));
    snprintf(rep.experiment, sizeof rep.experiment, "%s", p->name);
    snprintf(rep.clasp_version, sizeof rep.clasp_version, "%s", CLASP_VERSION);
    const clasp_device_info *dev = clasp_ctx_device(R->ctx);
    if (snprintf(rep.device, sizeof rep.device, "%s (%s)", dev->name, dev->platform_name) >=
        (int)sizeof rep.device)
        snprintf(rep.device, sizeof rep.device, "%s", dev->name);
    rep.seed = p->seed;
    snprintf(rep.dataset, sizeof rep.dataset, "%s", p->dataset);
    rep.train_size = R->train.n;
    rep.val_size = R->val.n;
    rep.test_size = R->test.n;
    /* A streamed set's images that cannot be decoded (skip_bad_images) are
     * not in it: what was evaluated. */
    if (R->stream && p->n_models > 0 && R->reports[0].n_attacks > 0)
        rep.test_size = (size_t)R->reports[0].n_examples;
    rep.num_classes = R->K;
    rep.class_names = R->test.class_names;
    rep.config_yaml = yaml;
    rep.config_path = p->source;
    snprintf(rep.started, sizeof rep.started, "%s", R->started);
    rep.wall_seconds = R->wall_before + (clasp_now() - R->t0);
    rep.n_models = p->n_models;
    rep.models = R->reports;
    /* From the plan, for every model (resumed runs' earlier ones too). */
    for (int i = 0; i < p->n_models; i++) {
        snprintf(R->reports[i].source, sizeof R->reports[i].source, "%s", p->models[i].checkpoint);
        R->reports[i].source_epochs = p->models[i].checkpoint[0] ? p->models[i].epochs : 0;
    }
    rep.n_l2_eps = p->n_l2_eps;
    rep.l2_eps = p->l2_eps;
    rep.excluded = R->any_excluded ? R->excluded : NULL;
    rep.groups = R->groups.group_of ? &R->groups : NULL;
    clasp_status st = clasp_report_write(&rep, R->outdir);
    free(yaml);
    return st;
}

/* ---- the run ------------------------------------------------------------ */

/* A process killed while writing a checkpoint or the state leaves its
 * temporary file (NAME.safetensors.tmp.PID) behind; the file it was
 * replacing is intact. Removes those of processes that no longer run. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".safetensors.tmp.");
        if (!t) continue;
        char *end;
        long pid = strtol(t + strlen(".safetensors.tmp."), &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        char path[1400];
        if (run_join_path(path, sizeof path, dir, e->d_name) == CLASP_OK) (void)unlink(path);
    }
    closedir(d);
    clasp_error_clear();
}

/* This rank's share of an in-order pass over d in batches of `batch`:
 * whole batches, contiguous, so each batch is the very batch (examples,
 * size, random stream) a single process evaluates. */
static void shard(const clasp_dataset *d, int batch, clasp_dataset *view, size_t *b0,
                  size_t *nb_max)
{
    size_t nb = (d->n + (size_t)batch - 1) / (size_t)batch, b1;
    dist_shard(nb, b0, &b1);
    size_t first = *b0 * (size_t)batch, end = b1 * (size_t)batch < d->n ? b1 * (size_t)batch : d->n;
    size_t per = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    *view = *d;
    view->n = end > first ? end - first : 0;
    view->x = d->x + (view->n ? first * per : 0);
    view->y = d->y + (view->n ? first : 0);
    *nb_max = dist_shard_max(nb);
}

/* The tuner's notice, as news. */
static void tune_say(void *user, const char *line)
{
    run_say(user, "%s", line);
}

/* The device with the data in place: the context, GEMM tuning, this rank's
 * shards and the batchers. */
static clasp_status setup_device(runner *R)
{
    const clasp_plan *p = R->p;
    int root = clasp_dist_rank() == 0;
    clasp_ctx_opts co;
    clasp_ctx_opts_default(&co);
    const clasp_ctx_opts *given = R->opt->ctx;
    if (given) memcpy(&co, given, given->size < sizeof co ? given->size : sizeof co);
    co.size = sizeof co;
    char spec[32];
    const char *dev = p->device ? p->device : dist_device_spec(co.device, spec, sizeof spec);
    if (dev) snprintf(co.device, sizeof co.device, "%s", dev);
    clasp_status st = clasp_ctx_new_opts(&co, &R->ctx);
    if (st != CLASP_OK && p->device && p->device_loc[0]) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        return clasp_error(st, "%s: experiment.device: %s", p->device_loc, msg);
    }
    CLASP_TRY(st);
    if (R->train_only)
        run_say(R, "device: %s; %zu training, %zu %s examples, %d classes",
                clasp_ctx_device(R->ctx)->name, R->train.n, R->val_eval.n, R->val_name, R->K);
    else
        run_say(R,
                "device: %s; %zu training, %zu validation (%zu evaluated per epoch), %zu test "
                "examples, %d classes",
                clasp_ctx_device(R->ctx)->name, R->train.n, R->val.n, R->val_eval.n, R->test.n,
                R->K);
    if (clasp_dist_size() > 1) {
        int threads = clasp_dist_cpu_share();
        char tbuf[16];
        snprintf(tbuf, sizeof tbuf, "%d", threads);
        run_say(R,
                "MPI: %d ranks (%d on this node), batch %d split across them; PoCL threads per "
                "rank: %s",
                clasp_dist_size(), dist_local_size(), p->batch, threads ? tbuf : "all");
    }
    /* First use of the device: tune GEMM for this experiment's model before
     * anything trains, so every model of the run (and a resumed one) uses
     * the same kernels. With several ranks, rank 0 first: ranks sharing its
     * cache then read its choice instead of timing their own. */
    for (int turn = 0; turn < 2; turn++) {
        if ((turn == 0) == root) {
            clasp_model *probe = NULL;
            if (new_model(R, -1, &probe) == CLASP_OK) {
                clasp_tune_model tm = {.model = probe, .batch = p->batch};
                clasp_tune_ensure_workload_log(R->ctx, clasp_tune_model_workload, &tm, 60,
                                               R->opt->hooks.log ? tune_say : NULL, R);
            }
            clasp_model_free(probe);
            clasp_error_clear();
        }
        dist_barrier();
    }
    shard(&R->val_eval, p->eval_batch, &R->val_shard, &R->val_b0, &R->val_nb_max);
    if (R->folder || R->train_folder) {
        /* One stream in order; several ranks would each decode the whole
         * set for their share. */
        if (clasp_dist_size() > 1)
            return clasp_error(CLASP_ERR_CONFIG,
                               "%s: data.dataset %s is streamed by one process: run it without "
                               "mpirun",
                               *p->data_loc ? p->data_loc : p->source, p->dataset);
        R->test_shard = R->test;
        R->test_b0 = 0;
        R->test_nb_max = (R->test.n + (size_t)p->eval_batch - 1) / (size_t)p->eval_batch;
        clasp_stream_options so = {.batch = p->eval_batch, .workers = p->data_workers, .queue = 2};
        if (R->folder) CLASP_TRY(clasp_stream_new(R->folder, &so, &R->stream));
        if (R->folder && R->test.n)
            CLASP_TRY(
                clasp_batcher_new_stream(R->ctx, R->stream, &R->test, p->eval_batch, &R->test_b));
        if (!R->train_folder) return CLASP_OK;
        /* Training crops (random-resized-crop and flip) in the training
         * order; validation as the test set is prepared, its first
         * val_eval_size images. */
        clasp_stream_options to = {.batch = p->batch,
                                   .workers = p->data_workers,
                                   .queue = 2,
                                   .train = 1};
        CLASP_TRY(clasp_stream_new(R->train_folder, &to, &R->train_stream));
        CLASP_TRY(
            clasp_batcher_new_stream(R->ctx, R->train_stream, &R->train, p->batch, &R->train_b));
        R->val_shard = R->val_eval;
        R->val_b0 = 0;
        R->val_nb_max = (R->val_eval.n + (size_t)p->eval_batch - 1) / (size_t)p->eval_batch;
        if (R->val_eval.n) {
            clasp_stream_options vo = {.batch = p->eval_batch,
                                       .workers = p->data_workers,
                                       .queue = 2,
                                       .limit = R->val_eval.n};
            CLASP_TRY(clasp_stream_new(R->val_folder, &vo, &R->val_stream));
            CLASP_TRY(clasp_batcher_new_stream(R->ctx, R->val_stream, &R->val_eval, p->eval_batch,
                                               &R->val_b));
        }
        return CLASP_OK;
    }
    if (!R->train_only)
        shard(&R->test, p->eval_batch, &R->test_shard, &R->test_b0, &R->test_nb_max);
    CLASP_TRY(clasp_batcher_new(R->ctx, &R->train, p->batch, &R->train_b));
    if (R->val_shard.n)
        CLASP_TRY(clasp_batcher_new(R->ctx, &R->val_shard, p->eval_batch, &R->val_b));
    if (R->test_shard.n)
        CLASP_TRY(clasp_batcher_new(R->ctx, &R->test_shard, p->eval_batch, &R->test_b));
    return CLASP_OK;
}

static clasp_status prepare(runner *R)
{
    const clasp_plan *p = R->p;
    snprintf(R->outdir, sizeof R->outdir, "%s", p->output);
    clasp_experiment_state_path(p, R->state_path, sizeof R->state_path);
    CLASP_TRY(clasp_plan_hash(p, R->hash, sizeof R->hash));
    CLASP_TRY(clasp_mkdir_p(R->outdir));
    int root = clasp_dist_rank() == 0;
    /* Before anything else looks at the folder: a live run's state file
     * would otherwise read as an interrupted run to continue. Rank 0 holds
     * the lock for all ranks; the others only learn that it failed. */
    clasp_status locked = root ? clasp_dir_lock(R->outdir, &R->lock_fd) : CLASP_OK;
    if (dist_any(locked != CLASP_OK))
        return root ? locked
                    : clasp_error(CLASP_ERR_CONFIG, "%s: rank 0 could not lock the output folder",
                                  R->outdir);
    if (root) remove_stale_temps(R->outdir);
    char report[1100];
    snprintf(report, sizeof report, "%s/report.json", R->outdir);
    if (!R->opt->resume) {
        if (run_file_exists(R->state_path))
            return clasp_error(CLASP_ERR_CONFIG,
                               "%s holds an interrupted run: continue it with --resume, or delete "
                               "that file to "
                               "start over",
                               R->state_path);
        /* A report left from an earlier run would look complete while this
         * one is under way. */
        if (root && unlink(report) != 0 && errno != ENOENT)
            return clasp_error(CLASP_ERR_IO, "%s: cannot remove the old report: %s", report,
                               strerror(errno));
    } else if (!run_file_exists(R->state_path)) {
        return clasp_error(CLASP_ERR_NOT_FOUND, "cannot resume: no state file %s%s", R->state_path,
                           run_file_exists(report)
                               ? " (the run there finished: report.json is complete)"
                               : "; nothing was interrupted in this output folder");
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(R->started, sizeof R->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    R->reports = calloc((size_t)p->n_models, sizeof *R->reports);
    R->attacks = calloc((size_t)p->n_attacks, sizeof *R->attacks);
    R->ensembles = calloc((size_t)p->n_attacks, sizeof *R->ensembles);
    if (!R->reports || !R->attacks || !R->ensembles)
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    run_say(R, "loading %s", p->dataset);
    CLASP_TRY(load_data(R));
    CLASP_TRY(clasp_plan_groups(p, R->K, R->test.class_names, &R->groups));
    CLASP_TRY(setup_device(R));
    for (int j = 0; j < p->n_attacks; j++) {
        const clasp_plan_attack *pa = &p->attacks[j];
        if (!pa->n_members) {
            CLASP_TRY(new_attack(&pa->plugin, &R->attacks[j]));
            continue;
        }
        clasp_ensemble *e = &R->ensembles[j];
        e->members = calloc((size_t)pa->n_members, sizeof *e->members);
        e->labels = calloc((size_t)pa->n_members, sizeof *e->labels);
        if (!e->members || !e->labels) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        e->n = pa->n_members;
        const char *names[16];
        for (int i = 0; i < pa->n_members && i < 16; i++) names[i] = pa->members[i].name;
        clasp_ensemble_member_labels(names, pa->n_members < 16 ? pa->n_members : 16, e->labels);
        for (int i = 0; i < pa->n_members; i++)
            CLASP_TRY(new_attack(&pa->members[i], &e->members[i]));
    }
    if (R->opt->resume) {
        CLASP_TRY(run_state_load(R));
        R->resumed = 1;
        run_say(R, "resuming: model %d/%d, %s", R->pos.model + 1, p->n_models,
                R->pos.phase == RUN_PHASE_TRAIN ? "training" : "evaluation");
    }
    /* Every rank has checked the folder and read the state before rank 0
     * writes anything there. */
    dist_barrier();
    return CLASP_OK;
}

/* Frees what the runner holds (the data sets only when they are its own). */
static void runner_free(runner *R)
{
    const clasp_plan *p = R->p;
    for (int j = 0; R->attacks && j < p->n_attacks; j++) clasp_attack_free(R->attacks[j]);
    free(R->attacks);
    for (int j = 0; R->ensembles && j < p->n_attacks; j++) clasp_ensemble_free(&R->ensembles[j]);
    free(R->ensembles);
    for (int i = 0; R->reports && i < p->n_models; i++) run_report_free(&R->reports[i]);
    free(R->reports);
    clasp_tensor_free(R->augmented);
    clasp_tensor_free(R->part_x);
    clasp_tensor_free(R->part_y);
    clasp_batcher_free(R->train_b);
    clasp_batcher_free(R->val_b);
    clasp_batcher_free(R->test_b);
    clasp_stream_free(R->stream);
    clasp_stream_free(R->train_stream);
    clasp_stream_free(R->val_stream);
    /* train, val and test were their views; training alone, the folders
     * are the caller's. */
    clasp_imagefolder_free(R->folder);
    if (!R->train_only) {
        clasp_imagefolder_free(R->train_folder);
        clasp_imagefolder_free(R->val_folder);
    }
    clasp_ctx_free(R->ctx);
    clasp_dir_unlock(R->lock_fd);
    clasp_class_groups_free(&R->groups);
    if (!R->train_only && !R->folder) {
        clasp_dataset_free(&R->train);
        clasp_dataset_free(&R->val);
        clasp_dataset_free(&R->test);
    }
}

clasp_status clasp_experiment_run(const clasp_plan *p, const clasp_registry *r,
                                  const clasp_run_options *opt)
{
    static const clasp_run_options none = {0};
    runner R;
    memset(&R, 0, sizeof R);
    R.p = p, R.reg = r, R.opt = opt ? opt : &none;
    R.lock_fd = -1;
    R.t0 = clasp_now();
    R.val_name = "validation";
    clasp_status st = prepare(&R);
    for (int mi = R.resumed ? R.pos.model : 0; st == CLASP_OK && mi < p->n_models; mi++)
        st = run_model(&R, mi);
    if (st == CLASP_OK && clasp_dist_rank() == 0) st = write_report(&R);
    if (st == CLASP_OK) {
        if (clasp_dist_rank() == 0 && unlink(R.state_path) != 0 && errno != ENOENT)
            run_say(&R, "warning: cannot remove %s: %s", R.state_path, strerror(errno));
        run_say(&R, "report written to %s (%.1f s)", R.outdir,
                R.wall_before + (clasp_now() - R.t0));
    }
    runner_free(&R);
    return st;
}

/* Training alone on in-memory sets, or on streamed folders (tf and vf,
 * with train and val their indexes). */
static clasp_status train_alone(const clasp_plan *p, int model, const clasp_dataset *train,
                                const clasp_dataset *val, clasp_imagefolder *tf,
                                clasp_imagefolder *vf, const char *val_name, const char *checkpoint,
                                const clasp_run_options *opt, clasp_model_report *out)
{
    static const clasp_run_options none = {0};
    memset(out, 0, sizeof *out);
    if (model < 0 || model >= p->n_models || !train || !val || !train->n)
        return clasp_error(CLASP_ERR_INVALID, "clasp_experiment_train: bad arguments");
    if (opt && opt->resume)
        return clasp_error(CLASP_ERR_INVALID, "clasp_experiment_train: nothing to resume");
    if (val->n && (val->num_classes != train->num_classes || val->c != train->c ||
                   val->h != train->h || val->w != train->w))
        return clasp_error(CLASP_ERR_INVALID,
                           "clasp_experiment_train: the validation set's shape or classes differ "
                           "from the training set's");
    runner R;
    memset(&R, 0, sizeof R);
    R.p = p, R.opt = opt ? opt : &none;
    R.lock_fd = -1;
    R.t0 = clasp_now();
    R.train_only = 1;
    R.save_to = checkpoint;
    R.val_name = val_name ? val_name : "validation";
    /* Views of the caller's sets: runner_free leaves them alone. */
    R.train = *train;
    R.val = *val;
    R.train_folder = tf;
    R.val_folder = vf;
    R.K = train->num_classes;
    R.val_eval = R.val;
    if (p->val_eval_size && p->val_eval_size < R.val.n) R.val_eval.n = p->val_eval_size;
    model_run mr = {0};
    mr.rep = out;
    clasp_status st = setup_device(&R);
    if (st == CLASP_OK) {
        run_say(&R, "model: %s%s", p->models[model].name,
                p->models[model].defense ? "" : " (standard training)");
        R.pos = (run_pos){.model = model};
        st = start_model(&R, model, &mr);
    }
    if (st == CLASP_OK) st = train_model(&R, model, &mr, 0);
    model_run_free(&mr);
    if (st != CLASP_OK) run_report_free(out);
    runner_free(&R);
    return st;
}

clasp_status clasp_experiment_train(const clasp_plan *p, int model, const clasp_dataset *train,
                                    const clasp_dataset *val, const char *val_name,
                                    const char *checkpoint, const clasp_run_options *opt,
                                    clasp_model_report *out)
{
    return train_alone(p, model, train, val, NULL, NULL, val_name, checkpoint, opt, out);
}

clasp_status clasp_experiment_train_folders(const clasp_plan *p, int model,
                                            clasp_imagefolder *train, clasp_imagefolder *val,
                                            const char *val_name, const char *checkpoint,
                                            const clasp_run_options *opt, clasp_model_report *out)
{
    if (!train || !val) {
        memset(out, 0, sizeof *out);
        return clasp_error(CLASP_ERR_INVALID, "clasp_experiment_train_folders: bad arguments");
    }
    return train_alone(p, model, clasp_imagefolder_info(train), clasp_imagefolder_info(val), train,
                       val, val_name, checkpoint, opt, out);
}

void clasp_model_report_free(clasp_model_report *r)
{
    run_report_free(r);
}
