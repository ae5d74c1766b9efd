/*
 * test_heartbeat.c - unit tests of the members' heartbeats (src/table/heartbeat.c): what is
 * written reads back the same, and every kind of bad heartbeat is refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "table/heartbeat.h"

static void test_round_trip(void **state)
{
    struct ferry_heartbeat_partition parts[] = {{7, 40, 96, 0}, {0, 1882, 1882, 1}};
    struct ferry_heartbeat_table tables[] = {{.name = "prices", .parts = parts, .count = 2},
                                             {.name = "\"quoted\" \xc3\xa9", .count = 0}};
    struct ferry_heartbeat hb = {.instance = "web-1",
                                 .url = "http://10.0.0.5:8080",
                                 .sent_ms = 1733300000000,
                                 .tables = tables,
                                 .count = 2},
                           back;
    const struct ferry_heartbeat_partition *p;
    struct ferry_buf out;
    char err[256];

    (void)state;
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_heartbeat_encode(&hb, &out), 0);
    assert_string_equal(out.data,
                        "{\"v\":1,\"instance\":\"web-1\",\"url\":\"http://10.0.0.5:8080\","
                        "\"sent_ms\":1733300000000,\"tables\":[{\"name\":\"prices\","
                        "\"partitions\":[[7,40,96,0],[0,1882,1882,1]]},{\"name\":"
                        "\"\\\"quoted\\\" \xc3\xa9\",\"partitions\":[]}]}");
    assert_int_equal(ferry_heartbeat_decode(out.data, out.len, &back, err, sizeof(err)), 0);
    assert_string_equal(back.instance, "web-1");
    assert_string_equal(back.url, "http://10.0.0.5:8080");
    assert_int_equal(back.sent_ms, 1733300000000);
    assert_int_equal(back.count, 2);
    assert_string_equal(back.tables[1].name, "\"quoted\" \xc3\xa9");
    p = ferry_heartbeat_partition(ferry_heartbeat_table(&back, "prices"), 7);
    assert_non_null(p);
    assert_int_equal(p->applied, 40);
    assert_int_equal(p->end, 96);
    assert_int_equal(p->serving, 0);
    p = ferry_heartbeat_partition(ferry_heartbeat_table(&back, "prices"), 0);
    assert_non_null(p);
    assert_int_equal(p->serving, 1);
    assert_null(ferry_heartbeat_partition(ferry_heartbeat_table(&back, "prices"), 1));
    assert_null(ferry_heartbeat_table(&back, "other"));
    assert_false(back.leaving);
    ferry_heartbeat_release(&back);
    out.len = 0;
    hb.leaving = 1;
    hb.count = 0;
    assert_int_equal(ferry_heartbeat_encode(&hb, &out), 0);
    assert_non_null(strstr(out.data, "],\"leaving\":true}"));
    assert_int_equal(ferry_heartbeat_decode(out.data, out.len, &back, err, sizeof(err)), 0);
    assert_true(back.leaving);
    ferry_heartbeat_release(&back);
    ferry_buf_release(&out);
}

/* A buffer too small leaves nothing behind. */
static void test_encode_cap(void **state)
{
    struct ferry_heartbeat hb = {.instance = "web-1", .url = "http://x", .sent_ms = 1};
    struct ferry_buf out;

    (void)state;
    ferry_buf_init(&out, 20);
    assert_int_equal(ferry_buf_adds(&out, "abc"), 0);
    assert_int_equal(ferry_heartbeat_encode(&hb, &out), -1);
    assert_int_equal(out.len, 3);
    ferry_buf_release(&out);
}

static void test_bad(void **state)
{
    static const struct {
        const char *json, *why;
    } cases[] = {
        {"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"v\":1,\"instance\":\"a\"}", "needs v"},
        {"{\"v\":2,\"instance\":\"a\",\"sent_ms\":1}", "v: out of range"},
        {"{\"v\":1,\"instance\":\"\",\"sent_ms\":1}", "needs v"},
        /* a second, empty instance was taken (found by fuzz_heartbeat) */
        {"{\"v\":1,\"instance\":\"a\",\"instance\":\"\",\"sent_ms\":1}", "needs v"},
        {"{\"v\":1,\"instance\":7,\"sent_ms\":1}", "instance: expected a string"},
        {"{\"v\":1,\"instance\":\"a\\u0000b\",\"sent_ms\":1}", "NUL"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":-1}", "sent_ms: out of range"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1.5}", "sent_ms: expected an integer"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":{}}", "tables: expected an array"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{}]}", "no name"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\"},{\"name\":\"t\"}]"
         "}",
         "listed twice"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[],\"tables\":[]}", "listed twice"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[[1,"
         "2,3]]}]}",
         "expected [partition"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[[1,"
         "2,3,0,5]]}]}",
         "more than 4"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[[1,"
         "2,3,2]]}]}",
         "out of range"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[[-"
         "1,2,3,0]]}]}",
         "out of range"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[[1,"
         "2,3,0],[1,5,6,1]]}]}",
         "listed twice"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"tables\":[{\"name\":\"t\",\"partitions\":[],"
         "\"partitions\":[]}]}",
         "listed twice"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1} x", "not a JSON object"},
        {"{\"v\":1,\"instance\":\"a\",\"sent_ms\":1,\"leaving\":1}", "leaving: expected true"},
    };
    struct ferry_heartbeat hb;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        int rc =
            ferry_heartbeat_decode(cases[i].json, strlen(cases[i].json), &hb, err, sizeof(err));
        ferry_heartbeat_release(&hb);
        if (rc != -1 || !strstr(err, cases[i].why))
            fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err, cases[i].why);
    }
}

/* Names up to the limit are read; one byte more is refused. Unknown members are skipped. */
static void test_limits_and_unknown(void **state)
{
    char json[1024], name[FERRY_HEARTBEAT_NAME_MAX + 2];
    struct ferry_heartbeat hb;
    char err[256];

    (void)state;
    memset(name, 'n', sizeof(name) - 1);
    name[FERRY_HEARTBEAT_NAME_MAX] = '\0';
    snprintf(json, sizeof(json),
             "{\"later\":{\"x\":[1]},\"v\":1,\"instance\":\"%s\",\"sent_ms\":1}", name);
    assert_int_equal(ferry_heartbeat_decode(json, strlen(json), &hb, err, sizeof(err)), 0);
    assert_int_equal(strlen(hb.instance), FERRY_HEARTBEAT_NAME_MAX);
    ferry_heartbeat_release(&hb);
    name[FERRY_HEARTBEAT_NAME_MAX] = 'n';
    name[FERRY_HEARTBEAT_NAME_MAX + 1] = '\0';
    snprintf(json, sizeof(json), "{\"v\":1,\"instance\":\"%s\",\"sent_ms\":1}", name);
    assert_int_equal(ferry_heartbeat_decode(json, strlen(json), &hb, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
    ferry_heartbeat_release(&hb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_cap),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_limits_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
