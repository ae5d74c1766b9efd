/*
 * test_request.c - which record headers a route with forward_headers sends as HTTP headers
 * (src/route/request.c): token names and values without control bytes only, never a header
 * that frames the message or manages the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "route/body.h"
#include "route/dispatch.h"
#include "route/request.h"

struct header_case {
    const char *name, *value;
    int sent;
};

static const struct header_case header_cases[] = {
    {"X-Ok", "fine", 1},
    {"x.ok_2~!#$%&'*+^`|", "v", 1},
    {"X-Value", "a\r\nInjected: 1", 0},
    {"X Space", "v", 0},
    {"X:Colon", "v", 0},
    {"", "v", 0},
    {"Host", "evil.example", 0},
    {"transfer-encoding", "chunked", 0},
    /* control and non-ASCII bytes in a name were forwarded (found by fuzz_record_headers) */
    {"X\x01Ctl", "v", 0},
    {"X\x0bVt", "v", 0},
    {"X\x7f", "v", 0},
    {"X-\xc3\xa9", "v", 0},
};

static void reject(void *arg, struct ferry_dispatch_rec *rec, const char *why)
{
    (void)arg;
    (void)rec;
    fail_msg("rejected: %s", why);
}

/* Returns 1 when the request's headers hold "name: value". */
static int has_line(const struct curl_slist *list, const char *name, const char *value)
{
    size_t n = strlen(name);

    for (; list; list = list->next)
        if (strncmp(list->data, name, n) == 0 && strncmp(list->data + n, ": ", 2) == 0 &&
            strcmp(list->data + n + 2, value) == 0)
            return 1;
    return 0;
}

static void test_forwarded_headers(void **state)
{
    struct ferry_route_config cfg = {0};
    struct ferry_dispatch_rec rec = {0};
    ferry_request_builder *b;
    struct ferry_request *req;
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);
    char err[256];
    size_t cut = 0;

    (void)state;
    cfg.name = "r";
    cfg.target.url = "http://127.0.0.1:9/x";
    cfg.target.forward_headers = 1;
    cfg.body.mode = FERRY_BODY_VALUE;
    cfg.batch.max_records = 1;
    cfg.batch.max_bytes = 1024;
    b = ferry_request_builder_new(&cfg, err, sizeof(err));
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++)
        rd_kafka_header_add(h, header_cases[i].name, -1, header_cases[i].value, -1);
    rec.view = (struct ferry_record){"t", 0, 1, -1, NULL, 0, "v", 1, h, NULL};
    req = ferry_request_get(b);
    assert_non_null(req);
    req->recs[0] = &rec;
    req->n = 1;
    assert_int_equal(ferry_request_build(b, req, &cut, reject, NULL), 0);
    for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
        const struct header_case *c = &header_cases[i];
        if (has_line(req->call.headers, c->name, c->value) != c->sent)
            fail_msg("header '%s': %s", c->name, c->sent ? "not sent" : "sent");
    }
    ferry_request_put(b, req);
    ferry_request_builder_destroy(b);
    rd_kafka_headers_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarded_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
