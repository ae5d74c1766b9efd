/*
 * test_ratelimit.c - unit tests of the token buckets that pace routes (src/route/ratelimit.c).
 *
 * The clock is the test's: each step says at what time (milliseconds) a request is taken, or
 * when the limiter must say the next request may start. A second table runs a sender that
 * takes a request each time the limiter allows one and checks the count over a long window
 * against rate x window + the burst. Threads sharing a limiter must lose no cost.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/ratelimit.h"

#define MS INT64_C(1000000) /* nanoseconds */
#define STEPS_MAX 12

enum op { END, TAKE, READY_AT };

struct step {
    enum op op;
    int64_t at_ms;    /* TAKE: the time of the take; READY_AT: the expected ready time */
    uint64_t records; /* TAKE */
    uint64_t bytes;   /* TAKE */
};

struct step_case {
    const char *name;
    struct ferry_ratelimit_rates rates;
    struct step steps[STEPS_MAX];
};

static const struct step_case step_cases[] = {
    {"50 requests/s, no burst: one every 20 ms",
     {50, 0, 0, 0},
     {{READY_AT, -1, 0, 0},
      {TAKE, 1000, 1, 0},
      {READY_AT, 1020, 0, 0},
      {TAKE, 1020, 1, 0},
      {READY_AT, 1040, 0, 0}}},
    {"a late take starts from its own time, not the missed ones",
     {50, 0, 0, 0},
     {{TAKE, 1000, 1, 0}, {TAKE, 1500, 1, 0}, {READY_AT, 1520, 0, 0}}},
    {"burst 100ms at 50/s: five at once, then one every 20 ms",
     {50, 0, 0, 100},
     {{TAKE, 1000, 1, 0},
      {TAKE, 1000, 1, 0},
      {TAKE, 1000, 1, 0},
      {TAKE, 1000, 1, 0},
      {READY_AT, 1000, 0, 0},
      {TAKE, 1000, 1, 0},
      {READY_AT, 1020, 0, 0}}},
    {"a quiet spell refills the bucket only up to its capacity",
     {50, 0, 0, 100},
     {{TAKE, 1000, 1, 0},
      {TAKE, 9000, 1, 0},
      {TAKE, 9000, 1, 0},
      {TAKE, 9000, 1, 0},
      {TAKE, 9000, 1, 0},
      {TAKE, 9000, 1, 0},
      {READY_AT, 9020, 0, 0}}},
    {"records: a batch of 50 at 100/s is paid off in 500 ms",
     {0, 100, 0, 0},
     {{TAKE, 1000, 50, 0}, {READY_AT, 1500, 0, 0}}},
    {"records: requests alone are free",
     {0, 100, 0, 0},
     {{TAKE, 1000, 0, 0}, {READY_AT, 1000, 0, 0}}},
    {"bytes: a body larger than the bucket still goes, then waits out its debt",
     {0, 0, 1000, 1000},
     {{TAKE, 1000, 1, 5000}, {READY_AT, 5001, 0, 0}}},
    {"the slowest unit decides",
     {10, 0, 100, 0},
     {{TAKE, 1000, 1, 50}, {READY_AT, 1500, 0, 0}, {TAKE, 1500, 1, 1}, {READY_AT, 1600, 0, 0}}},
    {"fractions of a request per second",
     {0.5, 0, 0, 0},
     {{TAKE, 1000, 1, 0}, {READY_AT, 3000, 0, 0}}},
    {"nothing limited: always ready",
     {0, 0, 0, 100},
     {{TAKE, 1000, 1000, 1000000}, {READY_AT, -1, 0, 0}}},
};

static void run_steps(const struct step_case *c)
{
    ferry_ratelimit *l = ferry_ratelimit_new(&c->rates);

    assert_non_null(l);
    for (int i = 0; i < STEPS_MAX && c->steps[i].op != END; i++) {
        const struct step *s = &c->steps[i];
        int64_t ready = ferry_ratelimit_ready_ns(l);

        if (s->op == TAKE) {
            if (ready > s->at_ms * MS)
                fail_msg("%s: step %d: taken at %lld ms, but ready only at %lld ns", c->name, i,
                         (long long)s->at_ms, (long long)ready);
            ferry_ratelimit_take(l, s->at_ms * MS, s->records, s->bytes);
        } else if (s->at_ms < 0 ? ready > 0 : ready != s->at_ms * MS) {
            fail_msg("%s: step %d: ready at %lld ns, expected %lld ms", c->name, i,
                     (long long)ready, (long long)s->at_ms);
        }
    }
    ferry_ratelimit_destroy(l);
}

static void test_steps(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(step_cases) / sizeof(step_cases[0]); i++)
        run_steps(&step_cases[i]);
}

/* A sender that always has work: over window_ms it sends rate x window, plus the burst it
 * found saved up at the start. */
struct rate_case {
    const char *name;
    struct ferry_ratelimit_rates rates;
    uint64_t records, bytes; /* per request */
    int64_t window_ms;
    uint64_t expected; /* requests sent */
};

static const struct rate_case rate_cases[] = {
    {"50 requests/s for 30 s, burst 100ms", {50, 0, 0, 100}, 1, 100, 30000, 1500 + 5},
    {"50 requests/s for 30 s, no burst", {50, 0, 0, 0}, 1, 100, 30000, 1500 + 1},
    {"1000 records/s in batches of 10 for 10 s", {0, 1000, 0, 0}, 10, 100, 10000, 1000 + 1},
    {"1 MB/s of 1000-byte bodies for 5 s, burst 1s", {0, 0, 1e6, 1000}, 1, 1000, 5000, 5000 + 1000},
    {"a million records/s, one per request, for 1 s",
     {0, 1e6, 0, 100},
     1,
     10,
     1000,
     1000000 + 100000},
    {"3 requests/s for a minute", {3, 0, 0, 0}, 1, 10, 60000, 180 + 1},
};

static void run_rate(const struct rate_case *c)
{
    ferry_ratelimit *l = ferry_ratelimit_new(&c->rates);
    const int64_t start = 1000 * MS, end = start + c->window_ms * MS;
    int64_t now = start;
    uint64_t sent = 0;

    assert_non_null(l);
    for (;;) {
        int64_t ready = ferry_ratelimit_ready_ns(l);
        if (ready > now)
            now = ready; /* the route's timer */
        if (now >= end)
            break;
        ferry_ratelimit_take(l, now, c->records, c->bytes);
        sent++;
    }
    if (sent + 1 < c->expected || sent > c->expected + 1)
        fail_msg("%s: sent %llu requests, expected %llu", c->name, (unsigned long long)sent,
                 (unsigned long long)c->expected);
    ferry_ratelimit_destroy(l);
}

static void test_long_run_rates(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rate_cases) / sizeof(rate_cases[0]); i++)
        run_rate(&rate_cases[i]);
}

#define THREADS 4
#define TAKES_PER_THREAD 20000

static void *take_many(void *arg)
{
    for (int i = 0; i < TAKES_PER_THREAD; i++)
        ferry_ratelimit_take(arg, 1000 * MS, 1, 0);
    return NULL;
}

/* Routes on several threads share a limiter: every cost counts, none is lost to a race. */
static void test_shared_by_threads(void **state)
{
    struct ferry_ratelimit_rates rates = {1000, 0, 0, 0};
    ferry_ratelimit *l = ferry_ratelimit_new(&rates);
    pthread_t threads[THREADS];

    (void)state;
    assert_non_null(l);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, take_many, l), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    /* Full (one request) at 1000 ms, then THREADS x TAKES_PER_THREAD requests of 1 ms each. */
    assert_int_equal(ferry_ratelimit_ready_ns(l),
                     1000 * MS + (int64_t)THREADS * TAKES_PER_THREAD * MS);
    ferry_ratelimit_destroy(l);
}

/* A rate so small that one unit takes longer than an int64 of nanoseconds holds: the first
 * request may go, and the next waits (its ready time overflowed, to never or to at once). */
static void test_tiny_rate(void **state)
{
    struct ferry_ratelimit_rates rates = {1e-11, 0, 0, 0};
    ferry_ratelimit *l = ferry_ratelimit_new(&rates);
    int64_t now = 1000 * MS;

    (void)state;
    assert_non_null(l);
    assert_true(ferry_ratelimit_ready_ns(l) <= now);
    ferry_ratelimit_take(l, now, 1, 0);
    assert_true(ferry_ratelimit_ready_ns(l) > now + 365LL * 24 * 3600 * 1000 * MS);
    ferry_ratelimit_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_long_run_rates),
        cmocka_unit_test(test_shared_by_threads),
        cmocka_unit_test(test_tiny_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
