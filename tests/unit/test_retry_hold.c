/*
 * test_retry_hold.c - retry-topic partitions held until due (src/route/retry_hold.c).
 *
 * A script of steps on one set: hold partitions with due times out of order, hold one again
 * (no change), forget a revoked one, and release at times before, at and after the due times,
 * checking which partitions are resumed, in which order and at which offsets, and that the
 * record a released partition was sought back to is known as due, once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/retry_hold.h"

#define RESUMED_MAX 8

struct resumed {
    char what[RESUMED_MAX][64]; /* "topic/partition@offset" */
    size_t n;
};

static void on_resume(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    struct resumed *r = arg;

    assert_true(r->n < RESUMED_MAX);
    snprintf(r->what[r->n++], sizeof(r->what[0]), "%s/%d@%lld", topic, (int)partition,
             (long long)offset);
}

enum op { PARK, FORGET, RELEASE, TAKE };

struct step {
    enum op op;
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t time; /* PARK: due; RELEASE: now */
    int want;     /* PARK, TAKE: result; RELEASE: how many */
    const char *resumed[3];
    int64_t next; /* next_ms afterwards */
    size_t held;  /* count afterwards */
};

static const struct step steps[] = {
    {RELEASE, NULL, 0, 0, 1000, 0, {NULL}, INT64_MAX, 0},
    {PARK, "r.retry.1", 0, 10, 3000, 0, {NULL}, 3000, 1},
    {PARK, "r.retry.1", 1, 20, 2000, 0, {NULL}, 2000, 2},
    {PARK, "r.retry.2", 0, 5, 9000, 0, {NULL}, 2000, 3},
    {PARK, "r.retry.1", 1, 21, 1500, 1, {NULL}, 2000, 3}, /* held already: unchanged */
    {RELEASE, NULL, 0, 0, 1999, 0, {NULL}, 2000, 3},
    {RELEASE, NULL, 0, 0, 3000, 2, {"r.retry.1/1@20", "r.retry.1/0@10"}, 9000, 1},
    /* the records sought back to are due when they come, once */
    {TAKE, "r.retry.1", 1, 21, 0, 0, {NULL}, 9000, 1},
    {TAKE, "r.retry.1", 1, 20, 0, 1, {NULL}, 9000, 1},
    {TAKE, "r.retry.1", 1, 20, 0, 0, {NULL}, 9000, 1},
    {TAKE, "r.retry.2", 0, 5, 0, 0, {NULL}, 9000, 1}, /* still held */
    {PARK, "r.retry.1", 0, 11, 4000, 0, {NULL}, 4000, 2},
    {FORGET, "r.retry.1", 0, 0, 0, 0, {NULL}, 9000, 1},
    {TAKE, "r.retry.1", 0, 10, 0, 0, {NULL}, 9000, 1},  /* forgotten with its partition */
    {FORGET, "r.retry.9", 0, 0, 0, 0, {NULL}, 9000, 1}, /* not held: nothing */
    {RELEASE, NULL, 0, 0, 100000, 1, {"r.retry.2/0@5"}, INT64_MAX, 0},
};

static void run_step(ferry_retry_hold *h, size_t i, const struct step *st)
{
    struct resumed r = {.n = 0};
    int got = 0;

    switch (st->op) {
    case PARK:
        got = ferry_retry_hold_park(h, st->topic, st->partition, st->offset, st->time);
        break;
    case FORGET:
        ferry_retry_hold_forget(h, st->topic, st->partition);
        break;
    case RELEASE:
        got = (int)ferry_retry_hold_release_due(h, st->time, on_resume, &r);
        break;
    case TAKE:
        got = ferry_retry_hold_take_released(h, st->topic, st->partition, st->offset);
        break;
    }
    if (got != st->want)
        fail_msg("step %zu: got %d, want %d", i, got, st->want);
    for (size_t k = 0; k < r.n; k++)
        if (!st->resumed[k] || strcmp(st->resumed[k], r.what[k]) != 0)
            fail_msg("step %zu: resumed %s, want %s", i, r.what[k],
                     st->resumed[k] ? st->resumed[k] : "nothing");
    if (r.n < 3 && st->resumed[r.n])
        fail_msg("step %zu: %s was not resumed", i, st->resumed[r.n]);
    assert_int_equal(ferry_retry_hold_next_ms(h), st->next);
    assert_int_equal(ferry_retry_hold_count(h), st->held);
}

static void test_script(void **state)
{
    ferry_retry_hold *h = ferry_retry_hold_new();

    (void)state;
    assert_non_null(h);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        run_step(h, i, &steps[i]);
    assert_false(ferry_retry_hold_held(h, "r.retry.2", 0));
    assert_int_equal(ferry_retry_hold_park(h, "r.retry.2", 3, 1, 5), 0);
    assert_true(ferry_retry_hold_held(h, "r.retry.2", 3));
    ferry_retry_hold_destroy(h); /* frees what is still held */
    ferry_retry_hold_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
