/* The library's environment readers, for programs at their edge.
 *
 * Nothing in the library calls these: a context, the runner and the plugin
 * registry take their configuration as arguments (clasp_ctx_opts,
 * clasp_run_options, clasp_registry_open_path). Programs that want the
 * documented CLASP_* variables (README, Environment) to apply, like the
 * clasp command and the tests, call these once and pass the result down.
 * They are public API, so they stay in the library rather than in the
 * command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/registry.h"
#include "clasp/runtime.h"

const char *clasp_cache_dir(void)
{
    static char dir[1024];
    const char *off = getenv("CLASP_NO_CACHE");
    if (off && *off && strcmp(off, "0") != 0) return NULL;
    const char *d = getenv("CLASP_CACHE_DIR");
    if (d && !strcmp(d, "off")) return NULL;
    if (d && *d) {
        snprintf(dir, sizeof dir, "%s", d);
        return dir;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(dir, sizeof dir, "%s/clasp", xdg);
        return dir;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    snprintf(dir, sizeof dir, "%s/.cache/clasp", home);
    return dir;
}

void clasp_ctx_opts_from_env(clasp_ctx_opts *opts)
{
    clasp_ctx_opts_default(opts);
    const char *e = getenv("CLASP_DEVICE");
    if (e) snprintf(opts->device, sizeof opts->device, "%s", e);
    e = getenv("CLASP_PROFILE");
    opts->profile = e && *e && strcmp(e, "0") != 0;
    e = getenv("CLASP_TUNE");
    opts->tune = e && *e && strcmp(e, "0") != 0;
    e = getenv("CLASP_KERNELS");
    opts->kernels = e && !strcmp(e, "generic")  ? CLASP_KERNELS_GENERIC
                    : e && !strcmp(e, "vector") ? CLASP_KERNELS_VECTOR
                                                : CLASP_KERNELS_AUTO;
    e = getenv("CLASP_CONV");
    opts->conv = e && !strcmp(e, "direct")        ? CLASP_CONV_DIRECT
                 : e && !strcmp(e, "winograd")    ? CLASP_CONV_WINOGRAD
                 : e && !strcmp(e, "winograd-f2") ? CLASP_CONV_WINOGRAD_F2
                                                  : CLASP_CONV_AUTO;
    e = getenv("CLASP_PROGRAM_BINARIES");
    if (e && *e) opts->program_binaries = strcmp(e, "0") ? 1 : -1;
    e = getenv("CLASP_FOLD");
    opts->fold = !(e && !strcmp(e, "0"));
    e = getenv("CLASP_GEMM");
    if (e) snprintf(opts->gemm, sizeof opts->gemm, "%s", e);
    e = clasp_cache_dir();
    if (e) snprintf(opts->cache_dir, sizeof opts->cache_dir, "%s", e);
}

clasp_status clasp_ctx_new(const char *spec, clasp_ctx **out)
{
    clasp_ctx_opts o;
    clasp_ctx_opts_from_env(&o);
    if (spec) snprintf(o.device, sizeof o.device, "%s", spec);
    return clasp_ctx_new_opts(&o, out);
}

clasp_status clasp_registry_open(clasp_registry **out)
{
    return clasp_registry_open_path(getenv("CLASP_PLUGIN_PATH"), out);
}
