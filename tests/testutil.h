/* Shared helpers for the cmocka tests. */
#ifndef CLASP_TESTUTIL_H
#define CLASP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clasp/plugin.h"
#include "clasp/registry.h"
#include "clasp/status.h"
#include "clasp/tensor.h"

/* Fails the test with clasp's last error message when s != CLASP_OK. */
#define assert_ok(expr)                                                        \
    do {                                                                       \
        clasp_status assert_ok_s_ = (expr);                                    \
        if (assert_ok_s_ != CLASP_OK)                                          \
            fail_msg("%s -> %s: %s", #expr, clasp_status_string(assert_ok_s_), \
                     clasp_last_error());                                      \
    } while (0)

/* A fresh temporary folder (mkdtemp); path written into buf. */
void tu_tmpdir(char *buf, size_t size);
/* Removes a folder and the plain files directly in it. */
void tu_rmdir(const char *path);
/* Writes `n` bytes to path; aborts the test on failure. */
/* Runs a shell command, its stdout into out (NUL-terminated, cut at
 * size - 1 bytes), and returns its exit status; a command that did not
 * exit normally fails the test. */
int tu_run(const char *cmd, char *out, size_t size);

void tu_write_file(const char *path, const void *data, size_t n);
/* The whole file, NUL-terminated (malloc'd); *len its size (len may be
 * NULL). Fails the test when it cannot be read. */
char *tu_read_all(const char *path, size_t *len);
/* Deterministic pseudo-random floats in [lo, hi). */
void tu_fill_random(float *x, size_t n, uint32_t seed, float lo, float hi);
/* Max |a-b| / max(1,|b|) over n elements. */
double tu_max_rel_err(const float *a, const float *b, size_t n);

/* A context on the default device (or CLASP_DEVICE); fails the test when
 * none can be made. */
clasp_ctx *tu_ctx(void);
/* The context options the test environment asks for
 * (clasp_ctx_opts_from_env, read once): what the clasp command would pass
 * to the runner. */
const clasp_ctx_opts *tu_ctx_opts(void);
/* Selects the conv/pool/norm kernel set on ctx (its kernels option). */
void tu_set_kernels(clasp_ctx *ctx, clasp_kernel_set set);
/* A new float tensor of the given shape holding host data (may be NULL). */
clasp_tensor *tu_tensor(clasp_ctx *ctx, int ndim, const int *shape, const float *host);
/* A new int32 tensor holding host data. */
clasp_tensor *tu_tensor_i32(clasp_ctx *ctx, int ndim, const int *shape, const int32_t *host);
/* A context shared by the tests of one program: pass tu_setup_ctx and
 * tu_teardown_ctx to cmocka_run_group_tests and use tu_shared_ctx. */
extern clasp_ctx *tu_shared_ctx;
int tu_setup_ctx(void **state);
int tu_teardown_ctx(void **state);

/* Opens the plugin registry (printing each refused plugin); NULL when it
 * cannot be opened. Returns a clasp_registry *. */
void *tu_registry(void);

/* The plugin tests' fixture: tu_shared_ctx and the plugin registry, made
 * once for the tests of one program. Pass tu_setup_plugins and
 * tu_teardown_plugins to cmocka_run_group_tests; setup fails (and no test
 * runs) when the registry cannot be opened. */
extern clasp_registry *tu_shared_reg;
int tu_setup_plugins(void **state);
int tu_teardown_plugins(void **state);

/* A small learnable data set as MNIST-named IDX files in dir
 * (PREFIX-images-idx3-ubyte, PREFIX-labels-idx1-ubyte): n images of
 * side x side pixels, four classes of bright bars (top, bottom, left,
 * right) on noise; labels 0..3 (declared as 10 classes by the reader). */
void tu_write_bars_idx(const char *dir, const char *prefix, int n, int side, uint32_t seed);

/* Fails the test where two report.json trees differ (path names the
 * place), ignoring timings: keys containing "seconds", and "started".
 * a and b are json_object pointers. */
void tu_assert_same_json(void *a, void *b, const char *path);

/* A model of the layer list arch on c x h x w inputs, initialised from
 * seed; fails the test when refused. */
clasp_model *tu_model(clasp_ctx *ctx, const char *arch, int c, int h, int w, uint64_t seed);

/* Reads a tensor into a new malloc'd host array. */
float *tu_read(const clasp_tensor *t);

/* An attack of the registry reg (a clasp_registry *) from "key=value"
 * strings (NULL-terminated list, at most 16); fails the test when refused. */
clasp_attack_instance *tu_attack(void *reg, const char *name, const char *const *kv);

/* Runs attack a on host data (n examples of the model's input shape,
 * labels yh) with the random stream (seed, 7). On success checks that x was
 * left untouched and that pred is the model's eval-mode prediction on
 * x_adv, and returns x_adv and pred (malloc'd); returns the attack's status
 * either way (the model's mode is as before). */
clasp_status tu_attack_run(clasp_ctx *ctx, clasp_attack_instance *a, clasp_model *m,
                           const float *xh, const int32_t *yh, int n, uint64_t seed, float **adv,
                           int32_t **pred);

#endif
