/* Plugin blocks of an experiment file: attacks to evaluate and the defense
 * blocks of the models to train, with parameter grids.
 *
 * A block is "name" or {name, params, ...}. A list as a parameter's value
 * is a grid axis; a block with axes expands into the cartesian product of
 * its axes (in the order they appear, the last varying fastest), each point
 * labelled with " key=value" per axis. The same list node met twice (an
 * alias) is one axis: its uses vary together. Every grid point is validated
 * against the plugin's schema through clasp_params_build, with the
 * location of each value, so a bad element names its own line and column. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "clasp/zoo.h"
#include "experiment/plan_internal.h"

#define MAX_AXES 16
#define MAX_GRID 1024
/* Models, and attacks, one experiment may expand to. Every new one is
 * checked against all before it for a distinct name, and aliases make big
 * lists cheap to write: without a cap a 3 KB file of aliased grids plans a
 * hundred thousand models and takes minutes. A real study is far smaller. */
#define MAX_PLANNED PLAN_MAX_PLANNED

typedef struct rblock {
    yaml_node_t *node, *name_node, *label;
    const clasp_plugin_desc *desc;
    ymap params;
    struct rblock *attack, *inner;
} rblock;

typedef struct axes {
    yaml_node_t *seq[MAX_AXES];
    const char *key[MAX_AXES];
    int n;
} axes;

void plan_fmt_double(double v, char *buf, size_t size)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

void plan_plugin_clear(clasp_plan_plugin *p)
{
    for (int i = 0; i < p->n_params; i++) {
        if (p->keys) free(p->keys[i]);
        if (p->values) free(p->values[i]);
        if (p->where) free(p->where[i]);
    }
    free(p->keys), free(p->values), free(p->where);
    memset(p, 0, sizeof *p);
}

void plan_defense_free(clasp_plan_defense *d)
{
    if (!d) return;
    plan_plugin_clear(&d->plugin);
    if (d->attack) plan_plugin_clear(d->attack);
    free(d->attack);
    plan_defense_free(d->inner);
    free(d);
}

static void rblock_free(rblock *b)
{
    if (!b) return;
    ymap_close(&b->params);
    rblock_free(b->attack);
    rblock_free(b->inner);
    free(b);
}

/* Reads one block. kind: attack or defense; with_label: evaluate's
 * attacks; nested: an inner defense (which may not wrap another). */
static clasp_status parse_block(pctx *c, yaml_node_t *n, clasp_plugin_kind kind, int with_label,
                                int nested, rblock **out)
{
    const char *kname = clasp_plugin_kind_name(kind);
    char what[64];
    snprintf(what, sizeof what, "%s block", kname);
    *out = NULL;
    rblock *b = calloc(1, sizeof *b);
    if (!b) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    b->node = n;
    clasp_status st = CLASP_OK;
    ymap m = {0};
    if (n && n->type == YAML_SCALAR_NODE && !yis_null(n)) {
        b->name_node = n; /* "fgsm" is short for {name: fgsm} */
    } else {
        st = ymap_open(c, n, what, &m);
        if (st == CLASP_OK)
            st = plan_only(c, &m, what,
                           kind == CLASP_PLUGIN_DEFENSE ? &plan_schema_defense
                           : with_label                 ? &plan_schema_eval_attack
                                                        : &plan_schema_attack);
        if (st == CLASP_OK) {
            b->name_node = ymap_get(&m, "name");
            if (!b->name_node)
                st = plan_err(c, n, "%s: missing required key 'name' (the %s plugin)", what, kname);
            else if (!yscalar(b->name_node) || yis_null(b->name_node))
                st = plan_err(c, b->name_node, "%s: name expects a plugin name, got %s", what,
                              ykind(b->name_node));
        }
        if (st == CLASP_OK && (b->label = ymap_get(&m, "label")) &&
            (!yscalar(b->label) || yis_null(b->label)))
            st =
                plan_err(c, b->label, "attack label expects a text value, got %s", ykind(b->label));
    }
    if (st == CLASP_OK &&
        clasp_registry_find(c->reg, yscalar(b->name_node), kind, &b->desc) != CLASP_OK)
        st = plan_wrap(c, b->name_node, NULL);
    yaml_node_t *params = m.node ? ymap_get(&m, "params") : NULL;
    if (st == CLASP_OK && !yis_null(params)) {
        char pw[120];
        snprintf(pw, sizeof pw, "%s params", b->desc->name);
        st = ymap_open(c, params, pw, &b->params);
        if (st == CLASP_OK) st = ymap_no_dups(c, &b->params);
    }
    for (int i = 0; st == CLASP_OK && i < b->params.n; i++) {
        yaml_node_t *v = b->params.p[i].value;
        const char *k = yscalar(b->params.p[i].key);
        if (v->type == YAML_MAPPING_NODE)
            st = plan_err(c, v,
                          "%s: parameter '%s' expects a value or a list of values (a grid), got a "
                          "mapping",
                          b->desc->name, k);
        else if (v->type == YAML_SEQUENCE_NODE && yseq_len(v) == 0)
            st = plan_err(c, v,
                          "%s: parameter '%s' is an empty list; a grid needs at least one value",
                          b->desc->name, k);
        for (int j = 0; st == CLASP_OK && j < yseq_len(v); j++) {
            yaml_node_t *it = yseq_item(c, v, j);
            if (it->type != YAML_SCALAR_NODE)
                st =
                    plan_err(c, it, "%s: grid of '%s': each element must be a single value, got %s",
                             b->desc->name, k, ykind(it));
        }
    }
    if (st == CLASP_OK && kind == CLASP_PLUGIN_DEFENSE && m.node) {
        yaml_node_t *a = ymap_get(&m, "attack"), *in = ymap_get(&m, "inner");
        if (!yis_null(a)) st = parse_block(c, a, CLASP_PLUGIN_ATTACK, 0, 0, &b->attack);
        if (st == CLASP_OK && !yis_null(in)) {
            if (nested)
                st = plan_err(c, ymap_keynode(&m, "inner"),
                              "a wrapped defense cannot wrap another one (a defense gets one inner "
                              "defense through clasp_defense_env)");
            else st = parse_block(c, in, CLASP_PLUGIN_DEFENSE, 0, 1, &b->inner);
        }
        /* The environment carries one attack: the wrapper's or its inner's. */
        if (st == CLASP_OK && b->attack && b->inner && b->inner->attack)
            st = plan_err(c, b->inner->attack->node,
                          "two inner attacks: '%s' declares one and so does the defense it wraps; "
                          "a model trains with one attack, give it in one of the two blocks",
                          b->desc->name);
    }
    ymap_close(&m);
    if (st != CLASP_OK) {
        rblock_free(b);
        return st;
    }
    *out = b;
    return CLASP_OK;
}

static clasp_status collect_axes(const pctx *c, const rblock *b, axes *ax)
{
    for (; b; b = b->inner) {
        const rblock *blocks[2] = {b, b->attack};
        for (int bi = 0; bi < 2; bi++) {
            const rblock *x = blocks[bi];
            for (int i = 0; x && i < x->params.n; i++) {
                yaml_node_t *v = x->params.p[i].value;
                if (v->type != YAML_SEQUENCE_NODE) continue;
                int seen = 0;
                for (int j = 0; j < ax->n; j++) seen |= ax->seq[j] == v;
                if (seen) continue;
                if (ax->n == MAX_AXES)
                    return plan_err(c, v, "more than %d grid axes in one block", MAX_AXES);
                ax->seq[ax->n] = v;
                ax->key[ax->n++] = yscalar(x->params.p[i].key);
            }
        }
    }
    return CLASP_OK;
}

static int axis_of(const axes *ax, const yaml_node_t *seq)
{
    for (int j = 0; j < ax->n; j++)
        if (ax->seq[j] == seq) return j;
    return -1;
}

/* One grid point of one plugin: validated parameters, canonical text. */
static clasp_status resolve_plugin(pctx *c, const rblock *b, const axes *ax, const int *choice,
                                   clasp_plan_plugin *out)
{
    memset(out, 0, sizeof *out);
    int n = b->params.n, np = b->desc->n_params;
    const char **keys = calloc((size_t)n + 1, sizeof *keys),
               **vals = calloc((size_t)n + 1, sizeof *vals);
    char **wh = calloc((size_t)n + 1, sizeof *wh);
    clasp_status st = keys && vals && wh ? CLASP_OK : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    for (int i = 0; st == CLASP_OK && i < n; i++) {
        yaml_node_t *v = b->params.p[i].value;
        if (v->type == YAML_SEQUENCE_NODE) v = yseq_item(c, v, choice[axis_of(ax, v)]);
        keys[i] = yscalar(b->params.p[i].key);
        vals[i] = yscalar(v);
        /* Messages point at the value (the grid element), or at the key
         * when the plugin has no parameter of that name. */
        int known = 0;
        for (int k = 0; k < np; k++) known |= !strcmp(b->desc->params[k].name, keys[i]);
        if (!(wh[i] = malloc(300))) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        else plan_loc(c, known ? v : b->params.p[i].key, wh[i], 300);
    }
    if (st == CLASP_OK) st = plan_plugin_fill(c, b->desc, keys, vals, wh, n, b->node, out);
    for (int i = 0; wh && i < n; i++) free(wh[i]);
    free(keys), free(vals), free(wh);
    return st;
}

clasp_status plan_plugin_fill(pctx *c, const clasp_plugin_desc *desc, const char **keys,
                              const char **vals, char **wh, int n, const yaml_node_t *node,
                              clasp_plan_plugin *out)
{
    memset(out, 0, sizeof *out);
    int np = desc->n_params;
    clasp_params params = {0};
    clasp_status st = clasp_params_build(desc, keys, vals, (const char *const *)wh, n, &params);
    out->desc = desc;
    snprintf(out->name, sizeof out->name, "%s", desc->name);
    plan_loc(c, node, out->loc, sizeof out->loc);
    if (st == CLASP_OK) {
        clasp_params_format(&params, out->params_text, sizeof out->params_text);
        out->keys = calloc((size_t)np + 1, sizeof *out->keys);
        out->values = calloc((size_t)np + 1, sizeof *out->values);
        out->where = calloc((size_t)np + 1, sizeof *out->where);
        if (!out->keys || !out->values || !out->where)
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        else out->n_params = np;
    }
    for (int i = 0; st == CLASP_OK && i < np; i++) {
        const clasp_param_spec *s = &params.schema[i];
        const clasp_param_value *v = &params.values[i];
        char text[64];
        const char *t = text;
        switch (s->type) {
        case CLASP_PARAM_FLOAT: plan_fmt_double(v->num, text, sizeof text); break;
        case CLASP_PARAM_INT: snprintf(text, sizeof text, "%.0f", v->num); break;
        case CLASP_PARAM_BOOL: t = v->num != 0 ? "true" : "false"; break;
        case CLASP_PARAM_STRING: t = v->str ? v->str : ""; break;
        }
        const char *w = out->loc;
        for (int k = 0; k < n; k++)
            if (!strcmp(keys[k], s->name)) w = wh[k];
        out->keys[i] = strdup(s->name);
        out->values[i] = strdup(t);
        out->where[i] = strdup(w);
        if (!out->keys[i] || !out->values[i] || !out->where[i])
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    clasp_params_free(&params);
    if (st != CLASP_OK) plan_plugin_clear(out);
    return st;
}

clasp_status plan_resolve_single(pctx *c, yaml_node_t *n, clasp_plan_plugin *out)
{
    memset(out, 0, sizeof *out);
    rblock *b;
    CLASP_TRY(parse_block(c, n, CLASP_PLUGIN_ATTACK, 0, 0, &b));
    axes ax = {0};
    clasp_status st = collect_axes(c, b, &ax);
    if (st == CLASP_OK && ax.n)
        st = plan_err(c, ax.seq[0],
                      "%s: a list (a grid) inside an ensemble is not supported; write one ensemble "
                      "per value",
                      b->desc->name);
    if (st == CLASP_OK) st = resolve_plugin(c, b, &ax, NULL, out);
    rblock_free(b);
    return st;
}

static clasp_status resolve_defense(pctx *c, const rblock *b, const axes *ax, const int *choice,
                                    clasp_plan_defense **out)
{
    *out = NULL;
    clasp_plan_defense *d = calloc(1, sizeof *d);
    if (!d) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st = resolve_plugin(c, b, ax, choice, &d->plugin);
    if (st == CLASP_OK && b->attack) {
        d->attack = calloc(1, sizeof *d->attack);
        st = d->attack ? resolve_plugin(c, b->attack, ax, choice, d->attack)
                       : clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    if (st == CLASP_OK && b->inner) st = resolve_defense(c, b->inner, ax, choice, &d->inner);
    if (st != CLASP_OK) {
        plan_defense_free(d);
        return st;
    }
    *out = d;
    return CLASP_OK;
}

/* Number of grid points; refuses absurd grids before allocating them. */
static clasp_status grid_size(const pctx *c, const axes *ax, const yaml_node_t *at, int *out)
{
    long total = 1;
    for (int j = 0; j < ax->n; j++) {
        total *= yseq_len(ax->seq[j]);
        if (total > MAX_GRID) return plan_err(c, at, "this grid has more than %d points", MAX_GRID);
    }
    *out = (int)total;
    return CLASP_OK;
}

/* Mixed-radix digits of point g (the last axis varies fastest). */
static void grid_point(const axes *ax, int g, int *choice)
{
    for (int j = ax->n - 1; j >= 0; j--) {
        int len = yseq_len(ax->seq[j]);
        choice[j] = g % len;
        g /= len;
    }
}

static void grid_label(const pctx *c, const axes *ax, const int *choice, const char *base,
                       char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "%s", base);
    for (int j = 0; j < ax->n && len < size; j++)
        len += (size_t)snprintf(buf + len, size - len, " %s=%s", ax->key[j],
                                yscalar(yseq_item(c, ax->seq[j], choice[j])));
}

clasp_status plan_parse_attacks(pctx *c, yaml_node_t *seq)
{
    clasp_plan *p = c->plan;
    if (seq->type != YAML_SEQUENCE_NODE || yseq_len(seq) == 0)
        return plan_err(c, seq,
                        "evaluate.attacks expects a non-empty list of attack blocks, got %s",
                        ykind(seq));
    clasp_status st = CLASP_OK;
    for (int i = 0; st == CLASP_OK && i < yseq_len(seq); i++) {
        yaml_node_t *item = yseq_item(c, seq, i);
        if (plan_is_ensemble(c, item)) {
            st = plan_parse_ensemble(c, item);
            continue;
        }
        rblock *b;
        CLASP_TRY(parse_block(c, item, CLASP_PLUGIN_ATTACK, 1, 0, &b));
        axes ax = {0};
        int total = 0, choice[MAX_AXES];
        st = collect_axes(c, b, &ax);
        if (st == CLASP_OK) st = grid_size(c, &ax, item, &total);
        if (st == CLASP_OK && p->n_attacks + total > MAX_PLANNED)
            st = plan_err(c, item,
                          "evaluate.attacks expands to more than %d attacks (grids included)",
                          MAX_PLANNED);
        clasp_plan_attack *grown =
            st == CLASP_OK ? realloc(p->attacks, (size_t)(p->n_attacks + total) * sizeof *grown)
                           : NULL;
        if (st == CLASP_OK && !grown) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        if (grown) p->attacks = grown;
        for (int g = 0; st == CLASP_OK && g < total; g++) {
            clasp_plan_attack *a = &p->attacks[p->n_attacks];
            memset(a, 0, sizeof *a);
            grid_point(&ax, g, choice);
            grid_label(c, &ax, choice, b->label ? yscalar(b->label) : b->desc->name, a->label,
                       sizeof a->label);
            st = resolve_plugin(c, b, &ax, choice, &a->plugin);
            for (int k = 0; st == CLASP_OK && k < p->n_attacks; k++)
                if (!strcmp(p->attacks[k].label, a->label))
                    st =
                        plan_err(c, item,
                                 "two attacks are labelled '%s'; give this one a distinct 'label:'",
                                 a->label);
            if (st == CLASP_OK) p->n_attacks++;
            else plan_plugin_clear(&a->plugin);
        }
        rblock_free(b);
    }
    return st;
}

/* Checkpoint file name from a model name: safe characters only. */
static void file_name(const char *name, char *buf, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < size; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '=' || ch == '+' || ch == ',';
        buf[j++] = ok ? ch : '_';
    }
    buf[j] = '\0';
    if (buf[0] == '.') buf[0] = '_';
}

static clasp_status add_model(pctx *c, yaml_node_t *at, const char *name, const char *arch,
                              clasp_plan_defense *d)
{
    clasp_plan *p = c->plan;
    clasp_status st = CLASP_OK;
    char file[160];
    if (p->n_models == MAX_PLANNED)
        st = plan_err(c, at, "train.models expands to more than %d models (grids included)",
                      MAX_PLANNED);
    else if (strlen(name) >= sizeof p->models[0].name)
        st = plan_err(c, at, "model name '%s' is too long (at most %zu characters)", name,
                      sizeof p->models[0].name - 1);
    file_name(name, file, sizeof file - 16);
    if (st == CLASP_OK && (!strcmp(file, "state") || !strcmp(file, "report")))
        st =
            plan_err(c, at, "a model may not be named '%s' (the output folder uses that file name)",
                     name);
    for (int k = 0; st == CLASP_OK && k < p->n_models; k++) {
        if (!strcmp(p->models[k].name, name))
            st = plan_err(c, at, "two models are named '%s'; give each a distinct 'name:'", name);
        else if (!strcmp(p->models[k].file, file))
            st = plan_err(c, at,
                          "models '%s' and '%s' would share the checkpoint file %s.safetensors; "
                          "rename one",
                          p->models[k].name, name, file);
    }
    clasp_plan_model *grown =
        st == CLASP_OK ? realloc(p->models, (size_t)(p->n_models + 1) * sizeof *grown) : NULL;
    if (st == CLASP_OK && !grown) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (st != CLASP_OK) {
        plan_defense_free(d);
        return st;
    }
    p->models = grown;
    clasp_plan_model *m = &p->models[p->n_models++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->file, sizeof m->file, "%s", file);
    snprintf(m->arch, sizeof m->arch, "%s", arch ? arch : "");
    m->defense = d;
    return CLASP_OK;
}

clasp_status plan_zoo_entry(pctx *c, yaml_node_t *zn, const char *what, const char *threat,
                            const clasp_zoo_entry **out)
{
    const char *name = yscalar(zn);
    if (clasp_zoo_find(name, c->plan->dataset, threat, out) != CLASP_OK)
        return plan_wrap(c, zn, what);
    if (!(*out)->arch)
        return plan_err(c, zn, "zoo entry %s is not supported: %s", name,
                        (*out)->why_not ? (*out)->why_not : "unknown architecture");
    /* data.preprocess's default: the entries' own input preparation. */
    const char *pre = (*out)->preprocessing;
    if (pre && !c->zoo_prep) c->zoo_prep = pre;
    else if (pre && strcmp(pre, c->zoo_prep) != 0) c->zoo_prep_other = pre;
    return CLASP_OK;
}

/* What an entry says of an existing model: its file, zoo entry and
 * fine-tuning epochs, applied to every model the entry expands to. */
typedef struct model_source {
    const char *checkpoint, *zoo;
    const clasp_zoo_entry *entry;
    int epochs; /* -1: train.epochs */
} model_source;

static clasp_status parse_source(pctx *c, ymap *m, const char **arch, model_source *src)
{
    clasp_plan *p = c->plan;
    memset(src, 0, sizeof *src);
    src->epochs = -1;
    yaml_node_t *cn = ymap_get(m, "checkpoint"), *zn = ymap_get(m, "zoo"),
                *tn = ymap_get(m, "threat"), *en = ymap_get(m, "epochs"), *an = ymap_get(m, "arch");
    if (cn && (!yscalar(cn) || yis_null(cn) || !*yscalar(cn) ||
               strlen(yscalar(cn)) >= sizeof p->models[0].checkpoint))
        return plan_err(c, cn, "a model's checkpoint expects a file path, got %s", ykind(cn));
    if (zn && (!yscalar(zn) || yis_null(zn) || !*yscalar(zn)))
        return plan_err(c, zn, "a model's zoo expects a RobustBench entry name, got %s", ykind(zn));
    if (tn && !zn) return plan_err(c, tn, "a model's threat applies to a zoo entry only");
    if (zn && an)
        return plan_err(c, an,
                        "a model takes arch or zoo, not both (the zoo entry names the "
                        "architecture)");
    if (zn && !cn)
        return plan_err(c, zn,
                        "a zoo model needs its weights: add checkpoint: FILE (the entry's .pt "
                        "file, downloaded from its authors)");
    if (en && !cn)
        return plan_err(c, en,
                        "a model's epochs apply to a checkpoint model (fine-tuning); "
                        "train.epochs sets them for the others");
    src->checkpoint = cn ? yscalar(cn) : NULL;
    /* Found now, not after the models before it have run. */
    if (cn && access(src->checkpoint, R_OK) != 0)
        return plan_err(c, cn, "checkpoint %s: %s (paths are relative to the working folder)",
                        src->checkpoint, strerror(errno));
    if (en) {
        const char *e = yscalar(en);
        char *end = NULL;
        long v = e ? strtol(e, &end, 10) : -1;
        if (!e || !*e || *end || v < 0 || v > 100000)
            return plan_err(c, en, "a model's epochs expects a whole number in [0, 100000], got %s",
                            e ? e : ykind(en));
        src->epochs = (int)v;
    } else if (cn) {
        src->epochs = 0; /* an existing model is evaluated as it is */
    }
    if (zn) {
        src->zoo = yscalar(zn);
        const char *threat = tn ? yscalar(tn) : NULL;
        CLASP_TRY(plan_zoo_entry(c, zn, "zoo", threat, &src->entry));
        *arch = src->entry->arch;
    }
    return CLASP_OK;
}

/* Sets the source of models [first, n_models) and checks what needs
 * training can train. */
static clasp_status apply_source(pctx *c, yaml_node_t *item, const model_source *src, int first)
{
    clasp_plan *p = c->plan;
    for (int i = first; i < p->n_models; i++) {
        clasp_plan_model *m = &p->models[i];
        plan_loc(c, item, m->loc, sizeof m->loc);
        m->epochs = src->epochs;
        if (src->checkpoint) snprintf(m->checkpoint, sizeof m->checkpoint, "%s", src->checkpoint);
        if (src->zoo) snprintf(m->zoo, sizeof m->zoo, "%s", src->zoo);
        if (src->entry) snprintf(m->threat, sizeof m->threat, "%s", src->entry->threat);
        if (src->entry && src->entry->has_normalize) {
            m->normalize = 3;
            for (int k = 0; k < 3; k++)
                m->norm_mean[k] = src->entry->mean[k], m->norm_std[k] = src->entry->std[k];
        }
        /* A training defense on a checkpoint and no epochs: nothing would
         * change, which is never what was meant. */
        if (src->checkpoint && m->epochs == 0 && m->defense &&
            !m->defense->plugin.desc->defense->finish)
            return plan_err(c, item,
                            "model '%s': defense %s on a checkpoint with epochs 0 changes nothing; "
                            "give epochs: N to fine-tune with it",
                            m->name, m->defense->plugin.desc->name);
    }
    return CLASP_OK;
}

clasp_status plan_parse_models(pctx *c, yaml_node_t *seq)
{
    if (seq->type != YAML_SEQUENCE_NODE || yseq_len(seq) == 0)
        return plan_err(c, seq,
                        "models expects a non-empty list of models ({name, defense} or {name, "
                        "checkpoint}), got %s",
                        ykind(seq));
    clasp_status st = CLASP_OK;
    for (int i = 0; st == CLASP_OK && i < yseq_len(seq); i++) {
        yaml_node_t *item = yseq_item(c, seq, i);
        ymap m;
        CLASP_TRY(ymap_open(c, item, "a model entry of the models list", &m));
        st = plan_only(c, &m, "a model entry", &plan_schema_model_entry);
        yaml_node_t *nn = ymap_get(&m, "name"), *dn = ymap_get(&m, "defense");
        if (st == CLASP_OK && nn && (!yscalar(nn) || yis_null(nn)))
            st = plan_err(c, nn, "model name expects a text value, got %s", ykind(nn));
        /* A model of its own architecture (a preset or a layer list), so
         * one experiment can set architectures side by side. */
        yaml_node_t *an = ymap_get(&m, "arch");
        const char *arch = an ? yscalar(an) : NULL;
        if (st == CLASP_OK && an &&
            (!arch || !*arch || strlen(arch) >= sizeof c->plan->models[0].arch))
            st = plan_err(c, an, "a model's arch expects a preset name or a layer list, got %s",
                          ykind(an));
        if (st == CLASP_OK && arch && !clasp_model_is_preset(arch) &&
            strcmp(arch, "default") != 0) {
            clasp_layer_spec *ls = NULL;
            int nl = 0;
            if (clasp_arch_parse(arch, &ls, &nl) != CLASP_OK) st = plan_wrap(c, an, "arch");
            free(ls);
        }
        model_source src;
        if (st == CLASP_OK) st = parse_source(c, &m, &arch, &src);
        const char *def_name = src.zoo ? src.zoo : "standard";
        int first = c->plan->n_models;
        rblock *b = NULL;
        if (st == CLASP_OK && !yis_null(dn))
            st = parse_block(c, dn, CLASP_PLUGIN_DEFENSE, 0, 0, &b);
        if (st == CLASP_OK && !b) {
            st = add_model(c, nn ? nn : item, nn ? yscalar(nn) : def_name, arch, NULL);
        } else if (st == CLASP_OK) {
            axes ax = {0};
            int total = 0, choice[MAX_AXES];
            st = collect_axes(c, b, &ax);
            if (st == CLASP_OK) st = grid_size(c, &ax, item, &total);
            for (int g = 0; st == CLASP_OK && g < total; g++) {
                char name[200];
                clasp_plan_defense *d;
                grid_point(&ax, g, choice);
                grid_label(c, &ax, choice, nn ? yscalar(nn) : b->desc->name, name, sizeof name);
                st = resolve_defense(c, b, &ax, choice, &d);
                if (st == CLASP_OK) st = add_model(c, nn ? nn : item, name, arch, d);
            }
        }
        if (st == CLASP_OK) st = apply_source(c, item, &src, first);
        rblock_free(b);
        ymap_close(&m);
    }
    return st;
}
