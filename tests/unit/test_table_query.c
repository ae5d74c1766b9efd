/*
 * test_table_query.c - the arguments of a table scan (GET /tables/{t}/keys?prefix=&limit=&after=,
 * src/table/query.c): what decodes, and the 400 message of each kind of bad argument, which
 * names the argument that is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "table/query.h"

struct scan_case {
    const char *prefix, *limit, *after; /* NULL: absent */
    int b64;
    const char *why; /* NULL: decodes */
    size_t plen, alen, want_limit;
};

static const struct scan_case scan_cases[] = {
    {NULL, NULL, NULL, 0, NULL, 0, 0, 100},
    {"ab", "5", NULL, 0, NULL, 2, 0, 5},
    {"YWI", NULL, "AAEC", 1, NULL, 2, 3, 100},
    {"YWI=", "1000", "AAEC", 1, NULL, 2, 3, 1000},
    {NULL, "0", NULL, 0, "limit: expected 1 to 1000, got '0'", 0, 0, 0},
    {NULL, "5x", NULL, 0, "limit: expected 1 to 1000, got '5x'", 0, 0, 0},
    {NULL, "1001", NULL, 0, "limit: expected 1 to 1000, got '1001'", 0, 0, 0},
    /* a prefix that is not base64 was reported as the cursor (found while writing fuzz_table_query)
     */
    {"!!", NULL, NULL, 1, "prefix: not base64", 0, 0, 0},
    {"!!", NULL, "AAEC", 1, "prefix: not base64", 0, 0, 0},
    {"YWI", NULL, "!!", 1, "after: not base64", 0, 0, 0},
    {"!!", NULL, "!!", 0, "after: not base64", 0, 0, 0},
    {"0123456789abcdefX", NULL, NULL, 0, "prefix: longer than limits.max_key", 0, 0, 0},
};

static void test_scan_args(void **state)
{
    struct ferry_table_config cfg = {.name = "t",
                                     .limits = {.max_key_bytes = 16, .max_scan_limit = 1000}};
    struct table t = {.cfg = &cfg};

    (void)state;
    for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
        const struct scan_case *c = &scan_cases[i];
        struct ferry_scan_args args;
        char why[256] = "";
        int rc = ferry_table_scan_args_decode(&t, c->prefix, c->prefix ? strlen(c->prefix) : 0,
                                              c->limit, c->after, c->b64, &args, why, sizeof(why));

        if (c->why) {
            assert_int_equal(rc, -1);
            assert_string_equal(why, c->why);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(args.plen, c->plen);
            assert_int_equal(args.alen, c->alen);
            assert_int_equal(args.limit, c->want_limit);
        }
        ferry_table_scan_args_release(&args);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
