#include "testutil.h"

#include <string.h>

static void names_are_distinct_and_known(void **state)
{
    (void)state;
    assert_string_equal(clasp_status_string(CLASP_OK), "ok");
    assert_string_equal(clasp_status_string(CLASP_ERR_FORMAT), "malformed input");
    assert_string_equal(clasp_status_string((clasp_status)999), "unknown status");
    for (int i = 0; i < CLASP_STATUS_COUNT_; i++)
        for (int j = i + 1; j < CLASP_STATUS_COUNT_; j++)
            assert_true(strcmp(clasp_status_string((clasp_status)i),
                               clasp_status_string((clasp_status)j)) != 0);
}

static void message_is_kept_and_returned(void **state)
{
    (void)state;
    clasp_status s = clasp_error(CLASP_ERR_IO, "%s: truncated at byte %d", "f.idx", 42);
    assert_int_equal(s, CLASP_ERR_IO);
    assert_string_equal(clasp_last_error(), "f.idx: truncated at byte 42");
    clasp_error_clear();
    assert_string_equal(clasp_last_error(), "no error message recorded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_distinct_and_known),
        cmocka_unit_test(message_is_kept_and_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
