/* Paths, sizes and class-name files for the data readers. */
#include "util/util.h"
#include "data/data_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

clasp_status clasp_data_join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return clasp_error(CLASP_ERR_INVALID, "%s: folder path too long", dir);
    return CLASP_OK;
}

clasp_status clasp_data_file_size(const char *path, long long *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return clasp_error(CLASP_ERR_IO, "%s: not a regular file", path);
    *size = (long long)st.st_size;
    return CLASP_OK;
}

/* The offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), or
 * n when all is. */
static size_t utf8_bad(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (size_t k; i < n; i += k)
        if (!(k = clasp_utf8_seq(s + i, n - i))) return i;
    return n;
}

clasp_status clasp_data_class_names(const char *dir, const char *file, int k,
                                    const char *const *defaults, clasp_dataset *d)
{
    char path[4096], line[256];
    if (k < 1 || k > CLASP_MAX_CLASSES)
        return clasp_error(CLASP_ERR_INVALID, "%s: %d classes, expected 1..%d", file, k,
                           CLASP_MAX_CLASSES);
    CLASP_TRY(clasp_dataset_set_classes(d, k));
    for (int i = 0; i < k; i++)
        snprintf(d->class_names[i], CLASP_CLASS_NAME_MAX, "%s", defaults[i]);
    CLASP_TRY(clasp_data_join(path, sizeof path, dir, file));
    FILE *f = fopen(path, "r");
    if (!f) return CLASP_OK;
    char(*names)[CLASP_CLASS_NAME_MAX] = malloc((size_t)k * sizeof *names);
    if (!names) {
        fclose(f);
        return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    }
    int count = 0, lineno = 0;
    long long line_off = 0; /* of the line in the file */
    clasp_status s = CLASP_OK;
    while (s == CLASP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        /* Names go into report.json and every other output: text that is
         * not UTF-8 made a report JSON parsers reject. */
        size_t bad = utf8_bad((const unsigned char *)line, len);
        if (bad < len) {
            s = clasp_error(CLASP_ERR_FORMAT,
                            "%s: line %d: byte %lld (0x%02x) is not valid UTF-8; class names must "
                            "be UTF-8 text",
                            path, lineno, line_off + (long long)bad, (unsigned char)line[bad]);
            break;
        }
        line_off += (long long)len;
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            s = clasp_error(CLASP_ERR_FORMAT, "%s: line %d: longer than %zu characters", path,
                            lineno, sizeof line - 2);
            break;
        }
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        const char *name = line;
        while (isspace((unsigned char)*name)) name++;
        if (!*name) continue;
        if (count == k)
            s = clasp_error(CLASP_ERR_FORMAT, "%s: line %d: more than %d class names", path, lineno,
                            k);
        else if (strlen(name) >= CLASP_CLASS_NAME_MAX)
            s = clasp_error(CLASP_ERR_FORMAT, "%s: line %d: class name longer than %d characters",
                            path, lineno, CLASP_CLASS_NAME_MAX - 1);
        else memcpy(names[count++], name, strlen(name) + 1); /* length checked above */
    }
    if (s == CLASP_OK && ferror(f)) s = clasp_error(CLASP_ERR_IO, "%s: read error", path);
    if (s == CLASP_OK && count != k)
        s = clasp_error(CLASP_ERR_FORMAT, "%s: %d class names, expected %d", path, count, k);
    fclose(f);
    if (s == CLASP_OK) memcpy(d->class_names, names, (size_t)k * sizeof names[0]);
    free(names);
    return s;
}
