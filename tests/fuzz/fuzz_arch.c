/* libFuzzer harness for the architecture text form: clasp_arch_parse,
 * clasp_arch_format and clasp_model_is_preset. No device and no model:
 * only the text and the layer specs.
 *
 * The input, cut at its first NUL byte, is the text. Accepted text must
 * format to text that parses back to the same specs, and formatting those
 * must give the same text again (a fixed point), since checkpoints store
 * the formatted form and rebuild the model from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/model.h"
#include "fuzz_util.h"

/* Room per layer in the formatted text: the longest item, a conv with five
 * 10-digit numbers, "nb", a label and two inputs, is under 100 characters. */
#define ITEM_ROOM 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first field in which a and b differ, by name; NULL when they agree. */
static const char *spec_diff(const clasp_layer_spec *a, const clasp_layer_spec *b)
{
    if (a->kind != b->kind) return "kind";
    if (a->out != b->out) return "out";
    if (a->kernel != b->kernel) return "kernel";
    if (a->stride != b->stride) return "stride";
    if (a->pad != b->pad) return "pad";
    if (a->no_bias != b->no_bias) return "no_bias";
    if (a->n_inputs != b->n_inputs) return "n_inputs";
    for (int j = 0; j < a->n_inputs && j < CLASP_LAYER_MAX_INPUTS; j++)
        if (a->inputs[j] != b->inputs[j]) return "inputs";
    if (strncmp(a->name, b->name, sizeof a->name)) return "name";
    if (a->init != b->init) return "init";
    if (memcmp(a->mean, b->mean, sizeof a->mean) || memcmp(a->std, b->std, sizeof a->std))
        return "mean/std";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    fuzz_check(text != NULL, "arch: out of memory");
    memcpy(text, data, size);
    text[size] = '\0';

    /* Only its verdict matters here; under the sanitizers that checks it
     * reads any name without overflow. */
    (void)clasp_model_is_preset(text);

    clasp_layer_spec *ls = NULL, *again = NULL;
    int n = 0, n2 = 0;
    if (clasp_arch_parse(text, &ls, &n) != CLASP_OK) {
        fuzz_check(ls == NULL && n == 0, "arch: failed parse returned layers");
        fuzz_check_error("architecture");
        free(text);
        return 0;
    }
    fuzz_check(n > 0 && ls != NULL, "arch: accepted text gave %d layers", n);
    size_t room = (size_t)n * ITEM_ROOM + 1;
    char *f1 = malloc(room), *f2 = malloc(room);
    fuzz_check(f1 && f2, "arch: out of memory");
    clasp_arch_format(ls, n, f1, room);
    fuzz_check(strlen(f1) < room - 1, "arch: the formatted text fills its %zu bytes", room);
    fuzz_check(clasp_arch_parse(f1, &again, &n2) == CLASP_OK,
               "arch: the formatted text does not parse: %s\n  input: %s\n  formatted: %s",
               clasp_last_error(), text, f1);
    fuzz_check(n2 == n, "arch: %d layers became %d\n  input: %s\n  formatted: %s", n, n2, text, f1);
    for (int i = 0; i < n; i++) {
        const char *field = spec_diff(&ls[i], &again[i]);
        fuzz_check(field == NULL,
                   "arch: layer %d changes its %s when formatted and parsed back\n"
                   "  input: %s\n  formatted: %s",
                   i, field, text, f1);
    }
    clasp_arch_format(again, n2, f2, room);
    fuzz_check(!strcmp(f1, f2), "arch: formatting is not a fixed point\n  first: %s\n  second: %s",
               f1, f2);
    free(f1);
    free(f2);
    free(again);
    free(ls);
    free(text);
    return 0;
}
