/*
 * test_grpc_wire.c - gRPC frames, grpc-timeout values, the status trailers (percent-decoded
 * messages, trailers-only answers, HTTP errors, a 200 without grpc-status) and the default
 * and overridden outcome of each code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route/grpc_config.h"
#include "route/grpc_wire.h"

static void test_frames(void **state)
{
    struct ferry_buf b;
    size_t off = 0, len = 0;
    (void)state;
    ferry_buf_init(&b, 64);
    assert_int_equal(ferry_grpc_frame_add(&b, "abc", 3), 0);
    assert_int_equal(ferry_grpc_frame_add(&b, "", 0), 0);
    assert_int_equal(b.len, 13);
    assert_memory_equal(b.data, "\0\0\0\0\3abc\0\0\0\0\0", 13);
    assert_int_equal(ferry_grpc_frame_next(b.data, b.len, &off, &len), 0);
    assert_int_equal(off, 5);
    assert_int_equal(len, 3);
    assert_int_equal(ferry_grpc_frame_next(b.data, 7, &off, &len), 1);
    assert_int_equal(ferry_grpc_frame_next(b.data, 4, &off, &len), 1);
    assert_int_equal(ferry_grpc_frame_next("\1\0\0\0\0", 5, &off, &len), -1);
    /* a frame that does not fit leaves the buffer as it was */
    ferry_buf_reset(&b);
    assert_int_equal(ferry_grpc_frame_add(&b,
                                          "0123456789012345678901234567890123456789"
                                          "0123456789012345678901234567890123456789",
                                          80),
                     -1);
    assert_int_equal(b.len, 0);
    ferry_buf_release(&b);
}

struct timeout_case {
    long ms;
    const char *want;
};

static const struct timeout_case timeout_cases[] = {
    {0, "0m"},
    {1, "1m"},
    {1500, "1500m"},
    {99999999, "99999999m"},
    {100000000, "100000S"},
    {100000001, "100001S"},
    {-5, "0m"},
};

static void test_timeout(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(timeout_cases) / sizeof(timeout_cases[0]); i++) {
        char out[16];
        ferry_grpc_timeout_format(timeout_cases[i].ms, out, sizeof(out));
        if (strcmp(out, timeout_cases[i].want) != 0)
            fail_msg("%ld ms: got %s, want %s", timeout_cases[i].ms, out, timeout_cases[i].want);
    }
}

struct status_case {
    long http;
    const char *lines[4]; /* header lines as libcurl hands them over */
    int code;
    const char *message;
};

static const struct status_case status_cases[] = {
    {200, {"HTTP/2 200\r\n", "content-type: application/grpc\r\n", "grpc-status: 0\r\n"}, 0, ""},
    {200,
     {"grpc-status: 14\r\n", "grpc-message: backend%20down%3A%20retry\r\n"},
     14,
     "backend down: retry"},
    {200, {"Grpc-Status:3\r\n", "GRPC-MESSAGE:  bad   \r\n"}, 3, "bad"},
    {200, {"grpc-message: 100%\r\n", "grpc-status: 13\r\n"}, 13, "100%"},
    {200, {"grpc-message: caf%C3%A9\r\n", "grpc-status: 5\r\n"}, 5, "caf\xc3\xa9"},
    {200, {"grpc-status: 99\r\n"}, 2, ""},
    {200, {"grpc-status: x\r\n", "grpc-statusx: 1\r\n"}, 13, "response without grpc-status"},
    {200, {"content-type: text/html\r\n"}, 13, "response without grpc-status"},
    {503, {"content-type: text/plain\r\n"}, 14, "HTTP status 503"},
    {404, {NULL}, 12, "HTTP status 404"},
    {401, {NULL}, 16, "HTTP status 401"},
    {500, {NULL}, 2, "HTTP status 500"},
};

static void test_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const struct status_case *c = &status_cases[i];
        struct ferry_grpc_status st;
        int code;
        ferry_grpc_status_reset(&st);
        for (size_t j = 0; j < 4 && c->lines[j]; j++)
            ferry_grpc_status_header(&st, c->lines[j], strlen(c->lines[j]));
        code = ferry_grpc_status_resolve(&st, c->http);
        if (code != c->code || strcmp(st.message, c->message) != 0)
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, code, st.message, c->code,
                     c->message);
    }
}

static void test_message_cap(void **state)
{
    char line[2 * FERRY_GRPC_MESSAGE_MAX];
    struct ferry_grpc_status st;
    (void)state;
    memcpy(line, "grpc-message: ", 14);
    memset(line + 14, 'a', sizeof(line) - 14);
    ferry_grpc_status_reset(&st);
    ferry_grpc_status_header(&st, line, sizeof(line));
    assert_int_equal(strlen(st.message), FERRY_GRPC_MESSAGE_MAX - 1);
}

static void test_codes(void **state)
{
    int code = -1;
    (void)state;
    assert_string_equal(ferry_grpc_code_name(14), "UNAVAILABLE");
    assert_string_equal(ferry_grpc_code_name(16), "UNAUTHENTICATED");
    assert_string_equal(ferry_grpc_code_name(17), "UNKNOWN");
    assert_int_equal(ferry_grpc_code_parse("unavailable", &code), 0);
    assert_int_equal(code, 14);
    assert_int_equal(ferry_grpc_code_parse("0", &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(ferry_grpc_code_parse("17", &code), -1);
    assert_int_equal(ferry_grpc_code_parse("", &code), -1);
    assert_int_equal(ferry_grpc_code_parse("NOPE", &code), -1);
}

static void test_rules(void **state)
{
    static const enum ferry_outcome defaults[FERRY_GRPC_CODE_COUNT] = {
        [0] = FERRY_OUTCOME_SUCCESS,      [1] = FERRY_OUTCOME_DEAD_LETTER,
        [2] = FERRY_OUTCOME_DEAD_LETTER,  [3] = FERRY_OUTCOME_DEAD_LETTER,
        [4] = FERRY_OUTCOME_RETRY,        [5] = FERRY_OUTCOME_DEAD_LETTER,
        [6] = FERRY_OUTCOME_DEAD_LETTER,  [7] = FERRY_OUTCOME_DEAD_LETTER,
        [8] = FERRY_OUTCOME_RETRY,        [9] = FERRY_OUTCOME_DEAD_LETTER,
        [10] = FERRY_OUTCOME_RETRY,       [11] = FERRY_OUTCOME_DEAD_LETTER,
        [12] = FERRY_OUTCOME_DEAD_LETTER, [13] = FERRY_OUTCOME_DEAD_LETTER,
        [14] = FERRY_OUTCOME_RETRY,       [15] = FERRY_OUTCOME_DEAD_LETTER,
        [16] = FERRY_OUTCOME_DEAD_LETTER,
    };
    ferry_grpc_rules *rules = ferry_grpc_rules_new();
    char err[256] = "";
    (void)state;
    assert_non_null(rules);
    for (int i = 0; i < FERRY_GRPC_CODE_COUNT; i++)
        if (ferry_grpc_rules_classify(rules, i) != defaults[i])
            fail_msg("code %d: not the default outcome", i);
    assert_int_equal(ferry_grpc_rules_classify(rules, 42), FERRY_OUTCOME_DEAD_LETTER);
    assert_int_equal(ferry_grpc_rules_set(rules, FERRY_OUTCOME_RETRY, "INTERNAL", err, sizeof(err)),
                     0);
    assert_int_equal(ferry_grpc_rules_set(rules, FERRY_OUTCOME_DEAD_LETTER, "14", err, sizeof(err)),
                     0);
    assert_int_equal(ferry_grpc_rules_classify(rules, 13), FERRY_OUTCOME_RETRY);
    assert_int_equal(ferry_grpc_rules_classify(rules, 14), FERRY_OUTCOME_DEAD_LETTER);
    assert_int_equal(ferry_grpc_rules_set(rules, FERRY_OUTCOME_RETRY, "5xx", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'5xx'"));
    ferry_grpc_rules_destroy(rules);
    ferry_grpc_rules_destroy(NULL);
}

/* target.grpc.on_status over the defaults: success, then retry, then dead_letter, so a code
 * in two lists takes the later; a bad entry names its list and index. */
static void test_config_rules(void **state)
{
    char *success[] = {"ALREADY_EXISTS", "not_found"};
    char *retry[] = {"13", "NOT_FOUND"};
    char *dead[] = {"UNAVAILABLE"};
    char *bad[] = {"OK", "SLOW"};
    struct ferry_route_grpc_config c = {0};
    char err[256] = "";
    ferry_grpc_rules *rules;

    (void)state;
    c.on_status.success = (struct ferry_cfg_strings){success, 2};
    c.on_status.retry = (struct ferry_cfg_strings){retry, 2};
    c.on_status.dead_letter = (struct ferry_cfg_strings){dead, 1};
    rules = ferry_grpc_config_rules(&c, err, sizeof(err));
    assert_non_null(rules);
    assert_int_equal(ferry_grpc_rules_outcome(rules, 6), FERRY_OUTCOME_SUCCESS);
    assert_int_equal(ferry_grpc_rules_outcome(rules, 5), FERRY_OUTCOME_RETRY);
    assert_int_equal(ferry_grpc_rules_outcome(rules, 13), FERRY_OUTCOME_RETRY);
    assert_int_equal(ferry_grpc_rules_outcome(rules, 14), FERRY_OUTCOME_DEAD_LETTER);
    assert_int_equal(ferry_grpc_rules_outcome(rules, 8), FERRY_OUTCOME_RETRY); /* a default */
    assert_int_equal(ferry_grpc_rules_outcome(rules, -1), FERRY_OUTCOME_DEAD_LETTER);
    ferry_grpc_rules_destroy(rules);
    c.on_status.retry = (struct ferry_cfg_strings){bad, 2};
    assert_null(ferry_grpc_config_rules(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "on_status.retry[1]"));
    assert_non_null(strstr(err, "'SLOW'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),       cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_status),       cmocka_unit_test(test_message_cap),
        cmocka_unit_test(test_codes),        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_config_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
