/*
 * test_adaptive.c - unit tests of adaptive concurrency (src/route/adaptive.c): a simulated
 * target of a given capacity, and scripted windows of answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "route/adaptive.h"

static const struct ferry_adaptive_policy policy = {1, 40, 0.9, 2.0};

/* One window of 50 ms answers: requests started with the whole limit in use when saturated;
 * each answer after latency_s, pushed back when pushed. */
static void window(ferry_adaptive *a, int64_t *t_ms, int saturated, double latency_s, int pushed)
{
    int64_t limit = ferry_adaptive_limit(a);

    ferry_adaptive_started(a, saturated ? limit : 0);
    for (int i = 0; i < 5; i++) {
        *t_ms += 11;
        ferry_adaptive_result(a, latency_s, pushed, *t_ms);
    }
}

struct script_case {
    const char *name;
    int windows;
    int saturated;
    double latency_s;
    int pushed;
    int64_t start_limit; /* reached first by calm saturated windows */
    int64_t lo, hi;      /* the limit after the script */
};

static const struct script_case cases[] = {
    {"calm and saturated: grows by one a window", 10, 1, 0.05, 0, 1, 9, 11},
    {"grows no further than max", 100, 1, 0.05, 0, 1, 40, 40},
    {"not saturated: stays", 10, 0, 0.05, 0, 10, 9, 11},
    {"push-back cuts it, not below min", 60, 1, 0.05, 1, 30, 1, 1},
    {"a few push-backs cut it by a tenth each", 3, 1, 0.05, 1, 30, 19, 24},
    {"latency three times the baseline cuts it", 3, 1, 0.15, 0, 30, 19, 24},
};

static void test_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct script_case *c = &cases[i];
        ferry_adaptive *a = ferry_adaptive_new(&policy);
        int64_t t = 0;

        assert_non_null(a);
        assert_int_equal(ferry_adaptive_limit(a), 1);
        while (ferry_adaptive_limit(a) < c->start_limit)
            window(a, &t, 1, 0.05, 0);
        for (int w = 0; w < c->windows; w++)
            window(a, &t, c->saturated, c->latency_s, c->pushed);
        if (ferry_adaptive_limit(a) < c->lo || ferry_adaptive_limit(a) > c->hi)
            fail_msg("%s: limit %lld, want %lld..%lld", c->name, (long long)ferry_adaptive_limit(a),
                     (long long)c->lo, (long long)c->hi);
        ferry_adaptive_destroy(a);
    }
}

/* A target that answers 503 beyond its capacity: the limit settles near it, then follows a
 * drop from 20 to 5 and the way back. */
static int64_t settle(ferry_adaptive *a, int64_t *t, int capacity, int windows)
{
    int64_t sum = 0;
    for (int w = 0; w < windows; w++) {
        int64_t limit = ferry_adaptive_limit(a);
        window(a, t, 1, 0.05, limit > capacity);
        if (w >= windows - 20)
            sum += ferry_adaptive_limit(a);
    }
    return sum / 20; /* the mean over the last 20 windows */
}

static void test_follows_capacity(void **state)
{
    ferry_adaptive *a = ferry_adaptive_new(&policy);
    int64_t t = 0, mean;

    (void)state;
    mean = settle(a, &t, 20, 100);
    if (mean < 15 || mean > 21)
        fail_msg("capacity 20: mean limit %lld", (long long)mean);
    mean = settle(a, &t, 5, 40);
    if (mean < 3 || mean > 6)
        fail_msg("capacity 5: mean limit %lld", (long long)mean);
    /* growing back past 5, the limit it was refused at, waits for FERRY_ADAPTIVE_PROBE_ANSWERS
     * answers or FERRY_ADAPTIVE_PROBE_MAX_MS (5 answers a window: up to 37 windows here) */
    mean = settle(a, &t, 20, 100);
    if (mean < 15 || mean > 21)
        fail_msg("capacity 20 again: mean limit %lld", (long long)mean);
    ferry_adaptive_destroy(a);
}

/* Round trips of 20 ms against a target of a given capacity that answers the requests beyond
 * it with 503 at once: once settled, the limit keeps the target busy and fewer than 1% of the
 * answers are 503 (the limit is not pushed past the capacity every few windows). */
static void test_few_refusals_at_steady_state(void **state)
{
    static const int capacities[] = {20, 5};

    (void)state;
    for (size_t c = 0; c < sizeof(capacities) / sizeof(capacities[0]); c++) {
        ferry_adaptive *a = ferry_adaptive_new(&policy);
        int64_t t = 0, ok = 0, refused = 0, limit_sum = 0, trips = 0;
        int capacity = capacities[c];

        for (int trip = 0; trip < 1000; trip++) { /* 20 s, the first 5 left out */
            int64_t limit = ferry_adaptive_limit(a);
            int64_t excess = limit > capacity ? limit - capacity : 0;
            int counted = trip >= 250;

            ferry_adaptive_started(a, limit);
            for (int64_t i = 0; i < excess; i++)
                ferry_adaptive_result(a, 0.001, 1, t + 1);
            for (int64_t i = 0; i < limit - excess; i++)
                ferry_adaptive_result(a, 0.02, 0, t + 20);
            t += 20;
            if (counted) {
                ok += limit - excess;
                refused += excess;
                limit_sum += limit;
                trips++;
            }
        }
        if (refused * 100 >= ok + refused)
            fail_msg("capacity %d: %lld of %lld answers were 503", capacity, (long long)refused,
                     (long long)(ok + refused));
        if (limit_sum * 10 < trips * capacity * 9)
            fail_msg("capacity %d: mean limit %.1f", capacity, (double)limit_sum / (double)trips);
        ferry_adaptive_destroy(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_follows_capacity),
        cmocka_unit_test(test_few_refusals_at_steady_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
