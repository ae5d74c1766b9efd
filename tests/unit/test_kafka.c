/*
 * test_kafka.c - a fatal error of the shared producer (librdkafka's test hook raises one on
 * the embedded dev cluster): readiness fails with the reason, and ferry is sent SIGTERM to
 * stop and be restarted, since nothing can be produced any more.
 */
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/config.h"
#include "core/kafka.h"

#define DEADLINE_MS 10000

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
