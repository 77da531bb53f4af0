/* Internals shared by the registry, parameter and instance code. */
#ifndef CLASP_PLUGIN_INTERNAL_H
#define CLASP_PLUGIN_INTERNAL_H

#include <stddef.h>

/* Whether a function table the plugin built with its own sizeof covers
 * `member` (tables are append-only, so older plugins have shorter ones and
 * the host must not read past them). */
#define CLASP_FNS_HAS(fns, type, member) \
    ((fns)->size >= offsetof(type, member) + sizeof((fns)->member))

#endif
