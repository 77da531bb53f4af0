/* clasp run: run an experiment file (train, evaluate, report), with
 * Ctrl-C or SIGTERM saving a resumable state. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clasp/dist.h"
#include "clasp/experiment.h"
#include "cli.h"

/* Set by the SIGINT/SIGTERM handler to the signal's number; read by the
 * runner between batches. */
static volatile sig_atomic_t run_stop;

static void on_stop_signal(int sig)
{
    /* A second signal of either kind (TERM after INT too) quits at once:
     * the state file is written atomically, so that never breaks it. */
    if (run_stop) _exit(128 + sig);
    run_stop = sig;
}

/* For tests of interrupt and resume through the real program:
 * CLASP_STOP_AFTER_BATCHES=N (training batches) or
 * CLASP_STOP_AFTER_ATTACKS=N (finished attacks) stop the run as Ctrl-C
 * would, at an exact point instead of a timed one. Read here, at the
 * edge; the library knows nothing of them. */
static long long stop_after[3], steps_seen[3];

static long long env_count(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end || n < 0 ? 0 : n;
}

static void on_step(void *user, int what)
{
    (void)user;
    if (what < 1 || what > 2 || !stop_after[what]) return;
    if (++steps_seen[what] >= stop_after[what] && !run_stop) run_stop = SIGINT;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: clasp run EXP.yaml [--output DIR] [--resume]\n"
            "  --output DIR  write checkpoints and the report into DIR (default: output.dir of "
            "the\n"
            "                file, else runs/<experiment name>)\n"
            "  --resume      continue an interrupted run from DIR/state.safetensors\n"
            "Ctrl-C (or SIGTERM, as batch schedulers send) stops between batches and saves the\n"
            "state; a second one quits at once. The state is also saved after every epoch and\n"
            "every attack, so after a hard kill --resume continues from the last of those.\n");
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL, *output = NULL;
    int resume = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--output"))) output = v;
        else if (!strcmp(argv[i], "--resume")) resume = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "clasp run: unexpected argument '%s'\n", argv[i]);
            usage();
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        usage();
        return 2;
    }
    clasp_registry *reg = NULL;
    clasp_plan *plan = NULL;
    if (clasp_registry_open(&reg) != CLASP_OK) return cli_fail("loading plugins");
    if (clasp_plan_load(reg, file, &plan) != CLASP_OK) {
        fprintf(stderr, "clasp: %s\n", clasp_last_error());
        clasp_registry_free(reg);
        return 1;
    }
    if (output && clasp_plan_set_output(plan, output) != CLASP_OK) {
        clasp_plan_free(plan);
        clasp_registry_free(reg);
        return cli_fail("--output");
    }
    /* The first signal only sets the flag (attacks poll it between their
     * steps, the runner between batches); a second one of either kind
     * quits at once. Batch schedulers send SIGTERM before their hard kill:
     * it saves the state like Ctrl-C. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Several ranks (mpirun): rank 0 speaks for all; the others report
     * only their own errors. */
    int root = clasp_dist_rank() == 0;
    cli_run_ui ui;
    clasp_run_options opt = {0};
    cli_run_hooks(&ui, &opt.hooks);
    clasp_ctx_opts ctx_opts;
    clasp_ctx_opts_from_env(&ctx_opts);
    opt.ctx = &ctx_opts;
    opt.resume = resume;
    opt.stop = &run_stop;
    stop_after[CLASP_RUN_STEP_BATCH] = env_count("CLASP_STOP_AFTER_BATCHES");
    stop_after[CLASP_RUN_STEP_ATTACK] = env_count("CLASP_STOP_AFTER_ATTACKS");
    opt.hooks.step = on_step;
    if (root)
        fprintf(stderr, "experiment %s (%s): %d model(s), %d attack(s), output %s\n", plan->name,
                file, plan->n_models, plan->n_attacks, plan->output);
    clasp_status st = clasp_experiment_run(plan, reg, &opt);
    cli_run_ui_end(&ui);
    int rc = 0;
    if (st == CLASP_OK) {
        if (root)
            printf("report: %s/report.md (and report.json, per_class.csv, charts/)\n",
                   plan->output);
    } else if (st == CLASP_ERR_INTERRUPTED) {
        if (root)
            fprintf(stderr, "clasp: %s\nresume with: %sclasp run %s --resume%s%s\n",
                    clasp_last_error(), clasp_dist_size() > 1 ? "mpirun ... " : "", file,
                    output ? " --output " : "", output ? output : "");
        /* The shell's convention for a death by signal: 130 for Ctrl-C,
         * 143 for SIGTERM. */
        rc = 128 + (run_stop ? (int)run_stop : SIGINT);
    } else {
        if (clasp_dist_size() > 1)
            fprintf(stderr, "clasp (rank %d): %s\n", clasp_dist_rank(), clasp_last_error());
        else fprintf(stderr, "clasp: %s\n", clasp_last_error());
        rc = 1;
    }
    clasp_plan_free(plan);
    clasp_registry_free(reg);
    return rc;
}
