/*
 * test_template_json.c - tables of JSON-mode templates (body.mode json_template): what each
 * variable renders as inside and outside string literals, what a record's missing parts become
 * with missing: error and missing: null, and which template texts compile. Every rendered body
 * is also checked to be one valid JSON value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "route/template.h"

#define ERR FERRY_TEMPLATE_MISSING_ERROR
#define NUL FERRY_TEMPLATE_MISSING_NULL
#define EREC FERRY_TEMPLATE_EREC

/* Strings with quotes, backslashes, control characters, escaped and raw non-ASCII, a surrogate
 * pair; numbers in forms the normal form rewrites; nesting; the literals. */
static const char value_json[] =
    "{\"user\":{\"id\":7,\"email\":\"a\\\"b\\\\c@x\",\"name\":\"Zo\xC3\xAB\"},"
    "\"s\":\"tab\\there\\u0001 \\u00e9 \\ud83d\\ude00 \\/\","
    "\"n\":12.50,\"i\":-3,\"big\":1E300,\"t\":true,\"f\":false,\"z\":null,"
    "\"arr\":[1, \"two\", {\"three\" : 3}],\"obj\":{ \"k\" : [ ] },"
    "\"huge\":123456789012345678901}";

enum { REC_FULL, REC_BARE, REC_TEXT, REC_SCALAR, NRECS };
static struct ferry_record recs[NRECS];

static int setup(void **state)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);

    (void)state;
    rd_kafka_header_add(h, "x-id", -1, "a\"b", -1);
    rd_kafka_header_add(h, "x-nil", -1, NULL, 0);
    rd_kafka_header_add(h, "x-ctl", -1, "\x01\n\\", -1);
    rd_kafka_header_add(h, "x-bin", -1, "\xFF", 1);
    recs[REC_FULL] = (struct ferry_record){
        "orders", 3, 42, 1700000000123, "k\"1\xFF", 4, value_json, sizeof(value_json) - 1, h, NULL};
    recs[REC_BARE] = (struct ferry_record){"t.x", 0, 0, -1, NULL, 0, NULL, 0, NULL, NULL};
    recs[REC_TEXT] = (struct ferry_record){"t", 1, 9, 5, "", 0, "not \"json\"", 10, NULL, NULL};
    recs[REC_SCALAR] = (struct ferry_record){"t", 1, 9, 5, "", 0, " \"s\\u0041\" ", 11, NULL, NULL};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_headers_destroy(recs[REC_FULL].headers);
    return 0;
}

struct render_case {
    const char *text;
    enum ferry_template_missing missing;
    int rec;
    int want_rc;
    const char *want; /* the output, or the error message ('*' at the end: a prefix) */
};

static const struct render_case render_cases[] = {
    /* the issue's shape, unquoted: values keep their JSON types */
    {"{\"id\": ${value.user.id}, \"email\": ${value.user.email}, \"source\": ${topic}}", ERR,
     REC_FULL, 0, "{\"id\": 7, \"email\": \"a\\\"b\\\\c@x\", \"source\": \"orders\"}"},
    /* strings: decoded, then escaped again; raw UTF-8 kept */
    {"${value.s}", ERR, REC_FULL, 0, "\"tab\\there\\u0001 \xC3\xA9 \xF0\x9F\x98\x80 /\""},
    {"${value.user.name}", ERR, REC_FULL, 0, "\"Zo\xC3\xAB\""},
    /* numbers, literals, nesting, in normal form */
    {"[${value.n},${value.i},${value.big},${value.user.id}]", ERR, REC_FULL, 0,
     "[12.5,-3,1e+300,7]"},
    {"[${value.t}, ${value.f}, ${value.z}]", ERR, REC_FULL, 0, "[true, false, null]"},
    {"{\"a\":${value.arr},\"o\":${value.obj}}", ERR, REC_FULL, 0,
     "{\"a\":[1,\"two\",{\"three\":3}],\"o\":{\"k\":[]}}"},
    {"${value.arr.2}", ERR, REC_FULL, 0, "{\"three\":3}"},
    /* the whole value */
    {"{\"v\":${value}}", ERR, REC_SCALAR, 0, "{\"v\":\"sA\"}"},
    {"{\"v\":${value}}", ERR, REC_BARE, 0, "{\"v\":null}"},
    {"{\"v\":${value}}", ERR, REC_TEXT, EREC, "template: '${value}': record value is not JSON: *"},
    /* inside quotes: the text, escaped; "${value.user.id}" is the string "7" */
    {"{\"id\":\"${value.user.id}\"}", ERR, REC_FULL, 0, "{\"id\":\"7\"}"},
    {"\"id-${value.user.id}-${topic}/${partition}\"", ERR, REC_FULL, 0, "\"id-7-orders/3\""},
    {"\"${value.user.email}\"", ERR, REC_FULL, 0, "\"a\\\"b\\\\c@x\""},
    {"\"${value.arr}|${value.z}|${value.t}\"", ERR, REC_FULL, 0,
     "\"[1,\\\"two\\\",{\\\"three\\\":3}]||true\""},
    {"\"${value}\"", ERR, REC_TEXT, 0, "\"not \\\"json\\\"\""},
    {"\"a\\\"${key}\\\\\"", ERR, REC_FULL, 0, "\"a\\\"k\\\"1\xEF\xBF\xBD\\\\\""},
    {"\"$${topic}\"", ERR, REC_FULL, 0, "\"${topic}\""},
    /* record metadata */
    {"{\"t\":${topic},\"p\":${partition},\"o\":${offset},\"ts\":${timestamp},\"k\":${key}}", ERR,
     REC_FULL, 0,
     "{\"t\":\"orders\",\"p\":3,\"o\":42,\"ts\":1700000000123,\"k\":\"k\\\"1\xEF\xBF\xBD\"}"},
    {"{\"t\":${topic},\"ts\":${timestamp},\"k\":${key},\"tq\":\"${timestamp}\"}", ERR, REC_BARE, 0,
     "{\"t\":\"t.x\",\"ts\":null,\"k\":null,\"tq\":\"\"}"},
    /* headers: last value, null, control characters, bytes that are not UTF-8 */
    {"[${header.x-id},${header.x-nil},${header.x-ctl},${header.x-bin}]", ERR, REC_FULL, 0,
     "[\"a\\\"b\",null,\"\\u0001\\n\\\\\",\"\xEF\xBF\xBD\"]"},
    {"\"h=${header.x-id}${header.x-nil}\"", ERR, REC_FULL, 0, "\"h=a\\\"b\""},
    /* missing: error */
    {"{\"p\":${value.user.phone}}", ERR, REC_FULL, EREC,
     "template: '${value.user.phone}': record value has nothing at 'user.phone'"},
    {"{\"p\":\"${value.arr.5}\"}", ERR, REC_FULL, EREC,
     "template: '${value.arr.5}': record value has nothing at 'arr.5'"},
    {"{\"h\":${header.nope}}", ERR, REC_FULL, EREC,
     "template: '${header.nope}': record has no header 'nope'"},
    {"{\"a\":${value.a}}", ERR, REC_BARE, EREC,
     "template: '${value.a}': record has no value (tombstone)"},
    /* missing: null */
    {"{\"p\":${value.user.phone},\"h\":${header.nope},\"s\":\"<${value.x.y}>\",\"id\":${value.user."
     "id}}",
     NUL, REC_FULL, 0, "{\"p\":null,\"h\":null,\"s\":\"<>\",\"id\":7}"},
    {"{\"a\":${value.a},\"b\":${value.b.c}}", NUL, REC_BARE, 0, "{\"a\":null,\"b\":null}"},
    /* a value that is not JSON, or out of range, fails in both modes */
    {"{\"a\":${value.a}}", ERR, REC_TEXT, EREC,
     "template: '${value.a}': record value is not JSON: expected a value (at byte 0)"},
    {"{\"a\":${value.a}}", NUL, REC_TEXT, EREC,
     "template: '${value.a}': record value is not JSON: expected a value (at byte 0)"},
    {"\"${value.a}\"", NUL, REC_TEXT, EREC, "template: '${value.a}': record value is not JSON: *"},
    {"${value.huge}", ERR, REC_FULL, EREC,
     "template: '${value.huge}': record value is not JSON: integer out of range *"},
};

static int same_message(const char *got, const char *want)
{
    size_t n = strlen(want);

    if (n && want[n - 1] == '*')
        return strncmp(got, want, n - 1) == 0;
    return strcmp(got, want) == 0;
}

/* Renders into a buffer that already holds "<" so that appending and rewinding show. */
static void check_render(size_t i, const struct render_case *c)
{
    char errstr[512] = "";
    struct ferry_buf out;
    ferry_template *t =
        ferry_template_compile(c->text, FERRY_TEMPLATE_JSON, c->missing, errstr, sizeof(errstr));
    int rc;

    if (!t)
        fail_msg("case %zu '%s': compile failed: %s", i, c->text, errstr);
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_buf_addc(&out, '<'), 0);
    rc = ferry_template_render(t, &recs[c->rec], &out, errstr, sizeof(errstr));
    if (rc != c->want_rc)
        fail_msg("case %zu '%s': rc %d, want %d (%s)", i, c->text, rc, c->want_rc, errstr);
    if (rc == 0 && strcmp(out.data + 1, c->want) != 0)
        fail_msg("case %zu '%s': got '%s', want '%s'", i, c->text, out.data + 1, c->want);
    if (rc == 0 && !ferry_json_is_valid(out.data + 1, out.len - 1))
        fail_msg("case %zu '%s': output is not JSON: '%s'", i, c->text, out.data + 1);
    if (rc != 0 && !same_message(errstr, c->want))
        fail_msg("case %zu '%s': error '%s', want '%s'", i, c->text, errstr, c->want);
    if (rc != 0 && (strcmp(out.data, "<") != 0 || out.failed))
        fail_msg("case %zu '%s': output not rewound: '%s'", i, c->text, out.data);
    ferry_buf_release(&out);
    ferry_template_destroy(t);
}

static void test_render(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++)
        check_render(i, &render_cases[i]);
}

#define SHAPE "template: not one JSON value once its variables are filled: "

struct compile_case {
    const char *text;
    const char *want_err; /* NULL when it compiles; a trailing '*' makes it a prefix */
};

static const struct compile_case compile_cases[] = {
    {"{\"a\":${topic}}", NULL},
    {"[${value.a}, \"x${key}y\", \"${value}\"]", NULL},
    {"${value}", NULL},
    {"\"${key}\"", NULL},
    {"\n{\n  \"a\": ${offset},\n  \"b\": {\"c\": [${value.c}]}\n}\n", NULL},
    {"\"a\\\"${key}\"", NULL},
    {"{\"cost\":\"$$${value.p}\"}", NULL},
    {"{\"n\": 1}", NULL},
    {"{\"a\": \"${topic}}", SHAPE "*"},
    {"{\"a\": ${topic}${key}}", SHAPE "*"},
    {"{\"a\": ${topic} ${key}}", SHAPE "*"},
    {"{\"a\": -${offset}}", SHAPE "*"},
    {"{\"a\": 1${offset}}", SHAPE "*"},
    {"{\"a\": x${key}}", SHAPE "*"},
    {"{\"a\": ${key}x}", SHAPE "*"},
    {"\"\\${key}\"", SHAPE "*"},
    {"${topic}, ${key}", SHAPE "*"},
    {"{a: ${topic}}", SHAPE "*"},
    {"{${topic}: 1}", SHAPE "*"},
    {"{\"a\":${topic},}", SHAPE "*"},
    {"", SHAPE "*"},
    {"{\"a\": ${ofset}}", "template: unknown variable '${ofset}'"},
    {"{\"a\": ${value.}}", "template: empty path segment in '${value.}'"},
};

static void test_compile(void **state)
{
    char errstr[512];
    ferry_template *t;

    (void)state;
    for (size_t i = 0; i < sizeof(compile_cases) / sizeof(compile_cases[0]); i++) {
        const struct compile_case *c = &compile_cases[i];

        errstr[0] = '\0';
        t = ferry_template_new(c->text, FERRY_TEMPLATE_JSON, errstr, sizeof(errstr));
        if (c->want_err && t)
            fail_msg("case %zu '%s': compiled, want '%s'", i, c->text, c->want_err);
        if (c->want_err && !same_message(errstr, c->want_err))
            fail_msg("case %zu '%s': error '%s', want '%s'", i, c->text, errstr, c->want_err);
        if (!c->want_err && !t)
            fail_msg("case %zu '%s': failed: %s", i, c->text, errstr);
        ferry_template_destroy(t);
    }
}

/* The shape check's message shows the text around the fault, with null for the variables. */
static void test_shape_message(void **state)
{
    char errstr[512];
    ferry_template *t = ferry_template_new("{\"id\": ${value.id} ${key}}", FERRY_TEMPLATE_JSON,
                                           errstr, sizeof(errstr));

    (void)state;
    assert_null(t);
    assert_non_null(strstr(errstr, "{\"id\": null null}"));
}

/* A rendered body obeys the output's cap, and a failed render leaves nothing behind. */
static void test_cap(void **state)
{
    char errstr[256];
    struct ferry_buf out;
    ferry_template *t = ferry_template_new("{\"e\":${value.user.email}}", FERRY_TEMPLATE_JSON,
                                           errstr, sizeof(errstr));

    (void)state;
    assert_non_null(t);
    /* {"e":"a\"b\\c@x"} is 17 bytes. */
    ferry_buf_init(&out, 16);
    assert_int_equal(ferry_template_render(t, &recs[REC_FULL], &out, errstr, sizeof(errstr)),
                     FERRY_TEMPLATE_ETOOBIG);
    assert_int_equal(out.len, 0);
    out.cap = 17;
    assert_int_equal(ferry_template_render(t, &recs[REC_FULL], &out, errstr, sizeof(errstr)), 0);
    assert_string_equal(out.data, "{\"e\":\"a\\\"b\\\\c@x\"}");
    ferry_buf_release(&out);
    ferry_template_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_shape_message),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_cap),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
