/*
 * test_header_value.c - the bytes a header value may not carry: a table of texts with the
 * offset of the first such byte, or their length when there is none, and one of whole strings
 * with whether each may be a header value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/header_value.h"

static void test_unsafe(void **state)
{
    static const struct {
        const char *p;
        size_t n, want;
    } cases[] = {
        {"", 0, 0},       {"plain text", 10, 10}, {"tab\there", 8, 8},    {"a\x01", 2, 1},
        {"\x7f", 1, 0},   {"ab\0c", 4, 2},        {"\xc3\xa9\x80", 3, 3}, {"x\r\n", 3, 1},
        {"ok\x1f", 3, 2}, {"ok\x1fX", 2, 2}, /* only n bytes count */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (ferry_header_value_unsafe(cases[i].p, cases[i].n) != cases[i].want)
            fail_msg("case %zu: got %zu, want %zu", i,
                     ferry_header_value_unsafe(cases[i].p, cases[i].n), cases[i].want);
}

static void test_valid(void **state)
{
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"", 1},
        {"application/json; charset=utf-8", 1},
        {"text/plain;\tq=1", 1},
        {"caf\xc3\xa9", 1},
        {"text/plain\r\nX-Evil: 1", 0},
        {"a\x7f", 0},
        {"\x01", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!ferry_header_value_valid(cases[i].s) != !cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, ferry_header_value_valid(cases[i].s),
                     cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsafe),
        cmocka_unit_test(test_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
