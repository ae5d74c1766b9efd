/*
 * test_validate.c - tables for record validation (src/route/validate.c): records against
 * schemas with the reason each failure gives, schemas that must not compile with the message
 * they give, and the Confluent wire-format prefix. The Draft 7 test suite's score is
 * test_validate_suite.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/validate.h"

/* A C string literal with its length, so values may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1

static const char user_schema[] =
    "{\"type\":\"object\",\"required\":[\"id\",\"user\"],"
    "\"additionalProperties\":false,"
    "\"properties\":{"
    "\"id\":{\"type\":\"integer\",\"minimum\":1},"
    "\"kind\":{\"enum\":[\"a\",\"b\",null]},"
    "\"v\":{\"const\":{\"x\":[1,2]}},"
    "\"score\":{\"type\":\"number\",\"exclusiveMaximum\":10},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"},"
    "\"minItems\":1,\"maxItems\":2},"
    "\"a/b~c\":{\"type\":\"boolean\"},"
    "\"user\":{\"type\":\"object\",\"required\":[\"email\"],\"properties\":{"
    "\"email\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":5}}}}}";

struct record_case {
    const char *record;
    size_t len;
    const char *want; /* NULL: valid; else the reason */
};

static const struct record_case record_cases[] = {
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"}}"), NULL},
    {S("{\"id\":2.0,\"user\":{\"email\":\"\\u00e9\\u00e9@b\"}}"), NULL},
    {S("{\"id\":1,\"user\":{\"email\":\"a@bcd\"},\"kind\":null,\"tags\":[\"x\",\"yz\"]}"), NULL},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"v\":{\"x\":[1.0,2]},\"score\":9.5}"), NULL},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"a/b~c\":true}"), NULL},
    /* each rule, with the pointer of the value that broke it */
    {S("{\"id\":1,\"user\":{\"email\":\"ab\"}}"), "/user/email: minLength 3"},
    {S("{\"id\":1,\"user\":{\"email\":\"abcdef\"}}"), "/user/email: maxLength 5"},
    {S("{\"id\":1,\"user\":{\"email\":\"\\ud83d\\ude00\\u00e9\"}}"), "/user/email: minLength 3"},
    {S("{\"id\":1,\"user\":{}}"), "/user: required email"},
    {S("{\"user\":{\"email\":\"a@b\"}}"), "(root): required id"},
    {S("{\"id\":0,\"user\":{\"email\":\"a@b\"}}"), "/id: minimum 1"},
    {S("{\"id\":1.5,\"user\":{\"email\":\"a@b\"}}"), "/id: type integer"},
    {S("{\"id\":\"1\",\"user\":{\"email\":\"a@b\"}}"), "/id: type integer"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"kind\":\"c\"}"), "/kind: enum"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"v\":{\"x\":[2,1]}}"), "/v: const"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"score\":10}"), "/score: exclusiveMaximum 10"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"tags\":[]}"), "/tags: minItems 1"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"tags\":[\"a\",\"b\",\"c\"]}"),
     "/tags: maxItems 2"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"tags\":[\"a\",\"B\"]}"),
     "/tags/1: pattern ^[a-z]+$"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"tags\":[\"a\",7]}"), "/tags/1: type string"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"extra\":1}"),
     "/extra: additionalProperties false"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"},\"a/b~c\":1}"), "/a~1b~0c: type boolean"},
    /* a name holding U+0000 is no declared property, whatever comes before the NUL */
    {S("{\"id\\u0000\":1,\"user\":{\"email\":\"a@b\"}}"),
     "/(name with \\u0000): additionalProperties false"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\",\"email\\u0000x\":7}}"), NULL},
    {S("{\"id\":1,\"user\":{\"email\\u0000\":\"a@b\"}}"), "/user: required email"},
    {S("[1]"), "(root): type object"},
    {S("{\"id\":1,"), "(root): not JSON (unexpected end of text at byte 8)"},
    {S("{\"id\":1,\"user\":{\"email\":\"a@b\"}} x"), "(root): not JSON"},
    /* the first failure in document order counts */
    {S("{\"id\":0,\"user\":{\"email\":\"a\"}}"), "/id: minimum 1"},
};

static ferry_validate *compile(const char *schema)
{
    struct ferry_validate_options o = {0};
    char err[512];
    ferry_validate *v;

    o.schema_text = schema;
    o.schema_len = strlen(schema);
    v = ferry_validate_new(&o, err, sizeof(err));
    if (!v)
        fail_msg("schema does not compile: %s", err);
    return v;
}

static void test_records(void **state)
{
    ferry_validate *v = compile(user_schema);
    char why[FERRY_VALIDATE_REASON_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(record_cases) / sizeof(record_cases[0]); i++) {
        const struct record_case *c = &record_cases[i];
        int rc = ferry_validate_json(v, c->record, c->len, why, sizeof(why));
        if (!c->want && rc)
            fail_msg("case %zu: %s: want valid, got %s", i, c->record, why);
        if (c->want && (!rc || strncmp(why, c->want, strlen(c->want))))
            fail_msg("case %zu: %s: want '%s', got %s", i, c->record, c->want, rc ? why : "valid");
    }
    ferry_validate_destroy(v);
}

struct bad_schema_case {
    const char *schema;
    const char *want; /* a part of the message */
};

static const struct bad_schema_case bad_schemas[] = {
    {"{\"type\":\"text\"}", "/type: unknown type 'text'"},
    {"{\"properties\":{\"a\":{\"$ref\":\"#\"}}}", "/properties/a/$ref: keyword not supported"},
    {"{\"anyOf\":[true]}", "/anyOf: keyword not supported"},
    {"{\"minLenght\":3}", "/minLenght: unknown keyword"},
    {"{\"minLength\":-1}", "/minLength: expected a non-negative integer"},
    {"{\"maxItems\":1.5}", "/maxItems: expected a non-negative integer"},
    {"{\"minimum\":\"1\"}", "/minimum: expected a number"},
    {"{\"pattern\":\"a(b\"}", "/pattern: not a POSIX extended regular expression"},
    {"{\"pattern\":\"^\\\\d+$\"}", "/pattern: '\\d' is not POSIX ERE"},
    {"{\"pattern\":\"a++\"}", "/pattern: a quantifier follows a quantifier"},
    {"{\"pattern\":\"a{2}*\"}", "/pattern: a quantifier follows a quantifier"},
    /* glibc matches backreferences in exponential time: a 200-byte record took over 20 s */
    {"{\"pattern\":\"(.*)(.*)(.*)(.*)(.*)\\\\5\\\\4\\\\3\\\\2\\\\1b\"}",
     "/pattern: a backreference (\\1 to \\9) is not POSIX ERE"},
    {"{\"pattern\":\"^(a)\\\\1$\"}", "/pattern: a backreference"},
    /* found by fuzz_validate: each stacked '+' made regcomp copy its tree, 2 GB in all */
    {"{\"pattern\":\"e\\\\\\\\+++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++\"}",
     "/pattern: a quantifier follows a quantifier"},
    {"{\"required\":[1]}", "/required: expected a name at index 0"},
    {"{\"enum\":1}", "/enum: expected a list"},
    {"[]", "(root): expected a schema"},
    {"{\"items\":{\"items\":3}}", "/items/items: expected a schema"},
    {"{\"type\":", "line 1"},
    {"{\"a\":1,\"a\":2}", "duplicate"},
};

static void test_bad_schemas(void **state)
{
    struct ferry_validate_options o = {0};
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad_schemas) / sizeof(bad_schemas[0]); i++) {
        ferry_validate *v;
        o.schema_text = bad_schemas[i].schema;
        o.schema_len = strlen(bad_schemas[i].schema);
        v = ferry_validate_new(&o, err, sizeof(err));
        if (v)
            fail_msg("case %zu: %s compiled", i, bad_schemas[i].schema);
        if (!strstr(err, bad_schemas[i].want))
            fail_msg("case %zu: want '%s' in '%s'", i, bad_schemas[i].want, err);
    }
}

/* Nesting past FERRY_VALIDATE_SCHEMA_DEPTH_MAX is refused. */
static void test_schema_depth(void **state)
{
    struct ferry_validate_options o = {0};
    char text[2048] = "", err[512];
    size_t len = 0;

    (void)state;
    for (int i = 0; i <= FERRY_VALIDATE_SCHEMA_DEPTH_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "{\"items\":");
    len += (size_t)snprintf(text + len, sizeof(text) - len, "true");
    for (int i = 0; i <= FERRY_VALIDATE_SCHEMA_DEPTH_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "}");
    o.schema_text = text;
    o.schema_len = len;
    assert_null(ferry_validate_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "nested deeper than"));
}

/* The file is named in messages about it. */
static void test_schema_file(void **state)
{
    struct ferry_validate_options o = {0};
    char err[512];

    (void)state;
    o.schema_path = "/nonexistent/schema.json";
    assert_null(ferry_validate_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open '/nonexistent/schema.json'"));
}

struct wire_case {
    const char *value;
    size_t len;
    int strip;
    const char *want;      /* NULL: valid */
    size_t want_sent_skip; /* valid: bytes the sent value starts past */
};

static const struct wire_case wire_cases[] = {
    {S("\0\0\0\0\1{\"id\":1}"), 0, NULL, 0},
    {S("\0\0\0\0\1{\"id\":1}"), 1, NULL, 5},
    {S("\0\0\0\1\0{\"id\":1}"), 1, NULL, 5},
    {S("\0\0\0\0\2{\"id\":1}"), 1, "wire format: schema id 2 not allowed", 0},
    {S("\1\0\0\0\1{\"id\":1}"), 1, "wire format: magic byte 1, expected 0", 0},
    {S("{\"id\":1}"), 1, "wire format: magic byte 123, expected 0", 0},
    {S("\0\0\0"), 1, "wire format: shorter than the 5-byte prefix", 0},
    {S("\0\0\0\0\1{\"id\":\"x\"}"), 1, "json schema: /id: type integer", 0},
    {S("\0\0\0\0\1{\"id\":\"x\"}"), 0, "json schema: /id: type integer", 0},
    {NULL, 0, 1, "wire format: no value", 0},
};

static void test_wire_format(void **state)
{
    static const int64_t ids[] = {1, 256};
    static const char schema[] = "{\"properties\":{\"id\":{\"type\":\"integer\"}}}";
    char err[512], why[FERRY_VALIDATE_REASON_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(wire_cases) / sizeof(wire_cases[0]); i++) {
        const struct wire_case *c = &wire_cases[i];
        struct ferry_validate_options o = {NULL, schema, sizeof(schema) - 1, ids, 2, c->strip};
        ferry_validate *v = ferry_validate_new(&o, err, sizeof(err));
        const char *value = c->value;
        size_t len = c->len;
        int rc;
        assert_non_null(v);
        rc = ferry_validate_record(v, &value, &len, why, sizeof(why));
        if (!c->want && rc)
            fail_msg("case %zu: want valid, got %s", i, why);
        if (c->want && (!rc || strcmp(why, c->want)))
            fail_msg("case %zu: want '%s', got %s", i, c->want, rc ? why : "valid");
        if (!c->want) {
            assert_ptr_equal(value, c->value + c->want_sent_skip);
            assert_int_equal(len, c->len - c->want_sent_skip);
        }
        ferry_validate_destroy(v);
    }
}

/* strip without schema ids has nothing to strip. */
static void test_strip_needs_ids(void **state)
{
    struct ferry_validate_options o = {0};
    char err[512];

    (void)state;
    o.strip = 1;
    assert_null(ferry_validate_new(&o, err, sizeof(err)));
    assert_string_equal(err, "strip: needs schema_ids");
}

/* A tombstone has no value to check: it fails as not JSON; without a schema nothing fails. */
static void test_tombstone(void **state)
{
    ferry_validate *v = compile("{\"type\":\"object\"}");
    struct ferry_validate_options none = {0};
    char err[512], why[FERRY_VALIDATE_REASON_MAX];
    const char *value = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(ferry_validate_record(v, &value, &len, why, sizeof(why)), 1);
    assert_string_equal(why, "json schema: (root): not JSON (no value)");
    ferry_validate_destroy(v);
    v = ferry_validate_new(&none, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(ferry_validate_record(v, &value, &len, why, sizeof(why)), 0);
    ferry_validate_destroy(v);
}

/* A pointer longer than its room loses its outer part and says so. */
static void test_long_pointer(void **state)
{
    ferry_validate *v = compile("{\"additionalProperties\":{\"additionalProperties\":{"
                                "\"additionalProperties\":{\"additionalProperties\":{"
                                "\"additionalProperties\":{\"additionalProperties\":{"
                                "\"additionalProperties\":{\"type\":\"string\"}}}}}}}}");
    char rec[2048], why[FERRY_VALIDATE_REASON_MAX], name[65];
    size_t len = 0;

    (void)state;
    memset(name, 'n', 64);
    name[64] = '\0';
    for (int i = 0; i < 7; i++)
        len += (size_t)snprintf(rec + len, sizeof(rec) - len, "{\"%s\":", name);
    len += (size_t)snprintf(rec + len, sizeof(rec) - len, "1");
    for (int i = 0; i < 7; i++)
        len += (size_t)snprintf(rec + len, sizeof(rec) - len, "}");
    assert_int_equal(ferry_validate_json(v, rec, len, why, sizeof(why)), 1);
    assert_memory_equal(why, ".../nnnn", 8);
    assert_non_null(strstr(why, "nnnn: type string"));
    ferry_validate_destroy(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),      cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_schema_depth), cmocka_unit_test(test_schema_file),
        cmocka_unit_test(test_wire_format),  cmocka_unit_test(test_strip_needs_ids),
        cmocka_unit_test(test_long_pointer), cmocka_unit_test(test_tombstone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
