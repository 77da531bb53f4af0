/* The class -> group mapping files of the report (clasp/groups.h): what a
 * good file maps (by name, by index, by WordNet id), what is skipped
 * (comments, blank lines, CRLF, a byte-order mark), and that every kind of
 * bad file is an error naming the file and the line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clasp/groups.h"
#include "testutil.h"

static const char names10[10][CLASP_CLASS_NAME_MAX] = {"airplane", "automobile", "bird", "cat",
                                                       "deer",     "dog",        "frog", "horse",
                                                       "ship",     "truck"};

static clasp_status parse(const char *text, clasp_class_groups *g)
{
    return clasp_class_groups_parse(text, strlen(text), "g.txt", g);
}

/* Parses and resolves on the ten names above; CLASP_OK or the error. */
static clasp_status map10(const char *text, clasp_class_groups *g)
{
    clasp_status st = parse(text, g);
    if (st == CLASP_OK) st = clasp_class_groups_resolve(g, "cifar10", 10, names10);
    return st;
}

/* The call fails with st and a message holding each of the texts. */
static void assert_fails(clasp_status got, clasp_status want, const char *a, const char *b)
{
    assert_int_equal(got, want);
    const char *msg = clasp_last_error();
    if (a && !strstr(msg, a)) fail_msg("'%s' not in \"%s\"", a, msg);
    if (b && !strstr(msg, b)) fail_msg("'%s' not in \"%s\"", b, msg);
}

static void by_name_index_comments_crlf(void **state)
{
    (void)state;
    clasp_class_groups g;
    /* A byte-order mark, CRLF line ends, comments, blank lines, both
     * separators, spaces around either side, names in another case. */
    const char *text = "\xef\xbb\xbf# CIFAR-10 in two groups\r\n"
                       "\r\n"
                       "airplane\tvehicles\r\n"
                       "  Automobile ,  vehicles   # a comment after the group\r\n"
                       "8,vehicles\n"
                       "truck\t vehicles\n"
                       "   \t  \n"
                       "bird,animals\n"
                       "3\tanimals\n"
                       "deer,  animals\n"
                       "dog,animals\n"
                       "6,animals\n"
                       "horse,animals"; /* no line break at the end */
    assert_ok(map10(text, &g));
    assert_string_equal(g.source, "g.txt");
    assert_int_equal(g.n_lines, 10);
    assert_int_equal(g.n_groups, 2);
    assert_int_equal(g.n_unlisted, 0);
    assert_string_equal(g.names[0], "vehicles");
    assert_string_equal(g.names[1], "animals");
    static const int want[10] = {0, 0, 1, 1, 1, 1, 1, 1, 0, 0};
    for (int c = 0; c < 10; c++) assert_int_equal(g.group_of[c], want[c]);
    assert_int_equal(g.lines[1].line, 4); /* lines count from the file's first */
    assert_string_equal(g.lines[1].cls, "Automobile");
    clasp_class_groups_free(&g);
    assert_null(g.names);
}

/* Groups are numbered as they first appear; the classes a file leaves out
 * form one more group at the end; a group name is free text. */
static void unlisted_classes_form_the_last_group(void **state)
{
    (void)state;
    clasp_class_groups g;
    assert_ok(map10("ship,b: on water, mostly\ncat,a\ndog,b: on water, mostly\n", &g));
    assert_int_equal(g.n_groups, 3);
    assert_int_equal(g.n_listed_groups, 2);
    assert_int_equal(g.n_unlisted, 7);
    assert_string_equal(g.names[0], "b: on water, mostly"); /* split at the first comma */
    assert_string_equal(g.names[1], "a");
    assert_string_equal(g.names[2], CLASP_GROUPS_UNLISTED);
    assert_int_equal(g.group_of[8], 0);
    assert_int_equal(g.group_of[3], 1);
    assert_int_equal(g.group_of[5], 0);
    assert_int_equal(g.group_of[0], 2);
    /* Resolving again (another data set) starts from the file's groups. */
    assert_ok(clasp_class_groups_resolve(&g, "cifar10", 10, names10));
    assert_int_equal(g.n_groups, 3);
    clasp_class_groups_free(&g);
}

static void duplicates_name_both_lines(void **state)
{
    (void)state;
    clasp_class_groups g;
    /* Written twice: found by the reader alone. */
    assert_fails(parse("cat,a\n# x\ncat,b\n", &g), CLASP_ERR_FORMAT,
                 "g.txt:3:", "listed twice (first at line 1)");
    assert_null(g.names);
    /* The same class by name and by index: found once the names are known. */
    assert_fails(map10("cat,a\ndog,a\n3,b\n", &g), CLASP_ERR_CONFIG,
                 "g.txt:3:", "class 3 (cat) is listed twice (first at line 1)");
    assert_null(g.group_of);
    clasp_class_groups_free(&g);
    assert_fails(map10("CAT,a\ncat,b\n", &g), CLASP_ERR_CONFIG, "g.txt:2:", "first at line 1");
    clasp_class_groups_free(&g);
}

static void unknown_and_ambiguous_classes(void **state)
{
    (void)state;
    clasp_class_groups g;
    assert_fails(map10("cat,a\n\nzebra,b\n", &g), CLASP_ERR_CONFIG,
                 "g.txt:3: unknown class 'zebra'", "airplane, automobile");
    clasp_class_groups_free(&g);
    assert_fails(map10("10,a\n", &g), CLASP_ERR_CONFIG, "g.txt:1: class index 10 is out of range",
                 "0 to 9");
    clasp_class_groups_free(&g);
    assert_fails(map10("99999999999999999999,a\n", &g), CLASP_ERR_CONFIG, "out of range", NULL);
    clasp_class_groups_free(&g);
    /* Two classes of one name need the index. */
    char two[3][CLASP_CLASS_NAME_MAX] = {"crane", "x", "crane"};
    assert_ok(parse("crane,birds\n", &g));
    assert_fails(clasp_class_groups_resolve(&g, "imagefolder", 3, (const char(*)[32])two),
                 CLASP_ERR_CONFIG, "g.txt:1: 'crane' names classes 0 and 2", "index");
    clasp_class_groups_free(&g);
    /* A class named by digits is that class before it is an index. */
    char digits[3][CLASP_CLASS_NAME_MAX] = {"10", "2", "0"};
    assert_ok(parse("2,a\n0,b\n", &g));
    assert_ok(clasp_class_groups_resolve(&g, "imagefolder", 3, (const char(*)[32])digits));
    assert_int_equal(g.group_of[1], 0); /* named "2" */
    assert_int_equal(g.group_of[2], 1); /* named "0" */
    assert_int_equal(g.group_of[0], 2); /* unlisted */
    clasp_class_groups_free(&g);
    /* ... and index 1 is then the class named "2", already listed. */
    assert_ok(parse("2,a\n1,b\n", &g));
    assert_fails(clasp_class_groups_resolve(&g, "imagefolder", 3, (const char(*)[32])digits),
                 CLASP_ERR_CONFIG, "g.txt:2: class 1 (2) is listed twice", NULL);
    clasp_class_groups_free(&g);
}

/* ImageNet: the WordNet id, or the human name as the data set names it. */
static void imagenet_wordnet_ids(void **state)
{
    (void)state;
    char(*names)[CLASP_CLASS_NAME_MAX] = calloc(1000, sizeof *names);
    assert_non_null(names);
    for (int c = 0; c < 1000; c++) snprintf(names[c], sizeof names[c], "name %d", c);
    clasp_class_groups g;
    assert_ok(parse("n01440764\tfish\nn15075141\tpaper\nname 5,fish\n", &g));
    assert_ok(clasp_class_groups_resolve(&g, "imagenet", 1000, (const char(*)[32])names));
    assert_int_equal(g.group_of[0], 0);
    assert_int_equal(g.group_of[999], 1);
    assert_int_equal(g.group_of[5], 0);
    assert_int_equal(g.group_of[1], 2);
    assert_int_equal(g.n_unlisted, 997);
    /* An id means nothing to another data set of 1000 classes. */
    assert_fails(clasp_class_groups_resolve(&g, "imagefolder", 1000, (const char(*)[32])names),
                 CLASP_ERR_CONFIG, "g.txt:1: unknown class 'n01440764'", "...");
    clasp_class_groups_free(&g);
    free(names);
}

static void malformed_files(void **state)
{
    (void)state;
    clasp_class_groups g;
    assert_fails(parse("", &g), CLASP_ERR_FORMAT, "g.txt: empty file", NULL);
    assert_fails(parse("# only a comment\n\n  \n", &g), CLASP_ERR_FORMAT, "g.txt: lists no class",
                 NULL);
    assert_fails(parse("cat,a\ncat\n", &g), CLASP_ERR_FORMAT, "g.txt:2: expected CLASS<TAB>GROUP",
                 "'cat'");
    assert_fails(parse("cat,a\n,b\n", &g), CLASP_ERR_FORMAT, "g.txt:2: no class", NULL);
    assert_fails(parse("cat,   # none\n", &g), CLASP_ERR_FORMAT, "g.txt:1: no group", NULL);
    assert_fails(parse("cat," CLASP_GROUPS_UNLISTED "\n", &g), CLASP_ERR_FORMAT,
                 "g.txt:1:", "reserved");
    /* Bounds: a line, a class, a group name. */
    char line[CLASP_GROUPS_MAX_LINE + 40];
    memset(line, 'x', sizeof line);
    memcpy(line, "\n\ncat,", 6);
    line[sizeof line - 1] = '\0';
    assert_fails(parse(line, &g), CLASP_ERR_FORMAT, "g.txt:3: line longer than 512 bytes", NULL);
    /* Exactly at the limit it is read (and fails only on its group name). */
    memset(line, 'g', sizeof line);
    memcpy(line, "cat,", 4);
    line[CLASP_GROUPS_MAX_LINE] = '\0';
    assert_fails(parse(line, &g), CLASP_ERR_FORMAT, "g.txt:1: group name longer than 63", NULL);
    char cls[80];
    snprintf(cls, sizeof cls, "%040d,a\n", 7);
    assert_fails(parse(cls, &g), CLASP_ERR_FORMAT, "g.txt:1: class", "longer than any class name");
    /* The text need not end in a NUL: the message quotes a bounded part
     * (found by fuzz_groups; ASan sees a read past this exact-size copy). */
    static const char longcls[] = "9RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR,a";
    char *exact = malloc(sizeof longcls - 1);
    assert_non_null(exact);
    memcpy(exact, longcls, sizeof longcls - 1);
    assert_fails(clasp_class_groups_parse(exact, sizeof longcls - 1, "g.txt", &g), CLASP_ERR_FORMAT,
                 "g.txt:1: class '9RRRRRRRRRRRRRRRRRRRRRRR...'", NULL);
    free(exact);
    char name63[80];
    snprintf(name63, sizeof name63, "cat,%063d\n", 1);
    assert_ok(parse(name63, &g));
    assert_int_equal(strlen(g.names[0]), 63);
    clasp_class_groups_free(&g);
    /* Not text: a NUL, other control bytes, invalid UTF-8; valid UTF-8 is
     * free text. */
    static const char nul[] = "cat,a\ndog\0,b\n";
    assert_fails(clasp_class_groups_parse(nul, sizeof nul - 1, "g.txt", &g), CLASP_ERR_FORMAT,
                 "g.txt:2: control byte 0x00 at byte offset 9", "not a text file");
    assert_fails(parse("cat,a\x1b[0m\n", &g), CLASP_ERR_FORMAT, "g.txt:1: control byte 0x1b", NULL);
    assert_fails(parse("cat,a\rdog,b\n", &g), CLASP_ERR_FORMAT, "g.txt:1: control byte 0x0d", NULL);
    assert_fails(parse("cat,\xff\xfe\n", &g), CLASP_ERR_FORMAT, "g.txt:1: byte 0xff", "UTF-8");
    assert_fails(parse("cat,\xc0\xaf\n", &g), CLASP_ERR_FORMAT, "not UTF-8", NULL); /* overlong */
    assert_fails(parse("cat,\xed\xa0\x80\n", &g), CLASP_ERR_FORMAT, "not UTF-8", NULL);
    assert_fails(parse("cat,caf\xc3\n", &g), CLASP_ERR_FORMAT, "not UTF-8", NULL); /* cut */
    assert_ok(parse("cat,caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x88\n", &g));
    clasp_class_groups_free(&g);
    /* More class lines than any data set has classes. */
    size_t cap = 1001 * 12 + 1, len = 0;
    char *many = malloc(cap);
    assert_non_null(many);
    for (int i = 0; i < 1001; i++) len += (size_t)snprintf(many + len, cap - len, "%d,g\n", i);
    assert_fails(parse(many, &g), CLASP_ERR_FORMAT, "g.txt:1001: more than 1000 class lines", NULL);
    free(many);
    /* Past the size limit, whatever it holds. */
    char *big = malloc((size_t)CLASP_GROUPS_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, '\n', (size_t)CLASP_GROUPS_MAX_BYTES + 1);
    assert_fails(clasp_class_groups_parse(big, (size_t)CLASP_GROUPS_MAX_BYTES + 1, "g.txt", &g),
                 CLASP_ERR_FORMAT, "g.txt: larger than", NULL);
    free(big);
    assert_null(g.names);
}

static void files_on_disk(void **state)
{
    (void)state;
    char dir[256], path[400], folder[400];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/groups.txt", dir);
    clasp_class_groups g;
    assert_fails(clasp_class_groups_read(path, &g), CLASP_ERR_IO, path, "cannot open");
    static const char text[] = "cat\tpets\r\ndog\tpets\r\n";
    tu_write_file(path, text, sizeof text - 1);
    assert_ok(clasp_class_groups_read(path, &g));
    assert_string_equal(g.source, path);
    assert_ok(clasp_class_groups_resolve(&g, "cifar10", 10, names10));
    assert_int_equal(g.group_of[3], 0);
    assert_int_equal(g.n_unlisted, 8);
    clasp_class_groups_free(&g);
    static const char junk[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    tu_write_file(path, junk, sizeof junk - 1);
    assert_fails(clasp_class_groups_read(path, &g), CLASP_ERR_FORMAT, path, ":1: ");
    snprintf(folder, sizeof folder, "%s", dir);
    assert_fails(clasp_class_groups_read(folder, &g), CLASP_ERR_IO, dir, "not a plain file");
    /* A FIFO with no writer: refused at once, never waited on. */
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_fails(clasp_class_groups_read(fifo, &g), CLASP_ERR_IO, fifo, "not a plain file");
    remove(fifo);
    remove(path);
    tu_rmdir(dir);
}

/* The example that ships beside the experiments maps CIFAR-10 whole. */
static void shipped_example(void **state)
{
    (void)state;
    const char *readme = getenv("CLASP_EXPERIMENTS_README");
    if (!readme) skip();
    char path[1024];
    snprintf(path, sizeof path, "%.*s/cifar10-groups.txt", (int)(strrchr(readme, '/') - readme),
             readme);
    clasp_class_groups g;
    assert_ok(clasp_class_groups_read(path, &g));
    assert_ok(clasp_class_groups_resolve(&g, "cifar10", 10, names10));
    assert_int_equal(g.n_groups, 2);
    assert_int_equal(g.n_unlisted, 0);
    static const int want[10] = {0, 0, 1, 1, 1, 1, 1, 1, 0, 0};
    for (int c = 0; c < 10; c++) assert_int_equal(g.group_of[c], want[c]);
    clasp_class_groups_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(by_name_index_comments_crlf),
        cmocka_unit_test(unlisted_classes_form_the_last_group),
        cmocka_unit_test(duplicates_name_both_lines),
        cmocka_unit_test(unknown_and_ambiguous_classes),
        cmocka_unit_test(imagenet_wordnet_ids),
        cmocka_unit_test(malformed_files),
        cmocka_unit_test(files_on_disk),
        cmocka_unit_test(shipped_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
