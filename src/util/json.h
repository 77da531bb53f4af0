/* Builders for json-c trees (json.c), shared by every writer of JSON text.
 *
 * Allocation failures are gathered in an int the caller passes as `bad`, so
 * a builder stays linear and checks once at the end.
 *
 * NULL rule, the same for every function here: a NULL value is JSON null,
 * never an error. json-c itself represents null as a NULL object, so a
 * value that failed to allocate would read as null too; that is why every
 * constructor below sets *bad itself when its allocation fails (and yields
 * NULL for values JSON cannot hold, such as NaN, without setting it). A
 * caller that builds a value with json-c directly checks it the same way. */
#ifndef CLASP_UTIL_JSON_H
#define CLASP_UTIL_JSON_H

#include <json-c/json.h>
#include <stdint.h>

#include "clasp/status.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Adds key: v to object o (v NULL: null); sets *bad when o is NULL or the
 * add fails (v is then released). */
void clasp_json_set(json_object *o, const char *key, json_object *v, int *bad);
/* Appends v to array arr (v NULL: null), as clasp_json_set. */
void clasp_json_push(json_object *arr, json_object *v, int *bad);

json_object *clasp_json_obj(int *bad);
json_object *clasp_json_arr(int *bad);
/* s NULL: the empty string. */
json_object *clasp_json_str(const char *s, int *bad);
json_object *clasp_json_int(int64_t v, int *bad);
json_object *clasp_json_u64(uint64_t v, int *bad);
json_object *clasp_json_bool(int v, int *bad);
/* A number with 12 significant digits and always a fraction or exponent,
 * so readers see a double (json-c's default prints 17 digits, binary noise
 * such as 0.90000000000000002); NULL (null) for NaN and infinities. */
json_object *clasp_json_num(double x, int *bad);
/* Arrays of n values; v NULL: null. Non-finite floats become null. */
json_object *clasp_json_ints(const int64_t *v, int n, int *bad);
json_object *clasp_json_floats(const float *v, int n, int *bad);

/* Writes root as pretty-printed text with a trailing newline to path,
 * atomically; CLASP_ERR_NOMEM naming path when bad is set or the text
 * cannot be made. */
clasp_status clasp_json_write(json_object *root, int bad, const char *path);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
