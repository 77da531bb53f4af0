/* Experiment files: YAML (libyaml's document API, so anchors and aliases
 * are resolved for us) to a validated clasp_plan. This file walks the fixed
 * sections; plan_plugins.c handles plugin blocks and grids.
 *
 * Every message starts with file:line:col (1-based) of the offending node
 * and says what was expected; unknown keys list the known ones. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clasp/data.h"
#include "clasp/model.h"
#include "clasp/zoo.h"
#include "experiment/plan_internal.h"

/* Copies text into a fixed buffer, refusing what does not fit. */
static clasp_status put_fixed(const pctx *c, const yaml_node_t *v, const char *what, const char *s,
                              char *dst, size_t size)
{
    if (strlen(s) >= size)
        return plan_err(c, v, "%s is too long (at most %zu characters)", what, size - 1);
    memcpy(dst, s, strlen(s) + 1);
    return CLASP_OK;
}

/* ---- sections ------------------------------------------------------------ */

clasp_status plan_p_name(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k;
    clasp_plan *p = c->plan;
    char *name = NULL;
    clasp_status st = plan_get_text(c, m, "experiment", "name", NULL, &name);
    if (st == CLASP_OK && !name)
        st = plan_err(c, m->node, "experiment: missing required key 'name'");
    if (st == CLASP_OK) st = put_fixed(c, v, "experiment.name", name, p->name, sizeof p->name);
    if (st == CLASP_OK && strchr(name, '/'))
        st = plan_err(c, v, "experiment.name must not contain '/' (it names the output folder)");
    free(name);
    return st;
}

clasp_status plan_p_device(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k;
    clasp_plan *p = c->plan;
    CLASP_TRY(plan_get_text(c, m, "experiment", "device", NULL, &p->device));
    if (p->device) plan_loc(c, v, p->device_loc, sizeof p->device_loc);
    return CLASP_OK;
}

/* data.exclude_classes: a list of class names or indices, kept as text
 * with their positions until the data set's names are known. */
clasp_status plan_p_exclude(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)m, (void)k;
    clasp_plan *p = c->plan;
    if (!v || yis_null(v)) return CLASP_OK;
    if (v->type != YAML_SEQUENCE_NODE)
        return plan_err(c, v,
                        "data.exclude_classes expects a list of class names or indices, e.g. "
                        "[Shirt, 4], got %s",
                        ykind(v));
    for (int i = 0; i < yseq_len(v); i++) {
        yaml_node_t *it = yseq_item(c, v, i);
        const char *s = yscalar(it);
        if (!s || !*s)
            return plan_err(c, it,
                            "data.exclude_classes: each entry must be a class name or index, got "
                            "%s",
                            s ? "an empty text" : ykind(it));
        if (strlen(s) >= sizeof p->exclude[0])
            return plan_err(c, it, "data.exclude_classes: '%s' is longer than any class name", s);
        if (p->n_exclude == CLASP_PLAN_MAX_EXCLUDE)
            return plan_err(c, it, "data.exclude_classes: at most %d entries",
                            CLASP_PLAN_MAX_EXCLUDE);
        snprintf(p->exclude[p->n_exclude], sizeof p->exclude[0], "%s", s);
        plan_loc(c, it, p->exclude_loc[p->n_exclude], sizeof p->exclude_loc[0]);
        p->n_exclude++;
    }
    return CLASP_OK;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

clasp_status clasp_plan_exclude_mask(const clasp_plan *p, int num_classes,
                                     const char (*class_names)[32], int *mask)
{
    for (int k = 0; k < num_classes; k++) mask[k] = 0;
    int n = 0;
    for (int i = 0; i < p->n_exclude; i++) {
        const char *e = p->exclude[i];
        int k = -1;
        if (all_digits(e)) {
            long v = strlen(e) > 6 ? -1 : strtol(e, NULL, 10);
            if (v < 0 || v >= num_classes)
                return clasp_error(CLASP_ERR_CONFIG,
                                   "%s: data.exclude_classes: class index %s is out of range (the "
                                   "%s data set has "
                                   "classes 0 to %d)",
                                   p->exclude_loc[i], e, p->dataset, num_classes - 1);
            k = (int)v;
        } else {
            for (int j = 0; j < num_classes && k < 0; j++)
                if (!strcasecmp(e, class_names[j])) k = j;
            if (k < 0) {
                char names[1024] = "";
                size_t len = 0;
                for (int j = 0; j < num_classes && len + 40 < sizeof names; j++)
                    len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", j ? ", " : "",
                                            class_names[j]);
                return clasp_error(CLASP_ERR_CONFIG,
                                   "%s: data.exclude_classes: unknown class '%s'; the %s data set "
                                   "has: %s",
                                   p->exclude_loc[i], e, p->dataset, names);
            }
        }
        if (mask[k])
            return clasp_error(CLASP_ERR_CONFIG,
                               "%s: data.exclude_classes: class %d (%s) is listed twice",
                               p->exclude_loc[i], k, class_names[k]);
        mask[k] = 1;
        n++;
    }
    if (n > 0 && n >= num_classes)
        return clasp_error(CLASP_ERR_CONFIG, "%s: data.exclude_classes leaves no class to train on",
                           p->exclude_loc[0]);
    return CLASP_OK;
}

/* data.groups: a mapping file, read here so that a missing or malformed
 * one stops the plan (and `clasp check`) before anything runs; its classes
 * are checked against the data set's names by clasp_plan_groups. */
clasp_status plan_p_groups(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k;
    clasp_plan *p = c->plan;
    CLASP_TRY(plan_get_text(c, m, "data", "groups", NULL, &p->groups));
    if (!p->groups) return CLASP_OK;
    plan_loc(c, v, p->groups_loc, sizeof p->groups_loc);
    clasp_class_groups g;
    clasp_status st = clasp_class_groups_read(p->groups, &g);
    clasp_class_groups_free(&g);
    return st == CLASP_OK ? st : plan_wrap(c, v, "data.groups");
}

clasp_status clasp_plan_groups(const clasp_plan *p, int num_classes, const char (*class_names)[32],
                               clasp_class_groups *out)
{
    memset(out, 0, sizeof *out);
    if (!p->groups) return CLASP_OK;
    clasp_status st = clasp_class_groups_read(p->groups, out);
    if (st == CLASP_OK) st = clasp_class_groups_resolve(out, p->dataset, num_classes, class_names);
    if (st == CLASP_OK) return st;
    clasp_class_groups_free(out);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", clasp_last_error());
    return clasp_error(CLASP_ERR_CONFIG, "%s: data.groups: %s", p->groups_loc, msg);
}

/* data.path: the Fashion-MNIST package's folder by default, required for
 * the other sets; data_loc locates the section, or the path when given. */
clasp_status plan_p_path(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k;
    clasp_plan *p = c->plan;
    int fmnist = !strcmp(p->dataset, clasp_dataset_names[0]);
    if (m->node) plan_loc(c, m->node, p->data_loc, sizeof p->data_loc);
    CLASP_TRY(plan_get_text(c, m, "data", "path", fmnist ? CLASP_FASHION_MNIST_DIR : NULL,
                            &p->data_path));
    if (v) plan_loc(c, v, p->data_loc, sizeof p->data_loc);
    if (!p->data_path)
        return plan_err(c, m->node,
                        "data: the %s data set needs 'path' (the folder holding its files)",
                        p->dataset);
    return CLASP_OK;
}

int clasp_plan_streamed(const clasp_plan *p)
{
    return clasp_dataset_is_folder(p->dataset);
}

/* data.preprocess: as given, or "" until the models are read (a zoo
 * entry's preparation is then the default: resolve_streamed). */
clasp_status plan_p_preprocess(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)m;
    int which = -1;
    CLASP_TRY(plan_get_choice(c, v, "data", k->key, k->choices, -1, &which));
    snprintf(c->plan->data_preprocess, sizeof c->plan->data_preprocess, "%s",
             which < 0 ? "" : k->choices[which]);
    return CLASP_OK;
}

/* A list of 1 to CLASP_NORMALIZE_MAX_C numbers (each > 0 when positive). */
static clasp_status get_floats(pctx *c, yaml_node_t *v, const char *what, int positive, float *out,
                               int *n)
{
    *n = 0;
    if (!v || v->type != YAML_SEQUENCE_NODE || yseq_len(v) < 1 ||
        yseq_len(v) > CLASP_NORMALIZE_MAX_C)
        return plan_err(c, v,
                        "%s expects a list of 1 to %d numbers (one per input channel), got %s",
                        what, CLASP_NORMALIZE_MAX_C, ykind(v));
    for (int i = 0; i < yseq_len(v); i++) {
        yaml_node_t *it = yseq_item(c, v, i);
        const char *s = yscalar(it);
        char *end;
        double d = s ? strtod(s, &end) : 0;
        if (!s || !*s || *end || !isfinite(d) || (positive && !(d > 0)))
            return plan_err(c, it, "%s: each value must be a %snumber, got %s", what,
                            positive ? "positive " : "", s ? s : ykind(it));
        out[(*n)++] = (float)d;
    }
    return CLASP_OK;
}

/* model: {zoo: NAME}: a RobustBench entry's architecture and
 * normalisation for every model (resolved here: the emitted text names
 * them, not the entry). */
static clasp_status parse_model_zoo(pctx *c, ymap *m, yaml_node_t *zn)
{
    clasp_plan *p = c->plan;
    static const char *const other[] = {"arch", "depth", "width", "normalize"};
    for (int i = 0; i < 4; i++)
        if (ymap_get(m, other[i]))
            return plan_err(c, ymap_get(m, other[i]),
                            "model.%s and model.zoo exclude each other (the zoo entry sets the "
                            "architecture and normalisation)",
                            other[i]);
    const char *name = yscalar(zn);
    const clasp_zoo_entry *e = NULL;
    if (!name || yis_null(zn) || !*name)
        return plan_err(c, zn, "model.zoo expects a RobustBench entry name, got %s", ykind(zn));
    CLASP_TRY(plan_zoo_entry(c, zn, "model.zoo", NULL, &e));
    plan_loc(c, zn, p->arch_loc, sizeof p->arch_loc);
    if (!(p->arch = strdup(e->arch))) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (e->has_normalize) {
        p->normalize = 3;
        for (int k = 0; k < 3; k++) p->norm_mean[k] = e->mean[k], p->norm_std[k] = e->std[k];
    }
    return CLASP_OK;
}

clasp_status plan_p_model(pctx *c, yaml_node_t *n, const plan_section *s)
{
    const plan_section *ns = plan_schema_find(s, "normalize")->sub;
    clasp_plan *p = c->plan;
    if (!n)
        return (p->arch = strdup("default")) ? CLASP_OK
                                             : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    ymap m;
    CLASP_TRY(ymap_open(c, n, "model", &m));
    clasp_status st = plan_only(c, &m, "model", s);
    yaml_node_t *zn = ymap_get(&m, "zoo");
    if (st == CLASP_OK && zn) {
        st = parse_model_zoo(c, &m, zn);
        ymap_close(&m);
        return st;
    }
    char *arch = NULL;
    if (st == CLASP_OK) st = plan_get_text(c, &m, "model", "arch", "default", &arch);
    yaml_node_t *v = ymap_get(&m, "arch");
    plan_loc(c, v ? v : n, p->arch_loc, sizeof p->arch_loc);
    double depth = 0, width = 0;
    int is_wrn = arch && !strcmp(arch, "wrn"),
        is_resnet = arch && (!strcmp(arch, "resnet18") || !strcmp(arch, "preact-resnet18"));
    if (st == CLASP_OK)
        st = plan_get_row(c, &m, s, "depth", plan_schema_find(s, "depth")->def, &depth);
    if (st == CLASP_OK)
        st = plan_get_row(c, &m, s, "width", is_wrn ? 10 : plan_schema_find(s, "width")->def,
                          &width);
    yaml_node_t *dv = ymap_get(&m, "depth"), *wv = ymap_get(&m, "width");
    if (st == CLASP_OK && dv && !is_wrn)
        st = plan_err(c, dv, "model.depth applies to arch 'wrn' only (this one is '%s')", arch);
    if (st == CLASP_OK && wv && !is_wrn && !is_resnet)
        st = plan_err(c, wv,
                      "model.width applies to arch wrn (widen factor), resnet18 and "
                      "preact-resnet18 (base "
                      "width) only");
    if (st == CLASP_OK && is_wrn && ((int)depth - 4) % 6 != 0)
        st = plan_err(c, dv ? dv : n,
                      "model.depth of a WideResNet must be 6n+4 (10, 16, 22, 28, 34, ...), got %d",
                      (int)depth);
    char resolved[96];
    if (st == CLASP_OK) {
        /* One text names the architecture everywhere (checkpoints, reports). */
        if (is_wrn) snprintf(resolved, sizeof resolved, "wrn-%d-%d", (int)depth, (int)width);
        else if (is_resnet && (int)width != 64)
            snprintf(resolved, sizeof resolved, "%s-w%d", arch, (int)width);
        else snprintf(resolved, sizeof resolved, "%s", arch);
        p->arch = strdup(resolved);
        if (!p->arch) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    free(arch);
    if (st == CLASP_OK && strcmp(p->arch, "default") != 0 && !clasp_model_is_preset(p->arch)) {
        clasp_layer_spec *layers = NULL;
        int nl = 0;
        if (clasp_arch_parse(p->arch, &layers, &nl) != CLASP_OK) st = plan_wrap(c, v, "model.arch");
        free(layers);
    }
    yaml_node_t *nv = ymap_get(&m, "normalize");
    if (st == CLASP_OK && !yis_null(nv)) {
        ymap nm;
        st = ymap_open(c, nv, "model.normalize", &nm);
        if (st == CLASP_OK) {
            int a = 0, b = 0;
            st = plan_only(c, &nm, "model.normalize", ns);
            if (st == CLASP_OK)
                st = get_floats(c, ymap_get(&nm, "mean"), "model.normalize.mean", 0, p->norm_mean,
                                &a);
            if (st == CLASP_OK)
                st = get_floats(c, ymap_get(&nm, "std"), "model.normalize.std", 1, p->norm_std, &b);
            if (st == CLASP_OK && a != b)
                st = plan_err(c, nv, "model.normalize: mean has %d values, std %d", a, b);
            p->normalize = a;
            ymap_close(&nm);
        }
    }
    ymap_close(&m);
    return st;
}

clasp_status plan_p_schedule(pctx *c, yaml_node_t *n, const plan_section *s)
{
    const char *const *names = plan_schema_find(s, "name")->choices;
    clasp_plan *p = c->plan;
    p->schedule = (clasp_lr_schedule)plan_schema_find(s, "name")->def;
    p->gamma = plan_schema_find(s, "gamma")->def;
    if (yis_null(n)) return CLASP_OK;
    int which = 1;
    /* "schedule: cosine" is short for "schedule: {name: cosine}". */
    if (n->type == YAML_SCALAR_NODE) {
        CLASP_TRY(plan_get_choice(c, n, "train.schedule", "name", names, 1, &which));
        p->schedule = (clasp_lr_schedule)which;
        if (which == CLASP_LR_STEP)
            return plan_err(c, n,
                            "train.schedule: 'step' needs milestones: write {name: step, "
                            "milestones: [...], gamma: 0.1}");
        return CLASP_OK;
    }
    ymap m;
    CLASP_TRY(ymap_open(c, n, "train.schedule", &m));
    clasp_status st = plan_only(c, &m, "train.schedule", s);
    if (st == CLASP_OK)
        st = plan_get_choice(c, ymap_get(&m, "name"), "train.schedule", "name", names, 1, &which);
    p->schedule = (clasp_lr_schedule)which;
    yaml_node_t *ms = ymap_get(&m, "milestones");
    if (st == CLASP_OK && which != CLASP_LR_STEP && (ms || ymap_get(&m, "gamma")))
        st = plan_err(c, ms ? ymap_keynode(&m, "milestones") : ymap_keynode(&m, "gamma"),
                      "train.schedule: milestones and gamma apply to schedule 'step' only (this "
                      "one is '%s')",
                      names[which]);
    if (st == CLASP_OK && which == CLASP_LR_STEP) {
        st = plan_get_row(c, &m, s, "gamma", plan_schema_find(s, "gamma")->def, &p->gamma);
        if (st == CLASP_OK && (!ms || ms->type != YAML_SEQUENCE_NODE || yseq_len(ms) == 0))
            st = plan_err(c, ms ? ms : n,
                          "train.schedule: 'step' needs milestones, a non-empty list of epochs, "
                          "got %s",
                          ykind(ms));
        for (int i = 0; st == CLASP_OK && i < yseq_len(ms); i++) {
            yaml_node_t *it = yseq_item(c, ms, i);
            const char *s = yscalar(it);
            char *end;
            long v = s ? strtol(s, &end, 10) : 0;
            if (i >= CLASP_PLAN_MAX_MILESTONES)
                st = plan_err(c, it, "train.schedule.milestones: at most %d milestones",
                              CLASP_PLAN_MAX_MILESTONES);
            else if (!s || !*s || *end || v < 1 || v > p->epochs)
                st = plan_err(c, it,
                              "train.schedule.milestones: each must be a whole epoch number in [1, "
                              "%d] (train.epochs), got %s%s%s",
                              p->epochs, s ? "'" : "", s ? s : ykind(it), s ? "'" : "");
            else if (i > 0 && v <= p->milestones[i - 1])
                st = plan_err(c, it, "train.schedule.milestones must increase (%ld after %d)", v,
                              p->milestones[i - 1]);
            else p->milestones[p->n_milestones++] = (int)v;
        }
    }
    ymap_close(&m);
    return st;
}

/* train.augment: true, false, or {crop: PAD, flip: BOOL}. The default
 * follows the data: crop and flip for natural-image sets (CIFAR-10/100:
 * pad 4; STL-10: pad 12), none for digits and clothing (MNIST, Fashion-MNIST,
 * SVHN), where flips change the class or nothing is gained. */
clasp_status plan_p_augment(pctx *c, yaml_node_t *n, const plan_section *s)
{
    clasp_plan *p = c->plan;
    int natural = !strncmp(p->dataset, "cifar", 5) || !strcmp(p->dataset, "stl10");
    int def_pad = !strcmp(p->dataset, "stl10") ? 12 : 4;
    p->augment_pad = natural ? def_pad : 0;
    p->augment_flip = natural;
    if (yis_null(n)) return CLASP_OK;
    if (n->type == YAML_SCALAR_NODE) {
        int on;
        if (!plan_bool_text(yscalar(n), &on))
            return plan_err(c, n,
                            "train.augment expects true, false or {crop: <pixels>, flip: "
                            "true|false}, got '%s'",
                            yscalar(n));
        p->augment_pad = on ? def_pad : 0;
        p->augment_flip = on;
        return CLASP_OK;
    }
    ymap m;
    CLASP_TRY(ymap_open(c, n, "train.augment", &m));
    clasp_status st = plan_only(c, &m, "train.augment", s);
    double v = 0;
    if (st == CLASP_OK) st = plan_get_row(c, &m, s, "crop", 0, &v);
    p->augment_pad = (int)v;
    yaml_node_t *f = ymap_get(&m, "flip");
    p->augment_flip = 0;
    if (st == CLASP_OK && !yis_null(f) && !plan_bool_text(yscalar(f), &p->augment_flip))
        st = plan_err(c, f, "train.augment.flip expects true or false, got %s",
                      yscalar(f) ? yscalar(f) : ykind(f));
    ymap_close(&m);
    return st;
}

/* train.models, unless the models are listed at the top. */
clasp_status plan_p_train_models(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *models)
{
    (void)k;
    if (!models && !c->root_models)
        return plan_err(c, m->node,
                        "train: missing required key 'models' (a list such as [{name: standard}, "
                        "{defense: pgd-at}])");
    if (models && c->root_models)
        return plan_err(c, models,
                        "the models are listed twice (train.models and the top-level models): "
                        "keep one list");
    return models ? plan_parse_models(c, models) : CLASP_OK;
}

/* evaluate.l2_eps: one positive number or an ascending list of them. */
clasp_status plan_p_l2_eps(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)m, (void)k;
    clasp_plan *p = c->plan;
    if (!v || yis_null(v)) return CLASP_OK;
    int seq = v->type == YAML_SEQUENCE_NODE, n = seq ? yseq_len(v) : 1;
    if (!seq && v->type != YAML_SCALAR_NODE)
        return plan_err(c, v,
                        "evaluate.l2_eps expects a positive number or a list of them, e.g. [1.0, "
                        "2.0], got %s",
                        ykind(v));
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = seq ? yseq_item(c, v, i) : v;
        const char *s = yscalar(it);
        char *end;
        double d = s ? strtod(s, &end) : 0;
        if (!s || !*s || *end || !isfinite(d) || !(d > 0))
            return plan_err(c, it,
                            "evaluate.l2_eps: each budget must be a positive number (an L2 "
                            "distance), got %s",
                            s ? s : ykind(it));
        if (p->n_l2_eps == CLASP_PLAN_MAX_L2_EPS)
            return plan_err(c, it, "evaluate.l2_eps: at most %d budgets", CLASP_PLAN_MAX_L2_EPS);
        if (p->n_l2_eps > 0 && !(d > p->l2_eps[p->n_l2_eps - 1]))
            return plan_err(c, it, "evaluate.l2_eps must increase (%s after %g)", s,
                            p->l2_eps[p->n_l2_eps - 1]);
        p->l2_eps[p->n_l2_eps++] = d;
    }
    return CLASP_OK;
}

clasp_status plan_p_attacks(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *attacks)
{
    (void)k;
    if (!attacks)
        return plan_err(c, m->node,
                        "evaluate: missing required key 'attacks' (a list such as [{name: pgd, "
                        "params: {eps: 0.1}}])");
    return plan_parse_attacks(c, attacks);
}

clasp_status plan_p_output_dir(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k, (void)v;
    clasp_plan *p = c->plan;
    char def[200];
    snprintf(def, sizeof def, "runs/%s", p->name);
    return plan_get_text(c, m, "output", "dir", def, &p->output);
}

/* No train section: nothing trains (each model is a checkpoint); the
 * values a post-hoc fit reads (batch, validation size) keep their
 * defaults. */
static clasp_status train_defaults(pctx *c, const plan_section *train)
{
    clasp_plan *p = c->plan;
    p->no_train = 1;
    p->epochs = 0;
    p->batch = (int)plan_schema_find(train, "batch")->def;
    p->val_eval_size = (size_t)plan_schema_find(train, "val_eval_size")->def;
    /* The optimiser's and the schedule's tables, as when they are absent. */
    CLASP_TRY(plan_parse_section(c, NULL, plan_schema_find(train, "optimiser")->sub));
    return plan_parse_section(c, NULL, plan_schema_find(train, "schedule")->sub);
}

/* Each model's epochs: its own (checkpoints), else train.epochs; a model
 * that trains needs a train section. */
static clasp_status resolve_epochs(pctx *c, yaml_node_t *train)
{
    clasp_plan *p = c->plan;
    for (int i = 0; i < p->n_models; i++) {
        clasp_plan_model *m = &p->models[i];
        if (m->epochs < 0) m->epochs = p->epochs;
        if (!train && (m->epochs > 0 || !m->checkpoint[0]))
            return clasp_error(CLASP_ERR_CONFIG,
                               "%s: model '%s' %s, which needs a train section (epochs, batch, "
                               "optimiser, schedule)",
                               m->loc, m->name,
                               m->checkpoint[0] ? "is fine-tuned" : "is trained from the seed");
    }
    return CLASP_OK;
}

/* The train section, or without one the values a post-hoc fit reads. */
clasp_status plan_p_train(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)m;
    return v ? plan_parse_section(c, v, k->sub) : train_defaults(c, k->sub);
}

/* A streamed image folder: models train on DIR/train (random-resized crops
 * and flips, at the size the test images are prepared to), one process
 * reads it. data.preprocess defaults to the zoo entries' input
 * preparation. */
static clasp_status resolve_streamed(pctx *c)
{
    clasp_plan *p = c->plan;
    if (!clasp_plan_streamed(p)) return CLASP_OK;
    if (p->data_preprocess[0]) return CLASP_OK;
    if (c->zoo_prep_other)
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s: the models' zoo entries prepare their inputs differently (%s, %s) "
                           "and one stream serves them all: set data.preprocess",
                           *p->data_loc ? p->data_loc : p->source, c->zoo_prep, c->zoo_prep_other);
    const char *pre = c->zoo_prep ? c->zoo_prep : "Res256Crop224";
    if (strlen(pre) >= sizeof p->data_preprocess)
        return clasp_error(CLASP_ERR_CONFIG, "zoo preprocessing '%s' is too long", pre);
    snprintf(p->data_preprocess, sizeof p->data_preprocess, "%s", pre);
    return CLASP_OK;
}

/* The top-level models list, then every model's epochs. */
clasp_status plan_p_root_models(pctx *c, const ymap *m, const plan_key *k, yaml_node_t *v)
{
    (void)k;
    if (v) CLASP_TRY(plan_parse_models(c, v));
    CLASP_TRY(resolve_epochs(c, ymap_get(m, "train")));
    return resolve_streamed(c);
}

static clasp_status parse_root(pctx *c, yaml_node_t *root)
{
    const plan_section *s = &plan_schema_root;
    if (!root)
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s:1:1: the file is empty; expected a mapping with the sections "
                           "experiment, data, model, train, evaluate, output",
                           c->file);
    ymap m;
    CLASP_TRY(ymap_open(c, root, s->what, &m));
    clasp_status st = plan_only(c, &m, s->what, s);
    c->root_models = ymap_get(&m, "models");
    /* A study of existing models lists them at the top and may have no
     * train section (a model that trains then says it needs one). */
    for (int i = 0; i < s->n && st == CLASP_OK; i++) {
        const plan_key *k = &s->keys[i];
        if (!(k->flags & PF_REQUIRED) || ymap_get(&m, k->key)) continue;
        if (c->root_models && !strcmp(k->key, "train")) continue;
        st = plan_err(c, root,
                      "missing required section '%s' (sections: experiment and train and "
                      "evaluate are required, train optional with a top-level models list "
                      "of checkpoints; data, model, output are optional)",
                      k->key);
    }
    for (int i = 0; i < s->n && st == CLASP_OK; i++) {
        const plan_key *k = &s->keys[i];
        yaml_node_t *v = ymap_get(&m, k->key);
        st = k->parse ? k->parse(c, &m, k, v) : plan_parse_section(c, v, k->sub);
    }
    ymap_close(&m);
    return st;
}

/* ---- entry points ------------------------------------------------------ */

static clasp_status yaml_syntax_error(const char *file, const yaml_parser_t *ps)
{
    const yaml_mark_t *mk = &ps->problem_mark;
    if (ps->context)
        return clasp_error(CLASP_ERR_CONFIG, "%s:%zu:%zu: YAML syntax: %s %s (opened at line %zu)",
                           file, mk->line + 1, mk->column + 1, ps->problem ? ps->problem : "error",
                           ps->context, ps->context_mark.line + 1);
    return clasp_error(CLASP_ERR_CONFIG, "%s:%zu:%zu: YAML syntax: %s", file, mk->line + 1,
                       mk->column + 1, ps->problem ? ps->problem : "error");
}

clasp_status clasp_plan_parse(const clasp_registry *r, const char *text, size_t len,
                              const char *name, clasp_plan **out)
{
    *out = NULL;
    if (!name) name = "<experiment>";
    clasp_plan *p = calloc(1, sizeof *p);
    if (!p || !(p->source = strdup(name))) {
        free(p);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    yaml_parser_t ps;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&ps)) {
        clasp_plan_free(p);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory (YAML parser)");
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    clasp_status st;
    if (!yaml_parser_load(&ps, &doc)) {
        st = yaml_syntax_error(name, &ps);
    } else {
        pctx c = {.doc = &doc, .file = name, .reg = r, .plan = p};
        st = parse_root(&c, yaml_document_get_root_node(&doc));
        yaml_document_delete(&doc);
        /* A second document would be silently ignored: refuse it. */
        if (st == CLASP_OK) {
            if (!yaml_parser_load(&ps, &doc)) {
                st = yaml_syntax_error(name, &ps);
            } else {
                yaml_node_t *extra = yaml_document_get_root_node(&doc);
                if (extra)
                    st =
                        clasp_error(CLASP_ERR_CONFIG,
                                    "%s:%zu:%zu: a second YAML document ('---'); an experiment "
                                    "file holds one",
                                    name, extra->start_mark.line + 1, extra->start_mark.column + 1);
                yaml_document_delete(&doc);
            }
        }
    }
    yaml_parser_delete(&ps);
    if (st != CLASP_OK) {
        clasp_plan_free(p);
        return st;
    }
    *out = p;
    return CLASP_OK;
}

/* The largest experiment file read. Real ones are a few kilobytes; the
 * YAML document of a larger file costs some thirty times its size in
 * memory before a single key is checked. */
#define PLAN_MAX_BYTES ((size_t)1 << 20)

clasp_status clasp_plan_load(const clasp_registry *r, const char *path, clasp_plan **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* One byte more than allowed tells a file at the limit from a larger one. */
    char *buf = malloc(PLAN_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    size_t len = fread(buf, 1, PLAN_MAX_BYTES + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return clasp_error(CLASP_ERR_IO, "%s: read error", path);
    }
    if (len > PLAN_MAX_BYTES) {
        free(buf);
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s: larger than %zu bytes, the limit for an experiment file (is it "
                           "the right file?)",
                           path, PLAN_MAX_BYTES);
    }
    clasp_status st = clasp_plan_parse(r, buf, len, path, out);
    free(buf);
    return st;
}

void clasp_plan_free(clasp_plan *p)
{
    if (!p) return;
    free(p->source);
    free(p->device);
    free(p->data_path);
    free(p->groups);
    free(p->arch);
    for (int i = 0; i < p->n_models; i++) plan_defense_free(p->models[i].defense);
    free(p->models);
    for (int i = 0; i < p->n_attacks; i++) plan_attack_clear(&p->attacks[i]);
    free(p->attacks);
    free(p->output);
    free(p);
}

clasp_status clasp_plan_set_output(clasp_plan *p, const char *dir)
{
    if (!dir || !*dir) return clasp_error(CLASP_ERR_INVALID, "empty output folder");
    char *d = strdup(dir);
    if (!d) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    free(p->output);
    p->output = d;
    return CLASP_OK;
}
