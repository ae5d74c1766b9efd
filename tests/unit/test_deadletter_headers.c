/*
 * test_deadletter_headers.c - ferry's headers of a dead letter's newest failure
 * (src/route/deadletter_headers.c).
 *
 * A table of dead letters, some with two blocks of ferry's headers (a dead letter replayed to
 * its source topic with its headers and dead-lettered again), and what each header reads as:
 * an optional header the newest failure lacks is absent even when an older block has it. Then
 * the verdict of `ferry redrive --status 500` on such a dead letter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/deadletter_headers.h"
#include "route/redrive_filter.h"

#define PARTS_MAX 4
#define LOOKUPS_MAX 8

struct hdr {
    const char *name;
    const char *value; /* NULL: a header without a value */
};

struct lookup {
    const char *name;
    const char *want; /* NULL: absent */
};

struct headers_case {
    const char *what;
    const struct hdr *parts[PARTS_MAX]; /* the headers, part after part; NULL ends them */
    struct lookup lookups[LOOKUPS_MAX]; /* a NULL name ends them */
};

/* Each part ends with a NULL name. */
static const struct hdr own[] = {{"traceparent", "00-ab-cd-01"}, {NULL, NULL}};
static const struct hdr http_500[] = {{"ferry.error", "http status 500"},
                                      {"ferry.http_status", "500"},
                                      {"ferry.attempts", "3"},
                                      {"ferry.topic", "orders"},
                                      {"ferry.partition", "1"},
                                      {"ferry.offset", "7"},
                                      {"ferry.timestamp", "1700000000000"},
                                      {"ferry.route", "orders"},
                                      {"ferry.response", "oops"},
                                      {NULL, NULL}};
static const struct hdr grpc_13[] = {{"ferry.error", "grpc status INTERNAL (13): down"},
                                     {"ferry.attempts", "3"},
                                     {"ferry.topic", "orders"},
                                     {"ferry.partition", "1"},
                                     {"ferry.offset", "7"},
                                     {"ferry.route", "orders"},
                                     {"ferry.grpc_status", "13"},
                                     {"ferry.grpc_message", "down"},
                                     {NULL, NULL}};
/* the same record replayed to orders with its headers, then timed out: nothing optional */
static const struct hdr timeout[] = {{"ferry.error", "timeout"},
                                     {"ferry.attempts", "1"},
                                     {"ferry.topic", "orders"},
                                     {"ferry.partition", "2"},
                                     {"ferry.offset", "40"},
                                     {"ferry.route", "orders"},
                                     {NULL, NULL}};
static const struct hdr http_404[] = {{"ferry.error", "http status 404"},
                                      {"ferry.http_status", "404"},
                                      {"ferry.attempts", "1"},
                                      {"ferry.route", "payments"},
                                      {NULL, NULL}};
static const struct hdr by_hand[] = {
    {"ferry.http_status", "500"}, {"ferry.route", "a"}, {"ferry.route", "b"}, {NULL, NULL}};
static const struct hdr no_value[] = {{"ferry.error", "e"}, {"ferry.route", NULL}, {NULL, NULL}};

static const struct headers_case cases[] = {
    {"one block",
     {own, http_500, NULL},
     {{"ferry.http_status", "500"},
      {"ferry.timestamp", "1700000000000"},
      {"ferry.response", "oops"},
      {"ferry.route", "orders"},
      {NULL, NULL}}},
    {"a 500, replayed, then a timeout",
     {own, http_500, timeout, NULL},
     {{"ferry.http_status", NULL},
      {"ferry.timestamp", NULL},
      {"ferry.response", NULL},
      {"ferry.error", "timeout"},
      {"ferry.offset", "40"},
      {"ferry.route", "orders"},
      {NULL, NULL}}},
    {"a gRPC answer, replayed, then a timeout",
     {grpc_13, timeout, NULL},
     {{"ferry.grpc_status", NULL}, {"ferry.grpc_message", NULL}, {NULL, NULL}}},
    {"a 500, replayed, then a 404",
     {http_500, http_404, NULL},
     {{"ferry.http_status", "404"}, {"ferry.route", "payments"}, {NULL, NULL}}},
    {"written by hand without ferry.error: the last of all",
     {by_hand, NULL},
     {{"ferry.http_status", "500"}, {"ferry.route", "b"}, {NULL, NULL}}},
    {"a header without a value", {no_value, NULL}, {{"ferry.route", ""}, {NULL, NULL}}},
};

static rd_kafka_headers_t *make_headers(const struct hdr *const *parts)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);

    for (size_t p = 0; parts[p]; p++)
        for (size_t i = 0; parts[p][i].name; i++)
            rd_kafka_header_add(h, parts[p][i].name, -1, parts[p][i].value,
                                parts[p][i].value ? -1 : 0);
    return h;
}

static void check_lookup(const rd_kafka_headers_t *h, const struct lookup *l, const char *what)
{
    char got[64];
    const void *v;
    size_t n;
    int rc = ferry_deadletter_headers_get(h, l->name, &v, &n);

    if (!l->want) {
        if (rc != -1)
            fail_msg("%s: %s: want absent", what, l->name);
        return;
    }
    if (rc != 0)
        fail_msg("%s: %s: want '%s', absent", what, l->name, l->want);
    snprintf(got, sizeof(got), "%.*s", (int)n, v ? (const char *)v : "");
    if (strcmp(got, l->want) != 0)
        fail_msg("%s: %s: want '%s', got '%s'", what, l->name, l->want, got);
}

static void test_newest_block(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rd_kafka_headers_t *h = make_headers(cases[i].parts);
        for (size_t j = 0; cases[i].lookups[j].name; j++)
            check_lookup(h, &cases[i].lookups[j], cases[i].what);
        rd_kafka_headers_destroy(h);
    }
    assert_int_equal(
        ferry_deadletter_headers_get(NULL, "ferry.error", &(const void *){0}, &(size_t){0}), -1);
}

/* The status a redrive filter sees, as redrive.c reads it: 0 when absent. */
static long status_of(const rd_kafka_headers_t *h)
{
    char text[16];
    const void *v;
    size_t n;

    if (ferry_deadletter_headers_get(h, "ferry.http_status", &v, &n) || !v || n >= sizeof(text))
        return 0;
    snprintf(text, sizeof(text), "%.*s", (int)n, (const char *)v);
    return strtol(text, NULL, 10);
}

/* `ferry redrive --status 500` takes the dead letter of a 500, but not that record replayed
 * and dead-lettered again after a timeout: its newest failure has no status. */
static void test_status_verdict(void **state)
{
    struct ferry_redrive_filter f;
    rd_kafka_headers_t *once = make_headers(cases[0].parts);
    rd_kafka_headers_t *twice = make_headers(cases[1].parts);

    (void)state;
    ferry_redrive_filter_init(&f);
    f.statuses[f.nstatuses++] = 500;
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", status_of(once), -1),
                     FERRY_REDRIVE_SEND);
    assert_int_equal(ferry_redrive_filter_decide(&f, "orders", "orders", status_of(twice), -1),
                     FERRY_REDRIVE_STATUS);
    rd_kafka_headers_destroy(once);
    rd_kafka_headers_destroy(twice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_block),
        cmocka_unit_test(test_status_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
