/* The output folder's lock: one run writes a folder at a time. flock on a
 * file that stays in the folder (removing it would let a third run lock a
 * fresh file while the second still holds the old one); the kernel drops
 * the lock when its holder dies, however it dies, so there is never a
 * stale lock to clean up. The file's text (pid and host of the holder) is
 * only for the message a refused run prints. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/util.h"

clasp_status clasp_dir_lock(const char *dir, int *fd_out)
{
    *fd_out = -1;
    char path[1200];
    if (snprintf(path, sizeof path, "%s/%s", dir, CLASP_LOCK_FILE) >= (int)sizeof path)
        return clasp_error(CLASP_ERR_INVALID, "%s: output folder path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        return clasp_error(CLASP_ERR_IO, "%s: the output folder is not writable (%s)", dir,
                           strerror(errno));
    if (fd < 0)
        return clasp_error(CLASP_ERR_IO, "%s: cannot create the lock file: %s", path,
                           strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK) {
            close(fd);
            return clasp_error(CLASP_ERR_IO, "%s: cannot lock: %s", path, strerror(err));
        }
        /* Bounded: the file is data that another process wrote. */
        char who[160] = "";
        ssize_t n = pread(fd, who, sizeof who - 1, 0);
        close(fd);
        who[n > 0 ? n : 0] = 0;
        long pid = 0;
        char host[128] = "";
        if (sscanf(who, "pid %ld host %127s", &pid, host) != 2 || pid <= 0)
            snprintf(host, sizeof host, "?");
        char holder[200];
        if (pid > 0) snprintf(holder, sizeof holder, "pid %ld on host %s", pid, host);
        else snprintf(holder, sizeof holder, "a process that has not yet written its pid");
        return clasp_error(CLASP_ERR_CONFIG,
                           "%s is in use by another clasp run (%s; lock file %s): wait for it "
                           "to end or stop it, or choose another --output; two runs writing one "
                           "folder would mix their results",
                           dir, holder, path);
    }
    char host[128] = "unknown";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = 0;
    char who[200];
    int len = snprintf(who, sizeof who, "pid %ld host %s\n", (long)getpid(), host);
    /* What the file says is a courtesy; a failure here does not weaken
     * the lock itself. */
    if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, who, (size_t)len, 0);
    *fd_out = fd;
    return CLASP_OK;
}

void clasp_dir_unlock(int fd)
{
    if (fd >= 0) close(fd);
}
