/* FAB in L-infinity (fab_core.h says what it computes). */
#include "fab_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int fab_room_cmp(const void *a, const void *b)
{
    float pa = ((const fab_room *)a)->p, pb = ((const fab_room *)b)->p;
    return (pa > pb) - (pa < pb);
}

void fab_project_linf(const float *t, const float *w, double b, size_t d, float *delta,
                      fab_room *scratch)
{
    double c = -b;
    for (size_t i = 0; i < d; i++) c += (double)w[i] * (double)t[i];
    double sg = c >= 0 ? 1.0 : -1.0;
    c *= sg; /* <w', delta> must be -c with w' = sg * w */
    double sum_w = 0, sum_wp = 0;
    float pmin = INFINITY;
    size_t m = 0;
    for (size_t i = 0; i < d; i++) {
        if (w[i] == 0.0f) continue;
        float room = sg * w[i] > 0 ? t[i] : 1.0f - t[i];
        if (room < 0.0f) room = 0.0f;
        float aw = fabsf(w[i]);
        sum_w += aw, sum_wp += (double)aw * room;
        if (room < pmin) pmin = room;
        scratch[m].p = room, scratch[m].aw = aw;
        m++;
    }
    double lambda = INFINITY; /* infeasible: every coordinate moves all the way */
    if (m > 0 && c <= sum_w * pmin) {
        lambda = c / sum_w; /* the box does not bind */
    } else if (m > 0 && c < sum_wp) {
        qsort(scratch, m, sizeof *scratch, fab_room_cmp);
        double done = 0, rest = sum_w;
        for (size_t k = 0; k < m; k++) {
            double cand = (c - done) / rest;
            if (cand <= scratch[k].p) {
                lambda = cand;
                break;
            }
            done += (double)scratch[k].aw * scratch[k].p;
            rest -= scratch[k].aw;
            if (rest <= 0) break;
        }
    }
    for (size_t i = 0; i < d; i++) {
        if (w[i] == 0.0f) {
            delta[i] = 0.0f;
            continue;
        }
        int down = sg * w[i] > 0;
        double room = down ? t[i] : 1.0 - t[i];
        if (room < 0) room = 0;
        double mv = lambda < room ? lambda : room;
        delta[i] = (float)(down ? -mv : mv);
    }
}

int fab_argmax(const float *z, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

float fab_linf(const float *a, const float *b, size_t d)
{
    float m = 0;
    for (size_t i = 0; i < d; i++) {
        float v = fabsf(a[i] - b[i]);
        if (v > m) m = v;
    }
    return m;
}

/* Scratch shared by the runs of one call. */
typedef struct fab_work {
    float *x0, *x1, *g, *gsel, *z, *dz, *d1, *d2, *u, *near;
    float *df, *grad;          /* the linearisation per active row */
    float *xm, *zm, *dfm, *gm; /* rows that stepped back, packed */
    int *idx, *tgt, *moved;
    fab_room *room;
} fab_work;

/* Linearises z_t - z_y for nr rows from their logits z (of the oracle's
 * last logits call, whose batch these rows are): df[r] = z_t - z_y and its
 * input gradient into grad (nr*d). ex[r] is the row's example, tg[r] its
 * target (untargeted: the class whose linearised boundary is nearest,
 * |df| / ||grad||_1, as the untargeted FAB chooses). */
static clasp_status fab_linearise(const fab_cfg *cfg, const host_oracle *o, const int32_t *y,
                                  const int *ex, const int *tg, int nr, const float *z,
                                  fab_work *wk, float *df, float *grad)
{
    const int K = o->k;
    const size_t d = (size_t)o->c * (size_t)o->h * (size_t)o->w;
    if (cfg->targeted) {
        memset(wk->dz, 0, (size_t)nr * K * sizeof(float));
        for (int r = 0; r < nr; r++) {
            int yi = y[ex[r]], t = tg[r];
            wk->dz[(size_t)r * K + t] = 1.0f, wk->dz[(size_t)r * K + yi] = -1.0f;
            df[r] = z[(size_t)r * K + t] - z[(size_t)r * K + yi];
        }
        return o->vjp(o->self, wk->dz, nr, grad);
    }
    for (int r = 0; r < nr; r++) wk->near[r] = INFINITY;
    for (int t = 0; t < K; t++) {
        memset(wk->dz, 0, (size_t)nr * K * sizeof(float));
        int any = 0;
        for (int r = 0; r < nr; r++) {
            int yi = y[ex[r]];
            if (t == yi) continue;
            wk->dz[(size_t)r * K + t] = 1.0f, wk->dz[(size_t)r * K + yi] = -1.0f;
            any = 1;
        }
        if (!any) continue;
        CLASP_TRY(o->vjp(o->self, wk->dz, nr, wk->gsel));
        for (int r = 0; r < nr; r++) {
            int yi = y[ex[r]];
            if (t == yi) continue;
            const float *gr = wk->gsel + (size_t)r * d;
            double l1 = 0;
            for (size_t e = 0; e < d; e++) l1 += fabs((double)gr[e]);
            float f = z[(size_t)r * K + t] - z[(size_t)r * K + yi];
            float dd = (float)(fabs((double)f) / (1e-12 + l1));
            if (dd < wk->near[r]) {
                wk->near[r] = dd;
                df[r] = f;
                memcpy(grad + (size_t)r * d, gr, d * sizeof(float));
            }
        }
    }
    return CLASP_OK;
}

/* One run over the na examples idx[] (targets tgt[], -1 untargeted),
 * recording into adv / dist. */
static clasp_status fab_run_once(const fab_cfg *cfg, const host_oracle *o, const float *x,
                                 const int32_t *y, int na, int rand_start, clasp_rng *rng,
                                 float *adv, float *dist, fab_work *wk)
{
    const int K = o->k;
    const size_t d = (size_t)o->c * (size_t)o->h * (size_t)o->w;
    const float eta = (float)cfg->eta, beta = (float)cfg->beta;
    for (int j = 0; j < na; j++) {
        memcpy(wk->x0 + (size_t)j * d, x + (size_t)wk->idx[j] * d, d * sizeof(float));
        memcpy(wk->x1 + (size_t)j * d, wk->x0 + (size_t)j * d, d * sizeof(float));
    }
    if (rand_start) {
        for (int j = 0; j < na; j++) {
            float *x1 = wk->x1 + (size_t)j * d;
            clasp_rng_uniform_host(rng, wk->u, d, -1.0f, 1.0f);
            float top = 0;
            for (size_t i = 0; i < d; i++)
                if (fabsf(wk->u[i]) > top) top = fabsf(wk->u[i]);
            float sc = top > 0 ? 0.5f * cfg->eps / top : 0.0f;
            for (size_t i = 0; i < d; i++) {
                float v = x1[i] + sc * wk->u[i];
                x1[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
        }
    }
    for (int it = 0; it <= cfg->steps; it++) {
        if (clasp_stop_requested()) return clasp_error(CLASP_ERR_INTERRUPTED, "stopped");
        CLASP_TRY(o->logits(o->self, wk->x1, na, wk->z));
        int nm = 0;
        if (it > 0) {
            /* The last step's point: keep it when misclassified and closest,
             * then step back towards x0. */
            for (int j = 0; j < na; j++) {
                int i = wk->idx[j];
                if (fab_argmax(wk->z + (size_t)j * K, K) == y[i]) continue;
                float *x1 = wk->x1 + (size_t)j * d;
                const float *x0 = wk->x0 + (size_t)j * d;
                float r = fab_linf(x1, x0, d);
                if (r <= cfg->eps && r < dist[i]) {
                    dist[i] = r;
                    memcpy(adv + (size_t)i * d, x1, d * sizeof(float));
                }
                for (size_t e = 0; e < d; e++) x1[e] = x0[e] + (x1[e] - x0[e]) * beta;
                wk->moved[nm++] = j;
            }
        }
        if (it == cfg->steps) break;

        /* Linearise at x1. Rows that stepped back need a new forward pass:
         * when they are few, only they go through it again (after the
         * others took their gradients from this one); else all rows do. */
        if (nm > 0 && (2 * nm > na || cfg->reforward_all)) {
            CLASP_TRY(o->logits(o->self, wk->x1, na, wk->z));
            nm = 0;
        }
        CLASP_TRY(fab_linearise(cfg, o, y, wk->idx, wk->tgt, na, wk->z, wk, wk->df, wk->grad));
        if (nm > 0) {
            for (int r = 0; r < nm; r++) {
                int j = wk->moved[r];
                memcpy(wk->xm + (size_t)r * d, wk->x1 + (size_t)j * d, d * sizeof(float));
                wk->moved[na + r] = wk->idx[j];     /* example */
                wk->moved[2 * na + r] = wk->tgt[j]; /* target */
            }
            CLASP_TRY(o->logits(o->self, wk->xm, nm, wk->zm));
            CLASP_TRY(fab_linearise(cfg, o, y, wk->moved + na, wk->moved + 2 * na, nm, wk->zm, wk,
                                    wk->dfm, wk->gm));
            for (int r = 0; r < nm; r++) {
                int j = wk->moved[r];
                wk->df[j] = wk->dfm[r];
                memcpy(wk->grad + (size_t)j * d, wk->gm + (size_t)r * d, d * sizeof(float));
            }
        }

        for (int j = 0; j < na; j++) {
            const float *w = wk->grad + (size_t)j * d;
            float *x1 = wk->x1 + (size_t)j * d;
            const float *x0 = wk->x0 + (size_t)j * d;
            double b = -(double)wk->df[j];
            for (size_t e = 0; e < d; e++) b += (double)w[e] * (double)x1[e];
            fab_project_linf(x1, w, b, d, wk->d1, wk->room);
            fab_project_linf(x0, w, b, d, wk->d2, wk->room);
            float a1 = 0, a2 = 0;
            for (size_t e = 0; e < d; e++) {
                if (fabsf(wk->d1[e]) > a1) a1 = fabsf(wk->d1[e]);
                if (fabsf(wk->d2[e]) > a2) a2 = fabsf(wk->d2[e]);
            }
            if (a1 < 1e-8f) a1 = 1e-8f;
            if (a2 < 1e-8f) a2 = 1e-8f;
            float alpha = a1 / (a1 + a2);
            if (alpha > (float)cfg->alpha_max) alpha = (float)cfg->alpha_max;
            if (alpha < 0) alpha = 0;
            for (size_t e = 0; e < d; e++) {
                float v =
                    (x1[e] + eta * wk->d1[e]) * (1.0f - alpha) + (x0[e] + wk->d2[e] * eta) * alpha;
                x1[e] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
        }
    }
    return CLASP_OK;
}

clasp_status fab_attack(const fab_cfg *cfg, const host_oracle *o, const float *x, const int32_t *y,
                        int n, clasp_rng *rng, float *adv, float *dist)
{
    const int K = o->k;
    const size_t d = (size_t)o->c * (size_t)o->h * (size_t)o->w;
    clasp_status st = CLASP_OK;
    memcpy(adv, x, (size_t)n * d * sizeof(float));
    if (n == 0) return CLASP_OK;
    if (K < 2)
        return clasp_error(CLASP_ERR_INVALID, "fab: needs at least 2 classes, the model has %d", K);

    fab_work wk = {0};
    size_t nd = (size_t)n * d;
    float *best = malloc((size_t)n * sizeof(float));
    int *order = malloc((size_t)n * (size_t)K * sizeof(int));
    float *zc = malloc((size_t)n * (size_t)K * sizeof(float));
    size_t nk = (size_t)n * (size_t)K * sizeof(float);
    wk.x0 = malloc(nd * sizeof(float)), wk.x1 = malloc(nd * sizeof(float));
    wk.grad = malloc(nd * sizeof(float)), wk.gm = malloc(nd * sizeof(float));
    wk.xm = malloc(nd * sizeof(float));
    wk.gsel = cfg->targeted ? NULL : malloc(nd * sizeof(float));
    wk.z = malloc(nk), wk.zm = malloc(nk), wk.dz = malloc(nk);
    wk.d1 = malloc(d * sizeof(float)), wk.d2 = malloc(d * sizeof(float));
    wk.u = malloc(d * sizeof(float)), wk.near = malloc((size_t)n * sizeof(float));
    wk.df = malloc((size_t)n * sizeof(float)), wk.dfm = malloc((size_t)n * sizeof(float));
    wk.idx = malloc((size_t)n * sizeof(int)), wk.tgt = malloc((size_t)n * sizeof(int));
    wk.moved = malloc(3 * (size_t)n * sizeof(int));
    wk.room = malloc(d * sizeof(fab_room));
    if (!best || !order || !zc || !wk.x0 || !wk.x1 || !wk.grad || !wk.gm || !wk.xm ||
        (!cfg->targeted && !wk.gsel) || !wk.z || !wk.zm || !wk.dz || !wk.d1 || !wk.d2 || !wk.u ||
        !wk.near || !wk.df || !wk.dfm || !wk.idx || !wk.tgt || !wk.moved || !wk.room) {
        st = clasp_error(CLASP_ERR_NOMEM, "fab: out of memory for %d examples", n);
        goto done;
    }

    st = o->logits(o->self, x, n, zc);
    if (st != CLASP_OK) goto done;
    for (int i = 0; i < n; i++) {
        const float *zi = zc + (size_t)i * K;
        best[i] = fab_argmax(zi, K) == y[i] ? INFINITY : 0.0f;
        /* Classes by clean logit, largest first (ties: lower index first). */
        int *oi = order + (size_t)i * K;
        for (int j = 0; j < K; j++) {
            int p = j;
            while (p > 0 && zi[oi[p - 1]] < zi[j]) {
                oi[p] = oi[p - 1];
                p--;
            }
            oi[p] = j;
        }
    }
    int rounds = 1;
    if (cfg->targeted) {
        rounds = cfg->n_target_classes;
        if (rounds > K - 1) rounds = K - 1;
    }
    for (int k = 1; k <= rounds; k++)
        for (int r = 0; r < cfg->restarts; r++) {
            int na = 0;
            for (int i = 0; i < n; i++) {
                if (best[i] <= cfg->eps) continue; /* misclassified, or flipped within eps */
                wk.idx[na] = i;
                wk.tgt[na] = cfg->targeted ? order[(size_t)i * K + k] : -1;
                na++;
            }
            if (na == 0) goto finished;
            st = fab_run_once(cfg, o, x, y, na, r > 0, rng, adv, best, &wk);
            if (st != CLASP_OK) goto done;
        }
finished:
    if (dist) memcpy(dist, best, (size_t)n * sizeof(float));
done:
    free(best), free(order), free(zc);
    free(wk.x0), free(wk.x1), free(wk.grad), free(wk.gm), free(wk.xm), free(wk.gsel);
    free(wk.z), free(wk.zm), free(wk.dz), free(wk.d1), free(wk.d2), free(wk.u), free(wk.near);
    free(wk.df), free(wk.dfm), free(wk.idx), free(wk.tgt), free(wk.moved), free(wk.room);
    return st;
}
