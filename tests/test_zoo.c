/* The RobustBench zoo table: its invariants, that every supported row
 * builds as written (at a narrow width, so the test stays quick), and the
 * lookup's answers and errors, by the library and by `clasp zoo`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clasp/model.h"
#include "clasp/runtime.h"
#include "clasp/zoo.h"
#include "testutil.h"

static void rows_are_consistent(void **state)
{
    (void)state;
    size_t n = clasp_zoo_count();
    assert_true(n > 0);
    assert_null(clasp_zoo_get(n));
    int c10_linf = 0, c10_l2 = 0, c100_linf = 0, in_linf = 0;
    for (size_t i = 0; i < n; i++) {
        const clasp_zoo_entry *e = clasp_zoo_get(i);
        assert_non_null(e);
        assert_true(e->name && *e->name);
        int c10 = !strcmp(e->dataset, "cifar10"), c100 = !strcmp(e->dataset, "cifar100");
        int in = !strcmp(e->dataset, "imagenet");
        if (!c10 && !c100 && !in) fail_msg("%s: dataset '%s'", e->name, e->dataset);
        assert_int_equal(e->num_classes, c10 ? 10 : c100 ? 100 : 1000);
        int linf = !strcmp(e->threat, "Linf");
        if (!linf && strcmp(e->threat, "L2")) fail_msg("%s: threat '%s'", e->name, e->threat);
        c10_linf += c10 && linf, c10_l2 += c10 && !linf, c100_linf += c100 && linf;
        in_linf += in && linf;
        assert_false((c100 || in) && !linf); /* no CIFAR-100 or ImageNet L2 leaderboard */
        /* Exactly one of arch and why_not. */
        if (!e->arch == !e->why_not)
            fail_msg("%s: arch and why_not both set or both NULL", e->name);
        if (e->why_not) assert_true(*e->why_not);
        if (!e->arch) {
            assert_int_equal(e->has_normalize, 0);
            assert_null(e->ignore_tensors);
        }
        if (e->has_normalize)
            for (int c = 0; c < 3; c++) {
                assert_true(e->mean[c] > 0.3f && e->mean[c] < 0.6f);
                assert_true(e->std[c] > 0.15f && e->std[c] <= 0.5f);
            }
        /* Only ImageNet rows prepare their input, by RobustBench's names;
         * every buildable one says how. */
        if (!in) assert_null(e->preprocessing);
        else if (e->preprocessing) {
            const char *p = e->preprocessing;
            if (strcmp(p, "Res256Crop224") && strcmp(p, "Crop288") && strcmp(p, "Res224") &&
                strcmp(p, "BicubicRes256Crop224"))
                fail_msg("%s: preprocessing '%s'", e->name, p);
        } else if (e->arch) fail_msg("%s: an ImageNet row without preprocessing", e->name);
        for (size_t j = 0; j < i; j++) {
            const clasp_zoo_entry *f = clasp_zoo_get(j);
            if (!strcmp(e->name, f->name) && !strcmp(e->dataset, f->dataset) &&
                !strcmp(e->threat, f->threat))
                fail_msg("%s %s %s listed twice", e->name, e->dataset, e->threat);
        }
    }
    /* RobustBench's leaderboards as the table was written from them. */
    assert_int_equal(c10_linf, 76);
    assert_int_equal(c10_l2, 21);
    assert_int_equal(c100_linf, 38);
    assert_int_equal(in_linf, 30);
}

/* Facts checked one by one against the model definitions. */
static void rows_say_what_the_models_are(void **state)
{
    (void)state;
    const clasp_zoo_entry *e;
    assert_ok(clasp_zoo_find("Carmon2019Unlabeled", NULL, NULL, &e));
    assert_string_equal(e->arch, "wrn-28-10");
    assert_int_equal(e->has_normalize, 0);
    assert_string_equal(e->ignore_tensors, "sub_block1.");
    assert_ok(clasp_zoo_find("Gowal2020Uncovering", "cifar100", NULL, &e));
    assert_string_equal(e->arch, "dm-wrn-70-16-swish");
    assert_true(e->has_normalize);
    assert_true(e->mean[0] == 0.5071f && e->std[2] == 0.2762f);
    assert_ok(clasp_zoo_find("Wang2023Better_WRN-28-10", "cifar10", "L2", &e));
    assert_string_equal(e->arch, "dm-wrn-28-10-swish"); /* nn.SiLU */
    assert_ok(clasp_zoo_find("Wong2020Fast", "cifar10", NULL, &e));
    assert_string_equal(e->arch, "preact-resnet18-nobn");
    assert_string_equal(e->ignore_tensors, "mu,sigma");
    assert_ok(clasp_zoo_find("Rice2020Overfitting", "cifar10", "L2", &e));
    assert_string_equal(e->arch, "preact-resnet18");
    assert_ok(clasp_zoo_find("Hendrycks2019Using", "cifar100", NULL, &e));
    assert_true(e->has_normalize && e->mean[1] == 0.5f && e->std[1] == 0.5f);
    assert_ok(clasp_zoo_find("Peng2023Robust", "cifar10", NULL, &e));
    assert_null(e->arch);
    assert_string_equal(e->why_not, "RaWideResNet");
    assert_ok(clasp_zoo_find("Engstrom2019Robustness", "cifar10", "L2", &e));
    assert_string_equal(e->arch, "resnet50"); /* ResNet(Bottleneck, [3, 4, 6, 3]) */
    assert_true(e->has_normalize && e->std[0] == 0.2023f);
    /* ImageNet: torchvision's models in normalize_model, mu and sigma. */
    assert_ok(clasp_zoo_find("Wong2020Fast", "imagenet", NULL, &e));
    assert_string_equal(e->arch, "tv-resnet50");
    assert_string_equal(e->preprocessing, "Crop288");
    assert_true(e->has_normalize && e->mean[0] == 0.485f && e->std[2] == 0.225f);
    assert_ok(clasp_zoo_find("Salman2020Do_50_2", NULL, NULL, &e));
    assert_string_equal(e->arch, "tv-wide-resnet50-2");
    assert_string_equal(e->preprocessing, "Res256Crop224");
    assert_ok(clasp_zoo_find("Salman2020Do_R18", NULL, NULL, &e));
    assert_string_equal(e->arch, "tv-resnet18");
    /* Any image folder (YAML or command line) takes the ImageNet rows. */
    assert_ok(clasp_zoo_find("Engstrom2019Robustness", "imagefolder", NULL, &e));
    assert_string_equal(e->dataset, "imagenet");
    assert_ok(clasp_zoo_find("Chen2024Data_WRN_50_2", "imagenet", NULL, &e));
    assert_string_equal(e->arch, "tv-wide-resnet50-2");
    assert_int_equal(e->has_normalize, 0); /* not wrapped in normalize_model */
}

/* arch at a width the test can afford: wrn-D-W and dm-wrn-D-W at W = 1,
 * the ResNet-18 family with base width 8 (-w8 before -swish/-padP). */
static void narrow(const char *arch, char *out, size_t size)
{
    const char *p = arch, *rest;
    if (!strncmp(p, "dm-", 3)) p += 3;
    if (!strncmp(p, "wrn-", 4)) {
        const char *dash = strchr(p + 4, '-'); /* before W */
        rest = dash ? strchr(dash + 1, '-') : NULL;
        snprintf(out, size, "%.*s-1%s", (int)(dash - arch), arch, rest ? rest : "");
        return;
    }
    rest = strstr(arch, "-swish");
    if (!rest) rest = strstr(arch, "-pad");
    if (!rest) rest = arch + strlen(arch);
    snprintf(out, size, "%.*s-w8%s", (int)(rest - arch), arch, rest);
}

/* Needs the dm-*, preact-resnet18-nobn and -swish presets; on a branch
 * without them this test fails, naming each arch that is none. */
static void supported_rows_build(void **state)
{
    (void)state;
    clasp_ctx *ctx = tu_ctx();
    char text[96];
    int missing = 0;
    narrow("dm-wrn-70-16-swish", text, sizeof text);
    assert_string_equal(text, "dm-wrn-70-1-swish");
    narrow("preact-resnet18-nobn", text, sizeof text);
    assert_string_equal(text, "preact-resnet18-nobn-w8");
    narrow("dm-preact-resnet18-swish-pad2", text, sizeof text);
    assert_string_equal(text, "dm-preact-resnet18-w8-swish-pad2");
    for (size_t i = 0; i < clasp_zoo_count(); i++) {
        const clasp_zoo_entry *e = clasp_zoo_get(i);
        if (!e->arch) continue;
        int built = 0; /* each (arch, classes) once */
        for (size_t j = 0; j < i && !built; j++) {
            const clasp_zoo_entry *f = clasp_zoo_get(j);
            built = f->arch && !strcmp(f->arch, e->arch) && f->num_classes == e->num_classes;
        }
        if (built) continue;
        if (!clasp_model_is_preset(e->arch)) {
            /* Go on, so that the presets there are still get built. */
            print_error("%s: '%s' is not a preset\n", e->name, e->arch);
            missing++;
            continue;
        }
        narrow(e->arch, text, sizeof text);
        clasp_model *m;
        clasp_status st = clasp_model_new_arch(ctx, text, 3, 32, 32, e->num_classes,
                                               e->has_normalize ? e->mean : NULL, e->std, &m);
        if (st != CLASP_OK) fail_msg("%s: %s: %s", e->name, text, clasp_last_error());
        assert_int_equal(clasp_model_num_classes(m), e->num_classes);
        clasp_model_free(m);
    }
    clasp_ctx_free(ctx);
    assert_int_equal(missing, 0);
}

static void lookup_resolves_and_explains(void **state)
{
    (void)state;
    const clasp_zoo_entry *e = (const clasp_zoo_entry *)1;
    /* Rice2020Overfitting: cifar10 Linf, cifar10 L2, cifar100 Linf. */
    assert_int_equal(clasp_zoo_find("Rice2020Overfitting", NULL, NULL, &e), CLASP_ERR_CONFIG);
    assert_null(e);
    assert_non_null(strstr(clasp_last_error(),
                           "Rice2020Overfitting exists for cifar10 Linf and cifar10 L2 and "
                           "cifar100 Linf: give --dataset, --threat or both"));
    assert_int_equal(clasp_zoo_find("Rice2020Overfitting", "cifar10", NULL, &e), CLASP_ERR_CONFIG);
    assert_non_null(
        strstr(clasp_last_error(), "exists for cifar10 Linf and cifar10 L2: give --threat"));
    assert_int_equal(clasp_zoo_find("Rice2020Overfitting", NULL, "Linf", &e), CLASP_ERR_CONFIG);
    assert_non_null(strstr(clasp_last_error(), "give --dataset"));
    assert_ok(clasp_zoo_find("Rice2020Overfitting", "cifar100", NULL, &e));
    assert_string_equal(e->dataset, "cifar100");
    assert_ok(clasp_zoo_find("Standard", NULL, "L2", &e));
    assert_string_equal(e->threat, "L2");
    assert_string_equal(e->arch, "wrn-28-10");

    /* A name on one leaderboard asked for on another. */
    assert_int_equal(clasp_zoo_find("Carmon2019Unlabeled", NULL, "L2", &e), CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "it exists for cifar10 Linf"));
    /* A misspelt name: the closest one is offered first. */
    assert_int_equal(clasp_zoo_find("carmon2019unlabled", NULL, NULL, &e), CLASP_ERR_NOT_FOUND);
    assert_non_null(strstr(clasp_last_error(), "closest: Carmon2019Unlabeled, "));
    assert_int_equal(clasp_zoo_find("", NULL, NULL, &e), CLASP_ERR_INVALID);
    assert_int_equal(clasp_zoo_find(NULL, NULL, NULL, &e), CLASP_ERR_INVALID);
    assert_int_equal(clasp_zoo_find("Standard", NULL, NULL, NULL), CLASP_ERR_INVALID);
}

/* Runs `clasp zoo ARGS` and returns its stdout (malloc'd) and exit status. */
static char *run_cli(const char *args, int *rc)
{
    const char *cli = getenv("CLASP_CLI");
    if (!cli) fail_msg("CLASP_CLI is not set");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' zoo %s 2>&1", cli, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t k;
    while ((k = fread(buf + len, 1, cap - 1 - len, f)) > 0) len += k;
    buf[len] = '\0';
    int st = pclose(f);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static void command_lists_and_counts(void **state)
{
    (void)state;
    int rc, supported = 0, total = 0;
    for (size_t i = 0; i < clasp_zoo_count(); i++) {
        const clasp_zoo_entry *e = clasp_zoo_get(i);
        if (strcmp(e->dataset, "cifar100")) continue;
        total++, supported += e->arch != NULL;
    }
    char want[64];
    snprintf(want, sizeof want, "cifar100 Linf: %d of %d supported", supported, total);
    char *out = run_cli("--dataset cifar100 --supported", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "cifar10 Linf"));
    assert_null(strstr(out, "unsupported:"));
    assert_non_null(strstr(out, "Gowal2020Uncovering"));
    free(out);
    out = run_cli("--threat L2", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "unsupported: per-image standardisation"));
    assert_null(strstr(out, " Linf "));
    free(out);
    out = run_cli("Rice2020Overfitting --threat L2", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "preact-resnet18"));
    assert_non_null(strstr(out, "mean 0.4914 0.4822 0.4465"));
    free(out);
    out = run_cli("Rice2020Overfitting", &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "give --dataset, --threat or both"));
    free(out);
    out = run_cli("--threat Linf2", &rc);
    assert_int_equal(rc, 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_are_consistent),
        cmocka_unit_test(rows_say_what_the_models_are),
        cmocka_unit_test(lookup_resolves_and_explains),
        cmocka_unit_test(command_lists_and_counts),
        cmocka_unit_test(supported_rows_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
