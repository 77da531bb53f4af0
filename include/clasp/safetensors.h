/* clasp — the safetensors file format on the host.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * ({"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...,
 * "__metadata__": {"key": "value"}}), then the raw little-endian data.
 * F32, I32 and I64 (PyTorch's BatchNorm num_batches_tracked) tensors.
 * Writes are atomic: a temporary file in the same folder, fsync, rename. */
#ifndef CLASP_SAFETENSORS_H
#define CLASP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

#define CLASP_ST_MAX_DIMS 8

typedef enum clasp_st_dtype { CLASP_ST_F32 = 0, CLASP_ST_I32 = 1, CLASP_ST_I64 = 2 } clasp_st_dtype;

typedef struct clasp_st_tensor {
    char *name; /* owned */
    clasp_st_dtype dtype;
    int ndim;
    int64_t shape[CLASP_ST_MAX_DIMS];
    size_t numel;
    void *data; /* numel elements, owned */
} clasp_st_tensor;

typedef struct clasp_st_file {
    size_t n_tensors;
    clasp_st_tensor *tensors; /* owned, in file (header) order */
    size_t n_meta;
    char **meta_keys;   /* owned */
    char **meta_values; /* owned */
    /* After clasp_st_read: 1 when the file carried clasp's checksum
     * (metadata "clasp.crc32", written by clasp_st_write) and it matched.
     * A mismatch is a read error; 0 means a file without one (written by
     * other software or an older clasp), taken as it is. */
    int verified;
} clasp_st_file;

/* Empty file object; add tensors and metadata, then write. */
void clasp_st_init(clasp_st_file *f);

/* Appends a tensor (data copied). Duplicate names are an error. */
clasp_status clasp_st_add(clasp_st_file *f, const char *name, clasp_st_dtype dtype, int ndim,
                          const int64_t *shape, const void *data);

/* Sets a metadata string (replaces an existing key). */
clasp_status clasp_st_set_meta(clasp_st_file *f, const char *key, const char *value);

/* Writes atomically to `path` (temporary file + fsync + rename), with a
 * CRC-32 of the metadata, tensor names and data in the metadata key
 * "clasp.crc32", which clasp_st_read checks and does not return. */
clasp_status clasp_st_write(const clasp_st_file *f, const char *path);

/* Reads and validates a whole file: header length within the file, JSON
 * well formed, each entry's dtype known, shape non-negative, offsets in
 * order, inside the data area, matching numel*dtype size, not overlapping.
 * Errors name the file and what was wrong (and the tensor). */
clasp_status clasp_st_read(const char *path, clasp_st_file *out);

/* Lookups; NULL when absent. */
const clasp_st_tensor *clasp_st_find(const clasp_st_file *f, const char *name);
const char *clasp_st_meta(const clasp_st_file *f, const char *key);

/* Frees everything; safe on an initialised or zeroed file. */
void clasp_st_free(clasp_st_file *f);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif
