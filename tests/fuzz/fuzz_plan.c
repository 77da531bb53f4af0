/* libFuzzer harness for experiment files, clasp_plan_parse (what
 * clasp_plan_load calls after reading the file).
 *
 * The plugins are the built-in ones of the build folder, so plugin blocks
 * and parameter grids are checked against real schemas. A plan the parser
 * accepts must turn into YAML that parses back to the same plan, as
 * experiment.h promises (the resume hash depends on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/experiment.h"
#include "clasp/registry.h"
#include "fuzz_util.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static clasp_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Only the build's own plugins: a user's plugin folders would make the
     * findings depend on who runs the fuzzer. */
    unsetenv("CLASP_PLUGIN_PATH");
    if (clasp_registry_open(&reg) != CLASP_OK || clasp_registry_count(reg) == 0) {
        fprintf(stderr, "fuzz_plan: no plugins found in %s: %s\n", clasp_registry_builtin_dir(),
                clasp_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clasp_plan *p = NULL;
    if (clasp_plan_parse(reg, (const char *)data, size, NAME, &p) != CLASP_OK) {
        fuzz_check(p == NULL, "plan: failed parse returned a plan");
        fuzz_check_error(NAME ":");
        return 0;
    }
    char *text = NULL, *again = NULL, h1[17], h2[17];
    clasp_plan *q = NULL;
    fuzz_check(clasp_plan_to_yaml(p, 1, &text) == CLASP_OK,
               "plan: cannot emit an accepted plan: %s", clasp_last_error());
    fuzz_check(clasp_plan_parse(reg, text, strlen(text), "emitted.yaml", &q) == CLASP_OK,
               "plan: the emitted plan does not parse back: %s\n---\n%s", clasp_last_error(), text);
    fuzz_check(clasp_plan_to_yaml(q, 1, &again) == CLASP_OK,
               "plan: cannot emit the reparsed plan: %s", clasp_last_error());
    fuzz_check(!strcmp(text, again),
               "plan: the emitted plan changes when parsed back:\n%s\n---\n%s", text, again);
    fuzz_check(clasp_plan_hash(p, h1, sizeof h1) == CLASP_OK &&
                   clasp_plan_hash(q, h2, sizeof h2) == CLASP_OK && !strcmp(h1, h2),
               "plan: the resume hash changes when the plan is parsed back");
    /* What `clasp check` and the runner compute from any accepted plan. */
    clasp_plan_work w;
    clasp_plan_estimate(p, 60000, 5000, 10000, &w);
    fuzz_check(w.train >= 0 && w.validate >= 0 && w.evaluate >= 0, "plan: negative work estimate");
    for (int e = 0; e < p->epochs && e < 64; e++) {
        double lr = clasp_plan_lr(p, e, 3, 7);
        fuzz_check(lr >= 0 && lr <= p->lr, "plan: learning rate %g at epoch %d, outside [0, %g]",
                   lr, e, p->lr);
    }
    free(text);
    free(again);
    clasp_plan_free(q);
    clasp_plan_free(p);
    return 0;
}
