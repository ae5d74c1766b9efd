/*
 * test_fmt.c - numbers and HTTP dates as text: int64 at its edges and digit counts, dates at the
 * calendar's edges (leap days of years divisible by 4, 100 and 400, the ends of months and
 * years) by value, and every day from 1970 to 9999 plus a spread of seconds against gmtime_r
 * and strftime, which the GET path used before.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/fmt.h"

struct int_case {
    int64_t v;
    const char *text;
};

static const struct int_case int_cases[] = {
    {0, "0"},
    {1, "1"},
    {-1, "-1"},
    {9, "9"},
    {10, "10"},
    {-10, "-10"},
    {123456789, "123456789"},
    {INT32_MAX, "2147483647"},
    {INT32_MIN, "-2147483648"},
    {999999999999999999LL, "999999999999999999"},
    {1000000000000000000LL, "1000000000000000000"},
    {INT64_MAX, "9223372036854775807"},
    {INT64_MIN + 1, "-9223372036854775807"},
    {INT64_MIN, "-9223372036854775808"},
};

static void test_int64(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        char got[FERRY_FMT_INT64_SIZE];

        assert_int_equal(ferry_fmt_int64(got, int_cases[i].v), strlen(int_cases[i].text));
        assert_string_equal(got, int_cases[i].text);
    }
}

struct date_case {
    int64_t secs;
    const char *text;
};

static const struct date_case date_cases[] = {
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"}, /* RFC 9110's own example */
    {68255999, "Tue, 29 Feb 1972 23:59:59 GMT"},
    {68256000, "Wed, 01 Mar 1972 00:00:00 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},  /* divisible by 400: a leap year */
    {4107542400, "Mon, 01 Mar 2100 00:00:00 GMT"}, /* divisible by 100: not one */
    {4107542399, "Sun, 28 Feb 2100 23:59:59 GMT"},
    {1798761599, "Thu, 31 Dec 2026 23:59:59 GMT"},
    {1798761600, "Fri, 01 Jan 2027 00:00:00 GMT"},
    {FERRY_FMT_HTTP_DATE_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {-1, ""},
    {FERRY_FMT_HTTP_DATE_MAX + 1, ""},
    {INT64_MAX, ""},
    {INT64_MIN, ""},
};

static void test_date_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
        char got[FERRY_FMT_HTTP_DATE_SIZE];

        assert_int_equal(ferry_fmt_http_date(got, date_cases[i].secs), strlen(date_cases[i].text));
        assert_string_equal(got, date_cases[i].text);
    }
}

/* What read.c wrote before: gmtime_r, then strftime in the C locale. */
static void libc_date(int64_t secs, char *out, size_t size)
{
    time_t t = (time_t)secs;
    struct tm tm;

    assert_non_null(gmtime_r(&t, &tm));
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_date_against_libc(void **state)
{
    (void)state;
    /* every day, each at a second that moves through the day */
    for (int64_t day = 0; day * 86400 <= FERRY_FMT_HTTP_DATE_MAX; day++) {
        int64_t secs = day * 86400 + (day * 7919) % 86400;
        char got[FERRY_FMT_HTTP_DATE_SIZE], want[64];

        libc_date(secs, want, sizeof(want));
        assert_int_equal(ferry_fmt_http_date(got, secs), 29);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_date_cases),
        cmocka_unit_test(test_date_against_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
