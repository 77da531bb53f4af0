/* The library's one room for small infrastructure: durable file writes,
 * folders, a text buffer, hashing and the clock. Internal to libclasp
 * (not exported). */
#ifndef CLASP_UTIL_H
#define CLASP_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clasp/runtime.h"
#include "clasp/status.h"

/* ---- files (file.c) -------------------------------------------------- */

/* A file written so that a crash leaves either the old file or the
 * complete new one at `path`, never a part: it is written as
 * "<path>.tmp.<pid>", then flushed and fsync'ed, renamed over `path`, and
 * the folder is fsync'ed so that the rename itself survives. One policy
 * for every file clasp keeps (program cache, tuning file, checkpoints and
 * state, report and charts). */
typedef struct clasp_atomic_file {
    FILE *f; /* write here between open and commit */
    char *path, *tmp;
} clasp_atomic_file;

/* Creates the temporary file; `path`'s folder must exist (clasp_mkdir_p). */
clasp_status clasp_atomic_open(clasp_atomic_file *a, const char *path, const char *mode);

/* Publishes the file when ok is non-zero and every write succeeded;
 * otherwise (or on any failure) removes the temporary file and leaves
 * `path` as it was. Always releases a. */
clasp_status clasp_atomic_commit(clasp_atomic_file *a, int ok);

/* Removes the temporary file; `path` stays as it was. */
void clasp_atomic_abort(clasp_atomic_file *a);

/* The whole of data as one atomic file. */
clasp_status clasp_write_atomic(const char *path, const void *data, size_t len);

/* mkdir -p: every missing folder of path (mode 0777 less the umask). */
clasp_status clasp_mkdir_p(const char *path);

/* The name of the lock file a run keeps in its output folder. */
#define CLASP_LOCK_FILE ".clasp.lock"

/* Takes the exclusive lock of folder dir (which must exist): *fd holds it
 * until clasp_dir_unlock or the process's end, whichever comes first. A
 * folder another process holds is refused at once (CLASP_ERR_CONFIG) with
 * the holder's pid and host in the message. See lock.c. */
clasp_status clasp_dir_lock(const char *dir, int *fd);
/* Releases a lock of clasp_dir_lock; -1 is harmless. */
void clasp_dir_unlock(int fd);

/* Points clasp_stop_requested (clasp/plugin.h) at flag; NULL: never. */
void clasp_stop_flag_set(volatile sig_atomic_t *flag);

/* Best effort fsync of a folder (renames in it become durable). */
void clasp_sync_dir(const char *dir);

/* ---- text (buf.c) ---------------------------------------------------- */

/* A growable NUL-terminated text buffer. An allocation failure sets
 * `failed` and turns later appends into no-ops, so builders can append
 * freely and check once at the end (clasp_buf_write reports it). */
/* Length of the well-formed UTF-8 sequence at s (n bytes readable), 0
 * when it is not one: overlong forms, surrogates, code points past
 * U+10FFFF and sequences cut short by n are refused. */
size_t clasp_utf8_seq(const unsigned char *s, size_t n);

typedef struct clasp_buf {
    char *data;
    size_t len, cap;
    int failed;
} clasp_buf;

void clasp_buf_free(clasp_buf *b);
void clasp_buf_puts(clasp_buf *b, const char *s);
void clasp_buf_printf(clasp_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends n bytes of s. */
void clasp_buf_putn(clasp_buf *b, const char *s, size_t n);

/* clasp_write_atomic of the buffer; CLASP_ERR_NOMEM when it failed to grow. */
clasp_status clasp_buf_write(const clasp_buf *b, const char *path);

/* ---- hashing (hash.c) ------------------------------------------------ */

#define CLASP_FNV1A_INIT 0xcbf29ce484222325ULL

/* 64-bit FNV-1a of n bytes, continuing from h (CLASP_FNV1A_INIT to start). */
uint64_t clasp_fnv1a(const void *data, size_t n, uint64_t h);

/* splitmix64's finaliser: a bijective 64-bit mix. Only fixed-width
 * integer arithmetic, so every platform gives the same numbers (data-set
 * shuffles and random-stream keys depend on it). */
uint64_t clasp_mix64(uint64_t z);

/* The monotonic clock, clasp_now (clock.c), is public: clasp/runtime.h. */

#endif
