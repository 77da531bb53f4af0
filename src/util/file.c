/* Durable file writes and folders: one policy for every file clasp keeps. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

clasp_status clasp_mkdir_p(const char *path)
{
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    memcpy(buf, path, n + 1);
    for (char *s = buf + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
            struct stat sb;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                clasp_status st = clasp_error(CLASP_ERR_IO, "%s: cannot create the folder: %s", buf,
                                              strerror(errno));
                free(buf);
                return st;
            }
            /* An existing file where a folder is meant: said here, not as
             * a "Not a directory" from whatever is written into it. */
            if (stat(buf, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
                clasp_status st = clasp_error(CLASP_ERR_IO, "%s is a file, not a folder", buf);
                free(buf);
                return st;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(buf);
    return CLASP_OK;
}

void clasp_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* The folder of path ("." when it has none), malloc'd. */
static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

static void release(clasp_atomic_file *a)
{
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

clasp_status clasp_atomic_open(clasp_atomic_file *a, const char *path, const char *mode)
{
    memset(a, 0, sizeof *a);
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        release(a);
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, mode);
    if (!a->f) {
        clasp_status st = clasp_error(CLASP_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                                      a->tmp, strerror(errno));
        release(a);
        return st;
    }
    return CLASP_OK;
}

void clasp_atomic_abort(clasp_atomic_file *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}

clasp_status clasp_atomic_commit(clasp_atomic_file *a, int ok)
{
    clasp_status st = CLASP_OK;
    /* The data must be on disk before the rename makes it visible, or a
     * crash could leave a complete-looking but empty file at path. */
    if (!ok || ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
        st = clasp_error(CLASP_ERR_IO, "%s: writing %s failed: %s", a->path, a->tmp,
                         errno ? strerror(errno) : "short write");
    if (fclose(a->f) != 0 && st == CLASP_OK)
        st = clasp_error(CLASP_ERR_IO, "%s: closing %s failed: %s", a->path, a->tmp,
                         strerror(errno));
    a->f = NULL;
    if (st == CLASP_OK && rename(a->tmp, a->path) != 0)
        st = clasp_error(CLASP_ERR_IO, "%s: renaming %s over it failed: %s", a->path, a->tmp,
                         strerror(errno));
    if (st != CLASP_OK) {
        unlink(a->tmp);
    } else {
        char *dir = parent_of(a->path);
        if (dir) clasp_sync_dir(dir);
        free(dir);
    }
    release(a);
    return st;
}

clasp_status clasp_write_atomic(const char *path, const void *data, size_t len)
{
    clasp_atomic_file a;
    CLASP_TRY(clasp_atomic_open(&a, path, "wb"));
    int ok = !len || fwrite(data, 1, len, a.f) == len;
    return clasp_atomic_commit(&a, ok);
}
