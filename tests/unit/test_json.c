/*
 * test_json.c - tables of inputs for the JSON module (src/core/json.c and json_scan.c): the
 * checker and its messages, UTF-8, the writers, the cursor, decoding, the normal form, and the
 * path syntax that webhook keys and template ${value.PATH} share (docs/json-paths.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/json_scan.h"

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

/* A tombstone's value is NULL with length 0: no text, and no NULL + 0 (undefined) on the way. */
static void test_null_text(void **state)
{
    struct ferry_json_error err = {0};
    struct ferry_json_cursor c;
    struct ferry_json_found found;

    (void)state;
    assert_int_equal(ferry_json_check(NULL, 0, &err), -1);
    assert_int_equal(err.offset, 0);
    assert_int_equal(ferry_json_is_valid(NULL, 0), 0);
    ferry_json_cursor_init(&c, NULL, 0);
    assert_int_equal(ferry_json_peek(&c), FERRY_JSON_INVALID);
    assert_int_equal(ferry_json_finish(&c), 0);
    assert_true(ferry_json_find(NULL, 0, "a", &found) != 1);
}

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

/* Where and why the checker stops, as template messages show it. */
struct error_case {
    const char *in;
    const char *why;
    size_t offset;
};

static const struct error_case error_cases[] = {
    {"", "unexpected end of text", 0},
    {"  ", "unexpected end of text", 2},
    {"[1,", "unexpected end of text", 3},
    {"[1", "unexpected end of text", 2},
    {"[1 2]", "expected ',' or ']'", 3},
    {"{\"a\":1 \"b\"}", "expected ',' or '}'", 7},
    {"{\"a\" 1}", "expected ':'", 5},
    {"{1:1}", "expected a member name", 1},
    {"{\"a\":1,}", "expected a member name", 7},
    {"not json", "expected a value", 0},
    {"tru", "expected a value", 0},
    {"01", "invalid number (leading zero)", 1},
    {"1.", "unexpected end of text", 2},
    {"-x", "invalid number", 1},
    {"1e+", "unexpected end of text", 3},
    {"\"abc", "unterminated string", 4},
    {"\"a\nb\"", "control character in a string", 2},
    {"[\"\\q\"]", "invalid escape in a string", 4},
    {"\"\xff\"", "invalid UTF-8 in a string", 1},
    {"{} x", "unexpected text after the value", 3},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]",
     "nested deeper than 64 levels", 65},
};

static void test_check_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        struct ferry_json_error err = {NULL, 99};

        if (ferry_json_check(c->in, strlen(c->in), &err) == 0)
            fail_msg("case %zu '%s': accepted", i, c->in);
        if (strcmp(err.why, c->why) != 0 || err.offset != c->offset)
            fail_msg("case %zu '%s': '%s' at %zu, want '%s' at %zu", i, c->in, err.why, err.offset,
                     c->why, c->offset);
    }
    assert_int_equal(ferry_json_check("{}", 2, NULL), 0);
    assert_int_equal(ferry_json_check(NULL, 0, NULL), -1);
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

        if (ferry_json_utf8_is_valid(c->in, c->len) != c->want)
            fail_msg("utf8 case %zu: want %d", i, c->want);
    }
}

struct add_string_case {
    const char *in;
    size_t len;
    const char *want;
};

static const struct add_string_case add_string_cases[] = {
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
    for (i = 0; i < sizeof(add_string_cases) / sizeof(add_string_cases[0]); i++) {
        const struct add_string_case *c = &add_string_cases[i];

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

/* ---- the cursor ---- */

struct compact_case {
    const char *in, *out;
};

static const struct compact_case compact_cases[] = {
    {"1", "1"},
    {" { \"a\" : [ 1 , 2 ] } ", "{\"a\":[1,2]}"},
    {"\"a b\\\" c \"", "\"a b\\\" c \""},
    {"[\"\\\\\", \" \"]", "[\"\\\\\",\" \"]"},
    {"{\n\t\"k\"\r\n:\n\"v\"}", "{\"k\":\"v\"}"},
    /* compact already, long enough for the word-at-a-time check, with bytes of UTF-8 */
    {"{\"name\":\"caf\xc3\xa9\",\"n\":[1,2,3]}", "{\"name\":\"caf\xc3\xa9\",\"n\":[1,2,3]}"},
    /* one space, in a later word, in the tail bytes, in a string */
    {"{\"abcdefgh\":\"12345\", \"k\":1}", "{\"abcdefgh\":\"12345\",\"k\":1}"},
    {"[1234567890,1234567 ]", "[1234567890,1234567]"},
    {"{\"abcdefgh\":\"a b\"}", "{\"abcdefgh\":\"a b\"}"},
    {"[\"\xc3\xa9\xc3\xa9\", 1]", "[\"\xc3\xa9\xc3\xa9\",1]"}, /* a space beside UTF-8 bytes */
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

/* sse.c compacts a buffer into itself. */
static void test_compact_in_place(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(compact_cases) / sizeof(compact_cases[0]); i++) {
        char text[64];
        size_t n;

        snprintf(text, sizeof(text), "%s", compact_cases[i].in);
        n = ferry_json_compact(text, strlen(text), text);
        assert_int_equal(n, strlen(compact_cases[i].out));
        assert_memory_equal(text, compact_cases[i].out, n);
    }
}

struct value_len_case {
    const char *text;
    size_t len; /* 0: no valid value starts there */
};

static const struct value_len_case value_len_cases[] = {
    {"1,2", 1},     {"{\"a\":[1,2]} x", 11},
    {"\"s\" ,", 3}, {"true]", 4},
    {"nulll", 4},   {" 12}", 3},
    {"-0.5e3,", 6}, {"[1,]", 0},
    {"tru", 0},     {"01", 0},
    {"{\"a\"}", 0}, {"\"x", 0},
    {"", 0},
};

static void test_value_len(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(value_len_cases) / sizeof(value_len_cases[0]); i++) {
        const struct value_len_case *c = &value_len_cases[i];
        size_t n = ferry_json_value_len(c->text, strlen(c->text), NULL);

        if (n != c->len)
            fail_msg("'%s': %zu bytes, want %zu", c->text, n, c->len);
    }
    assert_int_equal(ferry_json_value_len(NULL, 0, NULL), 0);
}

struct decode_case {
    const char *json;
    const char *want; /* NULL: refused */
    size_t want_len;
};

static const struct decode_case decode_cases[] = {
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
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        struct ferry_json_cursor s;
        char out[64];
        size_t len = 0;
        int rc;

        ferry_json_cursor_init(&s, c->json, strlen(c->json));
        rc = ferry_json_read_string(&s, out, &len);
        if ((rc == 0) != (c->want != NULL))
            fail_msg("case %zu: got %d", i, rc);
        if (c->want) {
            assert_int_equal(len, c->want_len);
            assert_memory_equal(out, c->want, len);
            assert_int_equal(ferry_json_finish(&s), 0);
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
    {"-9223372036854775808", 1, INT64_MIN},
    {"-9223372036854775809", 0, 0},
    {"18446744073709551616", 0, 0}, /* 2^64: wrapped to 0 before the check */
    {"18446744073709551620", 0, 0}, /* wrapped to 4 */
    {"92233720368547758070", 0, 0},
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
        struct ferry_json_cursor s;
        int64_t v = -99;
        int rc;
        ferry_json_cursor_init(&s, int_cases[i].json, strlen(int_cases[i].json));
        rc = ferry_json_read_int(&s, &v);
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
    char name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_json_cursor s;
    const char *span;
    size_t len, members = 0, elements = 0;
    int truncated;

    (void)state;
    ferry_json_cursor_init(&s, json, strlen(json));
    assert_int_equal(ferry_json_enter(&s, '{'), 0);
    assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 1);
    assert_string_equal(name, "a");
    assert_int_equal(ferry_json_enter(&s, '['), 0);
    while (ferry_json_next_element(&s, &elements) == 1)
        assert_int_equal(ferry_json_read_value(&s, &span, &len), 0);
    assert_int_equal(elements, 3);
    assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 1);
    assert_true(truncated);
    assert_string_equal(name, "");
    assert_int_equal(ferry_json_peek(&s), FERRY_JSON_NULL);
    assert_int_equal(ferry_json_read_value(&s, &span, &len), 0);
    assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 1);
    assert_false(truncated);
    assert_string_equal(name, "b");
    elements = 0;
    assert_int_equal(ferry_json_enter(&s, '['), 0);
    assert_int_equal(ferry_json_next_element(&s, &elements), 0);
    assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 0);
    assert_int_equal(members, 3);
    assert_int_equal(ferry_json_finish(&s), 0);
}

/* A member name longer than the limit, with escapes after the limit, comes back truncated and
 * writes nothing past the name buffer (it once wrote the escapes past it: any body could). */
static void test_long_name_escapes(void **state)
{
    char json[1024], name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_json_cursor s;
    size_t members = 0, n = 0;
    int truncated, i;

    (void)state;
    n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"");
    for (i = 0; i < FERRY_JSON_NAME_MAX + 10; i++)
        json[n++] = 'a';
    for (i = 0; i < 100; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "\\n\\u00e9");
    n += (size_t)snprintf(json + n, sizeof(json) - n, "\":1}");
    ferry_json_cursor_init(&s, json, n);
    assert_int_equal(ferry_json_enter(&s, '{'), 0);
    assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 1);
    assert_true(truncated);
    assert_string_equal(name, "");
    assert_int_equal(ferry_json_peek(&s), FERRY_JSON_NUMBER);
}

/* Member names as the cursor gives them. One that cannot be a C string whole, too long or
 * holding U+0000, comes back empty with the reason, so that no caller's strcmp takes it for a
 * known name: "records\u0000" once read as "records". */
struct name_case {
    const char *json;
    const char *name;
    int truncated;
};

static const struct name_case name_cases[] = {
    {"{\"records\":1}", "records", 0},
    {"{\"\":1}", "", 0},
    {"{\"\\u00e9t\\u00e9\":1}", "\xc3\xa9t\xc3\xa9", 0},
    {"{\"%64\":1}", "%64", 0},
    {"{\"%64a\":1}", "", FERRY_JSON_NAME_LONG},
    {"{\"%64\\u0000\":1}", "", FERRY_JSON_NAME_LONG},
    {"{\"records\\u0000\":1}", "", FERRY_JSON_NAME_NUL},
    {"{\"key\\u0000junk\":1}", "", FERRY_JSON_NAME_NUL},
    {"{\"\\u0000\":1}", "", FERRY_JSON_NAME_NUL},
    {"{\"\\u0000name\":1}", "", FERRY_JSON_NAME_NUL},
    {"{\"%63\\u0000\":1}", "", FERRY_JSON_NAME_NUL},
};

/* The case's text with each %64 or %63 spelled out as that many a's. */
static void expand(const char *in, char *out, size_t size)
{
    size_t n = 0;

    while (*in && n + 65 < size) {
        int many = strncmp(in, "%64", 3) == 0 ? 64 : strncmp(in, "%63", 3) == 0 ? 63 : 0;
        if (many) {
            memset(out + n, 'a', (size_t)many);
            n += (size_t)many;
            in += 3;
        } else {
            out[n++] = *in++;
        }
    }
    out[n] = '\0';
}

static void test_member_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        char json[256], want[256], name[FERRY_JSON_NAME_MAX + 1];
        struct ferry_json_cursor s;
        size_t members = 0;
        int truncated = -1;

        expand(name_cases[i].json, json, sizeof(json));
        expand(name_cases[i].name, want, sizeof(want));
        ferry_json_cursor_init(&s, json, strlen(json));
        assert_int_equal(ferry_json_enter(&s, '{'), 0);
        assert_int_equal(ferry_json_next_member(&s, &members, name, &truncated), 1);
        if (truncated != name_cases[i].truncated || strcmp(name, want) != 0)
            fail_msg("case %zu: got '%s' (%d), want '%s' (%d)", i, name, truncated, want,
                     name_cases[i].truncated);
        assert_int_equal(ferry_json_peek(&s), FERRY_JSON_NUMBER);
    }
}

/* Messages name such a member by what was wrong with it, never by its part before a NUL. */
static void test_name_label(void **state)
{
    (void)state;
    assert_string_equal(ferry_json_name_label("records", 0), "records");
    assert_string_equal(ferry_json_name_label("", 0), "");
    assert_string_equal(ferry_json_name_label("", FERRY_JSON_NAME_LONG), "(name over 64 bytes)");
    assert_string_equal(ferry_json_name_label("", FERRY_JSON_NAME_NUL), "(name with \\u0000)");
}

/* Values that are not JSON are refused by the read itself, not later by whatever follows. */
static void test_bad_values(void **state)
{
    static const char *const bad[] = {
        "",      "tru",       "[1,]", "{\"a\"}", "[1",    "\"x",  "01",   "-",     "{\"a\":1,}",
        "nulll", "[\"\\q\"]", "1.",   ".5",      "truex", "1e5x", "0x10", "1.5.3", "nulll,1"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_json_cursor s;
        const char *span;
        size_t len;
        ferry_json_cursor_init(&s, bad[i], strlen(bad[i]));
        if (ferry_json_read_value(&s, &span, &len) == 0)
            fail_msg("'%s' was read as a value of %zu bytes", bad[i], len);
    }
}

/* A value's end: the byte after it is left to the caller when it is not part of the value. */
static void test_read_value_end(void **state)
{
    static const struct value_len_case cases[] = {
        {"1,2", 1}, {"true]", 4}, {"\"s\"x", 3}, {"[1]2", 3}, {"{}x", 2}, {"null}", 4},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_json_cursor s;
        const char *span;
        size_t len = 0;
        ferry_json_cursor_init(&s, cases[i].text, strlen(cases[i].text));
        if (ferry_json_read_value(&s, &span, &len) != 0 || len != cases[i].len)
            fail_msg("'%s': read %zu bytes, want %zu", cases[i].text, len, cases[i].len);
    }
}

/* ---- paths: the one syntax of webhook keys and ${value.PATH} ---- */

struct find_case {
    const char *json;
    const char *path;
    int want; /* 1 found, 0 not */
    const char *span;
    enum ferry_json_type type;
    size_t path_len; /* on a miss: how much of the path the message names */
};

static const struct find_case find_cases[] = {
    {"{\"user\":{\"id\":42}}", "user.id", 1, "42", FERRY_JSON_NUMBER, 0},
    {"{\"user\":{\"id\":\"u-1\"}}", "user.id", 1, "\"u-1\"", FERRY_JSON_STRING, 0},
    {"{\"user\":{\"id\":\"u-1\"}}", "user", 1, "{\"id\":\"u-1\"}", FERRY_JSON_OBJECT, 0},
    {" { \"a\" : 1 , \"b\" : [ 10 , { \"c\" : null } ] } ", "b.1.c", 1, "null", FERRY_JSON_NULL, 0},
    {"{\"b\":[10,20,30]}", "b.2", 1, "30", FERRY_JSON_NUMBER, 0},
    {"{\"b\":[10,20,30]}", "b.3", 0, NULL, 0, 3},
    {"{\"b\":[10,20,30]}", "b.x", 0, NULL, 0, 3},
    {"{\"a\":{\"b\":1}}", "a.c", 0, NULL, 0, 3},
    {"{\"a\":1}", "a.b", 0, NULL, 0, 3},
    {"{\"a\":\"x\"}", "a.0", 0, NULL, 0, 3},
    {"[1,[2,3]]", "1.0", 1, "2", FERRY_JSON_NUMBER, 0},
    {"{\"a.b\":1,\"a\":{\"b\":2}}", "a.b", 1, "2", FERRY_JSON_NUMBER, 0},
    {"{\"\\u0061\":true}", "a", 1, "true", FERRY_JSON_TRUE, 0},
    /* a name given twice: the first counts */
    {"{\"a\":1,\"a\":2}", "a", 1, "1", FERRY_JSON_NUMBER, 0},
    {"{\"a\":{\"x\":1},\"b\":0,\"a\":{\"y\":2}}", "a.y", 0, NULL, 0, 3},
    {"{\"x\":\"}\",\"a\":false}", "a", 1, "false", FERRY_JSON_FALSE, 0},
    /* digits index arrays only without a leading zero; on an object they are a name */
    {"{\"b\":[10,20]}", "b.0", 1, "10", FERRY_JSON_NUMBER, 0},
    {"{\"b\":[10,20]}", "b.01", 0, NULL, 0, 4},
    {"{\"b\":[10,20]}", "b.-1", 0, NULL, 0, 4},
    {"{\"b\":[10,20]}", "b.1234567890", 0, NULL, 0, 12},
    {"{\"0\":\"zero\",\"01\":\"one\"}", "0", 1, "\"zero\"", FERRY_JSON_STRING, 0},
    {"{\"0\":\"zero\",\"01\":\"one\"}", "01", 1, "\"one\"", FERRY_JSON_STRING, 0},
    /* names: any length, escapes decoded, exact bytes */
    {"{\"a234567890123456789012345678901234567890123456789012345678901234567890\":7}",
     "a234567890123456789012345678901234567890123456789012345678901234567890", 1, "7",
     FERRY_JSON_NUMBER, 0},
    {"{\"caf\\u00e9\":1,\"x\\\"y\":2,\"a\\/b\":3}", "caf\xc3\xa9", 1, "1", FERRY_JSON_NUMBER, 0},
    {"{\"x\\\"y\":2}", "x\"y", 1, "2", FERRY_JSON_NUMBER, 0},
    {"{\"a\\/b\":3}", "a/b", 1, "3", FERRY_JSON_NUMBER, 0},
    {"{\"ab\":1}", "a", 0, NULL, 0, 1},
    {"{\"a\":1}", "ab", 0, NULL, 0, 2},
    {"{\"\\u0061b\":1}", "a", 0, NULL, 0, 1},
    {"{\"A\":1}", "a", 0, NULL, 0, 1},
    {"{\"\":1}", "x", 0, NULL, 0, 1},
    /* scalars and strings have no members; whitespace around the value is not part of it */
    {"5", "x", 0, NULL, 0, 1},
    {"\"s\"", "0", 0, NULL, 0, 1},
    {"{\"a\": [ 1 , 2 ] }", "a", 1, "[ 1 , 2 ]", FERRY_JSON_ARRAY, 0},
    {"{\"a\": \"x\\\"}\" }", "a", 1, "\"x\\\"}\"", FERRY_JSON_STRING, 0},
    {"{\"a\":{\"b\":{\"c\":[[0,{\"d\":-1.5e3}]]}}}", "a.b.c.0.1.d", 1, "-1.5e3", FERRY_JSON_NUMBER,
     0},
    {"{\"a\":{\"b\":{}}}", "a.b.c.d", 0, NULL, 0, 5},
};

static void test_find(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
        const struct find_case *c = &find_cases[i];
        struct ferry_json_found f = {NULL, 0, FERRY_JSON_INVALID, 99};
        int got;

        if (!ferry_json_is_valid(c->json, strlen(c->json)))
            fail_msg("case %zu: the text is not JSON", i);
        got = ferry_json_find(c->json, strlen(c->json), c->path, &f);
        if (got != c->want)
            fail_msg("case %zu (%s): got %d", i, c->path, got);
        if (got == 1 && (f.len != strlen(c->span) || memcmp(f.span, c->span, f.len) != 0))
            fail_msg("case %zu (%s): found '%.*s'", i, c->path, (int)f.len, f.span);
        if (got == 1 && f.type != c->type)
            fail_msg("case %zu (%s): type %d", i, c->path, f.type);
        if (got == 0 && f.path_len != c->path_len)
            fail_msg("case %zu (%s): path_len %zu, want %zu", i, c->path, f.path_len, c->path_len);
    }
}

static void test_path_errors(void **state)
{
    static const struct {
        const char *path;
        const char *why;
    } cases[] = {
        {"a", NULL},
        {"user.id", NULL},
        {"items.0.sku", NULL},
        {"a b.$x.\xc3\xa9", NULL},
        {"", "empty path segment"},
        {".", "empty path segment"},
        {".a", "empty path segment"},
        {"a.", "empty path segment"},
        {"a..b", "empty path segment"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = ferry_json_path_error(cases[i].path);

        if ((why == NULL) != (cases[i].why == NULL) || (why && strcmp(why, cases[i].why) != 0))
            fail_msg("case %zu '%s': got '%s'", i, cases[i].path, why ? why : "(none)");
    }
}

/* ---- decoding and the normal form ---- */

struct text_case {
    const char *in;
    int want_rc;
    const char *want; /* the output, or the error's reason */
};

struct decoded_case {
    const char *in;
    int want_rc;
    const char *want;
    size_t want_len;
};

static const struct decoded_case decoded_cases[] = {
    {"\"\"", 0, S("")},
    {"\"plain\"", 0, S("plain")},
    {"\"a\\nb\\u0000c\\u00e9\\ud83d\\ude00\\/\"", 0, S("a\nb\0c\xc3\xa9\xf0\x9f\x98\x80/")},
    {"\"a\\qb\"", FERRY_JSON_WRITE_VALUE, S("")},
    {"\"open", FERRY_JSON_WRITE_VALUE, S("")},
};

static void test_add_decoded(void **state)
{
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(decoded_cases) / sizeof(decoded_cases[0]); i++) {
        const struct decoded_case *c = &decoded_cases[i];
        int rc;

        ferry_buf_reset(&b);
        assert_int_equal(ferry_buf_addc(&b, '<'), 0);
        rc = ferry_json_add_decoded(&b, c->in, strlen(c->in));
        if (rc != c->want_rc)
            fail_msg("case %zu: rc %d", i, rc);
        if (rc == 0 && (b.len != 1 + c->want_len || memcmp(b.data + 1, c->want, c->want_len) != 0))
            fail_msg("case %zu: got '%s'", i, b.data + 1);
        if (rc != 0 && b.len != 1)
            fail_msg("case %zu: not rewound", i);
    }
    ferry_buf_release(&b);
}

static const struct text_case normal_cases[] = {
    {"1", 0, "1"},
    {"-0", 0, "0"},
    {" [ 1.50 , -2 , 1E2 , 1e300, 0.1, 1e-400 ] ", 0, "[1.5,-2,100.0,1e+300,0.1,0.0]"},
    {"9223372036854775807", 0, "9223372036854775807"},
    {"{ \"a\" : true , \"b\" : [ null , false ] }", 0, "{\"a\":true,\"b\":[null,false]}"},
    {"\"caf\\u00e9 \\/ \\\" \\u001F \\t\"", 0, "\"caf\xc3\xa9 / \\\" \\u001f \\t\""},
    {"{\"\\u0041\":\"\\ud83d\\ude00\"}", 0, "{\"A\":\"\xf0\x9f\x98\x80\"}"},
    {"\"\\u0000\"", 0, "\"\\u0000\""},
    {"[\"x y\",{}]", 0, "[\"x y\",{}]"},
    {"123456789012345678901", FERRY_JSON_WRITE_VALUE, "integer out of range"},
    {"[1e400]", FERRY_JSON_WRITE_VALUE, "number out of range"},
    {"[-9223372036854775809]", FERRY_JSON_WRITE_VALUE, "integer out of range"},
    {"{\"a\":18446744073709551621}", FERRY_JSON_WRITE_VALUE, "integer out of range"},
    {"-9223372036854775808", 0, "-9223372036854775808"},
};

static void test_add_normalized(void **state)
{
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, 256);
    for (size_t i = 0; i < sizeof(normal_cases) / sizeof(normal_cases[0]); i++) {
        const struct text_case *c = &normal_cases[i];
        struct ferry_json_error err = {NULL, 0};
        int rc;

        ferry_buf_reset(&b);
        rc = ferry_json_add_normalized(&b, c->in, strlen(c->in), &err);
        if (rc != c->want_rc)
            fail_msg("case %zu '%s': rc %d", i, c->in, rc);
        if (rc == 0 && strcmp(b.data, c->want) != 0)
            fail_msg("case %zu '%s': got '%s', want '%s'", i, c->in, b.data, c->want);
        if (rc == 0 && !ferry_json_is_valid(b.data, b.len))
            fail_msg("case %zu '%s': output is not JSON", i, c->in);
        if (rc != 0 && (b.len != 0 || !err.why || strcmp(err.why, c->want) != 0))
            fail_msg("case %zu '%s': error '%s'", i, c->in, err.why ? err.why : "(none)");
    }
    /* out of room: nothing is kept */
    ferry_buf_release(&b);
    ferry_buf_init(&b, 4);
    assert_int_equal(ferry_json_add_normalized(&b, "[1, 2, 3]", 9, NULL), FERRY_JSON_WRITE_ROOM);
    assert_int_equal(b.len, 0);
    ferry_buf_release(&b);
}

static void test_add_real(void **state)
{
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {12.5, "12.5"},    {0.1, "0.1"},     {3.0, "3.0"},
        {1e300, "1e+300"}, {-3.25, "-3.25"}, {1.0 / 3, "0.3333333333333333"},
        {-0.0, "-0.0"},    {100.0, "100.0"},
    };
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ferry_buf_reset(&b);
        assert_int_equal(ferry_json_add_real(&b, cases[i].d), 0);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, b.data, cases[i].want);
    }
    ferry_buf_release(&b);
}

static void test_read_real(void **state)
{
    static const struct {
        const char *json;
        int ok;
        double want;
    } cases[] = {
        {"1", 1, 1.0},
        {" -2.5e1 ", 1, -25.0},
        {"0.1000000000000000000000000000000000000000000000000000000000000000000000001", 1, 0.1},
        {"1e-400", 1, 0.0},
        {"1e400", 0, 0},
        {"01", 0, 0},
        {"0x10", 0, 0},
        {"\"1\"", 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_json_cursor c;
        double d = -1;
        int rc;

        ferry_json_cursor_init(&c, cases[i].json, strlen(cases[i].json));
        rc = ferry_json_read_real(&c, &d);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu (%s): got %d", i, cases[i].json, rc);
        if (cases[i].ok && d != cases[i].want)
            fail_msg("case %zu (%s): got %g", i, cases[i].json, d);
    }
}

/* ferry_json_skip moves over checked values without looking inside strings. */
static void test_skip(void **state)
{
    static const struct {
        const char *json;
        size_t want; /* the offset after the skip, or 0 when it fails */
    } cases[] = {
        {"1234,", 4},
        {"\"a\\\"]}b\",", 8},
        {" [1,{\"a\":\"]\"},[]] x", 17},
        {"{\"k\":\"\xc3\xa9\\\\\"}", 12},
        {"[1,2", 0},
        {"\"abc", 0},
        {"\"abc\\", 0},
        {"", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_json_cursor c;
        int rc;

        ferry_json_cursor_init(&c, cases[i].json, strlen(cases[i].json));
        rc = ferry_json_skip(&c);
        if ((rc == 0) != (cases[i].want != 0) ||
            (rc == 0 && ferry_json_offset(&c) != cases[i].want))
            fail_msg("case %zu: rc %d at %zu", i, rc, ferry_json_offset(&c));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_valid),       cmocka_unit_test(test_string_bytes_at_every_place),
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_check_errors),   cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_add_string),     cmocka_unit_test(test_add_string_cap),
        cmocka_unit_test(test_add_int),        cmocka_unit_test(test_add_real),
        cmocka_unit_test(test_find),           cmocka_unit_test(test_path_errors),
        cmocka_unit_test(test_compact),        cmocka_unit_test(test_compact_in_place),
        cmocka_unit_test(test_value_len),      cmocka_unit_test(test_strings),
        cmocka_unit_test(test_ints),           cmocka_unit_test(test_read_real),
        cmocka_unit_test(test_null_text),      cmocka_unit_test(test_walk),
        cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_read_value_end),
        cmocka_unit_test(test_skip),           cmocka_unit_test(test_add_decoded),
        cmocka_unit_test(test_add_normalized), cmocka_unit_test(test_long_name_escapes),
        cmocka_unit_test(test_member_names),   cmocka_unit_test(test_name_label),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
