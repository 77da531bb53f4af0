/* Builders for json-c trees; json.h states the NULL rule they share. */
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static json_object *checked(json_object *o, int *bad)
{
    if (!o) *bad = 1;
    return o;
}

void clasp_json_set(json_object *o, const char *key, json_object *v, int *bad)
{
    if (!o || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

void clasp_json_push(json_object *arr, json_object *v, int *bad)
{
    if (!arr || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        *bad = 1;
    }
}

json_object *clasp_json_obj(int *bad)
{
    return checked(json_object_new_object(), bad);
}

json_object *clasp_json_arr(int *bad)
{
    return checked(json_object_new_array(), bad);
}

json_object *clasp_json_str(const char *s, int *bad)
{
    return checked(json_object_new_string(s ? s : ""), bad);
}

json_object *clasp_json_int(int64_t v, int *bad)
{
    return checked(json_object_new_int64(v), bad);
}

json_object *clasp_json_u64(uint64_t v, int *bad)
{
    return checked(json_object_new_uint64(v), bad);
}

json_object *clasp_json_bool(int v, int *bad)
{
    return checked(json_object_new_boolean(v != 0), bad);
}

json_object *clasp_json_num(double x, int *bad)
{
    if (!isfinite(x)) return NULL;
    char s[40];
    int n = snprintf(s, sizeof s, "%.12g", x);
    if (!strpbrk(s, ".e")) snprintf(s + n, sizeof s - (size_t)n, ".0");
    return checked(json_object_new_double_s(x, s), bad);
}

json_object *clasp_json_ints(const int64_t *v, int n, int *bad)
{
    if (!v) return NULL;
    json_object *arr = clasp_json_arr(bad);
    for (int i = 0; arr && i < n; i++) clasp_json_push(arr, clasp_json_int(v[i], bad), bad);
    return arr;
}

json_object *clasp_json_floats(const float *v, int n, int *bad)
{
    if (!v) return NULL;
    json_object *arr = clasp_json_arr(bad);
    for (int i = 0; arr && i < n; i++) clasp_json_push(arr, clasp_json_num((double)v[i], bad), bad);
    return arr;
}

clasp_status clasp_json_write(json_object *root, int bad, const char *path)
{
    const char *text =
        bad || !root ? NULL
                     : json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(text);
    /* A trailing newline keeps the file friendly to line-based tools. */
    char *copy = malloc(n + 2);
    if (!copy) return clasp_error(CLASP_ERR_NOMEM, "%s: out of memory", path);
    memcpy(copy, text, n);
    copy[n] = '\n';
    copy[n + 1] = '\0';
    clasp_status s = clasp_write_atomic(path, copy, n + 1);
    free(copy);
    return s;
}
