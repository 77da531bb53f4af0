/* Internal: a data-only interpreter for Python pickles (protocols 0-5) as
 * torch.save writes them. Nothing in the pickle is ever called: the few
 * globals on an allow-list (tensor rebuilders, storage types, OrderedDict)
 * only make REDUCE build a data value; any other global is refused at its
 * opcode, before anything else is done with the file. */
#ifndef CLASP_NN_PICKLE_H
#define CLASP_NN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/safetensors.h"
#include "clasp/status.h"

/* Bounds on what one pickle may build. */
#define PKL_MAX_STACK (1u << 20)    /* values on the stack */
#define PKL_MAX_MARKS 1024u         /* nested MARKs (nesting depth) */
#define PKL_MAX_MEMO (1u << 22)     /* memo slots */
#define PKL_MAX_VALUES (1u << 21)   /* values built in all (some 160 bytes each) */
#define PKL_MAX_STRING (64u << 20)  /* bytes of one string */
#define PKL_MAX_STORAGES (1u << 16) /* distinct storages */

typedef enum pkl_kind {
    PKL_NONE,
    PKL_BOOL,
    PKL_INT,
    PKL_FLOAT,
    PKL_STR, /* str and bytes alike */
    PKL_TUPLE,
    PKL_LIST,
    PKL_DICT,
    PKL_GLOBAL,
    PKL_STORAGE,
    PKL_TENSOR,
} pkl_kind;

/* The storage element types torch.save names (torch.<X>Storage). */
typedef enum pkl_dtype {
    PKL_F32,
    PKL_F16,
    PKL_BF16,
    PKL_F64,
    PKL_I64,
    PKL_I32,
    PKL_I16,
    PKL_I8,
    PKL_U8,
    PKL_BOOLT,
} pkl_dtype;

/* A storage the pickle refers to by key; the container supplies its bytes. */
typedef struct pkl_storage {
    char *key;
    pkl_dtype dtype;
    uint64_t numel;      /* as the pickle declares it */
    const uint8_t *data; /* set by the container reader */
    uint64_t n_bytes;
    void *owned; /* buffer to free, if the container copied the bytes */
} pkl_storage;

typedef struct pkl_value pkl_value;

struct pkl_value {
    pkl_kind kind;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        struct {
            char *s; /* NUL-terminated copy */
            size_t len;
        } str;
        struct {
            pkl_value **items; /* TUPLE, LIST: items; DICT: key, value pairs */
            size_t n, cap;     /* n counts pointers (2 per dict entry) */
        } seq;
        int global;     /* PKL_GLOBAL: index into the allow-list */
        size_t storage; /* PKL_STORAGE: index into the storage table */
        struct {
            size_t storage;
            int64_t offset;
            int ndim;
            int64_t shape[CLASP_ST_MAX_DIMS];
            int64_t stride[CLASP_ST_MAX_DIMS];
        } tensor;
    } u;
};

/* All values of one or more pickles; freed together. */
typedef struct pkl_ctx {
    const char *name; /* for messages: "x.pt: data.pkl" */
    pkl_value **all;
    size_t n_all, cap_all;
    pkl_storage *storages;
    size_t n_storages;
    int legacy; /* persistent ids carry the 6th view_metadata item */
} pkl_ctx;

void pkl_init(pkl_ctx *c, const char *name);
void pkl_free(pkl_ctx *c);

/* Runs one pickle from buf[0..len) up to its STOP; *used = bytes consumed.
 * *out is the value left on the stack (owned by the context). Errors name
 * c->name and the byte offset (base + position in buf). */
clasp_status pkl_run(pkl_ctx *c, const uint8_t *buf, size_t len, uint64_t base, pkl_value **out,
                     size_t *used);

/* Bytes per element of a storage dtype. */
size_t pkl_dtype_size(pkl_dtype d);
const char *pkl_dtype_name(pkl_dtype d);

#endif
