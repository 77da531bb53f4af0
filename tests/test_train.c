/* End to end: the default architecture learns a small synthetic image task
 * through the device batcher and the standard training step. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/batch.h"
#include "clasp/model.h"

/* Four classes of 1x12x12 images: a bright bar in one of four positions
 * (top, bottom, left, right) on noise, so the task needs spatial features. */
static void make_bars(clasp_dataset *d, size_t n, uint32_t seed)
{
    memset(d, 0, sizeof *d);
    d->n = n, d->c = 1, d->h = 12, d->w = 12, d->num_classes = 4;
    d->x = malloc(n * 144 * sizeof(float));
    d->y = malloc(n * sizeof(int32_t));
    assert_non_null(d->x);
    assert_non_null(d->y);
    tu_fill_random(d->x, n * 144, seed, 0.0f, 0.6f);
    for (size_t i = 0; i < n; i++) {
        int k = (int)((i * 7 + seed) % 4);
        d->y[i] = k;
        float *img = d->x + i * 144;
        int off = (int)((i * 13) % 3); /* jitter the bar a little */
        for (int a = 0; a < 12; a++) {
            int r = k == 0 ? 1 + off : k == 1 ? 8 + off : a;
            int c = k == 2 ? 1 + off : k == 3 ? 8 + off : a;
            img[r * 12 + c] = 1.0f;
        }
    }
    assert_int_equal(clasp_dataset_set_classes(d, d->num_classes), CLASP_OK);
    for (int k = 0; k < 4; k++) snprintf(d->class_names[k], CLASP_CLASS_NAME_MAX, "bar%d", k);
}

static double accuracy(clasp_ctx *ctx, clasp_model *m, const clasp_dataset *d)
{
    clasp_batcher *b;
    assert_ok(clasp_batcher_new(ctx, d, 50, &b));
    clasp_tensor *pred = tu_tensor_i32(ctx, 1, (int[]){50}, NULL);
    size_t correct = 0;
    clasp_model_set_train(m, 0);
    for (;;) {
        clasp_tensor *x, *y;
        int n;
        size_t first;
        assert_ok(clasp_batcher_next(b, &x, &y, &n, &first));
        if (!n) break;
        assert_ok(clasp_tensor_ensure(ctx, &pred, CLASP_I32, 1, (int[]){n}));
        assert_ok(clasp_model_predict(m, x, pred));
        int32_t p[50];
        assert_ok(clasp_tensor_read(pred, p));
        for (int i = 0; i < n; i++)
            correct += p[i] == d->y[clasp_batcher_index(b, first + (size_t)i)];
    }
    clasp_model_set_train(m, 1);
    clasp_tensor_free(pred);
    clasp_batcher_free(b);
    return (double)correct / (double)d->n;
}

static void default_cnn_learns_bars(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    clasp_dataset train, test;
    make_bars(&train, 600, 1);
    make_bars(&test, 200, 2);
    clasp_model *m;
    clasp_sgd *opt;
    assert_ok(clasp_model_new_default(ctx, 1, 12, 12, 4, &m));
    assert_ok(clasp_model_init(m, 7));
    assert_ok(clasp_sgd_new(m, 0.02f, 0.9f, 5e-4f, &opt));
    clasp_batcher *b;
    assert_ok(clasp_batcher_new(ctx, &train, 32, &b));
    double before = accuracy(ctx, m, &test);
    float first_loss = -1, loss = 0;
    for (int e = 0; e < 3; e++) {
        clasp_batcher_start(b, 1, 5, (uint64_t)e);
        for (;;) {
            clasp_tensor *x, *y;
            int n;
            assert_ok(clasp_batcher_next(b, &x, &y, &n, NULL));
            if (!n) break;
            assert_ok(clasp_train_step(m, opt, x, y, NULL, &loss));
            assert_true(isfinite(loss));
            if (first_loss < 0) first_loss = loss;
        }
    }
    double after = accuracy(ctx, m, &test);
    print_message("accuracy before %.3f after %.3f, loss %.3f -> %.3f\n", before, after, first_loss,
                  loss);
    assert_true(after >= 0.95);
    assert_true(loss < first_loss);
    clasp_batcher_free(b);
    clasp_sgd_free(opt);
    clasp_model_free(m);
    clasp_dataset_free(&train);
    clasp_dataset_free(&test);
    clasp_ctx_free(ctx);
}

/* Every example once per pass, bit for bit: with pixels that are bytes /
 * 255 (kept on the device as bytes, as every reader's are) and with
 * arbitrary floats (kept as floats). */
static void serve_every_example_once(int bytes)
{
    clasp_ctx *ctx = tu_ctx();
    clasp_dataset d;
    make_bars(&d, 37, 3);
    for (size_t i = 0; i < 37 * 144; i++)
        d.x[i] = bytes ? (float)((int)(d.x[i] * 255.0f + 0.5f)) / 255.0f : d.x[i] * 0.7f + 1e-3f;
    clasp_batcher *b;
    assert_ok(clasp_batcher_new(ctx, &d, 8, &b));
    assert_int_equal(clasp_batcher_count(b), 5);
    clasp_batcher_start(b, 1, 9, 1);
    int seen[37] = {0};
    size_t total = 0;
    for (;;) {
        clasp_tensor *x, *y;
        int n;
        size_t first;
        assert_ok(clasp_batcher_next(b, &x, &y, &n, &first));
        if (!n) break;
        float *hx = tu_read(x);
        int32_t hy[8];
        assert_ok(clasp_tensor_read(y, hy));
        for (int i = 0; i < n; i++) {
            uint32_t k = clasp_batcher_index(b, first + (size_t)i);
            seen[k]++;
            assert_int_equal(hy[i], d.y[k]);
            assert_memory_equal(hx + (size_t)i * 144, d.x + (size_t)k * 144, 144 * sizeof(float));
        }
        total += (size_t)n;
        free(hx);
    }
    assert_int_equal(total, 37);
    for (int i = 0; i < 37; i++) assert_int_equal(seen[i], 1);
    clasp_batcher_free(b);
    clasp_dataset_free(&d);
    clasp_ctx_free(ctx);
}

static void batcher_serves_every_example_once(void **state)
{
    (void)state;
    serve_every_example_once(1);
    serve_every_example_once(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batcher_serves_every_example_once),
        cmocka_unit_test(default_cnn_learns_bars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
