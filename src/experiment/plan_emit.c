/* The resolved plan as YAML text (libyaml's emitter does the quoting), its
 * hash for resuming, the learning-rate schedule and the work estimate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "experiment/plan_internal.h"
#include "util/util.h"

typedef struct outbuf {
    char *data;
    size_t len, cap;
    int nomem;
} outbuf;

static int out_write(void *user, unsigned char *buf, size_t size)
{
    outbuf *o = user;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + size + 1) cap *= 2;
        char *d = realloc(o->data, cap);
        if (!d) return o->nomem = 1, 0;
        o->data = d, o->cap = cap;
    }
    memcpy(o->data + o->len, buf, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

struct plan_em {
    yaml_emitter_t e;
    yaml_event_t ev;
    int ok;
};
typedef struct plan_em em;

static void emit(em *m)
{
    if (m->ok && !yaml_emitter_emit(&m->e, &m->ev)) m->ok = 0;
}

/* Text that the parser would read as null must be quoted to stay text. */
static int looks_null(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static void scalar(em *m, const char *s)
{
    if (!m->ok) return;
    yaml_scalar_style_t style =
        looks_null(s) ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&m->ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                      style))
        m->ok = 0;
    else emit(m);
}

static void map_start(em *m, int flow)
{
    if (!m->ok) return;
    if (!yaml_mapping_start_event_initialize(&m->ev, NULL, NULL, 1,
                                             flow ? YAML_FLOW_MAPPING_STYLE
                                                  : YAML_BLOCK_MAPPING_STYLE))
        m->ok = 0;
    else emit(m);
}

static void map_end(em *m)
{
    if (!m->ok) return;
    yaml_mapping_end_event_initialize(&m->ev);
    emit(m);
}

static void seq_start(em *m, int flow)
{
    if (!m->ok) return;
    if (!yaml_sequence_start_event_initialize(&m->ev, NULL, NULL, 1,
                                              flow ? YAML_FLOW_SEQUENCE_STYLE
                                                   : YAML_BLOCK_SEQUENCE_STYLE))
        m->ok = 0;
    else emit(m);
}

static void seq_end(em *m)
{
    if (!m->ok) return;
    yaml_sequence_end_event_initialize(&m->ev);
    emit(m);
}

static void kv(em *m, const char *k, const char *v)
{
    scalar(m, k);
    scalar(m, v);
}

static void emit_plugin(em *m, const clasp_plan_plugin *p, const char *label)
{
    map_start(m, 0);
    if (label) kv(m, "label", label);
    kv(m, "name", p->name);
    if (p->n_params) {
        scalar(m, "params");
        map_start(m, 1);
        for (int i = 0; i < p->n_params; i++) kv(m, p->keys[i], p->values[i]);
        map_end(m);
    }
}

void pe_scalar(em *m, const char *s)
{
    scalar(m, s);
}
void pe_map_start(em *m, int flow)
{
    map_start(m, flow);
}
void pe_map_end(em *m)
{
    map_end(m);
}
void pe_seq_start(em *m, int flow)
{
    seq_start(m, flow);
}
void pe_seq_end(em *m)
{
    seq_end(m);
}

void pe_num(em *m, double v)
{
    char buf[64];
    plan_fmt_double(v, buf, sizeof buf);
    scalar(m, buf);
}

void pe_whole(em *m, unsigned long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    scalar(m, buf);
}

static void emit_defense(em *m, const clasp_plan_defense *d)
{
    emit_plugin(m, &d->plugin, NULL);
    if (d->attack) {
        scalar(m, "attack");
        emit_plugin(m, d->attack, NULL);
        map_end(m);
    }
    if (d->inner) {
        scalar(m, "inner");
        emit_defense(m, d->inner);
    }
    map_end(m);
}

void plan_e_exclude(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    seq_start(m, 1);
    for (int i = 0; i < p->n_exclude; i++) scalar(m, p->exclude[i]);
    seq_end(m);
}

void plan_e_normalize(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    map_start(m, 1);
    for (int j = 0; j < 2; j++) {
        scalar(m, j ? "std" : "mean");
        seq_start(m, 1);
        for (int i = 0; i < p->normalize; i++) {
            char b[32];
            snprintf(b, sizeof b, "%.9g", (double)(j ? p->norm_std[i] : p->norm_mean[i]));
            scalar(m, b);
        }
        seq_end(m);
    }
    map_end(m);
}

void plan_e_milestones(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    seq_start(m, 1);
    for (int i = 0; i < p->n_milestones; i++) pe_whole(m, (unsigned long long)p->milestones[i]);
    seq_end(m);
}

void plan_e_l2_eps(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    seq_start(m, 1);
    for (int i = 0; i < p->n_l2_eps; i++) pe_num(m, p->l2_eps[i]);
    seq_end(m);
}

void plan_e_attacks(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    seq_start(m, 0);
    for (int i = 0; i < p->n_attacks; i++) {
        const clasp_plan_attack *a = &p->attacks[i];
        if (!a->n_members) {
            emit_plugin(m, &a->plugin, a->label);
            map_end(m);
            continue;
        }
        /* An ensemble (the preset included) in full: it reads back as the
         * same cascade with every parameter shown. */
        map_start(m, 0);
        kv(m, "label", a->label);
        scalar(m, "ensemble");
        seq_start(m, 0);
        for (int j = 0; j < a->n_members; j++) {
            emit_plugin(m, &a->members[j], NULL);
            map_end(m);
        }
        seq_end(m);
        map_end(m);
    }
    seq_end(m);
}

/* The models list (train.models, or the top-level one of a study of
 * checkpoints): what each is and where its weights come from. */
void plan_e_models(em *m, const clasp_plan *p, const plan_key *k)
{
    (void)k;
    seq_start(m, 0);
    for (int i = 0; i < p->n_models; i++) {
        const clasp_plan_model *pm = &p->models[i];
        map_start(m, 0);
        kv(m, "name", pm->name);
        if (pm->zoo[0]) {
            kv(m, "zoo", pm->zoo);
            kv(m, "threat", pm->threat);
        } else if (pm->arch[0]) {
            kv(m, "arch", pm->arch);
        }
        if (pm->checkpoint[0]) {
            kv(m, "checkpoint", pm->checkpoint);
            pe_scalar(m, "epochs");
            pe_whole(m, (unsigned long long)pm->epochs);
        }
        if (pm->defense) {
            scalar(m, "defense");
            emit_defense(m, pm->defense);
        }
        map_end(m);
    }
    seq_end(m);
}

clasp_status clasp_plan_to_yaml(const clasp_plan *p, int with_output, char **out)
{
    *out = NULL;
    outbuf o = {0};
    static const char head[] =
        "# clasp: resolved experiment (defaults filled in, grids expanded)\n";
    out_write(&o, (unsigned char *)head, sizeof head - 1);
    em m = {.ok = 1};
    if (!yaml_emitter_initialize(&m.e))
        return clasp_error(CLASP_ERR_NOMEM, "out of memory (YAML emitter)");
    yaml_emitter_set_output(&m.e, out_write, &o);
    yaml_emitter_set_unicode(&m.e, 1);
    yaml_emitter_set_width(&m.e, 100);
    yaml_emitter_set_indent(&m.e, 2);
    if (!yaml_stream_start_event_initialize(&m.ev, YAML_UTF8_ENCODING)) m.ok = 0;
    else emit(&m);
    if (m.ok && !yaml_document_start_event_initialize(&m.ev, NULL, NULL, NULL, 1)) m.ok = 0;
    else emit(&m);
    plan_emit_section(&m, p, &plan_schema_root, with_output);
    if (m.ok) {
        yaml_document_end_event_initialize(&m.ev, 1);
        emit(&m);
    }
    if (m.ok) {
        yaml_stream_end_event_initialize(&m.ev);
        emit(&m);
    }
    const char *problem = m.e.problem;
    yaml_emitter_delete(&m.e);
    if (!m.ok || o.nomem) {
        free(o.data);
        return o.nomem ? clasp_error(CLASP_ERR_NOMEM, "out of memory")
                       : clasp_error(CLASP_ERR_INVALID, "emitting the resolved YAML: %s",
                                     problem ? problem : "error");
    }
    *out = o.data;
    return CLASP_OK;
}

clasp_status clasp_plan_hash(const clasp_plan *p, char *buf, size_t size)
{
    char *text;
    CLASP_TRY(clasp_plan_to_yaml(p, 0, &text));
    uint64_t h = clasp_fnv1a(text, strlen(text), CLASP_FNV1A_INIT);
    free(text);
    snprintf(buf, size, "%016llx", (unsigned long long)h);
    return CLASP_OK;
}

double clasp_plan_lr(const clasp_plan *p, int epoch, size_t batch, size_t batches_per_epoch)
{
    switch (p->schedule) {
    case CLASP_LR_CONSTANT: return p->lr;
    case CLASP_LR_COSINE: return clasp_lr_cosine(p->lr, p->epochs, epoch, batch, batches_per_epoch);
    case CLASP_LR_STEP: {
        double lr = p->lr;
        for (int i = 0; i < p->n_milestones; i++)
            if (epoch >= p->milestones[i]) lr *= p->gamma;
        return lr;
    }
    }
    return p->lr;
}

const clasp_plan_plugin *clasp_plan_model_attack(const clasp_plan_model *m)
{
    for (const clasp_plan_defense *d = m->defense; d; d = d->inner)
        if (d->attack) return d->attack;
    return NULL;
}
