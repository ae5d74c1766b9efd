/*
 * test_body.c - tables of bodies: each mode and batch format over a few fixed records (JSON,
 * text, binary, tombstone), the error results a route acts on, and the content types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route/body.h"

/* Records by number; 0 ends a case's list. */
enum { END, R_JSON, R_TEXT, R_BIN, R_TOMB, R_QUOTED, R_CRLF, NRECS };
static struct ferry_record records[NRECS];

/* Templates by number; 0 is none. */
enum { T_NONE, T_JSON, T_TEXT, T_JSONT, NTMPLS };
static const char *const template_texts[NTMPLS] = {
    NULL,
    "{\"a\":${value.a},\"o\":${offset}}",
    "k=${key}",
    "{\n \"a\": ${value.a},\n \"k\": ${key}\n}",
};
static const enum ferry_template_mode template_modes[NTMPLS] = {
    FERRY_TEMPLATE_BODY, FERRY_TEMPLATE_BODY, FERRY_TEMPLATE_BODY, FERRY_TEMPLATE_JSON};
static ferry_template *templates[NTMPLS];

static const char pretty_json[] = "{\"a\": 1,\n \"b\": [true]}\n";
/* JSON with CR, LF, CRLF, LF CR and a blank line between tokens */
static const char crlf_json[] = "\r\n{\r\n \"a\": [1,\r\n\r\n 2],\n\r \"b\":\r\"x\"\r\n}\r\n";

static int setup(void **state)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    char errstr[256];
    int i;

    (void)state;
    rd_kafka_header_add(h, "traceparent", -1, "00-abc-01", -1);
    rd_kafka_header_add(h, "x-dup", -1, "1", -1);
    rd_kafka_header_add(h, "x-nil", -1, NULL, 0);
    rd_kafka_header_add(h, "x-dup", -1, "2", -1);
    rd_kafka_header_add(h, "x-bin", -1, "\xFF\"", 2);
    records[R_JSON] = (struct ferry_record){
        "orders", 3, 42, 1700000000123, "user-1", 6, pretty_json, sizeof(pretty_json) - 1, h, NULL};
    records[R_TEXT] =
        (struct ferry_record){"orders", 3, 43, -1, "42", 2, "hello\nworld", 11, NULL, NULL};
    records[R_BIN] =
        (struct ferry_record){"orders", 3, 44, 0, "\0\xFF", 2, "\x89PNG", 4, NULL, NULL};
    records[R_TOMB] = (struct ferry_record){"orders", 3, 45, 5, NULL, 0, NULL, 0, NULL, NULL};
    records[R_QUOTED] = (struct ferry_record){"orders", 3, 46, 6, "", 0, "\"str\"", 5, NULL, NULL};
    records[R_CRLF] = (struct ferry_record){
        "orders", 3, 47, 7, "", 0, crlf_json, sizeof(crlf_json) - 1, NULL, NULL};
    for (i = 1; i < NTMPLS; i++) {
        templates[i] =
            ferry_template_new(template_texts[i], template_modes[i], errstr, sizeof(errstr));
        assert_non_null(templates[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    int i;

    (void)state;
    rd_kafka_headers_destroy(records[R_JSON].headers);
    for (i = 1; i < NTMPLS; i++)
        ferry_template_destroy(templates[i]);
    return 0;
}

#define ENV_JSON                                                                                   \
    "{\"topic\":\"orders\",\"partition\":3,\"offset\":42,\"timestamp\":1700000000123,"             \
    "\"key\":\"user-1\",\"value\":{\"a\": 1, \"b\": [true]},"                                      \
    "\"headers\":{\"traceparent\":\"00-abc-01\",\"x-nil\":null,\"x-dup\":\"2\","                   \
    "\"x-bin\":\"\xEF\xBF\xBD\\\"\"}}"
#define ENV_TEXT                                                                                   \
    "{\"topic\":\"orders\",\"partition\":3,\"offset\":43,\"timestamp\":null,"                      \
    "\"key\":42,\"value\":\"hello\\nworld\",\"headers\":{}}"
#define ENV_BIN                                                                                    \
    "{\"topic\":\"orders\",\"partition\":3,\"offset\":44,\"timestamp\":0,"                         \
    "\"key\":\"AP8=\",\"key_encoding\":\"base64\","                                                \
    "\"value\":\"iVBORw==\",\"value_encoding\":\"base64\",\"headers\":{}}"
#define ENV_TOMB                                                                                   \
    "{\"topic\":\"orders\",\"partition\":3,\"offset\":45,\"timestamp\":5,"                         \
    "\"key\":null,\"value\":null,\"headers\":{}}"

struct body_case {
    enum ferry_body_mode mode;
    enum ferry_body_batch batch;
    int tmpl;
    const char *sep;
    int recs[6];
    int want_rc;
    const char *want;   /* the body, or the error message (a trailing '*' makes it a prefix) */
    size_t want_failed; /* for EREC and ETOOBIG */
};

#define VALUE FERRY_BODY_VALUE
#define ENVELOPE FERRY_BODY_ENVELOPE
#define TEMPLATE FERRY_BODY_TEMPLATE
#define JSON_TEMPLATE FERRY_BODY_JSON_TEMPLATE
#define JSONT_JSON "{\n \"a\": 1,\n \"k\": \"user-1\"\n}"
#define JSONT_LINE "{ \"a\": 1, \"k\": \"user-1\"}"

static const struct body_case body_cases[] = {
    /* single records */
    {.mode = VALUE, .recs = {R_JSON}, .want = pretty_json},
    {.mode = VALUE, .recs = {R_TEXT}, .want = "hello\nworld"},
    {.mode = VALUE, .recs = {R_BIN}, .want = "\x89PNG"},
    {.mode = VALUE, .recs = {R_TOMB}, .want = ""},
    {.mode = ENVELOPE, .recs = {R_JSON}, .want = ENV_JSON},
    {.mode = ENVELOPE, .recs = {R_TEXT}, .want = ENV_TEXT},
    {.mode = ENVELOPE, .recs = {R_BIN}, .want = ENV_BIN},
    {.mode = ENVELOPE, .recs = {R_TOMB}, .want = ENV_TOMB},
    {.mode = ENVELOPE,
     .recs = {R_QUOTED},
     .want = "{\"topic\":\"orders\",\"partition\":3,\"offset\":46,\"timestamp\":6,"
             "\"key\":\"\",\"value\":\"str\",\"headers\":{}}"},
    {.mode = TEMPLATE, .tmpl = T_JSON, .recs = {R_JSON}, .want = "{\"a\":1,\"o\":42}"},
    {.mode = TEMPLATE, .tmpl = T_TEXT, .recs = {R_TOMB}, .want = "k="},
    {.mode = TEMPLATE,
     .tmpl = T_JSON,
     .recs = {R_TEXT},
     .want_rc = FERRY_BODY_EREC,
     .want = "template: '${value.a}': record value is not JSON: *"},
    /* json_array: JSON values go in as they are (on one line), the rest as strings */
    {.mode = VALUE,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_TEXT, R_TOMB, R_QUOTED, R_BIN},
     .want = "[{\"a\": 1, \"b\": [true]},\"hello\\nworld\",null,\"str\",\"\xEF\xBF\xBDPNG\"]"},
    {.mode = VALUE,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_CRLF, R_JSON},
     .want = "[{ \"a\": [1, 2], \"b\":\"x\"},{\"a\": 1, \"b\": [true]}]"},
    {.mode = VALUE, .batch = FERRY_BODY_JSON_ARRAY, .want = "[]"},
    {.mode = ENVELOPE,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_BIN},
     .want = "[" ENV_JSON "," ENV_BIN "]"},
    {.mode = TEMPLATE,
     .tmpl = T_JSON,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_JSON},
     .want = "[{\"a\":1,\"o\":42},{\"a\":1,\"o\":42}]"},
    {.mode = TEMPLATE,
     .tmpl = T_TEXT,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_TEXT, R_TOMB},
     .want = "[\"k=user-1\",\"k=42\",\"k=\"]"},
    {.mode = TEMPLATE,
     .tmpl = T_JSON,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_TOMB},
     .want_rc = FERRY_BODY_EREC,
     .want = "template: '${value.a}': record has no value (tombstone)",
     .want_failed = 1},
    /* ndjson: every line is one JSON value, so newlines cannot break the framing */
    {.mode = VALUE,
     .batch = FERRY_BODY_NDJSON,
     .recs = {R_JSON, R_TEXT, R_TOMB, R_QUOTED},
     .want = "{\"a\": 1, \"b\": [true]}\n\"hello\\nworld\"\nnull\n\"str\"\n"},
    {.mode = VALUE, .batch = FERRY_BODY_NDJSON, .want = ""},
    {.mode = ENVELOPE,
     .batch = FERRY_BODY_NDJSON,
     .recs = {R_JSON, R_TEXT},
     .want = ENV_JSON "\n" ENV_TEXT "\n"},
    {.mode = TEMPLATE,
     .tmpl = T_TEXT,
     .batch = FERRY_BODY_NDJSON,
     .recs = {R_JSON},
     .want = "\"k=user-1\"\n"},
    /* separator: bodies exactly as sent alone */
    {.mode = VALUE,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = "\n--\n",
     .recs = {R_TEXT, R_TOMB, R_QUOTED},
     .want = "hello\nworld\n--\n\n--\n\"str\""},
    {.mode = VALUE,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = ",",
     .recs = {R_TEXT},
     .want = "hello\nworld"},
    {.mode = VALUE, .batch = FERRY_BODY_SEPARATOR, .sep = ",", .want = ""},
    {.mode = VALUE,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = "",
     .recs = {R_QUOTED, R_QUOTED},
     .want = "\"str\"\"str\""},
    {.mode = ENVELOPE,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = "\n",
     .recs = {R_TEXT, R_TOMB},
     .want = ENV_TEXT "\n" ENV_TOMB},
    {.mode = TEMPLATE,
     .tmpl = T_TEXT,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = "&",
     .recs = {R_JSON, R_TEXT},
     .want = "k=user-1&k=42"},
    /* json_template: literal whitespace kept alone and between separators, dropped to one
     * line in JSON batches */
    {.mode = JSON_TEMPLATE, .tmpl = T_JSONT, .recs = {R_JSON}, .want = JSONT_JSON},
    {.mode = JSON_TEMPLATE,
     .tmpl = T_JSONT,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_JSON},
     .want = "[" JSONT_LINE "," JSONT_LINE "]"},
    {.mode = JSON_TEMPLATE,
     .tmpl = T_JSONT,
     .batch = FERRY_BODY_NDJSON,
     .recs = {R_JSON, R_JSON},
     .want = JSONT_LINE "\n" JSONT_LINE "\n"},
    {.mode = JSON_TEMPLATE,
     .tmpl = T_JSONT,
     .batch = FERRY_BODY_SEPARATOR,
     .sep = ";",
     .recs = {R_JSON, R_JSON},
     .want = JSONT_JSON ";" JSONT_JSON},
    {.mode = JSON_TEMPLATE,
     .tmpl = T_JSONT,
     .batch = FERRY_BODY_JSON_ARRAY,
     .recs = {R_JSON, R_TEXT},
     .want_rc = FERRY_BODY_EREC,
     .want = "template: '${value.a}': record value is not JSON: *",
     .want_failed = 1},
    {.mode = JSON_TEMPLATE,
     .recs = {R_JSON},
     .want_rc = FERRY_BODY_ESPEC,
     .want = "body: mode 'json_template' has no template"},
    /* specs that do not fit the call */
    {.mode = VALUE,
     .recs = {R_JSON, R_TEXT},
     .want_rc = FERRY_BODY_ESPEC,
     .want = "body: 2 records given but no batch format is set"},
    {.mode = VALUE,
     .want_rc = FERRY_BODY_ESPEC,
     .want = "body: 0 records given but no batch format is set"},
    {.mode = TEMPLATE,
     .recs = {R_JSON},
     .want_rc = FERRY_BODY_ESPEC,
     .want = "body: mode 'template' has no template"},
};

static int same_message(const char *got, const char *want)
{
    size_t n = strlen(want);

    if (n && want[n - 1] == '*')
        return strncmp(got, want, n - 1) == 0;
    return strcmp(got, want) == 0;
}

static void spec_of(const struct body_case *c, struct ferry_body_spec *spec)
{
    spec->mode = c->mode;
    spec->batch = c->batch;
    spec->tmpl = templates[c->tmpl];
    spec->separator = c->sep;
    spec->separator_len = c->sep ? strlen(c->sep) : 0;
}

static size_t recs_of(const struct body_case *c, const struct ferry_record **recs)
{
    size_t n;

    for (n = 0; c->recs[n] != END; n++)
        recs[n] = &records[c->recs[n]];
    return n;
}

/* Renders after a "<" already in the buffer, so appending and rewinding show. */
static void check_body(size_t i, const struct body_case *c)
{
    const struct ferry_record *recs[6];
    struct ferry_body_spec spec;
    char errstr[512] = "";
    struct ferry_buf out;
    size_t n = recs_of(c, recs), failed = 99;
    int rc;

    spec_of(c, &spec);
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_buf_addc(&out, '<'), 0);
    rc = ferry_body_render(&spec, recs, n, &out, &failed, errstr, sizeof(errstr));
    if (rc != c->want_rc)
        fail_msg("case %zu: rc %d, want %d (%s)", i, rc, c->want_rc, errstr);
    if (rc == 0 && (out.len != strlen(c->want) + 1 || strcmp(out.data + 1, c->want) != 0))
        fail_msg("case %zu: got '%s', want '%s'", i, out.data + 1, c->want);
    if (rc != 0 && !same_message(errstr, c->want))
        fail_msg("case %zu: error '%s', want '%s'", i, errstr, c->want);
    if (rc != 0 && (strcmp(out.data, "<") != 0 || out.failed))
        fail_msg("case %zu: output not rewound: '%s'", i, out.data);
    if ((rc == FERRY_BODY_EREC || rc == FERRY_BODY_ETOOBIG) && failed != c->want_failed)
        fail_msg("case %zu: failed %zu, want %zu", i, failed, c->want_failed);
    ferry_buf_release(&out);
}

static void test_bodies(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++)
        check_body(i, &body_cases[i]);
}

/* The cap is checked where a batch stops fitting; the record at fault is reported. */
static void test_cap(void **state)
{
    static const struct {
        enum ferry_body_batch batch;
        size_t n, cap;
        int want_rc;
        size_t want_failed;
        const char *want;
    } cases[] = {
        {FERRY_BODY_SINGLE, 1, 11, 0, 0, NULL},
        {FERRY_BODY_SINGLE, 1, 10, FERRY_BODY_ETOOBIG, 0,
         "body: the record's body passes the limit of 10 bytes"},
        /* ["hello\nworld","hello\nworld"] is 31 bytes */
        {FERRY_BODY_JSON_ARRAY, 2, 31, 0, 0, NULL},
        {FERRY_BODY_JSON_ARRAY, 2, 30, FERRY_BODY_ETOOBIG, 1,
         "body: the batch passes the limit of 30 bytes at record 2 of 2"},
        {FERRY_BODY_JSON_ARRAY, 2, 16, FERRY_BODY_ETOOBIG, 1,
         "body: the batch passes the limit of 16 bytes at record 2 of 2"},
        {FERRY_BODY_JSON_ARRAY, 2, 10, FERRY_BODY_ETOOBIG, 0,
         "body: the batch passes the limit of 10 bytes at record 1 of 2"},
        {FERRY_BODY_NDJSON, 1, 15, 0, 0, NULL},
        {FERRY_BODY_NDJSON, 1, 14, FERRY_BODY_ETOOBIG, 0,
         "body: the record's body passes the limit of 14 bytes"},
    };
    const struct ferry_record *recs[2] = {&records[R_TEXT], &records[R_TEXT]};
    struct ferry_body_spec spec = {FERRY_BODY_VALUE, NULL, FERRY_BODY_SINGLE, NULL, 0};
    struct ferry_buf out;
    char errstr[256];
    size_t i, failed;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        spec.batch = cases[i].batch;
        ferry_buf_init(&out, cases[i].cap);
        failed = 99;
        rc = ferry_body_render(&spec, recs, cases[i].n, &out, &failed, errstr, sizeof(errstr));
        if (rc != cases[i].want_rc)
            fail_msg("cap case %zu: rc %d, want %d", i, rc, cases[i].want_rc);
        if (rc && (failed != cases[i].want_failed || strcmp(errstr, cases[i].want) != 0))
            fail_msg("cap case %zu: failed %zu '%s'", i, failed, errstr);
        if (rc && out.len != 0)
            fail_msg("cap case %zu: output not rewound", i);
        ferry_buf_release(&out);
    }
}

static void test_content_type(void **state)
{
    static const struct {
        enum ferry_body_mode mode;
        enum ferry_body_batch batch;
        const char *want;
    } cases[] = {
        {VALUE, FERRY_BODY_SINGLE, NULL},
        {ENVELOPE, FERRY_BODY_SINGLE, "application/json"},
        {TEMPLATE, FERRY_BODY_SINGLE, NULL},
        {JSON_TEMPLATE, FERRY_BODY_SINGLE, "application/json"},
        {JSON_TEMPLATE, FERRY_BODY_NDJSON, "application/x-ndjson"},
        {JSON_TEMPLATE, FERRY_BODY_SEPARATOR, NULL},
        {VALUE, FERRY_BODY_JSON_ARRAY, "application/json"},
        {TEMPLATE, FERRY_BODY_JSON_ARRAY, "application/json"},
        {ENVELOPE, FERRY_BODY_NDJSON, "application/x-ndjson"},
        {VALUE, FERRY_BODY_NDJSON, "application/x-ndjson"},
        {ENVELOPE, FERRY_BODY_SEPARATOR, NULL},
    };
    struct ferry_body_spec spec = {VALUE, NULL, FERRY_BODY_SINGLE, NULL, 0};
    const char *got;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        spec.mode = cases[i].mode;
        spec.batch = cases[i].batch;
        got = ferry_body_content_type(&spec);
        if (!cases[i].want ? got != NULL : !got || strcmp(got, cases[i].want) != 0)
            fail_msg("content type case %zu: got '%s'", i, got ? got : "(null)");
    }
}

static void test_parse(void **state)
{
    static const struct {
        const char *name;
        int mode, batch;
    } cases[] = {
        {"value", FERRY_BODY_VALUE, -1},
        {"envelope", FERRY_BODY_ENVELOPE, -1},
        {"template", FERRY_BODY_TEMPLATE, -1},
        {"json_template", FERRY_BODY_JSON_TEMPLATE, -1},
        {"json_array", -1, FERRY_BODY_JSON_ARRAY},
        {"ndjson", -1, FERRY_BODY_NDJSON},
        {"separator", -1, FERRY_BODY_SEPARATOR},
        {"", -1, -1},
        {"Value", -1, -1},
        {"json", -1, -1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ferry_body_mode_parse(cases[i].name), cases[i].mode);
        assert_int_equal(ferry_body_batch_parse(cases[i].name), cases[i].batch);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_parse),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
