/* Winograd convolution for stride 1: F(2x2,3x3), F(4x4,3x3), F(2x2,5x5).
 *
 * A stride-1 convolution with an r x r window computes each m x m block of
 * outputs from an n x n tile of inputs (n = m + r - 1). Winograd's minimal
 * filtering does it with n*n multiplications instead of m*m*r*r:
 *   Y = AT [ (G g G^T) . (BT d B) ] A
 * and over C channels and K outputs the elementwise products become n*n
 * independent GEMMs M_xi[K, P] = U_xi[K, C] V_xi[C, P] over the P tiles of
 * a chunk of images (cl/winograd.cl transforms, clasp_gemm multiplies; on
 * CPUs that is the project's tiled kernels, on GPUs whatever clasp_gemm
 * picks, CLBlast included). F(4x4,3x3) does a quarter of the
 * multiplications of the direct 3x3 convolution.
 *
 * The matrices come from Toom-Cook on the points 0, 1, -1, 2, -2 and
 * infinity: with Vn the n x n evaluation matrix of polynomials of degree
 * n-1 at those points, Vr (n x r) and Vm (n x m) its first r and m
 * columns (each with the point at infinity picking the leading
 * coefficient), linear convolution is Vn^-1 [(Vr g) . (Vm h)], and the
 * correlation a convolution layer computes is its transpose:
 * BT = Vn^-T, G = Vr, AT = Vm^T. They are computed here in double
 * precision and compiled into the kernels as float constants.
 *
 * Error. The transforms add rounding that the direct sum has not; it grows
 * with the size of the entries (up to 2^(n-2) in G and AT, 8 for
 * F(4x4,3x3)). Measured against a double-precision reference in
 * tests/test_winograd.c, as a fraction of the sum of |w||x| over each
 * output's window (the size of the terms the direct sum adds), forward and
 * input gradient on 13 shapes: F(2x2,3x3) at most 6e-7, F(4x4,3x3) 6.3e-6,
 * F(2x2,5x5) 1.1e-5 (float32's epsilon is 1.2e-7). The bound stated and
 * asserted: 4e-6, 4e-5 and 6e-5 of that sum. The model tests
 * (test_model_winograd, test_zoo_arch_winograd) check that logits stay
 * within their PyTorch tolerances with every eligible layer on F(4x4,3x3).
 *
 * The transformed weights depend only on the weights: they are kept per
 * weight tensor version (clasp_tensor.version) in a per-context cache, so
 * an attack's thousands of steps transform each layer's weights once. The
 * cache holds at most a bounded number of bytes (least recently used
 * entries go first). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv_internal.h"
#include "ops/gemm_internal.h"
#include "runtime/internal.h"

static const int wino_m[CLASP_WINO_COUNT] = {2, 4, 2};
static const int wino_r[CLASP_WINO_COUNT] = {3, 3, 5};

clasp_wino_variant clasp_wino_choose(clasp_ctx *ctx, int kh, int kw, int stride, int pad,
                                     int for_dx)
{
    if (kh != kw || stride != 1 || (kh != 3 && kh != 5)) return CLASP_WINO_NONE;
    if (for_dx && pad > kh - 1) return CLASP_WINO_NONE;
    if (pad > kh) return CLASP_WINO_NONE; /* tiles would be mostly padding */
    switch (ctx->opts.conv) {
    case CLASP_CONV_WINOGRAD: return kh == 3 ? CLASP_WINO_F4_3 : CLASP_WINO_F2_5;
    case CLASP_CONV_WINOGRAD_F2: return kh == 3 ? CLASP_WINO_F2_3 : CLASP_WINO_F2_5;
    default:
        /* auto: the direct path until the variants are measured per shape
         * on each device class. */
        return CLASP_WINO_NONE;
    }
}

/* ---- the transform matrices -------------------------------------------- */

/* Inverts the n x n matrix a (row-major) into inv; 0 when singular. */
static int invert(int n, const double *a, double *inv)
{
    double m[8 * 16];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2 * n; j++)
            m[i * 2 * n + j] = j < n ? a[i * n + j] : (j - n == i ? 1.0 : 0.0);
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int i = col + 1; i < n; i++)
            if (fabs(m[i * 2 * n + col]) > fabs(m[piv * 2 * n + col])) piv = i;
        if (m[piv * 2 * n + col] == 0.0) return 0;
        for (int j = 0; j < 2 * n; j++) {
            double t = m[col * 2 * n + j];
            m[col * 2 * n + j] = m[piv * 2 * n + j];
            m[piv * 2 * n + j] = t;
        }
        double d = m[col * 2 * n + col];
        for (int j = 0; j < 2 * n; j++) m[col * 2 * n + j] /= d;
        for (int i = 0; i < n; i++) {
            if (i == col) continue;
            double f = m[i * 2 * n + col];
            for (int j = 0; j < 2 * n; j++) m[i * 2 * n + j] -= f * m[col * 2 * n + j];
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) inv[i * n + j] = m[i * 2 * n + n + j];
    return 1;
}

/* Row j of the evaluation matrix with `cols` columns at point j of n
 * (the last one infinity). */
static void eval_row(int n, int j, int cols, double *row)
{
    static const double pts[] = {0, 1, -1, 2, -2, 0.5, -0.5};
    for (int t = 0; t < cols; t++) row[t] = 0;
    if (j == n - 1) {
        row[cols - 1] = 1;
        return;
    }
    double p = 1;
    for (int t = 0; t < cols; t++, p *= pts[j]) row[t] = p;
}

static int append_str(char *buf, size_t size, size_t *len, const char *str)
{
    int w = snprintf(buf + *len, size - *len, "%s", str);
    if (w < 0 || (size_t)w >= size - *len) return 0;
    *len += (size_t)w;
    return 1;
}

/* Appends v as a brace list of floats, with no spaces (one build option). */
static int append_list(char *buf, size_t size, size_t *len, const double *v, int count)
{
    int w;
    if (!append_str(buf, size, len, "{")) return 0;
    for (int i = 0; i < count; i++) {
        /* Integers as integers, the rest with a float suffix: the
         * context's build options hold 1 KB. */
        if (v[i] == (double)(int)v[i])
            w = snprintf(buf + *len, size - *len, "%s%d", i ? "," : "", (int)v[i]);
        else w = snprintf(buf + *len, size - *len, "%s%.9gf", i ? "," : "", v[i]);
        if (w < 0 || (size_t)w >= size - *len) return 0;
        *len += (size_t)w;
    }
    return append_str(buf, size, len, "}");
}

/* The build options of variant v: sizes and the three matrices. */
static clasp_status wino_defines(clasp_wino_variant v, char *buf, size_t size)
{
    int m = wino_m[v], r = wino_r[v], n = m + r - 1;
    double vn[64], vninv[64], bt[64], g[64], at[64], row[8];
    for (int j = 0; j < n; j++) {
        eval_row(n, j, n, vn + j * n);
        eval_row(n, j, r, g + j * r);
        eval_row(n, j, m, row);
        for (int i = 0; i < m; i++) at[i * n + j] = row[i];
    }
    if (!invert(n, vn, vninv))
        return clasp_error(CLASP_ERR_INVALID, "winograd: singular evaluation matrix");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) bt[i * n + j] = vninv[j * n + i];
    size_t len = 0;
    int w = snprintf(buf, size, "-DWM=%d -DWR=%d -DWN=%d -DWBT=", m, r, n);
    if (w < 0 || (size_t)w >= size) return clasp_error(CLASP_ERR_INVALID, "winograd: options");
    len = (size_t)w;
    int ok = append_list(buf, size, &len, bt, n * n);
    if (ok) ok = append_str(buf, size, &len, " -DWG=");
    if (ok) ok = append_list(buf, size, &len, g, n * r);
    if (ok) ok = append_str(buf, size, &len, " -DWAT=");
    if (ok) ok = append_list(buf, size, &len, at, m * n);
    /* The context builds with at most 1 KB of options, its own included. */
    if (ok && len > 900) ok = 0;
    return ok ? CLASP_OK : clasp_error(CLASP_ERR_INVALID, "winograd: options too long");
}

/* ---- per-context state: kernels' options and the weight cache ---------- */

typedef struct wino_entry {
    uint64_t version; /* of the weight tensor */
    int variant, flip;
    clasp_tensor *u;
    uint64_t used; /* clock of the last use */
} wino_entry;

typedef struct wino_state {
    char defines[CLASP_WINO_COUNT][2048];
    wino_entry *entries;
    size_t n, cap;
    size_t bytes, max_bytes;
    uint64_t clock;
    unsigned long transforms;
} wino_state;

static void state_free(void *p)
{
    wino_state *s = p;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) clasp_tensor_free(s->entries[i].u);
    free(s->entries);
    free(s);
}

/* At most a quarter of the device's memory, at most 1 GiB. */
static size_t cache_budget(clasp_ctx *ctx)
{
    cl_ulong mem = 0;
    size_t cap = (size_t)1 << 30;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL) ==
            CL_SUCCESS &&
        mem / 4 < cap)
        cap = (size_t)(mem / 4);
    return cap;
}

static clasp_status get_state(clasp_ctx *ctx, wino_state **out)
{
    if (!ctx->conv_state) {
        wino_state *s = calloc(1, sizeof *s);
        if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (int v = 0; v < CLASP_WINO_COUNT; v++) {
            clasp_status st = wino_defines(v, s->defines[v], sizeof s->defines[v]);
            if (st != CLASP_OK) {
                free(s);
                return st;
            }
        }
        s->max_bytes = cache_budget(ctx);
        ctx->conv_state = s;
        ctx->conv_state_free = state_free;
    }
    *out = ctx->conv_state;
    return CLASP_OK;
}

unsigned long clasp_wino_transforms(clasp_ctx *ctx)
{
    return ctx->conv_state ? ((wino_state *)ctx->conv_state)->transforms : 0;
}

static void drop_entry(wino_state *s, size_t i)
{
    s->bytes -= s->entries[i].u->numel * 4;
    clasp_tensor_free(s->entries[i].u);
    s->entries[i] = s->entries[--s->n];
}

static clasp_status keep(wino_state *s, const clasp_tensor *w, int kind, int flip, clasp_tensor *u);

/* The transformed weights of w for variant v (flipped for dx), from the
 * cache or computed now. The tensor stays owned by the cache. */
static clasp_status transformed(clasp_ctx *ctx, wino_state *s, clasp_wino_variant v,
                                const clasp_tensor *w, int flip, const clasp_tensor **out)
{
    s->clock++;
    for (size_t i = 0; i < s->n; i++) {
        wino_entry *e = &s->entries[i];
        if (e->version == w->version && e->variant == (int)v && e->flip == flip) {
            e->used = s->clock;
            *out = e->u;
            return CLASP_OK;
        }
    }
    int K = w->shape[0], C = w->shape[1], n = wino_m[v] + wino_r[v] - 1;
    size_t numel = (size_t)n * n * K * C;
    if (numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "conv2d: %zu transformed weights, too many", numel);
    clasp_tensor *u = NULL;
    CLASP_TRY(clasp_tensor_new1(ctx, (int)numel, &u));
    cl_kernel k;
    clasp_status st = clasp_kernel_get(ctx, "winograd", s->defines[v], "wino_weights", &k);
    cl_mem wm = clasp_mem(w), um = clasp_mem(u);
    if (st == CLASP_OK)
        st = clasp_kernel_args(k, 5, KARG(wm), KARG(K), KARG(C), KARG(flip), KARG(um));
    size_t gws[2] = {(size_t)C, (size_t)K};
    if (st == CLASP_OK) st = clasp_launch(ctx, k, "conv2d:winograd_weights", 2, gws, NULL);
    if (st != CLASP_OK) {
        clasp_tensor_free(u);
        return st;
    }
    s->transforms++;
    st = keep(s, w, (int)v, flip, u);
    if (st != CLASP_OK) {
        clasp_tensor_free(u);
        return st;
    }
    *out = u;
    return CLASP_OK;
}

/* Adds u (derived from w's current version) to the cache, which owns it
 * from then on, making room first. */
static clasp_status keep(wino_state *s, const clasp_tensor *w, int kind, int flip, clasp_tensor *u)
{
    size_t numel = u->numel;
    /* Room for it: the least recently used entries go (those of dead
     * versions are never used again). */
    while (s->n && s->bytes + numel * 4 > s->max_bytes) {
        size_t old = 0;
        for (size_t i = 1; i < s->n; i++)
            if (s->entries[i].used < s->entries[old].used) old = i;
        drop_entry(s, old);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        wino_entry *e = realloc(s->entries, cap * sizeof *e);
        if (!e) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        s->entries = e;
        s->cap = cap;
    }
    s->entries[s->n++] = (wino_entry){w->version, kind, flip, u, s->clock};
    s->bytes += numel * 4;
    return CLASP_OK;
}

/* The kind of a cache entry that holds W^T for the direct path. */
#define KIND_TRANSPOSED (-2)

clasp_status clasp_conv_weights_t(clasp_ctx *ctx, const clasp_tensor *w, int rows, int cols,
                                  const clasp_tensor **out)
{
    wino_state *s;
    CLASP_TRY(get_state(ctx, &s));
    s->clock++;
    for (size_t i = 0; i < s->n; i++) {
        wino_entry *e = &s->entries[i];
        if (e->version == w->version && e->variant == KIND_TRANSPOSED) {
            e->used = s->clock;
            *out = e->u;
            return CLASP_OK;
        }
    }
    clasp_tensor *t = NULL;
    CLASP_TRY(clasp_tensor_new2(ctx, cols, rows, &t));
    clasp_status st = clasp_gemm_transpose(ctx, rows, cols, w, 0, cols, t);
    if (st == CLASP_OK) st = keep(s, w, KIND_TRANSPOSED, 0, t);
    if (st != CLASP_OK) {
        clasp_tensor_free(t);
        return st;
    }
    *out = t;
    return CLASP_OK;
}

/* ---- the convolution ----------------------------------------------------- */

/* out[N, K, OH, OW] = conv(in[N, C, H, W]) with the transformed weights u
 * ([T][K][C]), padding pad, stride 1, plus bias (may be NULL). */
static clasp_status wino_conv(clasp_ctx *ctx, wino_state *s, clasp_wino_variant v,
                              const clasp_tensor *in, const clasp_tensor *u, const clasp_tensor *b,
                              int K, int pad, clasp_tensor *out, size_t budget)
{
    int N = in->shape[0], C = in->shape[1], H = in->shape[2], W = in->shape[3];
    int m = wino_m[v], r = wino_r[v], n = m + r - 1, T = n * n;
    int OH = H + 2 * pad - r + 1, OW = W + 2 * pad - r + 1;
    int th = (OH + m - 1) / m, tw = (OW + m - 1) / m;
    size_t per = (size_t)th * tw; /* tiles per image */
    size_t floats = (size_t)T * per * ((size_t)C + (size_t)K);
    size_t cap = budget / 4 / floats;
    if (cap < 1) cap = 1;
    if (cap > (size_t)INT_MAX / floats) cap = (size_t)INT_MAX / floats;
    if (cap < 1)
        return clasp_error(CLASP_ERR_INVALID, "conv2d: one image needs %zu scratch elements",
                           floats);
    int nb_max = cap >= (size_t)N ? N : (int)cap;
    if (nb_max < N) { /* even chunks */
        int chunks = (N + nb_max - 1) / nb_max;
        nb_max = (N + chunks - 1) / chunks;
    }
    clasp_tensor *V = NULL, *M = NULL;
    clasp_status st = clasp_tensor_new1(ctx, (int)((size_t)T * C * per * nb_max), &V);
    if (st == CLASP_OK) st = clasp_tensor_new1(ctx, (int)((size_t)T * K * per * nb_max), &M);
    cl_kernel ki = NULL, ko = NULL;
    if (st == CLASP_OK) st = clasp_kernel_get(ctx, "winograd", s->defines[v], "wino_input", &ki);
    if (st == CLASP_OK) st = clasp_kernel_get(ctx, "winograd", s->defines[v], "wino_output", &ko);
    cl_mem xm = clasp_mem(in), vm = clasp_mem(V), mm = clasp_mem(M), ym = clasp_mem(out);
    cl_mem bm = b ? clasp_mem(b) : vm;
    int has_bias = b != NULL;
    for (int n0 = 0; st == CLASP_OK && n0 < N; n0 += nb_max) {
        int nb = N - n0 < nb_max ? N - n0 : nb_max;
        int P = (int)(per * (size_t)nb);
        int x_off = n0 * C * H * W, y_off = n0 * K * OH * OW;
        st = clasp_kernel_args(ki, 10, KARG(xm), KARG(x_off), KARG(C), KARG(H), KARG(W), KARG(pad),
                               KARG(th), KARG(tw), KARG(P), KARG(vm));
        size_t gws_i[2] = {(size_t)P, (size_t)C};
        if (st == CLASP_OK) st = clasp_launch(ctx, ki, "conv2d:winograd_input", 2, gws_i, NULL);
        for (int xi = 0; st == CLASP_OK && xi < T; xi++)
            st = clasp_gemm(ctx, 0, 0, K, P, C, 1.0f, u, (size_t)xi * K * C, C, V,
                            (size_t)xi * C * P, P, 0.0f, M, (size_t)xi * K * P, P);
        if (st == CLASP_OK)
            st = clasp_kernel_args(ko, 11, KARG(mm), KARG(K), KARG(P), KARG(th), KARG(tw), KARG(OH),
                                   KARG(OW), KARG(bm), KARG(has_bias), KARG(ym), KARG(y_off));
        size_t gws_o[2] = {(size_t)P, (size_t)K};
        if (st == CLASP_OK) st = clasp_launch(ctx, ko, "conv2d:winograd_output", 2, gws_o, NULL);
    }
    clasp_tensor_free(V);
    clasp_tensor_free(M);
    return st;
}

clasp_status clasp_wino_forward(clasp_ctx *ctx, clasp_wino_variant v, const clasp_tensor *x,
                                const clasp_tensor *w, const clasp_tensor *b, int pad,
                                clasp_tensor *y, size_t budget)
{
    wino_state *s;
    const clasp_tensor *u;
    CLASP_TRY(get_state(ctx, &s));
    CLASP_TRY(transformed(ctx, s, v, w, 0, &u));
    return wino_conv(ctx, s, v, x, u, b, w->shape[0], pad, y, budget);
}

clasp_status clasp_wino_backward_dx(clasp_ctx *ctx, clasp_wino_variant v, const clasp_tensor *w,
                                    const clasp_tensor *dy, int pad, clasp_tensor *dx,
                                    size_t budget)
{
    wino_state *s;
    const clasp_tensor *u;
    CLASP_TRY(get_state(ctx, &s));
    CLASP_TRY(transformed(ctx, s, v, w, 1, &u));
    return wino_conv(ctx, s, v, dy, u, NULL, w->shape[1], wino_r[v] - 1 - pad, dx, budget);
}
