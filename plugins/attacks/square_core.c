/* Square Attack in L-infinity (square_core.h says what it computes). */
#include "square_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double square_p(double p_init, int it, int n_queries)
{
    static const int checkpoints[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    if (n_queries > 10000) it = (int)((double)it / n_queries * 10000.0);
    double p = p_init;
    for (size_t k = 0; k < sizeof checkpoints / sizeof checkpoints[0]; k++)
        if (it > checkpoints[k]) p /= 2;
    return p;
}

int square_side(double p_init, int it, int n_queries, int h, int w)
{
    int s = (int)lround(sqrt(square_p(p_init, it, n_queries) * h * w));
    if (s < 1) s = 1;
    if (s > h) s = h;
    if (s > w) s = w;
    return s;
}

float square_margin(const float *z, int k, int y)
{
    float other = -INFINITY;
    for (int j = 0; j < k; j++)
        if (j != y && z[j] > other) other = z[j];
    return z[y] - other;
}

/* x + delta (|delta| = eps) inside [0,1], never further than eps from x
 * after rounding. */
static float square_move(float x, float delta, float eps)
{
    float v = x + delta;
    if (fabsf(v - x) > eps) v = nextafterf(v, x);
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

clasp_status square_run(const square_cfg *cfg, const host_oracle *o, const float *x,
                        const int32_t *y, int n, clasp_rng *rng, float *adv, int *queries)
{
    const int C = o->c, H = o->h, W = o->w, K = o->k;
    const size_t d = (size_t)C * (size_t)H * (size_t)W;
    const float eps = cfg->eps;
    clasp_status st = CLASP_OK;
    memcpy(adv, x, (size_t)n * d * sizeof(float));
    if (queries) memset(queries, 0, (size_t)n * sizeof(int));
    if (n == 0 || cfg->n_queries < 1) return CLASP_OK;

    float *cur = malloc((size_t)n * d * sizeof(float));  /* run's points, compacted */
    float *xc = malloc((size_t)n * d * sizeof(float));   /* their clean images */
    float *undo = malloc((size_t)n * d * sizeof(float)); /* windows before the proposal */
    float *z = malloc((size_t)n * (size_t)K * sizeof(float));
    float *best = malloc((size_t)n * sizeof(float));  /* lowest margin, all restarts */
    float *run_m = malloc((size_t)n * sizeof(float)); /* current margin in this run */
    int *idx = malloc((size_t)n * sizeof(int));       /* active row -> example */
    int *used = calloc((size_t)n, sizeof(int));
    size_t nu = (size_t)n * (size_t)(C * W > 2 + C ? C * W : 2 + C);
    float *u = malloc(nu * sizeof(float));
    int *win = malloc((size_t)n * (size_t)(2 + C) * sizeof(int)); /* vh, vw, signs */
    if (!cur || !xc || !undo || !z || !best || !run_m || !idx || !used || !u || !win) {
        st = clasp_error(CLASP_ERR_NOMEM, "square: out of memory for %d examples", n);
        goto done;
    }

    /* The clean query. */
    st = o->logits(o->self, x, n, z);
    if (st != CLASP_OK) goto done;
    for (int i = 0; i < n; i++) {
        best[i] = square_margin(z + (size_t)i * K, K, y[i]);
        used[i] = 1;
    }

    for (int r = 0; r < cfg->restarts; r++) {
        int na = 0;
        for (int i = 0; i < n; i++)
            if (best[i] > 0.0f) idx[na++] = i;
        if (na == 0) break;
        int budget = cfg->n_queries; /* per example in this restart */
        if (r == 0) budget -= 1;     /* the clean query */
        if (budget < 1) continue;

        /* Vertical stripes. */
        clasp_rng_uniform_host(rng, u, (size_t)na * (size_t)(C * W), 0.0f, 1.0f);
        for (int j = 0; j < na; j++) {
            const float *xi = x + (size_t)idx[j] * d;
            float *xcj = xc + (size_t)j * d, *cj = cur + (size_t)j * d;
            memcpy(xcj, xi, d * sizeof(float));
            for (int c = 0; c < C; c++)
                for (int col = 0; col < W; col++) {
                    float sg = u[((size_t)j * C + c) * W + col] < 0.5f ? -eps : eps;
                    for (int row = 0; row < H; row++) {
                        size_t e = ((size_t)c * H + row) * W + col;
                        cj[e] = square_move(xcj[e], sg, eps);
                    }
                }
        }
        st = o->logits(o->self, cur, na, z);
        if (st != CLASP_OK) goto done;
        for (int j = 0; j < na; j++) {
            run_m[j] = square_margin(z + (size_t)j * K, K, y[idx[j]]);
            used[idx[j]]++;
        }

        for (int it = 0;; it++) {
            if (clasp_stop_requested()) {
                st = clasp_error(CLASP_ERR_INTERRUPTED, "stopped");
                goto done;
            }
            /* Examples that flipped leave (keeping their point if it is
             * their best so far); the rest move up. */
            int keep = 0;
            for (int j = 0; j < na; j++) {
                int i = idx[j];
                if (run_m[j] <= 0.0f || it >= budget - 1) { /* flipped or out of queries */
                    if (run_m[j] < best[i]) {
                        best[i] = run_m[j];
                        memcpy(adv + (size_t)i * d, cur + (size_t)j * d, d * sizeof(float));
                    }
                    continue;
                }
                if (keep != j) {
                    memcpy(cur + (size_t)keep * d, cur + (size_t)j * d, d * sizeof(float));
                    memcpy(xc + (size_t)keep * d, xc + (size_t)j * d, d * sizeof(float));
                    idx[keep] = i, run_m[keep] = run_m[j];
                }
                keep++;
            }
            na = keep;
            if (na == 0) break;

            int s = square_side(cfg->p_init, it, cfg->n_queries, H, W);
            clasp_rng_uniform_host(rng, u, (size_t)na * (size_t)(2 + C), 0.0f, 1.0f);
            for (int j = 0; j < na; j++) {
                const float *uj = u + (size_t)j * (2 + C);
                int *wj = win + (size_t)j * (2 + C);
                int vh = (int)(uj[0] * (float)(H - s + 1)), vw = (int)(uj[1] * (float)(W - s + 1));
                wj[0] = vh > H - s ? H - s : vh;
                wj[1] = vw > W - s ? W - s : vw;
                for (int c = 0; c < C; c++) wj[2 + c] = uj[2 + c] < 0.5f ? -1 : 1;
                float *cj = cur + (size_t)j * d, *uw = undo + (size_t)j * d;
                const float *xcj = xc + (size_t)j * d;
                int changed = 0;
                for (int pass = 0; pass < 2 && !changed; pass++) {
                    if (pass == 1) /* nothing would change: the opposite signs */
                        for (int c = 0; c < C; c++) wj[2 + c] = -wj[2 + c];
                    size_t q = 0;
                    for (int c = 0; c < C; c++) {
                        float delta = (float)wj[2 + c] * eps;
                        for (int row = wj[0]; row < wj[0] + s; row++) {
                            size_t e = ((size_t)c * H + row) * W + (size_t)wj[1];
                            for (int col = 0; col < s; col++, e++, q++) {
                                float v = square_move(xcj[e], delta, eps);
                                if (pass == 0) uw[q] = cj[e];
                                changed |= v != cj[e];
                                cj[e] = v;
                            }
                        }
                    }
                }
            }
            st = o->logits(o->self, cur, na, z);
            if (st != CLASP_OK) goto done;
            for (int j = 0; j < na; j++) {
                used[idx[j]]++;
                float m = square_margin(z + (size_t)j * K, K, y[idx[j]]);
                if (m < run_m[j] || m <= 0.0f) {
                    run_m[j] = m;
                    continue;
                }
                /* Refused: put the window back. */
                const int *wj = win + (size_t)j * (2 + C);
                float *cj = cur + (size_t)j * d;
                const float *uw = undo + (size_t)j * d;
                size_t q = 0;
                for (int c = 0; c < C; c++)
                    for (int row = wj[0]; row < wj[0] + s; row++) {
                        size_t e = ((size_t)c * H + row) * W + (size_t)wj[1];
                        for (int col = 0; col < s; col++) cj[e + col] = uw[q++];
                    }
            }
        }
    }
    if (queries) memcpy(queries, used, (size_t)n * sizeof(int));
done:
    free(cur), free(xc), free(undo), free(z), free(best), free(run_m), free(idx), free(used);
    free(u), free(win);
    return st;
}
