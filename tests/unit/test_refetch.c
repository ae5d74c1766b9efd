/*
 * test_refetch.c - the refetcher (src/route/refetch.c) against the embedded dev cluster.
 *
 * A consumer with a 32 KiB prefetch reads a preloaded topic the way a route does: it lets the
 * queue fill (a busy route), drains it, and calls the refetcher when it finds the queue empty.
 * The cases check when the refetcher acts (only after it saw the queue near full, never while
 * paused, once per fill), that every record then arrives exactly once and in order (the seek
 * to the consumed position skips and repeats nothing), and that the whole topic goes through
 * in a small fraction of the time librdkafka's one-second stalls would take.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/devbroker.h"
#include "route/refetch.h"

#define TOPIC "refetch"
#define PARTITIONS 4
#define RECORDS 12000
#define VALUE_BYTES 100
#define DEADLINE_MS 20000
/* The queue length the test waits for before draining: about 30 KiB of 100 B values, so at
 * least half of the 32 KiB limit. */
#define QUEUE_FILLED 300
/* 12,000 records through a 32 KiB prefetch fill it about 40 times. Measured under ASan: well
 * under a second with restarts, about 5 s without (librdkafka waits for its next wake-up). */
#define ALL_RECORDS_MS 3000

struct env {
    ferry_devbroker *broker;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    ferry_refetch *refetch;
    int64_t next_offset[PARTITIONS];
    size_t received;
};

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("%s: %s", name, errstr);
}

static void preload(const char *bootstrap)
{
    char errstr[256], value[VALUE_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *p;

    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "linger.ms", "5");
    p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p)
        fail_msg("producer: %s", errstr);
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < RECORDS; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(i % PARTITIONS),
                              RD_KAFKA_V_VALUE(value, sizeof(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p, 10);
            i--;
            continue;
        }
        assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(p, DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* A consumer with a route's small-prefetch settings, assigned every partition from the start. */
static rd_kafka_t *make_consumer(const char *bootstrap)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    rd_kafka_t *c;

    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", "refetch-test");
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.wait.max.ms", "10");
    set(conf, "queued.min.messages", "1000000");
    set(conf, "queued.max.messages.kbytes", "32");
    set(conf, "message.max.bytes", "4096");
    set(conf, "fetch.max.bytes", "8192");
    set(conf, "max.partition.fetch.bytes", "2048");
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);
    rd_kafka_poll_set_consumer(c);
    for (int i = 0; i < PARTITIONS; i++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return c;
}

static int setup(void **state)
{
    char errstr[256];
    struct env *e = calloc(1, sizeof(*e));

    assert_non_null(e);
    e->broker = ferry_devbroker_new(1, errstr, sizeof(errstr));
    if (!e->broker)
        fail_msg("dev broker: %s", errstr);
    assert_int_equal(
        ferry_devbroker_topic_create(e->broker, TOPIC, PARTITIONS, errstr, sizeof(errstr)), 0);
    preload(ferry_devbroker_bootstrap(e->broker));
    e->consumer = make_consumer(ferry_devbroker_bootstrap(e->broker));
    e->queue = rd_kafka_queue_get_consumer(e->consumer);
    e->refetch = ferry_refetch_new(e->consumer, e->queue);
    assert_non_null(e->refetch);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    ferry_refetch_destroy(e->refetch);
    rd_kafka_queue_destroy(e->queue);
    rd_kafka_consumer_close(e->consumer);
    rd_kafka_destroy(e->consumer);
    ferry_devbroker_destroy(e->broker);
    free(e);
    return 0;
}

/* Waits, with a deadline, until the queue holds n entries, or all the records still to come. */
static void wait_queue(struct env *e, size_t n)
{
    const struct timespec step = {0, 1000000};
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;

    if (n > RECORDS - e->received)
        n = RECORDS - e->received;
    while (rd_kafka_queue_length(e->queue) < n) {
        if (ferry_clock_ms() > deadline)
            fail_msg("the queue never held %zu entries (%zu records so far)", n, e->received);
        nanosleep(&step, NULL);
    }
}

/* Takes everything queued now; checks that each partition's offsets follow on exactly. */
static size_t drain(struct env *e)
{
    size_t taken = 0, bytes = 0;
    rd_kafka_message_t *m;

    while ((m = rd_kafka_consumer_poll(e->consumer, 0))) {
        if (!m->err) {
            assert_in_range(m->partition, 0, PARTITIONS - 1);
            assert_int_equal(m->offset, e->next_offset[m->partition]);
            e->next_offset[m->partition]++;
            e->received++;
            taken++;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    ferry_refetch_took(e->refetch, taken, bytes);
    return taken;
}

static void test_acts_only_after_a_full_queue(void **state)
{
    struct env *e = *state;

    /* Nothing seen yet: an empty queue is just an empty queue. */
    assert_int_equal(ferry_refetch_on_empty(e->refetch, 0, NULL, NULL), 0);
    wait_queue(e, 1);
    drain(e); /* learns the record size */
    wait_queue(e, QUEUE_FILLED);
    ferry_refetch_watch(e->refetch);
    drain(e);
    /* Paused partitions are left alone, and the refetcher remembers. */
    assert_int_equal(ferry_refetch_on_empty(e->refetch, 1, NULL, NULL), 0);
    assert_int_equal(ferry_refetch_on_empty(e->refetch, 0, NULL, NULL), 1);
    /* Once per fill. */
    assert_int_equal(ferry_refetch_on_empty(e->refetch, 0, NULL, NULL), 0);
}

static int seek_nothing(void *arg, const char *topic, int32_t partition)
{
    (void)arg;
    (void)topic;
    (void)partition;
    return 0;
}

/* The route says which partitions may be sought (those whose fetch has started): the others
 * are left alone, and with none left nothing restarts. */
static void test_seeks_only_what_the_route_allows(void **state)
{
    struct env *e = *state;

    wait_queue(e, 1);
    drain(e);
    wait_queue(e, QUEUE_FILLED);
    ferry_refetch_watch(e->refetch);
    drain(e);
    assert_int_equal(ferry_refetch_on_empty(e->refetch, 0, seek_nothing, NULL), 0);
}

static void test_every_record_once_and_quickly(void **state)
{
    struct env *e = *state;
    int64_t start = ferry_clock_ms(), took;
    int restarts = 0;

    while (e->received < RECORDS) {
        wait_queue(e, QUEUE_FILLED);
        ferry_refetch_watch(e->refetch);
        drain(e);
        restarts += ferry_refetch_on_empty(e->refetch, 0, NULL, NULL);
    }
    took = ferry_clock_ms() - start;
    assert_true(restarts > 0);
    for (int i = 0; i < PARTITIONS; i++)
        assert_int_equal(e->next_offset[i], RECORDS / PARTITIONS);
    if (took > ALL_RECORDS_MS)
        fail_msg("%d records took %" PRId64 " ms with %d restarts", RECORDS, took, restarts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acts_only_after_a_full_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeks_only_what_the_route_allows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_record_once_and_quickly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
