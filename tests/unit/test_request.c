/*
 * test_request.c - which record headers a route with forward_headers sends as HTTP headers
 * (src/route/request.c): token names and values without control bytes only, never a header
 * that frames the message or manages the connection; and header templates and gRPC metadata,
 * which reject a record whose data they cannot carry, naming the header; and the headers ferry
 * sends by itself (Content-Type, Idempotency-Key), unless the configured ones set them; and
 * what the target sees of a record from a retry topic: the record it is a copy of.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "route/body.h"
#include "route/dispatch.h"
#include "route/request.h"
#include "route/retry_topic.h"

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

/* ---- header templates and gRPC metadata: a record they cannot carry is rejected ---- */

struct template_case {
    const char *key;  /* the record's key, which the templates render */
    const char *want; /* the start of the reason, or NULL when the request is built */
};

static const struct template_case template_cases[] = {
    {"plain", NULL},
    {"tab\there", NULL},
    {"caf\xc3\xa9", NULL},
    {"a\r\nInjected: 1", "'${key}': value contains CR, LF or NUL, which a header cannot carry"},
    {"a\x01"
     "b",
     "'${key}': value contains control byte 0x01, which a header cannot carry"},
    {"\x1b[31m", "'${key}': value contains control byte 0x1B, which a header cannot carry"},
    {"a\x7f", "'${key}': value contains control byte 0x7F, which a header cannot carry"},
};

struct rejection {
    int count;
    char why[512];
};

static void note_reject(void *arg, struct ferry_dispatch_rec *rec, const char *why)
{
    struct rejection *r = arg;

    (void)rec;
    r->count++;
    snprintf(r->why, sizeof(r->why), "%s", why);
}

/* Builds one record's request with key through cfg; checks what c wants. */
static void check_template_case(const struct ferry_route_config *cfg, const char *prefix,
                                const struct template_case *c)
{
    struct ferry_dispatch_rec rec = {0};
    struct rejection r = {0};
    struct ferry_request *req;
    char err[256], want[512];
    size_t cut = 0;
    ferry_request_builder *b = ferry_request_builder_new(cfg, err, sizeof(err));
    int rc;

    if (!b)
        fail_msg("builder: %s", err);
    rec.view = (struct ferry_record){"t", 0, 1, -1, c->key, strlen(c->key), "v", 1, NULL, NULL};
    req = ferry_request_get(b);
    assert_non_null(req);
    req->recs[0] = &rec;
    req->n = 1;
    rc = ferry_request_build(b, req, &cut, note_reject, &r);
    snprintf(want, sizeof(want), "%s%s", prefix, c->want ? c->want : "");
    if (!c->want && (rc != 0 || r.count))
        fail_msg("%s key '%s': rejected: %s", prefix, c->key, r.why);
    if (c->want && (rc == 0 || r.count != 1 || strcmp(r.why, want) != 0))
        fail_msg("%s key '%s': rc %d, reason '%s', want '%s'", prefix, c->key, rc, r.why, want);
    if (!c->want && !has_line(req->call.headers, "x-key", c->key))
        fail_msg("%s key '%s': header not sent", prefix, c->key);
    ferry_request_put(b, req);
    ferry_request_builder_destroy(b);
}

/* target.headers and target.grpc.metadata refuse what a header line cannot carry, and the
 * reason names the header. */
static void test_template_headers_refuse_control_bytes(void **state)
{
    struct ferry_cfg_kv kv[] = {{"x-static", "fixed"}, {"x-key", "${key}"}};
    struct ferry_route_config http = {0}, grpc = {0};

    (void)state;
    http.name = grpc.name = "r";
    http.target.url = "http://127.0.0.1:9/x";
    http.target.headers = (struct ferry_cfg_map){kv, 2};
    http.body.mode = grpc.body.mode = FERRY_BODY_VALUE;
    http.batch.max_records = grpc.batch.max_records = 1;
    http.batch.max_bytes = grpc.batch.max_bytes = 1024;
    grpc.target.grpc.url = "http://127.0.0.1:9";
    grpc.target.grpc.method = "ferry.test.Sink/Put";
    grpc.target.grpc.metadata = (struct ferry_cfg_map){kv, 2};
    for (size_t i = 0; i < sizeof(template_cases) / sizeof(template_cases[0]); i++) {
        check_template_case(&http, "target.headers.x-key: template: ", &template_cases[i]);
        check_template_case(&grpc, "target.grpc.metadata.x-key: template: ", &template_cases[i]);
    }
}

/* ---- the headers ferry adds by itself ---- */

struct default_case {
    const char *what;
    size_t n;               /* records, from topic "orders" partition 3 */
    int64_t offsets[3];     /* the records' offsets */
    size_t value_len;       /* 0: each value is 1; else a JSON string this long */
    int parked;             /* the one record was parked on the retry topic from offsets[0] */
    struct ferry_cfg_kv kv; /* a configured header, or {NULL, NULL} */
    const char *body_type;  /* body.content_type, or NULL */
    const char *want_type, *want_key;
    size_t want_cut; /* records in the request's body */
};

#define OCTETS "application/octet-stream"

static const struct default_case default_cases[] = {
    {.what = "one record", .n = 1, .offsets = {42}, .want_type = OCTETS, .want_key = "orders-3-42"},
    {.what = "a batch spans its offsets",
     .n = 3,
     .offsets = {7, 5, 9},
     .want_type = "application/json",
     .want_key = "orders-3-5-9"},
    /* 30,000-byte values: the body's cap (4 x 1 KiB + 64 KiB) holds two of them */
    {.what = "a cut batch spans the offsets it sends",
     .n = 3,
     .offsets = {7, 5, 9},
     .value_len = 30000,
     .want_type = "application/json",
     .want_key = "orders-3-5-7",
     .want_cut = 2},
    {.what = "the largest offset",
     .n = 1,
     .offsets = {INT64_MAX},
     .want_type = OCTETS,
     .want_key = "orders-3-9223372036854775807"},
    {.what = "offset 0", .n = 1, .offsets = {0}, .want_type = OCTETS, .want_key = "orders-3-0"},
    {.what = "a parked record keeps its first key",
     .n = 1,
     .offsets = {42},
     .parked = 1,
     .want_type = OCTETS,
     .want_key = "orders-3-42"},
    {.what = "a configured Idempotency-Key wins",
     .n = 1,
     .offsets = {42},
     .kv = {"Idempotency-Key", "mine"},
     .want_type = OCTETS,
     .want_key = "mine"},
    {.what = "a configured idempotency-key wins, in any case",
     .n = 1,
     .offsets = {42},
     .kv = {"idempotency-key", "mine"},
     .want_type = OCTETS,
     .want_key = "mine"},
    {.what = "a configured content-type wins, in any case",
     .n = 1,
     .offsets = {42},
     .kv = {"content-type", "text/plain"},
     .want_type = "text/plain",
     .want_key = "orders-3-42"},
    {.what = "body.content_type",
     .n = 1,
     .offsets = {42},
     .body_type = "application/vnd.x+json",
     .want_type = "application/vnd.x+json",
     .want_key = "orders-3-42"},
};

/* The value of the header called name (in any case) in list, NULL when there is none; fails
 * when there are two. */
static const char *header_value(const struct curl_slist *list, const char *name)
{
    size_t n = strlen(name);
    const char *found = NULL;

    for (; list; list = list->next) {
        if (strncasecmp(list->data, name, n) != 0 || strncmp(list->data + n, ": ", 2) != 0)
            continue;
        if (found)
            fail_msg("two %s headers: '%s' and '%s'", name, found, list->data + n + 2);
        found = list->data + n + 2;
    }
    return found;
}

/* Makes the route of c: one retry topic, "r.retry.1". */
static void default_case_config(const struct default_case *c, struct ferry_route_config *cfg,
                                struct ferry_cfg_kv *kv, struct ferry_route_retry_topic_config *t)
{
    memset(cfg, 0, sizeof(*cfg));
    *kv = c->kv;
    *t = (struct ferry_route_retry_topic_config){1000, NULL};
    cfg->name = "r";
    cfg->target.url = "http://127.0.0.1:9/x";
    cfg->target.headers = (struct ferry_cfg_map){kv, kv->key ? 1 : 0};
    cfg->body.mode = FERRY_BODY_VALUE;
    cfg->body.content_type = (char *)c->body_type;
    cfg->batch.max_records = (int64_t)c->n; /* more than 1: a JSON array of the values */
    cfg->batch.max_bytes = 1024;
    cfg->retry.max_attempts = 3;
    cfg->retry.topics = (struct ferry_cfg_list){t, 1};
}

/* Fills the records of c, values from value; a parked one carries the headers a route writes
 * when it parks a record (in *parked, which the caller destroys). */
static void default_case_records(const struct default_case *c, struct ferry_dispatch_rec *recs,
                                 const char *value, rd_kafka_headers_t **parked)
{
    size_t len = strlen(value);

    memset(recs, 0, 3 * sizeof(*recs));
    *parked = NULL;
    for (size_t i = 0; i < c->n; i++)
        recs[i].view =
            (struct ferry_record){"orders", 3, c->offsets[i], -1, NULL, 0, value, len, NULL, NULL};
    if (c->parked) {
        struct ferry_retry_meta m;
        ferry_retry_meta_make(&m, &recs[0].view, NULL, 1, 1, "boom", 0, 0);
        *parked = ferry_retry_headers_build(NULL, &m, "r");
        assert_non_null(*parked);
        recs[0].view =
            (struct ferry_record){"r.retry.1", 0, 5, -1, NULL, 0, value, len, *parked, NULL};
    }
}

/* A JSON string of len bytes, quotes included, or "1" for len 0. The caller frees it. */
static char *default_case_value(size_t len)
{
    char *v = malloc(len ? len + 1 : 2);

    assert_non_null(v);
    if (!len)
        return strcpy(v, "1");
    memset(v, 'v', len);
    v[0] = v[len - 1] = '"';
    v[len] = '\0';
    return v;
}

static void check_default_case(const struct default_case *c)
{
    struct ferry_route_config cfg;
    struct ferry_route_retry_topic_config topic;
    struct ferry_dispatch_rec recs[3];
    struct ferry_cfg_kv kv;
    rd_kafka_headers_t *parked;
    struct ferry_request *req;
    ferry_request_builder *b;
    char *value = default_case_value(c->value_len);
    const char *type, *key;
    char err[256];
    size_t cut = 0;

    default_case_config(c, &cfg, &kv, &topic);
    default_case_records(c, recs, value, &parked);
    b = ferry_request_builder_new(&cfg, err, sizeof(err));
    if (!b)
        fail_msg("%s: builder: %s", c->what, err);
    req = ferry_request_get(b);
    assert_non_null(req);
    for (size_t i = 0; i < c->n; i++)
        req->recs[i] = &recs[i];
    req->n = c->n;
    assert_int_equal(ferry_request_build(b, req, &cut, reject, NULL), 0);
    if (cut != (c->want_cut ? c->want_cut : c->n))
        fail_msg("%s: %zu records in the body", c->what, cut);
    type = header_value(req->call.headers, "Content-Type");
    key = header_value(req->call.headers, "Idempotency-Key");
    if (!type || strcmp(type, c->want_type) != 0)
        fail_msg("%s: Content-Type '%s', want '%s'", c->what, type ? type : "(none)", c->want_type);
    if (!key || strcmp(key, c->want_key) != 0)
        fail_msg("%s: Idempotency-Key '%s', want '%s'", c->what, key ? key : "(none)", c->want_key);
    ferry_request_put(b, req);
    ferry_request_builder_destroy(b);
    if (parked)
        rd_kafka_headers_destroy(parked);
    free(value);
}

static void test_default_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(default_cases) / sizeof(default_cases[0]); i++)
        check_default_case(&default_cases[i]);
}

/* ---- what the target sees of a record from a retry topic ---- */

/* A record consumed from the route's retry topic "r.retry.1", partition 0, with its own header
 * X-Own: a. A parked one also carries the headers parking writes, for its original on "orders". */
struct origin_rec {
    int64_t offset;    /* on the retry topic */
    int parked;        /* 0: produced there by hand, timestamp 99 */
    int32_t partition; /* the original's, when parked */
    int64_t original;  /* its offset */
    int64_t timestamp; /* its timestamp, -1 for none */
};

struct origin_case {
    const char *what;
    size_t n;
    struct origin_rec recs[2];
    const char *want_url, *want_body, *want_key;
};

#define ORIGIN_URL "http://127.0.0.1:9/${topic}/${partition}/${offset}/${timestamp}"
#define ENVELOPE(topic, p, o, ts)                                                                  \
    "{\"topic\":\"" topic "\",\"partition\":" #p ",\"offset\":" #o ",\"timestamp\":" ts            \
    ",\"key\":null,\"value\":1,\"headers\":{\"X-Own\":\"a\"}}"

static const struct origin_case origin_cases[] = {
    {.what = "a parked record is sent as its original",
     .n = 1,
     .recs = {{5, 1, 3, 42, 1700000000000}},
     .want_url = "http://127.0.0.1:9/orders/3/42/1700000000000",
     .want_body = ENVELOPE("orders", 3, 42, "1700000000000"),
     .want_key = "orders-3-42"},
    {.what = "an original without a timestamp",
     .n = 1,
     .recs = {{5, 1, 3, 42, -1}},
     .want_url = "http://127.0.0.1:9/orders/3/42/",
     .want_body = ENVELOPE("orders", 3, 42, "null"),
     .want_key = "orders-3-42"},
    {.what = "a record put on the retry topic by hand is sent as it is",
     .n = 1,
     .recs = {{5, 0, 0, 0, 0}},
     .want_url = "http://127.0.0.1:9/r.retry.1/0/5/99",
     .want_body = ENVELOPE("r.retry.1", 0, 5, "99"),
     .want_key = "r.retry.1-0-5"},
    /* the originals may be of two partitions: the key spans the retry partition's offsets */
    {.what = "a batch of parked records",
     .n = 2,
     .recs = {{5, 1, 3, 42, 1700000000000}, {6, 1, 1, 7, -1}},
     .want_url = "http://127.0.0.1:9/orders/3/42/1700000000000",
     .want_body =
         "[" ENVELOPE("orders", 3, 42, "1700000000000") "," ENVELOPE("orders", 1, 7, "null") "]",
     .want_key = "r.retry.1-0-5-6"},
};

/* The headers of the record r: its own, and when parked those parking adds. The caller
 * destroys them. */
static rd_kafka_headers_t *origin_headers(const struct origin_rec *r)
{
    struct ferry_record original = {.topic = "orders",
                                    .partition = r->partition,
                                    .offset = r->original,
                                    .timestamp_ms = r->timestamp};
    rd_kafka_headers_t *own = rd_kafka_headers_new(1), *h;
    struct ferry_retry_meta m;

    rd_kafka_header_add(own, "X-Own", -1, "a", 1);
    if (!r->parked)
        return own;
    ferry_retry_meta_make(&m, &original, NULL, 1, 1, "boom", 0, 0);
    h = ferry_retry_headers_build(own, &m, "r");
    assert_non_null(h);
    rd_kafka_headers_destroy(own);
    return h;
}

/* Checks the request of c built from recs: URL, body, key, and the forwarded headers: the
 * record's own, none of ferry's. */
static void check_origin_request(const struct origin_case *c, ferry_request_builder *b,
                                 struct ferry_dispatch_rec *recs)
{
    struct ferry_request *req = ferry_request_get(b);
    const char *key;
    size_t cut = 0;

    assert_non_null(req);
    for (size_t i = 0; i < c->n; i++)
        req->recs[i] = &recs[i];
    req->n = c->n;
    assert_int_equal(ferry_request_build(b, req, &cut, reject, NULL), 0);
    if (strcmp(req->call.url, c->want_url) != 0)
        fail_msg("%s: URL '%s', want '%s'", c->what, req->call.url, c->want_url);
    if (req->call.body_len != strlen(c->want_body) ||
        memcmp(req->call.body, c->want_body, req->call.body_len) != 0)
        fail_msg("%s: body '%.*s', want '%s'", c->what, (int)req->call.body_len, req->call.body,
                 c->want_body);
    key = header_value(req->call.headers, "Idempotency-Key");
    if (!key || strcmp(key, c->want_key) != 0)
        fail_msg("%s: Idempotency-Key '%s', want '%s'", c->what, key ? key : "(none)", c->want_key);
    if (c->n == 1 && !has_line(req->call.headers, "X-Own", "a"))
        fail_msg("%s: X-Own not forwarded", c->what);
    for (const struct curl_slist *l = req->call.headers; l; l = l->next)
        if (strncmp(l->data, "ferry.", 6) == 0)
            fail_msg("%s: forwarded '%s'", c->what, l->data);
    ferry_request_put(b, req);
}

static void check_origin_case(const struct origin_case *c)
{
    struct ferry_route_retry_topic_config topic = {1000, NULL};
    struct ferry_route_config cfg = {0};
    struct ferry_dispatch_rec recs[2];
    ferry_request_builder *b;
    char err[256];

    cfg.name = "r";
    cfg.target.url = ORIGIN_URL;
    cfg.target.forward_headers = 1;
    cfg.body.mode = FERRY_BODY_ENVELOPE;
    cfg.batch.max_records = (int64_t)c->n;
    cfg.batch.max_bytes = 1024;
    cfg.retry.max_attempts = 3;
    cfg.retry.topics = (struct ferry_cfg_list){&topic, 1};
    memset(recs, 0, sizeof(recs));
    for (size_t i = 0; i < c->n; i++)
        recs[i].view = (struct ferry_record){.topic = "r.retry.1",
                                             .offset = c->recs[i].offset,
                                             .timestamp_ms = 99,
                                             .value = "1",
                                             .value_len = 1,
                                             .headers = origin_headers(&c->recs[i])};
    b = ferry_request_builder_new(&cfg, err, sizeof(err));
    if (!b)
        fail_msg("%s: builder: %s", c->what, err);
    check_origin_request(c, b, recs); /* twice: the second reuses the pooled request */
    check_origin_request(c, b, recs);
    ferry_request_builder_destroy(b);
    for (size_t i = 0; i < c->n; i++) {
        assert_string_equal(recs[i].view.topic, "r.retry.1"); /* the records are left alone */
        rd_kafka_headers_destroy(recs[i].view.headers);
    }
}

static void test_records_from_a_retry_topic(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(origin_cases) / sizeof(origin_cases[0]); i++)
        check_origin_case(&origin_cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarded_headers),
        cmocka_unit_test(test_template_headers_refuse_control_bytes),
        cmocka_unit_test(test_default_headers),
        cmocka_unit_test(test_records_from_a_retry_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
