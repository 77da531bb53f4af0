/* The clasp command: one function per subcommand, plus shared helpers. */
#ifndef CLASP_CLI_H
#define CLASP_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clasp/data.h"
#include "clasp/experiment.h"
#include "clasp/model.h"
#include "clasp/runtime.h"

/* Each returns the process exit status. argv[0] is the subcommand name. */
int cmd_devices(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* clasp bench --loader-only (cmd_bench_data.c): the image-folder data path alone. */
int cli_bench_loader(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_zoo(int argc, char **argv);

/* Prints "clasp: <what>: <clasp_last_error()>" to stderr and returns 1. */
int cli_fail(const char *what);

/* Before any work: whether the file `path` (given as option opt) can be
 * written, i.e. its folder exists, is a folder and takes a new file, the
 * path is not a folder, and the disk is not full. 0 when so; otherwise
 * prints why and returns 2. */
int cli_check_output_file(const char *opt, const char *path);

/* Progress display: a bar with ETA on a terminal, plain lines otherwise. */
typedef struct cli_progress {
    const char *label;
    size_t total, done, printed_done;
    double start, last_print;
    int tty;
    char extra[96];
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, size_t total);
/* extra: short text shown after the counts (e.g. "loss 0.31"), may be NULL. */
void cli_progress_update(cli_progress *p, size_t done, const char *extra);
void cli_progress_end(cli_progress *p);

/* The experiment runner's news and progress on this terminal: lines to
 * stderr, progress bars through cli_progress. */
typedef struct cli_run_ui {
    cli_progress bar;
    char label[200];
    int active;
} cli_run_ui;
/* Fills hooks' log and progress members (not step nor user data of its own). */
void cli_run_hooks(cli_run_ui *ui, clasp_run_hooks *hooks);
/* Ends a progress bar still shown (after a failure inside a phase). */
void cli_run_ui_end(cli_run_ui *ui);

/* Whether a per-class table lists a class with `count` examples: past 20
 * classes (ImageNet's 1000, most absent from a subset) only classes with
 * examples. */
int cli_class_listed(int num_classes, int64_t count);

/* Prints a per-class table: class name, count, and one or more accuracy
 * columns (correct[col][k] / count[k]) with an overall row. */
void cli_print_class_table(FILE *f, const clasp_dataset *d, int n_cols,
                           const char *const *col_names, const int64_t *const *correct,
                           const int64_t *count);

/* Parses "--name value" / "--name=value" options: returns the value when
 * argv[*i] is the option (advancing *i past a separate value), else NULL. */
/* The --dataset line of a usage text, naming every data set clasp knows. */
void cli_print_dataset_option(FILE *f);

const char *cli_opt(int argc, char **argv, int *i, const char *name);

/* The architecture with --activation applied into buf: "relu" or NULL
 * leaves arch as it is, "swish" adds the -swish suffix to a preset
 * ("dm-wrn-28-10" -> "dm-wrn-28-10-swish", before any -padP). 0, or 2 after
 * a message on stderr starting with cmd for another activation or a
 * layer list. */
int cli_arch_activation(const char *cmd, const char *arch, const char *activation, char *buf,
                        size_t size);

/* Parses a whole non-negative number or exits with a message naming opt. */
long cli_parse_long(const char *opt, const char *value, long min, long max);
double cli_parse_double(const char *opt, const char *value, double min, double max);

#endif
