/* clasp — class groups from a mapping file (class -> group).
 *
 * The report aggregates its per-class numbers by group: CIFAR-100's 20
 * superclasses are built in, and a file of the user's replaces them for
 * any data set. The file is UTF-8 text, one class a line:
 *
 *     # comment (from '#' to the end of the line; blank lines are skipped)
 *     cat<TAB>animals
 *     3,animals
 *     n01440764, fish
 *
 * CLASS and GROUP are split at the line's first TAB, else at its first
 * comma, and trimmed of spaces and TABs; a trailing CR (CRLF files) is
 * dropped. CLASS is a class name as the data set names it (exactly, else
 * ignoring case; a name two classes share is an error), for `imagenet`
 * also a WordNet id (n01440764), or else a 0-based class index (digits
 * only). Groups are numbered in the order they first appear. Classes the
 * file does not list form one more group, "(unlisted)", at the end.
 *
 * Everything read is bounded (CLASP_GROUPS_MAX_*); a file that is empty,
 * not text, has a line without a separator, too long a line, class or
 * group name, a class listed twice or a class the data set does not have
 * is an error naming the file and line. */
#ifndef CLASP_GROUPS_H
#define CLASP_GROUPS_H

#include <stddef.h>

#include "clasp/data.h"
#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

#define CLASP_GROUPS_MAX_BYTES (1 << 20) /* the whole file */
#define CLASP_GROUPS_MAX_LINE 512        /* bytes of one line, its line break not counted */
#define CLASP_GROUP_NAME_MAX 64          /* a group name: at most 63 bytes */
/* The group of the classes a file does not list (a reserved name). */
#define CLASP_GROUPS_UNLISTED "(unlisted)"

/* One line of the file that names a class. */
typedef struct clasp_group_line {
    char cls[CLASP_CLASS_NAME_MAX]; /* as written (trimmed) */
    int group;                      /* index into names */
    int line;                       /* 1-based line of the file */
} clasp_group_line;

typedef struct clasp_class_groups {
    char source[512]; /* the file as given */
    int n_groups;     /* names in use (the unlisted group included once resolved) */
    char (*names)[CLASP_GROUP_NAME_MAX];
    int n_lines;
    clasp_group_line *lines;
    /* Filled by clasp_class_groups_resolve: */
    int num_classes;
    int *group_of;       /* [num_classes] */
    int n_unlisted;      /* classes in the "(unlisted)" group, the last one; 0: none */
    int n_listed_groups; /* the file's own groups */
} clasp_class_groups;

/* Reads and checks a mapping file (syntax, bounds, a class written twice);
 * class names are checked by clasp_class_groups_resolve. On failure *out
 * is empty and the message names the file (and line). */
clasp_status clasp_class_groups_read(const char *path, clasp_class_groups *out);

/* The same from len bytes of text; `source` names it in messages. */
clasp_status clasp_class_groups_parse(const char *text, size_t len, const char *source,
                                      clasp_class_groups *out);

/* Maps each line's class to a class of a data set (`dataset` one of
 * clasp_dataset_names, for the WordNet ids of imagenet) with num_classes
 * classes named class_names: fills group_of and the unlisted group.
 * CLASP_ERR_CONFIG at "file:line" for an unknown or ambiguous class or a
 * class listed twice. */
clasp_status clasp_class_groups_resolve(clasp_class_groups *g, const char *dataset, int num_classes,
                                        const char (*class_names)[CLASP_CLASS_NAME_MAX]);

/* Frees what g holds and zeroes it (g may be empty). */
void clasp_class_groups_free(clasp_class_groups *g);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
