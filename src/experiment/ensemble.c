/* Attack ensembles: the autoattack preset, the L-infinity test shared by
 * the plan and the report, and ensembles built from a command-line spec.
 *
 * The preset's numbers are those of the reference AutoAttack's "standard"
 * version (Croce & Hein, ICML 2020; autoattack.py, set_version): APGD with
 * the cross-entropy loss, 100 iterations, 1 restart; APGD-T (targeted DLR)
 * and FAB-T over the 9 most likely wrong classes, 100 iterations, 1
 * restart; Square with 5000 queries and p_init 0.8. "fast" keeps the two
 * APGD members only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ensemble.h"

static const clasp_preset_member standard[] = {
    {"apgd", 3, {"steps", "restarts", "loss"}, {"100", "1", "ce"}},
    {"apgd-t", 3, {"steps", "restarts", "n_target_classes"}, {"100", "1", "9"}},
    {"fab", 2, {"steps", "n_target_classes"}, {"100", "9"}},
    {"square", 2, {"n_queries", "p_init"}, {"5000", "0.8"}},
};

int clasp_autoattack_members(const char *version, const clasp_preset_member **out)
{
    *out = standard;
    if (version && !strcmp(version, "standard")) return 4;
    if (version && !strcmp(version, "fast")) return 2;
    *out = NULL;
    return 0;
}

clasp_status clasp_autoattack_find(const clasp_registry *r, const char *version, const char *plugin,
                                   const clasp_plugin_desc **out)
{
    if (clasp_registry_find(r, plugin, CLASP_PLUGIN_ATTACK, out) == CLASP_OK) return CLASP_OK;
    return clasp_error(CLASP_ERR_NOT_FOUND,
                       "%s needs the attack plugin '%s', which is not loaded; `clasp plugins` "
                       "lists "
                       "the loaded ones (version %s uses: %s)",
                       CLASP_AUTOATTACK, plugin, version,
                       !strcmp(version, "fast") ? "apgd, apgd-t" : "apgd, apgd-t, fab, square");
}

void clasp_ensemble_member_labels(const char *const *plugins, int n, char (*labels)[64])
{
    for (int i = 0; i < n; i++) {
        int seen = 1;
        for (int j = 0; j < i; j++) seen += !strcmp(plugins[j], plugins[i]);
        if (seen == 1) snprintf(labels[i], 64, "%s", plugins[i]);
        else snprintf(labels[i], 64, "%.50s#%d", plugins[i], seen);
    }
}

void clasp_ensemble_free(clasp_ensemble *e)
{
    if (!e) return;
    for (int i = 0; e->members && i < e->n; i++) clasp_attack_free(e->members[i]);
    free(e->members);
    free(e->labels);
    memset(e, 0, sizeof *e);
}

static int desc_has(const clasp_plugin_desc *d, const char *key)
{
    for (int i = 0; i < d->n_params; i++)
        if (!strcmp(d->params[i].name, key)) return 1;
    return 0;
}

#define SPEC_MAX_MEMBERS 16

clasp_status clasp_ensemble_from_spec(const clasp_registry *r, const char *spec,
                                      const char *const *keys, const char *const *values,
                                      const char *const *where, int n, clasp_ensemble *out)
{
    memset(out, 0, sizeof *out);
    const clasp_plugin_desc *descs[SPEC_MAX_MEMBERS];
    const clasp_preset_member *preset = NULL;
    const char *names[SPEC_MAX_MEMBERS];
    char buf[SPEC_MAX_MEMBERS][64];
    int m = 0, version_at = -1;
    if (!strcmp(spec, CLASP_AUTOATTACK)) {
        const char *version = "standard";
        for (int i = 0; i < n; i++)
            if (!strcmp(keys[i], "version")) version = values[i], version_at = i;
        m = clasp_autoattack_members(version, &preset);
        if (!m)
            return clasp_error(CLASP_ERR_CONFIG, "%s: %s version must be %s, got '%s'",
                               version_at >= 0 && where ? where[version_at] : "--set",
                               CLASP_AUTOATTACK, CLASP_AUTOATTACK_VERSIONS, version);
        for (int i = 0; i < m; i++) {
            CLASP_TRY(clasp_autoattack_find(r, version, preset[i].plugin, &descs[i]));
            names[i] = preset[i].plugin;
        }
    } else {
        const char *s = spec;
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (len == 0 || len >= sizeof buf[0])
                return clasp_error(CLASP_ERR_CONFIG,
                                   "--attack expects a plugin name, a comma-separated list of them "
                                   "(a cascade) or %s, got '%s'",
                                   CLASP_AUTOATTACK, spec);
            if (m == SPEC_MAX_MEMBERS)
                return clasp_error(CLASP_ERR_CONFIG, "--attack: at most %d attacks in a list",
                                   SPEC_MAX_MEMBERS);
            memcpy(buf[m], s, len);
            buf[m][len] = '\0';
            if (!strcmp(buf[m], CLASP_AUTOATTACK))
                return clasp_error(CLASP_ERR_CONFIG,
                                   "--attack: %s is a preset of its own and cannot be "
                                   "part of a list; list its members instead",
                                   CLASP_AUTOATTACK);
            CLASP_TRY(clasp_registry_find(r, buf[m], CLASP_PLUGIN_ATTACK, &descs[m]));
            names[m] = buf[m];
            m++;
            if (!comma) break;
            s = comma + 1;
        }
    }
    /* Every pair must find a member (the preset's version is its own). */
    for (int i = 0; i < n; i++) {
        if (i == version_at) continue;
        int used = 0;
        for (int j = 0; j < m; j++) used |= desc_has(descs[j], keys[i]);
        if (!used)
            return clasp_error(CLASP_ERR_CONFIG, "%s: no attack of '%s' has a parameter '%s'%s",
                               where ? where[i] : "--set", spec, keys[i],
                               m > 1 ? " (a value goes to every member that has the parameter)"
                                     : "");
    }
    out->members = calloc((size_t)m, sizeof *out->members);
    out->labels = calloc((size_t)m, sizeof *out->labels);
    if (!out->members || !out->labels) {
        clasp_ensemble_free(out);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    out->n = m;
    clasp_ensemble_member_labels(names, m, out->labels);
    clasp_status st = CLASP_OK;
    for (int j = 0; st == CLASP_OK && j < m; j++) {
        /* The preset's values first, then the pairs given (later wins). */
        const char *k[CLASP_PRESET_MAX_PARAMS + 64], *v[CLASP_PRESET_MAX_PARAMS + 64],
            *w[CLASP_PRESET_MAX_PARAMS + 64];
        int c = 0;
        for (int i = 0; preset && i < preset[j].n; i++) {
            if (!desc_has(descs[j], preset[j].keys[i])) continue;
            int overridden = 0;
            for (int q = 0; q < n; q++) overridden |= !strcmp(keys[q], preset[j].keys[i]);
            if (overridden) continue;
            k[c] = preset[j].keys[i], v[c] = preset[j].values[i], w[c] = CLASP_AUTOATTACK " preset",
            c++;
        }
        for (int i = 0; i < n && c < (int)(sizeof k / sizeof k[0]); i++) {
            if (i == version_at || !desc_has(descs[j], keys[i])) continue;
            k[c] = keys[i], v[c] = values[i], w[c] = where ? where[i] : "--set", c++;
        }
        st = clasp_attack_new_desc(descs[j], k, v, w, c, &out->members[j]);
    }
    if (st != CLASP_OK) clasp_ensemble_free(out);
    return st;
}
