/*
 * test_header_last.c - unit tests of which header is the last of its name
 * (src/route/header_last.c): a table of small header lists, then lists past the small size
 * (the sorted path) checked against the plain definition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "route/header_last.h"

struct last_case {
    const char *names; /* space-separated header names */
    int fold_case;
    const char *want; /* one '1' or '0' per header */
};

static const struct last_case last_cases[] = {
    {"", 0, ""},
    {"a", 0, "1"},
    {"a b c", 0, "111"},
    {"a a", 0, "01"},
    {"a b a c a", 0, "01011"},
    {"X-A x-a", 0, "11"},
    {"X-A x-a", 1, "01"},
    {"x-a X-B X-a x-b", 1, "0011"},
};

/* Headers named after the words of names; every value is "v". */
static rd_kafka_headers_t *headers_of(const char *names)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    char copy[256], *save = NULL;

    snprintf(copy, sizeof(copy), "%s", names);
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save))
        rd_kafka_header_add(h, w, -1, "v", 1);
    return h;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(last_cases) / sizeof(last_cases[0]); i++) {
        const struct last_case *c = &last_cases[i];
        rd_kafka_headers_t *h = headers_of(c->names);
        struct ferry_header_last l;
        char got[64] = "";

        assert_int_equal(ferry_header_last_init(&l, h, c->fold_case), 0);
        for (size_t j = 0; j < l.n; j++)
            got[j] = ferry_header_last_is(&l, j) ? '1' : '0';
        if (strcmp(got, c->want) != 0)
            fail_msg("'%s' (fold %d): got %s, want %s", c->names, c->fold_case, got, c->want);
        assert_false(ferry_header_last_is(&l, l.n));
        ferry_header_last_release(&l);
        rd_kafka_headers_destroy(h);
    }
}

static void test_no_headers(void **state)
{
    struct ferry_header_last l;

    (void)state;
    assert_int_equal(ferry_header_last_init(&l, NULL, 0), 0);
    assert_int_equal(l.n, 0);
    assert_false(ferry_header_last_is(&l, 0));
    ferry_header_last_release(&l);
}

/* n headers with names from a few distinct ones in mixed case, marked both ways and compared
 * with "no later header has the same name". */
static void check_many(size_t n, size_t distinct, int fold_case)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(n);
    struct ferry_header_last l;
    char name[32];

    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s-%zu", (i * 7) % 3 ? "name" : "NAME", (i * 31) % distinct);
        rd_kafka_header_add(h, name, -1, NULL, 0);
    }
    assert_int_equal(ferry_header_last_init(&l, h, fold_case), 0);
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++) {
        const char *a, *b;
        const void *v;
        size_t size;
        int later = 0;

        rd_kafka_header_get_all(h, i, &a, &v, &size);
        for (size_t j = i + 1; !later && j < n; j++) {
            rd_kafka_header_get_all(h, j, &b, &v, &size);
            later = fold_case ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
        }
        if (ferry_header_last_is(&l, i) == later)
            fail_msg("n %zu, fold %d: header %zu (%s) marked %d", n, fold_case, i, a,
                     ferry_header_last_is(&l, i));
    }
    ferry_header_last_release(&l);
    rd_kafka_headers_destroy(h);
}

static void test_many(void **state)
{
    static const size_t sizes[] = {FERRY_HEADER_LAST_SMALL, FERRY_HEADER_LAST_SMALL + 1, 500};

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_many(sizes[i], 7, 0);
        check_many(sizes[i], 7, 1);
        check_many(sizes[i], sizes[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_no_headers),
        cmocka_unit_test(test_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
