/* Scratch files and checks shared by the harnesses (see fuzz_util.h). */
#include "fuzz_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clasp/status.h"

static char dir[4096];

/* Removes the plain files in the folder, then the folder: the readers never
 * create subfolders. */
static void remove_dir(void)
{
    if (!dir[0]) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096 + 256];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

const char *fuzz_dir(void)
{
    if (dir[0]) return dir;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    int n = snprintf(dir, sizeof dir, "%s/clasp-fuzz-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof dir - 64 || !mkdtemp(dir)) {
        fprintf(stderr, "fuzz: cannot make a scratch folder in %s: %s\n", tmp, strerror(errno));
        abort();
    }
    atexit(remove_dir);
    return dir;
}

void fuzz_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", fuzz_dir(), name);
    fuzz_check(n > 0 && (size_t)n < size, "fuzz: path of %s too long", name);
}

void fuzz_write(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fuzz_check(fd >= 0, "fuzz: cannot create %s: %s", path, strerror(errno));
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        fuzz_check(w > 0, "fuzz: cannot write %s: %s", path, strerror(errno));
        data += w;
        n -= (size_t)w;
    }
    close(fd);
}

void fuzz_unlink(const char *path)
{
    fuzz_check(unlink(path) == 0 || errno == ENOENT, "fuzz: cannot remove %s: %s", path,
               strerror(errno));
}

void fuzz_check(int cond, const char *fmt, ...)
{
    if (cond) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fuzz_check_error(const char *where)
{
    const char *msg = clasp_last_error();
    fuzz_check(msg && strstr(msg, where) != NULL,
               "fuzz: the error message does not name %s: \"%s\"", where, msg ? msg : "(null)");
}
