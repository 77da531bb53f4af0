/* Worst cases over the listed L-infinity entries, computed per example
 * from the outcomes the runner keeps (see report_worst.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/report_worst.h"

#define WORST_MAX_MEMBERS 64

static void free_derived(clasp_attack_report *a)
{
    clasp_counts_free(&a->per_class);
    free(a->success), free(a->flow);
    free(a->member_labels), free(a->first_flip), free(a->member_seconds), free(a->adv_pred);
    memset(a, 0, sizeof *a);
}

void report_worst_free(clasp_report *aug)
{
    for (int i = 0; aug->models && i < aug->n_models; i++) {
        clasp_model_report *m = &aug->models[i];
        for (int j = 0; m->attacks && j < m->n_attacks; j++)
            if (m->attacks[j].derived) free_derived(&m->attacks[j]);
        free(m->attacks);
    }
    free(aug->models);
    memset(aug, 0, sizeof *aug);
}

/* The worst case over entries idx[0..n) of m into a (zeroed). */
static clasp_status derive(const clasp_model_report *m, int K, double eps, const int *idx, int n,
                           clasp_attack_report *a)
{
    int64_t N = m->n_examples;
    size_t KK = (size_t)K * (size_t)K;
    CLASP_TRY(clasp_counts_alloc(&a->per_class, K, 1));
    a->success = calloc((size_t)K, sizeof(int64_t));
    a->flow = calloc(KK, sizeof(int64_t));
    a->member_labels = calloc((size_t)n, sizeof *a->member_labels);
    a->first_flip = calloc((size_t)K * (size_t)n, sizeof(int64_t));
    a->adv_pred = malloc((size_t)N * sizeof(int32_t) + 1);
    a->derived = 1;
    if (!a->success || !a->flow || !a->member_labels || !a->first_flip || !a->adv_pred)
        return clasp_error(CLASP_ERR_NOMEM, "report: out of memory");
    a->n_members = n;
    a->linf_eps = eps;
    snprintf(a->label, sizeof a->label, "worst case eps=%g", eps);
    snprintf(a->plugin, sizeof a->plugin, "worst-case");
    size_t len = (size_t)snprintf(a->params, sizeof a->params, "over ");
    for (int j = 0; j < n; j++) {
        const clasp_attack_report *e = &m->attacks[idx[j]];
        snprintf(a->member_labels[j], sizeof a->member_labels[j], "%s", e->label);
        if (len < sizeof a->params)
            len += (size_t)snprintf(a->params + len, sizeof a->params - len, "%s%s", j ? ", " : "",
                                    e->label);
        a->seconds += e->seconds;
    }
    for (int64_t i = 0; i < N; i++) {
        int t = m->labels[i], c = m->clean_pred[i], w = c;
        if (t < 0 || t >= K || c < 0 || c >= K)
            return clasp_error(CLASP_ERR_INVALID,
                               "report: model %s: example %lld has label %d, prediction %d",
                               m->name, (long long)i, t, c);
        a->per_class.count[t]++;
        if (c == t) {
            a->per_class.clean_correct[t]++;
            for (int j = 0; j < n && w == t; j++) {
                int p = m->attacks[idx[j]].adv_pred[i];
                if (p != t && p >= 0 && p < K) {
                    w = p;
                    a->first_flip[(size_t)t * (size_t)n + (size_t)j]++;
                }
            }
            if (w == t) a->per_class.robust_correct[t]++;
            else a->success[t]++;
        }
        a->adv_pred[i] = w;
        a->flow[(size_t)t * (size_t)K + (size_t)w]++;
    }
    return CLASP_OK;
}

clasp_status report_worst_augment(const clasp_report *r, clasp_report *out)
{
    *out = *r;
    out->models = calloc(r->n_models > 0 ? (size_t)r->n_models : 1, sizeof *out->models);
    if (!out->models) return clasp_error(CLASP_ERR_NOMEM, "report: out of memory");
    clasp_status st = CLASP_OK;
    for (int i = 0; i < r->n_models; i++) {
        const clasp_model_report *m = &r->models[i];
        clasp_model_report *o = &out->models[i];
        *o = *m;
        o->attacks = NULL;
        o->n_attacks = 0;
        /* Budgets in order of first appearance; each with 2+ entries. */
        double budgets[WORST_MAX_MEMBERS];
        int nb = 0, ok = m->labels && m->clean_pred && m->n_examples > 0;
        for (int j = 0; ok && j < m->n_attacks; j++) {
            const clasp_attack_report *a = &m->attacks[j];
            if (a->linf_eps <= 0 || !a->adv_pred || a->derived) continue;
            int seen = 0;
            for (int b = 0; b < nb; b++) seen |= budgets[b] == a->linf_eps;
            if (!seen && nb < WORST_MAX_MEMBERS) budgets[nb++] = a->linf_eps;
        }
        o->attacks = calloc((size_t)m->n_attacks + (size_t)nb + 1, sizeof *o->attacks);
        if (!o->attacks) {
            st = clasp_error(CLASP_ERR_NOMEM, "report: out of memory");
            break;
        }
        for (int j = 0; j < m->n_attacks; j++) o->attacks[o->n_attacks++] = m->attacks[j];
        for (int b = 0; st == CLASP_OK && b < nb; b++) {
            int idx[WORST_MAX_MEMBERS], n = 0;
            for (int j = 0; j < m->n_attacks && n < WORST_MAX_MEMBERS; j++) {
                const clasp_attack_report *a = &m->attacks[j];
                if (a->linf_eps == budgets[b] && a->adv_pred && !a->derived) idx[n++] = j;
            }
            if (n < 2) continue;
            clasp_attack_report *d = &o->attacks[o->n_attacks++];
            st = derive(m, r->num_classes, budgets[b], idx, n, d);
        }
        if (st != CLASP_OK) break;
    }
    if (st != CLASP_OK) report_worst_free(out);
    return st;
}
