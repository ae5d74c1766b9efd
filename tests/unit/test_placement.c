/*
 * test_placement.c - unit tests of rendezvous placement (src/table/placement.c).
 *
 * Placement must be the same on every instance, give each partition R distinct holders,
 * spread partitions evenly, and move few partitions when a member joins or leaves: the
 * properties partitioned tables rely on, checked over 30 and 300 partitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "table/placement.h"

#define PARTS 300

static const char *const five[] = {"web-1", "web-2", "web-3", "web-4", "web-5"};

/* Whether each partition's holder set (as names) is the same for two member lists. */
static int same_holders(const char *const *a, size_t na, const char *const *b, size_t nb, int32_t p,
                        size_t r)
{
    size_t ha[FERRY_PLACEMENT_MAX_REPLICAS], hb[FERRY_PLACEMENT_MAX_REPLICAS];
    size_t ca = ferry_placement_holders("t", p, a, na, r, ha);
    size_t cb = ferry_placement_holders("t", p, b, nb, r, hb);

    if (ca != cb)
        return 0;
    for (size_t i = 0; i < ca; i++)
        if (strcmp(a[ha[i]], b[hb[i]]) != 0)
            return 0;
    return 1;
}

/* Fixed weights (computed by a separate Python reference of FNV-1a + splitmix64): a change of
 * the hash would move every partition of every running cluster during an upgrade, so it must
 * be deliberate. */
static void test_weights_are_stable(void **state)
{
    (void)state;
    assert_int_equal(ferry_placement_weight("prices", 0, "web-1"), 0xd4378850021fb0baULL);
    assert_int_equal(ferry_placement_weight("prices", 29, "web-2"), 0x6de296dd52fd7c5cULL);
    assert_int_equal(ferry_placement_weight("prices", 0, "web-1"),
                     ferry_placement_weight("prices", 0, "web-1"));
    assert_true(ferry_placement_weight("prices", 0, "web-1") !=
                ferry_placement_weight("prices", 1, "web-1"));
    assert_true(ferry_placement_weight("prices", 0, "web-1") !=
                ferry_placement_weight("prices", 0, "web-2"));
    assert_true(ferry_placement_weight("a", 0, "bc") != ferry_placement_weight("ab", 0, "c"));
}

/* Holders are distinct, as many as asked (or as there are members), and in weight order. */
static void test_holders_count_and_order(void **state)
{
    static const struct {
        size_t members, replicas, want;
    } cases[] = {{5, 2, 2}, {5, 1, 1}, {5, 5, 5}, {5, 9, 5}, {1, 2, 1}, {0, 2, 0}, {3, 0, 0}};
    size_t h[FERRY_PLACEMENT_MAX_REPLICAS];

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (int32_t p = 0; p < 30; p++) {
            size_t n =
                ferry_placement_holders("t", p, five, cases[c].members, cases[c].replicas, h);
            assert_int_equal(n, cases[c].want);
            for (size_t i = 1; i < n; i++) {
                assert_true(h[i] != h[i - 1]);
                assert_true(ferry_placement_weight("t", p, five[h[i - 1]]) >=
                            ferry_placement_weight("t", p, five[h[i]]));
            }
        }
    }
}

/* The members' order in the list does not change who holds what. */
static void test_order_of_members_does_not_matter(void **state)
{
    static const char *const shuffled[] = {"web-4", "web-1", "web-5", "web-3", "web-2"};

    (void)state;
    for (int32_t p = 0; p < PARTS; p++)
        assert_true(same_holders(five, 5, shuffled, 5, p, 2));
}

/* With 5 members and R = 2, each member holds about 2/5 of 300 partitions. */
static void test_spread(void **state)
{
    size_t held[5] = {0}, h[2];

    (void)state;
    for (int32_t p = 0; p < PARTS; p++) {
        size_t n = ferry_placement_holders("t", p, five, 5, 2, h);
        for (size_t i = 0; i < n; i++)
            held[h[i]]++;
    }
    for (size_t m = 0; m < 5; m++) {
        assert_true(held[m] > 120 * 7 / 10);
        assert_true(held[m] < 120 * 13 / 10);
    }
}

/* A member leaving moves only the partitions it held; one joining takes about R/N of them
 * and moves nothing else. */
static void test_few_partitions_move(void **state)
{
    size_t moved_leave = 0, moved_join = 0, h[2];

    (void)state;
    for (int32_t p = 0; p < PARTS; p++) {
        int held_by_5 = ferry_placement_holds("t", p, five, 5, 2, 4);
        if (!same_holders(five, 5, five, 4, p, 2)) {
            moved_leave++;
            assert_true(held_by_5);
        }
        if (!same_holders(five, 4, five, 5, p, 2)) {
            moved_join++;
            assert_true(held_by_5);
            assert_int_equal(ferry_placement_holders("t", p, five, 5, 2, h), 2);
        }
    }
    assert_true(moved_leave < PARTS * 2 / 5 * 13 / 10);
    assert_true(moved_join > PARTS * 2 / 5 * 7 / 10);
    assert_int_equal(moved_leave, moved_join);
}

/* ferry_placement_holds agrees with ferry_placement_holders, and every partition has two. */
static void test_holds(void **state)
{
    size_t h[2], holders_seen = 0;

    (void)state;
    for (int32_t p = 0; p < 30; p++) {
        size_t n = ferry_placement_holders("t", p, five, 5, 2, h);
        for (size_t m = 0; m < 5; m++) {
            int want = (n > 0 && h[0] == m) || (n > 1 && h[1] == m);
            assert_int_equal(ferry_placement_holds("t", p, five, 5, 2, m), want);
            holders_seen += (size_t)want;
        }
    }
    assert_int_equal(holders_seen, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_are_stable),
        cmocka_unit_test(test_holders_count_and_order),
        cmocka_unit_test(test_order_of_members_does_not_matter),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_few_partitions_move),
        cmocka_unit_test(test_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
