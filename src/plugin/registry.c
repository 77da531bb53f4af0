/* The plugin registry: finding .so files, dlopen, ABI and descriptor checks,
 * refusals, lookup by name. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clasp/registry.h"
#include "clasp_config.h"

typedef struct loaded_plugin {
    clasp_plugin_info info;
    char *path;
    char *real; /* realpath, to skip the same file met twice */
    void *handle;
} loaded_plugin;

typedef struct refused_plugin {
    clasp_plugin_refusal info;
    char *path;
    char *real; /* may be NULL when it could not be resolved */
    char *reason;
} refused_plugin;

struct clasp_registry {
    loaded_plugin *items;
    int n, cap;
    refused_plugin *refused;
    int n_refused, cap_refused;
};

uint32_t clasp_plugin_host_abi_version(void)
{
    return CLASP_PLUGIN_ABI_VERSION;
}

const char *clasp_version(void)
{
    return CLASP_VERSION;
}

const char *clasp_plugin_kind_name(clasp_plugin_kind kind)
{
    switch (kind) {
    case CLASP_PLUGIN_ATTACK: return "attack";
    case CLASP_PLUGIN_DEFENSE: return "defense";
    }
    return "unknown";
}

clasp_status clasp_registry_new(clasp_registry **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    return CLASP_OK;
}

void clasp_registry_free(clasp_registry *r)
{
    if (!r) return;
    /* Unload in reverse order, as the loader would for dependencies. */
    for (int i = r->n - 1; i >= 0; i--) {
        if (r->items[i].handle) dlclose(r->items[i].handle);
        free(r->items[i].path);
        free(r->items[i].real);
    }
    for (int i = 0; i < r->n_refused; i++) {
        free(r->refused[i].path);
        free(r->refused[i].real);
        free(r->refused[i].reason);
    }
    free(r->items);
    free(r->refused);
    free(r);
}

int clasp_registry_count(const clasp_registry *r)
{
    return r ? r->n : 0;
}

const clasp_plugin_info *clasp_registry_plugin(const clasp_registry *r, int i)
{
    if (!r || i < 0 || i >= r->n) return NULL;
    return &r->items[i].info;
}

int clasp_registry_refusal_count(const clasp_registry *r)
{
    return r ? r->n_refused : 0;
}

const clasp_plugin_refusal *clasp_registry_refusal(const clasp_registry *r, int i)
{
    if (!r || i < 0 || i >= r->n_refused) return NULL;
    return &r->refused[i].info;
}

/* Records a refusal and makes it the last error too, so a caller loading a
 * single file gets the reason directly. */
static clasp_status refuse(clasp_registry *r, const char *path, const char *real, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

static clasp_status refuse(clasp_registry *r, const char *path, const char *real, const char *fmt,
                           ...)
{
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (r->n_refused == r->cap_refused) {
        int cap = r->cap_refused ? 2 * r->cap_refused : 8;
        refused_plugin *p = realloc(r->refused, (size_t)cap * sizeof *p);
        if (!p) return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        r->refused = p, r->cap_refused = cap;
    }
    refused_plugin *f = &r->refused[r->n_refused];
    f->path = strdup(path);
    f->real = real ? strdup(real) : NULL;
    f->reason = strdup(reason);
    if (!f->path || !f->reason || (real && !f->real)) {
        free(f->path), free(f->real), free(f->reason);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    f->info.path = f->path;
    f->info.reason = f->reason;
    r->n_refused++;
    /* Pointers into the array moved with realloc: refresh them all. */
    for (int i = 0; i < r->n_refused; i++) {
        r->refused[i].info.path = r->refused[i].path;
        r->refused[i].info.reason = r->refused[i].reason;
    }
    return clasp_error(CLASP_ERR_PLUGIN, "%s: %s", path, reason);
}

static const loaded_plugin *find_loaded(const clasp_registry *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->items[i].info.desc->name, name)) return &r->items[i];
    return NULL;
}

clasp_status clasp_registry_load_file(clasp_registry *r, const char *path,
                                      clasp_plugin_origin origin)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) return refuse(r, path, NULL, "cannot open: %s", strerror(errno));
    /* The build folder is often also on CLASP_PLUGIN_PATH (the tests do
     * that): the same file met again is neither a duplicate nor news. */
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->items[i].real, real)) return CLASP_OK;
    for (int i = 0; i < r->n_refused; i++)
        if (r->refused[i].real && !strcmp(r->refused[i].real, real))
            return clasp_error(CLASP_ERR_PLUGIN, "%s: %s", path, r->refused[i].reason);

    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return refuse(r, path, real, "cannot load: %s", e ? e : "unknown dlopen error");
    }
    void *sym = dlsym(h, CLASP_PLUGIN_ENTRY_NAME);
    clasp_plugin_entry_fn entry = NULL;
    /* ISO C has no cast from object to function pointer; POSIX guarantees
     * the representations match, so copy the bits. */
    if (sym) memcpy(&entry, &sym, sizeof entry);
    if (!entry) {
        dlclose(h);
        return refuse(r, path, real,
                      "no entry symbol '%s' (define it with CLASP_PLUGIN_EXPORT, see "
                      "<clasp/plugin.h>)",
                      CLASP_PLUGIN_ENTRY_NAME);
    }
    const clasp_plugin_desc *d = entry();
    if (!d) {
        dlclose(h);
        return refuse(r, path, real, "%s() returned NULL instead of a descriptor",
                      CLASP_PLUGIN_ENTRY_NAME);
    }
    if (d->abi_version != CLASP_PLUGIN_ABI_VERSION) {
        unsigned found = d->abi_version;
        dlclose(h);
        return refuse(r, path, real,
                      "plugin ABI version mismatch: found %u, expected %d (rebuild the plugin "
                      "against this clasp's <clasp/plugin.h>)",
                      found, CLASP_PLUGIN_ABI_VERSION);
    }
    if (clasp_plugin_desc_check(d) != CLASP_OK) {
        char why[600];
        snprintf(why, sizeof why, "%s", clasp_last_error());
        dlclose(h);
        return refuse(r, path, real, "invalid descriptor: %s", why);
    }
    const loaded_plugin *prev = find_loaded(r, d->name);
    if (prev) {
        char name[80];
        snprintf(name, sizeof name, "%s", d->name);
        dlclose(h);
        if (prev->info.origin == CLASP_ORIGIN_BUILTIN && origin != CLASP_ORIGIN_BUILTIN)
            return refuse(r, path, real,
                          "plugin '%s' has the name of the built-in plugin %s; a built-in "
                          "cannot be replaced, rename this one",
                          name, prev->path);
        return refuse(r, path, real,
                      "duplicate plugin name '%s': already loaded from %s (the first one wins)",
                      name, prev->path);
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        loaded_plugin *p = realloc(r->items, (size_t)cap * sizeof *p);
        if (!p) {
            dlclose(h);
            return clasp_error(CLASP_ERR_NOMEM, "out of memory");
        }
        r->items = p, r->cap = cap;
    }
    loaded_plugin *it = &r->items[r->n];
    it->path = strdup(path);
    it->real = strdup(real);
    if (!it->path || !it->real) {
        free(it->path), free(it->real);
        dlclose(h);
        return clasp_error(CLASP_ERR_NOMEM, "out of memory");
    }
    it->handle = h;
    it->info.desc = d;
    it->info.origin = origin;
    r->n++;
    for (int i = 0; i < r->n; i++) r->items[i].info.path = r->items[i].path;
    return CLASP_OK;
}

static int has_so_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && !strcmp(name + n - 3, ".so");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the .so files of dir (and, when depth > 0, of its subfolders) to
 * *list. Returns -1 when out of memory, else 0. */
static int collect(const char *dir, int depth, char ***list, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) {
            rc = -1;
            break;
        }
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (depth > 0) rc = collect(p, depth - 1, list, n, cap);
            free(p);
        } else if (S_ISREG(sb.st_mode) && has_so_suffix(e->d_name)) {
            if (*n == *cap) {
                size_t c = *cap ? 2 * *cap : 16;
                char **l = realloc(*list, c * sizeof *l);
                if (!l) {
                    free(p);
                    rc = -1;
                    break;
                }
                *list = l, *cap = c;
            }
            (*list)[(*n)++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

clasp_status clasp_registry_load_dir(clasp_registry *r, const char *dir, clasp_plugin_origin origin)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) return CLASP_OK;
    /* A bad folder is a refusal like a bad file: recorded, not fatal. */
    clasp_status st = CLASP_OK;
    DIR *probe = NULL;
    if (!S_ISDIR(sb.st_mode))
        st = refuse(r, dir, NULL, "not a folder (plugin path entries must be folders)");
    else if (!(probe = opendir(dir)))
        st = refuse(r, dir, NULL, "cannot read the folder: %s", strerror(errno));
    if (!probe) return st == CLASP_ERR_NOMEM ? st : CLASP_OK;
    closedir(probe);
    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc = collect(dir, 1, &list, &n, &cap);
    if (rc) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
    if (n) qsort(list, n, sizeof *list, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (st == CLASP_OK) {
            clasp_status s = clasp_registry_load_file(r, list[i], origin);
            /* A refusal is recorded and the scan goes on. */
            if (s == CLASP_ERR_NOMEM) st = s;
        }
        free(list[i]);
    }
    free(list);
    return st;
}

/* Whether the running libclasp belongs to the build tree whose plugins
 * folder is CLASP_PLUGIN_BUILD_DIR. An installed library uses the installed
 * plugins instead, even when the build tree still exists. */
static int running_from_build_tree(void)
{
    static const int anchor = 0;
    Dl_info info;
    char lib[PATH_MAX], root[PATH_MAX];
    if (!dladdr(&anchor, &info) || !info.dli_fname) return 1;
    if (!realpath(info.dli_fname, lib)) return 1;
    if (!realpath(CLASP_PLUGIN_BUILD_DIR "/..", root)) return 0;
    size_t n = strlen(root);
    return !strncmp(lib, root, n) && lib[n] == '/';
}

const char *clasp_registry_builtin_dir(void)
{
    struct stat sb;
    if (stat(CLASP_PLUGIN_BUILD_DIR, &sb) == 0 && S_ISDIR(sb.st_mode) && running_from_build_tree())
        return CLASP_PLUGIN_BUILD_DIR;
    return CLASP_PLUGIN_INSTALL_DIR;
}

clasp_status clasp_registry_open_path(const char *path, clasp_registry **out)
{
    CLASP_TRY(clasp_registry_new(out));
    clasp_registry *r = *out;
    clasp_status st =
        clasp_registry_load_dir(r, clasp_registry_builtin_dir(), CLASP_ORIGIN_BUILTIN);
    if (st == CLASP_OK && path && *path) {
        char *copy = strdup(path);
        if (!copy) st = clasp_error(CLASP_ERR_NOMEM, "out of memory");
        for (char *save = NULL, *p = copy ? strtok_r(copy, ":", &save) : NULL; p && st == CLASP_OK;
             p = strtok_r(NULL, ":", &save))
            st = clasp_registry_load_dir(r, p, CLASP_ORIGIN_PATH);
        free(copy);
    }
    if (st != CLASP_OK) {
        clasp_registry_free(r);
        *out = NULL;
        return st;
    }
    clasp_error_clear();
    return CLASP_OK;
}

clasp_status clasp_registry_find(const clasp_registry *r, const char *name, clasp_plugin_kind kind,
                                 const clasp_plugin_desc **out)
{
    *out = NULL;
    const char *kname = clasp_plugin_kind_name(kind);
    if (!name || !*name) return clasp_error(CLASP_ERR_NOT_FOUND, "no %s name given", kname);
    for (int i = 0; r && i < r->n; i++) {
        const clasp_plugin_desc *d = r->items[i].info.desc;
        if (strcmp(d->name, name) != 0) continue;
        if (d->kind != kind)
            return clasp_error(CLASP_ERR_NOT_FOUND, "'%s' is a %s plugin, not %s %s (%s)", name,
                               clasp_plugin_kind_name(d->kind),
                               kind == CLASP_PLUGIN_ATTACK ? "an" : "a", kname, r->items[i].path);
        *out = d;
        return CLASP_OK;
    }
    char known[512] = "";
    size_t len = 0;
    for (int i = 0; r && i < r->n && len < sizeof known; i++) {
        const clasp_plugin_desc *d = r->items[i].info.desc;
        if (d->kind != kind) continue;
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "", d->name);
    }
    /* If a file of that name was refused, its reason is the likely answer. */
    for (int i = 0; r && i < r->n_refused; i++) {
        const char *p = r->refused[i].path, *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        size_t nl = strlen(name);
        if (!strncmp(base, name, nl) && !strcmp(base + nl, ".so"))
            return clasp_error(CLASP_ERR_NOT_FOUND, "unknown %s '%s' (%s was refused: %s)", kname,
                               name, p, r->refused[i].reason);
    }
    return clasp_error(CLASP_ERR_NOT_FOUND, "unknown %s '%s' (available: %s; see `clasp plugins`)",
                       kname, name, len ? known : "none");
}
