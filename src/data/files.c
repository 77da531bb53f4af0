/* Paths, sizes and class-name files for the data readers. */
#include "data/data_internal.h"

#include <ctype.h>
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

clasp_status clasp_data_class_names(const char *dir, const char *file, int k,
                                    const char *const *defaults, clasp_dataset *d)
{
    char path[4096], line[256];
    if (k < 1 || k > CLASP_MAX_CLASSES)
        return clasp_error(CLASP_ERR_INVALID, "%s: %d classes, expected 1..%d", file, k,
                           CLASP_MAX_CLASSES);
    for (int i = 0; i < k; i++)
        snprintf(d->class_names[i], CLASP_CLASS_NAME_MAX, "%s", defaults[i]);
    CLASP_TRY(clasp_data_join(path, sizeof path, dir, file));
    FILE *f = fopen(path, "r");
    if (!f) return CLASP_OK;
    char names[CLASP_MAX_CLASSES][CLASP_CLASS_NAME_MAX];
    int count = 0, lineno = 0;
    clasp_status s = CLASP_OK;
    while (s == CLASP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
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
    return s;
}
