/* Helpers shared by the binary readers in src/data/: paths, file sizes and
 * class-name files. Not part of the public API. */
#ifndef CLASP_DATA_INTERNAL_H
#define CLASP_DATA_INTERNAL_H

#include <stddef.h>

#include "clasp/data.h"

#pragma GCC visibility push(hidden)

/* "<dir>/<name>" into buf; an error naming dir when it does not fit. */
/* The validation split's choice (clasp_dataset_split): *in_val (n bytes,
 * malloc'd) marks the n_val examples held out under `seed`. */
clasp_status clasp_data_split_mask(size_t n, size_t n_val, uint64_t seed, unsigned char **in_val);

clasp_status clasp_data_join(char *buf, size_t size, const char *dir, const char *name);

/* Size of the file at path in *size; CLASP_ERR_IO naming the path when it
 * cannot be examined (absent, unreadable). */
clasp_status clasp_data_file_size(const char *path, long long *size);

/* Sets d->class_names[0..k) from "<dir>/<file>" when it exists (one name
 * per line; blank lines and surrounding spaces ignored; exactly k names),
 * otherwise from defaults[0..k). A present but malformed file is an error
 * naming it and the line: a report with shifted class names would be worse
 * than no report. */
clasp_status clasp_data_class_names(const char *dir, const char *file, int k,
                                    const char *const *defaults, clasp_dataset *d);

#pragma GCC visibility pop

#endif
