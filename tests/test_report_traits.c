/* The report knows attacks by the traits their plugins declare, not by
 * name: the example third-party attack (plugins/examples/noise.c, which
 * declares itself gradient-free), built outside the tree as a user would,
 * takes part in a tiny experiment beside pgd at the same eps, and the
 * report's gradient-free check compares the two, as it does for the
 * built-in square. */
#include "testutil.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clasp/experiment.h"

#define DIR_MAX 512

static void quiet_log(void *user, const char *line)
{
    (void)user;
    if (getenv("CLASP_TEST_VERBOSE")) fprintf(stderr, "%s\n", line);
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("report.json lacks '%s'", key);
    return v;
}

static void out_of_tree_gradient_free_attack(void **state)
{
    (void)state;
    if (system("command -v cc >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1") != 0)
        skip();
    char exe_dir[DIR_MAX], build_dir[DIR_MAX], dir[DIR_MAX], cmd[8 * DIR_MAX];
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    assert_true(n > 0);
    exe_dir[n] = '\0';
    *strrchr(exe_dir, '/') = '\0';
    snprintf(build_dir, sizeof build_dir, "%s", exe_dir);
    *strrchr(build_dir, '/') = '\0';
    tu_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PKG_CONFIG_PATH='%s/meson-uninstalled' cc -shared -fPIC "
             "'%s/plugins/noise.c' $(PKG_CONFIG_PATH='%s/meson-uninstalled' pkg-config --cflags "
             "--libs clasp) -o noise.so",
             dir, build_dir, exe_dir, build_dir);
    int rc = system(cmd);
    if (rc != 0) fail_msg("out-of-tree build failed (%d): %s", rc, cmd);

    const char *old = getenv("CLASP_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("CLASP_PLUGIN_PATH", dir, 1);
    clasp_registry *reg;
    assert_ok(clasp_registry_open(&reg));
    if (saved) setenv("CLASP_PLUGIN_PATH", saved, 1);
    else unsetenv("CLASP_PLUGIN_PATH");
    free(saved);

    tu_write_bars_idx(dir, "train", 200, 12, 1);
    tu_write_bars_idx(dir, "t10k", 60, 12, 2);
    char yaml[4096], yaml_path[DIR_MAX + 16], out[DIR_MAX + 16];
    snprintf(yaml_path, sizeof yaml_path, "%s/noise.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(yaml, sizeof yaml,
             "experiment: {name: noise, seed: 3}\n"
             "data: {dataset: mnist, path: '%s', val_size: 20}\n"
             "model: {arch: 'conv3x3-4p1,relu,maxpool2,flatten,fc10'}\n"
             "train: {epochs: 1, batch: 32, optimiser: {lr: 0.1}, models: [{name: standard}]}\n"
             "evaluate:\n"
             "  test_size: 40\n"
             "  batch: 40\n"
             "  attacks:\n"
             "    - {name: pgd, params: {eps: 0.15, steps: 2, alpha: 0}}\n"
             "    - {name: noise, params: {eps: 0.15}}\n"
             "output: {dir: '%s'}\n",
             dir, out);
    tu_write_file(yaml_path, yaml, strlen(yaml));
    clasp_plan *p = NULL;
    assert_ok(clasp_plan_load(reg, yaml_path, &p));
    clasp_run_options opt = {.ctx = tu_ctx_opts()};
    opt.hooks.log = quiet_log;
    clasp_status st = clasp_experiment_run(p, reg, &opt);
    if (st != CLASP_OK) fail_msg("run: %s", clasp_last_error());
    clasp_plan_free(p);

    char path[2 * DIR_MAX];
    snprintf(path, sizeof path, "%s/report.json", out);
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *m = json_object_array_get_idx(get(root, "models"), 0);
    json_object *g = get(m, "gradient_free_check");
    assert_true(json_object_is_type(g, json_type_object));
    assert_non_null(strstr(json_object_get_string(get(g, "gradient_free")), "noise"));
    assert_non_null(strstr(json_object_get_string(get(g, "gradient")), "pgd"));
    json_object_put(root);
    snprintf(path, sizeof path, "%s/report.md", out);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char md[1 << 16];
    size_t len = fread(md, 1, sizeof md - 1, fp);
    md[len] = '\0';
    fclose(fp);
    assert_non_null(strstr(md, "### Gradient-free check\n\nThe gradient-free attack noise"));
    clasp_registry_free(reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_tree_gradient_free_attack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
