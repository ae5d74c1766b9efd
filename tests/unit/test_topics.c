/*
 * test_topics.c - unit tests of ingest's topic cache (src/ingest/topics.c): which topics the
 * REST Proxy API may write, the max_topics cap, webhook topics, key masks, handles with the
 * producer's handles, and lookups from many threads at once. The producer never connects: a
 * librdkafka producer without brokers makes topic handles all the same.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/topics.h"

#define THREADS 4
#define LOOKUPS 20000

static char *rest_items[] = {"orders", "^ev\\.[0-9]+$"};
static char *key0_topics[] = {"orders"};
static char *key1_topics[] = {"^.*"};

struct fixture {
    rd_kafka_t *rk;
    ferry_patterns *rest;
    ferry_auth *auth;
    ferry_ingest_topics *topics;
};

static int setup(void **state)
{
    static struct fixture f;
    struct ferry_cfg_strings rest = {rest_items, 2};
    struct ferry_cfg_strings k0 = {key0_topics, 1}, k1 = {key1_topics, 1};
    char err[256];

    f.rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof(err));
    f.rest = ferry_patterns_new(&rest, err, sizeof(err));
    f.auth = ferry_auth_new();
    if (!f.auth ||
        ferry_auth_add(f.auth, "k0", "0123456789abcdef-0", 18, &k0, NULL, err, sizeof(err)) ||
        ferry_auth_add(f.auth, "k1", "0123456789abcdef-1", 18, &k1, NULL, err, sizeof(err)))
        return -1;
    f.topics = f.rk && f.rest && f.auth
                   ? ferry_ingest_topics_new(f.rk, f.rest, f.auth, 3, 1, 7000, err, sizeof(err))
                   : NULL;
    *state = &f;
    return f.topics ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ferry_ingest_topics_destroy(f->topics);
    ferry_auth_destroy(f->auth);
    ferry_patterns_destroy(f->rest);
    rd_kafka_destroy(f->rk);
    return 0;
}

static void test_rest_and_fixed(void **state)
{
    struct fixture *f = *state;
    const struct ferry_ingest_topic *t, *again, *t0;
    char err[256];
    enum ferry_ingest_topics_refusal full;

    t = ferry_ingest_topics_rest(f->topics, "orders", -1, &full);
    assert_non_null(t);
    assert_string_equal(t->name, "orders");
    assert_non_null(t->rkt);
    assert_int_equal(t->keys, 3);
    assert_true(t->rest);
    again = ferry_ingest_topics_rest(f->topics, "orders", -1, &full);
    assert_ptr_equal(t, again);
    t0 = t;

    assert_null(ferry_ingest_topics_rest(f->topics, "payments", -1, &full));
    assert_int_equal(full, FERRY_INGEST_TOPICS_MADE);
    assert_null(ferry_ingest_topics_rest(f->topics, "ev.x", -1, &full));

    /* a webhook's topic: writable by its endpoint, not through the REST Proxy API */
    t = ferry_ingest_topics_fixed(f->topics, "hooks", err, sizeof(err));
    assert_non_null(t);
    assert_false(t->rest);
    assert_int_equal(t->keys, 2);
    assert_null(ferry_ingest_topics_rest(f->topics, "hooks", -1, &full));
    assert_ptr_equal(ferry_ingest_topics_fixed(f->topics, "hooks", err, sizeof(err)), t);

    /* a key that may not write a topic spends no entry on it: k0 (index 0) writes orders only */
    assert_null(ferry_ingest_topics_rest(f->topics, "ev.1", 0, &full));
    assert_int_equal(full, FERRY_INGEST_TOPICS_FORBIDDEN);
    assert_null(ferry_ingest_topics_rest(f->topics, "ev.7", 0, &full));
    assert_null(ferry_ingest_topics_rest(f->topics, "ev.8", 0, &full));
    assert_int_equal(full, FERRY_INGEST_TOPICS_FORBIDDEN);
    assert_ptr_equal(ferry_ingest_topics_rest(f->topics, "orders", 0, &full), t0);

    /* max_rest is 3: orders, ev.1, ev.2; a fourth REST topic is refused as full */
    assert_non_null(ferry_ingest_topics_rest(f->topics, "ev.1", 1, &full));
    assert_non_null(ferry_ingest_topics_rest(f->topics, "ev.2", -1, &full));
    assert_null(ferry_ingest_topics_rest(f->topics, "ev.3", -1, &full));
    assert_int_equal(full, FERRY_INGEST_TOPICS_FULL);
    assert_non_null(ferry_ingest_topics_rest(f->topics, "ev.1", -1, &full));
}

/* The handle is the producer's handle of that topic (its message.timeout.ms cannot be read
 * back; test_ingest_backpressure.py checks the delivery timeout end to end). */
static void test_handle_names_the_topic(void **state)
{
    struct fixture *f = *state;
    enum ferry_ingest_topics_refusal full;
    const struct ferry_ingest_topic *t = ferry_ingest_topics_rest(f->topics, "orders", -1, &full);

    assert_non_null(t);
    assert_string_equal(rd_kafka_topic_name(t->rkt), "orders");
}

static void *lookup_main(void *arg)
{
    struct fixture *f = arg;
    char name[32];
    enum ferry_ingest_topics_refusal full;

    for (int i = 0; i < LOOKUPS; i++) {
        const struct ferry_ingest_topic *t;
        snprintf(name, sizeof(name), "%s", i % 3 ? "orders" : "ev.1");
        t = ferry_ingest_topics_rest(f->topics, name, -1, &full);
        if (!t || strcmp(t->name, name) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_lookups(void **state)
{
    pthread_t threads[THREADS];
    void *rc;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, lookup_main, *state), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], &rc);
        assert_null(rc);
    }
}

static void test_release_keeps_entries(void **state)
{
    struct fixture *f = *state;
    enum ferry_ingest_topics_refusal full;

    ferry_ingest_topics_release(f->topics);
    assert_null(ferry_ingest_topics_rest(f->topics, "orders", -1, &full)->rkt);
    ferry_ingest_topics_release(f->topics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rest_and_fixed),
        cmocka_unit_test(test_handle_names_the_topic),
        cmocka_unit_test(test_concurrent_lookups),
        cmocka_unit_test(test_release_keeps_entries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
