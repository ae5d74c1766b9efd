/*
 * test_members.c - unit tests of the member map (src/table/members.c): who is live when, what
 * a heartbeat read back from history does, snapshots that outlive changes, and the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table/members.h"

#define TIMEOUT 5000

/* A heartbeat of instance sent at sent_ms, holding partition 3 of table t applied to applied. */
static struct ferry_heartbeat beat(const char *instance, int64_t sent_ms, int64_t applied)
{
    struct ferry_heartbeat hb = {.sent_ms = sent_ms};

    snprintf(hb.instance, sizeof(hb.instance), "%s", instance);
    snprintf(hb.url, sizeof(hb.url), "http://%s:8080", instance);
    hb.tables = calloc(1, sizeof(*hb.tables));
    assert_non_null(hb.tables);
    hb.count = 1;
    snprintf(hb.tables[0].name, sizeof(hb.tables[0].name), "t");
    hb.tables[0].parts = calloc(1, sizeof(*hb.tables[0].parts));
    assert_non_null(hb.tables[0].parts);
    hb.tables[0].count = 1;
    hb.tables[0].parts[0] = (struct ferry_heartbeat_partition){3, applied, applied, 1};
    return hb;
}

static int update(ferry_members *m, const char *instance, int64_t sent, int64_t applied,
                  int64_t now, int64_t age)
{
    struct ferry_heartbeat hb = beat(instance, sent, applied);
    int rc = ferry_members_update(m, &hb, now, age);
    ferry_heartbeat_release(&hb);
    return rc;
}

static size_t live(ferry_members *m, int64_t now, const char *want)
{
    const struct ferry_members_view *v = ferry_members_view_acquire(m, now);
    char names[256] = "";
    size_t n = v->count;

    for (size_t i = 0; i < v->count; i++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? "," : "",
                 v->names[i]);
    ferry_members_view_release(m, v);
    assert_string_equal(names, want);
    return n;
}

/* Members join on their first heartbeat and leave timeout after their last one. */
static void test_join_and_leave(void **state)
{
    ferry_members *m = ferry_members_new(TIMEOUT);

    (void)state;
    assert_non_null(m);
    live(m, 0, "");
    assert_int_equal(update(m, "web-2", 1000, 1, 1000, 0), 1);
    assert_int_equal(update(m, "web-1", 1000, 1, 1100, 0), 1);
    assert_int_equal(update(m, "web-2", 2000, 2, 2000, 0), 0);
    live(m, 2000, "web-1,web-2");
    live(m, 1100 + TIMEOUT - 1, "web-1,web-2");
    live(m, 1100 + TIMEOUT, "web-2");
    live(m, 2000 + TIMEOUT, "");
    assert_int_equal(update(m, "web-1", 9000, 3, 9000, 0), 1);
    live(m, 9000, "web-1");
    {
        struct ferry_heartbeat hb = beat("web-1", 9500, 3);
        hb.leaving = 1;
        assert_int_equal(ferry_members_update(m, &hb, 9500, 0), 0);
        ferry_heartbeat_release(&hb);
    }
    live(m, 9500, "");
    assert_int_equal(update(m, "web-1", 9600, 3, 9600, 0), 1);
    live(m, 9600, "web-1");
    ferry_members_destroy(m);
}

/* History read back at start (a heartbeat already older than the timeout) does not make a
 * member live; the heartbeat read last is kept, even when its sender's clock went back (one
 * that did was ignored until its clock passed the old time again). */
static void test_history(void **state)
{
    ferry_members *m = ferry_members_new(TIMEOUT);
    const struct ferry_members_view *v;

    (void)state;
    assert_int_equal(update(m, "old", 1000, 1, 50000, TIMEOUT + 1), 0);
    live(m, 50000, "");
    assert_int_equal(update(m, "web-1", 5000, 5, 50000, 10), 1);
    assert_int_equal(update(m, "web-1", 4000, 6, 50001, 10), 0);
    v = ferry_members_view_acquire(m, 50002);
    assert_int_equal(v->count, 1);
    assert_int_equal(ferry_members_find(v, "web-1")->hb.tables[0].parts[0].applied, 6);
    assert_null(ferry_members_find(v, "old"));
    ferry_members_view_release(m, v);
    ferry_members_destroy(m);
}

/* A snapshot stays as it was while the map changes, and after the map is gone. */
static void test_snapshot_outlives_changes(void **state)
{
    ferry_members *m = ferry_members_new(TIMEOUT);
    const struct ferry_members_view *v;

    (void)state;
    update(m, "web-1", 1000, 1, 1000, 0);
    v = ferry_members_view_acquire(m, 1000);
    update(m, "web-1", 2000, 2, 2000, 0);
    update(m, "web-2", 2000, 2, 2000, 0);
    live(m, 2000, "web-1,web-2");
    assert_int_equal(v->count, 1);
    assert_int_equal(v->members[0].hb.tables[0].parts[0].applied, 1);
    assert_int_equal(v->expires_ms, 1000 + TIMEOUT);
    ferry_members_destroy(m);
    assert_string_equal(v->names[0], "web-1");
    ferry_members_view_release(NULL, v);
}

/* The map keeps FERRY_MEMBERS_MAX members; more are refused until old ones are forgotten. */
/* A member forgotten after ten timeouts leaves no copy behind: the slot it vacated is
 * reused by the next new name. (The stale copy kept the moved member's tables, which were
 * freed twice: once when that member's next heartbeat replaced them, once by the new name.) */
static void test_forgotten_member_leaves_no_copy(void **state)
{
    ferry_members *m = ferry_members_new(TIMEOUT);
    int64_t later = 1000 + 10 * TIMEOUT;

    (void)state;
    assert_non_null(m);
    update(m, "a", 1000, 1, 1000, 0);
    update(m, "b", 1000, 1, 1000, 0);
    update(m, "c", 1000, 1, 1000, 0);
    update(m, "a", later, 2, later, 0);
    update(m, "c", later, 2, later, 0); /* b is forgotten: c moves into its slot */
    update(m, "c", later + 1, 3, later + 1, 0);
    assert_int_equal(update(m, "d", later + 1, 1, later + 1, 0), 1);
    live(m, later + 1, "a,c,d");
    ferry_members_destroy(m);
}

static void test_limit(void **state)
{
    ferry_members *m = ferry_members_new(TIMEOUT);
    char name[32];

    (void)state;
    for (int i = 0; i < FERRY_MEMBERS_MAX; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        assert_int_equal(update(m, name, 1000, 1, 1000, 0), 1);
    }
    assert_int_equal(update(m, "one-more", 1000, 1, 1000, 0), -1);
    assert_int_equal(update(m, "one-more", 1000, 1, 1000 + 10 * TIMEOUT, 0), 1);
    live(m, 1000 + 10 * TIMEOUT, "one-more");
    ferry_members_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_and_leave),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_snapshot_outlives_changes),
        cmocka_unit_test(test_forgotten_member_leaves_no_copy),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
