/* The plugin loader, descriptor checks, parameter validation and the
 * out-of-tree example plugin. Fixture plugins (tests/plugins/fixture.c)
 * live in <build>/tests/plugins, next to this executable. */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clasp/model.h"
#include "clasp/registry.h"

/* Folders are kept well below PATH_MAX so that paths made from them always
 * fit the PATH_MAX buffers below. */
#define DIR_MAX 1024
static char exe_dir[DIR_MAX];   /* <build>/tests */
static char build_dir[DIR_MAX]; /* <build> */

static void find_dirs(void)
{
    if (exe_dir[0]) return;
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    assert_true(n > 0 && n < DIR_MAX - 1);
    exe_dir[n] = '\0';
    *strrchr(exe_dir, '/') = '\0';
    snprintf(build_dir, sizeof build_dir, "%s", exe_dir);
    *strrchr(build_dir, '/') = '\0';
}

static void fixture(const char *name, char *buf, size_t size)
{
    find_dirs();
    snprintf(buf, size, "%s/plugins/fixture_%s.so", exe_dir, name);
}

/* Loads one fixture into r, expecting a refusal whose reason contains
 * each of the given fragments (NULL-terminated). */
static void expect_refusal(clasp_registry *r, const char *name, ...)
{
    char path[PATH_MAX];
    fixture(name, path, sizeof path);
    int before = clasp_registry_refusal_count(r);
    clasp_status st = clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH);
    assert_int_equal(st, CLASP_ERR_PLUGIN);
    assert_int_equal(clasp_registry_refusal_count(r), before + 1);
    const clasp_plugin_refusal *f = clasp_registry_refusal(r, before);
    assert_string_equal(f->path, path);
    /* The last error names the file too. */
    assert_non_null(strstr(clasp_last_error(), path));
    va_list ap;
    va_start(ap, name);
    for (const char *frag; (frag = va_arg(ap, const char *));) {
        if (!strstr(f->reason, frag))
            fail_msg("refusal of %s: '%s' lacks '%s'", name, f->reason, frag);
    }
    va_end(ap);
}

static void test_good_plugin(void **state)
{
    (void)state;
    clasp_registry *r;
    assert_ok(clasp_registry_new(&r));
    char path[PATH_MAX];
    fixture("good", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    /* The same file again is not a duplicate. */
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    fixture("defense", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    assert_int_equal(clasp_registry_count(r), 2);
    assert_int_equal(clasp_registry_refusal_count(r), 0);
    const clasp_plugin_desc *d;
    assert_ok(clasp_registry_find(r, "fixture-good", CLASP_PLUGIN_ATTACK, &d));
    assert_string_equal(d->name, "fixture-good");
    assert_int_equal(d->n_params, 5);
    assert_ok(clasp_registry_find(r, "fixture-defense", CLASP_PLUGIN_DEFENSE, &d));
    /* Wrong kind and unknown names say what exists. */
    assert_int_equal(clasp_registry_find(r, "fixture-defense", CLASP_PLUGIN_ATTACK, &d),
                     CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "is a defense plugin, not an attack"));
    assert_int_equal(clasp_registry_find(r, "nope", CLASP_PLUGIN_ATTACK, &d), CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "unknown attack 'nope' (available: fixture-good"));
    clasp_registry_free(r);
}

static void test_refusals(void **state)
{
    (void)state;
    clasp_registry *r;
    assert_ok(clasp_registry_new(&r));
    char path[PATH_MAX];
    fixture("good", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    expect_refusal(r, "nosym", "no entry symbol 'clasp_plugin_entry'", (char *)NULL);
    expect_refusal(r, "badabi", "ABI version mismatch", "found 42, expected 1", (char *)NULL);
    expect_refusal(r, "dup", "duplicate plugin name 'fixture-good'", "fixture_good.so",
                   "first one wins", (char *)NULL);
    expect_refusal(r, "badname", "invalid descriptor", "'Bad Name' must match", (char *)NULL);
    expect_refusal(r, "nullfns", "invalid descriptor",
                   "must set attack->size, ->create and ->perturb", (char *)NULL);
    expect_refusal(r, "schema_dup", "parameter 'eps' is declared twice", (char *)NULL);
    expect_refusal(r, "schema_minmax", "parameter 'eps': min 1 > max 0", (char *)NULL);
    expect_refusal(r, "schema_default", "default 500 is outside its range [0, 100]", (char *)NULL);
    expect_refusal(r, "schema_type", "unknown type 9", (char *)NULL);
    expect_refusal(r, "traits_budget", "a bounded threat needs `budget` naming a float parameter",
                   "got 'radius'", (char *)NULL);
    expect_refusal(r, "traits_temperature", "a `temperature` needs `equals_at_one`", (char *)NULL);
    /* A file that is not a shared object at all. */
    char dir[DIR_MAX], junk[PATH_MAX];
    tu_tmpdir(dir, sizeof dir);
    snprintf(junk, sizeof junk, "%s/junk.so", dir);
    tu_write_file(junk, "not an ELF file", 15);
    assert_int_equal(clasp_registry_load_file(r, junk, CLASP_ORIGIN_PATH), CLASP_ERR_PLUGIN);
    assert_non_null(strstr(clasp_last_error(), "cannot load"));
    /* The good one is still there and usable after all that. */
    assert_int_equal(clasp_registry_count(r), 1);
    const clasp_plugin_desc *d;
    assert_ok(clasp_registry_find(r, "fixture-good", CLASP_PLUGIN_ATTACK, &d));
    clasp_registry_free(r);
    tu_rmdir(dir);
}

/* The host learns what an attack is from its traits: the built-ins declare
 * theirs, and an undeclared plugin gets the ABI-1 rule. */
static void test_traits(void **state)
{
    (void)state;
    clasp_registry *r;
    assert_ok(clasp_registry_open(&r));
    const clasp_plugin_desc *d;
    clasp_attack_traits t;
    assert_ok(clasp_registry_find(r, "tpgd", CLASP_PLUGIN_ATTACK, &d));
    clasp_attack_traits_of(d, &t);
    assert_int_equal(t.threat, CLASP_THREAT_LINF);
    assert_string_equal(t.budget, "eps");
    assert_string_equal(t.temperature, "T");
    assert_string_equal(t.equals_at_one, "pgd");
    assert_false(t.gradient_free);
    assert_ok(clasp_registry_find(r, "square", CLASP_PLUGIN_ATTACK, &d));
    clasp_attack_traits_of(d, &t);
    assert_true(t.gradient_free);
    assert_null(t.temperature);
    assert_ok(clasp_registry_find(r, "cw", CLASP_PLUGIN_ATTACK, &d));
    clasp_attack_traits_of(d, &t);
    assert_int_equal(t.threat, CLASP_THREAT_UNBOUNDED);
    assert_null(t.budget);
    assert_false(clasp_plugin_is_linf(d));
    /* Cost: pgd makes steps x restarts forward and backward passes. */
    assert_ok(clasp_registry_find(r, "pgd", CLASP_PLUGIN_ATTACK, &d));
    const char *k[] = {"steps", "restarts"}, *v[] = {"7", "3"};
    clasp_params p;
    assert_ok(clasp_params_build(d, k, v, NULL, 2, &p));
    clasp_attack_cost c;
    assert_int_equal(clasp_attack_cost_of(d, &p, &c), 1);
    assert_true(c.forward == 21 && c.backward == 21);
    clasp_params_free(&p);
    clasp_registry_free(r);

    /* A fixture declaring no traits: L-infinity through its float "eps". */
    assert_ok(clasp_registry_new(&r));
    char path[PATH_MAX];
    fixture("good", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    fixture("traits_cost", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    assert_ok(clasp_registry_find(r, "fixture-good", CLASP_PLUGIN_ATTACK, &d));
    clasp_attack_traits_of(d, &t);
    assert_int_equal(t.threat, CLASP_THREAT_LINF);
    assert_string_equal(t.budget, "eps");
    assert_ok(clasp_params_build(d, NULL, NULL, NULL, 0, &p));
    assert_int_equal(clasp_attack_cost_of(d, &p, &c), 0);
    clasp_params_free(&p);
    /* A cost function with a bad lookup: unknown, and nothing left over to
     * fail the next plugin call. */
    assert_ok(clasp_registry_find(r, "fixture-cost", CLASP_PLUGIN_ATTACK, &d));
    assert_ok(clasp_params_build(d, NULL, NULL, NULL, 0, &p));
    assert_int_equal(clasp_attack_cost_of(d, &p, &c), 0);
    assert_true(c.forward == 0 && c.backward == 0);
    clasp_params_free(&p);
    clasp_attack_instance *a;
    assert_ok(clasp_attack_new(r, "fixture-good", NULL, NULL, NULL, 0, &a));
    clasp_attack_free(a);
    clasp_registry_free(r);
}

static void test_builtin_shadow(void **state)
{
    (void)state;
    find_dirs();
    clasp_registry *r;
    assert_ok(clasp_registry_new(&r));
    char builtin[PATH_MAX];
    snprintf(builtin, sizeof builtin, "%s/plugins", build_dir);
    assert_ok(clasp_registry_load_dir(r, builtin, CLASP_ORIGIN_BUILTIN));
    assert_true(clasp_registry_count(r) >= 4);
    expect_refusal(r, "shadow", "has the name of the built-in plugin", "attacks/fgsm.so",
                   "rename this one", (char *)NULL);
    clasp_registry_free(r);
}

/* A folder of mixed plugins: the good one loads, every bad one is refused,
 * the scan goes on; the order is by name, so the first of a name wins. */
static void test_dir_scan(void **state)
{
    (void)state;
    char dir[DIR_MAX], sub[DIR_MAX + 16], link[PATH_MAX], target[PATH_MAX];
    tu_tmpdir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/attacks", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    const char *names[][2] = {{"a_badabi", "badabi"}, {"b_good", "good"}, {"c_nosym", "nosym"}};
    for (int i = 0; i < 3; i++) {
        fixture(names[i][1], target, sizeof target);
        snprintf(link, sizeof link, "%s/%s.so", dir, names[i][0]);
        assert_int_equal(symlink(target, link), 0);
    }
    fixture("dup", target, sizeof target);
    snprintf(link, sizeof link, "%s/d_dup.so", sub);
    assert_int_equal(symlink(target, link), 0);
    fixture("defense", target, sizeof target);
    snprintf(link, sizeof link, "%s/e_defense.so", sub);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof link, "%s/README.txt", dir);
    tu_write_file(link, "not a plugin", 12);

    clasp_registry *r;
    assert_ok(clasp_registry_new(&r));
    assert_ok(clasp_registry_load_dir(r, dir, CLASP_ORIGIN_PATH));
    /* Path order: a_badabi, attacks/d_dup, attacks/e_defense, b_good, c_nosym. */
    assert_int_equal(clasp_registry_count(r), 2);
    assert_string_equal(clasp_registry_plugin(r, 0)->desc->name, "fixture-good");
    assert_non_null(strstr(clasp_registry_plugin(r, 0)->path, "/attacks/d_dup.so"));
    assert_string_equal(clasp_registry_plugin(r, 1)->desc->name, "fixture-defense");
    assert_int_equal(clasp_registry_refusal_count(r), 3);
    assert_non_null(strstr(clasp_registry_refusal(r, 0)->path, "a_badabi.so"));
    assert_non_null(strstr(clasp_registry_refusal(r, 1)->path, "b_good.so"));
    assert_non_null(strstr(clasp_registry_refusal(r, 1)->reason, "duplicate plugin name"));
    assert_non_null(strstr(clasp_registry_refusal(r, 1)->reason, "/attacks/d_dup.so"));
    assert_non_null(strstr(clasp_registry_refusal(r, 2)->reason, "no entry symbol"));
    /* A missing folder is not an error; a file given as a folder is a
     * refusal, and the registry stays usable. */
    assert_ok(clasp_registry_load_dir(r, "/nonexistent/clasp/plugins", CLASP_ORIGIN_PATH));
    snprintf(link, sizeof link, "%s/README.txt", dir);
    assert_ok(clasp_registry_load_dir(r, link, CLASP_ORIGIN_PATH));
    assert_int_equal(clasp_registry_refusal_count(r), 4);
    assert_non_null(strstr(clasp_registry_refusal(r, 3)->reason, "not a folder"));
    assert_int_equal(clasp_registry_count(r), 2);
    clasp_registry_free(r);

    snprintf(link, sizeof link, "%s/d_dup.so", sub);
    unlink(link);
    snprintf(link, sizeof link, "%s/e_defense.so", sub);
    unlink(link);
    rmdir(sub);
    tu_rmdir(dir);
}

/* clasp_registry_open: the build tree's plugins plus CLASP_PLUGIN_PATH. */
static void test_open_default(void **state)
{
    (void)state;
    char dir[DIR_MAX], link[PATH_MAX], target[PATH_MAX];
    tu_tmpdir(dir, sizeof dir);
    fixture("good", target, sizeof target);
    snprintf(link, sizeof link, "%s/good.so", dir);
    assert_int_equal(symlink(target, link), 0);
    fixture("shadow", target, sizeof target);
    snprintf(link, sizeof link, "%s/shadow.so", dir);
    assert_int_equal(symlink(target, link), 0);
    find_dirs();
    char path[3 * PATH_MAX];
    const char *old = getenv("CLASP_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    /* The build folder again (as the test environment has it) and an empty
     * entry must not cause duplicates or errors. */
    snprintf(path, sizeof path, "%s/plugins::%s", build_dir, dir);
    setenv("CLASP_PLUGIN_PATH", path, 1);
    clasp_registry *r;
    assert_ok(clasp_registry_open(&r));
    const clasp_plugin_desc *d;
    const char *builtins[] = {"fgsm", "pgd", "tpgd", "cw", "fixture-good"};
    for (int i = 0; i < 5; i++)
        assert_ok(clasp_registry_find(r, builtins[i], CLASP_PLUGIN_ATTACK, &d));
    assert_int_equal(clasp_registry_refusal_count(r), 1);
    assert_non_null(strstr(clasp_registry_refusal(r, 0)->reason, "built-in"));
    for (int i = 0; i < clasp_registry_count(r); i++) {
        const clasp_plugin_info *in = clasp_registry_plugin(r, i);
        int builtin = strcmp(in->desc->name, "fixture-good") != 0;
        assert_int_equal(in->origin, builtin ? CLASP_ORIGIN_BUILTIN : CLASP_ORIGIN_PATH);
    }
    clasp_registry_free(r);
    if (saved) setenv("CLASP_PLUGIN_PATH", saved, 1);
    else unsetenv("CLASP_PLUGIN_PATH");
    free(saved);
    tu_rmdir(dir);
}

/* ---- parameters -------------------------------------------------------- */

static clasp_registry *good_registry(const clasp_plugin_desc **d)
{
    clasp_registry *r;
    assert_ok(clasp_registry_new(&r));
    char path[PATH_MAX];
    fixture("good", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    assert_ok(clasp_registry_find(r, "fixture-good", CLASP_PLUGIN_ATTACK, d));
    return r;
}

/* Builds params from one key/value pair and expects an error message
 * containing `frag`. */
static void expect_param_error(const clasp_plugin_desc *d, const char *key, const char *value,
                               const char *frag)
{
    clasp_params p;
    const char *where = "exp.yaml:12:5";
    clasp_status st = clasp_params_build(d, &key, &value, &where, 1, &p);
    assert_int_equal(st, CLASP_ERR_CONFIG);
    const char *msg = clasp_last_error();
    if (!strstr(msg, frag)) fail_msg("'%s=%s': message '%s' lacks '%s'", key, value, msg, frag);
    if (strncmp(msg, "exp.yaml:12:5: fixture-good: ", 29) != 0)
        fail_msg("message '%s' lacks the location prefix", msg);
    assert_int_equal(p.n, 0);
    assert_null(p.values);
}

static void test_params(void **state)
{
    (void)state;
    const clasp_plugin_desc *d;
    clasp_registry *r = good_registry(&d);

    /* Defaults fill everything not given. */
    clasp_params p;
    assert_ok(clasp_params_build(d, NULL, NULL, NULL, 0, &p));
    assert_int_equal(p.n, 5);
    assert_true(clasp_params_num(&p, "eps") == 0.1);
    assert_true(clasp_params_num(&p, "steps") == 10);
    assert_true(clasp_params_num(&p, "fail") == 0);
    assert_string_equal(clasp_params_str(&p, "mode"), "fast");
    char buf[256];
    clasp_params_format(&p, buf, sizeof buf);
    assert_string_equal(buf, "eps=0.1, steps=10, lo=1, fail=false, mode=fast");
    clasp_params_free(&p);

    /* Typed values from text, with blanks and the usual spellings. */
    const char *keys[] = {"eps", "steps", "fail", "mode", "lo"};
    const char *vals[] = {" 0.25 ", "1e2", "TRUE", "slow and steady", "1e6"};
    assert_ok(clasp_params_build(d, keys, vals, NULL, 5, &p));
    assert_true(clasp_params_num(&p, "eps") == 0.25);
    assert_true(clasp_params_num(&p, "steps") == 100);
    assert_true(clasp_params_num(&p, "fail") == 1);
    assert_true(clasp_params_num(&p, "lo") == 1e6);
    assert_string_equal(clasp_params_str(&p, "mode"), "slow and steady");
    clasp_params_free(&p);
    const char *bools[][2] = {{"true", "1"}, {"false", "0"}, {"1", "1"}, {"0", "0"}, {"no", "0"}};
    for (int i = 0; i < 5; i++) {
        const char *k = "fail";
        assert_ok(clasp_params_build(d, &k, &bools[i][0], NULL, 1, &p));
        assert_true(clasp_params_num(&p, "fail") == atof(bools[i][1]));
        clasp_params_free(&p);
    }

    expect_param_error(d, "epss", "0.1",
                       "unknown parameter 'epss' (did you mean 'eps'?); "
                       "known: eps, steps, lo, fail, mode");
    expect_param_error(d, "zzzzzz", "1", "known: eps, steps, lo, fail, mode");
    expect_param_error(d, "steps", "2.5", "steps expects an integer, got '2.5'");
    expect_param_error(d, "steps", "ten", "steps expects an integer, got 'ten'");
    expect_param_error(d, "steps", "0x10", "steps expects an integer, got '0x10'");
    expect_param_error(d, "eps", "abc", "eps expects a number, got 'abc'");
    expect_param_error(d, "eps", "", "eps expects a number, got ''");
    expect_param_error(d, "eps", "nan", "eps expects a number, got 'nan'");
    expect_param_error(d, "eps", "1.5", "eps must be in [0, 1], got 1.5");
    expect_param_error(d, "steps", "101", "steps must be in [0, 100], got 101");
    expect_param_error(d, "lo", "0.1", "lo must be >= 0.5, got 0.1");
    expect_param_error(d, "fail", "maybe", "fail expects true or false, got 'maybe'");

    /* A key twice. */
    const char *k2[] = {"eps", "eps"}, *v2[] = {"0.1", "0.2"};
    assert_int_equal(clasp_params_build(d, k2, v2, NULL, 2, &p), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "fixture-good: parameter 'eps' is given twice"));

    /* key=value strings, as `--set` gives them. */
    const char *kv[] = {"eps=0.5", "steps = 3"};
    assert_ok(clasp_params_parse_kv(d, kv, 2, "--set", &p));
    assert_true(clasp_params_num(&p, "eps") == 0.5);
    assert_true(clasp_params_num(&p, "steps") == 3);
    clasp_params_free(&p);
    const char *bad_kv[] = {"eps"};
    assert_int_equal(clasp_params_parse_kv(d, bad_kv, 1, "--set", &p), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "--set 'eps': expected key=value"));
    const char *bad_kv2[] = {"steps=-1"};
    assert_int_equal(clasp_params_parse_kv(d, bad_kv2, 1, "--set", &p), CLASP_ERR_CONFIG);
    assert_string_equal(clasp_last_error(),
                        "--set 'steps=-1': fixture-good: steps must be in [0, 100], got -1");
    clasp_registry_free(r);
}

/* An unknown name in clasp_params_num is a plugin bug: the lookup gives a
 * neutral value, and the host fails the plugin call that made it, naming
 * the plugin and the name, instead of aborting. */
static void test_params_bad_lookup(void **state)
{
    (void)state;
    const clasp_plugin_desc *d;
    clasp_registry *r = good_registry(&d);
    clasp_params p;
    assert_ok(clasp_params_build(d, NULL, NULL, NULL, 0, &p));
    assert_true(clasp_params_num(&p, "no_such_param") == 0.0);
    assert_true(clasp_params_num(&p, "mode") == 0.0);
    assert_true(clasp_params_num(NULL, "eps") == 0.0);
    assert_string_equal(clasp_params_str(&p, "eps"), "");
    assert_string_equal(clasp_params_str(&p, NULL), "");
    clasp_params_free(&p);

    char path[PATH_MAX];
    fixture("misuse", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    clasp_attack_instance *a = NULL;
    /* create() returned CLASP_OK; the host still refuses the instance. */
    assert_int_equal(clasp_attack_new(r, "fixture-misuse", NULL, NULL, NULL, 0, &a),
                     CLASP_ERR_PLUGIN);
    assert_null(a);
    const char *m = clasp_last_error();
    const char *frags[] =
        {"attack plugin fixture-misuse asked for unknown parameter 'epss' in create",
         "clasp_params_num; the schema has: eps (float), steps (int), lo (float), "
         "fail (bool), mode (string)",
         "(and 1 more bad lookups)"};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        if (!strstr(m, frags[i])) fail_msg("message '%s' lacks '%s'", m, frags[i]);

    /* The bad lookups above belong to their call: the next one is clean. */
    assert_ok(clasp_attack_new(r, "fixture-good", NULL, NULL, NULL, 0, &a));
    clasp_attack_free(a);
    clasp_registry_free(r);
}

static void test_instances(void **state)
{
    (void)state;
    const clasp_plugin_desc *d;
    clasp_registry *r = good_registry(&d);
    clasp_attack_instance *a = NULL;
    /* Parameter errors come before the plugin is called. */
    const char *k = "steps", *v = "2.5";
    assert_int_equal(clasp_attack_new(r, "fixture-good", &k, &v, NULL, 1, &a), CLASP_ERR_CONFIG);
    assert_null(a);
    assert_int_equal(clasp_attack_new(r, "nope", NULL, NULL, NULL, 0, &a), CLASP_ERR_NOT_FOUND);
    /* A failing create() is reported with the plugin's name and message. */
    const char *kf[] = {"fail", "mode"}, *vf[] = {"true", "odd"};
    assert_int_equal(clasp_attack_new(r, "fixture-good", kf, vf, NULL, 2, &a), CLASP_ERR_INVALID);
    assert_string_equal(clasp_last_error(),
                        "attack fixture-good: create asked to fail (mode 'odd')");
    assert_null(a);
    assert_ok(clasp_attack_new(r, "fixture-good", &k, (const char *[]){"7"}, NULL, 1, &a));
    assert_true(clasp_params_num(clasp_attack_params(a), "steps") == 7);
    assert_string_equal(clasp_attack_desc(a)->name, "fixture-good");

    /* Run it: the host checks shapes and restores the model's mode. */
    clasp_ctx *ctx = tu_ctx();
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_FLATTEN}, {.kind = CLASP_LAYER_LINEAR, .out = 3}};
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, 2, 1, 2, 2, &m));
    assert_ok(clasp_model_init(m, 1));
    float xh[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){2, 1, 2, 2}, xh);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){2}, (int32_t[]){0, 1});
    clasp_tensor *xa = tu_tensor(ctx, 4, (int[]){2, 1, 2, 2}, NULL);
    clasp_tensor *pred = tu_tensor_i32(ctx, 1, (int[]){2}, NULL);
    clasp_tensor *bad = tu_tensor(ctx, 4, (int[]){1, 1, 2, 2}, NULL);
    clasp_rng rng = clasp_rng_make(1, 0);
    assert_true(clasp_model_is_train(m));
    assert_ok(clasp_attack_run(a, m, x, y, &rng, xa, pred));
    assert_true(clasp_model_is_train(m));
    float *out = tu_read(xa);
    assert_memory_equal(out, xh, sizeof xh);
    free(out);
    assert_int_equal(clasp_attack_run(a, m, x, y, &rng, bad, pred), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "x_adv must have x's shape"));
    assert_int_equal(clasp_attack_run(a, m, x, y, &rng, x, pred), CLASP_ERR_INVALID);
    clasp_attack_free(a);

    /* Defense instances: made, run, freed; optional hooks are no-ops. */
    char path[PATH_MAX];
    fixture("defense", path, sizeof path);
    assert_ok(clasp_registry_load_file(r, path, CLASP_ORIGIN_PATH));
    clasp_defense_instance *dd;
    assert_int_equal(clasp_defense_new(r, "fixture-good", NULL, NULL, NULL, 0, &dd),
                     CLASP_ERR_NOT_FOUND);
    assert_ok(clasp_defense_new(r, "fixture-defense", NULL, NULL, NULL, 0, &dd));
    clasp_defense_env env = {.size = sizeof env, .model = m, .num_classes = 3};
    float loss = -1;
    assert_ok(clasp_defense_run_step(dd, &env, x, y, &rng, &loss));
    assert_true(loss == 0.0f);
    assert_ok(clasp_defense_run_epoch_end(dd, &env, NULL));
    assert_ok(clasp_defense_run_finish(dd, &env, &rng));
    float wts[3];
    assert_int_equal(clasp_defense_class_weights(dd, wts, 3), 0);
    clasp_defense_free(dd);

    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(xa);
    clasp_tensor_free(pred), clasp_tensor_free(bad);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    clasp_registry_free(r);
}

/* A fresh folder to build a plugin in outside the tree; skips the test
 * when there is no C compiler or pkg-config. */
static void out_of_tree_dir(char dir[DIR_MAX])
{
    find_dirs();
    if (system("command -v cc >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1") != 0)
        skip();
    tu_tmpdir(dir, DIR_MAX);
}

static void out_of_tree_build(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fail_msg("out-of-tree build failed (%d): %s", rc, cmd);
}

/* The example plugin, built the way a user outside the tree would build
 * it, then found through CLASP_PLUGIN_PATH and run by name. */
static void test_out_of_tree_example(void **state)
{
    (void)state;
    char dir[DIR_MAX], cmd[8 * DIR_MAX];
    out_of_tree_dir(dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PKG_CONFIG_PATH='%s/meson-uninstalled' cc -shared -fPIC "
             "'%s/plugins/noise.c' $(PKG_CONFIG_PATH='%s/meson-uninstalled' pkg-config --cflags "
             "--libs clasp) -o noise.so",
             dir, build_dir, exe_dir, build_dir);
    out_of_tree_build(cmd);

    const char *old = getenv("CLASP_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("CLASP_PLUGIN_PATH", dir, 1);
    clasp_registry *r;
    assert_ok(clasp_registry_open(&r));
    if (saved) setenv("CLASP_PLUGIN_PATH", saved, 1);
    else unsetenv("CLASP_PLUGIN_PATH");
    free(saved);
    assert_int_equal(clasp_registry_refusal_count(r), 0);
    const clasp_plugin_desc *d;
    assert_ok(clasp_registry_find(r, "noise", CLASP_PLUGIN_ATTACK, &d));

    clasp_ctx *ctx = tu_ctx();
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_FLATTEN}, {.kind = CLASP_LAYER_LINEAR, .out = 2}};
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, 2, 1, 4, 4, &m));
    assert_ok(clasp_model_init(m, 3));
    enum { N = 4, D = 16 };
    float xh[N * D];
    tu_fill_random(xh, N * D, 5, 0.0f, 1.0f);
    xh[0] = 0.0f, xh[1] = 1.0f;
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){N, 1, 4, 4}, xh);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){N}, (int32_t[]){0, 1, 0, 1});
    clasp_tensor *xa = tu_tensor(ctx, 4, (int[]){N, 1, 4, 4}, NULL);
    clasp_tensor *pred = tu_tensor_i32(ctx, 1, (int[]){N}, NULL);
    clasp_attack_instance *a;
    const char *k = "eps", *v = "0.2";
    assert_ok(clasp_attack_new(r, "noise", &k, &v, NULL, 1, &a));
    clasp_rng rng = clasp_rng_make(9, 1);
    assert_ok(clasp_attack_run(a, m, x, y, &rng, xa, pred));
    float *out = tu_read(xa), *xin = tu_read(x);
    int moved = 0;
    for (int i = 0; i < N * D; i++) {
        assert_true(fabsf(out[i] - xh[i]) <= 0.2f + 1e-6f);
        assert_true(out[i] >= 0.0f && out[i] <= 1.0f);
        moved += out[i] != xh[i];
    }
    assert_true(moved > N * D / 2);
    assert_memory_equal(xin, xh, sizeof xh);
    free(out), free(xin);
    clasp_attack_free(a);
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(xa), clasp_tensor_free(pred);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    clasp_registry_free(r);
    snprintf(cmd, sizeof cmd, "%s/noise.so", dir);
    unlink(cmd);
    tu_rmdir(dir);
}

/* A defense that wraps another, built out of tree against the installed
 * headers alone (plugins/examples/focus.c), wrapping the built-in
 * calibrate: the wrapped defense must train with the wrapper's class
 * weights, and must not find itself as its own inner defense (calibrate
 * wraps too: it would call itself forever). */
static void test_out_of_tree_wrapper(void **state)
{
    (void)state;
    char dir[DIR_MAX], cmd[8 * DIR_MAX];
    out_of_tree_dir(dir);
    /* The headers `meson install` installs (include/clasp/, whole), copied
     * alone into the folder: nothing else of the tree is on the path. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && export PKG_CONFIG_PATH='%s/meson-uninstalled' && "
             "mkdir include && cp -r \"$(pkg-config --variable=srcdir clasp)/include/clasp\" "
             "include/ && "
             "cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -Iinclude "
             "$(pkg-config --cflags OpenCL) '%s/plugins/focus.c' $(pkg-config --libs clasp) "
             "-o focus.so",
             dir, build_dir, exe_dir);
    out_of_tree_build(cmd);

    clasp_registry *r;
    assert_ok(clasp_registry_open(&r)); /* the built-in defenses */
    snprintf(cmd, sizeof cmd, "%s/focus.so", dir);
    assert_ok(clasp_registry_load_file(r, cmd, CLASP_ORIGIN_PATH));
    clasp_defense_instance *focus, *cal;
    const char *k[] = {"class", "boost"}, *v[] = {"1", "3"};
    assert_ok(clasp_defense_new(r, "focus", k, v, NULL, 2, &focus));
    assert_ok(clasp_defense_new(r, "calibrate", NULL, NULL, NULL, 0, &cal));

    clasp_ctx *ctx = tu_ctx();
    clasp_layer_spec ls[] = {{.kind = CLASP_LAYER_FLATTEN}, {.kind = CLASP_LAYER_LINEAR, .out = 3}};
    clasp_model *m;
    assert_ok(clasp_model_new(ctx, ls, 2, 1, 4, 4, &m));
    assert_ok(clasp_model_init(m, 5));
    assert_true(clasp_model_ctx(m) == ctx);
    enum { N = 6, D = 16 };
    float xh[N * D];
    tu_fill_random(xh, N * D, 11, 0.0f, 1.0f);
    clasp_tensor *x = tu_tensor(ctx, 4, (int[]){N, 1, 4, 4}, xh);
    clasp_tensor *y = tu_tensor_i32(ctx, 1, (int[]){N}, (int32_t[]){0, 1, 2, 1, 0, 2});
    clasp_rng rng = clasp_rng_make(3, 1);

    /* focus around calibrate: calibrate, finding no inner defense, trains
     * cross-entropy with focus's weights (1, 3, 1). */
    clasp_defense_env env = {.size = sizeof env, .model = m, .num_classes = 3, .inner = cal};
    float wrapped = -1;
    assert_ok(clasp_defense_run_step(focus, &env, x, y, &rng, &wrapped));
    /* The same by hand: calibrate alone with those weights, and without. */
    clasp_tensor *w = tu_tensor(ctx, 1, (int[]){3}, (float[]){1.0f, 3.0f, 1.0f});
    clasp_defense_env alone = {.size = sizeof alone,
                               .model = m,
                               .num_classes = 3,
                               .class_weights = w};
    float weighted = -1, plain = -1;
    assert_ok(clasp_defense_run_step(cal, &alone, x, y, &rng, &weighted));
    alone.class_weights = NULL;
    assert_ok(clasp_defense_run_step(cal, &alone, x, y, &rng, &plain));
    assert_true(wrapped > 0.0f);
    assert_float_equal(wrapped, weighted, 1e-6 * weighted);
    assert_true(fabsf(wrapped - plain) > 1e-4f);
    assert_ok(clasp_defense_run_epoch_end(focus, &env, NULL));

    /* A class the model lacks is the plugin's clear error. */
    clasp_defense_instance *bad;
    const char *v2[] = {"7", "2"};
    assert_ok(clasp_defense_new(r, "focus", k, v2, NULL, 2, &bad));
    assert_int_equal(clasp_defense_run_step(bad, &env, x, y, &rng, NULL), CLASP_ERR_INVALID);
    assert_non_null(strstr(clasp_last_error(), "class 7"));
    clasp_defense_free(bad);

    clasp_defense_free(focus);
    clasp_defense_free(cal);
    clasp_tensor_free(x), clasp_tensor_free(y), clasp_tensor_free(w);
    clasp_model_free(m);
    clasp_ctx_free(ctx);
    clasp_registry_free(r);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/include'", dir);
    assert_int_equal(system(cmd), 0);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugin),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_builtin_shadow),
        cmocka_unit_test(test_dir_scan),
        cmocka_unit_test(test_open_default),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_bad_lookup),
        cmocka_unit_test(test_instances),
        cmocka_unit_test(test_out_of_tree_example),
        cmocka_unit_test(test_out_of_tree_wrapper),
        cmocka_unit_test(test_traits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
