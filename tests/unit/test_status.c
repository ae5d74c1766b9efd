/*
 * test_status.c - unit tests of status code classification (src/route/status.c).
 *
 * Each case builds rules from the defaults plus a list of overrides, applied in the listed
 * order, and classifies one status; the order-independence of specificity shows up as pairs of
 * cases that differ only in the order of their overrides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/status.h"

#define S FERRY_OUTCOME_SUCCESS
#define R FERRY_OUTCOME_RETRY
#define D FERRY_OUTCOME_DEAD_LETTER

struct override {
    enum ferry_outcome outcome;
    const char *pattern; /* NULL ends the list */
};

/* No overrides: the defaults alone. */
#define NONE                                                                                       \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

struct classify_case {
    struct override set[4];
    long status;
    enum ferry_outcome want;
};

static const struct classify_case classify_cases[] = {
    /* defaults */
    {NONE, 200, S},
    {NONE, 204, S},
    {NONE, 299, S},
    {NONE, 100, D},
    {NONE, 101, D},
    {NONE, 301, D},
    {NONE, 304, D},
    {NONE, 400, D},
    {NONE, 404, D},
    {NONE, 409, D},
    {NONE, 499, D},
    {NONE, 408, R},
    {NONE, 429, R},
    {NONE, 500, R},
    {NONE, 503, R},
    {NONE, 599, R},
    /* outside 100..599: a protocol error */
    {NONE, 0, R},
    {NONE, -1, R},
    {NONE, 99, R},
    {NONE, 600, R},
    {NONE, 700, R},
    {{{D, "5xx"}}, 700, R},
    /* one override of each kind */
    {{{R, "404"}}, 404, R},
    {{{R, "404"}}, 403, D},
    {{{D, "5xx"}}, 503, D},
    {{{D, "5xx"}}, 429, R},
    {{{S, "3XX"}}, 302, S},
    {{{S, "409-410"}}, 408, R},
    {{{S, "409-410"}}, 409, S},
    {{{S, "409-410"}}, 410, S},
    {{{S, "409-410"}}, 411, D},
    {{{R, "200-200"}}, 200, R},
    {{{R, "200-200"}}, 201, S},
    {{{D, "2xx"}}, 250, D},
    /* a code beats a class, whatever the order */
    {{{R, "4xx"}, {D, "404"}}, 404, D},
    {{{D, "404"}, {R, "4xx"}}, 404, D},
    {{{D, "404"}, {R, "4xx"}}, 403, R},
    /* a range beats a class, whatever the order */
    {{{D, "500-504"}, {S, "5xx"}}, 502, D},
    {{{S, "5xx"}, {D, "500-504"}}, 502, D},
    {{{D, "500-504"}, {S, "5xx"}}, 505, S},
    /* a code beats a range, whatever the order */
    {{{D, "500-504"}, {R, "503"}}, 503, R},
    {{{R, "503"}, {D, "500-504"}}, 503, R},
    {{{R, "503"}, {D, "500-504"}}, 502, D},
    /* equals: the later one wins */
    {{{D, "500-510"}, {S, "505-520"}}, 507, S},
    {{{S, "505-520"}, {D, "500-510"}}, 507, D},
    {{{S, "404"}, {R, "404"}}, 404, R},
    {{{S, "4xx"}, {R, "4xx"}}, 404, R},
    /* all three stacked */
    {{{S, "4xx"}, {R, "400-409"}, {D, "404"}}, 404, D},
    {{{D, "404"}, {R, "400-409"}, {S, "4xx"}}, 405, R},
    {{{D, "404"}, {R, "400-409"}, {S, "4xx"}}, 410, S},
};

static void run_classify_case(size_t index, const struct classify_case *c)
{
    ferry_status_rules *rules = ferry_status_rules_new();
    char errstr[256];
    enum ferry_outcome got;

    assert_non_null(rules);
    for (size_t i = 0; i < 4 && c->set[i].pattern; i++)
        assert_int_equal(ferry_status_rules_set(rules, c->set[i].outcome, c->set[i].pattern, errstr,
                                                sizeof(errstr)),
                         0);
    got = ferry_status_classify(rules, c->status);
    if (got != c->want)
        fail_msg("case %zu, status %ld: got %s, want %s", index, c->status,
                 ferry_status_outcome_name(got), ferry_status_outcome_name(c->want));
    ferry_status_rules_destroy(rules);
}

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++)
        run_classify_case(i, &classify_cases[i]);
}

#define EXPECTED "status: expected a code like 404, a class like 5xx or a range like 500-504, "

struct bad_case {
    const char *pattern;
    const char *want;
};

static const struct bad_case bad_cases[] = {
    {"xyz", EXPECTED "got 'xyz'"},
    {"", EXPECTED "got ''"},
    {NULL, EXPECTED "got ''"},
    {"40", EXPECTED "got '40'"},
    {"4040", EXPECTED "got '4040'"},
    {"4x4", EXPECTED "got '4x4'"},
    {"4x", EXPECTED "got '4x'"},
    {"5xxx", EXPECTED "got '5xxx'"},
    {"x5xx", EXPECTED "got 'x5xx'"},
    {" 404", EXPECTED "got ' 404'"},
    {"404 ", EXPECTED "got '404 '"},
    {"+404", EXPECTED "got '+404'"},
    {"400-", EXPECTED "got '400-'"},
    {"-404", EXPECTED "got '-404'"},
    {"400--404", EXPECTED "got '400--404'"},
    {"400-40x", EXPECTED "got '400-40x'"},
    {"400 - 404", EXPECTED "got '400 - 404'"},
    {"4xx-5xx", EXPECTED "got '4xx-5xx'"},
    {"600", "status: '600' is outside 100-599"},
    {"099", "status: '099' is outside 100-599"},
    {"6xx", "status: '6xx' is outside 100-599"},
    {"0xx", "status: '0xx' is outside 100-599"},
    {"100-600", "status: '100-600' is outside 100-599"},
    {"504-500", "status: range '504-500' ends before it starts"},
};

static void test_bad_patterns(void **state)
{
    ferry_status_rules *rules = ferry_status_rules_new();

    (void)state;
    assert_non_null(rules);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char errstr[256] = "";

        assert_int_equal(ferry_status_rules_set(rules, FERRY_OUTCOME_SUCCESS, bad_cases[i].pattern,
                                                errstr, sizeof(errstr)),
                         -1);
        assert_string_equal(errstr, bad_cases[i].want);
    }
    /* Failed calls leave the defaults alone. */
    assert_int_equal(ferry_status_classify(rules, 404), D);
    assert_int_equal(ferry_status_classify(rules, 500), R);
    assert_int_equal(ferry_status_classify(rules, 504), R);
    ferry_status_rules_destroy(rules);
}

static void test_bad_outcome(void **state)
{
    ferry_status_rules *rules = ferry_status_rules_new();
    char errstr[256] = "";

    (void)state;
    assert_non_null(rules);
    assert_int_equal(
        ferry_status_rules_set(rules, (enum ferry_outcome)7, "404", errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "status: unknown outcome 7 for '404'");
    assert_int_equal(ferry_status_classify(rules, 404), D);
    ferry_status_rules_destroy(rules);
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(ferry_status_outcome_name(S), "success");
    assert_string_equal(ferry_status_outcome_name(R), "retry");
    assert_string_equal(ferry_status_outcome_name(D), "dead_letter");
    assert_string_equal(ferry_status_outcome_name((enum ferry_outcome)9), "unknown");
}

static void test_destroy_null(void **state)
{
    (void)state;
    ferry_status_rules_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),     cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_bad_outcome),  cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_destroy_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
