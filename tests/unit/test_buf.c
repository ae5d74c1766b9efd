/*
 * test_buf.c - the capped buffer: appends up to the cap and not past it, the contents kept
 * whole after a refused append, and growth that never allocates more than the cap allows
 * (a request body of a declared length takes that length, not the next power of two), and a
 * tail that keeps the last bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

struct append_case {
    size_t cap;
    size_t chunk; /* appended again and again */
    size_t times;
    size_t want_len;  /* after every append that fit */
    int want_failed;  /* some append did not fit */
    size_t max_alloc; /* the most the buffer may have allocated */
};

static const struct append_case append_cases[] = {
    {1000, 100, 10, 1000, 0, 1001},
    {1000, 100, 11, 1000, 1, 1001},
    {1000, 300, 4, 900, 1, 1001},
    {1 << 20, 16384, 64, 1 << 20, 0, (1 << 20) + 1},
    {(1 << 20) - 1, 16384, 64, (1 << 20) - 16384, 1, 1 << 20},
    {5, 1, 5, 5, 0, 6},
    {0, 1, 1, 0, 1, 0},
    {100000, 7, 10, 70, 0, 128},
};

static void test_appends_and_growth(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(append_cases) / sizeof(append_cases[0]); i++) {
        const struct append_case *c = &append_cases[i];
        struct ferry_buf b;
        char chunk[16384];
        int failed = 0;

        memset(chunk, 'x', sizeof(chunk));
        ferry_buf_init(&b, c->cap);
        for (size_t t = 0; t < c->times; t++)
            if (ferry_buf_add(&b, chunk, c->chunk))
                failed = 1;
        assert_int_equal(b.len, c->want_len);
        assert_int_equal(failed, c->want_failed);
        assert_true(b.alloc <= c->max_alloc);
        if (b.data)
            assert_int_equal(b.data[b.len], '\0');
        ferry_buf_release(&b);
    }
}

static void test_refused_append_keeps_contents(void **state)
{
    struct ferry_buf b;
    (void)state;

    ferry_buf_init(&b, 8);
    assert_int_equal(ferry_buf_adds(&b, "kafka"), 0);
    assert_int_equal(ferry_buf_adds(&b, "ferry"), -1);
    assert_string_equal(b.data, "kafka");
    assert_int_equal(ferry_buf_adds(&b, "123"), 0);
    assert_string_equal(b.data, "kafka123");
    assert_true(b.alloc <= 9);
    ferry_buf_release(&b);
}

struct tail_case {
    const char *text;
    size_t keep;
    const char *want;
};

static const struct tail_case tail_cases[] = {
    {"kafkaferry", 5, "ferry"},       {"kafkaferry", 0, ""}, {"kafkaferry", 10, "kafkaferry"},
    {"kafkaferry", 11, "kafkaferry"}, {"", 3, ""},
};

/* What the tail keeps, terminated, and that the buffer takes appends afterwards. */
static void test_tail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tail_cases) / sizeof(tail_cases[0]); i++) {
        const struct tail_case *c = &tail_cases[i];
        struct ferry_buf b;

        ferry_buf_init(&b, 64);
        assert_int_equal(ferry_buf_adds(&b, c->text), 0);
        ferry_buf_tail(&b, c->keep);
        assert_int_equal(b.len, strlen(c->want));
        if (b.data)
            assert_string_equal(b.data, c->want);
        assert_int_equal(ferry_buf_adds(&b, "!"), 0);
        assert_int_equal(b.data[b.len - 1], '!');
        ferry_buf_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_and_growth),
        cmocka_unit_test(test_refused_append_keeps_contents),
        cmocka_unit_test(test_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
