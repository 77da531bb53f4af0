/* The report's L2 section and class-wise relations.
 *
 * L2: an unbounded attack (cw) flips nearly every example given no budget,
 * so its robust accuracy says little next to the L-infinity attacks'. What
 * it does measure is how far each class's examples are from a wrong class:
 * per class, the median and mean L2 distance of its successes, and the
 * robust accuracy at the L2 budgets of evaluate.l2_eps (an example counts
 * as robust there unless it was misclassified already or the attack
 * flipped it within the budget).
 *
 * Relations, after the class-wise study of adversarial training (Tian et
 * al., "Analysis and Applications of Class-wise Robustness in Adversarial
 * Training", KDD 2021, and its ICLR 2021 version "Intriguing class-wise
 * properties of adversarial training"), each a Spearman rank correlation
 * over the classes with test examples:
 *   - the L2 norm of each class's row of the classifier's weight against
 *     the robust accuracy under the strongest L-infinity attack (the study
 *     finds them positively correlated);
 *   - for each pair of L-infinity attacks, a weaker (higher overall robust
 *     accuracy) and b stronger: a's per-class robust accuracy against b's
 *     per-class gain over a (the study finds stronger attacks more
 *     powerful on vulnerable classes, which reads as a negative
 *     correlation);
 *   - T-PGD against PGD at the same budget (every parameter of pgd equal
 *     in tpgd): the per-class difference of robust accuracy, per T.
 *
 * Gradient masking: a gradient-free attack (square, forward passes only)
 * that finds more than the strongest gradient attack at the same budget
 * means the gradients mislead (e.g. a saturated softmax); shown per class
 * whenever a model is attacked by both. */
#include "experiment/report_relations.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/report_internal.h"

/* ---- Spearman ------------------------------------------------------------ */

/* 1-based ranks; tied values share the average of the ranks they span. */
/* A listed L-infinity attack: not unbounded, and not a worst case the
 * report derived from the listed ones. */
static int linf_listed(const clasp_attack_report *a)
{
    return !a->unbounded && !a->derived;
}

static void average_ranks(const double *v, int n, double *rank)
{
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < n; j++) {
            if (v[j] < v[i]) less++;
            else if (v[j] == v[i]) equal++;
        }
        rank[i] = less + (equal + 1) / 2.0;
    }
}

double clasp_spearman(const double *x, const double *y, int n)
{
    if (!x || !y || n < 2) return NAN;
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i])) return NAN;
    double *rx = malloc(2 * (size_t)n * sizeof *rx);
    if (!rx) return NAN;
    double *ry = rx + n;
    average_ranks(x, n, rx);
    average_ranks(y, n, ry);
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

/* ---- helpers --------------------------------------------------------------- */

static double rate(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0.0;
}

double report_robust_all(const clasp_attack_report *a, int k)
{
    int64_t num = 0, den = 0;
    for (int c = 0; c < k; c++) num += a->per_class.robust_correct[c], den += a->per_class.count[c];
    return rate(num, den);
}

int report_strongest_linf(const clasp_model_report *m, int k)
{
    int best = -1;
    for (int i = 0; i < m->n_attacks; i++)
        if (linf_listed(&m->attacks[i]) &&
            (best < 0 ||
             report_robust_all(&m->attacks[i], k) < report_robust_all(&m->attacks[best], k)))
            best = i;
    return best;
}

static void jadd(json_object *o, const char *key, json_object *v, int *bad)
{
    if (!o || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

static void jpush(json_object *arr, json_object *v, int *bad)
{
    if (!arr || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

/* A number with 12 significant digits, or null (NaN: undefined). */
static json_object *jnum(double x, int *bad)
{
    if (!isfinite(x)) return NULL;
    char s[40];
    int n = snprintf(s, sizeof s, "%.12g", x);
    if (!strpbrk(s, ".e")) snprintf(s + n, sizeof s - (size_t)n, ".0");
    json_object *o = json_object_new_double_s(x, s);
    if (!o) *bad = 1;
    return o;
}

static json_object *jstr(const char *s, int *bad)
{
    json_object *o = json_object_new_string(s);
    if (!o) *bad = 1;
    return o;
}

static json_object *jarr(int *bad)
{
    json_object *o = json_object_new_array();
    if (!o) *bad = 1;
    return o;
}

static json_object *jobj(int *bad)
{
    json_object *o = json_object_new_object();
    if (!o) *bad = 1;
    return o;
}

/* A correlation or "—" when undefined. */
static void md_rho(clasp_buf *b, double rho)
{
    if (isfinite(rho)) clasp_buf_printf(b, "%+.2f", rho);
    else clasp_buf_puts(b, "\u2014");
}

/* ---- L2 --------------------------------------------------------------------- */

typedef struct l2_class {
    int64_t n;           /* successes with a distance */
    double median, mean; /* NaN when n == 0 */
    const float *d;      /* their distances, ascending */
} l2_class;

static l2_class l2_of(const clasp_attack_report *a, int c)
{
    l2_class s = {0, NAN, NAN, NULL};
    int64_t off = 0;
    for (int j = 0; j < c; j++) off += a->success[j];
    s.n = a->success[c];
    s.d = a->l2_dist + off;
    if (s.n > 0) {
        double sum = 0;
        for (int64_t i = 0; i < s.n; i++) sum += s.d[i];
        s.mean = sum / (double)s.n;
        s.median = s.n % 2 ? s.d[s.n / 2] : 0.5 * ((double)s.d[s.n / 2 - 1] + (double)s.d[s.n / 2]);
    }
    return s;
}

/* Examples of class c robust at L2 budget eps: robust under the attack, or
 * flipped only beyond eps. */
static int64_t robust_at(const clasp_attack_report *a, int c, double eps)
{
    l2_class s = l2_of(a, c);
    int64_t beyond = 0;
    for (int64_t i = 0; i < s.n; i++) beyond += (double)s.d[i] > eps;
    return a->per_class.robust_correct[c] + beyond;
}

static int float_cmp(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Median and mean over all classes' successes. */
static void l2_overall(const clasp_attack_report *a, int k, int64_t *n, double *median,
                       double *mean)
{
    *n = 0;
    for (int c = 0; c < k; c++) *n += a->success[c];
    *median = *mean = NAN;
    if (*n == 0) return;
    float *all = malloc((size_t)*n * sizeof *all);
    if (!all) return;
    memcpy(all, a->l2_dist, (size_t)*n * sizeof *all);
    double sum = 0;
    for (int64_t i = 0; i < *n; i++) sum += all[i];
    *mean = sum / (double)*n;
    /* Each class's run is sorted, the whole is not. */
    qsort(all, (size_t)*n, sizeof *all, float_cmp);
    *median = *n % 2 ? all[*n / 2] : 0.5 * ((double)all[*n / 2 - 1] + (double)all[*n / 2]);
    free(all);
}

json_object *report_json_l2(const clasp_report *r, const clasp_attack_report *a, int *bad)
{
    if (!a->unbounded || !a->l2_dist) return NULL;
    int k = r->num_classes;
    json_object *o = jobj(bad), *rows = jarr(bad);
    for (int c = 0; c < k; c++) {
        l2_class s = l2_of(a, c);
        json_object *x = jobj(bad);
        jadd(x, "class_index", json_object_new_int(c), bad);
        jadd(x, "class", jstr(r->class_names[c], bad), bad);
        jadd(x, "successes", json_object_new_int64(s.n), bad);
        jadd(x, "median", jnum(s.median, bad), bad);
        jadd(x, "mean", jnum(s.mean, bad), bad);
        json_object *at = jarr(bad);
        for (int e = 0; e < r->n_l2_eps; e++) {
            json_object *y = jobj(bad);
            int64_t rc = robust_at(a, c, r->l2_eps[e]);
            jadd(y, "l2_eps", jnum(r->l2_eps[e], bad), bad);
            jadd(y, "robust_correct", json_object_new_int64(rc), bad);
            jadd(y, "robust_acc", jnum(rate(rc, a->per_class.count[c]), bad), bad);
            jpush(at, y, bad);
        }
        jadd(x, "at_budget", at, bad);
        jpush(rows, x, bad);
    }
    jadd(o, "per_class", rows, bad);
    int64_t n;
    double median, mean;
    l2_overall(a, k, &n, &median, &mean);
    json_object *all = jobj(bad);
    jadd(all, "successes", json_object_new_int64(n), bad);
    jadd(all, "median", jnum(median, bad), bad);
    jadd(all, "mean", jnum(mean, bad), bad);
    json_object *at = jarr(bad);
    for (int e = 0; e < r->n_l2_eps; e++) {
        int64_t rc = 0, cnt = 0;
        for (int c = 0; c < k; c++)
            rc += robust_at(a, c, r->l2_eps[e]), cnt += a->per_class.count[c];
        json_object *y = jobj(bad);
        jadd(y, "l2_eps", jnum(r->l2_eps[e], bad), bad);
        jadd(y, "robust_correct", json_object_new_int64(rc), bad);
        jadd(y, "robust_acc", jnum(rate(rc, cnt), bad), bad);
        jpush(at, y, bad);
    }
    jadd(all, "at_budget", at, bad);
    jadd(o, "summary", all, bad);
    return o;
}

static void md_dist(clasp_buf *b, double d)
{
    if (isfinite(d)) clasp_buf_printf(b, " %.3f |", d);
    else clasp_buf_puts(b, " \u2014 |");
}

void report_md_l2(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, any = 0;
    for (int j = 0; j < m->n_attacks; j++) any |= m->attacks[j].unbounded && m->attacks[j].l2_dist;
    if (!any) return;
    clasp_buf_puts(b,
                   "\n### Unbounded attacks: L2 distances\n\n"
                   "An unbounded attack (one without an L\u221e budget `eps`, such as cw) is never "
                   "ranked against the L\u221e attacks, since its robust accuracy depends on how "
                   "long it searches rather than on a budget. What it measures is distance: per "
                   "class, the median and mean L2 distance \u2016x\u2032 \u2212 x\u2016\u2082 "
                   "(pixels in [0, 1]) of the examples it flipped (clean-correct, then "
                   "misclassified), where smaller means the class lies closer to a wrong one");
    if (r->n_l2_eps > 0)
        clasp_buf_puts(b,
                       "; and the robust accuracy at each L2 budget of `evaluate.l2_eps`, where an "
                       "example counts as robust unless it was misclassified already or the attack "
                       "flipped it within the budget (an upper bound: a stronger L2 attack can "
                       "only "
                       "lower it)");
    clasp_buf_puts(b, ". \u2014: no example flipped.\n");
    for (int j = 0; j < m->n_attacks; j++) {
        const clasp_attack_report *a = &m->attacks[j];
        if (!a->unbounded || !a->l2_dist) continue;
        clasp_buf_puts(b, "\n| Class (");
        report_md_text(b, a->label);
        clasp_buf_puts(b, ") | n | flipped | median L2 | mean L2 |");
        for (int e = 0; e < r->n_l2_eps; e++)
            clasp_buf_printf(b, " robust at L2 \u2264 %g |", r->l2_eps[e]);
        clasp_buf_puts(b, "\n|---|---:|---:|---:|---:|");
        for (int e = 0; e < r->n_l2_eps; e++) clasp_buf_puts(b, "---:|");
        int64_t cnt = 0, flipped = 0;
        for (int c = 0; c < k; c++) {
            l2_class s = l2_of(a, c);
            cnt += a->per_class.count[c], flipped += s.n;
            clasp_buf_puts(b, "\n| ");
            report_md_text(b, r->class_names[c]);
            clasp_buf_printf(b, " | %lld | %lld |", (long long)a->per_class.count[c],
                             (long long)s.n);
            md_dist(b, s.median);
            md_dist(b, s.mean);
            for (int e = 0; e < r->n_l2_eps; e++)
                clasp_buf_printf(b, " %.1f |",
                                 100 * rate(robust_at(a, c, r->l2_eps[e]), a->per_class.count[c]));
        }
        int64_t n;
        double median, mean;
        l2_overall(a, k, &n, &median, &mean);
        clasp_buf_printf(b, "\n| **all** | %lld | %lld |", (long long)cnt, (long long)flipped);
        md_dist(b, median);
        md_dist(b, mean);
        for (int e = 0; e < r->n_l2_eps; e++) {
            int64_t rc = 0;
            for (int c = 0; c < k; c++) rc += robust_at(a, c, r->l2_eps[e]);
            clasp_buf_printf(b, " %.1f |", 100 * rate(rc, cnt));
        }
        clasp_buf_puts(b, "\n");
    }
}

/* ---- relations -------------------------------------------------------------- */

/* Spearman over the classes with test examples (count > 0 in attack a)
 * that were trained on. */
static double rho_classes(const clasp_report *r, const clasp_attack_report *a, const double *x,
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

static void robust_vec(const clasp_attack_report *a, int k, double *out)
{
    for (int c = 0; c < k; c++)
        out[c] = rate(a->per_class.robust_correct[c], a->per_class.count[c]);
}

/* The value of key in "k=v, k=v" params text into buf; 0 when absent. */
static int param_value(const char *params, const char *key, char *buf, size_t size)
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

/* tpgd t has pgd p's budget when every parameter of p has the same value
 * in t (eps, alpha, steps, restarts, rand_init). */
static int same_budget(const clasp_attack_report *p, const clasp_attack_report *t)
{
    if (strcmp(p->plugin, "pgd") || strcmp(t->plugin, "tpgd")) return 0;
    int n = 0;
    for (const char *s = p->params; s && *s;) {
        while (*s == ' ' || *s == ',') s++;
        const char *eq = strchr(s, '=');
        if (!eq) break;
        char key[64], v1[64], v2[64];
        size_t kl = (size_t)(eq - s) < sizeof key ? (size_t)(eq - s) : sizeof key - 1;
        memcpy(key, s, kl);
        key[kl] = '\0';
        if (!param_value(p->params, key, v1, sizeof v1) ||
            !param_value(t->params, key, v2, sizeof v2) || strcmp(v1, v2))
            return 0;
        n++;
        s = strchr(s, ',');
    }
    return n > 0;
}

typedef struct pair_rel {
    int a, b; /* weaker, stronger (indices) */
    int tie;
    double rho;
} pair_rel;

static pair_rel make_rel(const clasp_report *r, const clasp_model_report *m, int i, int j, int k,
                         double *ra, double *gain)
{
    pair_rel p = {i, j, 0, NAN};
    double ri = report_robust_all(&m->attacks[i], k), rj = report_robust_all(&m->attacks[j], k);
    p.tie = ri == rj;
    if (rj > ri) p.a = j, p.b = i;
    const clasp_attack_report *A = &m->attacks[p.a], *B = &m->attacks[p.b];
    for (int c = 0; c < k; c++) {
        ra[c] = rate(A->per_class.robust_correct[c], A->per_class.count[c]);
        gain[c] = ra[c] - rate(B->per_class.robust_correct[c], B->per_class.count[c]);
    }
    p.rho = rho_classes(r, A, ra, gain, k);
    return p;
}

json_object *report_json_relations(const clasp_report *r, const clasp_model_report *m, int *bad)
{
    int k = r->num_classes, s = report_strongest_linf(m, k);
    double *v = malloc(2 * (size_t)k * sizeof *v);
    if (!v) return *bad = 1, NULL;
    double *w = v + k;
    json_object *o = jobj(bad);

    /* Classifier row norms against robust accuracy. */
    json_object *norm = jobj(bad);
    if (m->class_weight_norms) {
        json_object *arr = jarr(bad);
        for (int c = 0; c < k; c++) jpush(arr, jnum(m->class_weight_norms[c], bad), bad);
        jadd(norm, "class_weight_norms", arr, bad);
    } else {
        jadd(norm, "class_weight_norms", NULL, bad);
    }
    jadd(norm, "attack", s >= 0 ? jstr(m->attacks[s].label, bad) : NULL, bad);
    double rho = NAN;
    if (s >= 0 && m->class_weight_norms) {
        robust_vec(&m->attacks[s], k, v);
        for (int c = 0; c < k; c++) w[c] = m->class_weight_norms[c];
        rho = rho_classes(r, &m->attacks[s], w, v, k);
    }
    jadd(norm, "spearman", jnum(rho, bad), bad);
    jadd(o, "weight_norm_vs_robust", norm, bad);

    /* Pairs of L-infinity attacks. */
    json_object *pairs = jarr(bad);
    double *ra = malloc(2 * (size_t)k * sizeof *ra);
    if (!ra) *bad = 1;
    for (int i = 0; ra && i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++) {
            if (!linf_listed(&m->attacks[i]) || !linf_listed(&m->attacks[j])) continue;
            pair_rel p = make_rel(r, m, i, j, k, ra, ra + k);
            json_object *x = jobj(bad);
            jadd(x, "a", jstr(m->attacks[p.a].label, bad), bad);
            jadd(x, "b", jstr(m->attacks[p.b].label, bad), bad);
            jadd(x, "tie", json_object_new_boolean(p.tie), bad);
            jadd(x, "spearman_robust_a_vs_gain", jnum(p.rho, bad), bad);
            jpush(pairs, x, bad);
        }
    free(ra);
    jadd(o, "attack_pairs", pairs, bad);

    /* T-PGD against PGD at the same budget. */
    json_object *tp = jarr(bad);
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = 0; j < m->n_attacks; j++) {
            const clasp_attack_report *P = &m->attacks[i], *T = &m->attacks[j];
            if (!same_budget(P, T)) continue;
            char t[64] = "";
            param_value(T->params, "T", t, sizeof t);
            json_object *x = jobj(bad), *diff = jarr(bad);
            jadd(x, "tpgd", jstr(T->label, bad), bad);
            jadd(x, "pgd", jstr(P->label, bad), bad);
            jadd(x, "T", jnum(strtod(t, NULL), bad), bad);
            for (int c = 0; c < k; c++)
                jpush(diff,
                      jnum(rate(T->per_class.robust_correct[c], T->per_class.count[c]) -
                               rate(P->per_class.robust_correct[c], P->per_class.count[c]),
                           bad),
                      bad);
            jadd(x, "robust_diff", diff, bad);
            jadd(x, "overall_diff", jnum(report_robust_all(T, k) - report_robust_all(P, k), bad),
                 bad);
            jpush(tp, x, bad);
        }
    jadd(o, "tpgd_vs_pgd", tp, bad);
    json_object *ex = jarr(bad);
    for (int c = 0; r->excluded && c < k; c++)
        if (r->excluded[c]) jpush(ex, json_object_new_int(c), bad);
    jadd(o, "classes_left_out", ex, bad);
    free(v);
    return o;
}

void report_md_relations(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, s = report_strongest_linf(m, k);
    if (s < 0) return;
    double *v = malloc(4 * (size_t)k * sizeof *v);
    if (!v) return;
    double *w = v + k, *ra = v + 2 * k, *gain = v + 3 * k;
    clasp_buf_puts(b,
                   "\n### Class-wise relations\n\n"
                   "The relations of the class-wise study of adversarial training (Tian et al., "
                   "KDD 2021; ICLR 2021 version) as Spearman rank correlations \u03c1 over the "
                   "classes with test examples (tied values share their average rank; \u2014 "
                   "where \u03c1 is undefined: fewer than two classes, or a column with one value "
                   "throughout). L\u221e attacks only.");
    if (r->excluded) {
        clasp_buf_puts(b, " Classes left out of training (data.exclude\\_classes) are left out of "
                          "every \u03c1 too:");
        for (int c = 0, first = 1; c < k; c++)
            if (r->excluded[c]) {
                clasp_buf_puts(b, first ? " *" : ", *");
                report_md_text(b, r->class_names[c]);
                clasp_buf_puts(b, "*");
                first = 0;
            }
        clasp_buf_puts(b, ".");
    }
    clasp_buf_puts(b, "\n");
    if (m->class_weight_norms) {
        robust_vec(&m->attacks[s], k, v);
        for (int c = 0; c < k; c++) w[c] = m->class_weight_norms[c];
        clasp_buf_puts(b,
                       "\n**Classifier weight norm and robustness.** Per class, the L2 norm of its "
                       "row of the last linear layer's weight, against its robust accuracy under "
                       "the "
                       "strongest L\u221e attack (");
        report_md_text(b, m->attacks[s].label);
        clasp_buf_puts(b, "): \u03c1 = ");
        md_rho(b, rho_classes(r, &m->attacks[s], w, v, k));
        clasp_buf_puts(b, " (the study finds a positive correlation).\n\n| Class | weight norm | "
                          "robust |\n"
                          "|---|---:|---:|");
        for (int c = 0; c < k; c++) {
            clasp_buf_puts(b, "\n| ");
            report_md_text(b, r->class_names[c]);
            clasp_buf_printf(b, " | %.3f | %.1f |", (double)m->class_weight_norms[c], 100 * v[c]);
        }
        clasp_buf_puts(b, "\n");
    }
    int npairs = 0;
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = i + 1; j < m->n_attacks; j++)
            npairs += linf_listed(&m->attacks[i]) && linf_listed(&m->attacks[j]);
    if (npairs > 0) {
        clasp_buf_puts(b,
                       "\n**Where stronger attacks win.** For each pair of L\u221e attacks, a the "
                       "weaker and b the stronger by overall robust accuracy: \u03c1 between a's "
                       "per-class robust accuracy and b's per-class gain over a (points a's robust "
                       "accuracy exceeds b's). The study finds stronger attacks more powerful on "
                       "vulnerable classes, which shows as a negative \u03c1.\n\n"
                       "| a (weaker) | b (stronger) | overall gain | \u03c1(robust under a, gain) "
                       "|\n"
                       "|---|---|---:|---:|");
        for (int i = 0; i < m->n_attacks; i++)
            for (int j = i + 1; j < m->n_attacks; j++) {
                if (!linf_listed(&m->attacks[i]) || !linf_listed(&m->attacks[j])) continue;
                pair_rel p = make_rel(r, m, i, j, k, ra, gain);
                clasp_buf_puts(b, "\n| ");
                report_md_text(b, m->attacks[p.a].label);
                clasp_buf_puts(b, " | ");
                report_md_text(b, m->attacks[p.b].label);
                clasp_buf_printf(b, "%s | %+.1f | ", p.tie ? " (tie)" : "",
                                 100 * (report_robust_all(&m->attacks[p.a], k) -
                                        report_robust_all(&m->attacks[p.b], k)));
                md_rho(b, p.rho);
                clasp_buf_puts(b, " |");
            }
        clasp_buf_puts(b, "\n");
    }
    int ntp = 0;
    for (int i = 0; i < m->n_attacks; i++)
        for (int j = 0; j < m->n_attacks; j++) ntp += same_budget(&m->attacks[i], &m->attacks[j]);
    if (ntp > 0) {
        clasp_buf_puts(b,
                       "\n**T-PGD against PGD at the same budget.** Per class, points of robust "
                       "accuracy under T-PGD minus under PGD with the same eps, steps, alpha, "
                       "restarts and random start; negative where T-PGD finds more.\n\n| Class |");
        for (int i = 0; i < m->n_attacks; i++)
            for (int j = 0; j < m->n_attacks; j++)
                if (same_budget(&m->attacks[i], &m->attacks[j])) {
                    clasp_buf_puts(b, " ");
                    report_md_text(b, m->attacks[j].label);
                    clasp_buf_puts(b, " \u2212 ");
                    report_md_text(b, m->attacks[i].label);
                    clasp_buf_puts(b, " |");
                }
        clasp_buf_puts(b, "\n|---|");
        for (int i = 0; i < ntp; i++) clasp_buf_puts(b, "---:|");
        for (int c = 0; c <= k; c++) {
            clasp_buf_puts(b, "\n| ");
            if (c < k) report_md_text(b, r->class_names[c]);
            else clasp_buf_puts(b, "**all**");
            clasp_buf_puts(b, " |");
            for (int i = 0; i < m->n_attacks; i++)
                for (int j = 0; j < m->n_attacks; j++) {
                    const clasp_attack_report *P = &m->attacks[i], *T = &m->attacks[j];
                    if (!same_budget(P, T)) continue;
                    double d = c < k
                                   ? rate(T->per_class.robust_correct[c], T->per_class.count[c]) -
                                         rate(P->per_class.robust_correct[c], P->per_class.count[c])
                                   : report_robust_all(T, k) - report_robust_all(P, k);
                    clasp_buf_printf(b, " %+.1f |", 100 * d);
                }
        }
        clasp_buf_puts(b, "\n");
    }
    free(v);
}

/* ---- gradient-free check ------------------------------------------------------ */

static int is_gradient_free(const clasp_attack_report *a)
{
    return !strcmp(a->plugin, "square");
}

/* The gradient-free attack and the strongest gradient-based L-infinity
 * attack with the same eps; 0 when there is no such pair. */
static int masking_pair(const clasp_model_report *m, int k, int *sq, int *gr)
{
    *sq = *gr = -1;
    for (int i = 0; i < m->n_attacks && *sq < 0; i++)
        if (linf_listed(&m->attacks[i]) && is_gradient_free(&m->attacks[i])) *sq = i;
    if (*sq < 0) return 0;
    char e1[64], e2[64];
    if (!param_value(m->attacks[*sq].params, "eps", e1, sizeof e1)) return 0;
    for (int i = 0; i < m->n_attacks; i++) {
        const clasp_attack_report *a = &m->attacks[i];
        if (!linf_listed(a) || is_gradient_free(a) ||
            !param_value(a->params, "eps", e2, sizeof e2) || strtod(e1, NULL) != strtod(e2, NULL))
            continue;
        if (*gr < 0 || report_robust_all(a, k) < report_robust_all(&m->attacks[*gr], k)) *gr = i;
    }
    return *gr >= 0;
}

json_object *report_json_masking(const clasp_report *r, const clasp_model_report *m, int *bad)
{
    int k = r->num_classes, sq, gr;
    if (!masking_pair(m, k, &sq, &gr)) return NULL;
    const clasp_attack_report *S = &m->attacks[sq], *G = &m->attacks[gr];
    json_object *o = jobj(bad), *diff = jarr(bad), *worse = jarr(bad);
    jadd(o, "gradient_free", jstr(S->label, bad), bad);
    jadd(o, "gradient", jstr(G->label, bad), bad);
    for (int c = 0; c < k; c++) {
        double d = rate(S->per_class.robust_correct[c], S->per_class.count[c]) -
                   rate(G->per_class.robust_correct[c], G->per_class.count[c]);
        jpush(diff, jnum(d, bad), bad);
        if (S->per_class.robust_correct[c] < G->per_class.robust_correct[c] &&
            S->per_class.count[c] == G->per_class.count[c])
            jpush(worse, json_object_new_int(c), bad);
    }
    jadd(o, "robust_diff", diff, bad);
    jadd(o, "overall_diff", jnum(report_robust_all(S, k) - report_robust_all(G, k), bad), bad);
    jadd(o, "classes_gradient_free_finds_more", worse, bad);
    return o;
}

void report_md_masking(clasp_buf *b, const clasp_report *r, const clasp_model_report *m)
{
    int k = r->num_classes, sq, gr;
    if (!masking_pair(m, k, &sq, &gr)) return;
    const clasp_attack_report *S = &m->attacks[sq], *G = &m->attacks[gr];
    double d = report_robust_all(S, k) - report_robust_all(G, k);
    clasp_buf_puts(b, "\n### Gradient-free check\n\nThe gradient-free attack ");
    report_md_text(b, S->label);
    clasp_buf_printf(b, " leaves %.1f%% robust, the strongest gradient attack at the same eps (",
                     100 * report_robust_all(S, k));
    report_md_text(b, G->label);
    clasp_buf_printf(b, ") %.1f%%. ", 100 * report_robust_all(G, k));
    int n = 0;
    for (int c = 0; c < k; c++)
        n += S->per_class.robust_correct[c] < G->per_class.robust_correct[c] &&
             S->per_class.count[c] == G->per_class.count[c];
    if (d < 0)
        clasp_buf_puts(b,
                       "An attack that never looks at a gradient finds more: the gradients mislead "
                       "(gradient masking), and the gradient attacks' numbers overstate "
                       "robustness.");
    else
        clasp_buf_puts(b, "No sign of gradient masking overall: the gradient attack finds at least "
                          "as much.");
    if (n > 0) {
        clasp_buf_puts(b, " Classes where the gradient-free attack finds more:");
        for (int c = 0, first = 1; c < k; c++)
            if (S->per_class.robust_correct[c] < G->per_class.robust_correct[c] &&
                S->per_class.count[c] == G->per_class.count[c]) {
                clasp_buf_puts(b, first ? " *" : ", *");
                report_md_text(b, r->class_names[c]);
                clasp_buf_printf(b, "* (%+.1f points)",
                                 100 *
                                     (rate(S->per_class.robust_correct[c], S->per_class.count[c]) -
                                      rate(G->per_class.robust_correct[c], G->per_class.count[c])));
                first = 0;
            }
        clasp_buf_puts(b, ".");
    }
    clasp_buf_puts(b, "\n");
}
