/*
 * test_redrive.c - a redrive during which the shared producer fails for good (librdkafka's
 * test hook raises the error on the embedded dev cluster) fails with the reason, though the
 * stop signal that the failure sends ended the run like a Ctrl-C; a failure from before the
 * run (the process's Kafka set-up, as the /redrive endpoint passes it) is not the run's.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/config.h"
#include "core/kafka.h"
#include "route/redrive.h"
#include "route/route.h"

#define DEADLINE_MS 10000
#define CONFIG                                                                                     \
    "routes:\n"                                                                                    \
    "  - name: rd\n"                                                                               \
    "    topics: [redrive-in]\n"                                                                   \
    "    dead_letter: {topic: redrive-dlq}\n"                                                      \
    "    target: {url: 'http://127.0.0.1:9/'}\n"

enum raise_when { RAISE_BEFORE, RAISE_DURING };

struct redrive_case {
    const char *name;
    enum raise_when when;
    int want_result;
    int want_interrupted;
};

static const struct redrive_case cases[] = {
    {"failed during the run", RAISE_DURING, FERRY_REDRIVE_EFAIL, 1},
    {"failed before the run", RAISE_BEFORE, FERRY_REDRIVE_OK, 0},
};

struct stopper {
    ferry_kafka *kafka;
    int raise; /* raise the fatal error at the first look for a stop */
};

static void raise_fatal(ferry_kafka *k)
{
    assert_int_equal(rd_kafka_test_fatal_error(ferry_kafka_producer(k),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "raised by the test"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Waits up to ms for SIGTERM (blocked in main), as `ferry redrive` waits for its signals. */
static int term_within(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    sigset_t term;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    return sigtimedwait(&term, NULL, &ts) == SIGTERM;
}

static int stop(void *arg, int64_t wait_ms)
{
    struct stopper *s = arg;

    if (!s->raise)
        return term_within(wait_ms);
    s->raise = 0;
    raise_fatal(s->kafka);
    return term_within(DEADLINE_MS); /* the poller thread sends it */
}

/* One dead letter of another route: the run reads it, skips it, and looks for a stop. */
static void write_dead_letter(ferry_kafka *k)
{
    rd_kafka_t *p = ferry_kafka_producer(k);

    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("redrive-dlq"), RD_KAFKA_V_VALUE("x", 1),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, DEADLINE_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void remove_run_files(const char *dir, const char *progress)
{
    char path[512];

    unlink(progress);
    snprintf(path, sizeof(path), "%s.lock", progress);
    unlink(path);
    snprintf(path, sizeof(path), "%s.tmp", progress);
    unlink(path);
    rmdir(dir);
}

static void run_case(const struct redrive_case *c)
{
    struct ferry_config *cfg = ferry_config_load_string(CONFIG, "t.yaml");
    struct ferry_redrive_options o = {.route = "rd", .stop = stop};
    struct ferry_redrive_summary sum;
    struct stopper s = {0};
    char dir[] = "/tmp/test_redrive.XXXXXX", progress[64], errstr[512] = "";
    FILE *out = tmpfile();
    int result;

    assert_non_null(cfg);
    assert_non_null(out);
    assert_non_null(mkdtemp(dir));
    snprintf(progress, sizeof(progress), "%s/progress", dir);
    s.kafka = ferry_kafka_new(cfg, NULL, errstr, sizeof(errstr));
    if (!s.kafka)
        fail_msg("ferry_kafka_new: %s", errstr);
    write_dead_letter(s.kafka);
    if (c->when == RAISE_BEFORE) {
        raise_fatal(s.kafka);
        assert_true(term_within(DEADLINE_MS));
    }
    s.raise = c->when == RAISE_DURING;
    ferry_redrive_filter_init(&o.filter);
    o.routes = ferry_config_job(cfg, &ferry_routes_job);
    o.progress_path = progress;
    o.kafka = s.kafka;
    o.stop_arg = &s;

    result = ferry_redrive_run(cfg, &o, &sum, out, errstr, sizeof(errstr));
    if (result != c->want_result)
        fail_msg("%s: result %d, want %d (%s)", c->name, result, c->want_result, errstr);
    assert_int_equal(sum.interrupted, c->want_interrupted);
    if (c->want_result == FERRY_REDRIVE_EFAIL && !strstr(errstr, "raised by the test"))
        fail_msg("%s: the reason is not in '%s'", c->name, errstr);

    ferry_kafka_destroy(s.kafka, DEADLINE_MS);
    remove_run_files(dir, progress);
    fclose(out);
    ferry_config_destroy(cfg);
}

static void test_a_failed_kafka_client_fails_the_run(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_failed_kafka_client_fails_the_run),
    };
    sigset_t term;

    /* Blocked before any thread starts, as ferry blocks its stop signals: the SIGTERM waits
     * for the stop callback's sigtimedwait. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
