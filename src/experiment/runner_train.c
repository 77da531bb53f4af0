/* Training one model: the epochs' batches through the defense's train
 * step and SGD, the epoch-end validation and hooks, and the finish hook
 * before the checkpoint. Positions are saved in R->pos as they advance, so
 * an interrupt can write where to resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment/dist_internal.h"
#include "experiment/runner_internal.h"

/* Validation at an epoch end: clean and, with an attack, robust. */
static clasp_status validate(runner *R, int mi, model_run *mr, int epoch, clasp_eval_result *res)
{
    clasp_eval_options o = {0};
    o.attack = mr->attack;
    o.seed = run_stream_key(R->p->seed, mi, epoch, PURPOSE_VAL);
    o.progress = run_eval_progress;
    o.total = R->val_shard.n;
    o.user = R;
    /* Each rank validates its shard; the counts are summed exactly. */
    o.shard_batch = R->val_b0;
    o.shard_first = R->val_b0 * (size_t)R->p->eval_batch;
    run_progress_start(R, mr->attack ? "  validating (clean + robust)" : "  validating",
                       R->val_shard.n);
    clasp_status st = CLASP_OK;
    if (R->val_b) {
        st = clasp_eval_run(mr->m, R->val_b, &o, res);
    } else {
        memset(res, 0, sizeof *res);
        res->per_class.num_classes = R->K;
    }
    run_progress_end(R);
    if (st == CLASP_OK) st = dist_reduce_eval(res);
    if (st != CLASP_OK) clasp_eval_result_free(res);
    return st;
}

/* Training news under MPI: the time gradients took to travel. */
static void say_allreduce(runner *R, double secs0, double wait0, long long calls0,
                          double epoch_secs)
{
    if (clasp_dist_size() < 2) return;
    double secs, wait;
    long long calls;
    size_t bytes;
    dist_grad_stats(&secs, &wait, &calls, &bytes);
    run_say(R,
            "  allreduce: %.1f s of the epoch's %.1f s (%lld steps of %.2f MB; waiting on MPI %.1f "
            "s), %d ranks",
            secs - secs0, epoch_secs, calls - calls0, (double)bytes / 1e6, wait - wait0,
            clasp_dist_size());
}

/* Records epoch `epoch` in the report and feeds the defense its metrics. */
static clasp_status epoch_end(runner *R, int mi, model_run *mr, int epoch, double seconds)
{
    clasp_eval_result res;
    CLASP_TRY(validate(R, mi, mr, epoch, &res));
    int K = R->K;
    clasp_model_report *rep = mr->rep;
    clasp_epoch_report *grown = realloc(rep->epochs, (size_t)(rep->n_epochs + 1) * sizeof *grown);
    if (!grown) {
        clasp_eval_result_free(&res);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    rep->epochs = grown;
    clasp_epoch_report *ep = &rep->epochs[rep->n_epochs++];
    memset(ep, 0, sizeof *ep);
    ep->epoch = epoch + 1;
    ep->train_loss = R->pos.loss_n > 0 ? R->pos.loss_sum / R->pos.loss_n : 0;
    ep->lr = clasp_plan_lr(R->p, epoch, 0, clasp_batcher_count(R->train_b));
    clasp_status st = clasp_counts_copy(&ep->val, &res.per_class, mr->attack != NULL);
    /* The weights this epoch trained with: ask before the hook updates them. */
    float *w = malloc((size_t)K * sizeof *w);
    /* A wrapper without weights of its own (calibrate around reweight)
     * reports its inner defense's. */
    if (w && ((mr->def && clasp_defense_class_weights(mr->def, w, K)) ||
              (mr->inner && clasp_defense_class_weights(mr->inner, w, K))))
        ep->class_weights = w;
    else free(w);
    mr->env.epoch = epoch;
    /* The defense sees what the report keeps: no robust counts without an
     * attack. */
    if (st == CLASP_OK && mr->def) st = clasp_defense_run_epoch_end(mr->def, &mr->env, &ep->val);
    ep->seconds = seconds + res.seconds;
    if (st == CLASP_OK) {
        int64_t n = clasp_counts_n(&res.per_class);
        if (mr->attack)
            run_say(R, "  epoch %d/%d: loss %.4f, %s clean %.2f%%, robust %.2f%% (%.1f s)",
                    epoch + 1, R->p->epochs, ep->train_loss, R->val_name,
                    run_pct(clasp_counts_clean(&res.per_class), n),
                    run_pct(clasp_counts_robust(&res.per_class), n), ep->seconds);
        else
            run_say(R, "  epoch %d/%d: loss %.4f, %s clean %.2f%% (%.1f s)", epoch + 1,
                    R->p->epochs, ep->train_loss, R->val_name,
                    run_pct(clasp_counts_clean(&res.per_class), n), ep->seconds);
    }
    clasp_eval_result_free(&res);
    return st;
}

clasp_status run_train_epoch(runner *R, int mi, model_run *mr, int e)
{
    const clasp_plan *p = R->p;
    size_t nb = clasp_batcher_count(R->train_b), done = 0;
    long long b0 = R->pos.batch;
    char label[200];
    snprintf(label, sizeof label, "  epoch %d/%d", e + 1, p->epochs);
    double t0 = clasp_now();
    clasp_status st = CLASP_OK;
    int size = clasp_dist_size(), rank = clasp_dist_rank();
    double ar0, aw0;
    long long ac0;
    size_t abytes;
    dist_grad_stats(&ar0, &aw0, &ac0, &abytes);
    /* Resuming inside an epoch: the pass is a function of (seed, epoch), so
     * starting it at batch b0 lands where the interrupted run stopped. */
    clasp_batcher_start_at(R->train_b, 1, p->seed, (uint64_t)e, (size_t)b0);
    done = (size_t)b0 * (size_t)p->batch;
    if (done > R->train.n) done = R->train.n;
    run_progress_start(R, label, R->train.n);
    for (long long b = b0; st == CLASP_OK; b++) {
        clasp_tensor *x, *y;
        int n;
        st = clasp_batcher_next(R->train_b, &x, &y, &n, NULL);
        if (st != CLASP_OK || n == 0) break;
        if (p->augment_pad || p->augment_flip) {
            /* Crops and flips are a function of (seed, model, epoch, batch),
             * like every other random choice, so a resumed run makes the
             * same ones. */
            clasp_rng arng =
                clasp_rng_make(run_stream_key(p->seed, mi, e, PURPOSE_AUGMENT), (uint64_t)b);
            st = clasp_tensor_ensure(R->ctx, &R->augmented, CLASP_F32, x->ndim, x->shape);
            if (st == CLASP_OK)
                st = clasp_augment_crop_flip(x, p->augment_pad, p->augment_flip, &arng,
                                             R->augmented);
            if (st != CLASP_OK) break;
            x = R->augmented;
        }
        /* Data parallel: this rank's slice [lo, hi) of the global batch
         * (uneven by one example when the ranks do not divide it); the
         * gradients are averaged over the whole batch below. */
        size_t lo = (size_t)n * (size_t)rank / (size_t)size,
               hi = (size_t)n * (size_t)(rank + 1) / (size_t)size;
        int nl = (int)(hi - lo);
        if (size > 1 && nl > 0) {
            size_t per = clasp_tensor_per_example(x);
            int shape[CLASP_MAX_DIMS];
            memcpy(shape, x->shape, sizeof shape);
            shape[0] = nl;
            st = clasp_tensor_ensure(R->ctx, &R->part_x, CLASP_F32, x->ndim, shape);
            if (st == CLASP_OK)
                st = clasp_tensor_ensure(R->ctx, &R->part_y, CLASP_I32, 1, (int[]){nl});
            if (st == CLASP_OK)
                st = clasp_tensor_copy_part(R->part_x, 0, x, lo * per, (size_t)nl * per);
            if (st == CLASP_OK) st = clasp_tensor_copy_part(R->part_y, 0, y, lo, (size_t)nl);
            if (st != CLASP_OK) break;
            x = R->part_x, y = R->part_y;
        }
        clasp_sgd_set_lr(mr->sgd, (float)clasp_plan_lr(p, e, (size_t)b, nb));
        clasp_rng rng = clasp_rng_make(run_rank_key(run_stream_key(p->seed, mi, e, PURPOSE_TRAIN)),
                                       (uint64_t)b);
        float loss = 0;
        mr->env.epoch = e;
        /* BatchNorm normalises with this rank's batch statistics; its
         * running statistics are rank 0's (PyTorch DDP's default). */
        st = dist_bcast_buffers(mr->m);
        if (st == CLASP_OK && nl > 0) {
            if (mr->def) st = clasp_defense_run_step(mr->def, &mr->env, x, y, &rng, &loss);
            else st = clasp_model_ce_grads(mr->m, x, y, NULL, &loss);
        }
        if (st == CLASP_OK) st = dist_allreduce_grads(mr->m, (float)nl / (float)n, nl > 0);
        if (st == CLASP_OK) st = clasp_sgd_step(mr->sgd);
        if (st != CLASP_OK) break;
        double ln[2] = {(double)loss * nl, nl};
        st = dist_sum_f64(ln, 2);
        if (st != CLASP_OK) break;
        if (!isfinite(ln[0])) {
            st = clasp_error(CLASP_ERR_INVALID,
                             "model '%s': the training loss is %g at epoch %d, batch %lld; lower "
                             "%s",
                             p->models[mi].name, ln[0] / ln[1], e + 1, b + 1,
                             R->train_only ? "the learning rate" : "train.optimiser.lr");
            break;
        }
        R->pos.loss_sum += ln[0];
        R->pos.loss_n += ln[1];
        R->pos.batch = b + 1;
        done += (size_t)n;
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", R->pos.loss_sum / R->pos.loss_n);
        run_progress_update(R, done, extra);
        if (R->opt->hooks.step) R->opt->hooks.step(R->opt->hooks.user, CLASP_RUN_STEP_BATCH);
        if (run_stop_requested(R)) {
            run_progress_end(R);
            mr->rep->train_seconds += clasp_now() - t0;
            return run_interrupted(R, mr);
        }
    }
    run_progress_end(R);
    if (st != CLASP_OK) return st;
    double secs = clasp_now() - t0;
    mr->rep->train_seconds += secs;
    say_allreduce(R, ar0, aw0, ac0, secs);
    /* Validation and the checkpoint see rank 0's running statistics on
     * every rank, and the same parameters everywhere, checked. */
    CLASP_TRY(dist_bcast_buffers(mr->m));
    char when[64];
    snprintf(when, sizeof when, "after epoch %d", e + 1);
    CLASP_TRY(dist_check_params(mr->m, when));
    CLASP_TRY(epoch_end(R, mi, mr, e, secs));
    R->pos.epoch = e + 1;
    R->pos.batch = 0;
    R->pos.loss_sum = R->pos.loss_n = 0;
    if (run_stop_requested(R)) return run_interrupted(R, mr);
    /* A completed epoch is never lost: a kill from now on resumes here. */
    return run_state_save(R, mr->m, mr->sgd);
}

/* After the last epoch: the finish hook with the whole validation split on
 * the device, then the checkpoint. */
clasp_status run_finish_model(runner *R, int mi, model_run *mr)
{
    const clasp_plan *p = R->p;
    clasp_status st = CLASP_OK;
    if (mr->def) {
        clasp_tensor *vx = NULL, *vy = NULL;
        const clasp_dataset *v = &R->val;
        /* A streamed split is decoded for the hook only when there is one
         * (data.val_size images in memory). */
        clasp_dataset decoded = {0};
        int wanted = clasp_defense_has_finish(mr->def) || clasp_defense_has_finish(mr->inner);
        if (v->n && !v->x && R->val_folder && wanted) {
            run_say(R, "  decoding the %zu validation images for %s's finish step", v->n,
                    p->models[mi].name);
            st = clasp_imagefolder_decode(R->val_folder, "the validation split", &decoded);
            v = &decoded;
        }
        if (st == CLASP_OK && v->n && v->x) {
            st = clasp_tensor_new4(R->ctx, (int)v->n, v->c, v->h, v->w, &vx);
            if (st == CLASP_OK) st = clasp_tensor_write(vx, v->x);
            if (st == CLASP_OK)
                st = clasp_tensor_new(R->ctx, CLASP_I32, 1, (int[]){(int)v->n}, &vy);
            if (st == CLASP_OK) st = clasp_tensor_write(vy, v->y);
        }
        mr->env.val_x = vx, mr->env.val_y = vy;
        mr->env.epoch = p->epochs - 1;
        clasp_rng rng = clasp_rng_make(run_stream_key(p->seed, mi, p->epochs, PURPOSE_FINISH), 0);
        if (st == CLASP_OK) st = clasp_defense_run_finish(mr->def, &mr->env, &rng);
        mr->env.val_x = mr->env.val_y = NULL;
        clasp_tensor_free(vx);
        clasp_tensor_free(vy);
        clasp_dataset_free(&decoded);
        CLASP_TRY(st);
    }
    clasp_model_report *rep = mr->rep;
    float t = 1;
    free(rep->calib_offsets);
    rep->calib_offsets = malloc((size_t)R->K * sizeof(float));
    if (!rep->calib_offsets) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    rep->calibrated = clasp_model_calibration(mr->m, rep->calib_offsets, &t);
    rep->calib_temperature = rep->calibrated ? t : 1.0f;
    if (!rep->calibrated) {
        free(rep->calib_offsets);
        rep->calib_offsets = NULL;
    } else {
        run_say(R, "  calibrated: temperature %.3g", (double)t);
    }
    char path[1400], seed[32];
    if (!R->train_only) CLASP_TRY(run_join_path(path, sizeof path, R->outdir, rep->checkpoint));
    else if (!R->save_to) return CLASP_OK;
    else if (snprintf(path, sizeof path, "%s", R->save_to) >= (int)sizeof path)
        return clasp_error(CLASP_ERR_INVALID, "%s: path too long", R->save_to);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    clasp_kv extra[] = {
        {"clasp.experiment", p->name},
        {"clasp.model", rep->name},
        {"clasp.defense", rep->defense},
        {"clasp.defense_params", rep->params},
        {"clasp.seed", seed},
    };
    /* Rank 0 writes; every rank holds the same model. */
    int n_extra = (int)(sizeof extra / sizeof extra[0]);
    st = clasp_dist_rank() == 0 ? clasp_model_save(mr->m, NULL, extra, n_extra, path) : CLASP_OK;
    if (st != CLASP_OK && R->train_only) {
        /* The training is not thrown away: a file beside the target (its
         * folder was checked before the training began). */
        char msg[1024], keep[1500];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        snprintf(keep, sizeof keep, "%s.unsaved.%ld", path, (long)getpid());
        if (clasp_model_save(mr->m, NULL, extra, n_extra, keep) == CLASP_OK)
            return clasp_error(st, "%s; the trained model is kept in %s", msg, keep);
        return clasp_error(st, "%s", msg);
    }
    CLASP_TRY(st);
    run_say(R, "  saved %s", path);
    return CLASP_OK;
}
