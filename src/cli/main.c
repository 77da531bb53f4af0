/* clasp: class-wise adversarial robustness on any OpenCL device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "clasp/dist.h"
#include "cli.h"
#include "clasp_config.h"

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command commands[] = {
    {"run", cmd_run, "run an experiment file: clasp run EXP.yaml [--output DIR] [--resume]"},
    {"check", cmd_check, "validate an experiment file without computing: clasp check EXP.yaml"},
    {"train", cmd_train, "train the default CNN: clasp train [--epochs N] [--data DIR] [--save F]"},
    {"attack", cmd_attack, "attack a checkpoint: clasp attack --model F --attack NAME [--set k=v]"},
    {"inspect", cmd_inspect,
     "what a model file holds (safetensors or PyTorch .pt): clasp inspect FILE"},
    {"convert", cmd_convert, "a model file's state dict as safetensors: clasp convert IN OUT"},
    {"plugins", cmd_plugins, "list attack and defense plugins with their parameters"},
    {"zoo", cmd_zoo, "RobustBench models clasp can load: clasp zoo [NAME] [--supported]"},
    {"devices", cmd_devices, "list OpenCL devices and mark the one clasp uses"},
    {"bench", cmd_bench, "images/s for inference, training and PGD-10 training"},
    {"tune", cmd_tune,
     "tune GEMM kernels for this device: clasp tune [--seconds S] [--show] [--reset]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: clasp COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nenvironment: CLASP_DEVICE (P:D or name), CLASP_PLUGIN_PATH, CLASP_CACHE_DIR\n"
               "(\"off\" disables the kernel cache), CLASP_PROFILE=1 (per-op device times),\n"
               "CLASP_TUNE=1 (tune GEMM on first use of a device), CLASP_GEMM (own|clblast|...)\n"
               "\nunder mpirun, `clasp run` trains data-parallel and evaluates sharded (see "
               "README)\n");
}

/* Several ranks on one node: PoCL's CPU device would start one thread per
 * core in each. PoCL reads its settings from the environment only, before
 * the first OpenCL call, so the command sets them here: each rank's share
 * (unless the user set a count), and no pinning (PoCL's puts thread i on
 * core i in every process alike). */
static void share_cores(void)
{
    int share = clasp_dist_cpu_share();
    if (!share) return;
    char v[32];
    snprintf(v, sizeof v, "%d", share);
    setenv("POCL_MAX_PTHREAD_COUNT", v, 0);
    setenv("POCL_AFFINITY", "0", 1);
}

/* Decoding an image allocates and frees buffers of a few hundred KB to a
 * few MB (the decoded image, the resized one, the filter tables) per image
 * and thread. glibc serves those with fresh mmaps, so every image paid its
 * page faults again: the image loader ran 2.4x slower with one worker
 * thread (130 against 314 images/s on 500x375 JPEGs) than with these
 * blocks kept in the heap. Buffers above 32 MB (device tensors) are still
 * mapped and unmapped. */
static void keep_image_buffers(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    keep_image_buffers();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("clasp %s\n", CLASP_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            /* Under mpirun: MPI starts here, before any OpenCL (README,
             * "Several processes with MPI"); a plain start is one process. */
            if (clasp_dist_init(&argc, &argv) != CLASP_OK) {
                fprintf(stderr, "clasp: %s\n", clasp_last_error());
                return 1;
            }
            share_cores();
            int rc = commands[i].fn(argc - 1, argv + 1);
            /* A failed rank ends the job; an interrupted one (128 + signal)
             * ends after the others saved the state. */
            clasp_dist_finalize(rc != 0 && rc < 128);
            return rc;
        }
    fprintf(stderr, "clasp: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
