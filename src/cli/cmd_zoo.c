/* clasp zoo: the RobustBench models clasp knows, with the architecture that
 * rebuilds each or why none does, and the share supported per leaderboard.
 * With a NAME, that model's row in full, found as --zoo NAME finds it. */
#include <stdio.h>
#include <string.h>

#include "clasp/zoo.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: clasp zoo [NAME] [--dataset cifar10|cifar100] [--threat Linf|L2] "
               "[--supported]\n"
               "Lists RobustBench's CIFAR-10/100 Linf and L2 models: the clasp architecture\n"
               "that loads each, or why clasp cannot build it, and the number supported per\n"
               "leaderboard. With NAME, shows that model (give --dataset/--threat when the\n"
               "name is on several leaderboards).\n");
}

enum { MAX_BOARDS = 8 };

/* One leaderboard's totals. */
typedef struct board {
    const char *dataset, *threat;
    int total, supported;
} board;

/* The leaderboards in table order with their counts; returns how many. */
static int count_boards(board *b, int max)
{
    int n = 0;
    for (size_t i = 0; i < clasp_zoo_count(); i++) {
        const clasp_zoo_entry *e = clasp_zoo_get(i);
        int k = 0;
        while (k < n && (strcmp(b[k].dataset, e->dataset) || strcmp(b[k].threat, e->threat))) k++;
        if (k == n) {
            if (n == max) continue;
            b[n++] = (board){e->dataset, e->threat, 0, 0};
        }
        b[k].total++;
        b[k].supported += e->arch != NULL;
    }
    return n;
}

static int known(const board *b, int n, const char *dataset, const char *threat)
{
    for (int k = 0; k < n; k++)
        if ((!dataset || !strcmp(b[k].dataset, dataset)) &&
            (!threat || !strcmp(b[k].threat, threat)))
            return 1;
    return 0;
}

static void print_entry(const clasp_zoo_entry *e)
{
    printf("name:          %s\ndataset:       %s (%d classes)\nthreat:        %s\n", e->name,
           e->dataset, e->num_classes, e->threat);
    if (!e->arch) {
        printf("arch:          unsupported: %s\n", e->why_not);
        return;
    }
    printf("arch:          %s\n", e->arch);
    if (e->has_normalize)
        printf("normalisation: mean %g %g %g, std %g %g %g\n", e->mean[0], e->mean[1], e->mean[2],
               e->std[0], e->std[1], e->std[2]);
    else printf("normalisation: none\n");
    if (e->ignore_tensors)
        printf("skipped:       %s (in the checkpoint, unused)\n", e->ignore_tensors);
}

int cmd_zoo(int argc, char **argv)
{
    const char *dataset = NULL, *threat = NULL, *name = NULL, *v;
    int only_supported = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if ((v = cli_opt(argc, argv, &i, "--dataset"))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--threat"))) threat = v;
        else if (!strcmp(argv[i], "--supported")) only_supported = 1;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else {
            fprintf(stderr, "clasp zoo: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    board b[MAX_BOARDS];
    int nb = count_boards(b, MAX_BOARDS);
    if ((dataset && !known(b, nb, dataset, NULL)) || (threat && !known(b, nb, NULL, threat))) {
        fprintf(stderr,
                "clasp zoo: no leaderboard for %s%s%s; the zoo has cifar10 and cifar100, "
                "Linf and L2\n",
                dataset ? dataset : "", dataset && threat ? " " : "", threat ? threat : "");
        return 2;
    }
    if (name) {
        const clasp_zoo_entry *e;
        if (clasp_zoo_find(name, dataset, threat, &e) != CLASP_OK) return cli_fail("zoo");
        print_entry(e);
        return 0;
    }
    printf("%-42s %-8s %-6s %s\n", "name", "dataset", "threat", "clasp architecture");
    for (size_t i = 0; i < clasp_zoo_count(); i++) {
        const clasp_zoo_entry *e = clasp_zoo_get(i);
        if ((dataset && strcmp(dataset, e->dataset)) || (threat && strcmp(threat, e->threat)) ||
            (only_supported && !e->arch))
            continue;
        if (e->arch) printf("%-42s %-8s %-6s %s\n", e->name, e->dataset, e->threat, e->arch);
        else
            printf("%-42s %-8s %-6s unsupported: %s\n", e->name, e->dataset, e->threat, e->why_not);
    }
    printf("\n");
    for (int k = 0; k < nb; k++)
        if (known(&b[k], 1, dataset, threat))
            printf("%s %s: %d of %d supported\n", b[k].dataset, b[k].threat, b[k].supported,
                   b[k].total);
    return 0;
}
