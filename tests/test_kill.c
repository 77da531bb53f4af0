/* Nothing lost when a run is killed: the real `clasp run` (its path in
 * CLASP_CLI) is killed with SIGKILL in the middle of an epoch, in a later
 * model's first epoch, in the middle of an evaluation and halfway through
 * writing the state file (tests/kill_writer.c), and is stopped by SIGTERM;
 * each time `clasp run --resume` continues, and the final report.json equals
 * an uninterrupted run's (timings aside). A truncated state file is refused
 * with a clear message and left in place; a failing write keeps the old
 * state.
 *
 * The kills follow the run's own log lines on stderr, so where exactly they
 * land inside an epoch or an attack varies from run to run: the property
 * checked is that any such moment is safe.
 *
 * The children are started with fork + exec only: this process never makes
 * an OpenCL context, so nothing device-side is duplicated. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256], yaml_path[300], ref_out[300], out[300], st_path[400];

static void write_yaml(void)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "experiment: {name: kill, seed: 3}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train:\n"
             "  epochs: 3\n"
             "  batch: 32\n"
             "  optimiser: {lr: 0.1}\n"
             "  val_eval_size: 60\n"
             "  models:\n"
             "    - name: standard\n"
             "    - defense: {name: pgd-at, attack: {name: pgd, params: {eps: 0.15, steps: 2, "
             "alpha: 0}}}\n"
             "evaluate:\n"
             "  test_size: 120\n"
             "  batch: 20\n"
             "  attacks:\n"
             "    - {name: fgsm, params: {eps: 0.15}}\n"
             "    - {name: pgd, params: {eps: 0.15, steps: 5, alpha: 0}}\n",
             dir);
    tu_write_file(yaml_path, buf, strlen(buf));
}

static int setup(void **state)
{
    (void)state;
    if (!getenv("CLASP_CLI")) {
        fprintf(stderr, "CLASP_CLI must name the clasp program\n");
        return -1;
    }
    tu_tmpdir(dir, sizeof dir);
    snprintf(yaml_path, sizeof yaml_path, "%s/kill.yaml", dir);
    snprintf(ref_out, sizeof ref_out, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(st_path, sizeof st_path, "%s/state.safetensors", out);
    tu_write_bars_idx(dir, "train", 400, 12, 1);
    tu_write_bars_idx(dir, "t10k", 120, 12, 2);
    write_yaml();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* How a child ended: its exit code, or 128 + the signal that killed it. */
typedef struct ended {
    int code;
    char err[8192]; /* the tail of its stderr */
} ended;

/* Called instead of sending a signal when sig is 0, with the child's pid. */
static void (*on_trigger)(pid_t child);

/* Runs `clasp run kill.yaml --output DIR [--resume]`. When `trigger` is
 * not NULL, sends `sig` once a stderr line contains it (sig 0: calls
 * on_trigger). fsize_limit > 0
 * caps the size of any file the child writes (RLIMIT_FSIZE). kill_writing:
 * the child dies halfway through writing the first file whose path
 * contains this text (tests/kill_writer.c, preloaded). */
/* The experiment run_clasp_ex runs (yaml_path when NULL), and the seconds
 * from its signal to its end. */
static const char *run_yaml;
static double signal_to_end;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static ended run_clasp_ex(const char *outdir, int resume, const char *trigger, int sig,
                          rlim_t fsize_limit, const char *kill_writing)
{
    const char *yaml = run_yaml ? run_yaml : yaml_path;
    double signalled = 0;
    ended e = {0};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]), close(fds[1]);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        if (fsize_limit) {
            struct rlimit lim = {fsize_limit, fsize_limit};
            setrlimit(RLIMIT_FSIZE, &lim);
        }
        if (kill_writing) {
            setenv("CLASP_TEST_KILL_WRITING", kill_writing, 1);
            setenv("LD_PRELOAD", getenv("CLASP_TEST_KILL_WRITER"), 1);
            /* Under AddressSanitizer its runtime need not come first. */
            char asan[600];
            const char *cur = getenv("ASAN_OPTIONS");
            snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", cur ? cur : "",
                     cur && *cur ? ":" : "");
            setenv("ASAN_OPTIONS", asan, 1);
        }
        const char *cli = getenv("CLASP_CLI");
        if (resume) execl(cli, cli, "run", yaml, "--output", outdir, "--resume", (char *)NULL);
        else execl(cli, cli, "run", yaml, "--output", outdir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, used = 0;
    int sent = 0;
    while (getline(&line, &cap, f) > 0) {
        if (trigger && !sent && strstr(line, trigger)) {
            if (sig) kill(pid, sig), signalled = now_s();
            else on_trigger(pid);
            sent = 1;
        }
        /* A progress line before the first batch ends has no ETA to give. */
        const char *zero = strstr(line, " 0/");
        if (zero && strstr(zero, " eta ")) fail_msg("an ETA with nothing done: %s", line);
        size_t n = strlen(line);
        if (used + n >= sizeof e.err) used = 0; /* keep the tail */
        memcpy(e.err + used, line, n + 1);
        used += n;
        if (getenv("CLASP_TEST_VERBOSE")) fputs(line, stderr);
    }
    free(line);
    fclose(f);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    signal_to_end = signalled ? now_s() - signalled : 0;
    if (trigger && !sent) fail_msg("the run never printed '%s'; stderr ends:\n%s", trigger, e.err);
    return e;
}

/* The exit code with the child's stderr when it is not the one expected. */
#define assert_code(e, want)                                                               \
    do {                                                                                   \
        if ((e).code != (want))                                                            \
            fail_msg("exit %d, expected %d; stderr ends:\n%s", (e).code, (want), (e).err); \
    } while (0)

static ended run_clasp(const char *outdir, int resume, const char *trigger, int sig,
                       rlim_t fsize_limit)
{
    return run_clasp_ex(outdir, resume, trigger, sig, fsize_limit, NULL);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Files NAME.safetensors.tmp.PID in the output folder. */
static int count_temps(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.safetensors\\.tmp\\.' >/dev/null", out);
    return system(cmd) == 0;
}

/* While the first run trains, a second one into its folder, plain or
 * --resume (it would see the live run's state file), is refused at once
 * with the holder's pid; the first run goes on undisturbed. The first run
 * is stopped (SIGSTOP, it keeps its lock) while the two try, so that a
 * fast first run cannot finish in between and make the check a race. */
static void second_run_is_refused(pid_t first)
{
    kill(first, SIGSTOP);
    char holder[64];
    snprintf(holder, sizeof holder, "pid %ld on host ", (long)first);
    for (int resume = 0; resume < 2; resume++) {
        ended e = run_clasp(out, resume, NULL, 0, 0);
        assert_code(e, 1);
        if (!strstr(e.err, "in use by another clasp run") || !strstr(e.err, holder)) {
            kill(first, SIGCONT); /* never leave it stopped */
            fail_msg("second run%s: expected a refusal naming %s; stderr ends:\n%s",
                     resume ? " --resume" : "", holder, e.err);
        }
        assert_null(strstr(e.err, "continue it with --resume"));
    }
    kill(first, SIGCONT);
}

static void test_killed_anywhere_resumes_to_the_same_report(void **state)
{
    (void)state;
    /* The uninterrupted run, in the same folder (the report records it),
     * then moved aside; during its second epoch two more runs try the
     * folder. */
    on_trigger = second_run_is_refused;
    ended e = run_clasp(out, 0, "epoch 1/3:", 0, 0);
    if (e.code != 0) fail_msg("uninterrupted run: exit %d\n%s", e.code, e.err);
    assert_int_equal(rename(out, ref_out), 0);

    /* 1. SIGKILL during the standard model's second epoch. */
    e = run_clasp(out, 0, "epoch 1/3:", SIGKILL, 0);
    assert_code(e, 128 + SIGKILL);
    assert_true(exists(st_path));
    char report[400];
    snprintf(report, sizeof report, "%s/report.json", out);
    assert_false(exists(report));

    /* An --output that is a file, or a folder this user cannot write,
     * says so (not "cannot remove the old report: Not a directory"). */
    char not_dir[400];
    snprintf(not_dir, sizeof not_dir, "%s/kill.yaml", dir);
    e = run_clasp(not_dir, 0, NULL, 0, 0);
    assert_code(e, 1);
    assert_non_null(strstr(e.err, "kill.yaml is a file, not a folder"));
    if (geteuid() != 0) { /* root writes anywhere */
        char ro[400];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        assert_int_equal(mkdir(ro, 0555), 0);
        e = run_clasp(ro, 0, NULL, 0, 0);
        assert_code(e, 1);
        assert_non_null(strstr(e.err, "the output folder is not writable"));
    }

    /* A plain run refuses to start over the killed one. */
    e = run_clasp(out, 0, NULL, 0, 0);
    assert_code(e, 1);
    assert_non_null(strstr(e.err, "--resume"));

    /* 2. SIGKILL during the evaluation of the first model (its PGD). */
    e = run_clasp(out, 1, " fgsm ", SIGKILL, 0);
    assert_code(e, 128 + SIGKILL);

    /* 3. SIGKILL in the first epoch of the second model. */
    e = run_clasp(out, 1, "model 2/2", SIGKILL, 0);
    assert_code(e, 128 + SIGKILL);

    /* A truncated state is refused, clearly, and left as it was. */
    size_t len;
    unsigned char *good = slurp(st_path, &len);
    tu_write_file(st_path, good, len / 2);
    e = run_clasp(out, 1, NULL, 0, 0);
    assert_code(e, 1);
    assert_non_null(strstr(e.err, "cannot resume"));
    assert_non_null(strstr(e.err, "state.safetensors"));
    size_t len2;
    unsigned char *after = slurp(st_path, &len2);
    assert_int_equal(len2, len / 2);
    free(after);
    tu_write_file(st_path, good, len);

    /* 4. SIGKILL inside the state write: halfway through the new state's
     * temporary file. The old state survives byte for byte; the partial
     * temporary file is left behind. */
    e = run_clasp_ex(out, 1, NULL, 0, 0, "state.safetensors.tmp");
    assert_code(e, 128 + SIGKILL);
    after = slurp(st_path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, good, len);
    free(after);
    assert_true(count_temps());

    /* A write that fails (here: a file-size limit at half the state's
     * size, as with a full disk) is an error naming the file; the old
     * state survives too. (The OpenCL compiler's own signal handler takes
     * SIGXFSZ, so the write sees EFBIG rather than the process dying.) */
    /* First every program the rest of the run needs, compiled by a copy of
     * the folder run to its end and kept as binaries in clasp's cache: the
     * limited run must fail at the state write, not in a build from source,
     * which on PoCL writes its own cache files (larger than the limit) even
     * for programs it has cached. With a full disk a CPU device's default
     * (no binaries) fails at the first such build instead, with the
     * compiler's error. */
    setenv("CLASP_PROGRAM_BINARIES", "1", 1);
    char warm[320], cmd[1400];
    snprintf(warm, sizeof warm, "%s.warm", out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s'/*.lock", warm, out,
             warm, warm);
    assert_int_equal(system(cmd), 0);
    e = run_clasp(warm, 1, NULL, 0, 0);
    assert_code(e, 0);
    e = run_clasp(out, 1, NULL, 0, (rlim_t)(len / 2));
    unsetenv("CLASP_PROGRAM_BINARIES");
    if (e.code != 128 + SIGXFSZ) {
        assert_code(e, 1);
        if (!strstr(e.err, "state.safetensors")) fail_msg("stderr: %s", e.err);
    }
    after = slurp(st_path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, good, len);
    free(after);
    free(good);

    /* 5. SIGTERM behaves like Ctrl-C: a saved state, exit 143, the hint. */
    e = run_clasp(out, 1, "epoch 2/3:", SIGTERM, 0);
    assert_code(e, 128 + SIGTERM);
    assert_non_null(strstr(e.err, "resume with: clasp run"));
    assert_false(count_temps()); /* the dead writer's temporary file is gone */

    /* The end: the same report as the uninterrupted run, and no state. */
    e = run_clasp(out, 1, NULL, 0, 0);
    if (e.code != 0) fail_msg("final resume: exit %d\n%s", e.code, e.err);
    assert_false(exists(st_path));
    char ref_report[400];
    snprintf(ref_report, sizeof ref_report, "%s/report.json", ref_out);
    json_object *a = json_object_from_file(ref_report), *b = json_object_from_file(report);
    assert_non_null(a);
    assert_non_null(b);
    tu_assert_same_json(a, b, "report");
    json_object_put(a);
    json_object_put(b);
}

/* SIGTERM inside a long attack (PGD of 100 000 steps, a minute or more
 * per batch) stops it within a few steps: attacks poll the stop between
 * steps. The state is saved, so --resume would repeat that pass. */
static void test_sigterm_inside_a_long_attack(void **state)
{
    (void)state;
    char y[2048], long_yaml[300], long_out[300], st[400];
    snprintf(long_yaml, sizeof long_yaml, "%s/long.yaml", dir);
    snprintf(long_out, sizeof long_out, "%s/long", dir);
    snprintf(y, sizeof y,
             "experiment: {name: long, seed: 3}\n"
             "data: {dataset: mnist, path: '%s', val_size: 100}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train: {epochs: 1, batch: 32, optimiser: {lr: 0.1}, val_eval_size: 20, models: "
             "[{name: standard}]}\n"
             "evaluate: {test_size: 40, batch: 20, attacks: [{name: pgd, params: {eps: 0.15, "
             "steps: 100000, alpha: 0}}]}\n",
             dir);
    tu_write_file(long_yaml, y, strlen(y));
    run_yaml = long_yaml;
    /* The checkpoint is saved just before the evaluation starts. */
    ended e = run_clasp(long_out, 0, "saved ", SIGTERM, 0);
    run_yaml = NULL;
    assert_code(e, 128 + SIGTERM);
    /* 2 s plus one step is the aim; a loaded CI machine gets slack. */
    if (signal_to_end > 10) fail_msg("SIGTERM took %.1f s to stop the run", signal_to_end);
    snprintf(st, sizeof st, "%s/state.safetensors", long_out);
    assert_true(exists(st));
    assert_non_null(strstr(e.err, "resume with: clasp run"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_anywhere_resumes_to_the_same_report),
        cmocka_unit_test(test_sigterm_inside_a_long_attack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
