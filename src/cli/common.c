/* Helpers shared by the subcommands: errors, progress, tables, options. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clasp/eval.h"
#include "cli.h"

int cli_fail(const char *what)
{
    fprintf(stderr, "clasp: %s: %s\n", what, clasp_last_error());
    return 1;
}

int cli_check_output_file(const char *opt, const char *path)
{
    struct stat sb;
    const char *why = NULL;
    char dir[4096], err[4400] = "";
    if (!*path) why = "an empty path";
    else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        why = "is a folder; name the file to write (e.g. FOLDER/model.safetensors)";
    if (why) {
        fprintf(stderr, "clasp: %s %s: %s\n", opt, path, why);
        return 2;
    }
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(dir, &sb) != 0) {
        snprintf(err, sizeof err, "its folder %s does not exist (%s)", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, sizeof err, "%s is not a folder", dir);
    } else {
        /* Creating a file is the one sure test (permissions, read-only
         * mounts, ACLs, quotas on inodes); access() misses some. */
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.clasp-probe.%ld", dir, (long)getpid());
        int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, sizeof err, "cannot create a file in %s (%s)", dir, strerror(errno));
        } else {
            close(fd);
            unlink(probe);
            struct statvfs vs;
            if (statvfs(dir, &vs) == 0 && vs.f_bavail == 0)
                snprintf(err, sizeof err, "no free space left on %s", dir);
        }
    }
    if (!*err) return 0;
    fprintf(stderr, "clasp: %s %s: %s; nothing was done\n", opt, path, err);
    return 2;
}

void cli_progress_start(cli_progress *p, const char *label, size_t total)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->start = clasp_now();
    p->last_print = -1;
    p->tty = isatty(fileno(stderr));
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_print(cli_progress *p, int final)
{
    double now = clasp_now(), el = now - p->start;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    char eta[32], elapsed[32];
    fmt_time(elapsed, sizeof elapsed, el);
    /* Nothing done yet says nothing about the rest: no ETA rather than
     * "eta 0:00" through a long first batch. */
    if (frac > 0) fmt_time(eta, sizeof eta, el * (1 - frac) / frac);
    else snprintf(eta, sizeof eta, "?");
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %zu/%zu %s<%s %s\033[K", p->label, bar, p->done, p->total,
                elapsed, final ? elapsed : eta, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        /* A pass that ended early (a stop) has no ETA either. */
        int all = p->done >= p->total;
        const char *shown = final ? (all ? "0:00" : NULL) : frac > 0 ? eta : NULL;
        fprintf(stderr, "%s %zu/%zu (%.0f%%) elapsed %s%s%s %s\n", p->label, p->done, p->total,
                100 * frac, elapsed, shown ? " eta " : "", shown ? shown : "", p->extra);
    }
    fflush(stderr);
    p->last_print = now;
    p->printed_done = p->done;
}

void cli_progress_update(cli_progress *p, size_t done, const char *extra)
{
    p->done = done;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    double now = clasp_now();
    /* A terminal redraws often; a log gets a line every 10 s. */
    double every = p->tty ? 0.2 : 10.0;
    if (p->last_print < 0 || now - p->last_print >= every) progress_print(p, 0);
}

void cli_progress_end(cli_progress *p)
{
    /* A log already holding the 100% line needs no second one. */
    if (!p->tty && p->printed_done == p->done && p->last_print >= 0) return;
    progress_print(p, 1);
}

/* ---- the runner's hooks on a terminal ----------------------------------- */

static void ui_log(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "%s\n", line);
}

static void ui_start(void *user, const char *label, size_t total)
{
    cli_run_ui *u = user;
    /* The runner's label may not outlive this call. */
    snprintf(u->label, sizeof u->label, "%s", label);
    cli_progress_start(&u->bar, u->label, total);
    u->active = 1;
}

static void ui_update(void *user, size_t done, const char *extra)
{
    cli_run_ui *u = user;
    if (u->active) cli_progress_update(&u->bar, done, extra);
}

static void ui_end(void *user)
{
    cli_run_ui *u = user;
    if (u->active) cli_progress_end(&u->bar);
    u->active = 0;
}

void cli_run_hooks(cli_run_ui *ui, clasp_run_hooks *hooks)
{
    memset(ui, 0, sizeof *ui);
    hooks->user = ui;
    hooks->log = ui_log;
    hooks->progress_start = ui_start;
    hooks->progress_update = ui_update;
    hooks->progress_end = ui_end;
}

void cli_run_ui_end(cli_run_ui *ui)
{
    ui_end(ui);
}

int cli_class_listed(int num_classes, int64_t count)
{
    return num_classes <= 20 || count > 0;
}

void cli_print_class_table(FILE *f, const clasp_dataset *d, int n_cols,
                           const char *const *col_names, const int64_t *const *correct,
                           const int64_t *count)
{
    fprintf(f, "  %-14s %6s", "class", "n");
    for (int c = 0; c < n_cols; c++) fprintf(f, " %10s", col_names[c]);
    fputc('\n', f);
    int64_t total = clasp_class_sum(count, d->num_classes);
    int empty = 0;
    for (int k = 0; k < d->num_classes; k++) {
        if (!cli_class_listed(d->num_classes, count[k])) {
            empty++;
            continue;
        }
        fprintf(f, "  %-14s %6lld", d->class_names[k], (long long)count[k]);
        for (int c = 0; c < n_cols; c++)
            fprintf(f, " %9.2f%%",
                    count[k] ? 100.0 * (double)correct[c][k] / (double)count[k] : 0.0);
        fputc('\n', f);
    }
    fprintf(f, "  %-14s %6lld", "all", (long long)total);
    for (int c = 0; c < n_cols; c++) {
        int64_t s = 0;
        for (int k = 0; k < d->num_classes; k++) s += correct[c][k];
        fprintf(f, " %9.2f%%", total ? 100.0 * (double)s / (double)total : 0.0);
    }
    fputc('\n', f);
    if (empty) fprintf(f, "  (%d classes without examples not listed)\n", empty);
}

const char *cli_opt(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "clasp: option %s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

long cli_parse_long(const char *opt, const char *value, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "clasp: %s expects a whole number in [%ld, %ld], got '%s'\n", opt, min, max,
                value);
        exit(2);
    }
    return v;
}

double cli_parse_double(const char *opt, const char *value, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "clasp: %s expects a number in [%g, %g], got '%s'\n", opt, min, max, value);
        exit(2);
    }
    return v;
}

void cli_print_dataset_option(FILE *f)
{
    /* "fashion-mnist (default), mnist, ... or stl10; all but ..." from
     * the library's one list, wrapped under the option's text column. */
    char names[256], text[400];
    clasp_dataset_names_text(names, sizeof names, " or ");
    const char *first = clasp_dataset_names[0];
    size_t n0 = strlen(first);
    snprintf(text, sizeof text, "%s (default)%s; all but %s need --data", first, names + n0, first);
    const int indent = 18, width = 88;
    fprintf(f, "  %-14s  ", "--dataset NAME");
    int col = indent;
    for (const char *w = text; *w;) {
        size_t len = strcspn(w, " ");
        if (col > indent && col + 1 + (int)len > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(w, 1, len, f);
        col += (int)len;
        w += len;
        while (*w == ' ') w++;
    }
    fputc('\n', f);
}

int cli_arch_activation(const char *cmd, const char *arch, const char *activation, char *buf,
                        size_t size)
{
    snprintf(buf, size, "%s", arch);
    if (!activation || !strcmp(activation, "relu")) return 0;
    if (strcmp(activation, "swish")) {
        fprintf(stderr, "%s: --activation expects relu or swish, got '%s'\n", cmd, activation);
        return 2;
    }
    if (!clasp_model_is_preset(arch)) {
        fprintf(stderr,
                "%s: --activation swish needs a preset --arch, not '%s' (a layer list names "
                "swish itself)\n",
                cmd, arch);
        return 2;
    }
    if (strstr(arch, "-swish")) return 0;
    /* The suffixes go -wN, -swish, -padP: before a -padP, if there is one. */
    const char *pad = NULL;
    for (const char *p = strstr(arch, "-pad"); p; p = strstr(p + 1, "-pad")) pad = p;
    size_t at = pad ? (size_t)(pad - arch) : strlen(arch);
    int n = snprintf(buf, size, "%.*s-swish%s", (int)at, arch, pad ? pad : "");
    if (n < 0 || (size_t)n >= size || !clasp_model_is_preset(buf)) {
        fprintf(stderr, "%s: no swish variant of '%s'\n", cmd, arch);
        return 2;
    }
    return 0;
}
