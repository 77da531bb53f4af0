/* Walking a libyaml document: locations, errors with file:line:col,
 * node kinds, and mappings with YAML merge keys ("<<") flattened. */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/plan_internal.h"

void plan_loc(const pctx *c, const yaml_node_t *n, char *buf, size_t size)
{
    if (!n) snprintf(buf, size, "%s", c->file);
    else
        snprintf(buf, size, "%s:%zu:%zu", c->file, n->start_mark.line + 1,
                 n->start_mark.column + 1);
}

clasp_status plan_err(const pctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char loc[300], msg[1500];
    plan_loc(c, n, loc, sizeof loc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return clasp_error(CLASP_ERR_CONFIG, "%s: %s", loc, msg);
}

clasp_status plan_wrap(const pctx *c, const yaml_node_t *n, const char *what)
{
    char msg[1500];
    snprintf(msg, sizeof msg, "%s", clasp_last_error());
    return what ? plan_err(c, n, "%s: %s", what, msg) : plan_err(c, n, "%s", msg);
}

yaml_node_t *ynode(const pctx *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

const char *yscalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int yis_null(const yaml_node_t *n)
{
    if (!n) return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = yscalar(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *ykind(const yaml_node_t *n)
{
    if (!n || yis_null(n)) return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a text value";
    }
}

int yseq_len(const yaml_node_t *n)
{
    return n->type == YAML_SEQUENCE_NODE
               ? (int)(n->data.sequence.items.top - n->data.sequence.items.start)
               : 0;
}

yaml_node_t *yseq_item(const pctx *c, const yaml_node_t *n, int i)
{
    return ynode(c, n->data.sequence.items.start[i]);
}

size_t plan_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[66];
    if (lb > 64 || la > 64) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           !strcmp(yscalar(k), "<<");
}

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of key ks: where it is, or the empty one where it would go. */
static int *ymap_slot(const ymap *m, const char *ks)
{
    uint32_t mask = (uint32_t)m->hcap - 1, i = key_hash(ks) & mask;
    while (m->slot[i] && strcmp(yscalar(m->p[m->slot[i] - 1].key), ks)) i = (i + 1) & mask;
    return &m->slot[i];
}

static clasp_status ymap_rehash(ymap *m, int hcap)
{
    int *slot = calloc((size_t)hcap, sizeof *slot);
    if (!slot) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    free(m->slot);
    m->slot = slot, m->hcap = hcap;
    for (int i = 0; i < m->n; i++) *ymap_slot(m, yscalar(m->p[i].key)) = i + 1;
    return CLASP_OK;
}

static yaml_node_t *ymap_find(const ymap *m, const char *key)
{
    if (!m->hcap) return NULL;
    int at = *ymap_slot(m, key);
    return at ? m->p[at - 1].key : NULL;
}

static clasp_status ymap_push(ymap *m, yaml_node_t *k, yaml_node_t *v)
{
    if (m->n == m->cap) {
        if (m->cap > INT_MAX / 4) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        int cap = m->cap ? 2 * m->cap : 8;
        ypair *p = realloc(m->p, (size_t)cap * sizeof *p);
        if (!p) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        m->p = p, m->cap = cap;
    }
    m->p[m->n].key = k, m->p[m->n].value = v;
    m->n++;
    if (2 * m->n > m->hcap) return ymap_rehash(m, m->hcap ? 2 * m->hcap : 16);
    *ymap_slot(m, yscalar(k)) = m->n;
    return CLASP_OK;
}

/* Mappings one mapping may merge in, counting every use of an alias.
 * Depth alone does not bound the work: a merge list may name the same
 * anchor again and again at every level, and a file of a few hundred bytes
 * would then make billions of visits (16 merges x 8 levels). */
#define MAX_MERGED 256
/* Mappings one "<<" (or several in one mapping) may name; more were
 * silently dropped before, which changed the meaning of the file. */
#define MAX_MERGES 16

/* Adds the pairs of mapping n; own pairs may not repeat a key, merged ones
 * only fill keys still missing (YAML's merge-key rule). Depth bounds alias
 * cycles, MAX_MERGED repeated aliases. */
static clasp_status ymap_add(const pctx *c, yaml_node_t *n, int merged, int depth, ymap *m)
{
    if (depth > 8) return plan_err(c, n, "merge keys ('<<') nest too deeply");
    if (merged && ++m->merged > MAX_MERGED)
        return plan_err(c, n,
                        "merge keys ('<<') bring in more than %d mappings, expected a few "
                        "(is an alias repeated inside merged mappings?)",
                        MAX_MERGED);
    yaml_node_pair_t *p = n->data.mapping.pairs.start, *end = n->data.mapping.pairs.top;
    yaml_node_t *merges[MAX_MERGES];
    int n_merges = 0;
    for (; p < end; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        if (is_merge_key(k)) {
            if (v->type == YAML_MAPPING_NODE) {
                if (n_merges == MAX_MERGES)
                    return plan_err(c, v, "more than %d merged mappings in one mapping",
                                    MAX_MERGES);
                merges[n_merges++] = v;
            } else if (v->type == YAML_SEQUENCE_NODE) {
                for (int i = 0; i < yseq_len(v); i++) {
                    yaml_node_t *it = yseq_item(c, v, i);
                    if (it->type != YAML_MAPPING_NODE)
                        return plan_err(c, it, "a merge key ('<<') takes mappings, got %s",
                                        ykind(it));
                    if (n_merges == MAX_MERGES)
                        return plan_err(c, it, "more than %d merged mappings in one mapping",
                                        MAX_MERGES);
                    merges[n_merges++] = it;
                }
            } else {
                return plan_err(c, v,
                                "a merge key ('<<') takes a mapping or a list of mappings, got %s",
                                ykind(v));
            }
            continue;
        }
        const char *ks = yscalar(k);
        if (!ks) return plan_err(c, k, "keys must be text, got %s", ykind(k));
        yaml_node_t *first = ymap_find(m, ks);
        if (first) {
            /* Reported after unknown keys (ymap_only): a file of many
             * misspelt keys is told about the first of them. */
            if (!merged && !m->dup) m->dup = k, m->dup_first = first;
            continue;
        }
        CLASP_TRY(ymap_push(m, k, v));
    }
    for (int i = 0; i < n_merges; i++) CLASP_TRY(ymap_add(c, merges[i], 1, depth + 1, m));
    return CLASP_OK;
}

clasp_status ymap_open(const pctx *c, yaml_node_t *n, const char *what, ymap *m)
{
    memset(m, 0, sizeof *m);
    m->node = n;
    if (!n || n->type != YAML_MAPPING_NODE)
        return plan_err(c, n, "%s: expected a mapping (key: value lines), got %s", what, ykind(n));
    clasp_status st = ymap_add(c, n, 0, 0, m);
    if (st != CLASP_OK) ymap_close(m);
    return st;
}

void ymap_close(ymap *m)
{
    free(m->p);
    free(m->slot);
    m->p = NULL;
    m->slot = NULL;
    m->n = m->cap = m->hcap = 0;
}

clasp_status ymap_no_dups(const pctx *c, const ymap *m)
{
    if (!m->dup) return CLASP_OK;
    char at[300];
    plan_loc(c, m->dup_first, at, sizeof at);
    return plan_err(c, m->dup, "key '%s' is given twice (also at %s)", yscalar(m->dup), at);
}

clasp_status ymap_only(const pctx *c, const ymap *m, const char *what, const char *const *known)
{
    for (int i = 0; i < m->n; i++) {
        const char *k = yscalar(m->p[i].key);
        const char *close = NULL;
        size_t best = 3;
        char list[400] = "";
        size_t len = 0;
        int found = 0;
        for (int j = 0; known[j]; j++) {
            if (!strcmp(known[j], k)) found = 1;
            size_t e = plan_edit_distance(k, known[j]);
            if (e < best) best = e, close = known[j];
            if (len < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "",
                                        known[j]);
        }
        if (found) continue;
        if (close)
            return plan_err(c, m->p[i].key,
                            "unknown key '%s' in %s (did you mean '%s'?); known: %s", k, what,
                            close, list);
        return plan_err(c, m->p[i].key, "unknown key '%s' in %s; known: %s", k, what, list);
    }
    return ymap_no_dups(c, m);
}

yaml_node_t *ymap_get(const ymap *m, const char *key)
{
    if (!m->hcap) return NULL;
    int at = *ymap_slot(m, key);
    return at ? m->p[at - 1].value : NULL;
}

yaml_node_t *ymap_keynode(const ymap *m, const char *key)
{
    return ymap_find(m, key);
}
