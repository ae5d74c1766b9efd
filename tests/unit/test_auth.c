/*
 * test_auth.c - unit tests of the listener's API keys and name patterns (src/core/auth.c,
 * src/core/pattern.c) and of ingest's key files: which Authorization header finds which key,
 * which key may write which topic and read which table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/auth.h"
#include "ingest/ingest_config.h"
#include "core/pattern.h"

#define KEY_A "aaaaaaaaaaaaaaaa-orders"
#define KEY_B "bbbbbbbbbbbbbbbb-everything"

static char *orders_topics[] = {"orders", "^orders\\..*"};
static char *all[] = {"^.*"};
static char *price_tables[] = {"prices"};

static ferry_auth *make_auth(void)
{
    struct ferry_cfg_strings orders = {orders_topics, 2}, every = {all, 1};
    struct ferry_cfg_strings prices = {price_tables, 1};
    char err[256] = "";
    ferry_auth *a = ferry_auth_new();

    assert_non_null(a);
    if (ferry_auth_add(a, "orders-service", KEY_A, strlen(KEY_A), &orders, &prices, err,
                       sizeof(err)) ||
        ferry_auth_add(a, "admin", KEY_B, strlen(KEY_B), &every, &every, err, sizeof(err)))
        fail_msg("auth_add: %s", err);
    return a;
}

struct check_case {
    const char *header;
    int want; /* key index or -1 */
};

static const struct check_case check_cases[] = {
    {"Bearer " KEY_A, 0},
    {"Bearer " KEY_B, 1},
    {"bearer " KEY_A, 0},
    {"BEARER   " KEY_B "  ", 1},
    {"Bearer " KEY_A "x", -1},
    {"Bearer " KEY_A " x", -1},
    {"Bearer aaaaaaaaaaaaaaaa-order", -1},
    {"Bearer " KEY_A "\t", 0},
    {"Bearer", -1},
    {"Bearer ", -1},
    {"Basic " KEY_A, -1},
    {"Bearer" KEY_A, -1},
    {KEY_A, -1},
    {"", -1},
    {NULL, -1},
};

static void test_check(void **state)
{
    ferry_auth *a = make_auth();
    (void)state;
    assert_true(ferry_auth_enabled(a));
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        int got = ferry_auth_check(a, check_cases[i].header);
        if (got != check_cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, got, check_cases[i].want);
    }
    assert_string_equal(ferry_auth_name(a, 0), "orders-service");
    assert_string_equal(ferry_auth_name(a, -1), "-");
    ferry_auth_destroy(a);
}

static void test_long_token(void **state)
{
    char header[600];
    ferry_auth *a = make_auth();

    (void)state;
    memset(header, 'a', sizeof(header) - 1);
    memcpy(header, "Bearer ", 7);
    header[sizeof(header) - 1] = '\0';
    assert_int_equal(ferry_auth_check(a, header), -1);
    ferry_auth_destroy(a);
}

struct mask_case {
    const char *topic;
    uint64_t want;
};

static const struct mask_case mask_cases[] = {
    {"orders", 3},  {"orders.eu", 3}, {"orders2", 2},
    {"xorders", 2}, {"payments", 2},  {"orders.", 3},
};

static void test_topic_masks(void **state)
{
    ferry_auth *a = make_auth();
    (void)state;
    for (size_t i = 0; i < sizeof(mask_cases) / sizeof(mask_cases[0]); i++) {
        uint64_t got = ferry_auth_mask(a, FERRY_AUTH_TOPICS, mask_cases[i].topic);
        if (got != mask_cases[i].want)
            fail_msg("%s: got %llu", mask_cases[i].topic, (unsigned long long)got);
    }
    ferry_auth_destroy(a);
}

/* Topics and tables are separate lists: a table's name in topics grants nothing. */
static void test_table_scope(void **state)
{
    ferry_auth *a = make_auth();
    (void)state;
    assert_true(ferry_auth_allows(a, 0, FERRY_AUTH_TABLES, "prices"));
    assert_false(ferry_auth_allows(a, 0, FERRY_AUTH_TABLES, "orders"));
    assert_false(ferry_auth_allows(a, 0, FERRY_AUTH_TOPICS, "prices"));
    assert_true(ferry_auth_allows(a, 1, FERRY_AUTH_TABLES, "anything"));
    assert_false(ferry_auth_allows(a, -1, FERRY_AUTH_TABLES, "prices"));
    assert_false(ferry_auth_allows(a, 2, FERRY_AUTH_TABLES, "prices"));
    assert_int_equal(ferry_auth_mask(a, FERRY_AUTH_TABLES, "prices"), 3);
    ferry_auth_destroy(a);
}

static void test_no_keys(void **state)
{
    ferry_auth *a = ferry_auth_new();

    (void)state;
    assert_non_null(a);
    assert_false(ferry_auth_enabled(a));
    assert_int_equal(ferry_auth_check(a, "Bearer " KEY_A), -1);
    assert_int_equal(ferry_auth_mask(a, FERRY_AUTH_TOPICS, "orders"), 0);
    ferry_auth_destroy(a);
}

static void test_limits(void **state)
{
    char secret[FERRY_AUTH_SECRET_MAX + 2], err[256];
    ferry_auth *a = ferry_auth_new();
    static char *bad[] = {"^(x"};
    struct ferry_cfg_strings bad_list = {bad, 1};

    (void)state;
    memset(secret, 's', sizeof(secret));
    assert_int_equal(
        ferry_auth_add(a, "long", secret, sizeof(secret), NULL, NULL, err, sizeof(err)), -1);
    assert_int_equal(
        ferry_auth_add(a, "bad", KEY_A, strlen(KEY_A), NULL, &bad_list, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key 'bad'"));
    for (int i = 0; i < FERRY_AUTH_KEYS_MAX - 1; i++)
        assert_int_equal(ferry_auth_add(a, "k", KEY_A, strlen(KEY_A), NULL, NULL, err, sizeof(err)),
                         0);
    assert_int_equal(ferry_auth_add(a, "k", KEY_A, strlen(KEY_A), NULL, NULL, err, sizeof(err)),
                     -1);
    ferry_auth_destroy(a);
}

struct key_case {
    const char *key; /* the value, or the file's contents when file is set */
    int file;
    const char *want; /* NULL: refused */
};

static const struct key_case key_cases[] = {
    {"0123456789abcdef", 0, "0123456789abcdef"},
    {"0123456789abcde", 0, NULL},
    {"0123456789abcdef ghi", 0, NULL},
    {"0123456789abcdef\n", 1, "0123456789abcdef"},
    {"0123456789abcdef\r\n\n  ", 1, "0123456789abcdef"},
    {"short\n", 1, NULL},
    {"", 1, NULL},
};

static void test_key_read(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *c = &key_cases[i];
        struct ferry_ingest_api_key_config k = {"k", NULL, NULL, {NULL, 0}, {NULL, 0}};
        char path[] = "/tmp/ferry-test-key-XXXXXX", out[FERRY_INGEST_KEY_MAX + 1], err[256];
        int rc;

        if (c->file) {
            int fd = mkstemp(path);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, c->key, strlen(c->key)), (ssize_t)strlen(c->key));
            close(fd);
            k.key_file = path;
        } else {
            k.key = (char *)c->key;
        }
        rc = ferry_ingest_key_read(&k, out, sizeof(out), err, sizeof(err));
        if (c->file)
            unlink(path);
        if ((rc == 0) != (c->want != NULL))
            fail_msg("case %zu: got %d (%s)", i, rc, rc ? err : out);
        if (c->want)
            assert_string_equal(out, c->want);
    }
}

static void test_key_file_missing(void **state)
{
    struct ferry_ingest_api_key_config k = {
        "k", NULL, "/nonexistent/ferry-key", {NULL, 0}, {NULL, 0}};
    char out[FERRY_INGEST_KEY_MAX + 1], err[256];

    (void)state;
    assert_int_equal(ferry_ingest_key_read(&k, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open '/nonexistent/ferry-key'"));
}

struct pattern_case {
    const char *topic;
    int want;
};

static void test_patterns(void **state)
{
    static char *items[] = {"orders", "^events\\.[a-z]+$", "^logs"};
    static const struct pattern_case cases[] = {
        {"orders", 1},  {"orders2", 0}, {"events.eu", 1}, {"events.eu1", 0},
        {"events.", 0}, {"logs", 1},    {"logs-x", 1},    {"xlogs", 0},
    };
    struct ferry_cfg_strings list = {items, 3};
    char err[256];
    ferry_patterns *p = ferry_patterns_new(&list, err, sizeof(err));

    (void)state;
    assert_non_null(p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (ferry_patterns_match(p, cases[i].topic) != cases[i].want)
            fail_msg("%s: want %d", cases[i].topic, cases[i].want);
    ferry_patterns_destroy(p);
}

static void test_bad_pattern(void **state)
{
    static char *items[] = {"ok", "^(unclosed"};
    struct ferry_cfg_strings list = {items, 2};
    char err[256];

    (void)state;
    assert_null(ferry_patterns_new(&list, err, sizeof(err)));
    assert_non_null(strstr(err, "'^(unclosed' is not a valid regular expression"));
}

static void test_topic_names(void **state)
{
    static const struct pattern_case cases[] = {
        {"orders", 1}, {"a.b_c-D9", 1}, {"", 0},    {".", 0}, {"..", 0},
        {"...", 1},    {"a b", 0},      {"a/b", 0}, {"é", 0},
    };
    char long_name[251];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (ferry_topic_name_valid(cases[i].topic, strlen(cases[i].topic)) != cases[i].want)
            fail_msg("'%s': want %d", cases[i].topic, cases[i].want);
    memset(long_name, 'x', 250);
    assert_true(ferry_topic_name_valid(long_name, 249));
    assert_false(ferry_topic_name_valid(long_name, 250));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),       cmocka_unit_test(test_long_token),
        cmocka_unit_test(test_topic_masks), cmocka_unit_test(test_no_keys),
        cmocka_unit_test(test_table_scope), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_key_read),    cmocka_unit_test(test_key_file_missing),
        cmocka_unit_test(test_patterns),    cmocka_unit_test(test_bad_pattern),
        cmocka_unit_test(test_topic_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
