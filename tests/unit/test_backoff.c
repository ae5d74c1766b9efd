/*
 * test_backoff.c - unit tests of retry delays and Retry-After parsing (src/route/backoff.c).
 *
 * Delays are random, so each case draws many times from a fixed seed and checks that every
 * draw lies in [0, ceiling] and that the draws spread over most of that range (full jitter).
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route/backoff.h"

#define DRAWS 2000
#define DAY_MS FERRY_BACKOFF_RETRY_AFTER_MAX_MS

struct delay_case {
    const char *name;
    struct ferry_backoff_policy policy;
    int retry;
    int64_t ceiling;
};

static const struct ferry_backoff_policy base = {0, 100, 10000, 2.0};

static const struct delay_case delay_cases[] = {
    {"first retry", {0, 100, 10000, 2.0}, 1, 100},
    {"second retry", {0, 100, 10000, 2.0}, 2, 200},
    {"fifth retry", {0, 100, 10000, 2.0}, 5, 1600},
    {"just below cap", {0, 100, 10000, 2.0}, 7, 6400},
    {"cap reached", {0, 100, 10000, 2.0}, 8, 10000},
    {"far past cap", {0, 100, 10000, 2.0}, 1000, 10000},
    {"largest retry", {0, 100, 10000, 2.0}, INT_MAX, 10000},
    {"retry 0 counts as 1", {0, 100, 10000, 2.0}, 0, 100},
    {"negative retry counts as 1", {0, 100, 10000, 2.0}, -5, 100},
    {"constant", {0, 500, 500, 1.0}, 50, 500},
    {"multiplier 1.5", {0, 1000, 60000, 1.5}, 3, 2250},
    {"initial 0", {0, 0, 10000, 2.0}, 20, 0},
    {"max 0", {0, 0, 0, 2.0}, 1, 0},
    {"huge multiplier", {0, 100, 10000, 1e308}, 3, 10000},
    {"no cap to speak of", {0, 1, INT64_MAX, 2.0}, INT_MAX, INT64_MAX},
    {"negative multiplier, never negative", {0, 100, 10000, -2.0}, 2, 0},
    {"cap above 2^53", {0, 1000, INT64_C(1) << 60, 10.0}, 17, INT64_C(1) << 60},
};

static void check_delays(const struct delay_case *c)
{
    uint64_t rng = 42;
    int64_t lowest = INT64_MAX, highest = -1;

    for (int i = 0; i < DRAWS; i++) {
        int64_t d = ferry_backoff_delay_ms(&c->policy, c->retry, &rng);

        if (d < 0 || d > c->ceiling)
            fail_msg("%s: draw %d is %lld, outside [0, %lld]", c->name, i, (long long)d,
                     (long long)c->ceiling);
        lowest = d < lowest ? d : lowest;
        highest = d > highest ? d : highest;
    }
    /* Full jitter: the draws cover nearly all of [0, ceiling]. */
    if ((double)lowest > 0.01 * (double)c->ceiling || (double)highest < 0.99 * (double)c->ceiling)
        fail_msg("%s: draws span only [%lld, %lld] of [0, %lld]", c->name, (long long)lowest,
                 (long long)highest, (long long)c->ceiling);
}

static void test_delay_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(delay_cases) / sizeof(delay_cases[0]); i++)
        check_delays(&delay_cases[i]);
}

static void test_delay_deterministic(void **state)
{
    uint64_t a = 7, b = 7, c = 8;
    int differs = 0;

    (void)state;
    for (int i = 0; i < 100; i++) {
        int64_t da = ferry_backoff_delay_ms(&base, 10, &a);
        int64_t dc = ferry_backoff_delay_ms(&base, 10, &c);

        assert_int_equal(da, ferry_backoff_delay_ms(&base, 10, &b));
        differs |= da != dc;
    }
    assert_true(differs);
}

struct exhausted_case {
    int max_attempts;
    int attempts;
    int want;
};

static const struct exhausted_case exhausted_cases[] = {
    {0, 1, 0}, {0, INT_MAX, 0}, {1, 1, 1}, {3, 1, 0}, {3, 2, 0}, {3, 3, 1}, {3, 4, 1},
};

static void test_exhausted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(exhausted_cases) / sizeof(exhausted_cases[0]); i++) {
        const struct exhausted_case *c = &exhausted_cases[i];
        struct ferry_backoff_policy p = {c->max_attempts, 100, 1000, 2.0};
        int got = ferry_backoff_exhausted(&p, c->attempts) != 0;

        if (got != c->want)
            fail_msg("max_attempts %d, attempts %d: got %d, want %d", c->max_attempts, c->attempts,
                     got, c->want);
    }
}

struct check_case {
    struct ferry_backoff_policy policy;
    const char *want; /* NULL when the policy is valid */
};

static const struct check_case check_cases[] = {
    {{0, 100, 10000, 2.0}, NULL},
    {{5, 0, 0, 1.0}, NULL},
    {{-1, 100, 10000, 2.0}, "backoff: max_attempts: expected 0 or more, got -1"},
    {{0, -1, 10000, 2.0}, "backoff: expected 0 <= initial_ms <= max_ms, got -1 and 10000"},
    {{0, 200, 100, 2.0}, "backoff: expected 0 <= initial_ms <= max_ms, got 200 and 100"},
    {{0, 100, 10000, 0.5}, "backoff: multiplier: expected a number >= 1, got 0.5"},
    {{0, 100, 10000, NAN}, "backoff: multiplier: expected a number >= 1, got nan"},
    {{0, 100, 10000, INFINITY}, "backoff: multiplier: expected a number >= 1, got inf"},
};

static void test_policy_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        const struct check_case *c = &check_cases[i];
        char errstr[256] = "";
        int rc = ferry_backoff_policy_check(&c->policy, errstr, sizeof(errstr));

        assert_int_equal(rc, c->want ? -1 : 0);
        assert_string_equal(errstr, c->want ? c->want : "");
    }
}

/* Wed, 21 Oct 2015 07:28:00 GMT */
#define DATE_2015 ((time_t)1445412480)

struct retry_after_case {
    const char *value;
    time_t now;
    int64_t want;
};

static const struct retry_after_case retry_after_cases[] = {
    {"2", 0, 2000},
    {" 120 ", 0, 120000},
    {"\t7\t", 0, 7000},
    {"0", 0, 0},
    {"007", 0, 7000},
    {"86400", 0, DAY_MS},
    {"86401", 0, DAY_MS},
    {"99999999999999999999999999999", 0, DAY_MS},
    {"-1", 0, -1},
    {"+5", 0, -1},
    {"1.5", 0, -1},
    {"2 s", 0, -1},
    {"abc", 0, -1},
    {"", 0, -1},
    {"   ", 0, -1},
    {NULL, 0, -1},
    {"Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 - 30, 30000},
    {"  Wed, 21 Oct 2015 07:28:00 GMT  ", DATE_2015 - 30, 30000},
    {"Wednesday, 21-Oct-15 07:28:00 GMT", DATE_2015 - 90, 90000},
    {"Wed Oct 21 07:28:00 2015", DATE_2015 - 1, 1000},
    {"Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015, 0},
    {"Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 + 3600, 0},
    {"Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 - 2 * 86400, DAY_MS},
    {"Wed", DATE_2015, -1},
    {"Wed, 21 Oct 2015 07:28:00 GMT and then a great deal more text than any date holds", DATE_2015,
     -1},
};

static void test_retry_after(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(retry_after_cases) / sizeof(retry_after_cases[0]); i++) {
        const struct retry_after_case *c = &retry_after_cases[i];
        int64_t got = ferry_backoff_retry_after_ms(c->value, c->now);

        if (got != c->want)
            fail_msg("'%s': got %lld, want %lld", c->value ? c->value : "(null)", (long long)got,
                     (long long)c->want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_bounds), cmocka_unit_test(test_delay_deterministic),
        cmocka_unit_test(test_exhausted),    cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_retry_after),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
