/* clasp — status codes and error messages.
 *
 * Every fallible clasp function returns a clasp_status; CLASP_OK (0) means
 * success. On failure a human-readable message saying what went wrong and
 * where (file, byte offset, OpenCL call ...) is kept per thread and read with
 * clasp_last_error(). */
#ifndef CLASP_STATUS_H
#define CLASP_STATUS_H

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* One list, so codes and their names can never drift apart. The values
 * are fixed (they cross the plugin boundary and reach exit codes): new
 * codes get new numbers at the end. */
#define CLASP_STATUS_LIST(X)                      \
    X(CLASP_OK, 0, "ok")                          \
    X(CLASP_ERR_INVALID, 1, "invalid argument")   \
    X(CLASP_ERR_NOMEM, 2, "out of memory")        \
    X(CLASP_ERR_IO, 3, "input/output error")      \
    X(CLASP_ERR_FORMAT, 4, "malformed input")     \
    X(CLASP_ERR_OPENCL, 5, "OpenCL error")        \
    X(CLASP_ERR_NOT_FOUND, 6, "not found")        \
    X(CLASP_ERR_PLUGIN, 7, "plugin error")        \
    X(CLASP_ERR_CONFIG, 8, "configuration error") \
    X(CLASP_ERR_INTERRUPTED, 9, "interrupted")    \
    X(CLASP_ERR_UNSUPPORTED, 10, "unsupported")

/* clang-format off */
typedef enum clasp_status {
#define CLASP_STATUS_ENUM_(name, value, text) name = value,
    CLASP_STATUS_LIST(CLASP_STATUS_ENUM_)
#undef CLASP_STATUS_ENUM_
    CLASP_STATUS_COUNT_
} clasp_status;
/* clang-format on */

/* Short fixed name of a status ("malformed input"). Never NULL. */
const char *clasp_status_string(clasp_status s);

/* The detailed message of the last failure on this thread, e.g.
 * "train-images.gz: truncated at byte 4096, expected 47040016 bytes".
 * Owned by clasp; valid until the next clasp call on this thread. */
const char *clasp_last_error(void);

/* Records a message (printf-style) for this thread and returns `s`, so
 * callers can write `return clasp_error(CLASP_ERR_IO, "%s: ...", path);`. */
clasp_status clasp_error(clasp_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears this thread's message. */
void clasp_error_clear(void);

/* Evaluates a clasp_status expression and returns it from the enclosing
 * function when it is not CLASP_OK. */
#define CLASP_TRY(expr)                                    \
    do {                                                   \
        clasp_status clasp_try_s_ = (expr);                \
        if (clasp_try_s_ != CLASP_OK) return clasp_try_s_; \
    } while (0)

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
