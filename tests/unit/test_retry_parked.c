/*
 * test_retry_parked.c - the set of keys with records parked on retry topics
 * (src/route/retry_parked.c).
 *
 * A script of steps on one set: add, remove, count, with keys that differ only after a NUL,
 * the empty key, a full set refusing a new key but counting a known one, and enough keys to
 * grow the table several times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/retry_parked.h"

enum op { ADD, REMOVE, COUNT, KEYS };

struct step {
    enum op op;
    const char *key;
    size_t len;
    long want; /* ADD: its result; REMOVE: left, or -1; COUNT: count; KEYS: keys */
};

#define K(s) s, sizeof(s) - 1

static const struct step steps[] = {
    {COUNT, K("a"), 0},    {ADD, K("a"), 0},    {ADD, K("a"), 0},
    {COUNT, K("a"), 2},    {ADD, K("a\0x"), 0}, /* bytes after a NUL make another key */
    {COUNT, K("a\0x"), 1}, {ADD, K(""), 0},     {KEYS, NULL, 0, 3},
    {ADD, K("b"), -1}, /* full: max_keys is 3 */
    {ADD, K(""), 0},   /* a known key still counts */
    {COUNT, K(""), 2},     {REMOVE, K("a"), 1}, {REMOVE, K("a"), 0},
    {REMOVE, K("a"), -1},  {COUNT, K("a"), 0},  {KEYS, NULL, 0, 2},
    {ADD, K("b"), 0}, /* room again */
    {KEYS, NULL, 0, 3},
};

static void test_script(void **state)
{
    ferry_retry_parked *s = ferry_retry_parked_new(3);
    long got = 0;

    (void)state;
    assert_non_null(s);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct step *st = &steps[i];
        switch (st->op) {
        case ADD:
            got = ferry_retry_parked_add(s, st->key, st->len);
            break;
        case REMOVE:
            got = ferry_retry_parked_remove(s, st->key, st->len);
            break;
        case COUNT:
            got = (long)ferry_retry_parked_count(s, st->key, st->len);
            break;
        case KEYS:
            got = (long)ferry_retry_parked_keys(s);
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
        assert_int_equal(ferry_retry_parked_add(s, key, (size_t)n), 0);
    }
    assert_int_equal(ferry_retry_parked_add(s, "one more", 8), -1);
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
