/*
 * test_sse.c - the text of a table subscription's Server-Sent Events (src/table/sse.c).
 *
 * A table of rows and the exact events they become: ids "<partition>:<offset>-<hash of the
 * value>", JSON values embedded on one line whatever their line breaks, other values and keys
 * that are not UTF-8 as base64; deletes with and without an id; the control events; and a
 * buffer cap that leaves the buffer as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "table/etag.h"
#include "table/sse.h"

struct put_case {
    const char *name;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    const char *want;
};

static const struct put_case put_cases[] = {
    {"a JSON value", "AAPL", 4, "{\"price\":1}", 11, 3, 17,
     "id: 3:17-b39b3e3f\nevent: put\ndata: "
     "{\"key\":\"AAPL\",\"value\":{\"price\":1},\"partition\":3,"
     "\"offset\":17}\n\n"},
    {"a JSON value over lines", "k", 1, "{\r\n  \"a\": \"x y\",\n  \"b\": [1, 2]\n}\n", 33, 0, 0,
     "id: 0:0-82107ae0\nevent: put\ndata: {\"key\":\"k\",\"value\":{\"a\":\"x y\",\"b\":[1,2]},"
     "\"partition\":0,\"offset\":0}\n\n"},
    {"text that is not JSON", "k", 1, "line one\nline two", 17, 1, 2,
     "id: 1:2-5cb7d5d2\nevent: put\ndata: {\"key\":\"k\",\"value\":\"bGluZSBvbmUKbGluZSB0d28=\","
     "\"value_encoding\":\"base64\",\"partition\":1,\"offset\":2}\n\n"},
    {"a binary key", "\xff\x00", 2, "1", 1, 29, 123456789012,
     "id: 29:123456789012-7ab877e8\nevent: put\ndata: "
     "{\"key\":\"/wA=\",\"key_encoding\":\"base64\","
     "\"value\":1,\"partition\":29,\"offset\":123456789012}\n\n"},
    {"a key with a line break", "a\nb", 3, "\"s\"", 3, 0, 5,
     "id: 0:5-3f394fdd\nevent: put\ndata: {\"key\":\"a\\nb\",\"value\":\"s\",\"partition\":0,"
     "\"offset\":5}\n\n"},
    {"an empty value", "k", 1, "", 0, 0, 6,
     "id: 0:6-9e6a7899\nevent: put\ndata: "
     "{\"key\":\"k\",\"value\":\"\",\"value_encoding\":\"base64\","
     "\"partition\":0,\"offset\":6}\n\n"},
};

static void test_put_events(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(put_cases) / sizeof(put_cases[0]); i++) {
        const struct put_case *c = &put_cases[i];
        struct ferry_store_entry e = {.key = c->key,
                                      .key_len = c->key_len,
                                      .value = c->value,
                                      .value_len = c->value_len,
                                      .row = {.partition = c->partition, .offset = c->offset}};
        struct ferry_buf out;
        uint32_t hash = 0;

        print_message("put case: %s\n", c->name);
        ferry_buf_init(&out, 4096);
        assert_int_equal(ferry_sse_put(&out, &e, &hash), 0);
        assert_string_equal(out.data, c->want);
        assert_int_equal(hash, ferry_etag_hash(c->value, c->value_len));
        ferry_buf_release(&out);
    }
}

static void test_delete_sync_and_notices(void **state)
{
    struct ferry_buf out;

    (void)state;
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_sse_delete(&out, "AAPL", 4, 3, 18), 0);
    assert_int_equal(ferry_sse_delete(&out, "\xfe", 1, -1, 0), 0);
    assert_int_equal(ferry_sse_sync(&out, 42), 0);
    assert_int_equal(ferry_sse_notice(&out, "error", "slow", "queue \"full\""), 0);
    assert_string_equal(out.data,
                        "id: 3:18-00000000\nevent: delete\ndata: {\"key\":\"AAPL\",\"partition\":3,"
                        "\"offset\":18}\n\n"
                        "event: delete\ndata: {\"key\":\"/g==\",\"key_encoding\":\"base64\"}\n\n"
                        "event: sync\ndata: {\"keys\":42}\n\n"
                        "event: error\ndata: {\"reason\":\"slow\",\"message\":\"queue "
                        "\\\"full\\\"\"}\n\n");
    ferry_buf_release(&out);
}

/* Two values written at the same place (a topic recreated) have different ids. */
static void test_same_place_another_value(void **state)
{
    struct ferry_store_entry e = {.key = "AAPL",
                                  .key_len = 4,
                                  .value = "{\"price\":1}",
                                  .value_len = 11,
                                  .row = {.partition = 3, .offset = 17}};
    struct ferry_buf out;

    (void)state;
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_sse_put(&out, &e, NULL), 0);
    e.value = "{\"price\":2}";
    assert_int_equal(ferry_sse_put(&out, &e, NULL), 0);
    assert_non_null(strstr(out.data, "id: 3:17-b39b3e3f\n"));
    assert_non_null(strstr(out.data, "id: 3:17-f4b468a1\n"));
    ferry_buf_release(&out);
}

static void test_cap_leaves_the_buffer_as_it_was(void **state)
{
    struct ferry_store_entry e = {.key = "k", .key_len = 1, .value = "[1,2,3]", .value_len = 7};
    struct ferry_buf out;

    (void)state;
    ferry_buf_init(&out, 40);
    assert_int_equal(ferry_sse_sync(&out, 1), 0);
    assert_int_equal(ferry_sse_put(&out, &e, NULL), -1);
    assert_string_equal(out.data, "event: sync\ndata: {\"keys\":1}\n\n");
    assert_int_equal(ferry_sse_notice(&out, "shutdown", "shutdown", "ferry is shutting down"), -1);
    assert_int_equal(out.len, strlen("event: sync\ndata: {\"keys\":1}\n\n"));
    ferry_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_events),
        cmocka_unit_test(test_delete_sync_and_notices),
        cmocka_unit_test(test_same_place_another_value),
        cmocka_unit_test(test_cap_leaves_the_buffer_as_it_was),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
