/*
 * test_stage.c - a write transaction's records, held and visited in key order
 * (src/table/stage.c).
 *
 * Cases: records come out in key byte order, shorter keys before their extensions, the empty
 * key first, and records of one key in the order they were added (the last one must win in the
 * store); values, tombstones, content types and coordinates come back as given, the caller's
 * buffers reused between adds; the record and byte limits refuse a record and leave the stage
 * unchanged; a flush stopped by its callback empties the stage; the stage is reused after a
 * flush and after a clear that gives its memory back; a flush as added visits the records in
 * the order they came.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "table/stage.h"

#define SEEN_MAX 16

struct seen {
    char keys[SEEN_MAX][32];
    char values[SEEN_MAX][32]; /* "(null)" for a tombstone */
    char types[SEEN_MAX][32];  /* "" for none */
    int64_t offsets[SEEN_MAX];
    int32_t partitions[SEEN_MAX];
    int64_t timestamps[SEEN_MAX];
    int n;
    int stop_at; /* the callback returns nonzero on this record (1-based), 0: never */
};

static int visit(void *arg, const struct ferry_table_record *rec)
{
    struct seen *s = arg;

    assert_true(s->n < SEEN_MAX);
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)rec->key_len, (const char *)rec->key);
    if (rec->value)
        snprintf(s->values[s->n], sizeof(s->values[0]), "%.*s", (int)rec->value_len,
                 (const char *)rec->value);
    else
        snprintf(s->values[s->n], sizeof(s->values[0]), "(null)");
    snprintf(s->types[s->n], sizeof(s->types[0]), "%s", rec->content_type ? rec->content_type : "");
    s->offsets[s->n] = rec->offset;
    s->partitions[s->n] = rec->partition;
    s->timestamps[s->n] = rec->timestamp_ms;
    s->n++;
    return s->stop_at && s->n == s->stop_at;
}

/* Adds key=value (value NULL: a tombstone) from a scratch buffer that is overwritten after. */
static int add(ferry_table_stage *st, const char *key, const char *value, int64_t offset)
{
    char kbuf[32], vbuf[32];
    struct ferry_table_record rec = {.key = kbuf,
                                     .key_len = strlen(key),
                                     .value = value ? vbuf : NULL,
                                     .value_len = value ? strlen(value) : 0,
                                     .content_type = offset % 2 ? "text/plain" : NULL,
                                     .partition = (int32_t)(offset % 3),
                                     .offset = offset,
                                     .timestamp_ms = 1000 + offset};
    int r;

    memcpy(kbuf, key, strlen(key));
    if (value)
        memcpy(vbuf, value, strlen(value));
    r = ferry_table_stage_add(st, &rec);
    memset(kbuf, 'X', sizeof(kbuf));
    memset(vbuf, 'X', sizeof(vbuf));
    return r;
}

struct order_case {
    const char *key, *value; /* as added */
    int64_t offset;
};

static const struct order_case added[] = {
    {"b", "b1", 0}, {"ab", "ab", 1}, {"a", "a1", 2}, {"", "empty", 3},
    {"b", NULL, 4}, {"a", "a2", 5},  {"c", "c", 6},  {"b", "b3", 7},
};

/* Expected visit order: key bytes, shorter first, then the order added. */
static const struct order_case visited[] = {
    {"", "empty", 3}, {"a", "a1", 2}, {"a", "a2", 5}, {"ab", "ab", 1},
    {"b", "b1", 0},   {"b", NULL, 4}, {"b", "b3", 7}, {"c", "c", 6},
};

static void test_order(void **state)
{
    ferry_table_stage *st = ferry_table_stage_new(100, 1024);
    struct seen s = {0};
    size_t n = sizeof(added) / sizeof(added[0]);

    (void)state;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(add(st, added[i].key, added[i].value, added[i].offset), 0);
    assert_int_equal(ferry_table_stage_count(st), n);
    assert_int_equal(ferry_table_stage_flush(st, visit, &s), 0);
    assert_int_equal(s.n, (int)n);
    for (size_t i = 0; i < n; i++) {
        int64_t off = visited[i].offset;
        assert_string_equal(s.keys[i], visited[i].key);
        assert_string_equal(s.values[i], visited[i].value ? visited[i].value : "(null)");
        assert_int_equal(s.offsets[i], off);
        assert_int_equal(s.partitions[i], off % 3);
        assert_int_equal(s.timestamps[i], 1000 + off);
        assert_string_equal(s.types[i], off % 2 ? "text/plain" : "");
    }
    assert_int_equal(ferry_table_stage_count(st), 0);
    ferry_table_stage_destroy(st);
}

/* As added, with a stop: what comes before the stop is a prefix of each partition's offsets,
 * and the bytes held are the keys, values and content types (with their NULs). */
static void test_flush_as_added(void **state)
{
    ferry_table_stage *st = ferry_table_stage_new(100, 1024);
    size_t n = sizeof(added) / sizeof(added[0]), bytes = 0;
    struct seen s = {.stop_at = 5};

    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(add(st, added[i].key, added[i].value, added[i].offset), 0);
        bytes += strlen(added[i].key) + (added[i].value ? strlen(added[i].value) : 0) +
                 (added[i].offset % 2 ? sizeof("text/plain") : 0);
    }
    assert_int_equal(ferry_table_stage_bytes(st), bytes);
    assert_int_not_equal(ferry_table_stage_flush_as_added(st, visit, &s), 0);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < s.n; i++) {
        assert_string_equal(s.keys[i], added[i].key);
        assert_int_equal(s.offsets[i], added[i].offset);
    }
    assert_int_equal(ferry_table_stage_count(st), 0);
    assert_int_equal(ferry_table_stage_bytes(st), 0);
    ferry_table_stage_destroy(st);
}

struct limit_case {
    size_t max_records, max_bytes;
    const char *keys[4]; /* added in turn, values "v" */
    int want[4];         /* each add's result */
};

static const struct limit_case limits[] = {
    {2, 1024, {"a", "b", "c", NULL}, {0, 0, -1}},  /* the record limit */
    {100, 6, {"aa", "bb", "c", NULL}, {0, 0, -1}}, /* 3 + 3 bytes fit; a 7th does not */
    {100, 2, {"abc", NULL}, {-1}},                 /* larger than an empty stage holds */
    {1, 1024, {"x", "y", NULL}, {0, -1}},          /* one record at a time */
};

static void test_limits(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(limits) / sizeof(limits[0]); c++) {
        const struct limit_case *lc = &limits[c];
        ferry_table_stage *st = ferry_table_stage_new(lc->max_records, lc->max_bytes);
        struct seen s = {0};
        int kept = 0;

        for (int i = 0; i < 4 && lc->keys[i]; i++) {
            assert_int_equal(add(st, lc->keys[i], "v", 2 * i), lc->want[i]); /* no type */
            kept += lc->want[i] == 0;
        }
        /* a refused record left the stage as it was */
        assert_int_equal(ferry_table_stage_count(st), (size_t)kept);
        assert_int_equal(ferry_table_stage_flush(st, visit, &s), 0);
        assert_int_equal(s.n, kept);
        for (int i = 0; i < kept; i++)
            assert_string_equal(s.keys[i], lc->keys[i]);
        ferry_table_stage_destroy(st);
    }
}

static void test_stopped_flush_and_reuse(void **state)
{
    ferry_table_stage *st = ferry_table_stage_new(100, 1024);
    struct seen s = {.stop_at = 2};

    (void)state;
    assert_int_equal(add(st, "c", "3", 0), 0);
    assert_int_equal(add(st, "a", "1", 1), 0);
    assert_int_equal(add(st, "b", "2", 2), 0);
    assert_int_not_equal(ferry_table_stage_flush(st, visit, &s), 0);
    assert_int_equal(s.n, 2); /* "a", "b", and "c" dropped */
    assert_int_equal(ferry_table_stage_count(st), 0);

    memset(&s, 0, sizeof(s));
    assert_int_equal(add(st, "z", "26", 3), 0);
    assert_int_equal(ferry_table_stage_flush(st, visit, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0], "z");

    assert_int_equal(add(st, "q", "17", 4), 0);
    ferry_table_stage_clear(st, 1); /* gives its memory back */
    assert_int_equal(ferry_table_stage_count(st), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(add(st, "m", "13", 5), 0);
    assert_int_equal(ferry_table_stage_flush(st, visit, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.values[0], "13");
    ferry_table_stage_destroy(st);
    ferry_table_stage_destroy(NULL);
}

/* Enough records to grow the entries and the bytes several times: all come back sorted. */
static int check_sorted(void *arg, const struct ferry_table_record *rec)
{
    char *last = arg;
    char key[16];

    snprintf(key, sizeof(key), "%.*s", (int)rec->key_len, (const char *)rec->key);
    assert_true(strcmp(last, key) < 0);
    assert_int_equal(rec->value_len, rec->key_len);
    assert_memory_equal(rec->value, rec->key, rec->key_len);
    strcpy(last, key);
    return 0;
}

static void test_many(void **state)
{
    ferry_table_stage *st = ferry_table_stage_new(50000, 1 << 20);
    char key[16], last[16] = "";

    (void)state;
    for (long i = 0; i < 50000; i++) {
        long k = (i * 7919) % 50000; /* every number once, in no order */
        struct ferry_table_record rec = {0};
        int len = snprintf(key, sizeof(key), "k%06ld", k);
        rec.key = rec.value = key;
        rec.key_len = rec.value_len = (size_t)len;
        assert_int_equal(ferry_table_stage_add(st, &rec), 0);
    }
    assert_int_equal(ferry_table_stage_count(st), 50000);
    assert_int_equal(ferry_table_stage_flush(st, check_sorted, last), 0);
    assert_string_equal(last, "k049999");
    ferry_table_stage_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stopped_flush_and_reuse),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_flush_as_added),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
