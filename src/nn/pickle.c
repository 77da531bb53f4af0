/* clasp — a data-only pickle interpreter for torch.save files.
 *
 * Python's unpickler imports and calls whatever the pickle names, which is
 * why loading a .pt file from the internet can run code. This one knows a
 * short allow-list of names (the ones torch.save emits for state dicts,
 * optimizer states and training checkpoints) and turns a REDUCE of them into
 * a plain value (a tensor descriptor, an empty dict); any other name stops
 * the read at its GLOBAL opcode, with the name and the byte offset. Every
 * read is bounded by the buffer, and the stack, memo, nesting and value
 * count by the PKL_MAX_* limits. */
#include "nn/pickle.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ allow-list */

enum {
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE,
    G_ORDERED_DICT,
    G_STORAGE0, /* the storage types follow, in pkl_dtype order */
};

typedef struct pkl_global {
    const char *module, *name;
} pkl_global;

static const pkl_global pkl_globals[] = {
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"collections", "OrderedDict"},
    {"torch", "FloatStorage"},
    {"torch", "HalfStorage"},
    {"torch", "BFloat16Storage"},
    {"torch", "DoubleStorage"},
    {"torch", "LongStorage"},
    {"torch", "IntStorage"},
    {"torch", "ShortStorage"},
    {"torch", "CharStorage"},
    {"torch", "ByteStorage"},
    {"torch", "BoolStorage"},
};
#define PKL_N_GLOBALS (sizeof pkl_globals / sizeof pkl_globals[0])

static const char *const pkl_dtype_names[] = {"float32", "float16", "bfloat16", "float64", "int64",
                                              "int32",   "int16",   "int8",     "uint8",   "bool"};
static const unsigned char pkl_dtype_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

size_t pkl_dtype_size(pkl_dtype d)
{
    return pkl_dtype_sizes[d];
}

const char *pkl_dtype_name(pkl_dtype d)
{
    return pkl_dtype_names[d];
}

/* ---------------------------------------------------------------- values */

void pkl_init(pkl_ctx *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
}

void pkl_free(pkl_ctx *c)
{
    for (size_t i = 0; i < c->n_all; i++) {
        pkl_value *v = c->all[i];
        if (v->kind == PKL_STR) free(v->u.str.s);
        if (v->kind == PKL_TUPLE || v->kind == PKL_LIST || v->kind == PKL_DICT)
            free(v->u.seq.items);
        free(v);
    }
    free(c->all);
    for (size_t i = 0; i < c->n_storages; i++) {
        free(c->storages[i].key);
        free(c->storages[i].owned);
    }
    free(c->storages);
    const char *name = c->name;
    pkl_init(c, name);
}

/* The running machine: the buffer, the stack, marks and memo. */
typedef struct pkl_vm {
    pkl_ctx *c;
    const uint8_t *buf;
    size_t len, pos;
    uint64_t base;
    size_t op_at; /* offset of the opcode being run */
    pkl_value **stack;
    size_t sp, stack_cap;
    size_t marks[PKL_MAX_MARKS];
    size_t n_marks;
    pkl_value **memo;
    size_t memo_cap, memo_used;
} pkl_vm;

#define PKL_FAIL(vm, ...) pkl_fail(vm, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static clasp_status pkl_fail(pkl_vm *vm, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return clasp_error(CLASP_ERR_FORMAT, "%s: pickle byte %" PRIu64 " (opcode 0x%02x): %s",
                       vm->c->name, vm->base + vm->op_at,
                       vm->op_at < vm->len ? vm->buf[vm->op_at] : 0, msg);
}

static pkl_value *pkl_new(pkl_vm *vm, pkl_kind kind)
{
    pkl_ctx *c = vm->c;
    if (c->n_all >= PKL_MAX_VALUES) return NULL;
    if (c->n_all == c->cap_all) {
        size_t cap = c->cap_all ? c->cap_all * 2 : 256;
        pkl_value **all = realloc(c->all, cap * sizeof *all);
        if (!all) return NULL;
        c->all = all;
        c->cap_all = cap;
    }
    pkl_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    c->all[c->n_all++] = v;
    return v;
}

static clasp_status pkl_nomem(pkl_vm *vm)
{
    if (vm->c->n_all >= PKL_MAX_VALUES)
        return PKL_FAIL(vm, "more than %u values, expected a smaller pickle", PKL_MAX_VALUES);
    return clasp_error(CLASP_ERR_NOMEM, "%s: pickle byte %" PRIu64 ": out of memory", vm->c->name,
                       vm->base + vm->op_at);
}

static clasp_status pkl_push(pkl_vm *vm, pkl_value *v)
{
    if (!v) return pkl_nomem(vm);
    if (vm->sp >= PKL_MAX_STACK) return PKL_FAIL(vm, "stack deeper than %u values", PKL_MAX_STACK);
    if (vm->sp == vm->stack_cap) {
        size_t cap = vm->stack_cap ? vm->stack_cap * 2 : 64;
        pkl_value **s = realloc(vm->stack, cap * sizeof *s);
        if (!s) return pkl_nomem(vm);
        vm->stack = s;
        vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = v;
    return CLASP_OK;
}

/* Values above the innermost mark (if any) must cover n. */
static size_t pkl_floor(const pkl_vm *vm)
{
    return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
}

static clasp_status pkl_pop(pkl_vm *vm, pkl_value **v)
{
    if (vm->sp <= pkl_floor(vm)) return PKL_FAIL(vm, "stack underflow, expected a value");
    *v = vm->stack[--vm->sp];
    return CLASP_OK;
}

static clasp_status pkl_top(pkl_vm *vm, pkl_value **v)
{
    if (vm->sp <= pkl_floor(vm)) return PKL_FAIL(vm, "stack underflow, expected a value");
    *v = vm->stack[vm->sp - 1];
    return CLASP_OK;
}

/* Pops to the innermost mark; items are stack[*from .. sp). */
static clasp_status pkl_pop_mark(pkl_vm *vm, size_t *from)
{
    if (!vm->n_marks) return PKL_FAIL(vm, "no MARK before this opcode");
    *from = vm->marks[--vm->n_marks];
    return CLASP_OK;
}

static clasp_status pkl_seq_add(pkl_vm *vm, pkl_value *seq, pkl_value *item)
{
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 8;
        pkl_value **items = realloc(seq->u.seq.items, cap * sizeof *items);
        if (!items) return pkl_nomem(vm);
        seq->u.seq.items = items;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return CLASP_OK;
}

static clasp_status pkl_make_seq(pkl_vm *vm, pkl_kind kind, size_t from, pkl_value **out)
{
    pkl_value *t = pkl_new(vm, kind);
    if (!t) return pkl_nomem(vm);
    for (size_t i = from; i < vm->sp; i++) CLASP_TRY(pkl_seq_add(vm, t, vm->stack[i]));
    vm->sp = from;
    *out = t;
    return CLASP_OK;
}

/* ---------------------------------------------------------------- reads */

static clasp_status pkl_need(pkl_vm *vm, size_t n, const char *what)
{
    if (vm->len - vm->pos < n)
        return PKL_FAIL(vm, "truncated: %zu bytes left, expected %zu for %s", vm->len - vm->pos, n,
                        what);
    return CLASP_OK;
}

static uint64_t pkl_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static clasp_status pkl_uint(pkl_vm *vm, int n, uint64_t *v)
{
    CLASP_TRY(pkl_need(vm, (size_t)n, "the operand"));
    *v = pkl_le(vm->buf + vm->pos, n);
    vm->pos += (size_t)n;
    return CLASP_OK;
}

/* A text operand up to '\n' (protocol 0 opcodes); *len excludes it. */
static clasp_status pkl_line(pkl_vm *vm, const char **s, size_t *len)
{
    const uint8_t *start = vm->buf + vm->pos;
    const uint8_t *nl = memchr(start, '\n', vm->len - vm->pos);
    if (!nl) return PKL_FAIL(vm, "truncated: expected a line ending in '\\n'");
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    if (*len > PKL_MAX_STRING) return PKL_FAIL(vm, "line longer than %u bytes", PKL_MAX_STRING);
    vm->pos += *len + 1;
    return CLASP_OK;
}

static clasp_status pkl_push_str(pkl_vm *vm, const char *s, size_t len)
{
    pkl_value *v = pkl_new(vm, PKL_STR);
    if (!v) return pkl_nomem(vm);
    v->u.str.s = malloc(len + 1);
    if (!v->u.str.s) return pkl_nomem(vm);
    memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = 0;
    v->u.str.len = len;
    return pkl_push(vm, v);
}

/* A counted string operand: n-byte little-endian length, then the bytes. */
static clasp_status pkl_counted(pkl_vm *vm, int n)
{
    uint64_t len;
    CLASP_TRY(pkl_uint(vm, n, &len));
    if (len > PKL_MAX_STRING)
        return PKL_FAIL(vm, "string of %" PRIu64 " bytes, expected at most %u", len,
                        PKL_MAX_STRING);
    CLASP_TRY(pkl_need(vm, (size_t)len, "the string"));
    const char *s = (const char *)vm->buf + vm->pos;
    vm->pos += (size_t)len;
    return pkl_push_str(vm, s, (size_t)len);
}

static clasp_status pkl_push_int(pkl_vm *vm, pkl_kind kind, int64_t i)
{
    pkl_value *v = pkl_new(vm, kind);
    if (!v) return pkl_nomem(vm);
    v->u.i = i;
    return pkl_push(vm, v);
}

/* LONG1/LONG4: little-endian two's complement of n bytes; beyond 64 bits
 * it is refused (no torch value needs it). */
static clasp_status pkl_long(pkl_vm *vm, int n)
{
    uint64_t len;
    CLASP_TRY(pkl_uint(vm, n, &len));
    if (len > 8) return PKL_FAIL(vm, "integer of %" PRIu64 " bytes, expected at most 8", len);
    CLASP_TRY(pkl_need(vm, (size_t)len, "the integer"));
    uint64_t v = pkl_le(vm->buf + vm->pos, (int)len);
    if (len > 0 && len < 8 && (vm->buf[vm->pos + len - 1] & 0x80)) v |= ~0ull << (8 * len);
    vm->pos += (size_t)len;
    return pkl_push_int(vm, PKL_INT, (int64_t)v);
}

/* Protocol-0 INT/LONG text: decimal, "I01"/"I00" for booleans, "L" suffix. */
static clasp_status pkl_text_int(pkl_vm *vm)
{
    const char *s;
    size_t len;
    CLASP_TRY(pkl_line(vm, &s, &len));
    if (len == 2 && (s[0] == '0') && (s[1] == '0' || s[1] == '1'))
        return pkl_push_int(vm, PKL_BOOL, s[1] == '1');
    if (len && s[len - 1] == 'L') len--;
    bool neg = len && s[0] == '-';
    size_t i = neg || (len && s[0] == '+');
    if (i == len || len - i > 19) return PKL_FAIL(vm, "expected a decimal integer");
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return PKL_FAIL(vm, "expected a decimal integer");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return PKL_FAIL(vm, "integer beyond 64 bits");
    return pkl_push_int(vm, PKL_INT, neg ? -(int64_t)v : (int64_t)v);
}

static clasp_status pkl_push_float(pkl_vm *vm, double f)
{
    pkl_value *v = pkl_new(vm, PKL_FLOAT);
    if (!v) return pkl_nomem(vm);
    v->u.f = f;
    return pkl_push(vm, v);
}

/* ----------------------------------------------------------------- memo */

static clasp_status pkl_memo_put(pkl_vm *vm, uint64_t idx)
{
    pkl_value *v = NULL;
    CLASP_TRY(pkl_top(vm, &v));
    if (idx >= PKL_MAX_MEMO)
        return PKL_FAIL(vm, "memo index %" PRIu64 ", expected below %u", idx, PKL_MAX_MEMO);
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        pkl_value **m = realloc(vm->memo, cap * sizeof *m);
        if (!m) return pkl_nomem(vm);
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->memo = m;
        vm->memo_cap = cap;
    }
    vm->memo_used += vm->memo[idx] == NULL;
    vm->memo[idx] = v;
    return CLASP_OK;
}

static clasp_status pkl_memo_get(pkl_vm *vm, uint64_t idx)
{
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return PKL_FAIL(vm, "memo index %" PRIu64 " was never stored", idx);
    return pkl_push(vm, vm->memo[idx]);
}

static clasp_status pkl_text_index(pkl_vm *vm, uint64_t *idx)
{
    const char *s;
    size_t len;
    CLASP_TRY(pkl_line(vm, &s, &len));
    if (!len || len > 9) return PKL_FAIL(vm, "expected a memo index");
    *idx = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return PKL_FAIL(vm, "expected a memo index");
        *idx = *idx * 10 + (uint64_t)(s[i] - '0');
    }
    return CLASP_OK;
}

/* -------------------------------------------------------------- globals */

static clasp_status pkl_lookup_global(pkl_vm *vm, const char *mod, size_t mod_len, const char *name,
                                      size_t name_len)
{
    for (size_t g = 0; g < PKL_N_GLOBALS; g++)
        if (strlen(pkl_globals[g].module) == mod_len &&
            !memcmp(pkl_globals[g].module, mod, mod_len) &&
            strlen(pkl_globals[g].name) == name_len &&
            !memcmp(pkl_globals[g].name, name, name_len)) {
            pkl_value *v = pkl_new(vm, PKL_GLOBAL);
            if (!v) return pkl_nomem(vm);
            v->u.global = (int)g;
            return pkl_push(vm, v);
        }
    /* Printed with %.*s and a cap: the name is untrusted and may hold
     * anything, including NULs. */
    int ml = mod_len > 80 ? 80 : (int)mod_len, nl = name_len > 80 ? 80 : (int)name_len;
    return PKL_FAIL(vm,
                    "refusing global %.*s.%.*s: not a tensor, storage or OrderedDict "
                    "(only plain data is read from PyTorch files, nothing is imported or "
                    "called)",
                    ml, mod, nl, name);
}

static clasp_status pkl_text_global(pkl_vm *vm)
{
    const char *mod, *name;
    size_t ml, nl;
    CLASP_TRY(pkl_line(vm, &mod, &ml));
    CLASP_TRY(pkl_line(vm, &name, &nl));
    return pkl_lookup_global(vm, mod, ml, name, nl);
}

static clasp_status pkl_stack_global(pkl_vm *vm)
{
    pkl_value *name = NULL, *mod = NULL;
    CLASP_TRY(pkl_pop(vm, &name));
    CLASP_TRY(pkl_pop(vm, &mod));
    if (name->kind != PKL_STR || mod->kind != PKL_STR)
        return PKL_FAIL(vm, "STACK_GLOBAL expects two strings");
    return pkl_lookup_global(vm, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
}

/* ------------------------------------------------- persistent ids, REDUCE */

static bool pkl_is_str(const pkl_value *v, const char *s)
{
    return v->kind == PKL_STR && v->u.str.len == strlen(s) && !memcmp(v->u.str.s, s, v->u.str.len);
}

static bool pkl_is_int(const pkl_value *v)
{
    return v->kind == PKL_INT || v->kind == PKL_BOOL;
}

/* ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
static clasp_status pkl_persid(pkl_vm *vm)
{
    pkl_value *pid = NULL;
    CLASP_TRY(pkl_pop(vm, &pid));
    if (pid->kind != PKL_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6 ||
        !pkl_is_str(pid->u.seq.items[0], "storage"))
        return PKL_FAIL(vm, "persistent id is not a ('storage', type, key, location, numel) tuple");
    pkl_value **it = pid->u.seq.items;
    if (it[1]->kind != PKL_GLOBAL || it[1]->u.global < G_STORAGE0)
        return PKL_FAIL(vm, "persistent id: item 1 is not a torch storage type");
    if (it[2]->kind != PKL_STR || !pkl_is_int(it[4]) || it[4]->u.i < 0)
        return PKL_FAIL(vm, "persistent id: expected a string key and a non-negative size");
    if (pid->u.seq.n == 6 && it[5]->kind != PKL_NONE)
        return PKL_FAIL(vm, "persistent id: storage views of PyTorch before 0.4 are not "
                            "supported");
    pkl_dtype dt = (pkl_dtype)(it[1]->u.global - G_STORAGE0);
    pkl_ctx *c = vm->c;
    size_t k = 0;
    for (; k < c->n_storages; k++)
        if (!strcmp(c->storages[k].key, it[2]->u.str.s)) break;
    if (k < c->n_storages) {
        if (c->storages[k].dtype != dt || c->storages[k].numel != (uint64_t)it[4]->u.i)
            return PKL_FAIL(vm, "storage \"%.40s\" named again with another type or size",
                            it[2]->u.str.s);
    } else {
        if (c->n_storages >= PKL_MAX_STORAGES)
            return PKL_FAIL(vm, "more than %u storages", PKL_MAX_STORAGES);
        pkl_storage *s = realloc(c->storages, (c->n_storages + 1) * sizeof *s);
        if (!s) return pkl_nomem(vm);
        c->storages = s;
        memset(&s[k], 0, sizeof s[k]);
        s[k].key = strdup(it[2]->u.str.s);
        if (!s[k].key) return pkl_nomem(vm);
        s[k].dtype = dt;
        s[k].numel = (uint64_t)it[4]->u.i;
        c->n_storages++;
    }
    pkl_value *v = pkl_new(vm, PKL_STORAGE);
    if (!v) return pkl_nomem(vm);
    v->u.storage = k;
    return pkl_push(vm, v);
}

static clasp_status pkl_int_tuple(pkl_vm *vm, const pkl_value *t, const char *what, int64_t *out,
                                  int *n)
{
    if (t->kind != PKL_TUPLE && t->kind != PKL_LIST)
        return PKL_FAIL(vm, "tensor %s is not a tuple", what);
    if (t->u.seq.n > CLASP_ST_MAX_DIMS)
        return PKL_FAIL(vm, "tensor with %zu dimensions, expected at most %d", t->u.seq.n,
                        CLASP_ST_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (!pkl_is_int(t->u.seq.items[i]) || t->u.seq.items[i]->u.i < 0)
            return PKL_FAIL(vm, "tensor %s[%zu] is not a non-negative integer", what, i);
        out[i] = t->u.seq.items[i]->u.i;
    }
    *n = (int)t->u.seq.n;
    return CLASP_OK;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]). */
static clasp_status pkl_rebuild_tensor(pkl_vm *vm, const pkl_value *args, pkl_value **out)
{
    if (args->u.seq.n < 4)
        return PKL_FAIL(vm, "_rebuild_tensor_v2 expects at least 4 arguments, got %zu",
                        args->u.seq.n);
    pkl_value **a = args->u.seq.items;
    if (a[0]->kind != PKL_STORAGE) return PKL_FAIL(vm, "_rebuild_tensor_v2: no storage");
    if (!pkl_is_int(a[1]) || a[1]->u.i < 0)
        return PKL_FAIL(vm, "_rebuild_tensor_v2: storage offset is not a non-negative integer");
    pkl_value *t = pkl_new(vm, PKL_TENSOR);
    if (!t) return pkl_nomem(vm);
    t->u.tensor.storage = a[0]->u.storage;
    t->u.tensor.offset = a[1]->u.i;
    int ns, nd;
    CLASP_TRY(pkl_int_tuple(vm, a[2], "size", t->u.tensor.shape, &ns));
    CLASP_TRY(pkl_int_tuple(vm, a[3], "stride", t->u.tensor.stride, &nd));
    if (ns != nd) return PKL_FAIL(vm, "tensor has %d sizes but %d strides", ns, nd);
    t->u.tensor.ndim = ns;
    *out = t;
    return CLASP_OK;
}

static clasp_status pkl_reduce(pkl_vm *vm)
{
    pkl_value *args = NULL, *fn = NULL, *out = NULL;
    CLASP_TRY(pkl_pop(vm, &args));
    CLASP_TRY(pkl_pop(vm, &fn));
    if (fn->kind != PKL_GLOBAL) return PKL_FAIL(vm, "REDUCE of a value that is not a global");
    if (args->kind != PKL_TUPLE) return PKL_FAIL(vm, "REDUCE arguments are not a tuple");
    switch (fn->u.global) {
    case G_REBUILD_TENSOR_V2: CLASP_TRY(pkl_rebuild_tensor(vm, args, &out)); break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (args->u.seq.n < 1 || args->u.seq.items[0]->kind != PKL_TENSOR)
            return PKL_FAIL(vm, "%s expects a tensor", pkl_globals[fn->u.global].name);
        out = args->u.seq.items[0];
        break;
    case G_ORDERED_DICT:
        /* OrderedDict() or OrderedDict([(k, v), ...]). */
        out = pkl_new(vm, PKL_DICT);
        if (!out) return pkl_nomem(vm);
        if (args->u.seq.n == 1 && args->u.seq.items[0]->kind == PKL_LIST) {
            const pkl_value *l = args->u.seq.items[0];
            for (size_t i = 0; i < l->u.seq.n; i++) {
                const pkl_value *p = l->u.seq.items[i];
                if ((p->kind != PKL_TUPLE && p->kind != PKL_LIST) || p->u.seq.n != 2)
                    return PKL_FAIL(vm, "OrderedDict item %zu is not a pair", i);
                CLASP_TRY(pkl_seq_add(vm, out, p->u.seq.items[0]));
                CLASP_TRY(pkl_seq_add(vm, out, p->u.seq.items[1]));
            }
        } else if (args->u.seq.n != 0)
            return PKL_FAIL(vm, "OrderedDict expects no argument or a list of pairs");
        break;
    default:
        return PKL_FAIL(vm, "REDUCE of %s.%s, expected a tensor rebuild or OrderedDict",
                        pkl_globals[fn->u.global].module, pkl_globals[fn->u.global].name);
    }
    return pkl_push(vm, out);
}

/* ------------------------------------------------------------- the loop */

static clasp_status pkl_setitems(pkl_vm *vm, size_t from)
{
    if (from == 0 || from > vm->sp || (vm->sp - from) % 2)
        return PKL_FAIL(vm, "SETITEM(S) expects a dict and key/value pairs");
    pkl_value *d = vm->stack[from - 1];
    if (d->kind != PKL_DICT) return PKL_FAIL(vm, "SETITEM(S) on a value that is not a dict");
    for (size_t i = from; i < vm->sp; i++) CLASP_TRY(pkl_seq_add(vm, d, vm->stack[i]));
    vm->sp = from;
    return CLASP_OK;
}

static clasp_status pkl_appends(pkl_vm *vm, size_t from)
{
    if (from == 0 || from > vm->sp) return PKL_FAIL(vm, "APPEND(S) expects a list");
    pkl_value *l = vm->stack[from - 1];
    if (l->kind != PKL_LIST) return PKL_FAIL(vm, "APPEND(S) on a value that is not a list");
    for (size_t i = from; i < vm->sp; i++) CLASP_TRY(pkl_seq_add(vm, l, vm->stack[i]));
    vm->sp = from;
    return CLASP_OK;
}

/* Runs one opcode; *stop is set at STOP. */
static clasp_status pkl_step(pkl_vm *vm, bool *stop)
{
    uint64_t n = 0;
    size_t from = 0;
    pkl_value *a = NULL, *b = NULL;
    vm->op_at = vm->pos;
    uint8_t op = vm->buf[vm->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        CLASP_TRY(pkl_uint(vm, 1, &n));
        if (n > 5) return PKL_FAIL(vm, "pickle protocol %" PRIu64 ", expected 0 to 5", n);
        return CLASP_OK;
    case 0x95: /* FRAME: a length hint only */ return pkl_uint(vm, 8, &n);
    case '.': *stop = true; return CLASP_OK;
    case '(':
        if (vm->n_marks >= PKL_MAX_MARKS)
            return PKL_FAIL(vm, "MARKs nested deeper than %u", PKL_MAX_MARKS);
        vm->marks[vm->n_marks++] = vm->sp;
        return CLASP_OK;
    case '0': return pkl_pop(vm, &a);
    case '1':
        CLASP_TRY(pkl_pop_mark(vm, &from));
        vm->sp = from;
        return CLASP_OK;
    case '2': CLASP_TRY(pkl_top(vm, &a)); return pkl_push(vm, a);
    case 'N': return pkl_push(vm, pkl_new(vm, PKL_NONE));
    case 0x88: return pkl_push_int(vm, PKL_BOOL, 1);
    case 0x89: return pkl_push_int(vm, PKL_BOOL, 0);
    case 'K': CLASP_TRY(pkl_uint(vm, 1, &n)); return pkl_push_int(vm, PKL_INT, (int64_t)n);
    case 'M': CLASP_TRY(pkl_uint(vm, 2, &n)); return pkl_push_int(vm, PKL_INT, (int64_t)n);
    case 'J':
        CLASP_TRY(pkl_uint(vm, 4, &n));
        return pkl_push_int(vm, PKL_INT, (int64_t)(int32_t)(uint32_t)n);
    case 0x8a: return pkl_long(vm, 1);
    case 0x8b: return pkl_long(vm, 4);
    case 'I':
    case 'L': return pkl_text_int(vm);
    case 'G': {
        CLASP_TRY(pkl_need(vm, 8, "the float"));
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | vm->buf[vm->pos + (size_t)i];
        vm->pos += 8;
        double f;
        memcpy(&f, &bits, sizeof f);
        return pkl_push_float(vm, f);
    }
    case 'F': {
        const char *s;
        size_t len;
        CLASP_TRY(pkl_line(vm, &s, &len));
        char tmp[64];
        if (len >= sizeof tmp) return PKL_FAIL(vm, "expected a decimal float");
        memcpy(tmp, s, len);
        tmp[len] = 0;
        char *end;
        double f = strtod(tmp, &end);
        if (end == tmp || *end) return PKL_FAIL(vm, "expected a decimal float");
        return pkl_push_float(vm, f);
    }
    case 'X':
    case 'T':
    case 'B': return pkl_counted(vm, 4);
    case 0x8c:
    case 'U':
    case 'C': return pkl_counted(vm, 1);
    case 0x8d:
    case 0x8e:
    case 0x96: return pkl_counted(vm, 8);
    case 'V':
    case 'S': {
        const char *s;
        size_t len;
        CLASP_TRY(pkl_line(vm, &s, &len));
        /* STRING is quoted repr text; its quotes are dropped, escapes kept. */
        if (op == 'S' && len >= 2 && (s[0] == '\'' || s[0] == '"') && s[len - 1] == s[0]) {
            s++;
            len -= 2;
        }
        return pkl_push_str(vm, s, len);
    }
    case '}': return pkl_push(vm, pkl_new(vm, PKL_DICT));
    case ']':
    case 0x8f: /* EMPTY_SET, read as a list */ return pkl_push(vm, pkl_new(vm, PKL_LIST));
    case ')': return pkl_push(vm, pkl_new(vm, PKL_TUPLE));
    case 't':
    case 'l':
    case 'd':
    case 0x91: /* FROZENSET */
        CLASP_TRY(pkl_pop_mark(vm, &from));
        if (op == 'd') {
            if ((vm->sp - from) % 2) return PKL_FAIL(vm, "DICT with an odd number of items");
            CLASP_TRY(pkl_make_seq(vm, PKL_DICT, from, &a));
        } else CLASP_TRY(pkl_make_seq(vm, op == 't' ? PKL_TUPLE : PKL_LIST, from, &a));
        return pkl_push(vm, a);
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(op - 0x84);
        if (vm->sp - pkl_floor(vm) < k)
            return PKL_FAIL(vm, "stack underflow, expected %zu values", k);
        CLASP_TRY(pkl_make_seq(vm, PKL_TUPLE, vm->sp - k, &a));
        return pkl_push(vm, a);
    }
    case 's':
        if (vm->sp - pkl_floor(vm) < 3) return PKL_FAIL(vm, "SETITEM expects dict, key, value");
        return pkl_setitems(vm, vm->sp - 2);
    case 'u':
    case 0x90: /* ADDITEMS (a set read as a list) */
        CLASP_TRY(pkl_pop_mark(vm, &from));
        return op == 'u' ? pkl_setitems(vm, from) : pkl_appends(vm, from);
    case 'a':
        if (vm->sp - pkl_floor(vm) < 2) return PKL_FAIL(vm, "APPEND expects list, value");
        return pkl_appends(vm, vm->sp - 1);
    case 'e': CLASP_TRY(pkl_pop_mark(vm, &from)); return pkl_appends(vm, from);
    case 'q': CLASP_TRY(pkl_uint(vm, 1, &n)); return pkl_memo_put(vm, n);
    case 'r': CLASP_TRY(pkl_uint(vm, 4, &n)); return pkl_memo_put(vm, n);
    case 'p': CLASP_TRY(pkl_text_index(vm, &n)); return pkl_memo_put(vm, n);
    case 0x94: /* MEMOIZE: at the next index, the count of stored slots */
        return pkl_memo_put(vm, vm->memo_used);
    case 'h': CLASP_TRY(pkl_uint(vm, 1, &n)); return pkl_memo_get(vm, n);
    case 'j': CLASP_TRY(pkl_uint(vm, 4, &n)); return pkl_memo_get(vm, n);
    case 'g': CLASP_TRY(pkl_text_index(vm, &n)); return pkl_memo_get(vm, n);
    case 'c': return pkl_text_global(vm);
    case 0x93: return pkl_stack_global(vm);
    case 'R': return pkl_reduce(vm);
    case 'b':
        /* BUILD sets attributes (an OrderedDict's _metadata, a Parameter's
         * state): read and dropped. */
        CLASP_TRY(pkl_pop(vm, &a));
        CLASP_TRY(pkl_top(vm, &b));
        if (b->kind != PKL_DICT && b->kind != PKL_TENSOR)
            return PKL_FAIL(vm, "BUILD on a value that is not a dict or tensor");
        return CLASP_OK;
    case 0x81: /* NEWOBJ cls args */
        CLASP_TRY(pkl_pop(vm, &a));
        CLASP_TRY(pkl_pop(vm, &b));
        if (b->kind != PKL_GLOBAL || b->u.global != G_ORDERED_DICT || a->kind != PKL_TUPLE ||
            a->u.seq.n)
            return PKL_FAIL(vm, "NEWOBJ of a class other than OrderedDict()");
        return pkl_push(vm, pkl_new(vm, PKL_DICT));
    case 'Q': return pkl_persid(vm);
    case 'P': return PKL_FAIL(vm, "text persistent ids are not written by torch.save; refused");
    case 'i':
    case 'o':
    case 0x92: return PKL_FAIL(vm, "INST/OBJ/NEWOBJ_EX build arbitrary objects; refused");
    case 0x82:
    case 0x83:
    case 0x84: return PKL_FAIL(vm, "extension registry codes (EXT1/2/4) name globals; refused");
    case 0x97:
    case 0x98: return PKL_FAIL(vm, "out-of-band buffers are not supported");
    default: return PKL_FAIL(vm, "unknown pickle opcode");
    }
}

clasp_status pkl_run(pkl_ctx *c, const uint8_t *buf, size_t len, uint64_t base, pkl_value **out,
                     size_t *used)
{
    pkl_vm vm = {.c = c, .buf = buf, .len = len, .base = base};
    clasp_status s = CLASP_OK;
    bool stop = false;
    while (s == CLASP_OK && !stop) {
        if (vm.pos >= vm.len) {
            vm.op_at = vm.pos;
            s = PKL_FAIL(&vm, "truncated: the pickle ends without STOP");
            break;
        }
        s = pkl_step(&vm, &stop);
    }
    if (s == CLASP_OK && (vm.sp != 1 || vm.n_marks))
        s = PKL_FAIL(&vm, "STOP with %zu values and %zu marks on the stack, expected one value",
                     vm.sp, vm.n_marks);
    if (s == CLASP_OK) {
        *out = vm.stack[0];
        *used = vm.pos;
    }
    free(vm.stack);
    free(vm.memo);
    return s;
}
