/*
 * test_deadletter.c - the dead-letter writer (src/route/deadletter.c) against the embedded dev
 * cluster.
 *
 * A table of records (a null key, a tombstone, binary bytes with original headers) is written
 * to a dead-letter topic, every delivery report is collected, and the records are read back
 * with a plain librdkafka consumer to check key, value, partition, the original headers in
 * order and then exactly the ferry.* headers expected. Other cases: a record the producer
 * refuses at once, a writer destroyed with sends in flight and a report uncollected (reports
 * that come later must not touch freed memory, which ASan checks), bad arguments, and a
 * record parked for a retry topic (headers built by retry_topic.c) read back and parsed, one
 * dead-lettered from a retry topic with a hand-written ferry.attempts of INT32_MAX, and a table
 * of records that carry parking headers: only one from the route's own retry topic is
 * dead-lettered as the original it is a copy of.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/kafka.h"
#include "route/deadletter.h"
#include "route/retry_topic.h"

#define TOPIC "dlq"
#define TOPIC_PARTITIONS 4 /* the dev cluster's default */
#define ROUTE "orders"
#define SOURCE "orders.v1"
#define RESPONSE_MAX 16
#define DEADLINE_MS 10000
#define TOO_LARGE (1100 * 1000) /* above the producer's message.max.bytes */

/* The route's retry topics, as route.c gives them to its dead-letter writer. */
static const struct ferry_retry_topics retry_topics = {.names = {ROUTE ".retry.1"}, .count = 1};

/* A string literal and its length, so bytes after a NUL count too. */
#define BYTES(s) s, sizeof(s) - 1

struct hdr {
    const char *name;
    const char *value; /* NULL: a header without a value */
};

struct dl_case {
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *value; /* NULL: tombstone */
    size_t value_len;
    struct hdr headers[5]; /* the record's own; a NULL name ends them */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    struct ferry_deadletter_reason why;
    struct hdr want[10]; /* ferry's headers, in order after the record's own */
};

static const struct dl_case cases[] = {
    {NULL,
     0,
     BYTES("{\"id\":1}"),
     {{NULL, NULL}},
     0,
     10,
     1700000000000,
     {"http status 400", 400, 1, BYTES("{\"error\":\"bad id\",\"detail\":\"id must be > 0\"}"), 0,
      NULL},
     {{"ferry.error", "http status 400"},
      {"ferry.http_status", "400"},
      {"ferry.attempts", "1"},
      {"ferry.topic", SOURCE},
      {"ferry.partition", "0"},
      {"ferry.offset", "10"},
      {"ferry.timestamp", "1700000000000"},
      {"ferry.route", ROUTE},
      {"ferry.response", "{\"error\":\"bad id"},
      {NULL, NULL}}},
    {BYTES("k2"),
     NULL,
     0,
     {{NULL, NULL}},
     1,
     20,
     -1,
     {"retries exhausted", 503, 5, BYTES(""), 0, NULL},
     {{"ferry.error", "retries exhausted"},
      {"ferry.http_status", "503"},
      {"ferry.attempts", "5"},
      {"ferry.topic", SOURCE},
      {"ferry.partition", "1"},
      {"ferry.offset", "20"},
      {"ferry.route", ROUTE},
      {NULL, NULL}}},
    {BYTES("k\0003"),
     BYTES("\x00\xff\x01"),
     {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"x-dup", "1"},
      {"x-nil", NULL},
      {"x-dup", "2"},
      {NULL, NULL}},
     2,
     30,
     0,
     {"template: ${value.id}: no such field", 0, 0, NULL, 0, 0, NULL},
     {{"ferry.error", "template: ${value.id}: no such field"},
      {"ferry.attempts", "0"},
      {"ferry.topic", SOURCE},
      {"ferry.partition", "2"},
      {"ferry.offset", "30"},
      {"ferry.timestamp", "0"},
      {"ferry.route", ROUTE},
      {NULL, NULL}}},
    /* a gRPC answer: its status and message in headers of their own, no HTTP status */
    {BYTES("k4"),
     BYTES("\x0a\x01\x41"),
     {{NULL, NULL}},
     3,
     40,
     -1,
     {"grpc status NOT_FOUND (5): no such order", 0, 2, NULL, 0, 5, "no such order"},
     {{"ferry.error", "grpc status NOT_FOUND (5): no such order"},
      {"ferry.attempts", "2"},
      {"ferry.topic", SOURCE},
      {"ferry.partition", "3"},
      {"ferry.offset", "40"},
      {"ferry.route", ROUTE},
      {"ferry.grpc_status", "5"},
      {"ferry.grpc_message", "no such order"},
      {NULL, NULL}}},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ---- a running dev cluster ---- */

struct env {
    struct ferry_config *cfg;
    ferry_kafka *k;
};

static void env_start(struct env *e)
{
    char errstr[512];

    e->cfg = ferry_config_load_string("kafka: {stats_interval: 1s}\n", "t.yaml");
    assert_non_null(e->cfg);
    assert_int_equal(ferry_config_error_count(e->cfg), 0);
    e->k = ferry_kafka_new(e->cfg, NULL, errstr, sizeof(errstr));
    if (!e->k)
        fail_msg("ferry_kafka_new: %s", errstr);
}

/* Flushes the shared producer (serving any outstanding reports) and stops everything. */
static void env_stop(struct env *e)
{
    ferry_kafka_destroy(e->k, DEADLINE_MS);
    ferry_config_destroy(e->cfg);
}

/* ---- waiting for wake-ups with a deadline ---- */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken;
    atomic_int destroyed;  /* the writer was destroyed */
    atomic_int late_wakes; /* wake-ups after that: must stay 0 */
};

static void waiter_init(struct waiter *w)
{
    pthread_condattr_t attr;

    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
}

static void waiter_release(struct waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

/* The writer's wake callback: on the producer's poller thread. */
static void on_wake(void *arg)
{
    struct waiter *w = arg;

    if (atomic_load(&w->destroyed))
        atomic_fetch_add(&w->late_wakes, 1);
    pthread_mutex_lock(&w->lock);
    w->woken = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Returns 0 once woken (and clears the wake-up), -1 at the deadline. */
static int waiter_wait(struct waiter *w, int64_t deadline_ms)
{
    struct timespec deadline = ferry_clock_timespec(deadline_ms);
    int woken;

    pthread_mutex_lock(&w->lock);
    while (!w->woken && pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0)
        ;
    woken = w->woken;
    w->woken = 0;
    pthread_mutex_unlock(&w->lock);
    return woken ? 0 : -1;
}

/* ---- sending and collecting ---- */

struct outcome {
    int reports;
    rd_kafka_resp_err_t err;
};

static void on_done(void *arg, void *cookie, rd_kafka_resp_err_t err)
{
    struct outcome *o = cookie;

    (void)arg;
    o->reports++;
    o->err = err;
}

static void send_case(ferry_deadletter *dl, const struct dl_case *c, struct outcome *o)
{
    struct ferry_record rec = {SOURCE, c->partition, c->offset, c->timestamp_ms,
                               c->key, c->key_len,   c->value,  c->value_len,
                               NULL,   NULL};
    char errstr[512];

    if (c->headers[0].name)
        rec.headers = rd_kafka_headers_new(8);
    for (const struct hdr *h = c->headers; h->name; h++)
        rd_kafka_header_add(rec.headers, h->name, -1, h->value, h->value ? -1 : 0);
    if (ferry_deadletter_send(dl, &rec, &c->why, o, errstr, sizeof(errstr)))
        fail_msg("send: %s", errstr);
    /* the writer keeps nothing of the record */
    if (rec.headers)
        rd_kafka_headers_destroy(rec.headers);
}

/* Collects until n reports arrived or the deadline passed; returns how many arrived. */
static size_t collect_all(ferry_deadletter *dl, struct waiter *w, size_t n)
{
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    size_t got = ferry_deadletter_collect(dl, on_done, NULL);

    while (got < n && waiter_wait(w, deadline) == 0)
        got += ferry_deadletter_collect(dl, on_done, NULL);
    return got;
}

/* ---- reading the dead-letter topic back ---- */

static rd_kafka_t *consumer_new(ferry_kafka *k, const char *topic)
{
    static const char *const props[][2] = {
        {"group.id", "test-deadletter"}, /* assign needs a group handle; nothing joins */
        {"enable.auto.commit", "false"},
        {"fetch.wait.max.ms", "10"},
        {NULL, NULL}};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(TOPIC_PARTITIONS);
    char errstr[512];
    rd_kafka_t *c;

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", ferry_kafka_bootstrap(k), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    for (size_t i = 0; props[i][0]; i++)
        assert_int_equal(rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(c);
    for (int32_t p = 0; p < TOPIC_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return c;
}

static void check_bytes(const void *got, size_t got_len, const char *want, size_t want_len)
{
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

static void check_header(const rd_kafka_headers_t *h, size_t idx, const struct hdr *want)
{
    const char *name;
    const void *value;
    size_t size;

    assert_int_equal(rd_kafka_header_get_all(h, idx, &name, &value, &size),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_string_equal(name, want->name);
    check_bytes(value, size, want->value, want->value ? strlen(want->value) : 0);
}

/* The record's own headers first, in order, then exactly the ferry.* headers expected. */
static void check_headers(rd_kafka_message_t *m, const struct dl_case *c)
{
    rd_kafka_headers_t *h = NULL;
    size_t i = 0;

    assert_int_equal(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (const struct hdr *w = c->headers; w->name; w++)
        check_header(h, i++, w);
    for (const struct hdr *w = c->want; w->name; w++)
        check_header(h, i++, w);
    assert_int_equal(rd_kafka_header_cnt(h), i);
}

/* Which case a dead letter is, by its ferry.offset header. */
static const struct dl_case *case_of(rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *value;
    size_t size;
    char want[32];

    assert_int_equal(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_header_get_last(h, "ferry.offset", &value, &size),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    for (size_t i = 0; i < NCASES; i++) {
        snprintf(want, sizeof(want), "%" PRId64, cases[i].offset);
        if (size == strlen(want) && memcmp(value, want, size) == 0)
            return &cases[i];
    }
    fail_msg("a dead letter of no case: ferry.offset '%.*s'", (int)size, (const char *)value);
    return NULL;
}

static void check_message(rd_kafka_message_t *m, const struct dl_case *c)
{
    check_bytes(m->key, m->key_len, c->key, c->key_len);
    check_bytes(m->payload, m->len, c->value, c->value_len);
    if (c->key) /* keyed records land where murmur2 puts them, as in the source topic */
        assert_int_equal(m->partition, rd_kafka_msg_partitioner_murmur2(
                                           NULL, c->key, c->key_len, TOPIC_PARTITIONS, NULL, NULL));
    check_headers(m, c);
}

/* Reads the dead-letter topic until every case was seen once, or the deadline. */
static void read_back(ferry_kafka *k)
{
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    rd_kafka_t *c = consumer_new(k, TOPIC);
    int seen[NCASES] = {0};
    size_t got = 0;

    while (got < NCASES && ferry_clock_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m && !m->err) {
            const struct dl_case *which = case_of(m);
            check_message(m, which);
            seen[which - cases]++;
            got++;
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    for (size_t i = 0; i < NCASES; i++)
        assert_int_equal(seen[i], 1);
}

/* ---- tests ---- */

static void test_roundtrip(void **state)
{
    struct outcome outcomes[NCASES] = {{0}};
    struct waiter w;
    struct env e;
    char errstr[512];
    ferry_deadletter *dl;

    (void)state;
    waiter_init(&w);
    env_start(&e);
    dl = ferry_deadletter_new(e.k, TOPIC, ROUTE, &retry_topics, RESPONSE_MAX, on_wake, &w, errstr,
                              sizeof(errstr));
    if (!dl)
        fail_msg("new: %s", errstr);
    for (size_t i = 0; i < NCASES; i++)
        send_case(dl, &cases[i], &outcomes[i]);
    assert_int_equal(ferry_deadletter_pending(dl), NCASES);
    assert_int_equal(collect_all(dl, &w, NCASES), NCASES);
    assert_int_equal(ferry_deadletter_pending(dl), 0);
    for (size_t i = 0; i < NCASES; i++) {
        assert_int_equal(outcomes[i].reports, 1);
        assert_int_equal(outcomes[i].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    read_back(e.k);
    ferry_deadletter_destroy(dl);
    env_stop(&e);
    waiter_release(&w);
}

static void test_refused(void **state)
{
    struct ferry_deadletter_reason why = {"http status 413", 413, 1, NULL, 0, 0, NULL};
    struct ferry_record rec = {SOURCE, 3, 40, -1, NULL, 0, NULL, TOO_LARGE, NULL, NULL};
    struct outcome o = {0, 0};
    struct env e;
    char errstr[512];
    ferry_deadletter *dl;

    (void)state;
    rec.value = calloc(1, TOO_LARGE);
    assert_non_null(rec.value);
    env_start(&e);
    assert_null(ferry_deadletter_new(e.k, "", ROUTE, &retry_topics, RESPONSE_MAX, NULL, NULL,
                                     errstr, sizeof(errstr)));
    dl = ferry_deadletter_new(e.k, TOPIC, ROUTE, &retry_topics, RESPONSE_MAX, NULL, NULL, errstr,
                              sizeof(errstr));
    assert_non_null(dl);
    errstr[0] = '\0';
    assert_int_equal(ferry_deadletter_send(dl, &rec, &why, &o, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'" TOPIC "'"));
    assert_non_null(strstr(errstr, SOURCE " [3] at offset 40"));
    assert_int_equal(ferry_deadletter_pending(dl), 0);
    assert_int_equal(ferry_deadletter_collect(dl, on_done, NULL), 0);
    ferry_deadletter_destroy(dl);
    env_stop(&e);
    free((void *)rec.value);
    assert_int_equal(o.reports, 0);
}

/* One report arrives and is left uncollected, more sends are in flight, then the writer goes:
 * the flush at shutdown serves the orphaned reports, which must find nothing freed. */
static void test_destroy_outstanding(void **state)
{
    struct outcome outcomes[NCASES + 1] = {{0}};
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    struct waiter w;
    struct env e;
    char errstr[512];
    ferry_deadletter *dl;

    (void)state;
    waiter_init(&w);
    env_start(&e);
    dl = ferry_deadletter_new(e.k, TOPIC, ROUTE, &retry_topics, RESPONSE_MAX, on_wake, &w, errstr,
                              sizeof(errstr));
    assert_non_null(dl);
    send_case(dl, &cases[0], &outcomes[NCASES]);
    assert_int_equal(waiter_wait(&w, deadline), 0);
    for (size_t i = 0; i < NCASES; i++)
        send_case(dl, &cases[i], &outcomes[i]);
    assert_int_equal(ferry_deadletter_pending(dl), NCASES + 1);
    ferry_deadletter_destroy(dl);
    atomic_store(&w.destroyed, 1);
    env_stop(&e);
    assert_int_equal(atomic_load(&w.late_wakes), 0);
    for (size_t i = 0; i <= NCASES; i++)
        assert_int_equal(outcomes[i].reports, 0);
    waiter_release(&w);
}

static void test_bad_args(void **state)
{
    char errstr[512];

    (void)state;
    errstr[0] = '\0';
    assert_null(ferry_deadletter_new(NULL, TOPIC, ROUTE, &retry_topics, RESPONSE_MAX, NULL, NULL,
                                     errstr, sizeof(errstr)));
    assert_true(errstr[0] != '\0');
    ferry_deadletter_destroy(NULL);
}

/* The writer with headers built elsewhere, as retry topics use it: the record parked from
 * orders.v1 [1] offset 77 reads back with its key, value and retry headers. */
static void test_retry_headers(void **state)
{
    struct ferry_record rec = {SOURCE, 1, 77, 1700000000000, "k", 1, "v", 1, NULL, NULL};
    struct outcome o = {0, 0};
    struct ferry_retry_meta m, back;
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    rd_kafka_message_t *msg = NULL;
    rd_kafka_headers_t *h = NULL;
    struct waiter w;
    struct env e;
    char errstr[512];
    ferry_deadletter *dl;
    rd_kafka_t *c;

    (void)state;
    waiter_init(&w);
    env_start(&e);
    dl = ferry_deadletter_new(e.k, TOPIC, ROUTE, NULL, RESPONSE_MAX, on_wake, &w, errstr,
                              sizeof(errstr));
    assert_non_null(dl);
    ferry_retry_meta_make(&m, &rec, NULL, 1, 3, "http status 503", 5000, 1000);
    assert_int_equal(ferry_deadletter_send_headers(dl, &rec, 0,
                                                   ferry_retry_headers_build(NULL, &m, ROUTE), &o,
                                                   errstr, sizeof(errstr)),
                     0);
    assert_int_equal(collect_all(dl, &w, 1), 1);
    assert_int_equal(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(ferry_deadletter_send_headers(dl, &rec, 0, NULL, &o, errstr, sizeof(errstr)),
                     -1);
    c = consumer_new(e.k, TOPIC);
    while (!msg && ferry_clock_ms() < deadline) {
        msg = rd_kafka_consumer_poll(c, 100);
        if (msg && msg->err) {
            rd_kafka_message_destroy(msg);
            msg = NULL;
        }
    }
    assert_non_null(msg);
    check_bytes(msg->key, msg->key_len, "k", 1);
    check_bytes(msg->payload, msg->len, "v", 1);
    assert_int_equal(rd_kafka_message_headers(msg, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(ferry_retry_meta_read(h, &back, errstr, sizeof(errstr)), 1);
    assert_int_equal(back.stage, 1);
    assert_int_equal(back.attempts, 3);
    assert_int_equal(back.due_ms, 6000);
    assert_string_equal(back.topic, SOURCE);
    assert_int_equal(back.partition, 1);
    assert_int_equal(back.offset, 77);
    assert_string_equal(back.error, "http status 503");
    rd_kafka_message_destroy(msg);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    ferry_deadletter_destroy(dl);
    env_stop(&e);
    waiter_release(&w);
}

/* Polls c for the first record, or NULL at the deadline. */
static rd_kafka_message_t *first_record(rd_kafka_t *c)
{
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    rd_kafka_message_t *msg = NULL;

    while (!msg && ferry_clock_ms() < deadline) {
        msg = rd_kafka_consumer_poll(c, 100);
        if (msg && msg->err) {
            rd_kafka_message_destroy(msg);
            msg = NULL;
        }
    }
    return msg;
}

/* A parked record whose ferry.attempts was written by hand as INT32_MAX is dead-lettered with
 * the attempts made since added to FERRY_RETRY_ATTEMPTS_MAX, not to INT32_MAX (which
 * overflowed an int). */
static void test_parked_attempts_cut(void **state)
{
    struct ferry_record rec = {ROUTE ".retry.1", 0, 5, -1, "k", 1, "v", 1, NULL, NULL};
    struct ferry_record orig = {SOURCE, 2, 88, -1, "k", 1, "v", 1, NULL, NULL};
    struct ferry_deadletter_reason why = {"http status 503", 503, 5, NULL, 0, 0, NULL};
    struct outcome o = {0, 0};
    struct ferry_retry_meta m;
    rd_kafka_message_t *msg;
    rd_kafka_headers_t *h = NULL;
    const void *value;
    size_t size;
    struct waiter w;
    struct env e;
    char errstr[512];
    ferry_deadletter *dl;
    rd_kafka_t *c;

    (void)state;
    waiter_init(&w);
    env_start(&e);
    dl = ferry_deadletter_new(e.k, TOPIC, ROUTE, &retry_topics, RESPONSE_MAX, on_wake, &w, errstr,
                              sizeof(errstr));
    assert_non_null(dl);
    ferry_retry_meta_make(&m, &orig, NULL, 1, INT32_MAX, "http status 503", 0, 0);
    rec.headers = ferry_retry_headers_build(NULL, &m, ROUTE);
    assert_int_equal(ferry_deadletter_send(dl, &rec, &why, &o, errstr, sizeof(errstr)), 0);
    rd_kafka_headers_destroy(rec.headers);
    assert_int_equal(collect_all(dl, &w, 1), 1);
    assert_int_equal(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    c = consumer_new(e.k, TOPIC);
    msg = first_record(c);
    assert_non_null(msg);
    assert_int_equal(rd_kafka_message_headers(msg, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_header_get_last(h, "ferry.attempts", &value, &size), 0);
    check_bytes(value, size, BYTES("1000000005"));
    assert_int_equal(rd_kafka_header_get_last(h, "ferry.offset", &value, &size), 0);
    check_bytes(value, size, BYTES("88"));
    rd_kafka_message_destroy(msg);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    ferry_deadletter_destroy(dl);
    env_stop(&e);
    waiter_release(&w);
}

/* Records that carry the headers of a parking, for an original on SOURCE [2] at offset 88 with
 * 3 attempts made: which of them the writer (given the route's retry topics, or none) takes as
 * parked. A parked record is dead-lettered as its original, the attempts of every stage
 * counted; any other as itself, its parking headers kept as its own. */
struct parked_case {
    const char *what;
    const char *topic;                       /* the record's, at partition 0 offset 5 */
    const struct ferry_retry_topics *writer; /* the writer's retry topics, or NULL */
    int parked;                              /* want it dead-lettered as its original */
};

static const struct parked_case parked_cases[] = {
    {"on the route's retry topic", ROUTE ".retry.1", &retry_topics, 1},
    {"on the route's own topic", SOURCE, &retry_topics, 0},
    {"on another route's retry topic", "payments.retry.1", &retry_topics, 0},
    {"to the writer of a route without retry topics", ROUTE ".retry.1", NULL, 0},
};

/* Checks that the last header name of h has the value want (NULL: h has no such header). */
static void check_last(const struct parked_case *c, rd_kafka_headers_t *h, const char *name,
                       const char *want)
{
    const void *value = NULL;
    size_t size = 0;
    char got[64] = "absent";

    if (rd_kafka_header_get_last(h, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(got, sizeof(got), "%.*s", (int)size, value ? (const char *)value : "");
    if (strcmp(got, want ? want : "absent") != 0)
        fail_msg("%s: %s is '%s', want '%s'", c->what, name, got, want ? want : "absent");
}

/* Dead-letters the record of case i to a topic of its own and checks what came of it. */
static void check_parked_case(struct env *e, size_t i)
{
    const struct parked_case *c = &parked_cases[i];
    struct ferry_record orig = {SOURCE, 2, 88, -1, "k", 1, "v", 1, NULL, NULL};
    struct ferry_record rec = {c->topic, 0, 5, -1, "k", 1, "v", 1, NULL, NULL};
    struct ferry_deadletter_reason why = {"http status 503", 503, 5, NULL, 0, 0, NULL};
    struct outcome o = {0, 0};
    struct ferry_retry_meta m;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_t *msg;
    struct waiter w;
    char topic[64], errstr[512];
    ferry_deadletter *dl;
    rd_kafka_t *cons;

    waiter_init(&w);
    snprintf(topic, sizeof(topic), "dlq-parked-%zu", i);
    dl = ferry_deadletter_new(e->k, topic, ROUTE, c->writer, RESPONSE_MAX, on_wake, &w, errstr,
                              sizeof(errstr));
    assert_non_null(dl);
    ferry_retry_meta_make(&m, &orig, NULL, 1, 3, "http status 503", 0, 0);
    rec.headers = ferry_retry_headers_build(NULL, &m, ROUTE);
    assert_int_equal(ferry_deadletter_send(dl, &rec, &why, &o, errstr, sizeof(errstr)), 0);
    rd_kafka_headers_destroy(rec.headers);
    assert_int_equal(collect_all(dl, &w, 1), 1);
    assert_int_equal(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    cons = consumer_new(e->k, topic);
    msg = first_record(cons);
    assert_non_null(msg);
    assert_int_equal(rd_kafka_message_headers(msg, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    check_last(c, h, "ferry.topic", c->parked ? SOURCE : c->topic);
    check_last(c, h, "ferry.partition", c->parked ? "2" : "0");
    check_last(c, h, "ferry.offset", c->parked ? "88" : "5");
    check_last(c, h, "ferry.attempts", c->parked ? "8" : "5");
    check_last(c, h, "ferry.retry.stage", c->parked ? NULL : "1");
    rd_kafka_message_destroy(msg);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    ferry_deadletter_destroy(dl);
    waiter_release(&w);
}

static void test_parked_only_from_the_routes_retry_topics(void **state)
{
    struct env e;

    (void)state;
    env_start(&e);
    for (size_t i = 0; i < sizeof(parked_cases) / sizeof(parked_cases[0]); i++)
        check_parked_case(&e, i);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_destroy_outstanding),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_retry_headers),
        cmocka_unit_test(test_parked_attempts_cut),
        cmocka_unit_test(test_parked_only_from_the_routes_retry_topics),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
