/*
 * test_table_watch.c - reads parked until a key changes or offsets are applied
 * (src/table/watch.c), with the watch thread running.
 *
 * Cases: a waiter parked after a commit it did not see (a stale seq) is woken at once when it
 * waits on a key, but waits on when it waits on offsets that commit did not reach: only its
 * own offsets, or its deadline, wake it. A waiter its wake callback parks again keeps its
 * place under limits.max_waiters: a new read that came meanwhile is refused, not it. A commit
 * whose keys were not listed (all_keys: the apply thread kept none, or too many) wakes every
 * key waiter, and an offset waiter only once its offsets are reached.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "table/watch.h"

#define PARTITIONS 2
#define NOT_WOKEN -1
#define WAKE_TIMEOUT_MS 10000 /* a busy machine: the deadlines below are 200 ms */
#define SHORT_WAIT_MS 200

/* One table with its watch, the thread started. */
struct fixture {
    struct ferry_table_config cfg;
    struct table_partition parts[PARTITIONS];
    struct table table;
    ferry_tables tables;
    ferry_table_watch *w;
};

/* A parked read: records why it was woken. */
struct probe {
    struct ferry_table_waiter waiter; /* first: the watch hands it back */
    int64_t offsets[PARTITIONS];
    int why; /* enum ferry_wake, or NOT_WOKEN */
    /* when set, its first wake parks other, then itself again, and records how both went */
    struct probe *other;
    ferry_table_watch *w;
    int other_parked, other_full, parked_again;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t woken; /* on CLOCK_MONOTONIC, as ferry_clock_timespec */

/* The first wake of a probe with other: a new read comes, then this one parks again. */
static void park_both(struct probe *pr)
{
    uint64_t seq = ferry_table_watch_seq(pr->waiter.table);
    int full;

    pr->other_parked = ferry_table_watch_park(pr->w, &pr->other->waiter, seq, &full) == 0;
    pr->other_full = full;
    pr->other = NULL;
    pr->waiter.deadline.key = ferry_clock_ms() + SHORT_WAIT_MS;
    pr->parked_again = ferry_table_watch_park(pr->w, &pr->waiter, seq, &full) == 0;
}

static void on_wake(struct ferry_table_waiter *w, enum ferry_wake why)
{
    struct probe *pr = (struct probe *)w;

    if (pr->other) {
        park_both(pr);
        if (pr->parked_again)
            return;
    }
    pthread_mutex_lock(&lock);
    pr->why = (int)why;
    pthread_cond_broadcast(&woken);
    pthread_mutex_unlock(&lock);
}

/* Why pr was woken, waiting for it up to WAKE_TIMEOUT_MS; NOT_WOKEN if it was not. */
static int wait_woken(struct probe *pr)
{
    struct timespec until = ferry_clock_timespec(ferry_clock_ms() + WAKE_TIMEOUT_MS);
    int why;

    pthread_mutex_lock(&lock);
    while (pr->why == NOT_WOKEN && pthread_cond_timedwait(&woken, &lock, &until) == 0)
        ;
    why = pr->why;
    pthread_mutex_unlock(&lock);
    return why;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char why[256];

    assert_non_null(f);
    f->cfg.name = "t";
    f->cfg.limits.max_waiters = 10;
    f->table.cfg = &f->cfg;
    f->table.owner = &f->tables;
    f->table.npartitions = PARTITIONS;
    f->table.parts = f->parts;
    f->tables.tables = &f->table;
    f->tables.count = 1;
    f->w = ferry_table_watch_new(&f->tables, why, sizeof(why));
    assert_non_null(f->w);
    f->tables.watch = f->w;
    assert_int_equal(ferry_table_watch_start(f->w, why, sizeof(why)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    ferry_table_watch_destroy(f->w);
    free(f);
    return 0;
}

static void probe_init(struct probe *pr, struct table *t, enum ferry_wait_kind kind)
{
    memset(pr, 0, sizeof(*pr));
    pr->waiter.table = t;
    pr->waiter.key = "k";
    pr->waiter.key_len = 1;
    pr->waiter.wake = on_wake;
    pr->waiter.kind = (uint8_t)kind;
    pr->waiter.deadline.key = ferry_clock_ms() + SHORT_WAIT_MS;
    pr->why = NOT_WOKEN;
    for (int32_t p = 0; p < PARTITIONS; p++)
        pr->offsets[p] = -1;
    if (kind == FERRY_WAIT_OFFSETS)
        pr->waiter.offsets = pr->offsets;
}

struct stale_case {
    const char *name;
    enum ferry_wait_kind kind;
    int stale;              /* a commit came between the read of seq and the park */
    int64_t applied, min;   /* partition 0's applied offset, and the waiter's min_offset */
    enum ferry_wake expect; /* how it is woken */
};

static const struct stale_case stale_cases[] = {
    {"key, a commit unseen", FERRY_WAIT_KEY, 1, 0, 0, FERRY_WAKE_CHANGED},
    {"key, nothing since", FERRY_WAIT_KEY, 0, 0, 0, FERRY_WAKE_DEADLINE},
    {"offsets not reached, a commit unseen", FERRY_WAIT_OFFSETS, 1, 5, 9, FERRY_WAKE_DEADLINE},
    {"offsets not reached, nothing since", FERRY_WAIT_OFFSETS, 0, 5, 9, FERRY_WAKE_DEADLINE},
    {"offsets reached, nothing since", FERRY_WAIT_OFFSETS, 0, 10, 9, FERRY_WAKE_CHANGED},
    {"offsets reached, a commit unseen", FERRY_WAIT_OFFSETS, 1, 10, 9, FERRY_WAKE_CHANGED},
};

/* Parks a waiter with the seq it read before the commits it may have missed. */
static void test_stale_seq(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(stale_cases) / sizeof(stale_cases[0]); i++) {
        const struct stale_case *c = &stale_cases[i];
        uint64_t seq = ferry_table_watch_seq(&f->table);
        static struct probe pr; /* static: a failed case may leave it parked */
        int full;

        atomic_store(&f->parts[0].applied, c->applied);
        if (c->stale) /* a commit of the other partition */
            ferry_table_watch_committed(&f->table, NULL, NULL, 0, 0);
        probe_init(&pr, &f->table, c->kind);
        pr.offsets[0] = c->min;
        assert_int_equal(ferry_table_watch_park(f->w, &pr.waiter, seq, &full), 0);
        if (wait_woken(&pr) != (int)c->expect)
            fail_msg("%s: woken with %d, not %d", c->name, pr.why, (int)c->expect);
    }
}

/* max_waiters 1: the one parked read is woken by a rewrite of its key and parks again. */
static void test_park_again_keeps_its_place(void **state)
{
    struct fixture *f = *state;
    static struct probe first, second; /* static: a failure may leave them parked */
    const void *keys[] = {"k"};
    size_t lens[] = {1};
    int full, why;

    f->cfg.limits.max_waiters = 1;
    probe_init(&first, &f->table, FERRY_WAIT_KEY);
    probe_init(&second, &f->table, FERRY_WAIT_KEY);
    first.waiter.deadline.key = ferry_clock_ms() + WAKE_TIMEOUT_MS;
    first.other = &second;
    first.w = f->w;
    assert_int_equal(
        ferry_table_watch_park(f->w, &first.waiter, ferry_table_watch_seq(&f->table), &full), 0);
    ferry_table_watch_committed(&f->table, keys, lens, 1, 0);
    why = wait_woken(&first);
    if (first.other_parked) /* answered before the asserts */
        wait_woken(&second);
    assert_true(first.parked_again);
    assert_false(first.other_parked);
    assert_true(first.other_full);
    assert_int_equal(why, FERRY_WAKE_DEADLINE);
    assert_int_equal(ferry_table_watch_count(&f->table), 0);
}

/* A commit of keys not listed: every key waiter wakes, an offset waiter not yet reached stays. */
static void test_unlisted_keys_wake_every_key_waiter(void **state)
{
    struct fixture *f = *state;
    static struct probe a, b, offsets; /* static: a failure may leave them parked */
    struct probe *all[] = {&a, &b, &offsets};
    int full;

    probe_init(&a, &f->table, FERRY_WAIT_KEY);
    probe_init(&b, &f->table, FERRY_WAIT_KEY);
    b.waiter.key = "other";
    b.waiter.key_len = 5;
    probe_init(&offsets, &f->table, FERRY_WAIT_OFFSETS);
    offsets.offsets[1] = 3;
    a.waiter.deadline.key = b.waiter.deadline.key = ferry_clock_ms() + WAKE_TIMEOUT_MS;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        assert_int_equal(
            ferry_table_watch_park(f->w, &all[i]->waiter, ferry_table_watch_seq(&f->table), &full),
            0);
    assert_true(ferry_table_watch_wants_keys(&f->table));
    ferry_table_watch_committed(&f->table, NULL, NULL, 0, 1);
    assert_int_equal(wait_woken(&a), FERRY_WAKE_CHANGED);
    assert_int_equal(wait_woken(&b), FERRY_WAKE_CHANGED);
    assert_int_equal(wait_woken(&offsets), FERRY_WAKE_DEADLINE);
}

int main(void)
{
    ferry_clock_cond_init(&woken);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stale_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_again_keeps_its_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlisted_keys_wake_every_key_waiter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
