/*
 * test_jsonscan.c - unit tests of the JSON cursor of ingest (src/ingest/jsonscan.c): finding a
 * path, compacting, decoding strings and integers, and walking objects and arrays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/jsonscan.h"

struct find_case {
    const char *json;
    const char *path;
    int want; /* 1 found, 0 not */
    const char *span;
    enum ferry_jtype type;
};

static const struct find_case find_cases[] = {
    {"{\"user\":{\"id\":42}}", "user.id", 1, "42", FERRY_JSON_NUMBER},
    {"{\"user\":{\"id\":\"u-1\"}}", "user.id", 1, "\"u-1\"", FERRY_JSON_STRING},
    {"{\"user\":{\"id\":\"u-1\"}}", "user", 1, "{\"id\":\"u-1\"}", FERRY_JSON_OBJECT},
    {" { \"a\" : 1 , \"b\" : [ 10 , { \"c\" : null } ] } ", "b.1.c", 1, "null", FERRY_JSON_NULL},
    {"{\"b\":[10,20,30]}", "b.2", 1, "30", FERRY_JSON_NUMBER},
    {"{\"b\":[10,20,30]}", "b.3", 0, NULL, 0},
    {"{\"b\":[10,20,30]}", "b.x", 0, NULL, 0},
    {"{\"a\":{\"b\":1}}", "a.c", 0, NULL, 0},
    {"{\"a\":1}", "a.b", 0, NULL, 0},
    {"{\"a\":\"x\"}", "a.0", 0, NULL, 0},
    {"[1,[2,3]]", "1.0", 1, "2", FERRY_JSON_NUMBER},
    {"{\"a.b\":1,\"a\":{\"b\":2}}", "a.b", 1, "2", FERRY_JSON_NUMBER},
    {"{\"\\u0061\":true}", "a", 1, "true", FERRY_JSON_TRUE},
    {"{\"a\":1,\"a\":2}", "a", 1, "1", FERRY_JSON_NUMBER},
    {"{\"x\":\"}\",\"a\":false}", "a", 1, "false", FERRY_JSON_FALSE},
};

static void test_find(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
        const struct find_case *c = &find_cases[i];
        const char *span = NULL;
        size_t len = 0;
        enum ferry_jtype type = FERRY_JSON_INVALID;
        int got = ferry_json_find(c->json, strlen(c->json), c->path, &span, &len, &type);
        if (got != c->want)
            fail_msg("case %zu (%s): got %d", i, c->path, got);
        if (got == 1) {
            assert_int_equal(len, strlen(c->span));
            assert_memory_equal(span, c->span, len);
            assert_int_equal(type, c->type);
        }
    }
}

struct compact_case {
    const char *in, *out;
};

static const struct compact_case compact_cases[] = {
    {"1", "1"},
    {" { \"a\" : [ 1 , 2 ] } ", "{\"a\":[1,2]}"},
    {"\"a b\\\" c \"", "\"a b\\\" c \""},
    {"[\"\\\\\", \" \"]", "[\"\\\\\",\" \"]"},
    {"{\n\t\"k\"\r\n:\n\"v\"}", "{\"k\":\"v\"}"},
};

static void test_compact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(compact_cases) / sizeof(compact_cases[0]); i++) {
        char out[64];
        size_t n = ferry_json_compact(compact_cases[i].in, strlen(compact_cases[i].in), out);
        assert_int_equal(n, strlen(compact_cases[i].out));
        assert_memory_equal(out, compact_cases[i].out, n);
    }
}

struct string_case {
    const char *json;
    const char *want; /* NULL: refused */
    size_t want_len;
};

static const struct string_case string_cases[] = {
    {"\"plain\"", "plain", 5},
    {"  \"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7},
    {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5},
    {"\"\\u00e9\\u20ac\"", "\xc3\xa9\xe2\x82\xac", 5},
    {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
    {"\"\\u0000\"", "\0", 1},
    {"\"\xc3\xa9\"", "\xc3\xa9", 2},
    {"\"\\ud83d\"", NULL, 0},
    {"\"\\ude00\"", NULL, 0},
    {"\"\\ud83d\\u0041\"", NULL, 0},
    {"\"\\x\"", NULL, 0},
    {"\"\\u12\"", NULL, 0},
    {"\"a\nb\"", NULL, 0},
    {"\"\xff\"", NULL, 0},
    {"\"\xc3\"", NULL, 0},
    {"\"open", NULL, 0},
    {"42", NULL, 0},
};

static void test_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]); i++) {
        const struct string_case *c = &string_cases[i];
        struct ferry_jscan s;
        char out[64];
        size_t len = 0;
        int rc;

        ferry_jscan_init(&s, c->json, strlen(c->json));
        rc = ferry_jscan_string(&s, out, &len);
        if ((rc == 0) != (c->want != NULL))
            fail_msg("case %zu: got %d", i, rc);
        if (c->want) {
            assert_int_equal(len, c->want_len);
            assert_memory_equal(out, c->want, len);
            assert_int_equal(ferry_jscan_finish(&s), 0);
        } else {
            assert_non_null(s.error);
        }
    }
}

struct int_case {
    const char *json;
    int ok;
    int64_t want;
};

static const struct int_case int_cases[] = {
    {"0", 1, 0},
    {"7", 1, 7},
    {" -12 ", 1, -12},
    {"9223372036854775807", 1, INT64_MAX},
    {"9223372036854775808", 0, 0},
    {"01", 0, 0},
    {"1.0", 0, 0},
    {"1e3", 0, 0},
    {"-", 0, 0},
    {"\"1\"", 0, 0},
    {"null", 0, 0},
};

static void test_ints(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        struct ferry_jscan s;
        int64_t v = -99;
        int rc;
        ferry_jscan_init(&s, int_cases[i].json, strlen(int_cases[i].json));
        rc = ferry_jscan_int(&s, &v);
        if ((rc == 0) != int_cases[i].ok)
            fail_msg("case %zu (%s): got %d", i, int_cases[i].json, rc);
        if (int_cases[i].ok)
            assert_int_equal(v, int_cases[i].want);
    }
}

/* Walks an object of arrays and checks names, truncation and values. */
static void test_walk(void **state)
{
    const char *json = "{\"a\":[1,\"x\",{}],\"a234567890123456789012345678901234567890123456789"
                       "012345678901234567\":null,\"b\":[]}";
    char name[FERRY_JSCAN_NAME_MAX + 1];
    struct ferry_jscan s;
    const char *span;
    size_t len, members = 0, elements = 0;
    int truncated;

    (void)state;
    ferry_jscan_init(&s, json, strlen(json));
    assert_int_equal(ferry_jscan_enter(&s, '{'), 0);
    assert_int_equal(ferry_jscan_member(&s, &members, name, &truncated), 1);
    assert_string_equal(name, "a");
    assert_int_equal(ferry_jscan_enter(&s, '['), 0);
    while (ferry_jscan_element(&s, &elements) == 1)
        assert_int_equal(ferry_jscan_value(&s, &span, &len), 0);
    assert_int_equal(elements, 3);
    assert_int_equal(ferry_jscan_member(&s, &members, name, &truncated), 1);
    assert_true(truncated);
    assert_string_equal(name, "");
    assert_int_equal(ferry_jscan_peek(&s), FERRY_JSON_NULL);
    assert_int_equal(ferry_jscan_value(&s, &span, &len), 0);
    assert_int_equal(ferry_jscan_member(&s, &members, name, &truncated), 1);
    assert_false(truncated);
    assert_string_equal(name, "b");
    elements = 0;
    assert_int_equal(ferry_jscan_enter(&s, '['), 0);
    assert_int_equal(ferry_jscan_element(&s, &elements), 0);
    assert_int_equal(ferry_jscan_member(&s, &members, name, &truncated), 0);
    assert_int_equal(members, 3);
    assert_int_equal(ferry_jscan_finish(&s), 0);
}

/* Values that are not JSON are refused with the cursor left where the value starts. */
static void test_bad_values(void **state)
{
    static const char *const bad[] = {"",  "tru",        "[1,]",  "{\"a\"}",   "[1", "\"x", "01",
                                      "-", "{\"a\":1,}", "nulll", "[\"\\q\"]", "1.", ".5"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_jscan s;
        const char *span;
        size_t len;
        ferry_jscan_init(&s, bad[i], strlen(bad[i]));
        if (ferry_jscan_value(&s, &span, &len) == 0 && ferry_jscan_finish(&s) == 0)
            fail_msg("'%s' was taken as a value", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),    cmocka_unit_test(test_compact),
        cmocka_unit_test(test_strings), cmocka_unit_test(test_ints),
        cmocka_unit_test(test_walk),    cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
