/*
 * test_retry_topic.c - names, headers and due times of parked records (src/route/retry_topic.c).
 *
 * Tables of cases: topic names; a round trip of the headers for a record parked from its own
 * topic and for one parked again from a retry topic (original coordinates kept, no second set
 * of ferry headers, its own headers kept in order); malformed header sets, each refused and
 * naming the header; ferry.attempts cut to its maximum; waits before and after the due time;
 * which records are parked ones (only those of the route's own retry topics).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route/retry_topic.h"

struct name_case {
    const char *route;
    int stage;
    const char *configured;
    size_t size;
    int want_rc;
    const char *want;
};

static const struct name_case name_cases[] = {
    {"orders", 1, NULL, 64, 0, "orders.retry.1"},
    {"orders", 2, "", 64, 0, "orders.retry.2"},
    {"orders", 12, NULL, 64, 0, "orders.retry.12"},
    {"orders", 1, "orders-slow", 64, 0, "orders-slow"},
    {"orders", 1, NULL, 14, -1, NULL}, /* "orders.retry.1" needs 15 bytes */
    {"orders", 1, NULL, 15, 0, "orders.retry.1"},
};

static void test_names(void **state)
{
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        const struct name_case *c = &name_cases[i];
        int rc = ferry_retry_topic_name(c->route, c->stage, c->configured, out, c->size);
        assert_int_equal(rc, c->want_rc);
        if (c->want)
            assert_string_equal(out, c->want);
    }
}

static struct ferry_record record(const char *topic, int32_t partition, int64_t offset, int64_t ts,
                                  rd_kafka_headers_t *h)
{
    struct ferry_record r = {topic, partition, offset, ts, "k", 1, "v", 1, h, NULL};
    return r;
}

static const char *text_of(const rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t len;

    if (rd_kafka_header_get_last(h, name, &v, &len))
        return NULL;
    snprintf(buf, size, "%.*s", (int)len, (const char *)v);
    return buf;
}

static size_t count_named(const rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t len, n = 0;

    while (rd_kafka_header_get(h, n, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
        n++;
    return n;
}

/* Parked from the source topic, then parked again from retry topic 1 onto retry topic 2. */
static void test_round_trip(void **state)
{
    rd_kafka_headers_t *own = rd_kafka_headers_new(2), *first, *second;
    struct ferry_retry_meta m, back, again;
    struct ferry_record rec = record("orders", 3, 41, 1700000000000, own), parked;
    char err[256], buf[64];
    const char *name;
    const void *v;
    size_t len;

    (void)state;
    rd_kafka_header_add(own, "traceparent", -1, "00-abc-def-01", -1);
    rd_kafka_header_add(own, "x-null", -1, NULL, 0);
    ferry_retry_meta_make(&m, &rec, NULL, 1, 3, "http status 503", 1000, 1500);
    assert_int_equal(m.due_ms, 2500);
    first = ferry_retry_headers_build(own, &m, "r1");
    assert_non_null(first);
    assert_int_equal(ferry_retry_meta_read(first, &back, err, sizeof(err)), 1);
    assert_int_equal(back.stage, 1);
    assert_int_equal(back.attempts, 3);
    assert_int_equal(back.due_ms, 2500);
    assert_string_equal(back.topic, "orders");
    assert_int_equal(back.partition, 3);
    assert_int_equal(back.offset, 41);
    assert_int_equal(back.timestamp_ms, 1700000000000);
    assert_string_equal(back.error, "http status 503");
    assert_string_equal(text_of(first, "ferry.route", buf, sizeof(buf)), "r1");
    /* its own headers come first, in order, a null value kept null */
    assert_int_equal(rd_kafka_header_get_all(first, 0, &name, &v, &len), 0);
    assert_string_equal(name, "traceparent");
    assert_int_equal(rd_kafka_header_get_all(first, 1, &name, &v, &len), 0);
    assert_string_equal(name, "x-null");
    assert_null(v);

    /* parked again from orders.retry.1 at partition 0 offset 7: the origin stays orders/3/41 */
    parked = record("r1.retry.1", 0, 7, 2600, first);
    ferry_retry_meta_make(&again, &parked, &back, 2, 4, "timeout", 3000, 2000);
    second = ferry_retry_headers_build(first, &again, "r1");
    assert_non_null(second);
    assert_int_equal(count_named(second, "ferry.retry.stage"), 1);
    assert_int_equal(count_named(second, "ferry.offset"), 1);
    assert_int_equal(count_named(second, "traceparent"), 1);
    assert_int_equal(ferry_retry_meta_read(second, &back, err, sizeof(err)), 1);
    assert_int_equal(back.stage, 2);
    assert_int_equal(back.attempts, 4);
    assert_int_equal(back.due_ms, 5000);
    assert_string_equal(back.topic, "orders");
    assert_int_equal(back.partition, 3);
    assert_int_equal(back.offset, 41);
    assert_string_equal(back.error, "timeout");
    rd_kafka_headers_destroy(second);
    rd_kafka_headers_destroy(first);
    rd_kafka_headers_destroy(own);
}

/* A record without a timestamp parks without ferry.timestamp and reads back -1. */
static void test_no_timestamp(void **state)
{
    struct ferry_record rec = record("t", 0, 0, -1, NULL);
    struct ferry_retry_meta m, back;
    rd_kafka_headers_t *h;
    char err[256];

    (void)state;
    ferry_retry_meta_make(&m, &rec, NULL, 1, 1, NULL, 0, INT64_MAX);
    assert_int_equal(m.due_ms, INT64_MAX); /* saturates instead of wrapping */
    h = ferry_retry_headers_build(NULL, &m, "r");
    assert_non_null(h);
    assert_int_equal(count_named(h, "ferry.timestamp"), 0);
    assert_int_equal(ferry_retry_meta_read(h, &back, err, sizeof(err)), 1);
    assert_int_equal(back.timestamp_ms, -1);
    assert_string_equal(back.error, "");
    rd_kafka_headers_destroy(h);
}

struct bad_case {
    const char *name;  /* header to set */
    const char *value; /* NULL: remove it */
    int want_rc;
    const char *named; /* what the error must name */
};

static const struct bad_case bad_cases[] = {
    {"ferry.retry.stage", NULL, 0, NULL}, /* not a parked record at all */
    {"ferry.retry.stage", "0", -1, "ferry.retry.stage"},
    {"ferry.retry.stage", "17", -1, "ferry.retry.stage"},
    {"ferry.retry.stage", "1x", -1, "ferry.retry.stage"},
    {"ferry.retry.due", NULL, -1, "ferry.retry.due"},
    {"ferry.retry.due", "-5", -1, "ferry.retry.due"},
    {"ferry.retry.due", "99999999999999999999999", -1, "ferry.retry.due"},
    {"ferry.attempts", "", -1, "ferry.attempts"},
    {"ferry.partition", "-1", -1, "ferry.partition"},
    {"ferry.offset", "ten", -1, "ferry.offset"},
    {"ferry.timestamp", "soon", -1, "ferry.timestamp"},
    {"ferry.timestamp", NULL, 1, NULL}, /* optional */
    {"ferry.topic", "", -1, "ferry.topic"},
    {"ferry.topic", NULL, -1, "ferry.topic"},
    {"ferry.error", NULL, 1, NULL}, /* informative only */
};

static void test_malformed(void **state)
{
    struct ferry_record rec = record("t", 1, 2, 3, NULL);
    struct ferry_retry_meta m, back;
    char err[256];

    (void)state;
    ferry_retry_meta_make(&m, &rec, NULL, 1, 1, "e", 10, 10);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        rd_kafka_headers_t *h = ferry_retry_headers_build(NULL, &m, "r");

        rd_kafka_header_remove(h, c->name);
        if (c->value)
            rd_kafka_header_add(h, c->name, -1, c->value, -1);
        err[0] = '\0';
        assert_int_equal(ferry_retry_meta_read(h, &back, err, sizeof(err)), c->want_rc);
        if (c->named)
            assert_non_null(strstr(err, c->named));
        rd_kafka_headers_destroy(h);
    }
    assert_int_equal(ferry_retry_meta_read(NULL, &back, err, sizeof(err)), 0);
}

/* ferry.attempts may be written by hand: a count past FERRY_RETRY_ATTEMPTS_MAX reads as that,
 * so that adding the attempts made since (parking.c, deadletter.c) cannot overflow an int. */
static void test_attempts_cut(void **state)
{
    static const struct {
        const char *value;
        int want_rc;
        int want;
    } cases[] = {
        {"0", 1, 0},
        {"7", 1, 7},
        {"999999999", 1, 999999999},
        {"1000000000", 1, FERRY_RETRY_ATTEMPTS_MAX},
        {"1000000001", 1, FERRY_RETRY_ATTEMPTS_MAX},
        {"2147483647", 1, FERRY_RETRY_ATTEMPTS_MAX},
        {"99999999999", 1, FERRY_RETRY_ATTEMPTS_MAX},
        {"9223372036854775807", 1, FERRY_RETRY_ATTEMPTS_MAX},
        {"9223372036854775808", -1, 0},
        {"-1", -1, 0},
    };
    struct ferry_record rec = record("t", 1, 2, 3, NULL);
    struct ferry_retry_meta m, back;
    char err[256];

    (void)state;
    ferry_retry_meta_make(&m, &rec, NULL, 1, 1, "e", 10, 10);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rd_kafka_headers_t *h = ferry_retry_headers_build(NULL, &m, "r");

        rd_kafka_header_remove(h, "ferry.attempts");
        rd_kafka_header_add(h, "ferry.attempts", -1, cases[i].value, -1);
        assert_int_equal(ferry_retry_meta_read(h, &back, err, sizeof(err)), cases[i].want_rc);
        if (cases[i].want_rc == 1)
            assert_int_equal(back.attempts, cases[i].want);
        rd_kafka_headers_destroy(h);
    }
}

/* A header with a null value (found by fuzz_record_headers: it was copied from NULL) reads as
 * empty text: fine for ferry.error, malformed for the numbers and the topic. */
static void test_null_values(void **state)
{
    static const struct {
        const char *name;
        int want_rc;
    } cases[] = {{"ferry.error", 1}, {"ferry.topic", -1}, {"ferry.retry.due", -1}};
    struct ferry_record rec = record("t", 1, 2, 3, NULL);
    struct ferry_retry_meta m, back;
    char err[256];

    (void)state;
    ferry_retry_meta_make(&m, &rec, NULL, 1, 1, "e", 10, 10);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rd_kafka_headers_t *h = ferry_retry_headers_build(NULL, &m, "r");

        rd_kafka_header_remove(h, cases[i].name);
        rd_kafka_header_add(h, cases[i].name, -1, NULL, 0);
        assert_int_equal(ferry_retry_meta_read(h, &back, err, sizeof(err)), cases[i].want_rc);
        if (cases[i].want_rc == 1)
            assert_string_equal(back.error, "");
        rd_kafka_headers_destroy(h);
    }
}

/* Which records are parked ones: only those of the route's own retry topics (orders.retry.1
 * and orders-slow here) with well-formed parking headers, the same headers on any other topic
 * being that record's own. */
enum parked_headers { HEADERS_NONE, HEADERS_PARKING, HEADERS_MALFORMED };

struct parked_case {
    const char *topic;
    enum parked_headers headers;
    int want_rc;
    int want_stage; /* ferry_retry_topics_stage of the topic */
};

static const struct parked_case parked_cases[] = {
    {"orders.retry.1", HEADERS_PARKING, 1, 1},
    {"orders-slow", HEADERS_PARKING, 1, 2},
    {"orders.retry.1", HEADERS_NONE, 0, 1},
    {"orders.retry.1", HEADERS_MALFORMED, -1, 1},
    {"orders", HEADERS_PARKING, 0, 0}, /* the route's own topic: produced there by hand */
    {"orders", HEADERS_MALFORMED, 0, 0},
    {"payments.retry.1", HEADERS_PARKING, 0, 0}, /* another route's retry topic */
    {"orders.retry.10", HEADERS_PARKING, 0, 0},
    {NULL, HEADERS_PARKING, 0, 0},
};

static rd_kafka_headers_t *parked_headers(enum parked_headers which)
{
    struct ferry_record orig = record("orders", 3, 42, -1, NULL);
    struct ferry_retry_meta m;
    rd_kafka_headers_t *h;

    if (which == HEADERS_NONE)
        return NULL;
    ferry_retry_meta_make(&m, &orig, NULL, 1, 2, "e", 10, 10);
    h = ferry_retry_headers_build(NULL, &m, "orders");
    if (which == HEADERS_MALFORMED)
        rd_kafka_header_remove(h, "ferry.offset");
    return h;
}

static void test_parked_read(void **state)
{
    static const struct ferry_retry_topics topics = {{"orders.retry.1", "orders-slow"}, 2};
    struct ferry_retry_meta m;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(parked_cases) / sizeof(parked_cases[0]); i++) {
        const struct parked_case *c = &parked_cases[i];
        struct ferry_record rec = record(c->topic, 0, 5, -1, parked_headers(c->headers));

        assert_int_equal(ferry_retry_topics_stage(&topics, c->topic), c->want_stage);
        assert_int_equal(ferry_retry_parked_read(&topics, &rec, &m, err, sizeof(err)), c->want_rc);
        if (c->want_rc == 1) {
            assert_string_equal(m.topic, "orders");
            assert_int_equal(m.offset, 42);
        }
        /* a route without retry topics has no parked records */
        assert_int_equal(ferry_retry_parked_read(NULL, &rec, &m, err, sizeof(err)), 0);
        if (rec.headers)
            rd_kafka_headers_destroy(rec.headers);
    }
}

struct wait_case {
    int64_t due, now, want;
};

static const struct wait_case wait_cases[] = {
    {1000, 0, 1000}, {1000, 999, 1}, {1000, 1000, 0}, {1000, 5000, 0}, {0, 0, 0},
};

static void test_wait(void **state)
{
    struct ferry_retry_meta m;

    (void)state;
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < sizeof(wait_cases) / sizeof(wait_cases[0]); i++) {
        m.due_ms = wait_cases[i].due;
        assert_int_equal(ferry_retry_wait_ms(&m, wait_cases[i].now), wait_cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_no_timestamp), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_null_values),  cmocka_unit_test(test_wait),
        cmocka_unit_test(test_attempts_cut), cmocka_unit_test(test_parked_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
