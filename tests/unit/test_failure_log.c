/*
 * test_failure_log.c - unit tests of a route's failure log (src/route/failure_log.c): which
 * lines a pattern of successes and failures writes, and that no pattern writes more than three
 * lines per window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/failure_log.h"

#define WINDOW_MS 10000
#define LINES_MAX 256
#define STEPS_MAX 16

struct captured {
    size_t n;
    enum ferry_log_level levels[LINES_MAX];
    char lines[LINES_MAX][512];
};

static void capture(void *arg, enum ferry_log_level level, const char *line)
{
    struct captured *c = arg;
    if (c->n == LINES_MAX)
        return;
    c->levels[c->n] = level;
    snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", line);
}

/* One event: a success (kind NULL), a failure of kind, or a tick (kind "tick"). */
struct step {
    int64_t t_ms;
    const char *kind;
};

struct line {
    enum ferry_log_level level;
    const char *text; /* the line starts with it */
};

struct lines_case {
    const char *name;
    struct step steps[STEPS_MAX];
    struct line want[4];
};

static const struct lines_case cases[] = {
    {"healthy target writes nothing",
     {{0, NULL}, {5000, NULL}, {10000, "tick"}, {25000, "tick"}, {-1, NULL}},
     {{0, NULL}}},
    {"first failure is told at once",
     {{0, NULL}, {100, "500"}, {-1, NULL}},
     {{FERRY_LOG_WARN, "target is failing: failed: 500"}, {0, NULL}}},
    {"a lone failure: failing, one summary, recovered after a quiet window",
     {{0, "500"},
      {1000, NULL},
      {9000, NULL},
      {10000, "tick"},
      {15000, NULL},
      {19999, "tick"},
      {20000, "tick"},
      {-1, NULL}},
     {{FERRY_LOG_WARN, "target is failing: failed: 500"},
      {FERRY_LOG_WARN, "1 of 3 requests failed in the last 10 s (500: 1)"},
      {FERRY_LOG_INFO, "target recovered: none of the last 1 requests failed in 10 s "
                       "(1 failed in the 10 s before)"},
      {0, NULL}}},
    {"kinds are summarized, most frequent first",
     {{0, "timeout"},
      {1, "500"},
      {2, "500"},
      {3, NULL},
      {4, "429"},
      {5, "500"},
      {10000, "tick"},
      {-1, NULL}},
     {{FERRY_LOG_WARN, "target is failing: failed: timeout"},
      {FERRY_LOG_WARN, "5 of 6 requests failed in the last 10 s (500: 3, timeout: 1, 429: 1)"},
      {0, NULL}}},
    {"a window without requests is no recovery",
     {{0, "500"},
      {10000, "tick"},
      {20000, "tick"},
      {30000, "tick"},
      {30001, NULL},
      {40001, "tick"},
      {-1, NULL}},
     {{FERRY_LOG_WARN, "target is failing: failed: 500"},
      {FERRY_LOG_WARN, "1 of 1 requests failed"},
      {FERRY_LOG_INFO, "target recovered: none of the last 1 requests"},
      {0, NULL}}},
    {"a failure after recovery is told again",
     {{0, "500"}, {10000, "tick"}, {15000, NULL}, {20000, "tick"}, {20001, "503"}, {-1, NULL}},
     {{FERRY_LOG_WARN, "target is failing: failed: 500"},
      {FERRY_LOG_WARN, "1 of 1 requests failed"},
      {FERRY_LOG_INFO, "target recovered"},
      {FERRY_LOG_WARN, "target is failing: failed: 503"}}},
};

static void play(ferry_failure_log *fl, const struct step *s)
{
    char reason[64];

    if (!s->kind)
        ferry_failure_log_success(fl, s->t_ms);
    else if (strcmp(s->kind, "tick") == 0)
        ferry_failure_log_tick(fl, s->t_ms);
    else {
        snprintf(reason, sizeof(reason), "failed: %s", s->kind);
        ferry_failure_log_failure(fl, s->kind, reason, s->t_ms);
    }
}

static void test_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct lines_case *c = &cases[i];
        struct captured got = {0};
        ferry_failure_log *fl = ferry_failure_log_new(WINDOW_MS, capture, &got);
        size_t nwant = 0;

        assert_non_null(fl);
        for (const struct step *s = c->steps; s->t_ms >= 0 && s < c->steps + STEPS_MAX; s++)
            play(fl, s);
        while (nwant < 4 && c->want[nwant].text)
            nwant++;
        if (got.n != nwant)
            fail_msg("%s: %zu lines, want %zu (first: %s)", c->name, got.n, nwant,
                     got.n ? got.lines[0] : "none");
        for (size_t j = 0; j < nwant; j++) {
            if (strncmp(got.lines[j], c->want[j].text, strlen(c->want[j].text)) != 0)
                fail_msg("%s: line %zu is '%s', want '%s...'", c->name, j, got.lines[j],
                         c->want[j].text);
            assert_int_equal(got.levels[j], c->want[j].level);
        }
        ferry_failure_log_destroy(fl);
    }
}

/* Patterns of failure over 120 s, one request every 10 ms, ticks every second as the route's
 * loop does: none may write more than 3 lines per 10 s window. */
struct pattern {
    const char *name;
    int (*fails)(int64_t t_ms, unsigned *rng);
};

static int one_in_20(int64_t t_ms, unsigned *rng)
{
    (void)t_ms;
    *rng = *rng * 1103515245u + 12345u;
    return (*rng >> 16) % 20 == 0;
}

static int every_other(int64_t t_ms, unsigned *rng)
{
    (void)rng;
    return (t_ms / 10) % 2 == 0;
}

static int flapping_each_11_s(int64_t t_ms, unsigned *rng)
{
    (void)rng;
    return t_ms % 11000 == 0;
}

static int down_then_up(int64_t t_ms, unsigned *rng)
{
    (void)rng;
    return t_ms >= 30000 && t_ms < 50000;
}

static int many_kinds(int64_t t_ms, unsigned *rng)
{
    (void)rng;
    return t_ms % 30 == 0;
}

static const struct pattern patterns[] = {
    {"5% failing", one_in_20},
    {"half failing", every_other},
    {"one failure every 11 s", flapping_each_11_s},
    {"down 20 s, then up", down_then_up},
    {"many kinds", many_kinds},
};

static void test_no_pattern_floods(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        struct captured got = {0};
        ferry_failure_log *fl = ferry_failure_log_new(WINDOW_MS, capture, &got);
        unsigned rng = 7;
        size_t failures = 0;
        const int64_t run_ms = 120000;

        assert_non_null(fl);
        for (int64_t t = 0; t < run_ms; t += 10) {
            char kind[16];
            if (patterns[i].fails(t, &rng)) {
                snprintf(kind, sizeof(kind), "%d", 500 + (int)(t / 10 % 12));
                ferry_failure_log_failure(fl, kind, "failed", t);
                failures++;
            } else
                ferry_failure_log_success(fl, t);
            if (t % 1000 == 0)
                ferry_failure_log_tick(fl, t);
        }
        assert_true(failures > 0);
        if (got.n > 3 * (size_t)(run_ms / WINDOW_MS))
            fail_msg("%s: %zu lines in %lld s for %zu failures", patterns[i].name, got.n,
                     (long long)run_ms / 1000, failures);
        assert_true(got.n >= 1);
        ferry_failure_log_destroy(fl);
    }
}

/* More kinds than it names: the rest are counted as "other", none is lost. */
static void test_other_kinds(void **state)
{
    struct captured got = {0};
    ferry_failure_log *fl = ferry_failure_log_new(WINDOW_MS, capture, &got);
    char kind[16];

    (void)state;
    for (int i = 0; i < FERRY_FAILURE_LOG_KINDS + 3; i++) {
        snprintf(kind, sizeof(kind), "%d", 500 + i);
        ferry_failure_log_failure(fl, kind, "failed", i);
    }
    ferry_failure_log_tick(fl, WINDOW_MS);
    assert_int_equal(got.n, 2);
    assert_non_null(strstr(got.lines[1], "11 of 11 requests failed"));
    assert_non_null(strstr(got.lines[1], ", other: 3)"));
    ferry_failure_log_destroy(fl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_no_pattern_floods),
        cmocka_unit_test(test_other_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
