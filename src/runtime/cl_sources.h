/* The embedded kernel sources (generated from cl/ at build time). */
#ifndef CLASP_CL_SOURCES_H
#define CLASP_CL_SOURCES_H

typedef struct clasp_cl_source {
    const char *name;   /* file stem, e.g. "conv" */
    const char *source; /* OpenCL C text */
} clasp_cl_source;

/* Terminated by an entry with name == NULL. */
extern const clasp_cl_source clasp_cl_sources[];

#endif
