/* Preloaded into `clasp run` by test_kill: dies with SIGKILL in the middle
 * of writing a file, as a process killed at that moment would.
 *
 * When CLASP_TEST_KILL_WRITING is set, the first file opened for writing
 * whose path contains that text is watched; on the third fwrite into it
 * (after the safetensors length and header, i.e. inside the tensor data)
 * half of that block is written and flushed, then the process kills
 * itself. Nothing in clasp knows about this: it only sees its write cut
 * off, as with a real kill. */
/* Both names are defined here; with 64-bit offsets asked for, the header
 * would make fopen another name for fopen64. */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *watched;
static int writes;

static FILE *watch(FILE *f, const char *path, const char *mode)
{
    const char *want = getenv("CLASP_TEST_KILL_WRITING");
    if (f && !watched && want && *want && strstr(path, want) && strchr(mode, 'w')) watched = f;
    return f;
}

FILE *fopen(const char *path, const char *mode)
{
    FILE *(*real)(const char *, const char *) =
        (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return watch(real(path, mode), path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    FILE *(*real)(const char *, const char *) =
        (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen64");
    return watch(real(path, mode), path, mode);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    size_t (*real)(const void *, size_t, size_t, FILE *) =
        (size_t(*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
    if (f == watched && ++writes == 3) {
        real(p, size, n / 2, f);
        fflush(f);
        raise(SIGKILL);
    }
    return real(p, size, n, f);
}
