/*
 * test_header_name.c - unit tests of what an HTTP header name may be (src/route/header_name.c):
 * a table of names and whether each is a token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/header_name.h"

struct name_case {
    const char *name;
    int token;
};

static const struct name_case name_cases[] = {
    {"X-Tenant", 1},
    {"content-type", 1},
    {"!#$%&'*+-.^_`|~09azAZ", 1},
    {"", 0},
    {"X Tenant", 0},
    {"X-Tenant:", 0},
    {"X-Tenant\r\nHost", 0},
    {"X\tTab", 0},
    {"(comment)", 0},
    {"a/b", 0},
    {"a\"b", 0},
    {"a=b", 0},
    {"a{b}", 0},
    {"a\x7f", 0},
    {"caf\xc3\xa9", 0},
};

static void test_tokens(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        int got = ferry_header_name_is_token(name_cases[i].name);
        if (got != name_cases[i].token)
            fail_msg("'%s': is_token %d, want %d", name_cases[i].name, got, name_cases[i].token);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
