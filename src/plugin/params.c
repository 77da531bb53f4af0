/* Plugin descriptors and parameter schemas: checking them, and turning
 * user text into validated parameter values. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clasp/registry.h"
#include "plugin/plugin_internal.h"

#define MAX_PARAMS 64
#define MAX_NAME 63

const char *clasp_param_type_name(clasp_param_type type)
{
    switch (type) {
    case CLASP_PARAM_FLOAT: return "float";
    case CLASP_PARAM_INT: return "int";
    case CLASP_PARAM_BOOL: return "bool";
    case CLASP_PARAM_STRING: return "string";
    }
    return "unknown";
}

/* Plugin names: [a-z][a-z0-9_-]* (they become YAML values and file
 * names). Parameter names: [A-Za-z][A-Za-z0-9_]* (they become YAML keys;
 * upper case allowed for symbols such as T). At most MAX_NAME chars. */
static int valid_name(const char *s, int is_plugin)
{
    if (!s) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        int digit = c >= '0' && c <= '9';
        int ok = n == 0 ? (lower || (!is_plugin && upper))
                        : (lower || digit || c == '_' || (is_plugin ? c == '-' : upper));
        if (!ok) return 0;
    }
    return n > 0 && n <= MAX_NAME;
}

static int is_whole(double v)
{
    return isinf(v) || v == floor(v);
}

static clasp_status check_param(const clasp_plugin_desc *d, int i)
{
    const clasp_param_spec *p = &d->params[i];
    if (!valid_name(p->name, 0))
        return clasp_error(CLASP_ERR_PLUGIN,
                           "parameter %d: name '%s' must match [A-Za-z][A-Za-z0-9_]* (at most %d "
                           "chars)",
                           i + 1, p->name ? p->name : "(null)", MAX_NAME);
    for (int j = 0; j < i; j++)
        if (!strcmp(d->params[j].name, p->name))
            return clasp_error(CLASP_ERR_PLUGIN, "parameter '%s' is declared twice (%d and %d)",
                               p->name, j + 1, i + 1);
    switch (p->type) {
    case CLASP_PARAM_FLOAT:
    case CLASP_PARAM_INT:
        if (isnan(p->min) || isnan(p->max) || p->min > p->max)
            return clasp_error(CLASP_ERR_PLUGIN, "parameter '%s': min %g > max %g", p->name, p->min,
                               p->max);
        if (!isfinite(p->def) || p->def < p->min || p->def > p->max)
            return clasp_error(CLASP_ERR_PLUGIN,
                               "parameter '%s': default %g is outside its range [%g, %g]", p->name,
                               p->def, p->min, p->max);
        if (p->type == CLASP_PARAM_INT &&
            (!is_whole(p->def) || !is_whole(p->min) || !is_whole(p->max)))
            return clasp_error(CLASP_ERR_PLUGIN,
                               "parameter '%s': an int parameter needs whole default and range "
                               "(got %g in [%g, %g])",
                               p->name, p->def, p->min, p->max);
        break;
    case CLASP_PARAM_BOOL:
        if (p->def != 0.0 && p->def != 1.0)
            return clasp_error(CLASP_ERR_PLUGIN,
                               "parameter '%s': a bool default must be 0 or 1, got %g", p->name,
                               p->def);
        break;
    case CLASP_PARAM_STRING: break;
    default:
        return clasp_error(CLASP_ERR_PLUGIN,
                           "parameter '%s': unknown type %d (expected CLASP_PARAM_FLOAT, _INT, "
                           "_BOOL or _STRING)",
                           p->name, (int)p->type);
    }
    return CLASP_OK;
}

clasp_status clasp_plugin_desc_check(const clasp_plugin_desc *d)
{
    if (!d) return clasp_error(CLASP_ERR_PLUGIN, "no descriptor");
    if (!valid_name(d->name, 1))
        return clasp_error(CLASP_ERR_PLUGIN,
                           "name '%s' must match [a-z][a-z0-9_-]* (at most %d chars)",
                           d->name ? d->name : "(null)", MAX_NAME);
    switch (d->kind) {
    case CLASP_PLUGIN_ATTACK: {
        const clasp_attack_fns *f = d->attack;
        if (!f || !CLASP_FNS_HAS(f, clasp_attack_fns, perturb) || !f->create || !f->perturb)
            return clasp_error(CLASP_ERR_PLUGIN,
                               "'%s' is an attack: it must set attack->size, ->create and "
                               "->perturb",
                               d->name);
        break;
    }
    case CLASP_PLUGIN_DEFENSE: {
        const clasp_defense_fns *f = d->defense;
        if (!f || !CLASP_FNS_HAS(f, clasp_defense_fns, train_step) || !f->create || !f->train_step)
            return clasp_error(CLASP_ERR_PLUGIN,
                               "'%s' is a defense: it must set defense->size, ->create and "
                               "->train_step",
                               d->name);
        break;
    }
    default:
        return clasp_error(CLASP_ERR_PLUGIN,
                           "'%s': unknown kind %d (expected CLASP_PLUGIN_ATTACK or _DEFENSE)",
                           d->name, (int)d->kind);
    }
    if (d->n_params < 0 || d->n_params > MAX_PARAMS || (d->n_params > 0 && !d->params))
        return clasp_error(CLASP_ERR_PLUGIN,
                           "'%s': n_params %d needs a params array of 0..%d entries", d->name,
                           d->n_params, MAX_PARAMS);
    for (int i = 0; i < d->n_params; i++) {
        clasp_status st = check_param(d, i);
        if (st != CLASP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", clasp_last_error());
            return clasp_error(st, "'%s': schema: %s", d->name, msg);
        }
    }
    return clasp_attack_traits_check(d);
}

/* ---- parsing ----------------------------------------------------------- */

static void params_reset(clasp_params *p)
{
    p->n = 0;
    p->schema = NULL;
    p->values = NULL;
}

void clasp_params_free(clasp_params *p)
{
    if (!p) return;
    clasp_param_value *v = (clasp_param_value *)p->values;
    for (int i = 0; v && i < p->n; i++) free((char *)v[i].str);
    free(v);
    params_reset(p);
}

/* Edit distance for "did you mean"; names are short, so the simple table
 * with one row is plenty. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[MAX_NAME + 2];
    if (lb > MAX_NAME) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static clasp_status unknown_key(const clasp_plugin_desc *d, const char *pre, const char *key)
{
    if (d->n_params == 0)
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s%s: unknown parameter '%s' (%s takes no parameters)", pre, d->name,
                           key, d->name);
    char known[512];
    size_t len = 0;
    const char *close = NULL;
    size_t best = 3; /* suggest only near misses */
    for (int i = 0; i < d->n_params && len < sizeof known; i++) {
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                d->params[i].name);
        size_t e = edit_distance(key, d->params[i].name);
        if (e < best) best = e, close = d->params[i].name;
    }
    if (close)
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s%s: unknown parameter '%s' (did you mean '%s'?); known: %s", pre,
                           d->name, key, close, known);
    return clasp_error(CLASP_ERR_CONFIG, "%s%s: unknown parameter '%s'; known: %s", pre, d->name,
                       key, known);
}

/* Leading and trailing blanks are not part of a value ("eps = 0.1"). */
static void trim(const char *s, char *buf, size_t size)
{
    while (isspace((unsigned char)*s)) s++;
    snprintf(buf, size, "%s", s);
    size_t n = strlen(buf);
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
}

static void range_text(const clasp_param_spec *s, char *buf, size_t size)
{
    if (isinf(s->min) && isinf(s->max)) snprintf(buf, size, "any value");
    else if (isinf(s->max)) snprintf(buf, size, ">= %g", s->min);
    else if (isinf(s->min)) snprintf(buf, size, "<= %g", s->max);
    else snprintf(buf, size, "in [%g, %g]", s->min, s->max);
}

static clasp_status parse_value(const clasp_plugin_desc *d, const clasp_param_spec *s,
                                const char *pre, const char *raw, clasp_param_value *out)
{
    char text[256];
    trim(raw ? raw : "", text, sizeof text);
    switch (s->type) {
    case CLASP_PARAM_STRING:
        out->str = strdup(raw ? raw : "");
        if (!out->str) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        return CLASP_OK;
    case CLASP_PARAM_BOOL: {
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(text, yes[i])) return out->num = 1, CLASP_OK;
            if (!strcasecmp(text, no[i])) return out->num = 0, CLASP_OK;
        }
        return clasp_error(CLASP_ERR_CONFIG, "%s%s: %s expects true or false, got '%s'", pre,
                           d->name, s->name, text);
    }
    case CLASP_PARAM_FLOAT:
    case CLASP_PARAM_INT: break;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    int number = text[0] && !*end && errno != ERANGE && isfinite(v);
    if (s->type == CLASP_PARAM_FLOAT && !number)
        return clasp_error(CLASP_ERR_CONFIG, "%s%s: %s expects a number, got '%s'", pre, d->name,
                           s->name, text);
    /* Integers may be written 20 or 1e4, but not 2.5 or 0x14. */
    if (s->type == CLASP_PARAM_INT &&
        (!number || v != floor(v) || fabs(v) > 9007199254740992.0 || strpbrk(text, "xX")))
        return clasp_error(CLASP_ERR_CONFIG, "%s%s: %s expects an integer, got '%s'", pre, d->name,
                           s->name, text);
    if (v < s->min || v > s->max) {
        char range[96];
        range_text(s, range, sizeof range);
        return clasp_error(CLASP_ERR_CONFIG, "%s%s: %s must be %s, got %s", pre, d->name, s->name,
                           range, text);
    }
    out->num = v;
    return CLASP_OK;
}

clasp_status clasp_params_build(const clasp_plugin_desc *desc, const char *const *keys,
                                const char *const *values, const char *const *where, int n,
                                clasp_params *out)
{
    params_reset(out);
    if (!desc) return clasp_error(CLASP_ERR_INVALID, "clasp_params_build: no descriptor");
    int np = desc->n_params;
    clasp_param_value *v = calloc((size_t)(np ? np : 1), sizeof *v);
    int *given = calloc((size_t)(np ? np : 1), sizeof *given);
    if (!v || !given) {
        free(v), free(given);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    out->n = np;
    out->schema = desc->params;
    out->values = v;
    clasp_status st = CLASP_OK;
    for (int k = 0; k < n && st == CLASP_OK; k++) {
        char pre[300] = "";
        if (where && where[k] && *where[k]) snprintf(pre, sizeof pre, "%s: ", where[k]);
        const char *key = keys[k];
        if (!key || !*key) {
            st = clasp_error(CLASP_ERR_CONFIG, "%s%s: empty parameter name", pre, desc->name);
            break;
        }
        int i = 0;
        while (i < np && strcmp(desc->params[i].name, key) != 0) i++;
        if (i == np) {
            st = unknown_key(desc, pre, key);
            break;
        }
        if (given[i]) {
            st = clasp_error(CLASP_ERR_CONFIG, "%s%s: parameter '%s' is given twice", pre,
                             desc->name, key);
            break;
        }
        given[i] = 1;
        st = parse_value(desc, &desc->params[i], pre, values ? values[k] : NULL, &v[i]);
    }
    for (int i = 0; i < np && st == CLASP_OK; i++) {
        if (given[i]) continue;
        const clasp_param_spec *s = &desc->params[i];
        if (s->type == CLASP_PARAM_STRING) {
            v[i].str = strdup(s->def_string ? s->def_string : "");
            if (!v[i].str) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        } else {
            v[i].num = s->def;
        }
    }
    free(given);
    if (st != CLASP_OK) clasp_params_free(out);
    return st;
}

clasp_status clasp_params_parse_kv(const clasp_plugin_desc *desc, const char *const *pairs, int n,
                                   const char *where, clasp_params *out)
{
    params_reset(out);
    char **keys = calloc((size_t)(n ? n : 1), sizeof *keys);
    char **wheres = calloc((size_t)(n ? n : 1), sizeof *wheres);
    const char **vals = calloc((size_t)(n ? n : 1), sizeof *vals);
    clasp_status st = CLASP_OK;
    if (!keys || !wheres || !vals) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == CLASP_OK; i++) {
        const char *eq = strchr(pairs[i], '=');
        if (!eq) {
            st = clasp_error(CLASP_ERR_CONFIG, "%s%s'%s': expected key=value", where ? where : "",
                             where ? " " : "", pairs[i]);
            break;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - pairs[i]) < 127 ? (int)(eq - pairs[i]) : 127,
                 pairs[i]);
        size_t kn = strlen(key) + 1;
        keys[i] = malloc(kn);
        size_t wn = (where ? strlen(where) : 0) + strlen(pairs[i]) + 4;
        wheres[i] = malloc(wn);
        if (!keys[i] || !wheres[i]) {
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
            break;
        }
        char tk[128];
        trim(key, tk, sizeof tk);
        snprintf(keys[i], kn, "%s", tk);
        snprintf(wheres[i], wn, "%s%s'%s'", where ? where : "", where ? " " : "", pairs[i]);
        vals[i] = eq + 1;
    }
    if (st == CLASP_OK)
        st = clasp_params_build(desc, (const char *const *)keys, vals, (const char *const *)wheres,
                                n, out);
    for (int i = 0; i < n && keys && wheres; i++) free(keys[i]), free(wheres[i]);
    free(keys), free(wheres), free(vals);
    return st;
}

static int find_param(const clasp_params *p, const char *name)
{
    for (int i = 0; p && i < p->n; i++)
        if (!strcmp(p->schema[i].name, name)) return i;
    return -1;
}

/* This thread's record of bad lookups in the current call into a plugin
 * (see plugin_internal.h). */
static _Thread_local plugin_misuse misuse;

void plugin_misuse_enter(plugin_misuse *saved)
{
    *saved = misuse;
    memset(&misuse, 0, sizeof misuse);
}

int plugin_misuse_leave(const plugin_misuse *saved, plugin_misuse *out)
{
    *out = misuse;
    misuse = *saved;
    return out->count;
}

/* A plugin asking for a parameter it did not declare is a bug in the
 * plugin, not a user error; it must not stop the host (which may be in the
 * middle of a long experiment), so the lookup is only recorded, naming what
 * the schema has, and the host fails the call (instance.c). */
static void bad_lookup(const clasp_params *p, const char *fn, const char *kind, const char *name,
                       const char *as)
{
    if (misuse.count < INT_MAX) misuse.count++;
    if (misuse.count > 1) return; /* the first one explains the rest */
    snprintf(misuse.what, sizeof misuse.what, "asked for %s '%.64s'%s", kind,
             name ? name : "(null)", as);
    size_t len = (size_t)snprintf(misuse.detail, sizeof misuse.detail, "%s; the schema has:", fn);
    if (!p || p->n == 0)
        snprintf(misuse.detail + len, sizeof misuse.detail - len, " no parameters");
    for (int i = 0; p && i < p->n && len < sizeof misuse.detail; i++)
        len += (size_t)snprintf(misuse.detail + len, sizeof misuse.detail - len, "%s %s (%s)",
                                i ? "," : "", p->schema[i].name,
                                clasp_param_type_name(p->schema[i].type));
}

double clasp_params_num(const clasp_params *p, const char *name)
{
    int i = name ? find_param(p, name) : -1;
    if (i < 0) {
        bad_lookup(p, "clasp_params_num", "unknown parameter", name, "");
        return 0.0;
    }
    if (p->schema[i].type == CLASP_PARAM_STRING) {
        bad_lookup(p, "clasp_params_num", "string parameter", name, " as a number");
        return 0.0;
    }
    return p->values[i].num;
}

const char *clasp_params_str(const clasp_params *p, const char *name)
{
    int i = name ? find_param(p, name) : -1;
    if (i < 0) {
        bad_lookup(p, "clasp_params_str", "unknown parameter", name, "");
        return "";
    }
    if (p->schema[i].type != CLASP_PARAM_STRING) {
        bad_lookup(p, "clasp_params_str", "non-string parameter", name, " as text");
        return "";
    }
    return p->values[i].str;
}

void clasp_params_format(const clasp_params *p, char *buf, size_t size)
{
    if (!size) return;
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; p && i < p->n && len < size; i++) {
        const clasp_param_spec *s = &p->schema[i];
        const clasp_param_value *v = &p->values[i];
        const char *sep = i ? ", " : "";
        int w;
        switch (s->type) {
        case CLASP_PARAM_BOOL:
            w = snprintf(buf + len, size - len, "%s%s=%s", sep, s->name,
                         v->num != 0 ? "true" : "false");
            break;
        case CLASP_PARAM_STRING:
            w = snprintf(buf + len, size - len, "%s%s=%s", sep, s->name, v->str ? v->str : "");
            break;
        default: w = snprintf(buf + len, size - len, "%s%s=%g", sep, s->name, v->num); break;
        }
        if (w < 0) break;
        len += (size_t)w;
    }
}
