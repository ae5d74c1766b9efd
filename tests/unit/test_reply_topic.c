/*
 * test_reply_topic.c - the pure parts of reply topics (src/route/reply_topic.c): how much of a
 * body a reply keeps, and the headers a reply gets.
 *
 * Tables of cases: bodies around the limit; answers (accepted, dead-lettered with and without a
 * status, cut, in a batch, with response headers, some of them cut short), each checked for
 * every header it must and must not carry, in order (gRPC answers included); a record from a retry
 * topic names its original coordinates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/reply_topic.h"
#include "route/retry_topic.h"

#define MAX_NAMES 16

struct cut_case {
    size_t len, max;
    size_t want_len;
    int want_truncated;
};

static const struct cut_case cut_cases[] = {
    {0, 0, 0, 0},
    {0, 10, 0, 0},
    {9, 10, 9, 0},
    {10, 10, 10, 0},
    {11, 10, 10, 1},
    {5, 0, 0, 1},
    {1048577, 1048576, 1048576, 1},
};

static void test_body_cut(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cut_cases) / sizeof(cut_cases[0]); i++) {
        const struct cut_case *c = &cut_cases[i];
        int truncated = -1;
        assert_int_equal(ferry_reply_body_cut(c->len, c->max, &truncated), c->want_len);
        assert_int_equal(truncated, c->want_truncated);
    }
}

/* One answer and the headers its reply must carry, in order ("name=value"). */
struct header_case {
    struct ferry_reply_answer answer;
    int truncated;
    size_t index, count;
    int64_t timestamp_ms;
    const char *want[MAX_NAMES];
};

static const char kept[] = "content-type\0application/json\0etag\0\"v7\"\0x-cut\0no-end";

static const struct header_case header_cases[] = {
    /* accepted, one record */
    {{200, NULL, 1, "ok", 2, NULL, 0, -1, NULL},
     0,
     0,
     1,
     1700000000000,
     {"ferry.status=200", "ferry.attempts=1", "ferry.topic=orders", "ferry.partition=3",
      "ferry.offset=41", "ferry.timestamp=1700000000000", "ferry.route=r1"}},
    /* an SMTP answer, a record without a timestamp */
    {{250, NULL, 2, NULL, 0, NULL, 0, -1, NULL},
     0,
     0,
     1,
     -1,
     {"ferry.status=250", "ferry.attempts=2", "ferry.topic=orders", "ferry.partition=3",
      "ferry.offset=41", "ferry.route=r1"}},
    /* dead-lettered after a 400 */
    {{400, "http status 400", 1, "bad", 3, NULL, 0, -1, NULL},
     0,
     0,
     1,
     5,
     {"ferry.status=400", "ferry.error=http status 400", "ferry.attempts=1", "ferry.topic=orders",
      "ferry.partition=3", "ferry.offset=41", "ferry.timestamp=5", "ferry.route=r1"}},
    /* dead-lettered without an answer */
    {{0, "template: ${value.id}: no such field", 0, NULL, 0, NULL, 0, -1, NULL},
     0,
     0,
     1,
     5,
     {"ferry.error=template: ${value.id}: no such field", "ferry.attempts=0", "ferry.topic=orders",
      "ferry.partition=3", "ferry.offset=41", "ferry.timestamp=5", "ferry.route=r1"}},
    /* a gRPC call: OK with no message, then a failure with one */
    {{200, NULL, 1, NULL, 0, NULL, 0, 0, ""},
     0,
     0,
     1,
     5,
     {"ferry.status=200", "ferry.grpc_status=0", "ferry.attempts=1", "ferry.topic=orders",
      "ferry.partition=3", "ferry.offset=41", "ferry.timestamp=5", "ferry.route=r1"}},
    {{200, "grpc status 5 (NOT_FOUND)", 1, NULL, 0, NULL, 0, 5, "no such order"},
     0,
     0,
     1,
     5,
     {"ferry.status=200", "ferry.grpc_status=5", "ferry.grpc_message=no such order",
      "ferry.error=grpc status 5 (NOT_FOUND)", "ferry.attempts=1", "ferry.topic=orders",
      "ferry.partition=3", "ferry.offset=41", "ferry.timestamp=5", "ferry.route=r1"}},
    /* cut, third of a batch of five, with response headers (the last pair has no end) */
    {{201, NULL, 1, "x", 1, kept, sizeof(kept) - 1, -1, NULL},
     1,
     2,
     5,
     5,
     {"ferry.status=201", "ferry.attempts=1", "ferry.topic=orders", "ferry.partition=3",
      "ferry.offset=41", "ferry.timestamp=5", "ferry.route=r1", "ferry.truncated=true",
      "ferry.batch.index=2", "ferry.batch.size=5", "content-type=application/json", "etag=\"v7\""}},
};

static void check_headers(const rd_kafka_headers_t *h, const char *const *want)
{
    size_t n = 0;
    const char *name;
    const void *v;
    size_t len;
    char got[256];

    for (; want[n]; n++) {
        assert_int_equal(rd_kafka_header_get_all(h, n, &name, &v, &len), 0);
        snprintf(got, sizeof(got), "%s=%.*s", name, (int)len, v ? (const char *)v : "");
        assert_string_equal(got, want[n]);
    }
    assert_int_not_equal(rd_kafka_header_get_all(h, n, &name, &v, &len), 0);
}

static void test_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
        const struct header_case *c = &header_cases[i];
        struct ferry_record rec = {"orders", 3, 41, c->timestamp_ms, "k", 1, "v", 1, NULL, NULL};
        rd_kafka_headers_t *h = ferry_reply_headers_build(&rec, NULL, &c->answer, "r1",
                                                          c->truncated, c->index, c->count);
        assert_non_null(h);
        check_headers(h, c->want);
        rd_kafka_headers_destroy(h);
    }
}

/* A record with a parking's headers answers for its original place only when it was consumed
 * from one of the route's retry topics; on any other topic it answers for itself. */
struct origin_case {
    const char *topic; /* where the copy with the parking's headers was consumed */
    int routes_own;    /* the reply topic knows r1's retry topics */
    const char *want_topic, *want_partition, *want_offset;
};

static const struct origin_case origin_cases[] = {
    {"r1.retry.1", 1, "ferry.topic=orders", "ferry.partition=3", "ferry.offset=41"},
    {"orders", 1, "ferry.topic=orders", "ferry.partition=0", "ferry.offset=7"},
    {"r2.retry.1", 1, "ferry.topic=r2.retry.1", "ferry.partition=0", "ferry.offset=7"},
    {"r1.retry.1", 0, "ferry.topic=r1.retry.1", "ferry.partition=0", "ferry.offset=7"},
};

static void test_retry_origin(void **state)
{
    static const struct ferry_retry_topics retry = {{"r1.retry.1"}, 1};
    struct ferry_record origin = {"orders", 3, 41, 1700000000000, "k", 1, "v", 1, NULL, NULL};
    struct ferry_reply_answer a = {200, NULL, 4, NULL, 0, NULL, 0, -1, NULL};
    struct ferry_retry_meta m;
    rd_kafka_headers_t *parked;

    (void)state;
    ferry_retry_meta_make(&m, &origin, NULL, 1, 3, "http status 503", 1000, 500);
    parked = ferry_retry_headers_build(NULL, &m, "r1");
    assert_non_null(parked);
    for (size_t i = 0; i < sizeof(origin_cases) / sizeof(origin_cases[0]); i++) {
        const struct origin_case *c = &origin_cases[i];
        const char *const want[] = {"ferry.status=200", "ferry.attempts=4",
                                    c->want_topic,      c->want_partition,
                                    c->want_offset,     "ferry.timestamp=1700000000000",
                                    "ferry.route=r1",   NULL};
        struct ferry_record rec = origin;
        rd_kafka_headers_t *h;

        rec.topic = c->topic;
        rec.partition = 0;
        rec.offset = 7;
        rec.headers = parked;
        h = ferry_reply_headers_build(&rec, c->routes_own ? &retry : NULL, &a, "r1", 0, 0, 1);
        assert_non_null(h);
        check_headers(h, want);
        rd_kafka_headers_destroy(h);
    }
    rd_kafka_headers_destroy(parked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_cut),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_retry_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
