/* clasp tune: times the GEMM candidates on the problems of the default CNN
 * (training, attack gradients, inference) for the current device, keeps the
 * fastest correct one per problem in the device's tuning file; --show and
 * --reset inspect and delete that file. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clasp/tune.h"

static void usage(void)
{
    fprintf(stderr, "usage: clasp tune [--seconds S] [--batch N]\n"
                    "       clasp tune --show\n"
                    "       clasp tune --reset\n");
}

static void problem_name(const clasp_gemm_problem *q, char *buf, size_t size)
{
    snprintf(buf, size, "t%d%d %dx%dx%d", q->ta, q->tb, q->m, q->n, q->k);
}

static void on_progress(void *user, size_t done, size_t total, const char *what)
{
    cli_progress *p = user;
    p->total = total;
    cli_progress_update(p, done, what ? what : "");
}

static int show(clasp_ctx *ctx)
{
    char path[1100];
    if (clasp_tune_file_path(ctx, path, sizeof path) != CLASP_OK) {
        printf("the cache is off (CLASP_CACHE_DIR=off or CLASP_NO_CACHE): no tuning file is read "
               "or written; GEMM uses the built-in heuristic\n");
        return 0;
    }
    clasp_tune_entry *e;
    size_t n;
    char version[64] = "";
    clasp_status st = clasp_tune_file_read(ctx, path, &e, &n, version, sizeof version);
    if (st == CLASP_ERR_NOT_FOUND) {
        printf("no tuning file for this device (it would be %s);\nGEMM uses the built-in "
               "heuristic. 'clasp tune' makes one.\n",
               path);
        return 0;
    }
    if (st != CLASP_OK) {
        printf("the tuning file is ignored: %s\nGEMM uses the built-in heuristic; 'clasp tune' "
               "rewrites it, 'clasp tune --reset' deletes it.\n",
               clasp_last_error());
        return 0;
    }
    printf("tuning file  %s\nwritten by   clasp %s\n%zu problem%s:\n", path, version, n,
           n == 1 ? "" : "s");
    printf("  %-24s %-24s %8s   %s\n", "problem (trans mxnxk)", "chosen", "GFLOPS", "heuristic");
    for (size_t i = 0; i < n; i++) {
        const clasp_gemm_problem *q = &e[i].prob;
        char name[64], chosen[64], heur[64];
        problem_name(q, name, sizeof name);
        clasp_gemm_params_describe(&e[i].chosen, chosen, sizeof chosen);
        clasp_gemm_params h = {0}, c = e[i].chosen;
        if (clasp_gemm_resolve(ctx, q->ta, q->tb, q->m, q->n, q->k, &h) == CLASP_OK)
            clasp_gemm_params_describe(&h, heur, sizeof heur);
        else snprintf(heur, sizeof heur, "?");
        int fits = clasp_gemm_resolve(ctx, q->ta, q->tb, q->m, q->n, q->k, &c) == CLASP_OK;
        clasp_error_clear();
        printf("  %-24s %-24s %8.1f   %s%s\n", name, chosen, e[i].gflops,
               memcmp(&h, &c, sizeof h) ? heur : "(same)",
               fits ? "" : "  [no longer fits: ignored]");
    }
    free(e);
    return 0;
}

int cmd_tune(int argc, char **argv)
{
    double seconds = 120;
    int batch = 128, do_show = 0, do_reset = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_opt(argc, argv, &i, "--seconds")))
            seconds = cli_parse_double("--seconds", v, 1, 86400);
        else if ((v = cli_opt(argc, argv, &i, "--batch")))
            batch = (int)cli_parse_long("--batch", v, 1, 4096);
        else if (!strcmp(argv[i], "--show")) do_show = 1;
        else if (!strcmp(argv[i], "--reset")) do_reset = 1;
        else {
            usage();
            return 2;
        }
    }
    if (do_show && do_reset) {
        usage();
        return 2;
    }
    clasp_ctx *ctx;
    if (clasp_ctx_new(NULL, &ctx) != CLASP_OK) return cli_fail("creating the OpenCL context");
    const clasp_device_info *dev = clasp_ctx_device(ctx);
    printf("device  %s (%s, driver %s)\n", dev->name, dev->platform_name, dev->driver);
    int rc = 0;
    if (do_show) {
        rc = show(ctx);
    } else if (do_reset) {
        int removed;
        char path[1100] = "";
        if (clasp_tune_file_path(ctx, path, sizeof path) != CLASP_OK) {
            clasp_error_clear();
            printf("the cache is off: there is no tuning file to delete\n");
        } else if (clasp_tune_reset(ctx, &removed) != CLASP_OK) {
            rc = cli_fail("deleting the tuning file");
        } else {
            printf(removed ? "deleted %s; GEMM uses the built-in heuristic again\n"
                           : "no tuning file for this device (%s)\n",
                   path);
        }
    } else {
        printf("workload  default CNN, batch %d: one training step, one input gradient, one "
               "inference\nbudget    %.0f s\n",
               batch, seconds);
        fflush(stdout);
        cli_progress p;
        cli_progress_start(&p, "tuning", 1);
        clasp_tune_model w = {.model = NULL, .batch = batch};
        clasp_tune_opts o = {.seconds = seconds,
                             .workload = clasp_tune_model_workload,
                             .workload_user = &w,
                             .save = 1,
                             .progress = on_progress,
                             .user = &p};
        clasp_tune_result r;
        clasp_status st = clasp_tune_run(ctx, &o, &r);
        if (st != CLASP_OK) {
            rc = cli_fail("tuning");
        } else {
            cli_progress_end(&p);
            printf("  %-24s %5s  %-22s %7s  %-22s %7s %8s\n", "problem (trans mxnxk)", "calls",
                   "heuristic", "GFLOPS", "chosen", "GFLOPS", "speed-up");
            for (size_t i = 0; i < r.n; i++) {
                const clasp_tune_entry *e = &r.entries[i];
                char name[64], d[64], c[64];
                problem_name(&e->prob, name, sizeof name);
                if (!e->n_timed) {
                    printf("  %-24s %5d  not timed (too large), heuristic kept\n", name,
                           e->prob.calls);
                    continue;
                }
                clasp_gemm_params_describe(&e->dflt, d, sizeof d);
                clasp_gemm_params_describe(&e->chosen, c, sizeof c);
                printf("  %-24s %5d  %-22s %7.1f  %-22s %7.1f %7.2fx  (%d/%d timed)\n", name,
                       e->prob.calls, d, e->default_gflops,
                       memcmp(&e->dflt, &e->chosen, sizeof e->dflt) ? c : "(same)", e->gflops,
                       e->default_gflops > 0 ? e->gflops / e->default_gflops : 1.0, e->n_timed,
                       e->n_candidates);
            }
            if (r.tuned_s > 0)
                printf("GEMM time per workload pass: %.1f ms -> %.1f ms, estimated %.2fx faster\n",
                       r.default_s * 1e3, r.tuned_s * 1e3, r.default_s / r.tuned_s);
            if (r.saved) printf("wrote %s (%.0f s)\n", r.path, r.seconds);
            else printf("the cache is off: these choices were not saved (%.0f s)\n", r.seconds);
            clasp_tune_result_free(&r);
        }
    }
    clasp_ctx_free(ctx);
    return rc;
}
