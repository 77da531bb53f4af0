/* Class groups from a mapping file (clasp/groups.h describes the format).
 * Written here: no Debian library reads a two-column text list, and the
 * format is small enough that its bounds are easiest to keep by hand. */
#include "clasp/groups.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/imagefolder_internal.h"
#include "util/util.h"

void clasp_class_groups_free(clasp_class_groups *g)
{
    if (!g) return;
    free(g->names);
    free(g->lines);
    free(g->group_of);
    memset(g, 0, sizeof *g);
}

static int blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trims [*s, *e) of spaces and TABs. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && blank(**s)) (*s)++;
    while (*e > *s && blank((*e)[-1])) (*e)--;
}

/* One line's bytes [s, e) (without its line break): checked as text, cut
 * at '#', split and added to g. */
static clasp_status parse_line(clasp_class_groups *g, const char *src, int line, size_t offset,
                               const char *s, const char *e)
{
    for (const char *q = s; q < e;) {
        const unsigned char *u = (const unsigned char *)q;
        if ((*u < 0x20 && *u != '\t') || *u == 0x7f)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s:%d: control byte 0x%02x at byte offset %zu: not a text file",
                               src, line, *u, offset + (size_t)(q - s));
        size_t n = clasp_utf8_seq(u, (size_t)(e - q));
        if (!n)
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s:%d: byte 0x%02x at byte offset %zu is not UTF-8 text", src, line,
                               *u, offset + (size_t)(q - s));
        q += n;
    }
    const char *hash = memchr(s, '#', (size_t)(e - s));
    if (hash) e = hash;
    trim(&s, &e);
    if (s == e) return CLASP_OK;
    const char *sep = memchr(s, '\t', (size_t)(e - s));
    if (!sep) sep = memchr(s, ',', (size_t)(e - s));
    if (!sep)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s:%d: expected CLASS<TAB>GROUP or CLASS,GROUP, got '%.*s'", src, line,
                           (int)(e - s > 60 ? 60 : e - s), s);
    const char *cs = s, *ce = sep, *gs = sep + 1, *ge = e;
    trim(&cs, &ce);
    trim(&gs, &ge);
    if (cs == ce)
        return clasp_error(CLASP_ERR_FORMAT, "%s:%d: no class before the separator", src, line);
    if (gs == ge)
        return clasp_error(CLASP_ERR_FORMAT, "%s:%d: no group after the separator", src, line);
    size_t cl = (size_t)(ce - cs), gl = (size_t)(ge - gs);
    if (cl >= CLASP_CLASS_NAME_MAX) /* the text is not NUL-terminated: quote a bounded part */
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s:%d: class '%.*s...' is longer than any class name (at most %d "
                           "bytes)",
                           src, line, 24, cs, CLASP_CLASS_NAME_MAX - 1);
    if (gl >= CLASP_GROUP_NAME_MAX)
        return clasp_error(CLASP_ERR_FORMAT, "%s:%d: group name longer than %d bytes", src, line,
                           CLASP_GROUP_NAME_MAX - 1);
    if (gl == strlen(CLASP_GROUPS_UNLISTED) && !memcmp(gs, CLASP_GROUPS_UNLISTED, gl))
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s:%d: the group name %s is reserved for the classes the file does "
                           "not list",
                           src, line, CLASP_GROUPS_UNLISTED);
    if (g->n_lines == CLASP_MAX_CLASSES)
        return clasp_error(CLASP_ERR_FORMAT,
                           "%s:%d: more than %d class lines (no data set has more classes)", src,
                           line, CLASP_MAX_CLASSES);
    clasp_group_line *L = &g->lines[g->n_lines];
    memcpy(L->cls, cs, cl);
    L->cls[cl] = '\0';
    L->line = line;
    for (int i = 0; i < g->n_lines; i++)
        if (!strcmp(g->lines[i].cls, L->cls))
            return clasp_error(CLASP_ERR_FORMAT,
                               "%s:%d: class '%s' is listed twice (first at line %d)", src, line,
                               L->cls, g->lines[i].line);
    int gi = 0;
    while (gi < g->n_groups && (strlen(g->names[gi]) != gl || memcmp(g->names[gi], gs, gl))) gi++;
    if (gi == g->n_groups) {
        memcpy(g->names[gi], gs, gl);
        g->names[gi][gl] = '\0';
        g->n_groups++;
    }
    L->group = gi;
    g->n_lines++;
    return CLASP_OK;
}

clasp_status clasp_class_groups_parse(const char *text, size_t len, const char *source,
                                      clasp_class_groups *out)
{
    memset(out, 0, sizeof *out);
    const char *src = source ? source : "class groups";
    if (len > CLASP_GROUPS_MAX_BYTES)
        return clasp_error(CLASP_ERR_FORMAT, "%s: larger than %d bytes", src,
                           CLASP_GROUPS_MAX_BYTES);
    if (len == 0)
        return clasp_error(CLASP_ERR_FORMAT, "%s: empty file (expected lines CLASS<TAB>GROUP)",
                           src);
    snprintf(out->source, sizeof out->source, "%s", src);
    /* One more name than groups: the unlisted classes' group. */
    out->names = calloc(CLASP_MAX_CLASSES + 1, sizeof *out->names);
    out->lines = calloc(CLASP_MAX_CLASSES, sizeof *out->lines);
    if (!out->names || !out->lines) {
        clasp_class_groups_free(out);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    size_t at = 0;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) at = 3; /* a byte-order mark */
    clasp_status st = CLASP_OK;
    for (int line = 1; st == CLASP_OK && at < len; line++) {
        const char *s = text + at, *nl = memchr(s, '\n', len - at);
        const char *e = nl ? nl : text + len;
        size_t n = (size_t)(e - s);
        if (n > 0 && e[-1] == '\r') e--, n--;
        if (n > CLASP_GROUPS_MAX_LINE)
            st = clasp_error(CLASP_ERR_FORMAT, "%s:%d: line longer than %d bytes", src, line,
                             CLASP_GROUPS_MAX_LINE);
        else st = parse_line(out, src, line, at, s, e);
        at = nl ? (size_t)(nl - text) + 1 : len;
    }
    if (st == CLASP_OK && out->n_lines == 0)
        st = clasp_error(CLASP_ERR_FORMAT,
                         "%s: lists no class (only blank lines and comments; expected lines "
                         "CLASS<TAB>GROUP)",
                         src);
    if (st != CLASP_OK) {
        clasp_class_groups_free(out);
        return st;
    }
    out->n_listed_groups = out->n_groups;
    return CLASP_OK;
}

clasp_status clasp_class_groups_read(const char *path, clasp_class_groups *out)
{
    memset(out, 0, sizeof *out);
    /* A plain file only: a FIFO or a terminal (/dev/stdin) would block
     * the plan's check; O_NONBLOCK keeps even the open from waiting. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return clasp_error(CLASP_ERR_IO, "%s: not a plain file", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return clasp_error(CLASP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    /* One byte past the limit tells a file that is too large. */
    char *buf = malloc((size_t)CLASP_GROUPS_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)CLASP_GROUPS_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    clasp_status st = bad ? clasp_error(CLASP_ERR_IO, "%s: cannot read (is it a folder?)", path)
                          : clasp_class_groups_parse(buf, n, path, out);
    free(buf);
    return st;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* The class a line names, or -1 with the error set. */
static int find_class(const clasp_class_groups *g, const clasp_group_line *L, const char *dataset,
                      int k, const char (*names)[CLASP_CLASS_NAME_MAX])
{
    const char *t = L->cls;
    if (dataset && !strcmp(dataset, "imagenet") && k == 1000)
        for (int c = 0; c < 1000; c++)
            if (!strcmp(t, clasp_imagenet_wnids[c])) return c;
    /* The exact name, then the name in any case; two classes of the same
     * name (ImageNet's two "crane"s) need the id or the index. */
    for (int pass = 0; pass < 2; pass++) {
        int found = -1;
        for (int c = 0; c < k; c++) {
            if (pass == 0 ? strcmp(t, names[c]) : strcasecmp(t, names[c])) continue;
            if (found >= 0) {
                clasp_error(CLASP_ERR_CONFIG,
                            "%s:%d: '%s' names classes %d and %d; give its index%s", g->source,
                            L->line, t, found, c,
                            dataset && !strcmp(dataset, "imagenet") ? " or WordNet id" : "");
                return -1;
            }
            found = c;
        }
        if (found >= 0) return found;
    }
    if (all_digits(t)) {
        long v = strlen(t) > 6 ? -1 : strtol(t, NULL, 10);
        if (v >= 0 && v < k) return (int)v;
        clasp_error(CLASP_ERR_CONFIG,
                    "%s:%d: class index %s is out of range (the %s data set has classes 0 to %d)",
                    g->source, L->line, t, dataset ? dataset : "", k - 1);
        return -1;
    }
    char list[600] = "";
    size_t len = 0;
    for (int c = 0; c < k && len + 40 < sizeof list; c++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", c ? ", " : "", names[c]);
    if (len + 40 >= sizeof list) snprintf(list + len, sizeof list - len, ", ...");
    clasp_error(CLASP_ERR_CONFIG, "%s:%d: unknown class '%s'; the %s data set has: %s", g->source,
                L->line, t, dataset ? dataset : "", list);
    return -1;
}

clasp_status clasp_class_groups_resolve(clasp_class_groups *g, const char *dataset, int num_classes,
                                        const char (*class_names)[CLASP_CLASS_NAME_MAX])
{
    if (num_classes < 1 || num_classes > CLASP_MAX_CLASSES || !g->lines)
        return clasp_error(CLASP_ERR_INVALID, "class groups: bad arguments");
    free(g->group_of);
    g->n_groups = g->n_listed_groups;
    g->n_unlisted = 0;
    g->num_classes = 0;
    g->group_of = malloc((size_t)num_classes * sizeof *g->group_of);
    int *line_of = malloc((size_t)num_classes * sizeof *line_of);
    if (!g->group_of || !line_of) {
        free(line_of);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    for (int c = 0; c < num_classes; c++) g->group_of[c] = -1;
    clasp_status st = CLASP_OK;
    for (int i = 0; st == CLASP_OK && i < g->n_lines; i++) {
        const clasp_group_line *L = &g->lines[i];
        int c = find_class(g, L, dataset, num_classes, class_names);
        if (c < 0) st = CLASP_ERR_CONFIG;
        else if (g->group_of[c] >= 0)
            st = clasp_error(CLASP_ERR_CONFIG,
                             "%s:%d: class %d (%s) is listed twice (first at line %d)", g->source,
                             L->line, c, class_names[c], line_of[c]);
        else g->group_of[c] = L->group, line_of[c] = L->line;
    }
    free(line_of);
    if (st != CLASP_OK) {
        free(g->group_of);
        g->group_of = NULL;
        return st;
    }
    for (int c = 0; c < num_classes; c++)
        if (g->group_of[c] < 0) g->group_of[c] = g->n_groups, g->n_unlisted++;
    if (g->n_unlisted)
        snprintf(g->names[g->n_groups++], sizeof g->names[0], "%s", CLASP_GROUPS_UNLISTED);
    g->num_classes = num_classes;
    return CLASP_OK;
}
