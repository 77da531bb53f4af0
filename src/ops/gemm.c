/* GEMM: argument checks, the choice of implementation, and four paths.
 *
 * GENERAL  gemm_general, any transposes; slow but simple, for shapes
 *          smaller than a tile.
 * TILED    register-tiled kernels for NN and TN. The other combinations are
 *          rewritten into those: TT as C^T = B*A with a transposed store,
 *          NT by transposing the smaller operand into a pooled scratch
 *          buffer first (reading B^T in the kernel would turn its float16
 *          row loads into gathers).
 * DOT      NT only, in dot-product form with no copy: for NT products whose
 *          C is small next to the operands (conv1's weight gradient, the
 *          output layer), where the copy would cost as much as the product.
 * CLBLAST  CLBlastSgemm on the same queue; the default on GPUs, where
 *          CLBlast ships tuned parameters, except for thin products
 *          (GEMM_THIN) that its tiles would pad and for simulators. On
 *          CPU devices (PoCL) its untuned kernels run at a tenth of
 *          TILED's speed or less.
 * TILED and DOT split a long K over few tiles into chunks summed by a
 * second kernel, which keeps both cores busy. TILED also runs
 * clasp_gemm_packed_b, whose B comes packed in 16-column panels (the
 * convolutions' column matrices on CPU devices).
 *
 * Choice, first match wins: clasp_gemm_force, the CLASP_GEMM environment
 * variable (auto|own|tiled|general|clblast), a choice recorded for the
 * exact problem with clasp_gemm_set_choice (the autotuner's hook; the
 * device's tuning file from tune.c is loaded into these when a context
 * first uses GEMM), the heuristic. Everything is enqueued on the in-order
 * queue; nothing waits. */
#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops/gemm_internal.h"
#include "ops/tune.h"
#include "runtime/internal.h"

/* ---- per-context state ---------------------------------------------- */

typedef struct gemm_choice {
    int ta, tb, m, n, k;
    clasp_gemm_params p;
} gemm_choice;

enum { ENV_NONE, ENV_OWN, ENV_GENERAL, ENV_TILED, ENV_CLBLAST, ENV_BAD };

typedef struct gemm_state {
    clasp_gemm_params forced; /* path AUTO: nothing forced */
    gemm_choice *choices;
    size_t n_choices, cap_choices;
    /* clasp_gemm_record: the distinct problems clasp_gemm ran while on. */
    int recording;
    clasp_gemm_problem *rec;
    size_t n_rec, cap_rec;
} gemm_state;

/* Called by clasp_ctx_free before the context is released. */
static void gemm_state_free(void *p)
{
    /* CLBlast caches its programs process-wide and would otherwise release
     * them at exit, after their context is gone: Oclgrind then frees a
     * program whose context it already destroyed and corrupts the heap
     * ("corrupted double-linked list" at exit of `oclgrind clasp attack`).
     * The GEMM module is CLBlast's one user, so it clears the cache. */
    CLBlastClearCache();
    gemm_state *s = p;
    if (!s) return;
    free(s->choices);
    free(s->rec);
    free(s);
}

/* The context's forced provider (its gemm option, CLASP_GEMM for the CLI),
 * read at every choice so that clasp_ctx_set_options applies at once. */
static int env_mode(const clasp_ctx *ctx)
{
    const char *e = ctx->opts.gemm;
    if (!e || !*e || !strcasecmp(e, "auto")) return ENV_NONE;
    if (!strcasecmp(e, "own")) return ENV_OWN;
    if (!strcasecmp(e, "general")) return ENV_GENERAL;
    if (!strcasecmp(e, "tiled")) return ENV_TILED;
    if (!strcasecmp(e, "clblast")) return ENV_CLBLAST;
    return ENV_BAD;
}

static clasp_status get_state(clasp_ctx *ctx, gemm_state **out)
{
    if (!ctx->gemm_state) {
        gemm_state *s = calloc(1, sizeof *s);
        if (!s) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        ctx->gemm_state = s;
        ctx->gemm_state_free = gemm_state_free;
        /* The device's tuning file, if any, before the first choice; it
         * only ever warns, a bad file leaves the heuristic in charge. */
        clasp_tune_load(ctx);
    }
    *out = ctx->gemm_state;
    return CLASP_OK;
}

const char *clasp_gemm_path_name(clasp_gemm_path p)
{
    switch (p) {
    case CLASP_GEMM_AUTO: return "auto";
    case CLASP_GEMM_GENERAL: return "general";
    case CLASP_GEMM_TILED: return "tiled";
    case CLASP_GEMM_CLBLAST: return "clblast";
    case CLASP_GEMM_DOT: return "dot";
    default: return "?";
    }
}

static clasp_status check_params(const clasp_gemm_params *p)
{
    if ((int)p->path < 0 || p->path >= CLASP_GEMM_PATH_COUNT_)
        return clasp_error(CLASP_ERR_INVALID, "gemm: unknown path %d", (int)p->path);
    int tile_ok = p->path == CLASP_GEMM_DOT
                      ? p->tm >= 0 && p->tm <= 8 && p->tn >= 0 && p->tn <= 8
                      : p->tm >= 0 && p->tm <= 16 && (p->tn == 0 || p->tn == 16 || p->tn == 32);
    if (!tile_ok || p->wg < 0 || p->wg > 64 || p->splitk < 0 || p->splitk > 256 || p->order < 0 ||
        p->order > 2)
        return clasp_error(CLASP_ERR_INVALID,
                           "gemm: bad parameters for %s: tm=%d tn=%d wg=%d splitk=%d order=%d",
                           clasp_gemm_path_name(p->path), p->tm, p->tn, p->wg, p->splitk, p->order);
    return CLASP_OK;
}

clasp_status clasp_gemm_force(clasp_ctx *ctx, const clasp_gemm_params *p)
{
    gemm_state *s = NULL;
    CLASP_TRY(get_state(ctx, &s));
    if (p) CLASP_TRY(check_params(p));
    s->forced = p ? *p : (clasp_gemm_params){0};
    return CLASP_OK;
}

clasp_status clasp_gemm_set_choice(clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                                   const clasp_gemm_params *p)
{
    gemm_state *s = NULL;
    CLASP_TRY(get_state(ctx, &s));
    CLASP_TRY(check_params(p));
    ta = !!ta;
    tb = !!tb;
    for (size_t i = 0; i < s->n_choices; i++) {
        gemm_choice *c = &s->choices[i];
        if (c->ta == ta && c->tb == tb && c->m == m && c->n == n && c->k == k) {
            c->p = *p;
            return CLASP_OK;
        }
    }
    if (s->n_choices == s->cap_choices) {
        size_t cap = s->cap_choices ? 2 * s->cap_choices : 16;
        gemm_choice *grown = realloc(s->choices, cap * sizeof *grown);
        if (!grown) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        s->choices = grown;
        s->cap_choices = cap;
    }
    s->choices[s->n_choices++] = (gemm_choice){ta, tb, m, n, k, *p};
    return CLASP_OK;
}

clasp_status clasp_gemm_record(clasp_ctx *ctx, int on)
{
    gemm_state *s = NULL;
    CLASP_TRY(get_state(ctx, &s));
    if (on) s->n_rec = 0;
    s->recording = !!on;
    return CLASP_OK;
}

size_t clasp_gemm_recorded(clasp_ctx *ctx, clasp_gemm_problem *out, size_t max)
{
    gemm_state *s = ctx->gemm_state;
    if (!s) return 0;
    for (size_t i = 0; i < s->n_rec && i < max; i++) out[i] = s->rec[i];
    return s->n_rec;
}

/* Adds a problem to the recording unless it is there already. A problem
 * that cannot be stored is only lost to the tuner, so no error. */
static void record_problem(gemm_state *s, int ta, int tb, int m, int n, int k)
{
    clasp_gemm_problem p = {!!ta, !!tb, m, n, k, 1};
    for (size_t i = 0; i < s->n_rec; i++) {
        clasp_gemm_problem *r = &s->rec[i];
        if (r->ta == p.ta && r->tb == p.tb && r->m == m && r->n == n && r->k == k) {
            r->calls++;
            return;
        }
    }
    if (s->n_rec == s->cap_rec) {
        size_t cap = s->cap_rec ? 2 * s->cap_rec : 16;
        clasp_gemm_problem *grown = realloc(s->rec, cap * sizeof *grown);
        if (!grown) return;
        s->rec = grown;
        s->cap_rec = cap;
    }
    s->rec[s->n_rec++] = p;
}

/* ---- planning the tiled path ---------------------------------------- */

/* How TILED runs a problem: which kernel, on which (possibly swapped)
 * operands, and which operand gets transposed first. */
enum { XPOSE_NONE, XPOSE_A, XPOSE_B };

typedef struct tiled_plan {
    int kernel_ta; /* gemm_tile_tn instead of gemm_tile_nn */
    int swap;      /* computes C^T = op(B)^T op(A)^T, stored transposed */
    int xpose;     /* operand copied transposed into scratch first */
    int M, N;      /* the kernel's problem size */
} tiled_plan;

/* Rows of C from which copying B into 16-column panels (a copy of N*K
 * floats for 2*M*N*K flops) pays for itself on CPUs: measured on
 * PoCL/Xeon, M = 128 ran ~5-15% faster with the copy, M = 64 ~25% slower.
 * Used both to choose which operand an NT product transposes and whether
 * to pack a plain B (pack_pays). */
#define GEMM_PACK_MIN_M 128

static tiled_plan plan_tiled(int ta, int tb, int m, int n)
{
    tiled_plan t = {0, 0, XPOSE_NONE, m, n};
    if (ta && !tb) {
        t.kernel_ta = 1;
    } else if (ta && tb) {
        /* A^T B^T = (B A)^T and B [N,K], A [K,M] are already NN operands. */
        t.swap = 1;
        t.M = n;
        t.N = m;
    } else if (!ta && tb) {
        /* Transpose whichever of A [M,K] and B [N,K] is smaller; a
         * transposed A makes the product (B A^T)^T. Prefer the way whose
         * kernel problem keeps N wide enough for the full vector tile. */
        int via_a = m < n;
        if (via_a && m < 16 && n >= 16) via_a = 0;
        /* A transposed B is written in panels (run_tiled_inner), which the
         * kernel reads far faster than a plain matrix: worth copying the
         * larger operand once M gives each copied float 2*M flops of work
         * (fc1 of the default CNN at batch 336: ~160 -> ~250 GFLOPS). */
        if (via_a && m >= GEMM_PACK_MIN_M && n % CLASP_GEMM_PANEL == 0) via_a = 0;
        if (!via_a && n < 16 && m >= 16) via_a = 1;
        if (via_a) {
            t.xpose = XPOSE_A;
            t.swap = 1;
            t.M = n;
            t.N = m;
        } else {
            t.xpose = XPOSE_B;
        }
    }
    return t;
}

/* Default split of K: about 256 tiles x chunks per compute unit, so that
 * PoCL's threads share the work evenly and each chunk's slices of A and B
 * are more likely to stay in cache, with chunks of at least 1024 so that
 * the partial sums stay cheap. (conv1's weight gradient, 56 dot tiles over
 * K = 100352: ~80 GFLOPS unsplit, ~130 with 8 chunks.) */
static int default_splitk(const clasp_ctx *ctx, int M, int N, int K, int tm, int tn)
{
    long tiles = (long)((M + tm - 1) / tm) * ((N + tn - 1) / tn);
    long want = 256L * (ctx->devprof.compute_units ? ctx->devprof.compute_units : 1);
    if (K < 2048 || tiles >= want) return 1;
    long s = (want + tiles - 1) / tiles;
    long cap = K / 1024;
    if (s > cap) s = cap;
    if (s > 16) s = 16;
    return s < 1 ? 1 : (int)s;
}

/* Walk along M first when A [M,kc] fits in half of a CPU's L2 cache: it
 * then stays there while each panel of B is read once for all of M.
 * Otherwise walk along N so consecutive tiles share rows of A instead. */
static int default_order(int M, int K, int S)
{
    size_t kc = ((size_t)K + (S > 1 ? (size_t)S : 1) - 1) / (S > 1 ? (size_t)S : 1);
    return (size_t)M * kc * sizeof(float) <= 256 * 1024 ? 2 : 1;
}

/* Fills the zero fields of a TILED candidate; 0 when the shape is too
 * small for any tile (then GENERAL is the answer). */
static int resolve_tiled(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                         clasp_gemm_params *p)
{
    tiled_plan t = plan_tiled(ta, tb, m, n);
    /* 8x32 by default: 16 accumulators of 16 floats, two B vectors and one
     * broadcast per step fit the 32 vector registers of AVX-512 with room
     * to spare, and its 8 rows of A never all fall into one L1 set. 16x16
     * reads the least per FMA but thrashes that set when the row stride of
     * A is a multiple of 512 floats, and measured slower even where it
     * does not: on PoCL/Xeon (AVX-512) for the default CNN, 8x32 ran
     * inference 11% and PGD-10 10-30% faster, and ResNet-18's PGD-10 7%
     * (interleaved A/B runs of `clasp bench`); on PoCL/Zen 4, conv2 fwd
     * (K=800) ran ~200 GFLOPS with either, fc1 dgrad (K=1024) 200 against
     * 105. The tuner still tries 16x16. */
    if (!p->tn) p->tn = t.N >= 32 ? 32 : 16;
    if (!p->tm) p->tm = t.M >= 8 ? 8 : t.M >= 4 ? 4 : 1;
    if (t.M < p->tm || t.N < p->tn || p->tm < 1) return 0;
    if (!p->wg) p->wg = 4;
    if (!p->splitk) p->splitk = default_splitk(ctx, t.M, t.N, k, p->tm, p->tn);
    if (!p->order) p->order = default_order(t.M, k, p->splitk);
    return 1;
}

/* Fills the zero fields of a DOT candidate; 0 when it cannot run the shape. */
static int resolve_dot(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                       clasp_gemm_params *p)
{
    if (ta || !tb) return 0;
    /* Narrow shapes get 1-wide tiles rather than one variant per width:
     * each variant is another program build. */
    if (!p->tm) p->tm = m < 4 ? 1 : 4;
    if (!p->tn) p->tn = n < 4 ? 1 : 4;
    if (m < p->tm || n < p->tn || p->tm < 1 || p->tn < 1) return 0;
    if (!p->wg) p->wg = 4;
    if (!p->splitk) p->splitk = default_splitk(ctx, m, n, k, p->tm, p->tn);
    if (!p->order) p->order = default_order(m, k, p->splitk);
    return 1;
}

/* The best of clasp's own kernels for a shape. */
static clasp_gemm_params own_heuristic(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k)
{
    clasp_gemm_params p = {0};
    /* NT without copying: worth it when the transposed copy would be large
     * next to the work (2*max(m,n) flops per copied element), as for the
     * weight gradient of conv1, 32x25 over a long K, or a 10-class output. */
    if (!ta && tb && m <= 256 && n <= 256) {
        p.path = CLASP_GEMM_DOT;
        if (resolve_dot(ctx, ta, tb, m, n, k, &p)) return p;
        p = (clasp_gemm_params){0};
    }
    p.path = CLASP_GEMM_TILED;
    if (!resolve_tiled(ctx, ta, tb, m, n, k, &p))
        p = (clasp_gemm_params){.path = CLASP_GEMM_GENERAL};
    return p;
}

/* Below this many rows or columns of C a product is "thin" (a linear
 * layer on a small batch). CLBlast pads both to multiples of its
 * work-group tile (a 2-row product ran as 8 rows with its untuned
 * parameters, and tuned tiles are wider), while clasp's DOT and TILED
 * kernels run it at its own size. Measured on Oclgrind for [2 x 256,
 * K 784], NT: CLBlast 11.7 s, DOT 0.07 s. */
#define GEMM_THIN 16

/* GPUs only, not simulators of one (clasp_device_kind; Oclgrind): CLBlast has no tuned parameters for it, and its untuned kernels,
 * which stage tiles through local memory behind barriers, interpret far
 * slower there than clasp's (conv2 of the default CNN, [64 x 98, K 200]:
 * CLBlast 4.3 s, TILED 0.26 s on Oclgrind). */
static int clblast_by_default(const clasp_ctx *ctx)
{
    return ctx->devprof.kind == CLASP_DEVICE_GPU;
}

static clasp_gemm_params heuristic(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k)
{
    /* k = 0 is C = beta*C, which CLBlast refuses. */
    if (clblast_by_default(ctx) && k > 0 && m >= GEMM_THIN && n >= GEMM_THIN)
        return (clasp_gemm_params){.path = CLASP_GEMM_CLBLAST};
    return own_heuristic(ctx, ta, tb, m, n, k);
}

/* Completes p for this shape; CLASP_ERR_UNSUPPORTED when it cannot run it. */
static clasp_status resolve(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                            clasp_gemm_params *p)
{
    CLASP_TRY(check_params(p));
    switch (p->path) {
    case CLASP_GEMM_AUTO: *p = heuristic(ctx, ta, tb, m, n, k); return CLASP_OK;
    case CLASP_GEMM_GENERAL: *p = (clasp_gemm_params){.path = CLASP_GEMM_GENERAL}; return CLASP_OK;
    case CLASP_GEMM_CLBLAST:
        *p = (clasp_gemm_params){.path = CLASP_GEMM_CLBLAST};
        if (k == 0) return clasp_error(CLASP_ERR_UNSUPPORTED, "gemm: CLBlast cannot do k = 0");
        return CLASP_OK;
    case CLASP_GEMM_TILED:
        if (!resolve_tiled(ctx, ta, tb, m, n, k, p))
            return clasp_error(CLASP_ERR_UNSUPPORTED,
                               "gemm: tile %dx%d does not fit m=%d n=%d (trans %d%d)", p->tm, p->tn,
                               m, n, ta, tb);
        return CLASP_OK;
    case CLASP_GEMM_DOT:
        if (!resolve_dot(ctx, ta, tb, m, n, k, p))
            return clasp_error(CLASP_ERR_UNSUPPORTED,
                               "gemm: the dot kernel (tile %dx%d) cannot run m=%d n=%d trans %d%d",
                               p->tm, p->tn, m, n, ta, tb);
        return CLASP_OK;
    default: return clasp_error(CLASP_ERR_INVALID, "gemm: unknown path %d", (int)p->path);
    }
}

static clasp_status choose(clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                           clasp_gemm_params *out)
{
    gemm_state *s = NULL;
    CLASP_TRY(get_state(ctx, &s));
    clasp_gemm_params p = {0};
    int strict = 0;
    if (s->forced.path != CLASP_GEMM_AUTO) {
        p = s->forced;
    } else if (env_mode(ctx) != ENV_NONE) {
        switch (env_mode(ctx)) {
        case ENV_OWN: p = own_heuristic(ctx, ta, tb, m, n, k); break;
        case ENV_GENERAL: p.path = CLASP_GEMM_GENERAL; break;
        case ENV_TILED: p.path = CLASP_GEMM_TILED; break;
        case ENV_CLBLAST: p.path = CLASP_GEMM_CLBLAST; break;
        default:
            return clasp_error(CLASP_ERR_CONFIG,
                               "CLASP_GEMM=%s: expected auto, own, tiled, general or clblast",
                               ctx->opts.gemm);
        }
    } else {
        for (size_t i = 0; i < s->n_choices; i++) {
            const gemm_choice *c = &s->choices[i];
            if (c->ta == !!ta && c->tb == !!tb && c->m == m && c->n == n && c->k == k) {
                p = c->p;
                strict = 1;
                break;
            }
        }
    }
    clasp_status rs = resolve(ctx, ta, tb, m, n, k, &p);
    if (rs != CLASP_OK) {
        /* A recorded choice was measured on this very shape, so failing to
         * resolve it is a bug worth reporting; a blanket force or CLASP_GEMM
         * may simply not fit some shapes. */
        if (strict) return rs;
        clasp_error_clear();
        p = (clasp_gemm_params){.path = CLASP_GEMM_GENERAL};
    }
    *out = p;
    return CLASP_OK;
}

clasp_status clasp_gemm_resolve(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                                clasp_gemm_params *p)
{
    if (m < 0 || n < 0 || k < 0)
        return clasp_error(CLASP_ERR_INVALID, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    return resolve(ctx, !!ta, !!tb, m, n, k, p);
}

clasp_status clasp_gemm_choose(clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                               clasp_gemm_params *out)
{
    if (m < 0 || n < 0 || k < 0)
        return clasp_error(CLASP_ERR_INVALID, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    return choose(ctx, ta, tb, m, n, k, out);
}

/* Appends p unless an identical candidate is listed already. */
static void add_candidate(clasp_gemm_params *list, int *count, int cap, clasp_gemm_params p)
{
    for (int i = 0; i < *count; i++)
        if (!memcmp(&list[i], &p, sizeof p)) return;
    if (*count < cap) list[(*count)++] = p;
}

int clasp_gemm_candidates(clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                          clasp_gemm_params *out, int max)
{
    enum { CAP = 48 };
    clasp_gemm_params list[CAP];
    int count = 0;
    add_candidate(list, &count, CAP, heuristic(ctx, ta, tb, m, n, k));
    /* Tiles that have each been best on some CNN shape; split-K off or as
     * the heuristic would; both tile orders. */
    static const int tiles[][2] = {{16, 16}, {8, 32}, {8, 16}};
    static const int dots[][2] = {{4, 4}, {2, 8}};
    for (int kind = 0; kind < 2; kind++) {
        size_t nt = kind ? sizeof dots / sizeof dots[0] : sizeof tiles / sizeof tiles[0];
        for (size_t t = 0; t < nt; t++)
            for (int split = 0; split < 2; split++)
                for (int order = 1; order <= 2; order++) {
                    clasp_gemm_params p = {.path = kind ? CLASP_GEMM_DOT : CLASP_GEMM_TILED,
                                           .tm = kind ? dots[t][0] : tiles[t][0],
                                           .tn = kind ? dots[t][1] : tiles[t][1],
                                           .splitk = split ? 0 : 1,
                                           .order = order};
                    int ok = kind ? resolve_dot(ctx, ta, tb, m, n, k, &p)
                                  : resolve_tiled(ctx, ta, tb, m, n, k, &p);
                    if (ok) add_candidate(list, &count, CAP, p);
                }
    }
    add_candidate(list, &count, CAP, (clasp_gemm_params){.path = CLASP_GEMM_GENERAL});
    if (k > 0) add_candidate(list, &count, CAP, (clasp_gemm_params){.path = CLASP_GEMM_CLBLAST});
    for (int i = 0; i < count && i < max; i++) out[i] = list[i];
    return count;
}

/* ---- argument checks ------------------------------------------------ */

/* Checks a rows x cols matrix at element offset off with row stride ld and
 * returns the element range it spans in *lo, *hi. */
static clasp_status check_matrix(const clasp_ctx *ctx, const char *name, const clasp_tensor *t,
                                 size_t off, int ld, int rows, int cols, size_t *lo, size_t *hi)
{
    if (!t) return clasp_error(CLASP_ERR_INVALID, "gemm: %s is NULL", name);
    if (t->ctx != ctx)
        return clasp_error(CLASP_ERR_INVALID, "gemm: %s belongs to another context", name);
    if (t->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "gemm: %s is not float32", name);
    if (ld < (cols > 1 ? cols : 1))
        return clasp_error(CLASP_ERR_INVALID, "gemm: ld%s = %d is less than its row length %d",
                           name, ld, cols);
    *lo = off;
    *hi = off;
    if (rows == 0 || cols == 0) return CLASP_OK;
    size_t end = off + (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
    if (end > t->numel)
        return clasp_error(CLASP_ERR_INVALID,
                           "gemm: %s [%d x %d, ld %d] at offset %zu needs %zu elements, the "
                           "tensor has %zu",
                           name, rows, cols, ld, off, end, t->numel);
    if ((size_t)(rows - 1) * (size_t)ld + (size_t)cols > (size_t)1 << 31 || off > ((size_t)1 << 62))
        return clasp_error(CLASP_ERR_INVALID, "gemm: %s spans more than 2^31 elements", name);
    *hi = end;
    return CLASP_OK;
}

static clasp_status check_args(const clasp_ctx *ctx, int ta, int tb, int m, int n, int k,
                               const clasp_tensor *a, size_t off_a, int lda, const clasp_tensor *b,
                               size_t off_b, int ldb, const clasp_tensor *c, size_t off_c, int ldc)
{
    if (!ctx) return clasp_error(CLASP_ERR_INVALID, "gemm: NULL context");
    if (m < 0 || n < 0 || k < 0)
        return clasp_error(CLASP_ERR_INVALID, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    size_t alo, ahi, blo, bhi, clo, chi;
    int mk = m && n ? k : 0; /* operands are not read when C is empty */
    CLASP_TRY(check_matrix(ctx, "a", a, off_a, lda, ta ? mk : m, ta ? m : mk, &alo, &ahi));
    CLASP_TRY(check_matrix(ctx, "b", b, off_b, ldb, tb ? n : mk, tb ? mk : n, &blo, &bhi));
    CLASP_TRY(check_matrix(ctx, "c", c, off_c, ldc, m, n, &clo, &chi));
    if (clo < chi) {
        if (a->buf == c->buf && alo < chi && clo < ahi)
            return clasp_error(CLASP_ERR_INVALID, "gemm: c overlaps a");
        if (b->buf == c->buf && blo < chi && clo < bhi)
            return clasp_error(CLASP_ERR_INVALID, "gemm: c overlaps b");
    }
    return CLASP_OK;
}

/* ---- the paths ------------------------------------------------------ */

/* The program with the general, reduce and transpose kernels. */
#define BASE_DEFINES "-DGEMM_BASE"

typedef struct gemm_args {
    int ta, tb, m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    cl_ulong off_a, off_b, off_c;
    int lda, ldb, ldc;
    cl_ulong b_panel; /* B packed in 16-column panels this far apart; 0: plain */
} gemm_args;

static clasp_status run_general(clasp_ctx *ctx, const gemm_args *g)
{
    cl_kernel kern;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", BASE_DEFINES, "gemm_general", &kern));
    int sam = g->ta ? 1 : g->lda, sak = g->ta ? g->lda : 1;
    int sbk = g->tb ? 1 : g->ldb, sbn = g->tb ? g->ldb : 1;
    CLASP_TRY(clasp_kernel_args(kern, 16, KARG(g->m), KARG(g->n), KARG(g->k), KARG(g->alpha),
                                KARG(g->a), KARG(g->off_a), KARG(sam), KARG(sak), KARG(g->b),
                                KARG(g->off_b), KARG(sbk), KARG(sbn), KARG(g->beta), KARG(g->c),
                                KARG(g->off_c), KARG(g->ldc)));
    size_t gws[2] = {(size_t)g->n, (size_t)g->m}, lws[2] = {16, 4};
    return clasp_launch(ctx, kern, "gemm", 2, gws, lws);
}

/* dst [cols, rows] (ld rows) = src [rows, cols] (ld lds) transposed. */
/* dst = src^T for src [rows, cols]: plain [cols, rows] when panel is 0,
 * else packed in 16-column panels panel = cols * 16 floats apart (rows a
 * multiple of 16). */
static clasp_status enqueue_transpose(clasp_ctx *ctx, int rows, int cols, cl_mem src, cl_ulong off,
                                      int lds, cl_mem dst, cl_ulong panel)
{
    cl_kernel kern;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", BASE_DEFINES, "gemm_transpose", &kern));
    CLASP_TRY(clasp_kernel_args(kern, 8, KARG(rows), KARG(cols), KARG(src), KARG(off), KARG(lds),
                                KARG(dst), KARG(rows), KARG(panel)));
    size_t gws[2] = {((size_t)cols + 15) / 16, ((size_t)rows + 15) / 16}, lws[2] = {1, 1};
    return clasp_launch(ctx, kern, "gemm_transpose", 2, gws, lws);
}

/* dst = B [k, n] packed in 16-column panels (n a multiple of 16). */
static clasp_status enqueue_pack_b(clasp_ctx *ctx, int k, int n, cl_mem src, cl_ulong off, int ldb,
                                   cl_mem dst)
{
    cl_kernel kern;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", BASE_DEFINES, "gemm_pack_b", &kern));
    CLASP_TRY(
        clasp_kernel_args(kern, 6, KARG(k), KARG(n), KARG(src), KARG(off), KARG(ldb), KARG(dst)));
    size_t gws[2] = {(size_t)n / 16, (size_t)k}, lws[2] = {1, 1};
    return clasp_launch(ctx, kern, "gemm_pack_b", 2, gws, lws);
}

/* Whether to pack a plain B [K,N] into panels before a tiled product:
 * when its rows are a page or more apart (every step along K then lands
 * on another page, a TLB miss on CPUs, as for a linear layer's weight
 * [1024, 3136] in its input gradient) and M is large enough for the copy
 * (GEMM_PACK_MIN_M). Measured on PoCL/Xeon, copy included: [336 x 3136,
 * K 1024] ~160 -> ~230 GFLOPS. */
static int pack_pays(int M, int N, int ldb)
{
    return N % CLASP_GEMM_PANEL == 0 && M >= GEMM_PACK_MIN_M && (size_t)ldb * sizeof(float) >= 4096;
}

/* Range and group of a tile kernel: dimension 0 enumerates the tiles
 * (gemm_tile_index in cl/gemm.cl maps them), dimension 2 the K chunks. The
 * group size is fixed per candidate, never clamped to the shape: PoCL
 * compiles a work-group function per local size, so each distinct size
 * would cost a compile. */
static void tile_range(const clasp_gemm_params *p, int M, int N, int S, size_t gws[3],
                       size_t lws[3])
{
    size_t nt = ((size_t)N + p->tn - 1) / p->tn, mt = ((size_t)M + p->tm - 1) / p->tm;
    size_t wg = (size_t)p->wg;
    gws[0] = (mt + wg - 1) / wg * wg * nt;
    gws[1] = 1;
    gws[2] = (size_t)S;
    lws[0] = wg;
    lws[1] = 1;
    lws[2] = 1;
}

/* Splits K into at most `want` chunks of whole `step`s; returns the chunk
 * count and sets *kc to the chunk length. */
static int split_k(int K, int want, int step, int *kc)
{
    if (want <= 1 || K == 0) {
        *kc = K;
        return 1;
    }
    int c = (K + want - 1) / want;
    c = (c + step - 1) / step * step;
    *kc = c;
    return (K + c - 1) / c;
}

/* Sums split-K partials P [S][M][N] into C with alpha and beta. */
static clasp_status enqueue_reduce(clasp_ctx *ctx, int M, int N, int S, cl_mem P,
                                   const gemm_args *g, int c_trans)
{
    cl_kernel red;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", BASE_DEFINES, "gemm_splitk_reduce", &red));
    CLASP_TRY(clasp_kernel_args(red, 10, KARG(M), KARG(N), KARG(S), KARG(P), KARG(g->alpha),
                                KARG(g->beta), KARG(g->c), KARG(g->off_c), KARG(g->ldc),
                                KARG(c_trans)));
    size_t rg[2] = {(size_t)N, (size_t)M}, rl[2] = {16, 4};
    return clasp_launch(ctx, red, "gemm_reduce", 2, rg, rl);
}

static clasp_status run_tiled_inner(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_args *g,
                                    clasp_tensor **scratch, clasp_tensor **partial)
{
    tiled_plan t = plan_tiled(g->ta, g->tb, g->m, g->n);
    /* The kernel's operands: A' [M,K] (or [K,M] for the tn kernel), B' [K,N]. */
    cl_mem A = g->a, B = g->b;
    cl_ulong oa = g->off_a, ob = g->off_b;
    int la = g->lda, lb = g->ldb;
    cl_ulong b_panel = g->b_panel;
    if (t.xpose == XPOSE_B) {
        /* B [n,k] -> B^T [k,n], written in panels when n allows: the
         * copy is made anyway, and the kernel reads panels front to back. */
        CLASP_TRY(clasp_tensor_new2(ctx, g->k, g->n, scratch));
        if (g->n % CLASP_GEMM_PANEL == 0) b_panel = (cl_ulong)g->k * CLASP_GEMM_PANEL;
        CLASP_TRY(enqueue_transpose(ctx, g->n, g->k, g->b, g->off_b, g->ldb, clasp_mem(*scratch),
                                    b_panel));
        B = clasp_mem(*scratch);
        ob = 0;
        lb = b_panel ? CLASP_GEMM_PANEL : g->n;
    } else if (t.xpose == XPOSE_A) {
        /* A [m,k] -> A^T [k,m]; then C^T = B A^T with B [n,k] as the NN A'. */
        CLASP_TRY(clasp_tensor_new2(ctx, g->k, g->m, scratch));
        CLASP_TRY(
            enqueue_transpose(ctx, g->m, g->k, g->a, g->off_a, g->lda, clasp_mem(*scratch), 0));
        A = g->b;
        oa = g->off_b;
        la = g->ldb;
        B = clasp_mem(*scratch);
        ob = 0;
        lb = g->m;
    } else if (t.swap) {
        A = g->b;
        oa = g->off_b;
        la = g->ldb;
        B = g->a;
        ob = g->off_a;
        lb = g->lda;
    }
    if (!b_panel && t.xpose == XPOSE_NONE && pack_pays(t.M, t.N, lb)) {
        CLASP_TRY(clasp_tensor_new2(ctx, g->k, t.N, scratch));
        CLASP_TRY(enqueue_pack_b(ctx, g->k, t.N, B, ob, lb, clasp_mem(*scratch)));
        B = clasp_mem(*scratch);
        ob = 0;
        lb = CLASP_GEMM_PANEL;
        b_panel = (cl_ulong)g->k * CLASP_GEMM_PANEL;
    }

    char defines[64];
    snprintf(defines, sizeof defines, "-DTM=%d -DTN=%d", p->tm, p->tn);
    cl_kernel kern;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", defines, t.kernel_ta ? "gemm_tile_tn" : "gemm_tile_nn",
                               &kern));
    int M = t.M, N = t.N, K = g->k;
    int kc, S = split_k(K, p->splitk, 4, &kc);
    int c_trans = t.swap;
    size_t gws[3], lws[3];
    tile_range(p, M, N, S, gws, lws);
    int m_fast = p->order == 2;

    if (S == 1) {
        cl_ulong slice = 0;
        CLASP_TRY(clasp_kernel_args(kern, 19, KARG(M), KARG(N), KARG(K), KARG(kc), KARG(g->alpha),
                                    KARG(A), KARG(oa), KARG(la), KARG(B), KARG(ob), KARG(lb),
                                    KARG(g->beta), KARG(g->c), KARG(g->off_c), KARG(g->ldc),
                                    KARG(slice), KARG(c_trans), KARG(m_fast), KARG(b_panel)));
        return clasp_launch(ctx, kern, "gemm", 3, gws, lws);
    }

    CLASP_TRY(clasp_tensor_new2(ctx, S, M * N, partial));
    cl_mem P = clasp_mem(*partial);
    cl_ulong zero = 0, slice = (cl_ulong)M * (cl_ulong)N;
    float one = 1.0f, fzero = 0.0f;
    int no = 0;
    CLASP_TRY(clasp_kernel_args(kern, 19, KARG(M), KARG(N), KARG(K), KARG(kc), KARG(one), KARG(A),
                                KARG(oa), KARG(la), KARG(B), KARG(ob), KARG(lb), KARG(fzero),
                                KARG(P), KARG(zero), KARG(N), KARG(slice), KARG(no), KARG(m_fast),
                                KARG(b_panel)));
    CLASP_TRY(clasp_launch(ctx, kern, "gemm", 3, gws, lws));
    return enqueue_reduce(ctx, M, N, S, P, g, c_trans);
}

static clasp_status run_dot_inner(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_args *g,
                                  clasp_tensor **partial)
{
    char defines[64];
    snprintf(defines, sizeof defines, "-DDM=%d -DDN=%d", p->tm, p->tn);
    cl_kernel kern;
    CLASP_TRY(clasp_kernel_get(ctx, "gemm", defines, "gemm_tile_nt", &kern));
    int M = g->m, N = g->n, K = g->k, kc;
    int S = split_k(K, p->splitk, 16, &kc);
    size_t gws[3], lws[3];
    tile_range(p, M, N, S, gws, lws);
    int m_fast = p->order == 2;
    if (S == 1) {
        cl_ulong slice = 0;
        CLASP_TRY(clasp_kernel_args(kern, 17, KARG(M), KARG(N), KARG(K), KARG(kc), KARG(g->alpha),
                                    KARG(g->a), KARG(g->off_a), KARG(g->lda), KARG(g->b),
                                    KARG(g->off_b), KARG(g->ldb), KARG(g->beta), KARG(g->c),
                                    KARG(g->off_c), KARG(g->ldc), KARG(slice), KARG(m_fast)));
        return clasp_launch(ctx, kern, "gemm", 3, gws, lws);
    }
    CLASP_TRY(clasp_tensor_new2(ctx, S, M * N, partial));
    cl_mem P = clasp_mem(*partial);
    cl_ulong zero = 0, slice = (cl_ulong)M * (cl_ulong)N;
    float one = 1.0f, fzero = 0.0f;
    CLASP_TRY(clasp_kernel_args(kern, 17, KARG(M), KARG(N), KARG(K), KARG(kc), KARG(one),
                                KARG(g->a), KARG(g->off_a), KARG(g->lda), KARG(g->b),
                                KARG(g->off_b), KARG(g->ldb), KARG(fzero), KARG(P), KARG(zero),
                                KARG(N), KARG(slice), KARG(m_fast)));
    CLASP_TRY(clasp_launch(ctx, kern, "gemm", 3, gws, lws));
    return enqueue_reduce(ctx, M, N, S, P, g, 0);
}

static clasp_status run_dot(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_args *g)
{
    clasp_tensor *partial = NULL;
    clasp_status st = run_dot_inner(ctx, p, g, &partial);
    clasp_tensor_free(partial);
    return st;
}

static clasp_status run_tiled(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_args *g)
{
    /* Scratch goes back to the pool right after enqueueing: the queue is
     * in order, so whoever takes the buffer next runs after these kernels. */
    clasp_tensor *scratch = NULL, *partial = NULL;
    clasp_status st = run_tiled_inner(ctx, p, g, &scratch, &partial);
    clasp_tensor_free(scratch);
    clasp_tensor_free(partial);
    return st;
}

static clasp_status run_clblast(clasp_ctx *ctx, const gemm_args *g)
{
    /* The state's free hook clears CLBlast's cache with the context; make
     * sure it is there once CLBlast has run (clasp_gemm_with makes none). */
    gemm_state *state;
    CLASP_TRY(get_state(ctx, &state));
    cl_event *ev = clasp_profile_event(ctx, "gemm_clblast");
    CLBlastStatusCode s =
        CLBlastSgemm(CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                     g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)g->m, (size_t)g->n,
                     (size_t)g->k, g->alpha, g->a, (size_t)g->off_a, (size_t)g->lda, g->b,
                     (size_t)g->off_b, (size_t)g->ldb, g->beta, g->c, (size_t)g->off_c,
                     (size_t)g->ldc, &ctx->queue, ev);
    if (s != CLBlastSuccess) {
        if (ev) ctx->n_pending--;
        return clasp_error(CLASP_ERR_OPENCL,
                           "CLBlastSgemm(trans %d%d, m=%d n=%d k=%d) failed with status %d", g->ta,
                           g->tb, g->m, g->n, g->k, (int)s);
    }
    return CLASP_OK;
}

static clasp_status run(clasp_ctx *ctx, const clasp_gemm_params *p, const gemm_args *g)
{
    switch (p->path) {
    case CLASP_GEMM_TILED: return run_tiled(ctx, p, g);
    case CLASP_GEMM_CLBLAST: return run_clblast(ctx, g);
    case CLASP_GEMM_DOT: return run_dot(ctx, p, g);
    default: return run_general(ctx, g);
    }
}

static gemm_args make_args(int ta, int tb, int m, int n, int k, float alpha, const clasp_tensor *a,
                           size_t off_a, int lda, const clasp_tensor *b, size_t off_b, int ldb,
                           float beta, clasp_tensor *c, size_t off_c, int ldc)
{
    gemm_args g =
        {!!ta,  !!tb,  m,     n,   k,   alpha, beta, clasp_mem(a), clasp_mem(b), clasp_mem(c),
         off_a, off_b, off_c, lda, ldb, ldc,   0};
    return g;
}

clasp_status clasp_gemm_with(clasp_ctx *ctx, const clasp_gemm_params *p, int ta, int tb, int m,
                             int n, int k, float alpha, const clasp_tensor *a, size_t off_a,
                             int lda, const clasp_tensor *b, size_t off_b, int ldb, float beta,
                             clasp_tensor *c, size_t off_c, int ldc)
{
    CLASP_TRY(check_args(ctx, ta, tb, m, n, k, a, off_a, lda, b, off_b, ldb, c, off_c, ldc));
    if (m == 0 || n == 0) return CLASP_OK;
    clasp_gemm_params q = *p;
    CLASP_TRY(resolve(ctx, !!ta, !!tb, m, n, k, &q));
    gemm_args g =
        make_args(ta, tb, m, n, k, alpha, a, off_a, lda, b, off_b, ldb, beta, c, off_c, ldc);
    return run(ctx, &q, &g);
}

clasp_status clasp_gemm(clasp_ctx *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                        const clasp_tensor *a, size_t off_a, int lda, const clasp_tensor *b,
                        size_t off_b, int ldb, float beta, clasp_tensor *c, size_t off_c, int ldc)
{
    CLASP_TRY(
        check_args(ctx, trans_a, trans_b, m, n, k, a, off_a, lda, b, off_b, ldb, c, off_c, ldc));
    if (m == 0 || n == 0) return CLASP_OK;
    clasp_gemm_params p;
    CLASP_TRY(choose(ctx, !!trans_a, !!trans_b, m, n, k, &p));
    gemm_state *s = ctx->gemm_state; /* made by choose */
    if (s->recording) record_problem(s, trans_a, trans_b, m, n, k);
    gemm_args g = make_args(trans_a, trans_b, m, n, k, alpha, a, off_a, lda, b, off_b, ldb, beta, c,
                            off_c, ldc);
    return run(ctx, &p, &g);
}

clasp_status clasp_gemm_packed_b(clasp_ctx *ctx, int trans_a, int m, int n, int k, float alpha,
                                 const clasp_tensor *a, size_t off_a, int lda,
                                 const clasp_tensor *b, size_t off_b, float beta, clasp_tensor *c,
                                 size_t off_c, int ldc)
{
    if (n % CLASP_GEMM_PANEL)
        return clasp_error(CLASP_ERR_INVALID, "gemm: packed B needs n (%d) a multiple of %d", n,
                           CLASP_GEMM_PANEL);
    /* As a plain [n/16 * k, 16] matrix, B is checked like any other. */
    int prows = n / CLASP_GEMM_PANEL * k;
    CLASP_TRY(check_args(ctx, trans_a, 0, m, CLASP_GEMM_PANEL, k, a, off_a, lda, b, off_b,
                         CLASP_GEMM_PANEL, c, off_c, ldc));
    CLASP_TRY(check_matrix(ctx, "b", b, off_b, CLASP_GEMM_PANEL, prows, CLASP_GEMM_PANEL,
                           &(size_t){0}, &(size_t){0}));
    CLASP_TRY(check_matrix(ctx, "c", c, off_c, ldc, m, n, &(size_t){0}, &(size_t){0}));
    if (m == 0 || n == 0) return CLASP_OK;
    /* A transposed A ([k, m], the convolution's input gradient W^T) would
     * be read TM floats per row, a new row per step along k; a plain copy
     * made first is read along its rows. For ResNet-18's widest layer
     * (m 4608, k 512) that ran the product ~3x faster on PoCL, and the
     * copy is small next to the product (2*n flops per element). */
    int xpose = trans_a && k > 0;
    /* Only the tiled kernels read panels; tuned choices are for plain B. */
    clasp_gemm_params p = {.path = CLASP_GEMM_TILED};
    if (!resolve_tiled(ctx, trans_a && !xpose, 0, m, n, k, &p))
        return clasp_error(CLASP_ERR_UNSUPPORTED, "gemm: no tile fits packed m=%d n=%d", m, n);
    gemm_args g = make_args(trans_a, 0, m, n, k, alpha, a, off_a, lda, b, off_b, CLASP_GEMM_PANEL,
                            beta, c, off_c, ldc);
    g.b_panel = (cl_ulong)k * CLASP_GEMM_PANEL;
    clasp_tensor *at = NULL;
    clasp_status st = CLASP_OK;
    if (xpose) {
        st = clasp_tensor_new2(ctx, m, k, &at);
        if (st == CLASP_OK)
            st = enqueue_transpose(ctx, k, m, g.a, g.off_a, g.lda, clasp_mem(at), 0);
        if (st == CLASP_OK) {
            g.ta = 0;
            g.a = clasp_mem(at);
            g.off_a = 0;
            g.lda = k;
        }
    }
    if (st == CLASP_OK) st = run_tiled(ctx, &p, &g);
    /* Back to the pool at once: the in-order queue runs the product first. */
    clasp_tensor_free(at);
    return st;
}

int clasp_gemm_may_pack(clasp_ctx *ctx)
{
    gemm_state *s = NULL;
    if (get_state(ctx, &s) != CLASP_OK) {
        clasp_error_clear();
        return 0;
    }
    return s->forced.path == CLASP_GEMM_AUTO && env_mode(ctx) == ENV_NONE;
}

clasp_status clasp_gemm_transpose(clasp_ctx *ctx, int rows, int cols, const clasp_tensor *src,
                                  size_t off, int ld, clasp_tensor *dst)
{
    size_t lo, hi;
    CLASP_TRY(check_matrix(ctx, "src", src, off, ld, rows, cols, &lo, &hi));
    CLASP_TRY(check_matrix(ctx, "dst", dst, 0, rows > 1 ? rows : 1, cols, rows, &lo, &hi));
    if (rows == 0 || cols == 0) return CLASP_OK;
    return enqueue_transpose(ctx, rows, cols, clasp_mem(src), off, ld, clasp_mem(dst), 0);
}
