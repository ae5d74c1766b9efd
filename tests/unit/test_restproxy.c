/*
 * test_restproxy.c - unit tests of the REST Proxy v2 text layer (src/ingest/restproxy.c):
 * paths, content types, Accept, bodies into records (good bodies and the exact error
 * of each bad one), and the offsets answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/pattern.h"
#include "ingest/restproxy.h"

#define ANY FERRY_INGEST_PARTITION_ANY
#define J FERRY_RP_JSON
#define B FERRY_RP_BINARY
#define RENDER_MAX 4096

/* ---- paths ---- */

struct path_case {
    const char *path;
    enum ferry_rp_path want;
    const char *topic;
    int32_t partition;
};

static const struct path_case path_cases[] = {
    {"/topics/orders", FERRY_RP_PATH_OK, "orders", ANY},
    {"/topics/a.b_c-9", FERRY_RP_PATH_OK, "a.b_c-9", ANY},
    {"/topics/orders/partitions/0", FERRY_RP_PATH_OK, "orders", 0},
    {"/topics/orders/partitions/2147483647", FERRY_RP_PATH_OK, "orders", 2147483647},
    {"/topics/orders/partitions/2147483648", FERRY_RP_PATH_BAD_PARTITION, NULL, 0},
    {"/topics/orders/partitions/-1", FERRY_RP_PATH_BAD_PARTITION, NULL, 0},
    {"/topics/orders/partitions/x", FERRY_RP_PATH_BAD_PARTITION, NULL, 0},
    {"/topics/orders/partitions/", FERRY_RP_PATH_BAD_PARTITION, NULL, 0},
    {"/topics/orders/partitions/1/x", FERRY_RP_PATH_BAD_PARTITION, NULL, 0},
    {"/topics/orders/", FERRY_RP_PATH_NO_ROUTE, NULL, 0},
    {"/topics/orders/partition/1", FERRY_RP_PATH_NO_ROUTE, NULL, 0},
    {"/topics/", FERRY_RP_PATH_BAD_TOPIC, NULL, 0},
    {"/topics/..", FERRY_RP_PATH_BAD_TOPIC, NULL, 0},
    {"/topics/bad$name", FERRY_RP_PATH_BAD_TOPIC, NULL, 0},
    {"/topics/has space", FERRY_RP_PATH_BAD_TOPIC, NULL, 0},
    {"/other/orders", FERRY_RP_PATH_NO_ROUTE, NULL, 0},
};

static void test_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        char topic[FERRY_TOPIC_NAME_MAX + 1] = "";
        int32_t partition = -2;
        enum ferry_rp_path got = ferry_restproxy_path(c->path, topic, &partition);
        if (got != c->want)
            fail_msg("%s: got %d, want %d", c->path, got, c->want);
        if (c->topic) {
            assert_string_equal(topic, c->topic);
            assert_int_equal(partition, c->partition);
        }
    }
}

static void test_long_topic(void **state)
{
    char path[400], topic[FERRY_TOPIC_NAME_MAX + 1];
    int32_t partition;

    (void)state;
    snprintf(path, sizeof(path), "/topics/%0249d", 7);
    assert_int_equal(ferry_restproxy_path(path, topic, &partition), FERRY_RP_PATH_OK);
    assert_int_equal(strlen(topic), 249);
    snprintf(path, sizeof(path), "/topics/%0250d", 7);
    assert_int_equal(ferry_restproxy_path(path, topic, &partition), FERRY_RP_PATH_BAD_TOPIC);
}

/* ---- content types and Accept ---- */

struct type_case {
    const char *content_type;
    int ok;
    enum ferry_rp_format format;
};

static const struct type_case type_cases[] = {
    {"application/vnd.kafka.json.v2+json", 1, J},
    {"application/vnd.kafka.binary.v2+json", 1, B},
    {"application/json", 1, J},
    {"Application/JSON; charset=utf-8", 1, J},
    {" application/vnd.kafka.binary.v2+json ;charset=utf-8", 1, B},
    {"application/vnd.kafka.avro.v2+json", 0, J},
    {"application/vnd.kafka.v2+json", 1, B},
    {"Application/Vnd.Kafka.V2+Json; charset=utf-8", 1, B},
    {"application/vnd.kafka.v1+json", 0, J},
    {"text/plain", 0, J},
    {"", 0, J},
    {NULL, 0, J},
};

static void test_content_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(type_cases) / sizeof(type_cases[0]); i++) {
        const struct type_case *c = &type_cases[i];
        enum ferry_rp_format f = J;
        int rc = ferry_restproxy_format(c->content_type, &f);
        if ((rc == 0) != c->ok)
            fail_msg("'%s': got %d", c->content_type ? c->content_type : "(null)", rc);
        if (c->ok)
            assert_int_equal(f, c->format);
    }
}

struct accept_case {
    const char *accept;
    const char *want; /* NULL: not acceptable */
};

static const struct accept_case accept_cases[] = {
    {NULL, FERRY_RP_ANSWER_TYPE},
    {"", FERRY_RP_ANSWER_TYPE},
    {"*/*", FERRY_RP_ANSWER_TYPE},
    {"application/vnd.kafka.v2+json", FERRY_RP_ANSWER_TYPE},
    {"application/vnd.kafka.v2+json, application/vnd.kafka+json, application/json",
     FERRY_RP_ANSWER_TYPE},
    {"application/vnd.kafka+json", FERRY_RP_ANSWER_TYPE},
    {"application/json", "application/json"},
    {"text/html, application/json;q=0.5", "application/json"},
    {"text/html", NULL},
    {"application/xml", NULL},
    /* media ranges, not substrings */
    {"application/json-seq", NULL},
    {"application/jsonx, text/application/json", NULL},
    {"  APPLICATION/JSON  ", "application/json"},
    {"application/json ;charset=utf-8", "application/json"},
    {"Application/*", FERRY_RP_ANSWER_TYPE},
    {"text/*/*", NULL},
    /* q=0 refuses a range; any other weight accepts it */
    {"application/json;q=0", NULL},
    {"application/json; Q=0.000", NULL},
    {"application/json;q=0.", NULL},
    {"application/json;q=0.001", "application/json"},
    {"application/json;level=1;q=0", NULL},
    {"*/*;q=0, application/json", "application/json"},
    {"application/json;q=0.5, application/vnd.kafka.v2+json;q=0", "application/json"},
    {"application/vnd.kafka.v2+json;q=0.1, application/json", FERRY_RP_ANSWER_TYPE},
    /* the most specific range applies */
    {"application/vnd.kafka.v2+json;q=0, */*", "application/json"},
    {"*/*, application/*;q=0", NULL},
    {"application/*;q=0, application/json", "application/json"},
    {"application/json;q=0, application/json", "application/json"},
    /* what some clients send: Spring, Java's default */
    {"application/json, application/*+json", FERRY_RP_ANSWER_TYPE},
    {"application/*+json", FERRY_RP_ANSWER_TYPE},
    {"text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", FERRY_RP_ANSWER_TYPE},
    {"*", FERRY_RP_ANSWER_TYPE},
    {",", NULL},
    {"text/html,,application/json", "application/json"},
};

static void test_accept(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(accept_cases) / sizeof(accept_cases[0]); i++) {
        const char *got = ferry_restproxy_answer_type(accept_cases[i].accept);
        if (!accept_cases[i].want)
            assert_null(got);
        else
            assert_string_equal(got, accept_cases[i].want);
    }
}

/* ---- bodies ---- */

static const struct ferry_ingest_limits limits = {
    .max_records = 5,
    .max_key_bytes = 16,
    .max_value_bytes = 64,
    .max_headers = 2,
    .max_header_bytes = 24,
};

/* Renders a record as "key|value|partition|h1=v1;h2=(null)", "(null)" for null key/value. */
static void render(const struct ferry_ingest_batch *b, size_t i, char *out, size_t size)
{
    const struct ferry_ingest_record *r = &b->records[i];
    int n = snprintf(out, size, "%.*s|%.*s|%d|", r->key ? (int)r->key_len : 6,
                     r->key ? r->key : "(null)", r->value ? (int)r->value_len : 6,
                     r->value ? r->value : "(null)", (int)r->partition);
    for (size_t j = 0; j < r->nheaders && n > 0 && (size_t)n < size; j++) {
        const struct ferry_ingest_header *h = &b->headers[r->first_header + j];
        n += snprintf(out + n, size - (size_t)n, "%s%.*s=%.*s", j ? ";" : "", (int)h->name_len,
                      h->name, h->value ? (int)h->value_len : 6, h->value ? h->value : "(null)");
    }
}

struct good_case {
    const char *body;
    enum ferry_rp_format format;
    int32_t path_partition;
    const char *records[6]; /* rendered; NULL ends */
};

static const struct good_case good_cases[] = {
    /* REST Proxy's documented json example: keys are JSON text, quotes included */
    {"{\"records\":[{\"key\":\"someKeyText\",\"value\":{\"name\":\"testUser\"}},"
     "{\"key\":\"someKeyText\",\"value\":{\"name\":\"testUser2\"}}]}",
     J,
     ANY,
     {"\"someKeyText\"|{\"name\":\"testUser\"}|-1|",
      "\"someKeyText\"|{\"name\":\"testUser2\"}|-1|"}},
    /* REST Proxy's documented binary example */
    {"{\"records\":[{\"key\":\"a2V5\",\"value\":\"Y29uZmx1ZW50\"},"
     "{\"value\":\"a2Fma2E=\",\"partition\":1},{\"value\":\"bG9ncw==\"}]}",
     B,
     ANY,
     {"key|confluent|-1|", "(null)|kafka|1|", "(null)|logs|-1|"}},
    /* whitespace outside strings goes, inside strings stays */
    {" { \"records\" : [ { \"value\" : { \"a\" : [ 1 , 2 ] ,\n\t\"s\" : \"x y\" } } ] } \n",
     J,
     ANY,
     {"(null)|{\"a\":[1,2],\"s\":\"x y\"}|-1|"}},
    {"{\"records\":[{\"key\":null,\"value\":null}]}", J, ANY, {"(null)|(null)|-1|"}},
    {"{\"records\":[{}]}", J, ANY, {"(null)|(null)|-1|"}},
    {"{\"records\":[{\"value\":42},{\"value\":\"str\"},{\"value\":true},{\"value\":-1.5e3}]}",
     J,
     ANY,
     {"(null)|42|-1|", "(null)|\"str\"|-1|", "(null)|true|-1|", "(null)|-1.5e3|-1|"}},
    /* escapes are kept as written: the value is JSON text */
    {"{\"records\":[{\"value\":\"a\\u00e9\\n\"}]}", J, ANY, {"(null)|\"a\\u00e9\\n\"|-1|"}},
    {"{\"records\":[{\"value\":\"\"},{\"key\":\"\",\"value\":null}]}",
     B,
     ANY,
     {"(null)||-1|", "|(null)|-1|"}},
    {"{\"records\":[{\"value\":1,\"headers\":[{\"name\":\"h1\",\"value\":\"v1\"},"
     "{\"name\":\"h2\",\"value\":null}]}]}",
     J,
     ANY,
     {"(null)|1|-1|h1=v1;h2=(null)"}},
    {"{\"records\":[{\"value\":\"eA==\",\"headers\":[{\"value\":\"djE=\",\"name\":\"h\\u00e9\"}]}]"
     "}",
     B,
     ANY,
     {"(null)|x|-1|h\xc3\xa9=v1"}},
    {"{\"records\":[{\"value\":1,\"headers\":null},{\"value\":2,\"headers\":[]}]}",
     J,
     ANY,
     {"(null)|1|-1|", "(null)|2|-1|"}},
    {"{\"value_schema_id\":null,\"key_schema\":null,\"records\":[{\"value\":1}]}",
     J,
     ANY,
     {"(null)|1|-1|"}},
    {"{\"records\":[{\"value\":1},{\"value\":2,\"partition\":3},{\"value\":3,\"partition\":null}]}",
     J,
     3,
     {"(null)|1|3|", "(null)|2|3|", "(null)|3|3|"}},
    {"{\"records\":[{\"value\":1,\"partition\":0},{\"value\":2,\"partition\":2147483647}]}",
     J,
     ANY,
     {"(null)|1|0|", "(null)|2|2147483647|"}},
    /* exactly at the limits: 5 records, a 16-byte key */
    {"{\"records\":[{\"key\":\"12345678901234\",\"value\":1},{},{},{},{}]}",
     J,
     ANY,
     {"\"12345678901234\"|1|-1|", "(null)|(null)|-1|", "(null)|(null)|-1|", "(null)|(null)|-1|",
      "(null)|(null)|-1|"}},
};

static void test_good_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *c = &good_cases[i];
        struct ferry_ingest_batch b;
        char why[256] = "", got[RENDER_MAX];
        size_t n = 0;
        int code = 0, status;

        assert_int_equal(ferry_ingest_batch_init(&b, strlen(c->body)), 0);
        status = ferry_restproxy_parse(c->body, strlen(c->body), c->format, c->path_partition,
                                       &limits, &b, &code, why, sizeof(why));
        if (status)
            fail_msg("case %zu: %d %d %s", i, status, code, why);
        while (c->records[n])
            n++;
        assert_int_equal(b.count, n);
        for (size_t j = 0; j < n; j++) {
            render(&b, j, got, sizeof(got));
            if (strcmp(got, c->records[j]) != 0)
                fail_msg("case %zu record %zu: got '%s', want '%s'", i, j, got, c->records[j]);
        }
        ferry_ingest_batch_release(&b);
    }
}

struct bad_case {
    const char *body;
    enum ferry_rp_format format;
    int32_t path_partition;
    int status;
    int code;
    const char *message;
};

static const struct bad_case bad_cases[] = {
    {"", J, ANY, 422, 422, "body: expected a JSON object with \"records\""},
    {"[]", J, ANY, 422, 422, "body: expected a JSON object with \"records\""},
    {"{}", J, ANY, 422, 422, "records: missing"},
    {"{\"records\":[]}", J, ANY, 422, 422, "records: may not be empty"},
    {"{\"records\":{}}", J, ANY, 422, 422, "records: expected a list of records"},
    {"{\"records\":null}", J, ANY, 422, 422, "records: expected a list of records"},
    {"{\"records\":[{\"value\":1}],\"records\":[]}", J, ANY, 422, 422, "records: given twice"},
    {"{\"records\":[{\"value\":1}],\"x\":1}", J, ANY, 422, 422, "x: unknown field"},
    {"{\"records\":[{\"vaule\":1}]}", J, ANY, 422, 422, "records[0].vaule: unknown field"},
    /* a name holding U+0000 is unknown, whatever comes before the NUL */
    {"{\"records\\u0000\":[{\"value\":1}]}", J, ANY, 422, 422,
     "(name with \\u0000): unknown field"},
    {"{\"records\":[{\"key\\u0000junk\":\"k\",\"value\":1}]}", J, ANY, 422, 422,
     "records[0].(name with \\u0000): unknown field"},
    {"{\"records\":[{\"value\\u0000more\":1}]}", J, ANY, 422, 422,
     "records[0].(name with \\u0000): unknown field"},
    {"{\"records\":[{\"partition\\u0000x\":2,\"value\":1}]}", J, ANY, 422, 422,
     "records[0].(name with \\u0000): unknown field"},
    {"{\"records\":[{\"value\":1,\"headers\":[{\"name\\u0000\":\"h\"}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].(name with \\u0000): unknown field"},
    {"{\"records\":[{\"value\":1,\"headers\":[{\"name\":\"h\",\"value\\u0000\":\"v\"}]}]}", J, ANY,
     422, 422, "records[0].headers[0].(name with \\u0000): unknown field"},
    {"{\"records\":[{\"value\":1,"
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}]}",
     J, ANY, 422, 422, "records[0].(name over 64 bytes): unknown field"},
    {"{\"records\":[{\"value\":1,\"value\":2}]}", J, ANY, 422, 422,
     "records[0].value: given twice"},
    {"{\"records\":[{\"value\":1},2]}", J, ANY, 422, 422, "records[1]: expected an object"},
    {"{\"records\":[{\"value\":1}", J, ANY, 422, 422, "records: unterminated array at byte 23"},
    {"{\"records\":[{\"value\":1", J, ANY, 422, 422, "records[0]: unterminated object at byte 22"},
    {"{\"records\":[{\"value\":1}]", J, ANY, 422, 422, "body: unterminated object at byte 24"},
    {"{\"records\":[{\"value\":1}]} x", J, ANY, 422, 422,
     "body: unexpected text after the value at byte 26"},
    {"{\"records\":[{\"value\":1},]}", J, ANY, 422, 422, "records[1]: expected an object"},
    {"{\"records\":[{\"value\":1} {\"value\":2}]}", J, ANY, 422, 422,
     "records: expected ',' or ']' at byte 24"},
    {"{\"records\":[{\"value\" 1}]}", J, ANY, 422, 422, "records[0]: expected ':' at byte 21"},
    {"{\"records\":[{\"value\":tru}]}", J, ANY, 422, 422,
     "records[0].value: expected a value at byte 21"},
    {"{\"records\":[{\"value\":{\"a\":1,}}]}", J, ANY, 422, 422,
     "records[0].value: expected a member name at byte 28"},
    {"{\"records\":[{\"value\":\"\xff\"}]}", J, ANY, 422, 422,
     "records[0].value: invalid UTF-8 in a string at byte 22"},
    {"{\"records\":[{\"value\":\"a\x01\"}]}", J, ANY, 422, 422,
     "records[0].value: control character in a string at byte 23"},
    {"{\"records\":[{\"value\":01}]}", J, ANY, 422, 422,
     "records[0].value: invalid number (leading zero) at byte 22"},
    {"{\"records\":[{\"value\":truex}]}", J, ANY, 422, 422,
     "records[0].value: invalid JSON: a number or literal runs on at byte 25"},
    {"{\"records\":[{\"value\":1e5x}]}", J, ANY, 422, 422,
     "records[0].value: invalid JSON: a number or literal runs on at byte 24"},
    {"{\"records\":[{\"key\":nulll,\"value\":1}]}", J, ANY, 422, 422,
     "records[0].key: invalid JSON: a number or literal runs on at byte 23"},
    {"{\"records\":[{\"value\":\"!!\"}]}", B, ANY, 422, 422, "records[0].value: base64 is invalid"},
    {"{\"records\":[{\"key\":\"a2V5=\",\"value\":null}]}", B, ANY, 422, 422,
     "records[0].key: base64 is invalid"},
    {"{\"records\":[{\"value\":12}]}", B, ANY, 422, 422,
     "records[0].value: expected a base64 string or null"},
    {"{\"records\":[{\"value\":{}}]}", B, ANY, 422, 422,
     "records[0].value: expected a base64 string or null"},
    {"{\"records\":[{\"value\":\"a\\x\"}]}", B, ANY, 422, 422,
     "records[0].value: invalid escape in a string at byte 24"},
    {"{\"records\":[{\"value\":1,\"partition\":-1}]}", J, ANY, 422, FERRY_RP_BAD_PARTITION,
     "records[0].partition: expected a partition number (0 or more)"},
    {"{\"records\":[{\"value\":1,\"partition\":\"1\"}]}", J, ANY, 422, FERRY_RP_BAD_PARTITION,
     "records[0].partition: expected a partition number (0 or more)"},
    {"{\"records\":[{\"value\":1,\"partition\":1.5}]}", J, ANY, 422, FERRY_RP_BAD_PARTITION,
     "records[0].partition: expected a partition number (0 or more)"},
    {"{\"records\":[{\"value\":1,\"partition\":2147483648}]}", J, ANY, 422, FERRY_RP_BAD_PARTITION,
     "records[0].partition: expected a partition number (0 or more)"},
    {"{\"records\":[{\"value\":1,\"partition\":2}]}", J, 3, 422, FERRY_RP_BAD_PARTITION,
     "records[0].partition: 2 differs from the partition in the path (3)"},
    {"{\"records\":[{},{},{},{},{},{}]}", J, ANY, 413, 413,
     "records: more than ingest.limits.max_records (5)"},
    {"{\"records\":[{\"key\":\"123456789012345\",\"value\":1}]}", J, ANY, 422, FERRY_RP_TOO_LARGE,
     "records[0].key: 17 bytes, more than ingest.limits.max_key_bytes (16)"},
    {"{\"records\":[{},{\"value\":\"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0"
     "NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OQ==\"}]}",
     B, ANY, 422, FERRY_RP_TOO_LARGE,
     "records[1].value: 70 bytes, more than ingest.limits.max_value_bytes (64)"},
    {"{\"records\":[{\"headers\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}]}", J, ANY,
     422, FERRY_RP_TOO_LARGE, "records[0].headers: more than ingest.limits.max_headers (2)"},
    {"{\"records\":[{\"headers\":[{\"name\":\"abcdefghij\",\"value\":\"0123456789abcdef\"}]}]}", J,
     ANY, 422, FERRY_RP_TOO_LARGE,
     "records[0].headers[0]: 26 bytes, more than ingest.limits.max_header_bytes (24)"},
    {"{\"records\":[{\"headers\":[{\"value\":\"v\"}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].name: missing, expected a string"},
    {"{\"records\":[{\"headers\":[{\"name\":\"\"}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].name: missing, expected a string"},
    {"{\"records\":[{\"headers\":[{\"name\":\"h\",\"value\":1}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].value: expected a string or null"},
    {"{\"records\":[{\"headers\":[{\"name\":\"h\",\"value\":\"d\"}]}]}", B, ANY, 422, 422,
     "records[0].headers[0].value: base64 is invalid"},
    {"{\"records\":[{\"headers\":[{\"name\":\"h\",\"x\":1}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].x: unknown field"},
    {"{\"records\":[{\"headers\":[{\"name\":\"h\",\"name\":\"g\"}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].name: given twice"},
    {"{\"records\":[{\"headers\":[{\"name\":\"h\",\"value\":\"a\",\"value\":\"b\"}]}]}", J, ANY,
     422, 422, "records[0].headers[0].value: given twice"},
    {"{\"records\":[{\"headers\":{\"h\":\"v\"}}]}", J, ANY, 422, 422,
     "records[0].headers: expected a list of {\"name\", \"value\"} objects"},
    {"{\"records\":[{\"headers\":[\"h\"]}]}", J, ANY, 422, 422,
     "records[0].headers[0]: expected an object with name and value"},
    {"{\"records\":[{\"headers\":[{\"name\":\"\\ud800\"}]}]}", J, ANY, 422, 422,
     "records[0].headers[0].name: invalid escape in a string at byte 39"},
    {"{\"value_schema\":\"{}\",\"records\":[{\"value\":1}]}", J, ANY, 422, 422,
     "value_schema: schemas are not supported; use the json or binary format"},
};

static void test_bad_bodies(void **state)
{
    int failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct ferry_ingest_batch b;
        char why[256] = "";
        int code = 0, status;

        assert_int_equal(ferry_ingest_batch_init(&b, strlen(c->body)), 0);
        status = ferry_restproxy_parse(c->body, strlen(c->body), c->format, c->path_partition,
                                       &limits, &b, &code, why, sizeof(why));
        if (status != c->status || code != c->code || strcmp(why, c->message) != 0) {
            print_error("case %zu: got %d %d '%s', want %d %d '%s'\n", i, status, code, why,
                        c->status, c->code, c->message);
            failures++;
        }
        ferry_ingest_batch_release(&b);
    }
    assert_int_equal(failures, 0);
}

/* Every prefix of a good body is refused without reading past its end (ASan watches). */
static void test_truncated_bodies(void **state)
{
    const char *body = "{\"records\":[{\"key\":\"a\\u00e9\",\"value\":{\"x\":[1,\"y\"]},"
                       "\"partition\":1,\"headers\":[{\"name\":\"n\",\"value\":\"v\"}]}]}";
    (void)state;
    for (size_t len = 0; len < strlen(body); len++) {
        struct ferry_ingest_batch b;
        char copy[256], why[256];
        int code;
        memcpy(copy, body, len);
        assert_int_equal(ferry_ingest_batch_init(&b, len), 0);
        assert_int_not_equal(
            ferry_restproxy_parse(copy, len, J, ANY, &limits, &b, &code, why, sizeof(why)), 0);
        ferry_ingest_batch_release(&b);
    }
}

/* ---- answers ---- */

static const struct ferry_rp_offset offsets[] = {
    {2, 100, 0, NULL},
    {-1, -1, FERRY_RP_KAFKA_ERROR, "Local: Message timed out"},
    {0, 0, 0, NULL},
};

static void offset_at(void *arg, size_t i, struct ferry_rp_offset *o)
{
    (void)arg;
    *o = offsets[i];
}

static void test_write_offsets(void **state)
{
    struct ferry_buf out;

    (void)state;
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_restproxy_write_offsets(&out, 3, offset_at, NULL, 0, NULL), 0);
    assert_string_equal(out.data,
                        "{\"offsets\":[{\"partition\":2,\"offset\":100,\"error_code\":null,"
                        "\"error\":null},{\"partition\":null,\"offset\":null,\"error_code\":50002,"
                        "\"error\":\"Local: Message timed out\"},{\"partition\":0,\"offset\":0,"
                        "\"error_code\":null,\"error\":null}],\"key_schema_id\":null,"
                        "\"value_schema_id\":null}\n");
    ferry_buf_reset(&out);
    assert_int_equal(ferry_restproxy_write_offsets(&out, 1, offset_at, NULL, 50002, "say \"no\""),
                     0);
    assert_string_equal(out.data, "{\"offsets\":[{\"partition\":2,\"offset\":100,\"error_code\":"
                                  "null,\"error\":null}],\"key_schema_id\":null,"
                                  "\"value_schema_id\":null,\"error_code\":50002,"
                                  "\"message\":\"say \\\"no\\\"\"}\n");
    ferry_buf_release(&out);
    ferry_buf_init(&out, 10);
    assert_int_equal(ferry_restproxy_write_offsets(&out, 3, offset_at, NULL, 0, NULL), -1);
    ferry_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_long_topic),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_good_bodies),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_truncated_bodies),
        cmocka_unit_test(test_write_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
