/*
 * test_breaker.c - unit tests of the circuit breaker (src/route/breaker.c): scripts of
 * requests and results with their times, and the state after each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/breaker.h"

#define STEPS_MAX 40

/* 50% of at least 4 in 10 s, or 3 in a row; open 1 s, at most 4 s; 2 probes. */
static const struct ferry_breaker_policy policy = {0.5, 4, 10000, 3, 1000, 4000, 2};

enum op {
    END,
    OK,    /* a request starts and succeeds at once */
    FAIL,  /* a request starts and fails at once */
    DENY,  /* no request may start */
    START, /* a request starts and stays under way (its ticket is kept) */
    DONE_OK,
    DONE_FAIL, /* the request kept by START ends */
    IDLE,      /* the caller has nothing left to send */
};

struct step {
    int64_t t_ms;
    enum op op;
    enum ferry_breaker_state after;
};

struct breaker_case {
    const char *name;
    struct step steps[STEPS_MAX];
    int changes; /* state changes seen over the script */
};

#define C FERRY_BREAKER_CLOSED
#define O FERRY_BREAKER_OPEN
#define H FERRY_BREAKER_HALF_OPEN

static const struct breaker_case cases[] = {
    {"successes keep it closed", {{0, OK, C}, {1, OK, C}, {2, OK, C}, {3, OK, C}, {0, END, C}}, 0},
    {"three failures in a row open it",
     {{0, FAIL, C}, {1, FAIL, C}, {2, FAIL, O}, {3, DENY, O}, {0, END, C}},
     1},
    {"a success breaks the row",
     {{0, OK, C},
      {1, OK, C},
      {2, OK, C},
      {3, OK, C},
      {4, FAIL, C},
      {5, FAIL, C},
      {6, OK, C},
      {7, FAIL, C},
      {0, END, C}},
     0},
    {"half of at least four in the window",
     {{0, OK, C}, {1, FAIL, C}, {2, OK, C}, {3, FAIL, O}, {0, END, C}},
     1},
    {"failures that left the window do not count",
     {{0, FAIL, C},
      {1, FAIL, C},
      {12000, OK, C},
      {12001, OK, C},
      {12002, FAIL, C},
      {12003, OK, C},
      {0, END, C}},
     0},
    {"open period ends: probes, all succeed, closed",
     {{0, FAIL, C},
      {1, FAIL, C},
      {2, FAIL, O},
      {999, DENY, O},
      {1002, OK, H},
      {1003, OK, C},
      {1004, OK, C},
      {0, END, C}},
     3},
    {"a failed probe opens it again for twice as long",
     {{0, FAIL, C},
      {1, FAIL, C},
      {2, FAIL, O},
      {1002, FAIL, O},
      {2900, DENY, O},
      {3001, DENY, O},
      {3002, OK, H},
      {3003, OK, C},
      {0, END, C}},
     5},
    {"the open period grows to max_open and no further",
     {{0, FAIL, C},
      {1, FAIL, C},
      {2, FAIL, O},    /* 1 s */
      {1002, FAIL, O}, /* 2 s */
      {3002, FAIL, O}, /* 4 s */
      {7002, FAIL, O}, /* 4 s, the maximum */
      {11001, DENY, O},
      {11002, OK, H},
      {11003, OK, C},
      {0, END, C}},
     9},
    {"half-open lets only the probes out",
     {{0, FAIL, C},
      {1, FAIL, C},
      {2, FAIL, O},
      {1002, START, H},
      {1003, START, H},
      {1004, DENY, H},
      {1005, DONE_OK, H},
      {1006, DONE_OK, C},
      {1007, OK, C},
      {0, END, C}},
     3},
    {"idle after every probe so far succeeded: closed without the missing probes",
     {{0, FAIL, C}, {1, FAIL, C}, {2, FAIL, O}, {1002, OK, H}, {1003, IDLE, C}, {0, END, C}},
     3},
    {"idle counts for nothing before a probe, with one under way, or closed",
     {{0, IDLE, C},
      {1, FAIL, C},
      {2, FAIL, C},
      {3, FAIL, O},
      {4, IDLE, O},
      {1003, START, H},
      {1004, START, H},
      {1005, IDLE, H},
      {1006, DONE_OK, H},
      {1007, IDLE, H},
      {1008, DONE_OK, C},
      {1009, IDLE, C},
      {0, END, C}},
     3},
    /* 54 requests hung while 10 fast failures opened it: when they timed out after it had
     * closed again, they opened it once more */
    {"results of requests started before it opened are old news once closed again",
     {{0, START, C},
      {1, START, C},
      {2, START, C},
      {3, FAIL, C},
      {4, FAIL, C},
      {5, FAIL, O},
      {1005, OK, H},
      {1006, OK, C},
      {1007, DONE_FAIL, C},
      {1008, DONE_FAIL, C},
      {1009, DONE_FAIL, C},
      {0, END, C}},
     3},
    {"a probe of an earlier half-open round counts for nothing",
     {{0, FAIL, C},
      {1, FAIL, C},
      {2, FAIL, O},
      {1002, START, H},
      {1003, START, H},
      {1004, DONE_FAIL, O}, /* open 2 s */
      {3004, OK, H},
      {3005, DONE_OK, H}, /* the second probe of the first round */
      {3006, OK, C},
      {0, END, C}},
     5},
    {"results of requests started while closed are old news once open",
     {{0, START, C},
      {1, FAIL, C},
      {2, FAIL, C},
      {3, FAIL, O},
      {4, DONE_FAIL, O},
      {5, DENY, O},
      {0, END, C}},
     1},
};

struct run {
    int changes;
};

static void count_change(void *arg, enum ferry_breaker_state from, enum ferry_breaker_state to,
                         const char *why)
{
    struct run *run = arg;
    assert_int_not_equal(from, to);
    assert_non_null(why);
    assert_true(why[0] != '\0');
    run->changes++;
}

/* The tickets of the requests under way, oldest first. */
struct under_way {
    ferry_breaker_ticket tickets[STEPS_MAX];
    size_t first, n;
};

static void play(ferry_breaker *b, const struct step *s, struct under_way *u)
{
    switch (s->op) {
    case OK:
    case FAIL:
        assert_true(ferry_breaker_may_start(b, s->t_ms));
        ferry_breaker_result(b, ferry_breaker_started(b), s->op == FAIL, s->t_ms);
        break;
    case DENY:
        assert_false(ferry_breaker_may_start(b, s->t_ms));
        break;
    case START:
        assert_true(ferry_breaker_may_start(b, s->t_ms));
        u->tickets[u->first + u->n++] = ferry_breaker_started(b);
        break;
    case DONE_OK:
    case DONE_FAIL:
        assert_true(u->n > 0);
        ferry_breaker_result(b, u->tickets[u->first++], s->op == DONE_FAIL, s->t_ms);
        u->n--;
        break;
    case IDLE:
        ferry_breaker_idle(b);
        break;
    case END:
        break;
    }
}

static void test_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct breaker_case *c = &cases[i];
        struct run run = {0};
        struct under_way u = {{0}, 0, 0};
        ferry_breaker *b = ferry_breaker_new(&policy, count_change, &run);

        assert_non_null(b);
        for (size_t j = 0; j < STEPS_MAX && c->steps[j].op != END; j++) {
            play(b, &c->steps[j], &u);
            if (ferry_breaker_state(b) != c->steps[j].after)
                fail_msg("%s: after step %zu (t=%lld) the breaker is %s, want %s", c->name, j,
                         (long long)c->steps[j].t_ms,
                         ferry_breaker_state_name(ferry_breaker_state(b)),
                         ferry_breaker_state_name(c->steps[j].after));
        }
        if (run.changes != c->changes)
            fail_msg("%s: %d state changes, want %d", c->name, run.changes, c->changes);
        ferry_breaker_destroy(b);
    }
}

static void test_open_until(void **state)
{
    ferry_breaker *b = ferry_breaker_new(&policy, NULL, NULL);

    (void)state;
    assert_int_equal(ferry_breaker_open_until_ms(b), INT64_MAX);
    for (int i = 0; i < 3; i++)
        ferry_breaker_result(b, ferry_breaker_started(b), 1, 100);
    assert_int_equal(ferry_breaker_state(b), FERRY_BREAKER_OPEN);
    assert_int_equal(ferry_breaker_open_until_ms(b), 1100);
    assert_true(ferry_breaker_may_start(b, 1100));
    assert_int_equal(ferry_breaker_open_until_ms(b), INT64_MAX);
    ferry_breaker_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_open_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
