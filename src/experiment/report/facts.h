/* The facts of one model's report, computed once (facts.c) before any
 * section prints them: per-attack summaries, the strongest attack, the
 * pairs of listed L-infinity attacks with their class-wise correlation,
 * T-PGD/PGD pairs, the gradient-free check, the worst-case budgets and the
 * L2 distances of unbounded attacks. Sections (section.h) read these and
 * format; nothing here formats. */
#ifndef CLASP_REPORT_FACTS_H
#define CLASP_REPORT_FACTS_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/report.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

typedef struct attack_summary {
    int64_t count, clean, robust, success;
    double clean_acc, robust_acc, success_rate;
    int worst, best; /* by robust accuracy among classes with examples; -1: none */
    double gap;      /* robust accuracy of best minus worst */
} attack_summary;

/* A pair of attacks i < j, ordered so that b is the stronger one (lower
 * overall robust accuracy); on a tie they keep their order and `tie` is
 * set. The gain of b over a in class c is robust_a - robust_b. */
typedef struct attack_pair {
    int i, j; /* as listed */
    int a, b; /* weaker, stronger */
    int tie;
    double overall_gain; /* robust_a - robust_b overall */
    double rho;          /* Spearman of a's per-class robust accuracy and the gain */
    int shown;           /* in report.md's gain tables: every pair while there are
                            at most six, else only the pairs with the strongest */
} attack_pair;

/* T-PGD against PGD at the same budget (every parameter of the PGD entry
 * has the same value in the T-PGD one). */
typedef struct tpgd_pair {
    int pgd, tpgd;
    double t; /* the temperature */
} tpgd_pair;

/* Per class (and overall at index k) L2 distances of an unbounded attack's
 * successes. */
typedef struct l2_stats {
    int64_t n;           /* successes with a distance */
    double median, mean; /* NaN when n == 0 */
    int64_t *robust_at;  /* [n_l2_eps]: examples robust at each L2 budget */
    int64_t count;       /* examples */
} l2_stats;

#define REPORT_MAX_BUDGETS 16

/* Past this many classes report.md shows distributions and short lists
 * (the worst and best classes, the largest gains, the most frequent flows)
 * instead of a row per class; per_class.csv and report.json keep every
 * class. */
#define REPORT_SMALL_CLASSES 20
/* Length of those lists. */
#define REPORT_LIST_N 15

/* The distribution of per-class robust accuracy over the classes with
 * examples: quantiles (linear interpolation between order statistics) at
 * report_quantile_at[], the mean, and how many classes are at 0 %. */
#define REPORT_N_QUANTILES 7
extern const double report_quantile_at[REPORT_N_QUANTILES];

typedef struct class_dist {
    int n, at_zero;
    double mean, q[REPORT_N_QUANTILES];
} class_dist;

typedef struct flow_entry {
    int from, to; /* true class, prediction on the attacked example */
    int64_t n;
} flow_entry;

/* Classes grouped (a user's mapping file, r->groups, else CIFAR-100's
 * superclasses), with their counts. */
typedef struct class_groups {
    int n;                    /* groups; 0: none */
    const char *const *names; /* [n] */
    const int *group_of;      /* [k] */
    int64_t *count, *clean;   /* [n], from the first attack */
    int64_t *robust;          /* [n * n_attacks]: group g, attack j at g * n_attacks + j */
    const char *file;         /* the mapping file; NULL: the built-in groups */
    int n_unlisted;           /* classes the file does not list (the last group) */
    const char **own_names;   /* names of a file's groups (freed with the facts) */
} class_groups;

/* The large-class view (computed when k > REPORT_SMALL_CLASSES). */
typedef struct large_facts {
    class_dist *dist; /* [n_attacks] */
    /* Classes with examples by robust accuracy under the strongest attack,
     * ascending (ties: lower index first). */
    int n_order;
    int *order;
    /* The most frequent off-diagonal flows under the strongest attack. */
    int n_flows;
    flow_entry flows[REPORT_LIST_N];
    /* Per pair (as facts.pairs): the classes where b gains most over a. */
    int *n_top_gain;                /* [n_pairs] */
    int (*top_gain)[REPORT_LIST_N]; /* [n_pairs] */
} large_facts;

typedef struct model_facts {
    int k;               /* classes */
    int n_attacks;       /* entries, derived worst cases included */
    attack_summary *sum; /* [n_attacks] */
    int strongest;       /* lowest robust accuracy, L-infinity first; -1: no attacks */
    int strongest_linf;  /* among listed L-infinity attacks; -1: none */
    int n_listed;        /* listed L-infinity attacks */
    int clean_agrees;    /* all attacks saw the same counts and clean-correct counts */

    int n_pairs; /* every pair of listed L-infinity attacks, i < j */
    attack_pair *pairs;

    double weight_rho; /* classifier row norms vs robust under strongest_linf; NaN: none */

    int n_tpgd;
    tpgd_pair *tpgd;

    /* The gradient-free check: a gradient-free listed attack and the
     * strongest gradient-based one at the same eps; -1 when absent. */
    int gf, grad;
    int n_gf_more; /* classes (same count) where the gradient-free one finds more */

    /* Distinct L-infinity budgets of the listed (non-derived) entries. */
    int n_budgets;
    double budgets[REPORT_MAX_BUDGETS];

    /* [n_attacks] of [k + 1] entries (the last: all classes), NULL for
     * attacks that are not unbounded or have no distances. */
    l2_stats **l2;

    int large; /* k > REPORT_SMALL_CLASSES: lg is filled */
    large_facts lg;

    class_groups groups; /* with any number of classes */
} model_facts;

/* CIFAR-100's 20 superclasses when r is a 100-class cifar100 report:
 * names[20] and the superclass of each class; 0 otherwise. */
int report_builtin_groups(const clasp_report *r, const char *const **names, const int **group_of);

/* Computes the facts of r->models[mi]; free with report_facts_free. */
clasp_status report_facts_compute(const clasp_report *r, int mi, model_facts *f);
void report_facts_free(model_facts *f);

/* ---- the definitions the facts use, each written once ------------------ */

/* A listed L-infinity attack: not unbounded, and not a worst case the
 * report derived from the listed ones. */
int report_linf_listed(const clasp_attack_report *a);
/* Robust accuracy of class c, and overall (robust / count over classes). */
double report_class_robust(const clasp_attack_report *a, int c);
double report_robust_acc(const clasp_attack_report *a, int k);
attack_summary report_summarize(const clasp_attack_report *a, int k);
/* Lowest and highest per-class rate num/den among classes with den > 0;
 * ties go to the lower class index. */
void report_extreme_classes(const int64_t *num, const int64_t *den, int k, int *worst, int *best);
/* Spearman over the classes with test examples (count > 0 in a) that were
 * trained on (not r->excluded). */
double report_rho_classes(const clasp_report *r, const clasp_attack_report *a, const double *x,
                          const double *y, int k);
/* The metric an epoch's validation is judged by: robust when measured. */
const int64_t *report_epoch_val_metric(const clasp_epoch_report *e);
int report_epoch_has_val(const clasp_epoch_report *e, int k);
/* The value of key in "k=v, k=v" params text into buf; 0 when absent. */
int report_param_value(const char *params, const char *key, char *buf, size_t size);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
