/*
 * test_retry_parked.c - the set of keys with records parked on retry topics
 * (src/route/retry_parked.c).
 *
 * A script of steps on one set: add, remove, count and first (the earliest parked offset of a
 * key), with keys that differ only after a NUL, the empty key, an offset counted twice, a full
 * set refusing one more record, clearing, and enough keys to grow the table several times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/retry_parked.h"

enum op { ADD, REMOVE, COUNT, FIRST, KEYS, RECORDS, CLEAR };

struct step {
    enum op op;
    const char *key;
    size_t len;
    int64_t offset; /* ADD, REMOVE */
    long want;      /* ADD: its result; REMOVE: left, or -1; COUNT; FIRST; KEYS; RECORDS */
};

#define K(s) s, sizeof(s) - 1

static const struct step steps[] = {
    {COUNT, K("a"), 0, 0},    {FIRST, K("a"), 0, -1},
    {ADD, K("a"), 20, 0},     {ADD, K("a"), 10, 0},
    {COUNT, K("a"), 0, 2},    {FIRST, K("a"), 0, 10},
    {ADD, K("a\0x"), 5, 0}, /* bytes after a NUL make another key */
    {COUNT, K("a\0x"), 0, 1}, {ADD, K(""), 7, 0},
    {KEYS, NULL, 0, 0, 3},    {RECORDS, NULL, 0, 0, 4},
    {ADD, K(""), 7, 0},   /* the same offset twice: parked again before the first was committed */
    {ADD, K("b"), 1, -1}, /* full: max_records is 5 */
    {ADD, K("a"), 30, -1},    {COUNT, K(""), 0, 2},
    {REMOVE, K("a"), 99, -1}, /* not parked at that offset */
    {REMOVE, K("a"), 10, 1},  {FIRST, K("a"), 0, 20},
    {REMOVE, K("a"), 20, 0},  {REMOVE, K("a"), 20, -1},
    {COUNT, K("a"), 0, 0},    {FIRST, K("a"), 0, -1},
    {KEYS, NULL, 0, 0, 2},    {REMOVE, K(""), 7, 1},
    {FIRST, K(""), 0, 7},     {ADD, K("b"), 1, 0}, /* room again */
    {KEYS, NULL, 0, 0, 3},    {CLEAR, NULL, 0, 0, 0},
    {KEYS, NULL, 0, 0, 0},    {RECORDS, NULL, 0, 0, 0},
    {ADD, K("b"), 2, 0},      {FIRST, K("b"), 0, 2},
};

static void test_script(void **state)
{
    ferry_retry_parked *s = ferry_retry_parked_new(5);
    long got = 0;

    (void)state;
    assert_non_null(s);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct step *st = &steps[i];
        switch (st->op) {
        case ADD:
            got = ferry_retry_parked_add(s, st->key, st->len, st->offset);
            break;
        case REMOVE:
            got = ferry_retry_parked_remove(s, st->key, st->len, st->offset);
            break;
        case COUNT:
            got = (long)ferry_retry_parked_count(s, st->key, st->len);
            break;
        case FIRST:
            got = (long)ferry_retry_parked_first(s, st->key, st->len);
            break;
        case KEYS:
            got = (long)ferry_retry_parked_keys(s);
            break;
        case RECORDS:
            got = (long)ferry_retry_parked_records(s);
            break;
        case CLEAR:
            ferry_retry_parked_clear(s);
            got = 0;
            break;
        }
        if (got != st->want)
            fail_msg("step %zu: got %ld, want %ld", i, got, st->want);
    }
    ferry_retry_parked_destroy(s);
}

/* Many keys: the table grows past its first size and every key is still found. */
static void test_many(void **state)
{
    ferry_retry_parked *s = ferry_retry_parked_new(5000);
    char key[32];
    int n;

    (void)state;
    for (int i = 0; i < 5000; i++) {
        n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(ferry_retry_parked_add(s, key, (size_t)n, i), 0);
    }
    assert_int_equal(ferry_retry_parked_add(s, "one more", 8, 0), -1);
    for (int i = 0; i < 5000; i += 7) {
        n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(ferry_retry_parked_count(s, key, (size_t)n), 1);
    }
    ferry_retry_parked_destroy(s);
    ferry_retry_parked_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
