/* libFuzzer harness for class-group mapping files,
 * clasp_class_groups_parse (what clasp_class_groups_read calls after
 * reading the file), then clasp_class_groups_resolve on CIFAR-10's ten
 * names and on a 1000-class `imagenet` (WordNet ids too).
 *
 * A refusal must name the file; an accepted file must keep the bounds
 * clasp/groups.h promises, and a resolved one must put every class in
 * exactly one of its groups, the unlisted ones in the last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/groups.h"
#include "fuzz_util.h"

#define NAME "fuzz-groups.txt"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cifar[10][CLASP_CLASS_NAME_MAX] = {"airplane", "automobile", "bird", "cat",
                                                     "deer",     "dog",        "frog", "horse",
                                                     "ship",     "truck"};
static char (*imagenet)[CLASP_CLASS_NAME_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    imagenet = calloc(1000, sizeof *imagenet);
    if (!imagenet) abort();
    /* Digits and a shared name, as image folders and ImageNet have. */
    for (int c = 0; c < 1000; c++) {
        if (c % 97 == 5) snprintf(imagenet[c], sizeof imagenet[c], "crane");
        else snprintf(imagenet[c], sizeof imagenet[c], "%d", c * 7 % 1000);
    }
    return 0;
}

static void check_resolved(const clasp_class_groups *g, int k)
{
    fuzz_check(g->num_classes == k && g->group_of, "groups: resolved without group_of");
    fuzz_check(g->n_groups == g->n_listed_groups + (g->n_unlisted > 0),
               "groups: %d groups, %d listed, %d unlisted classes", g->n_groups, g->n_listed_groups,
               g->n_unlisted);
    int unlisted = 0, listed = 0;
    for (int c = 0; c < k; c++) {
        fuzz_check(g->group_of[c] >= 0 && g->group_of[c] < g->n_groups,
                   "groups: class %d in group %d of %d", c, g->group_of[c], g->n_groups);
        if (g->group_of[c] == g->n_listed_groups) unlisted++;
        else listed++;
    }
    fuzz_check(unlisted == g->n_unlisted, "groups: %d unlisted classes, %d counted", g->n_unlisted,
               unlisted);
    fuzz_check(listed == g->n_lines, "groups: %d lines but %d classes listed", g->n_lines, listed);
    if (g->n_unlisted)
        fuzz_check(!strcmp(g->names[g->n_groups - 1], CLASP_GROUPS_UNLISTED),
                   "groups: the last group is not the unlisted one");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clasp_class_groups g;
    if (clasp_class_groups_parse((const char *)data, size, NAME, &g) != CLASP_OK) {
        fuzz_check(!g.names && !g.lines && g.n_lines == 0, "groups: failed parse kept data");
        fuzz_check_error(NAME);
        return 0;
    }
    fuzz_check(g.n_lines >= 1 && g.n_lines <= CLASP_MAX_CLASSES, "groups: %d lines", g.n_lines);
    fuzz_check(g.n_groups >= 1 && g.n_groups <= g.n_lines, "groups: %d groups for %d lines",
               g.n_groups, g.n_lines);
    for (int i = 0; i < g.n_groups; i++) {
        size_t n = strnlen(g.names[i], CLASP_GROUP_NAME_MAX);
        fuzz_check(n > 0 && n < CLASP_GROUP_NAME_MAX && !strchr(g.names[i], '#'),
                   "groups: group name %d of length %zu", i, n);
    }
    for (int i = 0; i < g.n_lines; i++) {
        const clasp_group_line *L = &g.lines[i];
        size_t n = strnlen(L->cls, CLASP_CLASS_NAME_MAX);
        fuzz_check(n > 0 && n < CLASP_CLASS_NAME_MAX, "groups: class of length %zu", n);
        fuzz_check(L->group >= 0 && L->group < g.n_groups, "groups: line %d in group %d", L->line,
                   L->group);
        fuzz_check(L->line >= 1 && (i == 0 || L->line > g.lines[i - 1].line),
                   "groups: line numbers out of order");
    }
    if (clasp_class_groups_resolve(&g, "cifar10", 10, cifar) == CLASP_OK) check_resolved(&g, 10);
    else fuzz_check_error(NAME ":");
    if (clasp_class_groups_resolve(&g, "imagenet", 1000,
                                   (const char(*)[CLASP_CLASS_NAME_MAX])imagenet) == CLASP_OK)
        check_resolved(&g, 1000);
    else fuzz_check_error(NAME ":");
    clasp_class_groups_free(&g);
    return 0;
}
