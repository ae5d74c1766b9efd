/*
 * test_route.c - a route built but never started (another part of ferry failed to start) is
 * destroyed while its group is busy handing out partitions.
 *
 * A route subscribes only as it starts, so this one never joins; destroying it must neither
 * hang (closing a consumer whose group had assigned it without anyone polling it could wait
 * for good on librdkafka 2.0.2: ctest's timeout fails the test) nor run its rebalance
 * callback on freed state (under ASan a use after free fails it). A probe consumer that
 * subscribes just after the route is built, in a group of its own on the same embedded
 * cluster, is waited for until it has its assignment, by when a route that had joined would
 * have its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/auth.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/job.h"
#include "core/kafka.h"
#include "core/metrics.h"
#include "route/route.h"

#define DEADLINE_MS 60000
#define TOPIC "route-release"

struct release_case {
    const char *name;
    const char *strategy; /* the route's partition.assignment.strategy */
};

static const struct release_case cases[] = {
    {"eager", "range"},
    {"cooperative", "cooperative-sticky"},
};

/* Writes a record, so that the topic exists with its partitions before anyone subscribes. */
static void make_topic(ferry_kafka *k)
{
    rd_kafka_t *p = ferry_kafka_producer(k);

    assert_int_equal(
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static rd_kafka_t *probe_new(ferry_kafka *k, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    char why[512];
    rd_kafka_t *rk;

    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", ferry_kafka_bootstrap(k), why, sizeof(why)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk)
        fail_msg("probe consumer: %s", why);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_add(topics, TOPIC, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);
    return rk;
}

/* Polls the probe (librdkafka assigns for it) until it has partitions. */
static void wait_assigned(rd_kafka_t *probe)
{
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int n = 0;

    while (!n && ferry_clock_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(probe, 100);
        if (m)
            rd_kafka_message_destroy(m);
        assert_int_equal(rd_kafka_assignment(probe, &parts), RD_KAFKA_RESP_ERR_NO_ERROR);
        n = parts->cnt;
        rd_kafka_topic_partition_list_destroy(parts);
    }
    assert_true(n > 0);
}

static void run_case(const struct release_case *c)
{
    char yaml[512], err[512], group[64], probe_group[80];
    struct ferry_config *cfg;
    ferry_metrics *metrics = ferry_metrics_new();
    ferry_auth *auth = ferry_auth_new();
    struct ferry_job_context ctx = {.metrics = metrics, .auth = auth};
    ferry_kafka *k;
    rd_kafka_t *probe;
    void *routes;

    snprintf(group, sizeof(group), "route-release-%s", c->name);
    snprintf(probe_group, sizeof(probe_group), "%s-probe", group);
    snprintf(yaml, sizeof(yaml),
             "routes:\n"
             "  - name: r\n"
             "    topics: [" TOPIC "]\n"
             "    group: %s\n"
             "    kafka: {partition.assignment.strategy: %s}\n"
             "    target: {url: 'http://127.0.0.1:9/'}\n",
             group, c->strategy);
    cfg = ferry_config_load_string(yaml, "t.yaml");
    assert_non_null(cfg);
    assert_non_null(metrics);
    assert_non_null(auth);
    k = ferry_kafka_new(cfg, metrics, err, sizeof(err));
    if (!k)
        fail_msg("ferry_kafka_new: %s", err);
    make_topic(k);
    ctx.cfg = cfg;
    ctx.config = ferry_config_job(cfg, &ferry_routes_job);
    ctx.kafka = k;
    routes = ferry_routes_job.create(&ctx, err, sizeof(err));
    if (!routes)
        fail_msg("%s: %s", c->name, err);
    probe = probe_new(k, probe_group);
    wait_assigned(probe);
    ferry_routes_job.destroy(routes); /* never started, as when a later part fails to start */

    rd_kafka_consumer_close(probe);
    rd_kafka_destroy(probe);
    ferry_kafka_destroy(k, DEADLINE_MS);
    ferry_auth_destroy(auth);
    ferry_metrics_destroy(metrics);
    ferry_config_destroy(cfg);
}

static void test_a_route_that_never_ran_is_destroyed_after_its_assignment(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_route_that_never_ran_is_destroyed_after_its_assignment),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
