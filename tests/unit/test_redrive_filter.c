/*
 * test_redrive_filter.c - the selection of `ferry redrive`: offset bounds, --since times,
 * --status codes, the verdict on one dead letter, and the canonical text a saved run is
 * matched by.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "route/redrive_filter.h"

static void test_bounds(void **state)
{
    static const struct {
        const char *text;
        int ok;
        int32_t partition;
        int64_t offset;
    } cases[] = {
        {"0", 1, -1, 0},
        {"1842", 1, -1, 1842},
        {"3:17", 1, 3, 17},
        {"0:0", 1, 0, 0},
        {"9223372036854775806", 1, -1, INT64_MAX - 1},
        {"9223372036854775807", 0, 0, 0},
        {"2147483647:1", 1, INT32_MAX, 1},
        {"2147483648:1", 0, 0, 0},
        {"", 0, 0, 0},
        {"-1", 0, 0, 0},
        {"+1", 0, 0, 0},
        {"1:", 0, 0, 0},
        {":1", 0, 0, 0},
        {"1:2:3", 0, 0, 0},
        {"x", 0, 0, 0},
        {"1 ", 0, 0, 0},
        {"0x10", 0, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_redrive_bound b = {-7, -7};
        char err[256] = "";
        int rc = ferry_redrive_bound_parse(cases[i].text, &b, err, sizeof(err));
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok) {
            assert_int_equal(b.partition, cases[i].partition);
            assert_int_equal(b.offset, cases[i].offset);
        } else {
            assert_non_null(strstr(err, cases[i].text));
        }
    }
}

static void test_times(void **state)
{
    static const int64_t now = 1764826800000; /* 2025-12-04T05:40:00Z */
    static const struct {
        const char *text;
        int ok;
        int64_t want;
    } cases[] = {
        {"15m", 1, now - 15 * 60000},
        {"90s", 1, now - 90000},
        {"2h", 1, now - 7200000},
        {"0s", 1, now},
        {"1764826800000", 1, 1764826800000},
        {"0", 1, 0},
        {"2025-12-04T05:40:00Z", 1, now},
        {"2025-12-04T05:40:00.250Z", 1, now + 250},
        {"2025-12-04 05:40:00z", 1, now},
        {"1970-01-01T00:00:00Z", 1, 0},
        {"2025-12-04T05:40:00", 0, 0},
        {"2025-12-04T05:40:00+01:00", 0, 0},
        {"2025-12-04", 0, 0},
        {"yesterday", 0, 0},
        {"", 0, 0},
        {"-5m", 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -42;
        char err[256];
        int rc = ferry_redrive_time_parse(cases[i].text, now, &got, err, sizeof(err));
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(got, cases[i].want);
    }
}

static void test_statuses(void **state)
{
    static const struct {
        const char *text;
        long want; /* 0: an error */
    } cases[] = {{"400", 400}, {"100", 100}, {"599", 599},  {"99", 0},    {"600", 0},
                 {"4xx", 0},   {"", 0},      {"0400", 400}, {"40000", 0}, {" 400", 0}};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long got = -1;
        char err[256];
        int rc = ferry_redrive_status_parse(cases[i].text, &got, err, sizeof(err));
        assert_int_equal(rc == 0, cases[i].want != 0);
        if (cases[i].want)
            assert_int_equal(got, cases[i].want);
    }
}

static void add(struct ferry_redrive_bound *b, size_t *n, int32_t partition, int64_t offset)
{
    b[*n].partition = partition;
    b[*n].offset = offset;
    (*n)++;
}

static void test_ranges(void **state)
{
    struct ferry_redrive_filter f;
    char err[256];
    (void)state;

    ferry_redrive_filter_init(&f);
    assert_int_equal(ferry_redrive_first(&f, 3), 0);
    assert_true(ferry_redrive_end(&f, 3) == INT64_MAX);
    add(f.from, &f.nfrom, -1, 10);
    add(f.to, &f.nto, -1, 20);
    add(f.from, &f.nfrom, 2, 5);
    add(f.to, &f.nto, 1, 11);
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), 0);
    /* a partition's own bound beats the general one; the other side stays general */
    assert_int_equal(ferry_redrive_first(&f, 0), 10);
    assert_int_equal(ferry_redrive_end(&f, 0), 21);
    assert_int_equal(ferry_redrive_first(&f, 2), 5);
    assert_int_equal(ferry_redrive_end(&f, 2), 21);
    assert_int_equal(ferry_redrive_first(&f, 1), 10);
    assert_int_equal(ferry_redrive_end(&f, 1), 12);

    f.to[1].offset = 9; /* partition 1: from 10 (general) to 9 */
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), -1);
    assert_string_equal(err, "partition 1: --from 10 is after --to 9");
    f.to[1].offset = 10; /* one offset is a valid range */
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), 0);
    add(f.from, &f.nfrom, 2, 6);
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), -1);
    assert_string_equal(err, "--from is given twice for partition 2");
    /* the admin endpoint's JSON fields have no dashes */
    assert_int_equal(ferry_redrive_filter_check(&f, "", err, sizeof(err)), -1);
    assert_string_equal(err, "from is given twice for partition 2");

    ferry_redrive_filter_init(&f);
    f.since_text = "1h";
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), 0);
    add(f.to, &f.nto, -1, 3);
    assert_int_equal(ferry_redrive_filter_check(&f, "--", err, sizeof(err)), -1);
    assert_string_equal(err, "--since cannot be combined with --from or --to");
    assert_int_equal(ferry_redrive_filter_check(&f, "", err, sizeof(err)), -1);
    assert_string_equal(err, "since cannot be combined with from or to");
}

static void test_verdicts(void **state)
{
    struct ferry_redrive_filter f;
    (void)state;

    ferry_redrive_filter_init(&f);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", 0, -1),
                     FERRY_REDRIVE_SEND);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "payments", 400, 5),
                     FERRY_REDRIVE_OTHER_ROUTE);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", NULL, 400, 5),
                     FERRY_REDRIVE_OTHER_ROUTE);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders2", 400, 5),
                     FERRY_REDRIVE_OTHER_ROUTE);
    f.since_ms = 1000;
    f.statuses[f.nstatuses++] = 404;
    f.statuses[f.nstatuses++] = 400;
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", 400, 1000),
                     FERRY_REDRIVE_SEND);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", 404, 999),
                     FERRY_REDRIVE_TOO_OLD);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", 500, 2000),
                     FERRY_REDRIVE_STATUS);
    /* no response at all (a template error, a timeout) has no status to match */
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", 0, 2000),
                     FERRY_REDRIVE_STATUS);
}

static void test_describe_is_canonical(void **state)
{
    struct ferry_redrive_filter a, b;
    char ta[FERRY_REDRIVE_DESCRIBE_MAX], tb[FERRY_REDRIVE_DESCRIBE_MAX];
    (void)state;

    ferry_redrive_filter_init(&a);
    ferry_redrive_filter_describe(&a, ta, sizeof(ta));
    assert_string_equal(ta, "select");

    add(a.from, &a.nfrom, 3, 7);
    add(a.from, &a.nfrom, -1, 2);
    a.statuses[a.nstatuses++] = 404;
    a.statuses[a.nstatuses++] = 400;
    ferry_redrive_filter_init(&b);
    add(b.from, &b.nfrom, -1, 2);
    add(b.from, &b.nfrom, 3, 7);
    b.statuses[b.nstatuses++] = 400;
    b.statuses[b.nstatuses++] = 404;
    ferry_redrive_filter_describe(&a, ta, sizeof(ta));
    ferry_redrive_filter_describe(&b, tb, sizeof(tb));
    assert_string_equal(ta, "select from=*:2,3:7 status=400,404");
    assert_string_equal(ta, tb);

    b.since_text = "15m";
    ferry_redrive_filter_describe(&b, tb, sizeof(tb));
    assert_string_equal(tb, "select from=*:2,3:7 since=15m status=400,404");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),   cmocka_unit_test(test_times),
        cmocka_unit_test(test_statuses), cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_verdicts), cmocka_unit_test(test_describe_is_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
