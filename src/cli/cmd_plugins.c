/* clasp plugins: every loaded attack and defense with its parameters, and
 * every refused file with the reason. Refusals are reported, not fatal:
 * the command exits 0 as long as the registry itself could be built. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clasp/registry.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: clasp plugins [NAME]\n"
               "Lists attack and defense plugins (or only NAME) with their parameters, and\n"
               "plugin files that were refused. Plugins come from the built-in folder and\n"
               "the folders of CLASP_PLUGIN_PATH (':'-separated).\n");
}

static void fmt_num(char *buf, size_t size, double v)
{
    if (isinf(v)) snprintf(buf, size, "%s", v > 0 ? "inf" : "-inf");
    else snprintf(buf, size, "%g", v);
}

static void print_param(const clasp_param_spec *s)
{
    char def[64], range[96], lo[32], hi[32];
    switch (s->type) {
    case CLASP_PARAM_BOOL:
        snprintf(def, sizeof def, "%s", s->def != 0 ? "true" : "false");
        snprintf(range, sizeof range, "true/false");
        break;
    case CLASP_PARAM_STRING:
        snprintf(def, sizeof def, "\"%s\"", s->def_string ? s->def_string : "");
        snprintf(range, sizeof range, "text");
        break;
    default:
        fmt_num(def, sizeof def, s->def);
        fmt_num(lo, sizeof lo, s->min);
        fmt_num(hi, sizeof hi, s->max);
        snprintf(range, sizeof range, "[%s, %s]", lo, hi);
        break;
    }
    printf("      %-20s %-6s %-10s %-18s %s\n", s->name, clasp_param_type_name(s->type), def, range,
           s->doc ? s->doc : "");
}

static void print_plugin(const clasp_plugin_info *in)
{
    const clasp_plugin_desc *d = in->desc;
    printf("  %s %s: %s\n", d->name, d->version ? d->version : "?", d->summary ? d->summary : "");
    printf("    file: %s%s\n", in->path,
           in->origin == CLASP_ORIGIN_BUILTIN ? " (built-in)" : " (CLASP_PLUGIN_PATH)");
    if (d->kind == CLASP_PLUGIN_ATTACK) {
        clasp_attack_traits t;
        clasp_attack_traits_of(d, &t);
        static const char *const threat[] = {"undeclared", "L-inf", "L2", "unbounded"};
        printf("    threat: %s", threat[t.threat <= CLASP_THREAT_UNBOUNDED ? t.threat : 0]);
        if (t.budget) printf(" (budget %s)", t.budget);
        if (t.gradient_free) printf(", gradient-free");
        if (t.temperature) printf(", temperature %s (%s at 1)", t.temperature, t.equals_at_one);
        int declared = CLASP_STRUCT_HAS(d->attack, clasp_attack_fns, traits) && d->attack->traits;
        printf("%s\n", declared ? "" : " (declares no traits)");
    }
    if (d->n_params == 0) {
        printf("    no parameters\n");
        return;
    }
    printf("    parameters:\n      %-20s %-6s %-10s %-18s %s\n", "name", "type", "default", "range",
           "meaning");
    for (int i = 0; i < d->n_params; i++) print_param(&d->params[i]);
}

int cmd_plugins(int argc, char **argv)
{
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' || only) {
            fprintf(stderr, "clasp plugins: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        only = argv[i];
    }
    clasp_registry *r;
    if (clasp_registry_open(&r) != CLASP_OK) return cli_fail("loading plugins");
    int shown = 0;
    const clasp_plugin_kind kinds[] = {CLASP_PLUGIN_ATTACK, CLASP_PLUGIN_DEFENSE};
    for (int k = 0; k < 2; k++) {
        int header = 0;
        for (int i = 0; i < clasp_registry_count(r); i++) {
            const clasp_plugin_info *in = clasp_registry_plugin(r, i);
            if (in->desc->kind != kinds[k] || (only && strcmp(only, in->desc->name) != 0)) continue;
            if (!header) printf("%ss:\n", clasp_plugin_kind_name(kinds[k]));
            header = 1;
            print_plugin(in);
            shown++;
        }
        if (!header && !only) printf("%ss: none\n", clasp_plugin_kind_name(kinds[k]));
    }
    int nr = clasp_registry_refusal_count(r);
    if (nr) {
        printf("refused:\n");
        for (int i = 0; i < nr; i++) {
            const clasp_plugin_refusal *f = clasp_registry_refusal(r, i);
            printf("  %s\n    %s\n", f->path, f->reason);
        }
    }
    const char *path = getenv("CLASP_PLUGIN_PATH");
    printf("searched: %s (built-in)%s%s\n", clasp_registry_builtin_dir(),
           path && *path ? ", CLASP_PLUGIN_PATH=" : "", path && *path ? path : "");
    clasp_registry_free(r);
    if (only && !shown) {
        fprintf(stderr, "clasp plugins: no plugin named '%s'\n", only);
        return 1;
    }
    return 0;
}
