/*
 * test_ingest_config.c - unit tests of the `ingest:` config section and `server.tls`
 * (src/ingest/ingest_config.c, src/core/config.c): a full config loads with its values, and
 * each broken one gets the exact first error, with key path and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "ingest/ingest.h"
#include "ingest/ingest_config.h"

static const char full[] = "server:\n"
                           "  shutdown_timeout: 30s\n"
                           "ingest:\n"
                           "  delivery_timeout: 10s\n"
                           "  rest_proxy:\n"
                           "    topics: [orders, \"^events\\\\..*\"]\n"
                           "    ack: accepted\n"
                           "  webhooks:\n"
                           "    - name: github\n"
                           "      path: /webhooks/github\n"
                           "      topic: github.events\n"
                           "      key: {header: X-GitHub-Delivery, required: true}\n"
                           "      headers: [X-GitHub-Event]\n"
                           "      auth: false\n"
                           "    - name: clicks\n"
                           "      path: /webhooks/clicks\n"
                           "      topic: clicks\n"
                           "      key: {json: user.id}\n"
                           "      ndjson: true\n"
                           "  auth:\n"
                           "    keys:\n"
                           "      - name: orders-service\n"
                           "        key: 0123456789abcdef0123\n"
                           "        topics: [orders]\n"
                           "  limits:\n"
                           "    max_body: 2MiB\n"
                           "    max_records: 500\n"
                           "    max_in_flight_bytes: 128MiB\n";

static void test_full(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string(full, "ok.yaml");
    const struct ferry_ingest_config *in = ferry_config_job(cfg, &ferry_ingest_job);
    const struct ferry_ingest_webhook_config *w = in->webhooks.items;
    const struct ferry_ingest_api_key_config *k = in->auth.keys.items;

    (void)state;
    if (ferry_config_error_count(cfg))
        fail_msg("%s", ferry_config_error_at(cfg, 0));
    assert_true(ferry_ingest_config_enabled(in));
    assert_int_equal(in->delivery_timeout_ms, 10000);
    assert_int_equal(in->rest_proxy.topics.count, 2);
    assert_string_equal(in->rest_proxy.topics.items[1], "^events\\..*");
    assert_int_equal(in->rest_proxy.ack, FERRY_INGEST_ACK_ACCEPTED);
    assert_int_equal(in->webhooks.count, 2);
    assert_string_equal(w[0].key.header, "X-GitHub-Delivery");
    assert_true(w[0].key.required);
    assert_false(w[0].auth);
    assert_int_equal(w[0].ack, FERRY_INGEST_ACK_KAFKA);
    assert_true(w[1].ndjson);
    assert_true(w[1].auth);
    assert_string_equal(w[1].key.json, "user.id");
    assert_string_equal(k[0].key, "0123456789abcdef0123");
    assert_int_equal(in->limits.max_body, 2 * 1024 * 1024);
    assert_int_equal(in->limits.max_records, 500);
    assert_int_equal(in->limits.max_key_bytes, 64 * 1024);
    ferry_config_destroy(cfg);
}

static void test_defaults(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string("log: {level: info}\n", "ok.yaml");
    const struct ferry_ingest_config *in;

    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 0);
    in = ferry_config_job(cfg, &ferry_ingest_job);
    assert_false(ferry_ingest_config_enabled(in));
    assert_int_equal(in->delivery_timeout_ms, 20000);
    assert_int_equal(in->limits.max_in_flight_bytes, 64 * 1024 * 1024);
    assert_int_equal(in->limits.max_records, 1000);
    assert_null(cfg->server.tls.cert_file);
    ferry_config_destroy(cfg);
}

struct bad_case {
    const char *text;
    const char *message; /* the whole first error */
};

#define X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define WH "ingest:\n  webhooks:\n    - name: w\n      topic: t\n"

static const struct bad_case bad_cases[] = {
    {"ingest:\n  rest_proxy:\n    topics: [\"bad name\"]\n",
     "config: ingest.rest_proxy.topics[0]: topic name 'bad name' holds ' ', but Kafka allows only "
     "ASCII letters, digits, '.', '_' and '-' (a regular expression starts with '^') "
     "(bad.yaml:3)"},
    {"ingest:\n  rest_proxy:\n    topics: [\"^(x\"]\n",
     "config: ingest.rest_proxy.topics[0]: '^(x' is not a valid regular expression: Unmatched ( "
     "or \\( (bad.yaml:3)"},
    {"ingest:\n  rest_proxy:\n    topics: [\"^a+++++\"]\n",
     "config: ingest.rest_proxy.topics[0]: '^a+++++': a quantifier follows a quantifier "
     "(undefined in POSIX ERE) (bad.yaml:3)"},
    {"ingest:\n  rest_proxy:\n    ack: later\n",
     "config: ingest.rest_proxy.ack: expected one of kafka, accepted, got 'later' (bad.yaml:3)"},
    {"ingest:\n  webhooks:\n    - name: w\n", "config: ingest.webhooks[0].path: missing, this key "
                                              "is required (bad.yaml:3)"},
    {WH "      path: hooks\n",
     "config: ingest.webhooks[0].path: expected a path starting with '/', got 'hooks' "
     "(bad.yaml:5)"},
    {WH "      path: /metrics\n",
     "config: ingest.webhooks[0].path: '/metrics' is one of ferry's own paths (bad.yaml:5)"},
    {WH "      path: /topics/x\n",
     "config: ingest.webhooks[0].path: paths under /topics/ belong to the REST Proxy API "
     "(bad.yaml:5)"},
    {WH "      path: /tables/users\n",
     "config: ingest.webhooks[0].path: paths under /tables/ belong to the tables' lookups "
     "(bad.yaml:5)"},
    {WH "      path: /routes/orders/redrive\n",
     "config: ingest.webhooks[0].path: paths under /routes/ belong to the routes' redrive "
     "endpoints (bad.yaml:5)"},
    {WH "      path: /tables\n",
     "config: ingest.webhooks[0].path: '/tables' is one of ferry's own paths (bad.yaml:5)"},
    {WH "      path: /a\n    - name: w2\n      topic: t\n      path: /a\n",
     "config: ingest.webhooks[1].path: another webhook has the path '/a' (bad.yaml:8)"},
    {WH "      path: /a\n    - name: w\n      topic: t\n      path: /b\n",
     "config: ingest.webhooks[1].name: another webhook is named 'w' (bad.yaml:6)"},
    {WH "      path: /a\n      key: {header: X-K, query: k}\n",
     "config: ingest.webhooks[0].key: set only one of header, query and json (bad.yaml:6)"},
    {WH "      path: /a\n      key: {required: true}\n",
     "config: ingest.webhooks[0].key: required, but no header, query or json is set "
     "(bad.yaml:6)"},
    {WH "      path: /a\n      key: {json: user..id}\n",
     "config: ingest.webhooks[0].key.json: expected a dot-separated path like 'user.id', got "
     "'user..id' (bad.yaml:6)"},
    {WH "      path: /a\n      key: {header: \"X K\"}\n",
     "config: ingest.webhooks[0].key.header: 'X K' is not a header name (bad.yaml:6)"},
    {"ingest:\n  webhooks:\n    - name: w\n      topic: \"t/x\"\n      path: /a\n",
     "config: ingest.webhooks[0].topic: topic name 't/x' holds '/', but Kafka allows only ASCII "
     "letters, digits, '.', '_' and '-' (bad.yaml:4)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        key: short\n        topics: [a]\n",
     "config: ingest.auth.keys[0].key: expected 16 to 256 characters, got 5 (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: k, key: aaaaaaaaaaaaaaaa, topics: [a]}\n"
     "      - {name: k, key: bbbbbbbbbbbbbbbb, topics: [a]}\n",
     "config: ingest.auth.keys[1].name: another key is named 'k' (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        topics: [a]\n",
     "config: ingest.auth.keys[0].key: missing, set key or key_file (bad.yaml:4)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        key: " X50 X50 X50 X50 X50 X50
     "\n        topics: [a]\n",
     "config: ingest.auth.keys[0].key: expected 16 to 256 characters, got 300 (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        key_file: /\n        topics: [a]\n",
     "config: ingest.auth.keys[0].key_file: '/' is not a regular file (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        key: 0123456789abcdef\n        "
     "key_file: /x\n        topics: [a]\n",
     "config: ingest.auth.keys[0].key_file: set key or key_file, not both (bad.yaml:6)"},
    {"ingest:\n  auth:\n    keys:\n      - name: k\n        key_file: /nonexistent/k\n        "
     "topics: [a]\n",
     "config: ingest.auth.keys[0].key_file: cannot open '/nonexistent/k': No such file or "
     "directory (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: a, key: 0123456789abcdef, topics: [a]}\n"
     "      - {name: b, key: 0123456789abcdef, topics: [b]}\n",
     "config: ingest.auth.keys[1]: the same secret as keys[0] (bad.yaml:5)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: a, key: 0123456789abcdef}\n",
     "config: ingest.auth.keys[0].topics: missing, a key needs topics, tables or both "
     "(bad.yaml:4)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: a, key: 0123456789abcdef, tables: [\"a b\"]}\n",
     "config: ingest.auth.keys[0].tables[0]: table name: expected letters, digits, '.', '_' or "
     "'-', got 'a b' (a regular expression starts with '^') (bad.yaml:4)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: a, key: 0123456789abcdef, tables: [a, ..]}\n",
     "config: ingest.auth.keys[0].tables[1]: table name: '..' is not a name: paths and URLs read "
     "it as a directory (a regular expression starts with '^') (bad.yaml:4)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: a, key: 0123456789abcdef, tables: [\"^(\"]}\n",
     "config: ingest.auth.keys[0].tables[0]: '^(' is not a valid regular expression: Unmatched "
     "( or \\( (bad.yaml:4)"},
    {"server:\n  shutdown_timeout: 10s\ningest:\n  rest_proxy: {topics: [a]}\n",
     "config: ingest.delivery_timeout: must be shorter than server.shutdown_timeout (10000 ms), "
     "so that every accepted request is answered before ferry exits; got 20000 ms (bad.yaml:3)"},
    {"ingest:\n  limits:\n    max_records: 0\n",
     "config: ingest.limits.max_records: expected a value from 1 to 100000, got '0' "
     "(bad.yaml:3)"},
    {"server:\n  tls:\n    cert_file: /nonexistent/cert.pem\n",
     "config: server.tls.key_file: missing, TLS needs both cert_file and key_file (bad.yaml:2)"},
    {"server:\n  tls:\n    cert_file: /nonexistent/c.pem\n    key_file: /nonexistent/k.pem\n",
     "config: server.tls.cert_file: cannot open '/nonexistent/c.pem': No such file or directory "
     "(bad.yaml:3)"},
};

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct ferry_config *cfg = ferry_config_load_string(bad_cases[i].text, "bad.yaml");
        const char *got = ferry_config_error_at(cfg, 0);
        if (!got || strcmp(got, bad_cases[i].message) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, got ? got : "(no error)",
                     bad_cases[i].message);
        ferry_config_destroy(cfg);
    }
}

/* A short shutdown timeout is fine while no ingest endpoint is configured. */
static void test_timeout_only_checked_when_enabled(void **state)
{
    struct ferry_config *cfg =
        ferry_config_load_string("server:\n  shutdown_timeout: 1s\n", "ok.yaml");
    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 0);
    ferry_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_timeout_only_checked_when_enabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
