/* Shared helpers of the libFuzzer harnesses: a private scratch folder for
 * readers that take paths, and a check that turns a broken promise of the
 * library into a crash libFuzzer records. */
#ifndef CLASP_FUZZ_UTIL_H
#define CLASP_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* This process's scratch folder (created on first use under $TMPDIR or
 * /tmp, removed with its files at exit). Never NULL: aborts when it cannot
 * be made, since no input could be tested without it. */
const char *fuzz_dir(void);

/* "<fuzz_dir()>/<name>" into buf (size >= 4096). */
void fuzz_path(char *buf, size_t size, const char *name);

/* Writes exactly n bytes to path, replacing the file; aborts on failure. */
void fuzz_write(const char *path, const uint8_t *data, size_t n);

/* Removes path if it exists (an input may or may not provide a file). */
void fuzz_unlink(const char *path);

/* Aborts with the message when cond is false: the reader broke one of its
 * documented promises on this input. */
void fuzz_check(int cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The library's last error must be a real message naming `where` (a path or
 * the name given for the input). */
void fuzz_check_error(const char *where);

#endif
