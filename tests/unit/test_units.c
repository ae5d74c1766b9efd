/*
 * test_units.c - durations, sizes, integers, numbers and listen addresses as written in config
 * files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/units.h"

struct number_case {
    const char *text;
    int ok;
    int64_t want;
};

static void test_durations(void **state)
{
    static const struct number_case cases[] = {
        {"250ms", 1, 250},
        {"10s", 1, 10000},
        {"2m", 1, 120000},
        {"1h", 1, 3600000},
        {"1.5s", 1, 1500},
        {"0", 1, 0},
        {"0s", 1, 0},
        {"10", 0, 0},
        {"", 0, 0},
        {"s", 0, 0},
        {"-1s", 0, 0},
        {"10 s", 0, 0},
        {"10sec", 0, 0},
        {"ten", 0, 0},
        {" 1s", 0, 0},
        {"010s", 1, 10000},
        /* plain decimal only: no hex, exponent, sign, inf/nan or bare '.' */
        {"0x10s", 0, 0},
        {"0x1s", 0, 0},
        {"0x0", 0, 0},
        {"1e3ms", 0, 0},
        {"1e3", 0, 0},
        {"+1s", 0, 0},
        {"infs", 0, 0},
        {"nan", 0, 0},
        {"1.s", 0, 0},
        {".5s", 0, 0},
        {"1.5e0s", 0, 0},
        {"1s ", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -42;
        int rc = ferry_duration_parse(cases[i].text, &got);
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(got, cases[i].want);
    }
}

static void test_sizes(void **state)
{
    static const struct number_case cases[] = {
        {"100", 1, 100},
        {"100B", 1, 100},
        {"512KiB", 1, 524288},
        {"1MiB", 1, 1048576},
        {"2GiB", 1, 2147483648LL},
        {"1KB", 1, 1000},
        {"1MB", 1, 1000000},
        {"1.5KiB", 1, 1536},
        {"1.5", 1, 2}, /* a fraction of a byte rounds, bare or with a suffix */
        {"1.5B", 1, 2},
        {"1.4", 1, 1},
        {"1kib", 0, 0},
        {"", 0, 0},
        {"-5", 0, 0},
        {"MiB", 0, 0},
        {"99999999999GiB", 0, 0},
        {"99999999999999999999", 0, 0},
        {"0.5KiB", 1, 512},
        {"0x10", 0, 0},
        {"0X10", 0, 0},
        {"0x1p4", 0, 0},
        {"1e3", 0, 0},
        {"1E3", 0, 0},
        {"1e3KiB", 0, 0},
        {"+5", 0, 0},
        {" 5", 0, 0},
        {"5 ", 0, 0},
        {"inf", 0, 0},
        {"nan", 0, 0},
        {"1.", 0, 0},
        {"1.KiB", 0, 0},
        {".5KiB", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -42;
        int rc = ferry_size_parse(cases[i].text, &got);
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(got, cases[i].want);
    }
}

static void test_integers(void **state)
{
    static const struct number_case cases[] = {
        {"42", 1, 42},
        {"0", 1, 0},
        {"-7", 1, -7},
        {"010", 1, 10},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0},
        {"", 0, 0},
        {"-", 0, 0},
        {"0x10", 0, 0},
        {"+5", 0, 0},
        {" 5", 0, 0},
        {"5 ", 0, 0},
        {"--1", 0, 0},
        {"- 1", 0, 0},
        {"1.5", 0, 0},
        {"1e3", 0, 0},
        {"inf", 0, 0},
        {"ten", 0, 0},
    };
    (void)state;
    assert_int_equal(ferry_int_parse(NULL, &(int64_t){0}), -1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -42;
        int rc = ferry_int_parse(cases[i].text, &got);
        print_message("case: '%s'\n", cases[i].text);
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(got, cases[i].want);
    }
}

static void test_doubles(void **state)
{
    static const struct {
        const char *text;
        int ok;
        double want;
    } cases[] = {
        {"2", 1, 2.0}, {"1.5", 1, 1.5}, {"-0.25", 1, -0.25}, {"007.50", 1, 7.5}, {"", 0, 0},
        {"-", 0, 0},   {"0x10", 0, 0},  {"0x1p3", 0, 0},     {"1e3", 0, 0},      {"1E-3", 0, 0},
        {"inf", 0, 0}, {"-inf", 0, 0},  {"infinity", 0, 0},  {"nan", 0, 0},      {"NAN", 0, 0},
        {"+1", 0, 0},  {" 1", 0, 0},    {"1 ", 0, 0},        {"1.", 0, 0},       {".5", 0, 0},
        {"1,5", 0, 0}, {"1.5.0", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got = -42;
        int rc = ferry_double_parse(cases[i].text, &got);
        print_message("case: '%s'\n", cases[i].text);
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok)
            assert_true(got == cases[i].want);
    }
}

static void test_formats(void **state)
{
    char out[32];
    (void)state;
    ferry_duration_format(250, out, sizeof(out));
    assert_string_equal(out, "250ms");
    ferry_duration_format(120000, out, sizeof(out));
    assert_string_equal(out, "2m");
    ferry_size_format(1048576, out, sizeof(out));
    assert_string_equal(out, "1MiB");
    ferry_size_format(1000, out, sizeof(out));
    assert_string_equal(out, "1000");
}

static void test_hostports(void **state)
{
    static const struct {
        const char *text;
        int ok;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:8080", 1, "127.0.0.1", 8080},
        {":9000", 1, "0.0.0.0", 9000},
        {"[::1]:80", 1, "::1", 80},
        {"localhost:0", 1, "localhost", 0},
        {"nope", 0, NULL, 0},
        {"host:", 0, NULL, 0},
        {"host:70000", 0, NULL, 0},
        {"::1:80", 0, NULL, 0},
        {"[::1]80", 0, NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[64];
        int port = -1;
        int rc = ferry_hostport_parse(cases[i].text, host, sizeof(host), &port);
        assert_int_equal(rc == 0, cases[i].ok);
        if (!cases[i].ok)
            continue;
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations), cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_integers),  cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_formats),   cmocka_unit_test(test_hostports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
