/*
 * test_kafka.c - the shared producer's linger defaults, and a fatal error of the shared
 * producer (librdkafka's test hook raises one on the embedded dev cluster): readiness fails
 * with the reason, and ferry is sent SIGTERM to stop and be restarted, since nothing can be
 * produced any more.
 */
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/config.h"
#include "core/kafka.h"

#define DEADLINE_MS 10000

struct linger_case {
    const char *properties; /* kafka.properties, as YAML flow */
    const char *linger_ms, *sticky_ms;
};

/* Checks linger.ms and sticky.partitioning.linger.ms of the shared producer (as librdkafka
 * finalized them) for kafka.properties c->properties. */
static void check_producer_lingers(const struct linger_case *c)
{
    char yaml[512], errstr[512], value[64];
    struct ferry_config *cfg;
    const rd_kafka_conf_t *conf;
    ferry_kafka *k;
    size_t size = sizeof(value);

    snprintf(yaml, sizeof(yaml), "kafka: {brokers: \"127.0.0.1:1\", properties: %s}\n",
             c->properties);
    cfg = ferry_config_load_string(yaml, "t.yaml");
    assert_non_null(cfg);
    k = ferry_kafka_new(cfg, NULL, errstr, sizeof(errstr));
    if (!k)
        fail_msg("%s: ferry_kafka_new: %s", c->properties, errstr);
    conf = rd_kafka_conf(ferry_kafka_producer(k));
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", value, &size), RD_KAFKA_CONF_OK);
    if (strcmp(value, c->linger_ms) != 0)
        fail_msg("%s: linger.ms %s, want %s", c->properties, value, c->linger_ms);
    size = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(conf, "sticky.partitioning.linger.ms", value, &size),
                     RD_KAFKA_CONF_OK);
    if (strcmp(value, c->sticky_ms) != 0)
        fail_msg("%s: sticky.partitioning.linger.ms %s, want %s", c->properties, value,
                 c->sticky_ms);
    ferry_kafka_destroy(k, 0);
    ferry_config_destroy(cfg);
}

/* linger.ms defaults to 0.2, and the sticky partitioner's linger to twice linger.ms, at least
 * 10 ms, unless set: librdkafka's own derivation cuts it to whole milliseconds, which is 0
 * (the sticky partitioner off) for a linger below 0.5 ms. */
static void test_linger_and_sticky_partitioning(void **state)
{
    static const struct linger_case cases[] = {
        {"{}", "0.2", "10"},
        {"{linger.ms: 0.3}", "0.3", "10"},
        {"{linger.ms: 20}", "20", "40"},
        {"{linger.ms: 7.2}", "7.2", "15"},
        {"{queue.buffering.max.ms: 8}", "8", "16"},
        {"{linger.ms: 500000, message.timeout.ms: 900000}", "500000", "900000"},
        {"{linger.ms: 0.3, sticky.partitioning.linger.ms: 3}", "0.3", "3"},
        {"{sticky.partitioning.linger.ms: 0}", "0.2", "0"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_producer_lingers(&cases[i]);
}

static void test_fatal_producer_error_fails_readiness_and_stops(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string("kafka: {stats_interval: 1s}\n", "t.yaml");
    struct timespec wait = {DEADLINE_MS / 1000, 0};
    char errstr[512], why[512] = "";
    sigset_t term;
    ferry_kafka *k;
    (void)state;

    assert_non_null(cfg);
    k = ferry_kafka_new(cfg, NULL, errstr, sizeof(errstr));
    if (!k)
        fail_msg("ferry_kafka_new: %s", errstr);
    assert_int_equal(ferry_kafka_failed(k, why, sizeof(why)), 0);
    assert_int_equal(rd_kafka_test_fatal_error(ferry_kafka_producer(k),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "raised by the test"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    assert_int_equal(sigtimedwait(&term, NULL, &wait), SIGTERM); /* sent by the poller thread */
    assert_int_equal(ferry_kafka_failed(k, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "raised by the test"));
    assert_int_equal(ferry_kafka_ready(k), 0);

    ferry_kafka_destroy(k, DEADLINE_MS);
    ferry_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linger_and_sticky_partitioning),
        cmocka_unit_test(test_fatal_producer_error_fails_readiness_and_stops),
    };
    sigset_t term;

    /* Blocked before any thread starts, as ferry blocks its stop signals: the SIGTERM waits
     * for the test's sigtimedwait. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
