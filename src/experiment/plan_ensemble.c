/* Ensembles in an experiment file: evaluate entries that are a cascade of
 * attacks rather than one plugin.
 *
 *   - {ensemble: [BLOCK, BLOCK, ...], label: TEXT}
 *     each BLOCK an attack block ("pgd" or {name, params}) without grids;
 *     label defaults to "ensemble(a,b,...)".
 *   - {name: autoattack, label: TEXT, params: {eps: E, version: V}}
 *     the preset (clasp/ensemble.h): V standard (default) or fast; eps is
 *     required and may be a list (one ensemble per value, labelled
 *     "autoattack eps=E" like any grid). Its members take the published
 *     settings; to change them, write the ensemble out.
 *
 * `label` names an ensemble as it names any entry: `name` always names a
 * plugin (or the preset), so an ensemble with a `name` is refused with a
 * pointer to `label`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/ensemble.h"
#include "experiment/plan_internal.h"

void plan_attack_clear(clasp_plan_attack *a)
{
    plan_plugin_clear(&a->plugin);
    for (int i = 0; i < a->n_members; i++) plan_plugin_clear(&a->members[i]);
    free(a->members);
    a->members = NULL;
    a->n_members = 0;
}

double clasp_plan_attack_linf_eps(const clasp_plan_attack *a)
{
    const clasp_plan_plugin *m = a->n_members ? a->members : &a->plugin;
    int n = a->n_members ? a->n_members : 1;
    double eps = 0;
    for (int i = 0; i < n; i++) {
        clasp_attack_traits t;
        clasp_attack_traits_of(m[i].desc, &t);
        if (t.threat != CLASP_THREAT_LINF) return 0;
        double e = 0;
        for (int k = 0; k < m[i].n_params; k++)
            if (!strcmp(m[i].keys[k], t.budget)) e = strtod(m[i].values[k], NULL);
        if (i > 0 && e != eps) return 0;
        eps = e;
    }
    return eps;
}

int plan_is_ensemble(const pctx *c, const yaml_node_t *item)
{
    if (!item) return 0;
    if (item->type == YAML_SCALAR_NODE) return !strcmp(yscalar(item), CLASP_AUTOATTACK);
    if (item->type != YAML_MAPPING_NODE) return 0;
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        const char *k = yscalar(ynode(c, p->key));
        const char *v = yscalar(ynode(c, p->value));
        if (k && !strcmp(k, "ensemble")) return 1;
        if (k && v && !strcmp(k, "name") && !strcmp(v, CLASP_AUTOATTACK)) return 1;
    }
    return 0;
}

/* Appends one ensemble (members moved in) with a unique label. */
static clasp_status append(pctx *c, yaml_node_t *item, const char *label,
                           clasp_plan_plugin *members, int n)
{
    clasp_plan *p = c->plan;
    clasp_status st = CLASP_OK;
    for (int k = 0; st == CLASP_OK && k < p->n_attacks; k++)
        if (!strcmp(p->attacks[k].label, label))
            st =
                plan_err(c, item,
                         "two attacks are labelled '%s'; give this one a distinct 'label:'", label);
    if (st == CLASP_OK && p->n_attacks + 1 > PLAN_MAX_PLANNED)
        st = plan_err(c, item, "evaluate.attacks expands to more than %d attacks (grids included)",
                      PLAN_MAX_PLANNED);
    clasp_plan_attack *grown =
        st == CLASP_OK ? realloc(p->attacks, (size_t)(p->n_attacks + 1) * sizeof *grown) : NULL;
    if (st == CLASP_OK && !grown) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (st != CLASP_OK) {
        for (int i = 0; i < n; i++) plan_plugin_clear(&members[i]);
        free(members);
        return st;
    }
    p->attacks = grown;
    clasp_plan_attack *a = &p->attacks[p->n_attacks++];
    memset(a, 0, sizeof *a);
    snprintf(a->label, sizeof a->label, "%s", label);
    a->members = members;
    a->n_members = n;
    return CLASP_OK;
}

static clasp_status parse_list(pctx *c, yaml_node_t *item, ymap *m)
{
    yaml_node_t *list = ymap_get(m, "ensemble"), *label = ymap_get(m, "label");
    if (list->type != YAML_SEQUENCE_NODE || yseq_len(list) == 0)
        return plan_err(c, list,
                        "ensemble expects a non-empty list of attack blocks ({name, params}), got "
                        "%s",
                        list->type == YAML_SEQUENCE_NODE ? "an empty list" : ykind(list));
    if (label && (!yscalar(label) || yis_null(label)))
        return plan_err(c, label, "ensemble label expects a text value, got %s", ykind(label));
    int n = yseq_len(list);
    if (n > 16) return plan_err(c, list, "an ensemble has at most 16 attacks, this one %d", n);
    clasp_plan_plugin *members = calloc((size_t)n, sizeof *members);
    if (!members) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    clasp_status st = CLASP_OK;
    char auto_label[160] = "ensemble(";
    for (int i = 0; st == CLASP_OK && i < n; i++) {
        yaml_node_t *b = yseq_item(c, list, i);
        if (plan_is_ensemble(c, b))
            st = plan_err(c, b,
                          "an ensemble cannot hold another ensemble or the %s preset; list its "
                          "attacks",
                          CLASP_AUTOATTACK);
        else st = plan_resolve_single(c, b, &members[i]);
        size_t len = strlen(auto_label);
        if (st == CLASP_OK)
            snprintf(auto_label + len, sizeof auto_label - len, "%s%s", i ? "," : "",
                     members[i].name);
    }
    if (st != CLASP_OK) {
        for (int i = 0; i < n; i++) plan_plugin_clear(&members[i]);
        free(members);
        return st;
    }
    size_t len = strlen(auto_label);
    snprintf(auto_label + len, sizeof auto_label - len, ")");
    return append(c, item, label ? yscalar(label) : auto_label, members, n);
}

static clasp_status parse_preset(pctx *c, yaml_node_t *item, ymap *m)
{
    yaml_node_t *label = m->node ? ymap_get(m, "label") : NULL;
    yaml_node_t *params = m->node ? ymap_get(m, "params") : NULL;
    if (label && (!yscalar(label) || yis_null(label)))
        return plan_err(c, label, "attack label expects a text value, got %s", ykind(label));
    if (yis_null(params))
        return plan_err(c, item,
                        "%s needs params: {eps: BUDGET} (and optionally version: standard or fast)",
                        CLASP_AUTOATTACK);
    ymap pm = {0};
    CLASP_TRY(ymap_open(c, params, CLASP_AUTOATTACK " params", &pm));
    clasp_status st = plan_only(c, &pm, CLASP_AUTOATTACK " params", &plan_schema_preset_params);
    yaml_node_t *eps = ymap_get(&pm, "eps"), *ver = ymap_get(&pm, "version");
    const char *version = "standard";
    if (st == CLASP_OK && !eps)
        st = plan_err(c, params,
                      "%s params: missing required key 'eps' (the L-infinity budget, e.g. 0.1)",
                      CLASP_AUTOATTACK);
    if (st == CLASP_OK && ver) {
        const clasp_preset_member *unused;
        version = yscalar(ver);
        if (!version || !clasp_autoattack_members(version, &unused))
            st = plan_err(c, ver, "%s version must be %s, got %s", CLASP_AUTOATTACK,
                          CLASP_AUTOATTACK_VERSIONS, version ? version : ykind(ver));
    }
    if (st == CLASP_OK && eps->type == YAML_MAPPING_NODE)
        st = plan_err(c, eps,
                      "%s: eps expects a number or a list of numbers (a grid), got a mapping",
                      CLASP_AUTOATTACK);
    if (st == CLASP_OK && eps->type == YAML_SEQUENCE_NODE && yseq_len(eps) == 0)
        st = plan_err(c, eps, "%s: eps is an empty list; a grid needs at least one value",
                      CLASP_AUTOATTACK);
    const clasp_preset_member *pre = NULL;
    int nm = st == CLASP_OK ? clasp_autoattack_members(version, &pre) : 0;
    const clasp_plugin_desc *descs[4] = {0};
    for (int j = 0; st == CLASP_OK && j < nm; j++)
        if (clasp_autoattack_find(c->reg, version, pre[j].plugin, &descs[j]) != CLASP_OK)
            st = plan_wrap(c, ymap_get(m, "name") ? ymap_get(m, "name") : item, NULL);
    for (int j = 0; st == CLASP_OK && j < nm; j++)
        if (!clasp_plugin_is_linf(descs[j]))
            st = plan_err(c, item,
                          "%s: the attack plugin '%s' has no float parameter 'eps', so it is not "
                          "the "
                          "L-infinity attack the preset needs",
                          CLASP_AUTOATTACK, pre[j].plugin);
    int grid = eps && eps->type == YAML_SEQUENCE_NODE;
    int points = st == CLASP_OK ? (grid ? yseq_len(eps) : 1) : 0;
    for (int g = 0; st == CLASP_OK && g < points; g++) {
        yaml_node_t *ev = grid ? yseq_item(c, eps, g) : eps;
        if (ev->type != YAML_SCALAR_NODE) {
            st = plan_err(c, ev, "%s: grid of 'eps': each element must be a single value, got %s",
                          CLASP_AUTOATTACK, ykind(ev));
            break;
        }
        char eps_at[300];
        plan_loc(c, ev, eps_at, sizeof eps_at);
        clasp_plan_plugin *members = calloc((size_t)nm, sizeof *members);
        if (!members) {
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
            break;
        }
        for (int j = 0; st == CLASP_OK && j < nm; j++) {
            const char *keys[CLASP_PRESET_MAX_PARAMS + 1], *vals[CLASP_PRESET_MAX_PARAMS + 1];
            char *wh[CLASP_PRESET_MAX_PARAMS + 1];
            char block_at[300];
            plan_loc(c, item, block_at, sizeof block_at);
            int k = 0;
            keys[k] = "eps", vals[k] = yscalar(ev), wh[k++] = eps_at;
            for (int q = 0; q < pre[j].n; q++) {
                int has = 0;
                for (int s = 0; s < descs[j]->n_params; s++)
                    has |= !strcmp(descs[j]->params[s].name, pre[j].keys[q]);
                if (has) keys[k] = pre[j].keys[q], vals[k] = pre[j].values[q], wh[k++] = block_at;
            }
            st = plan_plugin_fill(c, descs[j], keys, vals, wh, k, item, &members[j]);
        }
        if (st != CLASP_OK) {
            for (int j = 0; j < nm; j++) plan_plugin_clear(&members[j]);
            free(members);
            break;
        }
        char lab[160];
        const char *base = label ? yscalar(label) : CLASP_AUTOATTACK;
        if (grid) snprintf(lab, sizeof lab, "%s eps=%s", base, yscalar(ev));
        else snprintf(lab, sizeof lab, "%s", base);
        st = append(c, item, lab, members, nm);
    }
    ymap_close(&pm);
    return st;
}

clasp_status plan_parse_ensemble(pctx *c, yaml_node_t *item)
{
    if (item->type == YAML_SCALAR_NODE) {
        ymap none = {0};
        return parse_preset(c, item, &none);
    }
    ymap m = {0};
    CLASP_TRY(ymap_open(c, item, "an ensemble entry", &m));
    clasp_status st;
    if (ymap_get(&m, "ensemble")) {
        if (ymap_get(&m, "name"))
            st = plan_err(c, ymap_keynode(&m, "name"),
                          "an ensemble entry is named by 'label:' ('name:' names one attack plugin "
                          "or the "
                          "%s preset)",
                          CLASP_AUTOATTACK);
        else if (ymap_get(&m, "params"))
            st = plan_err(c, ymap_keynode(&m, "params"),
                          "an ensemble entry has no 'params:'; give each attack in the list its "
                          "own");
        else st = plan_only(c, &m, "an ensemble entry", &plan_schema_ensemble);
        if (st == CLASP_OK) st = parse_list(c, item, &m);
    } else {
        st = plan_only(c, &m, CLASP_AUTOATTACK " entry", &plan_schema_preset);
        if (st == CLASP_OK) st = parse_preset(c, item, &m);
    }
    ymap_close(&m);
    return st;
}
