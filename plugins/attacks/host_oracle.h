/* A model seen from the host, for the attacks whose per-example work is
 * cheap host arithmetic around model queries (square, fab).
 *
 * An oracle answers two questions about a batch of n examples held in host
 * memory (each of d = C*H*W floats): the logits [n,K], and, for the batch
 * of the last logits call, the vector-Jacobian product dx = J^T dz for
 * given dlogits dz [n,K]. The attack cores (square_core.h, fab_core.h) see
 * only this interface, so the tests can drive them with a plain C model and
 * count every query; the plugins use host_oracle_model below, which runs
 * the clasp model on the device with one upload and one download per call
 * (host_oracle.c, in the static library clasp_attack_cores). */
#ifndef CLASP_HOST_ORACLE_H
#define CLASP_HOST_ORACLE_H

#include <stdint.h>

#include <clasp/plugin.h>

typedef struct host_oracle {
    void *self;
    int c, h, w, k; /* input shape and number of classes */
    clasp_status (*logits)(void *self, const float *x, int n, float *z);
    /* MAY be NULL for score-only attacks. */
    clasp_status (*vjp)(void *self, const float *dz, int n, float *dx);
} host_oracle;

/* The device model behind an oracle. Scratch tensors are kept across calls
 * and resized to each batch. */
typedef struct host_oracle_model {
    clasp_model *m;
    clasp_ctx *ctx;
    int c, h, w, k;
    clasp_tensor *x, *dz, *dx;
    int n; /* batch of the last logits call */
} host_oracle_model;

/* Points the oracle `or` at model m, whose inputs live in ctx: or->self is
 * o, so o must outlive every call through or. o's scratch tensors are
 * NULL the first time (a zeroed struct) and are kept and reused when o is
 * pointed at a model again; free them with host_oracle_model_free. */
void host_oracle_model_init(host_oracle_model *o, host_oracle * or, clasp_model *m, clasp_ctx *ctx);

/* Frees o's scratch tensors (not o itself, not the model) and leaves o
 * ready for host_oracle_model_init again. */
void host_oracle_model_free(host_oracle_model *o);

/* A host attack: writes the adversarial points of the n examples x (host,
 * n*d floats; labels y) into adv (n*d), querying the model only through o.
 * cfg is the attack's configuration, passed through. */
typedef clasp_status (*host_oracle_attack_fn)(const void *cfg, const host_oracle *o, const float *x,
                                              const int32_t *y, int n, clasp_rng *rng, float *adv);

/* The perturb of a plugin built on a host attack: points the oracle of om
 * at m, refuses inputs of another size than the model's and (when
 * min_classes > 0) models of fewer classes, brings x and y to the host,
 * runs `run` on them, and writes its points into x_adv and the model's
 * prediction on them into pred. name is the plugin's, for messages. */
clasp_status host_oracle_perturb(host_oracle_model *om, const char *name, int min_classes,
                                 host_oracle_attack_fn run, const void *cfg, clasp_model *m,
                                 const clasp_tensor *x, const clasp_tensor *y, clasp_rng *rng,
                                 clasp_tensor *x_adv, clasp_tensor *pred);

#endif
