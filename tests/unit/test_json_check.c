/*
 * test_json_check.c - tables of inputs for the JSON validator, the UTF-8 check and the JSON
 * string and number writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json_check.h"

/* A C string literal with its length, so cases may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1

struct valid_case {
    const char *in;
    size_t len;
    int want;
};

static const struct valid_case valid_cases[] = {
    {S("0"), 1},
    {S("-0"), 1},
    {S("12"), 1},
    {S("-12.5e+3"), 1},
    {S("1E5"), 1},
    {S("1e-0"), 1},
    {S("0.0"), 1},
    {S("true"), 1},
    {S("false"), 1},
    {S("null"), 1},
    {S("\"\""), 1},
    {S("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""), 1},
    {S("\"\\u00e9\\uD83D\\uDE00\""), 1},
    {S("\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""), 1},
    {S("\"\x7F\""), 1},
    {S("[]"), 1},
    {S("{}"), 1},
    {S(" \t\r\n[ 1 , \"a\" , [ ] , { } ] \n"), 1},
    {S("{\"a\":1,\"b\":{\"c\":[true,false,null]}}"), 1},
    {S("{ \"a\" : 1 , \"a\" : 2 }"), 1},
    {S(""), 0},
    {S("   "), 0},
    {S("01"), 0},
    {S("-01"), 0},
    {S("-"), 0},
    {S("+1"), 0},
    {S("1."), 0},
    {S(".5"), 0},
    {S("1e"), 0},
    {S("1e+"), 0},
    {S("0x10"), 0},
    {S("NaN"), 0},
    {S("Infinity"), 0},
    {S("tru"), 0},
    {S("truex"), 0},
    {S("nul"), 0},
    {S("1 2"), 0},
    {S("[1,]"), 0},
    {S("[,1]"), 0},
    {S("[1 2]"), 0},
    {S("[1"), 0},
    {S("]"), 0},
    {S("{\"a\":1,}"), 0},
    {S("{\"a\" 1}"), 0},
    {S("{\"a\"}"), 0},
    {S("{a:1}"), 0},
    {S("{1:1}"), 0},
    {S("{\"a\":1"), 0},
    {S("'a'"), 0},
    {S("\"abc"), 0},
    {S("\"a\nb\""), 0},
    {S("\"a\tb\""), 0},
    {S("\"a\0b\""), 0},
    {S("\"\\x41\""), 0},
    {S("\"\\u12\""), 0},
    {S("\"\\u12G4\""), 0},
    {S("\"\\uD83D\""), 0},
    {S("\"\\uD83Dx\""), 0},
    {S("\"\\uD83D\\u0041\""), 0},
    {S("\"\\uDE00\""), 0},
    {S("\"\\"), 0},
    {S("\"\xC3\""), 0},
    {S("\"\xC0\xAF\""), 0},
    {S("\"\xED\xA0\x80\""), 0},
    {S("\"\xF4\x90\x80\x80\""), 0},
    {S("\"\xFF\""), 0},
    {S("\xEF\xBB\xBF{}"), 0},
    {S("1\0"), 0},
    {S("[1]\f"), 0},
    {S("/* c */ 1"), 0},
};

static void test_is_valid(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        int got = ferry_json_is_valid(c->in, c->len);

        if (got != c->want)
            fail_msg("case %zu '%s': got %d, want %d", i, c->in, got, c->want);
    }
}

/* Bytes that end or break the plain run of a string, or only look like they might. The
 * string scan checks eight bytes at a time, so each is tried at every place in a word. */
static const struct valid_case in_string_cases[] = {
    {S("\x01"), 0},
    {S("\x1f"), 0},
    {S("\t"), 0},
    {S(" "), 1},
    {S("~"), 1},
    {S("\x7f"), 1},
    {S("!"), 1},
    {S("#"), 1},
    {S("["), 1},
    {S("]"), 1},
    {S("\""), 0}, /* ends the string early: junk follows */
    {S("\\n"), 1},
    {S("\\u00e9"), 1},
    {S("\\x"), 0},
    {S("\xc3\xa9"), 1},
    {S("\x80"), 0},
    {S("\xff"), 0},
    {S("\xed\xa0\x80"), 0},
    {S("\0"), 0},
};

#define IN_STRING_PAD 24

/* "aaa" X "aaa" with X after 0 to 16 plain bytes: valid exactly when X is. */
static void test_string_bytes_at_every_place(void **state)
{
    char text[2 * IN_STRING_PAD + 16];

    (void)state;
    for (size_t i = 0; i < sizeof(in_string_cases) / sizeof(in_string_cases[0]); i++) {
        const struct valid_case *c = &in_string_cases[i];

        for (size_t before = 0; before <= 16; before++) {
            size_t len = 0;

            text[len++] = '"';
            memset(text + len, 'a', before);
            len += before;
            memcpy(text + len, c->in, c->len);
            len += c->len;
            memset(text + len, 'a', IN_STRING_PAD);
            len += IN_STRING_PAD;
            text[len++] = '"';
            if (ferry_json_is_valid(text, len) != c->want)
                fail_msg("case %zu after %zu bytes: got %d, want %d", i, before, !c->want, c->want);
        }
    }
}

/* Builds depth levels of "[" then "]" (or "{"a":" then "}"). */
static char *nested(int depth, int objects)
{
    const char *open = objects ? "{\"a\":" : "[";
    size_t olen = strlen(open), pos = 0;
    char *s = malloc((size_t)depth * (olen + 1) + 2);
    int i;

    assert_non_null(s);
    for (i = 0; i < depth; i++, pos += olen)
        memcpy(s + pos, open, olen);
    s[pos++] = '1';
    for (i = 0; i < depth; i++)
        s[pos++] = objects ? '}' : ']';
    s[pos] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    static const struct {
        int depth, objects, want;
    } cases[] = {
        {FERRY_JSON_MAX_DEPTH, 0, 1},
        {FERRY_JSON_MAX_DEPTH + 1, 0, 0},
        {FERRY_JSON_MAX_DEPTH, 1, 1},
        {FERRY_JSON_MAX_DEPTH + 1, 1, 0},
        {10000, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = nested(cases[i].depth, cases[i].objects);

        if (ferry_json_is_valid(s, strlen(s)) != cases[i].want)
            fail_msg("depth case %zu: want %d", i, cases[i].want);
        free(s);
    }
}

static void test_length_is_respected(void **state)
{
    (void)state;
    assert_true(ferry_json_is_valid("[1]garbage", 3));
    assert_false(ferry_json_is_valid("[1]", 2));
    assert_false(ferry_json_is_valid(NULL, 0));
}

static const struct valid_case utf8_cases[] = {
    {S(""), 1},
    {S("plain ascii"), 1},
    {S("nul\0inside"), 1},
    {S("\xC2\x80"), 1},
    {S("\xDF\xBF"), 1},
    {S("\xE0\xA0\x80"), 1},
    {S("\xED\x9F\xBF"), 1},
    {S("\xEE\x80\x80"), 1},
    {S("\xF0\x90\x80\x80"), 1},
    {S("\xF4\x8F\xBF\xBF"), 1},
    {S("\x80"), 0},
    {S("\xC0\x80"), 0},
    {S("\xC1\xBF"), 0},
    {S("\xC2"), 0},
    {S("\xC2\x41"), 0},
    {S("\xE0\x9F\xBF"), 0},
    {S("\xED\xA0\x80"), 0},
    {S("\xE1\x80"), 0},
    {S("\xF0\x8F\xBF\xBF"), 0},
    {S("\xF4\x90\x80\x80"), 0},
    {S("\xF5\x80\x80\x80"), 0},
    {S("\xFE"), 0},
    {S("ok\xFF"), 0},
};

static void test_utf8(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const struct valid_case *c = &utf8_cases[i];

        if (ferry_utf8_is_valid(c->in, c->len) != c->want)
            fail_msg("utf8 case %zu: want %d", i, c->want);
    }
}

struct string_case {
    const char *in;
    size_t len;
    const char *want;
};

static const struct string_case string_cases[] = {
    {S(""), "\"\""},
    {S("hello"), "\"hello\""},
    {S("a\"b\\c/d"), "\"a\\\"b\\\\c/d\""},
    {S("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\""},
    {S("\x01\x1F\0"), "\"\\u0001\\u001f\\u0000\""},
    {S("\x7F"), "\"\x7F\""},
    {S("caf\xC3\xA9 \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""},
    {S("a\xFF"
       "b"),
     "\"a\xEF\xBF\xBD"
     "b\""},
    {S("\xC3"), "\"\xEF\xBF\xBD\""},
    /* A truncated 3-byte sequence is one maximal subpart: one replacement. */
    {S("\xE2\x82"
       "x"),
     "\"\xEF\xBF\xBD"
     "x\""},
    /* Surrogates encoded in UTF-8: E0-EF lead with a bad second byte, then lone continuations. */
    {S("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {S("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {S("\xF0\x9F\x98"
       "\n"),
     "\"\xEF\xBF\xBD\\n\""},
};

static void test_add_string(void **state)
{
    struct ferry_buf b;
    size_t i;

    (void)state;
    ferry_buf_init(&b, 1024);
    for (i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]); i++) {
        const struct string_case *c = &string_cases[i];

        ferry_buf_reset(&b);
        assert_int_equal(ferry_json_add_string(&b, c->in, c->len), 0);
        if (b.len != strlen(c->want) || memcmp(b.data, c->want, b.len) != 0)
            fail_msg("string case %zu: got '%s', want '%s'", i, b.data, c->want);
        if (!ferry_json_is_valid(b.data, b.len))
            fail_msg("string case %zu: output '%s' is not valid JSON", i, b.data);
    }
    ferry_buf_release(&b);
}

static void test_add_string_cap(void **state)
{
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, 10);
    assert_int_equal(ferry_buf_adds(&b, "ab"), 0);
    /* "ab" and "a\nbcde" quoted make 11 bytes, one past the cap: nothing is kept. */
    assert_int_equal(ferry_json_add_string(&b, "a\nbcde", 6), -1);
    assert_int_equal(b.len, 2);
    assert_int_equal(b.failed, 0);
    assert_string_equal(b.data, "ab");
    /* Exactly the cap. */
    assert_int_equal(ferry_json_add_string(&b, "a\nbcd", 5), 0);
    assert_string_equal(b.data, "ab\"a\\nbcd\"");
    ferry_buf_release(&b);
}

static void test_add_int(void **state)
{
    static const struct {
        int64_t v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {7, "7"},
        {-1, "-1"},
        {1700000000123, "1700000000123"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };
    struct ferry_buf b;
    size_t i;

    (void)state;
    ferry_buf_init(&b, 64);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ferry_buf_reset(&b);
        assert_int_equal(ferry_json_add_int(&b, cases[i].v), 0);
        assert_string_equal(b.data, cases[i].want);
    }
    ferry_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_valid),       cmocka_unit_test(test_string_bytes_at_every_place),
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_utf8),           cmocka_unit_test(test_add_string),
        cmocka_unit_test(test_add_string_cap), cmocka_unit_test(test_add_int),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
