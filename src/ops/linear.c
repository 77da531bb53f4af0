/* Fully connected layer: y = x W^T + b on top of clasp_gemm.
 *
 * x may have any rank: its first dimension is the batch and the rest are
 * flattened (a conv feature map [N,C,H,W] feeds the layer directly). */
#include <limits.h>

#include "clasp/ops.h"
#include "runtime/internal.h"

typedef struct lin_geom {
    int n, i, o;
} lin_geom;

static clasp_status check_f32(const char *op, const char *name, const clasp_tensor *t)
{
    if (!t || !t->buf) return clasp_error(CLASP_ERR_INVALID, "%s: %s is missing", op, name);
    if (t->dtype != CLASP_F32)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must be float32", op, name);
    if (t->ndim < 1)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s must have a batch dimension", op, name);
    if (t->numel > (size_t)INT_MAX)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, at most %d supported", op,
                           name, t->numel, INT_MAX);
    return CLASP_OK;
}

/* Rows and columns of t seen as a matrix [shape[0], rest]. */
static void as_matrix(const clasp_tensor *t, int *rows, int *cols)
{
    /* From the shape rather than numel / rows, which an empty batch breaks. */
    *rows = t->shape[0];
    *cols = 1;
    for (int i = 1; i < t->ndim; i++) *cols *= t->shape[i];
}

static clasp_status lin_geometry(const char *op, const clasp_tensor *x, const clasp_tensor *w,
                                 lin_geom *g)
{
    CLASP_TRY(check_f32(op, "x", x));
    CLASP_TRY(check_f32(op, "w", w));
    if (w->ndim != 2)
        return clasp_error(CLASP_ERR_INVALID, "%s: w has %d dimensions, expected 2 [O,I]", op,
                           w->ndim);
    if (x->ctx != w->ctx)
        return clasp_error(CLASP_ERR_INVALID, "%s: x and w belong to different contexts", op);
    int xi;
    as_matrix(x, &g->n, &xi);
    g->o = w->shape[0];
    g->i = w->shape[1];
    if (xi != g->i)
        return clasp_error(CLASP_ERR_INVALID, "%s: w has %d inputs, x has %d features", op, g->i,
                           xi);
    return CLASP_OK;
}

static clasp_status check_matrix(const char *op, const char *name, const clasp_tensor *t, int rows,
                                 int cols)
{
    CLASP_TRY(check_f32(op, name, t));
    int r, c;
    as_matrix(t, &r, &c);
    if (r != rows || c != cols)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s is [%d,%d], expected [%d,%d]", op, name, r, c,
                           rows, cols);
    return CLASP_OK;
}

static clasp_status check_vector(const char *op, const char *name, const clasp_tensor *t, int n)
{
    CLASP_TRY(check_f32(op, name, t));
    if (t->numel != (size_t)n)
        return clasp_error(CLASP_ERR_INVALID, "%s: %s has %zu elements, expected %d", op, name,
                           t->numel, n);
    return CLASP_OK;
}

clasp_status clasp_linear_forward(const clasp_tensor *x, const clasp_tensor *w,
                                  const clasp_tensor *b, clasp_tensor *y)
{
    static const char *op = "linear";
    lin_geom g;
    CLASP_TRY(lin_geometry(op, x, w, &g));
    if (b) CLASP_TRY(check_vector(op, "b", b, g.o));
    CLASP_TRY(check_matrix(op, "y", y, g.n, g.o));
    if (g.n == 0 || g.o == 0) return CLASP_OK;
    clasp_ctx *ctx = x->ctx;
    if (g.i == 0) {
        CLASP_TRY(clasp_tensor_fill(y, 0.0f));
    } else {
        CLASP_TRY(
            clasp_gemm(ctx, 0, 1, g.n, g.o, g.i, 1.0f, x, 0, g.i, w, 0, g.i, 0.0f, y, 0, g.o));
    }
    if (!b) return CLASP_OK;
    /* A separate pass is cheap here: y is small next to the GEMM's inputs. */
    cl_kernel k;
    CLASP_TRY(clasp_kernel_get(ctx, "conv", NULL, "bias_add_rows", &k));
    cl_mem ym = clasp_mem(y), bm = clasp_mem(b);
    CLASP_TRY(clasp_kernel_args(k, 4, KARG(ym), KARG(bm), KARG(g.o), KARG(g.n)));
    size_t gws[2] = {(size_t)g.o, (size_t)g.n};
    size_t lws[2] = {64, 1};
    return clasp_launch(ctx, k, "linear_fwd:bias", 2, gws, lws);
}

clasp_status clasp_linear_backward(const clasp_tensor *x, const clasp_tensor *w,
                                   const clasp_tensor *dy, clasp_tensor *dx, clasp_tensor *dw,
                                   clasp_tensor *db)
{
    static const char *op = "linear_backward";
    lin_geom g;
    CLASP_TRY(lin_geometry(op, x, w, &g));
    CLASP_TRY(check_matrix(op, "dy", dy, g.n, g.o));
    if (dx) CLASP_TRY(check_matrix(op, "dx", dx, g.n, g.i));
    if (dw) CLASP_TRY(check_matrix(op, "dw", dw, g.o, g.i));
    if (db) CLASP_TRY(check_vector(op, "db", db, g.o));
    clasp_ctx *ctx = x->ctx;

    if (dx && g.n && g.i) {
        /* dx[N,I] = dy[N,O] * W[O,I] */
        if (g.o == 0) CLASP_TRY(clasp_tensor_fill(dx, 0.0f));
        else
            CLASP_TRY(clasp_gemm(ctx, 0, 0, g.n, g.i, g.o, 1.0f, dy, 0, g.o, w, 0, g.i, 0.0f, dx, 0,
                                 g.i));
    }
    if (dw && g.o && g.i) {
        /* dW[O,I] = dy^T[O,N] * x[N,I] */
        if (g.n == 0) CLASP_TRY(clasp_tensor_fill(dw, 0.0f));
        else
            CLASP_TRY(clasp_gemm(ctx, 1, 0, g.o, g.i, g.n, 1.0f, dy, 0, g.o, x, 0, g.i, 0.0f, dw, 0,
                                 g.i));
    }
    if (db && g.o) {
        if (g.n == 0) CLASP_TRY(clasp_tensor_fill(db, 0.0f));
        else {
            /* bias_grad wants [N,O]; dy may be stored with more dimensions. */
            clasp_tensor view = *dy;
            view.ndim = 2;
            view.shape[0] = g.n;
            view.shape[1] = g.o;
            CLASP_TRY(clasp_bias_grad(&view, db));
        }
    }
    return CLASP_OK;
}
