/*
 * test_webhook.c - unit tests of webhook bodies into records (src/ingest/webhook.c): keys from
 * a header, a query parameter or a JSON path, ndjson, copied headers, and every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/restproxy.h"
#include "ingest/webhook.h"

#define RENDER_MAX 2048

static const struct ferry_ingest_limits limits = {
    .max_records = 3,
    .max_key_bytes = 8,
    .max_value_bytes = 40,
    .max_headers = 32,
    .max_header_bytes = 1024,
};

enum source { NONE, HEADER, QUERY, JSONPATH };

struct webhook_case {
    int ndjson;
    enum source source;
    const char *path; /* for JSONPATH */
    int required;
    const char *body;
    const char *content_type;
    const char *given_key; /* the header's or query parameter's value */
    const char *event;     /* the copied X-Event header's value */
    int status;            /* 0: records below */
    int code;
    const char *want[4]; /* rendered records, or want[0] the error message */
};

static const struct webhook_case cases[] = {
    {0,
     NONE,
     NULL,
     0,
     "raw \x01 bytes",
     "application/octet-stream",
     NULL,
     NULL,
     0,
     0,
     {"(null)|raw \x01 bytes|content-type=application/octet-stream"}},
    {0, NONE, NULL, 0, "", NULL, NULL, NULL, 0, 0, {"(null)||"}},
    {0,
     HEADER,
     NULL,
     0,
     "{\"a\":1}",
     "application/json",
     "k-1",
     "push",
     0,
     0,
     {"k-1|{\"a\":1}|content-type=application/json;x-event=push"}},
    {0, HEADER, NULL, 0, "x", NULL, NULL, NULL, 0, 0, {"(null)|x|"}},
    {0, HEADER, NULL, 1, "x", NULL, NULL, NULL, 422, 422, {"the key is missing (header 'X-Key')"}},
    {0, QUERY, NULL, 1, "x", NULL, "q", NULL, 0, 0, {"q|x|"}},
    {0,
     QUERY,
     NULL,
     1,
     "x",
     NULL,
     NULL,
     NULL,
     422,
     422,
     {"the key is missing (query parameter 'id')"}},
    {0,
     JSONPATH,
     "user.id",
     0,
     "{\"user\":{\"id\":\"u-7\"}}",
     "application/json",
     NULL,
     NULL,
     0,
     0,
     {"u-7|{\"user\":{\"id\":\"u-7\"}}|content-type=application/json"}},
    {0,
     JSONPATH,
     "user.id",
     0,
     "{\"user\":{\"id\":42}}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"42|{\"user\":{\"id\":42}}|"}},
    {0,
     JSONPATH,
     "user.id",
     0,
     "{\"user\":{\"id\":\"\\u00e9\"}}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"\xc3\xa9|{\"user\":{\"id\":\"\\u00e9\"}}|"}},
    {0,
     JSONPATH,
     "user",
     0,
     "{\"user\": [1, 2]}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"[1,2]|{\"user\": [1, 2]}|"}},
    {0,
     JSONPATH,
     "user.id",
     0,
     "{\"user\":{\"id\":null}}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"(null)|{\"user\":{\"id\":null}}|"}},
    {0, JSONPATH, "user.id", 0, "{\"user\":{}}", NULL, NULL, NULL, 0, 0, {"(null)|{\"user\":{}}|"}},
    /* the path syntax templates share (docs/json-paths.md) */
    {0,
     JSONPATH,
     "k.1",
     0,
     "{\"k\":[\"a\",\"b\"]}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"b|{\"k\":[\"a\",\"b\"]}|"}},
    {0,
     JSONPATH,
     "k.01",
     0,
     "{\"k\":[\"a\",\"b\"]}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"(null)|{\"k\":[\"a\",\"b\"]}|"}},
    {0,
     JSONPATH,
     "\xc3\xa9",
     0,
     "{\"\\u00e9\":\"v\"}",
     NULL,
     NULL,
     NULL,
     0,
     0,
     {"v|{\"\\u00e9\":\"v\"}|"}},
    {0, JSONPATH, "a", 0, "{\"a\":1,\"a\":2}", NULL, NULL, NULL, 0, 0, {"1|{\"a\":1,\"a\":2}|"}},
    {0,
     JSONPATH,
     "user.id",
     1,
     "{\"user\":{}}",
     NULL,
     NULL,
     NULL,
     422,
     422,
     {"body: the key is missing (JSON path 'user.id')"}},
    {0,
     JSONPATH,
     "user.id",
     0,
     "{\"user\":",
     NULL,
     NULL,
     NULL,
     422,
     422,
     {"body: invalid JSON (the key is read from JSON path 'user.id')"}},
    {0,
     JSONPATH,
     "id",
     0,
     "{\"id\":\"123456789\"}",
     NULL,
     NULL,
     NULL,
     422,
     FERRY_RP_TOO_LARGE,
     {"body: the key has 9 bytes, more than ingest.limits.max_key_bytes (8)"}},
    {0,
     NONE,
     NULL,
     0,
     "0123456789012345678901234567890123456789x",
     NULL,
     NULL,
     NULL,
     422,
     FERRY_RP_TOO_LARGE,
     {"body: 41 bytes, more than ingest.limits.max_value_bytes (40)"}},
    {1,
     JSONPATH,
     "id",
     0,
     "{\"id\":1}\n\n{\"id\":2}\r\n  \n{\"x\":3}",
     "application/x-ndjson",
     NULL,
     "e",
     0,
     0,
     {"1|{\"id\":1}|content-type=application/json;x-event=e",
      "2|{\"id\":2}|content-type=application/json;x-event=e",
      "(null)|{\"x\":3}|content-type=application/json;x-event=e"}},
    {1,
     HEADER,
     NULL,
     0,
     "1\n2\n",
     NULL,
     "k",
     NULL,
     0,
     0,
     {"k|1|content-type=application/json", "k|2|content-type=application/json"}},
    {1, NONE, NULL, 0, "1\n{\"a\":\n3", NULL, NULL, NULL, 422, 422, {"line 2: invalid JSON"}},
    {1,
     NONE,
     NULL,
     0,
     "1\n2\n3\n4",
     NULL,
     NULL,
     NULL,
     413,
     413,
     {"line 4: more than ingest.limits.max_records (3) records"}},
    {1,
     NONE,
     NULL,
     0,
     "\n \r\n",
     NULL,
     NULL,
     NULL,
     422,
     422,
     {"body: no records (every line is empty)"}},
    {1,
     JSONPATH,
     "id",
     1,
     "{\"id\":1}\n{}",
     NULL,
     NULL,
     NULL,
     422,
     422,
     {"line 2: the key is missing (JSON path 'id')"}},
};

static void render(const struct ferry_ingest_batch *b, size_t i, char *out, size_t size)
{
    const struct ferry_ingest_record *r = &b->records[i];
    int n = snprintf(out, size, "%.*s|%.*s|", r->key ? (int)r->key_len : 6,
                     r->key ? r->key : "(null)", (int)r->value_len, r->value);
    for (size_t j = 0; j < r->nheaders && n > 0 && (size_t)n < size; j++) {
        const struct ferry_ingest_header *h = &b->headers[r->first_header + j];
        n += snprintf(out + n, size - (size_t)n, "%s%.*s=%.*s", j ? ";" : "", (int)h->name_len,
                      h->name, (int)h->value_len, h->value);
    }
}

static void setup_config(const struct webhook_case *c, struct ferry_ingest_webhook_config *w)
{
    memset(w, 0, sizeof(*w));
    w->name = "test";
    w->topic = "t";
    w->ndjson = c->ndjson;
    w->key.required = c->required;
    if (c->source == HEADER)
        w->key.header = "X-Key";
    else if (c->source == QUERY)
        w->key.query = "id";
    else if (c->source == JSONPATH)
        w->key.json = (char *)c->path;
}

static void check_case(size_t i, const struct webhook_case *c)
{
    static const char *const names[] = {"x-event"};
    struct ferry_ingest_webhook_config w;
    struct ferry_ingest_batch b;
    const char *values[] = {c->event};
    struct ferry_webhook_input in = {
        c->body, strlen(c->body), c->content_type, c->given_key, names, values, 1};
    char why[256] = "", got[RENDER_MAX];
    int code = 0, status;
    size_t n = 0;

    setup_config(c, &w);
    assert_int_equal(ferry_ingest_batch_init(&b, in.len), 0);
    status = ferry_webhook_parse(&w, &in, &limits, &b, &code, why, sizeof(why));
    if (status != c->status || code != c->code)
        fail_msg("case %zu: got %d %d '%s'", i, status, code, why);
    if (status) {
        assert_string_equal(why, c->want[0]);
    } else {
        while (n < 4 && c->want[n])
            n++;
        assert_int_equal(b.count, n);
        for (size_t j = 0; j < n; j++) {
            render(&b, j, got, sizeof(got));
            if (strcmp(got, c->want[j]) != 0)
                fail_msg("case %zu record %zu: got '%s', want '%s'", i, j, got, c->want[j]);
        }
    }
    ferry_ingest_batch_release(&b);
}

static void test_webhook_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(i, &cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
