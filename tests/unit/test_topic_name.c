/*
 * test_topic_name.c - Kafka's topic name rules: a table of names with whether each is legal
 * and, when not, what ferry_topic_name_check says about it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/topic_name.h"

#define NAME_MAX_TEST 300

struct name_case {
    const char *name; /* NULL: 'x' repeated len times */
    size_t len;
    const char *error; /* NULL: legal */
};

#define ALLOWED "but Kafka allows only ASCII letters, digits, '.', '_' and '-'"

static const struct name_case cases[] = {
    {"orders", 6, NULL},
    {"a.b_c-D9", 8, NULL},
    {"...", 3, NULL},
    {".hidden", 7, NULL},
    {NULL, 249, NULL},
    {NULL, 250, "topic name is 250 characters long, Kafka allows at most 249"},
    {NULL, 300, "topic name is 300 characters long, Kafka allows at most 249"},
    {"", 0, "expected a topic name, got an empty one"},
    {".", 1, "'.' is not allowed as a topic name"},
    {"..", 2, "'..' is not allowed as a topic name"},
    {"a b", 3, "topic name 'a b' holds ' ', " ALLOWED},
    {"a/b", 3, "topic name 'a/b' holds '/', " ALLOWED},
    {"ns:topic", 8, "topic name 'ns:topic' holds ':', " ALLOWED},
    {"caf\xC3\xA9", 5, "topic name holds byte 0xc3 at offset 3, " ALLOWED},
    {"tab\there", 8, "topic name holds byte 0x09 at offset 3, " ALLOWED},
    {"ordersX", 6, NULL}, /* only len bytes count */
};

static void test_names(void **state)
{
    char name[NAME_MAX_TEST], err[256];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct name_case *c = &cases[i];
        int rc;

        if (c->name)
            memcpy(name, c->name, c->len);
        else
            memset(name, 'x', c->len);
        err[0] = '\0';
        rc = ferry_topic_name_check(name, c->len, err, sizeof(err));
        print_message("case %zu: %s\n", i, c->error ? c->error : "legal");
        assert_int_equal(ferry_topic_name_valid(name, c->len), c->error == NULL);
        assert_int_equal(rc, c->error ? -1 : 0);
        if (c->error)
            assert_string_equal(err, c->error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
