/* The facts of a model's report, computed once (see facts.h). */
#include "experiment/report/facts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/counts.h"
#include "clasp/groups.h"

/* ---- definitions ---------------------------------------------------------- */

int report_linf_listed(const clasp_attack_report *a)
{
    return !a->unbounded && !a->derived;
}

double report_class_robust(const clasp_attack_report *a, int c)
{
    return clasp_rate(a->per_class.robust_correct[c], a->per_class.count[c]);
}

double report_robust_acc(const clasp_attack_report *a, int k)
{
    return clasp_rate(clasp_class_sum(a->per_class.robust_correct, k),
                      clasp_class_sum(a->per_class.count, k));
}

void report_extreme_classes(const int64_t *num, const int64_t *den, int k, int *worst, int *best)
{
    *worst = *best = -1;
    for (int i = 0; i < k; i++) {
        if (den[i] <= 0) continue;
        double r = clasp_rate(num[i], den[i]);
        if (*worst < 0 || r < clasp_rate(num[*worst], den[*worst])) *worst = i;
        if (*best < 0 || r > clasp_rate(num[*best], den[*best])) *best = i;
    }
}

attack_summary report_summarize(const clasp_attack_report *a, int k)
{
    attack_summary s;
    s.count = clasp_class_sum(a->per_class.count, k);
    s.clean = clasp_class_sum(a->per_class.clean_correct, k);
    s.robust = clasp_class_sum(a->per_class.robust_correct, k);
    s.success = clasp_class_sum(a->success, k);
    s.clean_acc = clasp_rate(s.clean, s.count);
    s.robust_acc = report_robust_acc(a, k);
    s.success_rate = clasp_rate(s.success, s.clean);
    report_extreme_classes(a->per_class.robust_correct, a->per_class.count, k, &s.worst, &s.best);
    s.gap = s.worst < 0 ? 0 : report_class_robust(a, s.best) - report_class_robust(a, s.worst);
    return s;
}

const int64_t *report_epoch_val_metric(const clasp_epoch_report *e)
{
    return e->val.robust_correct ? e->val.robust_correct : e->val.clean_correct;
}

int report_epoch_has_val(const clasp_epoch_report *e, int k)
{
    return e->val.count && e->val.clean_correct && clasp_class_sum(e->val.count, k) > 0;
}

int report_param_value(const char *params, const char *key, char *buf, size_t size)
{
    size_t kl = strlen(key);
    for (const char *p = params; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= size) vl = size - 1;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}

/* ---- Spearman ------------------------------------------------------------ */

/* 1-based ranks; tied values share the average of the ranks they span.
 * Sorting keeps this O(n log n), so 1000 classes cost nothing. */
typedef struct ranked {
    double v;
    int i;
} ranked;

static int ranked_cmp(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    return (a->v > b->v) - (a->v < b->v);
}

static int average_ranks(const double *v, int n, double *rank)
{
    ranked *t = malloc((size_t)n * sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < n; i++) t[i].v = v[i], t[i].i = i;
    qsort(t, (size_t)n, sizeof *t, ranked_cmp);
    for (int s = 0; s < n;) {
        int e = s;
        while (e + 1 < n && t[e + 1].v == t[s].v) e++;
        /* Positions s..e (0-based) share the ranks s+1..e+1. */
        int less = s, equal = e - s + 1;
        for (int q = s; q <= e; q++) rank[t[q].i] = less + (equal + 1) / 2.0;
        s = e + 1;
    }
    free(t);
    return 0;
}

double clasp_spearman(const double *x, const double *y, int n)
{
    if (!x || !y || n < 2) return NAN;
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i])) return NAN;
    double *rx = malloc(2 * (size_t)n * sizeof *rx);
    if (!rx) return NAN;
    double *ry = rx + n;
    if (average_ranks(x, n, rx) || average_ranks(y, n, ry)) {
        free(rx);
        return NAN;
    }
    /* Pearson's correlation of the ranks (both have mean (n + 1) / 2). */
    double m = (n + 1) / 2.0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - m) * (ry[i] - m);
        sxx += (rx[i] - m) * (rx[i] - m);
        syy += (ry[i] - m) * (ry[i] - m);
    }
    free(rx);
    if (sxx == 0 || syy == 0) return NAN; /* a constant column: no ranking */
    double rho = sxy / sqrt(sxx * syy);
    return rho > 1 ? 1 : rho < -1 ? -1 : rho;
}

double report_rho_classes(const clasp_report *r, const clasp_attack_report *a, const double *x,
                          const double *y, int k)
{
    double *xs = malloc(2 * (size_t)k * sizeof *xs);
    if (!xs) return NAN;
    double *ys = xs + k;
    int n = 0;
    for (int c = 0; c < k; c++)
        if (a->per_class.count[c] > 0 && !(r->excluded && r->excluded[c]))
            xs[n] = x[c], ys[n] = y[c], n++;
    double rho = clasp_spearman(xs, ys, n);
    free(xs);
    return rho;
}

/* ---- the facts -------------------------------------------------------------- */

/* The stronger of attacks i and j: b has the lower overall robust
 * accuracy; on a tie they keep their order. */
static attack_pair order_pair(const model_facts *f, int i, int j)
{
    double ri = f->sum[i].robust_acc, rj = f->sum[j].robust_acc;
    attack_pair p = {i, j, i, j, ri == rj, 0, NAN, 0};
    if (rj > ri) p.a = j, p.b = i;
    p.overall_gain = f->sum[p.a].robust_acc - f->sum[p.b].robust_acc;
    return p;
}

static int strongest_linf(const clasp_model_report *m, const model_facts *f)
{
    int best = -1;
    for (int i = 0; i < m->n_attacks; i++)
        if (report_linf_listed(&m->attacks[i]) &&
            (best < 0 || f->sum[i].robust_acc < f->sum[best].robust_acc))
            best = i;
    return best;
}

/* Among the L-infinity attacks when there is one, since an unbounded
 * attack's robust accuracy is not on the same scale. */
static int strongest_any(const clasp_model_report *m, const model_facts *f)
{
    if (m->n_attacks == 0) return -1;
    if (f->strongest_linf >= 0) return f->strongest_linf;
    int best = 0;
    for (int i = 1; i < m->n_attacks; i++)
        if (!m->attacks[i].derived && f->sum[i].robust_acc < f->sum[best].robust_acc) best = i;
    return best;
}

static int clean_agrees(const clasp_model_report *m, int k)
{
    for (int j = 1; j < m->n_attacks; j++)
        for (int c = 0; c < k; c++)
            if (m->attacks[j].per_class.clean_correct[c] !=
                    m->attacks[0].per_class.clean_correct[c] ||
                m->attacks[j].per_class.count[c] != m->attacks[0].per_class.count[c])
                return 0;
    return 1;
}

/* The traits the report reads (clasp_attack_report), with the built-in
 * attacks' names as the fallback when they were not recorded. */
static const char *budget_of(const clasp_attack_report *a)
{
    return a->traits_known ? a->budget : "eps";
}

static const char *temperature_of(const clasp_attack_report *a)
{
    if (a->traits_known) return a->temperature[0] && a->equals_at_one[0] ? a->temperature : NULL;
    return strcmp(a->plugin, "tpgd") ? NULL : "T";
}

static int equals_at_one(const clasp_attack_report *t, const clasp_attack_report *p)
{
    return !strcmp(p->plugin, t->traits_known ? t->equals_at_one : "pgd");
}

static int is_gradient_free(const clasp_attack_report *a)
{
    return a->traits_known ? a->gradient_free : !strcmp(a->plugin, "square");
}

/* t (with a temperature) has p's budget when p is the attack t equals at
 * temperature 1 and every parameter of p has the same value in t (for
 * pgd: eps, alpha, steps, restarts, rand_init). */
static int same_budget(const clasp_attack_report *p, const clasp_attack_report *t)
{
    if (!temperature_of(t) || !equals_at_one(t, p) || p->derived || t->derived) return 0;
    int n = 0;
    for (const char *s = p->params; s && *s;) {
        while (*s == ' ' || *s == ',') s++;
        const char *eq = strchr(s, '=');
        if (!eq) break;
        char key[64], v1[64], v2[64];
        size_t kl = (size_t)(eq - s) < sizeof key ? (size_t)(eq - s) : sizeof key - 1;
        memcpy(key, s, kl);
        key[kl] = '\0';
        if (!report_param_value(p->params, key, v1, sizeof v1) ||
            !report_param_value(t->params, key, v2, sizeof v2) || strcmp(v1, v2))
            return 0;
        n++;
        s = strchr(s, ',');
    }
    return n > 0;
}

/* The budget value of a listed attack from its parameters; 0 when none. */
static int budget_value(const clasp_attack_report *a, double *eps)
{
    char v[64];
    const char *name = budget_of(a);
    if (!name || !*name || !report_param_value(a->params, name, v, sizeof v)) return 0;
    *eps = strtod(v, NULL);
    return 1;
}

/* The gradient-free attack and the strongest gradient-based L-infinity
 * attack with the same eps. */
static void masking_pair(const clasp_model_report *m, model_facts *f)
{
    f->gf = f->grad = -1;
    int sq = -1;
    for (int i = 0; i < m->n_attacks && sq < 0; i++)
        if (report_linf_listed(&m->attacks[i]) && is_gradient_free(&m->attacks[i])) sq = i;
    if (sq < 0) return;
    double e1, e2;
    if (!budget_value(&m->attacks[sq], &e1)) return;
    int gr = -1;
    for (int i = 0; i < m->n_attacks; i++) {
        const clasp_attack_report *a = &m->attacks[i];
        if (!report_linf_listed(a) || is_gradient_free(a) || !budget_value(a, &e2) || e1 != e2)
            continue;
        if (gr < 0 || f->sum[i].robust_acc < f->sum[gr].robust_acc) gr = i;
    }
    if (gr < 0) return;
    f->gf = sq, f->grad = gr;
    const clasp_attack_report *S = &m->attacks[sq], *G = &m->attacks[gr];
    for (int c = 0; c < f->k; c++)
        f->n_gf_more += S->per_class.robust_correct[c] < G->per_class.robust_correct[c] &&
                        S->per_class.count[c] == G->per_class.count[c];
}

static int float_cmp(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

static double median_sorted(const float *d, int64_t n)
{
    return n % 2 ? d[n / 2] : 0.5 * ((double)d[n / 2 - 1] + (double)d[n / 2]);
}

/* Per class and overall: the L2 distances of the successes and the
 * examples robust at each budget (robust under the attack, or flipped only
 * beyond the budget). */
static l2_stats *l2_facts(const clasp_report *r, const clasp_attack_report *a, int k)
{
    size_t ne = r->n_l2_eps > 0 ? (size_t)r->n_l2_eps : 1;
    l2_stats *s = calloc((size_t)k + 1, sizeof *s);
    int64_t *at = calloc(((size_t)k + 1) * ne, sizeof *at);
    int64_t total = clasp_class_sum(a->success, k);
    float *all = malloc((size_t)(total > 0 ? total : 1) * sizeof *all);
    if (!s || !at || !all) {
        free(s), free(at), free(all);
        return NULL;
    }
    l2_stats *o = &s[k];
    *o = (l2_stats){total, NAN, NAN, at + (size_t)k * ne, 0};
    int64_t off = 0;
    double sum_all = 0;
    for (int c = 0; c < k; c++) {
        l2_stats *x = &s[c];
        const float *d = a->l2_dist + off;
        *x = (l2_stats){a->success[c], NAN, NAN, at + (size_t)c * ne, a->per_class.count[c]};
        o->count += x->count;
        if (x->n > 0) {
            double sum = 0;
            for (int64_t i = 0; i < x->n; i++) sum += d[i];
            x->mean = sum / (double)x->n;
            x->median = median_sorted(d, x->n);
        }
        for (int e = 0; e < r->n_l2_eps; e++) {
            int64_t beyond = 0;
            for (int64_t i = 0; i < x->n; i++) beyond += (double)d[i] > r->l2_eps[e];
            x->robust_at[e] = a->per_class.robust_correct[c] + beyond;
            o->robust_at[e] += x->robust_at[e];
        }
        off += x->n;
    }
    if (total > 0) {
        memcpy(all, a->l2_dist, (size_t)total * sizeof *all);
        for (int64_t i = 0; i < total; i++) sum_all += all[i];
        o->mean = sum_all / (double)total;
        /* Each class's run is sorted, the whole is not. */
        qsort(all, (size_t)total, sizeof *all, float_cmp);
        o->median = median_sorted(all, total);
    }
    free(all);
    return s;
}

/* ---- the large-class view ------------------------------------------------ */

const double report_quantile_at[REPORT_N_QUANTILES] = {0, 0.1, 0.25, 0.5, 0.75, 0.9, 1};

static int double_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Quantiles with linear interpolation between order statistics (the
 * usual definition, numpy's default): h = (n - 1) p. */
static class_dist distribution(const clasp_attack_report *a, int k, double *buf)
{
    class_dist d = {0, 0, NAN, {0}};
    double sum = 0;
    for (int c = 0; c < k; c++)
        if (a->per_class.count[c] > 0) {
            buf[d.n++] = report_class_robust(a, c);
            sum += buf[d.n - 1];
            d.at_zero += a->per_class.robust_correct[c] == 0;
        }
    for (int i = 0; i < REPORT_N_QUANTILES; i++) d.q[i] = NAN;
    if (d.n == 0) return d;
    d.mean = sum / d.n;
    qsort(buf, (size_t)d.n, sizeof *buf, double_cmp);
    for (int i = 0; i < REPORT_N_QUANTILES; i++) {
        double h = (d.n - 1) * report_quantile_at[i];
        int lo = (int)floor(h);
        int hi = lo + 1 < d.n ? lo + 1 : lo;
        d.q[i] = buf[lo] + (h - lo) * (buf[hi] - buf[lo]);
    }
    return d;
}

typedef struct keyed {
    double v;
    int c;
} keyed;

/* Ascending by value, ties by the lower class index. */
static int keyed_cmp(const void *x, const void *y)
{
    const keyed *a = x, *b = y;
    if (a->v != b->v) return (a->v > b->v) - (a->v < b->v);
    return (a->c > b->c) - (a->c < b->c);
}

/* The REPORT_LIST_N classes with the largest gain of b over a (positive
 * gains only; ties by the lower class index). */
static int top_gains(const clasp_attack_report *A, const clasp_attack_report *B, int k, keyed *buf,
                     int *out)
{
    int n = 0;
    for (int c = 0; c < k; c++) {
        double g = report_class_robust(A, c) - report_class_robust(B, c);
        if (A->per_class.count[c] > 0 && g > 0) buf[n++] = (keyed){-g, c};
    }
    qsort(buf, (size_t)n, sizeof *buf, keyed_cmp);
    if (n > REPORT_LIST_N) n = REPORT_LIST_N;
    for (int i = 0; i < n; i++) out[i] = buf[i].c;
    return n;
}

/* The most frequent flows true -> predicted (off the diagonal), by count,
 * ties by (true, predicted); a running list, so 1000 x 1000 costs one pass. */
static int top_flows(const clasp_attack_report *a, int k, flow_entry *out)
{
    int n = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            int64_t v = a->flow[(size_t)i * (size_t)k + (size_t)j];
            if (i == j || v <= 0 || (n == REPORT_LIST_N && v <= out[n - 1].n)) continue;
            int at = n < REPORT_LIST_N ? n++ : n - 1;
            while (at > 0 && out[at - 1].n < v) {
                out[at] = out[at - 1];
                at--;
            }
            out[at] = (flow_entry){i, j, v};
        }
    return n;
}

static int large_facts_compute(const clasp_model_report *m, model_facts *f)
{
    int k = f->k, n = f->n_attacks;
    large_facts *lg = &f->lg;
    size_t na = n > 0 ? (size_t)n : 1, np = f->n_pairs > 0 ? (size_t)f->n_pairs : 1;
    double *buf = malloc((size_t)k * sizeof *buf);
    keyed *kb = malloc((size_t)k * sizeof *kb);
    lg->dist = calloc(na, sizeof *lg->dist);
    lg->order = calloc((size_t)k, sizeof *lg->order);
    lg->n_top_gain = calloc(np, sizeof *lg->n_top_gain);
    lg->top_gain = calloc(np, sizeof *lg->top_gain);
    int ok = buf && kb && lg->dist && lg->order && lg->n_top_gain && lg->top_gain;
    for (int j = 0; ok && j < n; j++) lg->dist[j] = distribution(&m->attacks[j], k, buf);
    if (ok && f->strongest >= 0) {
        const clasp_attack_report *s = &m->attacks[f->strongest];
        for (int c = 0; c < k; c++)
            if (s->per_class.count[c] > 0)
                kb[lg->n_order++] = (keyed){report_class_robust(s, c), c};
        qsort(kb, (size_t)lg->n_order, sizeof *kb, keyed_cmp);
        for (int i = 0; i < lg->n_order; i++) lg->order[i] = kb[i].c;
        lg->n_flows = top_flows(s, k, lg->flows);
    }
    for (int q = 0; ok && q < f->n_pairs; q++)
        lg->n_top_gain[q] = top_gains(&m->attacks[f->pairs[q].a], &m->attacks[f->pairs[q].b], k, kb,
                                      lg->top_gain[q]);
    free(buf);
    free(kb);
    return ok;
}

/* The groups' counts: a mapping file's groups (r->groups) when given,
 * else the built-in ones the data set has. 0: out of memory. */
static int groups_compute(const clasp_report *r, const clasp_model_report *m, model_facts *f)
{
    int k = f->k, n = f->n_attacks;
    size_t na = n > 0 ? (size_t)n : 1;
    class_groups *g = &f->groups;
    int ng = 0;
    const clasp_class_groups *u = r->groups;
    if (u && u->group_of && u->num_classes == k && u->n_groups > 0) {
        ng = u->n_groups;
        g->own_names = malloc((size_t)ng * sizeof *g->own_names);
        if (!g->own_names) return 0;
        for (int i = 0; i < ng; i++) g->own_names[i] = u->names[i];
        g->names = g->own_names;
        g->group_of = u->group_of;
        g->file = u->source;
        g->n_unlisted = u->n_unlisted;
    } else {
        ng = report_builtin_groups(r, &g->names, &g->group_of);
    }
    if (ng == 0 || n == 0) return 1;
    g->count = calloc((size_t)ng, sizeof *g->count);
    g->clean = calloc((size_t)ng, sizeof *g->clean);
    g->robust = calloc((size_t)ng * na, sizeof *g->robust);
    if (!g->count || !g->clean || !g->robust) return 0;
    for (int c = 0; c < k; c++) {
        int gi = g->group_of[c];
        g->count[gi] += m->attacks[0].per_class.count[c];
        g->clean[gi] += m->attacks[0].per_class.clean_correct[c];
        for (int j = 0; j < n; j++)
            g->robust[(size_t)gi * na + (size_t)j] += m->attacks[j].per_class.robust_correct[c];
    }
    g->n = ng;
    return 1;
}

static void large_facts_free(large_facts *lg)
{
    free(lg->dist);
    free(lg->order);
    free(lg->n_top_gain);
    free(lg->top_gain);
}

void report_facts_free(model_facts *f)
{
    if (!f) return;
    large_facts_free(&f->lg);
    free(f->groups.count);
    free(f->groups.clean);
    free(f->groups.robust);
    free(f->groups.own_names);
    for (int j = 0; f->l2 && j < f->n_attacks; j++)
        if (f->l2[j]) {
            free(f->l2[j][0].robust_at);
            free(f->l2[j]);
        }
    free(f->l2);
    free(f->sum);
    free(f->pairs);
    free(f->tpgd);
    memset(f, 0, sizeof *f);
}

clasp_status report_facts_compute(const clasp_report *r, int mi, model_facts *f)
{
    const clasp_model_report *m = &r->models[mi];
    int k = r->num_classes, n = m->n_attacks;
    memset(f, 0, sizeof *f);
    f->k = k;
    f->n_attacks = n;
    f->weight_rho = NAN;
    f->gf = f->grad = -1;
    size_t na = n > 0 ? (size_t)n : 1;
    f->sum = calloc(na, sizeof *f->sum);
    f->pairs = calloc(na * na, sizeof *f->pairs);
    f->tpgd = calloc(na * na, sizeof *f->tpgd);
    f->l2 = calloc(na, sizeof *f->l2);
    double *v = malloc(2 * (size_t)k * sizeof *v);
    if (!f->sum || !f->pairs || !f->tpgd || !f->l2 || !v) goto nomem;
    double *w = v + k;
    for (int j = 0; j < n; j++) {
        f->sum[j] = report_summarize(&m->attacks[j], k);
        f->n_listed += report_linf_listed(&m->attacks[j]);
    }
    f->strongest_linf = strongest_linf(m, f);
    f->strongest = strongest_any(m, f);
    f->clean_agrees = clean_agrees(m, k);

    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!report_linf_listed(&m->attacks[i]) || !report_linf_listed(&m->attacks[j]))
                continue;
            attack_pair p = order_pair(f, i, j);
            const clasp_attack_report *A = &m->attacks[p.a], *B = &m->attacks[p.b];
            for (int c = 0; c < k; c++) {
                v[c] = report_class_robust(A, c);
                w[c] = v[c] - report_class_robust(B, c);
            }
            p.rho = report_rho_classes(r, A, v, w, k);
            f->pairs[f->n_pairs++] = p;
        }

    for (int q = 0; q < f->n_pairs; q++) {
        attack_pair *p = &f->pairs[q];
        p->shown = f->n_pairs <= 6 || p->i == f->strongest || p->j == f->strongest;
    }

    int s = f->strongest_linf;
    if (s >= 0 && m->class_weight_norms) {
        for (int c = 0; c < k; c++) {
            v[c] = report_class_robust(&m->attacks[s], c);
            w[c] = m->class_weight_norms[c];
        }
        f->weight_rho = report_rho_classes(r, &m->attacks[s], w, v, k);
    }

    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (same_budget(&m->attacks[i], &m->attacks[j])) {
                char t[64] = "";
                report_param_value(m->attacks[j].params, temperature_of(&m->attacks[j]), t,
                                   sizeof t);
                f->tpgd[f->n_tpgd++] = (tpgd_pair){i, j, strtod(t, NULL)};
            }

    masking_pair(m, f);

    for (int j = 0; j < n; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (a->derived || a->linf_eps <= 0) continue;
        int known = 0;
        for (int i = 0; i < f->n_budgets; i++) known |= f->budgets[i] == a->linf_eps;
        if (!known && f->n_budgets < REPORT_MAX_BUDGETS) f->budgets[f->n_budgets++] = a->linf_eps;
    }

    for (int j = 0; j < n; j++)
        if (m->attacks[j].unbounded && m->attacks[j].l2_dist &&
            !(f->l2[j] = l2_facts(r, &m->attacks[j], k)))
            goto nomem;
    f->large = k > REPORT_SMALL_CLASSES;
    if (f->large && !large_facts_compute(m, f)) goto nomem;
    if (!groups_compute(r, m, f)) goto nomem;
    free(v);
    return CLASP_OK;
nomem:
    free(v);
    report_facts_free(f);
    return clasp_error(CLASP_ERR_NOMEM, "report: model %s: out of memory", m->name);
}
