/* clasp — the RobustBench model zoo as a table.
 *
 * One row per (dataset, threat model, name) of RobustBench's CIFAR-10 and
 * CIFAR-100 Linf and L2 leaderboards and its ImageNet Linf leaderboard (the
 * corruption leaderboards are not listed). A row says which clasp architecture rebuilds the published model
 * so that its state dict loads, with the input normalisation the model
 * applies, or why clasp cannot build it. The table is static data: rows and
 * their strings live as long as the program and are never freed. */
#ifndef CLASP_ZOO_H
#define CLASP_ZOO_H

#include <stddef.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

typedef struct clasp_zoo_entry {
    const char *name;    /* RobustBench's model name, e.g. "Carmon2019Unlabeled" */
    const char *dataset; /* "cifar10", "cifar100" or "imagenet" */
    const char *threat;  /* "Linf" or "L2" */
    int num_classes;     /* 10, 100 or 1000, as the dataset */
    /* A preset for clasp_model_new_arch ("wrn-28-10", "dm-wrn-70-16-swish",
     * "preact-resnet18-nobn", ...); NULL when clasp cannot build the model. */
    const char *arch;
    /* Why not, when arch is NULL ("ResNet-50 (bottleneck blocks)", "ensemble
     * of three models", ...); NULL when arch is set. */
    const char *why_not;
    /* 1: the model maps x to (x - mean) / std per channel before its first
     * layer; 0: it takes the [0, 1] pixels as they are (mean, std unused).
     * Filled for rows with an arch; rows without one leave them 0. */
    int has_normalize;
    float mean[3], std[3];
    /* Input preparation other than normalisation, RobustBench's name for it
     * ("Res256Crop224", "Crop288", "Res224", "BicubicRes256Crop224"); NULL
     * for every CIFAR row (and for ImageNet rows whose preparation is
     * their timm model's own). */
    const char *preprocessing;
    /* Comma-separated names (a trailing '.' makes a prefix) of tensors the
     * published checkpoint may carry that the clasp model does not have and
     * whose values do not change its outputs: "sub_block1." (an unused
     * fourth block group of some WideResNets), "mu,sigma" (normalisation
     * buffers, equal to mean/std above). NULL: none. */
    const char *ignore_tensors;
} clasp_zoo_entry;

/* Number of rows. */
size_t clasp_zoo_count(void);

/* Row i (0 <= i < clasp_zoo_count()); NULL when i is out of range. */
const clasp_zoo_entry *clasp_zoo_get(size_t i);

/* The row named `name` (exact, case-sensitive) for `dataset` and `threat`,
 * either of which may be NULL (any); dataset "imagefolder" takes the
 * "imagenet" rows. On success *out is the row.
 * Errors (*out NULL): CLASP_ERR_CONFIG when the name exists for several
 * (dataset, threat) pairs and those given do not pick one (the message
 * lists the pairs and names the option to add); CLASP_ERR_NOT_FOUND when no
 * row has the name (the message suggests the closest names) or none has it
 * for the dataset/threat given (the message lists where it exists).
 * A row clasp cannot build (arch NULL) is found like any other: callers
 * check arch. */
clasp_status clasp_zoo_find(const char *name, const char *dataset, const char *threat,
                            const clasp_zoo_entry **out);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
