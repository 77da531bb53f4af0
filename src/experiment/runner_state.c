/* The resumable state of an interrupted run: <output>/state.safetensors
 * holds the model under way (weights, SGD momentum) and, in the metadata
 * key "clasp.state", a JSON text with the position, the reports so far and
 * the configuration hash.
 *
 * Doubles are stored as hexadecimal text ("%a"): exact, and immune to a
 * json-c double format set elsewhere in the process, so a resumed run
 * continues from bit-identical numbers. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clasp/dist.h"
#include "clasp/safetensors.h"
#include "experiment/model_fields.h"
#include "experiment/runner_internal.h"
#include "util/json.h"

/* clang-format off */
#define STATE_VERSION 2 /* 2: per-example outcomes, ensembles, L2 distances, unbounded flags,
                            classifier row norms */
/* clang-format on */
#define STATE_KEY "clasp.state"

void run_report_free(clasp_model_report *r)
{
    if (!r) return;
    for (int e = 0; r->epochs && e < r->n_epochs; e++) {
        clasp_epoch_report *ep = &r->epochs[e];
        clasp_counts_free(&ep->val);
        free(ep->class_weights);
    }
    free(r->epochs);
    for (int a = 0; r->attacks && a < r->n_attacks; a++) {
        clasp_attack_report *ar = &r->attacks[a];
        clasp_counts_free(&ar->per_class);
        free(ar->success), free(ar->flow);
        free(ar->member_labels), free(ar->first_flip), free(ar->member_seconds), free(ar->adv_pred);
        free(ar->l2_dist);
    }
    free(r->attacks);
    for (size_t i = 0; i < model_n_fields; i++)
        if (model_fields[i].type == MF_FLOATS || model_fields[i].type == MF_I32S)
            free(*(void **)model_field_ptr(r, &model_fields[i]));
    memset(r, 0, sizeof *r);
}

/* ---- writing ------------------------------------------------------------ */

/* The builders are util/json.h's (allocation failures gathered in *bad);
 * doubles and floats are the state's own: hexadecimal text, exact. Arrays
 * given as NULL are JSON null. */
static json_object *hexnum(double v, int *bad)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%a", v);
    return clasp_json_str(buf, bad);
}

static json_object *hexfloats(const float *v, int n, int *bad)
{
    if (!v) return NULL;
    json_object *a = clasp_json_arr(bad);
    for (int i = 0; a && i < n; i++) clasp_json_push(a, hexnum((double)v[i], bad), bad);
    return a;
}

static json_object *i32s(const int32_t *v, int64_t n, int *bad)
{
    if (!v) return NULL;
    json_object *a = clasp_json_arr(bad);
    for (int64_t i = 0; a && i < n; i++) clasp_json_push(a, clasp_json_int(v[i], bad), bad);
    return a;
}

static json_object *model_json(const clasp_model_report *r, int K, int *bad)
{
    json_object *o = clasp_json_obj(bad);
    if (!o) return NULL;
    model_fields_json(o, r, K, MF_STATE, hexnum, bad);
    json_object *eps = clasp_json_arr(bad);
    for (int e = 0; eps && e < r->n_epochs; e++) {
        const clasp_epoch_report *ep = &r->epochs[e];
        json_object *x = clasp_json_obj(bad);
        if (!x) break;
        clasp_json_set(x, "epoch", clasp_json_int(ep->epoch, bad), bad);
        clasp_json_set(x, "train_loss", hexnum(ep->train_loss, bad), bad);
        clasp_json_set(x, "lr", hexnum(ep->lr, bad), bad);
        clasp_json_set(x, "seconds", hexnum(ep->seconds, bad), bad);
        clasp_json_set(x, "val_count", clasp_json_ints(ep->val.count, K, bad), bad);
        clasp_json_set(x, "val_clean", clasp_json_ints(ep->val.clean_correct, K, bad), bad);
        clasp_json_set(x, "val_robust", clasp_json_ints(ep->val.robust_correct, K, bad), bad);
        clasp_json_set(x, "class_weights", hexfloats(ep->class_weights, K, bad), bad);
        clasp_json_push(eps, x, bad);
    }
    clasp_json_set(o, "epochs", eps, bad);
    json_object *ats = clasp_json_arr(bad);
    for (int a = 0; ats && a < r->n_attacks; a++) {
        const clasp_attack_report *ar = &r->attacks[a];
        json_object *x = clasp_json_obj(bad);
        if (!x) break;
        clasp_json_set(x, "label", clasp_json_str(ar->label, bad), bad);
        clasp_json_set(x, "plugin", clasp_json_str(ar->plugin, bad), bad);
        clasp_json_set(x, "params", clasp_json_str(ar->params, bad), bad);
        clasp_json_set(x, "count", clasp_json_ints(ar->per_class.count, K, bad), bad);
        clasp_json_set(x, "clean_correct", clasp_json_ints(ar->per_class.clean_correct, K, bad),
                       bad);
        clasp_json_set(x, "robust_correct", clasp_json_ints(ar->per_class.robust_correct, K, bad),
                       bad);
        clasp_json_set(x, "success", clasp_json_ints(ar->success, K, bad), bad);
        clasp_json_set(x, "flow", clasp_json_ints(ar->flow, K * K, bad), bad);
        clasp_json_set(x, "seconds", hexnum(ar->seconds, bad), bad);
        clasp_json_set(x, "linf_eps", hexnum(ar->linf_eps, bad), bad);
        clasp_json_set(x, "adv_pred", i32s(ar->adv_pred, r->n_examples, bad), bad);
        json_object *mem = clasp_json_arr(bad);
        for (int j = 0; mem && j < ar->n_members; j++)
            clasp_json_push(mem, clasp_json_str(ar->member_labels[j], bad), bad);
        clasp_json_set(x, "members", mem, bad);
        if (ar->n_members) {
            clasp_json_set(x, "first_flip", clasp_json_ints(ar->first_flip, K * ar->n_members, bad),
                           bad);
            json_object *ms = clasp_json_arr(bad);
            for (int j = 0; ms && j < ar->n_members; j++)
                clasp_json_push(ms, hexnum(ar->member_seconds[j], bad), bad);
            clasp_json_set(x, "member_seconds", ms, bad);
        }
        clasp_json_set(x, "unbounded", clasp_json_int(ar->unbounded, bad), bad);
        if (ar->traits_known) {
            json_object *t = clasp_json_obj(bad);
            clasp_json_set(t, "gradient_free", clasp_json_int(ar->gradient_free, bad), bad);
            clasp_json_set(t, "budget", clasp_json_str(ar->budget, bad), bad);
            clasp_json_set(t, "temperature", clasp_json_str(ar->temperature, bad), bad);
            clasp_json_set(t, "equals_at_one", clasp_json_str(ar->equals_at_one, bad), bad);
            clasp_json_set(x, "traits", t, bad);
        }
        clasp_json_set(x, "l2_dist",
                       hexfloats(ar->l2_dist,
                                 ar->l2_dist ? (int)clasp_class_sum(ar->success, K) : 0, bad),
                       bad);
        clasp_json_push(ats, x, bad);
    }
    clasp_json_set(o, "attacks", ats, bad);
    return o;
}

clasp_status run_state_save(runner *R, clasp_model *model, const clasp_sgd *sgd)
{
    /* Rank 0 writes the state; the other ranks hold the same. Training
     * alone keeps none. */
    if (clasp_dist_rank() != 0 || !R->state_path[0]) return CLASP_OK;
    int bad = 0;
    json_object *o = clasp_json_obj(&bad);
    if (!o) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_json_set(o, "version", clasp_json_int(STATE_VERSION, &bad), &bad);
    clasp_json_set(o, "config_hash", clasp_json_str(R->hash, &bad), &bad);
    clasp_json_set(o, "device", clasp_json_str(clasp_ctx_device(R->ctx)->name, &bad), &bad);
    clasp_json_set(o, "ranks", clasp_json_int(clasp_dist_size(), &bad), &bad);
    clasp_json_set(o, "started", clasp_json_str(R->started, &bad), &bad);
    clasp_json_set(o, "wall_seconds", hexnum(R->wall_before + (clasp_now() - R->t0), &bad), &bad);
    clasp_json_set(o, "num_classes", clasp_json_int(R->K, &bad), &bad);
    json_object *pos = clasp_json_obj(&bad);
    clasp_json_set(pos, "model", clasp_json_int(R->pos.model, &bad), &bad);
    clasp_json_set(pos, "phase",
                   clasp_json_str(R->pos.phase == RUN_PHASE_TRAIN ? "train" : "eval", &bad), &bad);
    clasp_json_set(pos, "epoch", clasp_json_int(R->pos.epoch, &bad), &bad);
    clasp_json_set(pos, "batch", clasp_json_int(R->pos.batch, &bad), &bad);
    clasp_json_set(pos, "attack", clasp_json_int(R->pos.attack, &bad), &bad);
    clasp_json_set(pos, "loss_sum", hexnum(R->pos.loss_sum, &bad), &bad);
    clasp_json_set(pos, "loss_n", hexnum(R->pos.loss_n, &bad), &bad);
    clasp_json_set(o, "position", pos, &bad);
    /* Finished models and the one under way (partial), in plan order. */
    json_object *models = clasp_json_arr(&bad);
    for (int i = 0; models && i <= R->pos.model && i < R->p->n_models; i++)
        clasp_json_push(models, model_json(&R->reports[i], R->K, &bad), &bad);
    clasp_json_set(o, "models", models, &bad);
    clasp_status st = CLASP_OK;
    if (bad) st = clasp_error(CLASP_ERR_NOMEM, "out of memory (state JSON)");
    if (st == CLASP_OK) {
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        clasp_kv kv = {STATE_KEY, text};
        st = clasp_model_save(model, sgd, &kv, 1, R->state_path);
    }
    json_object_put(o);
    return st;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct jr {
    const char *path;
    int bad; /* first problem found */
    char what[200];
} jr;

static json_object *field(jr *r, json_object *o, const char *key, json_type type)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) ||
        (type != json_type_null && !json_object_is_type(v, type))) {
        if (!r->bad)
            snprintf(r->what, sizeof r->what, "'%s' is missing or has the wrong type", key);
        r->bad = 1;
        return NULL;
    }
    return v;
}

static double rdouble(jr *r, json_object *o, const char *key)
{
    json_object *v = field(r, o, key, json_type_string);
    if (!v) return 0;
    char *end;
    const char *s = json_object_get_string(v);
    double d = strtod(s, &end);
    if (*end || !*s) {
        if (!r->bad) snprintf(r->what, sizeof r->what, "'%s' is not a number", key);
        r->bad = 1;
    }
    return d;
}

static long long rint64(jr *r, json_object *o, const char *key)
{
    json_object *v = field(r, o, key, json_type_int);
    return v ? (long long)json_object_get_int64(v) : 0;
}

static void rstring(jr *r, json_object *o, const char *key, char *buf, size_t size)
{
    json_object *v = field(r, o, key, json_type_string);
    snprintf(buf, size, "%s", v ? json_object_get_string(v) : "");
}

/* The array at key, checked to hold n entries (none only when
 * allow_empty); NULL without an error for JSON null when nullable. */
static json_object *rarray(jr *r, json_object *o, const char *key, int64_t n, int nullable,
                           int allow_empty)
{
    json_object *v = field(r, o, key, json_type_null);
    if (r->bad || (nullable && json_object_is_type(v, json_type_null))) return NULL;
    if (!json_object_is_type(v, json_type_array) || (int64_t)json_object_array_length(v) != n ||
        n < 0 || (n == 0 && !allow_empty)) {
        snprintf(r->what, sizeof r->what, "'%s' is not an array of %lld numbers", key,
                 (long long)n);
        r->bad = 1;
        return NULL;
    }
    return v;
}

/* Room for an array just read (n entries of size bytes). */
static void *ralloc(jr *r, json_object *v, int64_t n, size_t size)
{
    if (!v) return NULL;
    void *a = calloc(n ? (size_t)n : 1, size);
    if (!a) r->bad = 1;
    return a;
}

/* An int64 array of n entries (NULL for JSON null when nullable). */
static int64_t *ri64_array(jr *r, json_object *o, const char *key, int n, int nullable)
{
    json_object *v = rarray(r, o, key, n, nullable, 1);
    int64_t *a = ralloc(r, v, n, sizeof *a);
    for (int i = 0; a && i < n; i++)
        a[i] = json_object_get_int64(json_object_array_get_idx(v, (size_t)i));
    return a;
}

/* Per-example outcomes: NULL for JSON null (not kept). */
static int32_t *ri32_array(jr *r, json_object *o, const char *key, int64_t n)
{
    json_object *v = rarray(r, o, key, n, 1, 0);
    int32_t *a = ralloc(r, v, n, sizeof *a);
    for (int64_t i = 0; a && i < n; i++)
        a[i] = json_object_get_int(json_object_array_get_idx(v, (size_t)i));
    return a;
}

/* Hexadecimal floats: NULL for JSON null (not kept). */
static float *rfloat_array(jr *r, json_object *o, const char *key, int n)
{
    json_object *v = rarray(r, o, key, n, 1, 1);
    float *a = ralloc(r, v, n, sizeof *a);
    for (int i = 0; a && i < n; i++)
        a[i] = (float)strtod(json_object_get_string(json_object_array_get_idx(v, (size_t)i)), NULL);
    return a;
}

static void read_model(jr *r, json_object *o, int K, clasp_model_report *m)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < model_n_fields && !r->bad; i++) {
        const model_field *f = &model_fields[i];
        if (!(f->in & MF_STATE)) continue;
        void *p = model_field_ptr(m, f);
        switch (f->type) {
        case MF_STR: rstring(r, o, f->key, p, f->size); break;
        case MF_INT: *(int *)p = (int)rint64(r, o, f->key); break;
        case MF_I64: *(int64_t *)p = rint64(r, o, f->key); break;
        case MF_FLOAT: *(float *)p = (float)rdouble(r, o, f->key); break;
        case MF_DOUBLE: *(double *)p = rdouble(r, o, f->key); break;
        case MF_FLOATS: *(float **)p = rfloat_array(r, o, f->key, K); break;
        case MF_I32S: *(int32_t **)p = ri32_array(r, o, f->key, m->n_examples); break;
        }
    }
    json_object *eps = field(r, o, "epochs", json_type_array);
    int ne = eps ? (int)json_object_array_length(eps) : 0;
    m->epochs = ne ? calloc((size_t)ne, sizeof *m->epochs) : NULL;
    if (ne && !m->epochs) r->bad = 1;
    for (int e = 0; m->epochs && e < ne && !r->bad; e++) {
        json_object *x = json_object_array_get_idx(eps, (size_t)e);
        clasp_epoch_report *ep = &m->epochs[m->n_epochs++];
        ep->epoch = (int)rint64(r, x, "epoch");
        ep->train_loss = rdouble(r, x, "train_loss");
        ep->lr = rdouble(r, x, "lr");
        ep->seconds = rdouble(r, x, "seconds");
        ep->val.num_classes = K;
        ep->val.count = ri64_array(r, x, "val_count", K, 1);
        ep->val.clean_correct = ri64_array(r, x, "val_clean", K, 1);
        ep->val.robust_correct = ri64_array(r, x, "val_robust", K, 1);
        ep->class_weights = rfloat_array(r, x, "class_weights", K);
    }
    json_object *ats = field(r, o, "attacks", json_type_array);
    int na = ats ? (int)json_object_array_length(ats) : 0;
    m->attacks = na ? calloc((size_t)na, sizeof *m->attacks) : NULL;
    if (na && !m->attacks) r->bad = 1;
    for (int a = 0; m->attacks && a < na && !r->bad; a++) {
        json_object *x = json_object_array_get_idx(ats, (size_t)a);
        clasp_attack_report *ar = &m->attacks[m->n_attacks++];
        rstring(r, x, "label", ar->label, sizeof ar->label);
        rstring(r, x, "plugin", ar->plugin, sizeof ar->plugin);
        rstring(r, x, "params", ar->params, sizeof ar->params);
        ar->per_class.num_classes = K;
        ar->per_class.count = ri64_array(r, x, "count", K, 0);
        ar->per_class.clean_correct = ri64_array(r, x, "clean_correct", K, 0);
        ar->per_class.robust_correct = ri64_array(r, x, "robust_correct", K, 0);
        ar->success = ri64_array(r, x, "success", K, 0);
        ar->flow = ri64_array(r, x, "flow", K * K, 0);
        ar->seconds = rdouble(r, x, "seconds");
        ar->linf_eps = rdouble(r, x, "linf_eps");
        ar->adv_pred = ri32_array(r, x, "adv_pred", m->n_examples);
        json_object *mem = field(r, x, "members", json_type_array);
        int nm = mem ? (int)json_object_array_length(mem) : 0;
        if (nm > 0 && !r->bad) {
            ar->member_labels = calloc((size_t)nm, sizeof *ar->member_labels);
            ar->member_seconds = calloc((size_t)nm, sizeof *ar->member_seconds);
            json_object *ms = field(r, x, "member_seconds", json_type_array);
            if (!ar->member_labels || !ar->member_seconds || !ms ||
                (int)json_object_array_length(ms) != nm) {
                if (!r->bad)
                    snprintf(r->what, sizeof r->what, "an ensemble's members are inconsistent");
                r->bad = 1;
            } else {
                ar->n_members = nm;
                for (int j = 0; j < nm; j++) {
                    snprintf(ar->member_labels[j], sizeof ar->member_labels[j], "%s",
                             json_object_get_string(json_object_array_get_idx(mem, (size_t)j)));
                    ar->member_seconds[j] =
                        strtod(json_object_get_string(json_object_array_get_idx(ms, (size_t)j)),
                               NULL);
                }
                ar->first_flip = ri64_array(r, x, "first_flip", K * nm, 0);
            }
        }
        ar->unbounded = (int)rint64(r, x, "unbounded");
        /* The attack's traits; absent in state files written before them,
         * where the report falls back to the built-in attacks' names. */
        json_object *traits = NULL;
        if (json_object_object_get_ex(x, "traits", &traits)) {
            json_object *t = field(r, x, "traits", json_type_object);
            ar->gradient_free = (int)rint64(r, t, "gradient_free");
            rstring(r, t, "budget", ar->budget, sizeof ar->budget);
            rstring(r, t, "temperature", ar->temperature, sizeof ar->temperature);
            rstring(r, t, "equals_at_one", ar->equals_at_one, sizeof ar->equals_at_one);
            ar->traits_known = !r->bad;
        }
        if (!r->bad && ar->success) {
            int64_t ns = clasp_class_sum(ar->success, K);
            if (ns < 0 || ns > INT32_MAX) {
                snprintf(r->what, sizeof r->what, "attack '%s' has impossible success counts",
                         ar->label);
                r->bad = 1;
            } else {
                ar->l2_dist = rfloat_array(r, x, "l2_dist", (int)ns);
            }
        }
    }
}

clasp_status run_state_load(runner *R)
{
    const char *path = R->state_path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return clasp_error(CLASP_ERR_NOT_FOUND,
                           "cannot resume: no state file %s (%s); nothing was interrupted in this "
                           "output folder",
                           path, strerror(errno));
    fclose(f);
    clasp_st_file st_file;
    if (clasp_st_read(path, &st_file) != CLASP_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", clasp_last_error());
        return clasp_error(CLASP_ERR_FORMAT,
                           "cannot resume: the state file is unreadable (%s); delete it to start "
                           "over",
                           msg);
    }
    /* Only clasp writes state files, always with a checksum: one without
     * (a damaged checksum key) is not trusted. */
    if (!st_file.verified) {
        clasp_st_free(&st_file);
        return clasp_error(CLASP_ERR_FORMAT,
                           "cannot resume: %s carries no valid checksum (damaged, or written by an "
                           "older "
                           "clasp); delete it to start over",
                           path);
    }
    const char *text = clasp_st_meta(&st_file, STATE_KEY);
    json_object *o = text ? json_tokener_parse(text) : NULL;
    clasp_st_free(&st_file);
    if (!o)
        return clasp_error(CLASP_ERR_FORMAT,
                           "cannot resume: %s has no readable '%s' metadata; delete it to start "
                           "over",
                           path, STATE_KEY);
    jr r = {path, 0, ""};
    clasp_status st = CLASP_OK;
    char hash[32], device[256];
    long long version = rint64(&r, o, "version");
    rstring(&r, o, "config_hash", hash, sizeof hash);
    rstring(&r, o, "device", device, sizeof device);
    rstring(&r, o, "started", R->started, sizeof R->started);
    R->wall_before = rdouble(&r, o, "wall_seconds");
    int K = (int)rint64(&r, o, "num_classes");
    json_object *pos = field(&r, o, "position", json_type_object);
    char phase[16] = "";
    R->pos.model = (int)rint64(&r, pos, "model");
    rstring(&r, pos, "phase", phase, sizeof phase);
    R->pos.phase = !strcmp(phase, "eval") ? RUN_PHASE_EVAL : RUN_PHASE_TRAIN;
    R->pos.epoch = (int)rint64(&r, pos, "epoch");
    R->pos.batch = rint64(&r, pos, "batch");
    R->pos.attack = (int)rint64(&r, pos, "attack");
    R->pos.loss_sum = rdouble(&r, pos, "loss_sum");
    R->pos.loss_n = rdouble(&r, pos, "loss_n");
    json_object *models = field(&r, o, "models", json_type_array);
    if (!r.bad && version != STATE_VERSION)
        st = clasp_error(CLASP_ERR_FORMAT,
                         "cannot resume: %s has state version %lld, this clasp writes %d", path,
                         version, STATE_VERSION);
    else if (!r.bad && strcmp(hash, R->hash) != 0)
        st = clasp_error(CLASP_ERR_CONFIG,
                         "cannot resume: the experiment changed since %s was written "
                         "(configuration hash %s, "
                         "now %s); restore the file as it was, or delete the state to start over",
                         path, hash, R->hash);
    else if (!r.bad && (K != R->K || R->pos.model < 0 || R->pos.model >= R->p->n_models ||
                        (int)json_object_array_length(models) != R->pos.model + 1 ||
                        R->pos.epoch < 0 || R->pos.epoch > R->p->epochs || R->pos.batch < 0 ||
                        R->pos.attack < 0 || R->pos.attack > R->p->n_attacks))
        st = clasp_error(CLASP_ERR_FORMAT,
                         "cannot resume: %s: the position is inconsistent with the plan", path);
    for (int i = 0; st == CLASP_OK && !r.bad && i <= R->pos.model; i++)
        read_model(&r, json_object_array_get_idx(models, (size_t)i), K, &R->reports[i]);
    if (st == CLASP_OK && r.bad)
        st = clasp_error(CLASP_ERR_FORMAT,
                         "cannot resume: %s is corrupt: %s; delete it to start over", path, r.what);
    if (st == CLASP_OK && strcmp(device, clasp_ctx_device(R->ctx)->name) != 0 &&
        R->opt->hooks.log) {
        char line[700];
        snprintf(line, sizeof line,
                 "warning: the run started on '%s' and resumes on '%s'; numbers may differ "
                 "slightly from an "
                 "uninterrupted run",
                 device, clasp_ctx_device(R->ctx)->name);
        R->opt->hooks.log(R->opt->hooks.user, line);
    }
    /* Training splits each batch by the number of ranks: another number
     * continues correctly but not with the numbers the run would have had.
     * (States from before MPI support name no ranks: one.) */
    json_object *ranks = NULL;
    int before =
        json_object_object_get_ex(o, "ranks", &ranks) && json_object_is_type(ranks, json_type_int)
            ? json_object_get_int(ranks)
            : 1;
    if (st == CLASP_OK && before != clasp_dist_size() && R->pos.phase == RUN_PHASE_TRAIN &&
        R->opt->hooks.log && clasp_dist_rank() == 0) {
        char line[300];
        snprintf(line, sizeof line,
                 "warning: the run trained with %d rank(s) and resumes with %d; training from here "
                 "on differs "
                 "from an uninterrupted run (evaluation counts do not depend on it)",
                 before, clasp_dist_size());
        R->opt->hooks.log(R->opt->hooks.user, line);
    }
    json_object_put(o);
    return st;
}
