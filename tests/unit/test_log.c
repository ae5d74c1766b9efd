/*
 * test_log.c - what the logger writes for text it does not control (librdkafka's messages,
 * record keys, topic names): a table of inputs with the quoted form each must take and what a
 * JSON reader must read back, checked on ferry_log_quote and on whole JSON and logfmt lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/json.h"
#include "core/log.h"

#define LINE_MAX_TEST 8192

/* U+FFFD as UTF-8. Cases keep it in a literal of its own, so that a hex escape before it never
 * swallows the next character. */
#define R "\xEF\xBF\xBD"

struct quote_case {
    const char *name;
    const char *in;
    const char *quoted; /* what ferry_log_quote writes */
    const char *read;   /* what a JSON reader reads back */
};

static const struct quote_case quote_cases[] = {
    {"empty", "", "\"\"", ""},
    {"ascii", "hello world", "\"hello world\"", "hello world"},
    {"multi-byte", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
     "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF\"",
     "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"},
    {"truncated 2-byte at end", "a\xC3", "\"a" R "\"", "a" R},
    {"truncated 3-byte then ascii", "\xE2\x82z", "\"" R "z\"", R "z"},
    {"truncated 4-byte", "\xF0\x9F\x98", "\"" R "\"", R},
    {"truncated then valid", "\xE2\xC3\xA9", "\"" R "\xC3\xA9\"", R "\xC3\xA9"},
    {"overlong 2-byte slash", "\xC0\xAF", "\"" R R "\"", R R},
    {"overlong 2-byte C1", "\xC1\xBF", "\"" R R "\"", R R},
    {"overlong 3-byte", "\xE0\x80\xAF", "\"" R R R "\"", R R R},
    {"overlong 4-byte", "\xF0\x80\x80\x80", "\"" R R R R "\"", R R R R},
    {"lone continuation", "a\x80z", "\"a" R "z\"", "a" R "z"},
    {"two continuations", "\xBF\xBF", "\"" R R "\"", R R},
    {"high surrogate", "\xED\xA0\x80", "\"" R R R "\"", R R R},
    {"low surrogate", "\xED\xBF\xBF", "\"" R R R "\"", R R R},
    {"above U+10FFFF", "\xF4\x90\x80\x80", "\"" R R R R "\"", R R R R},
    {"5-byte lead", "\xF8\x88\x80\x80\x80", "\"" R R R R R "\"", R R R R R},
    {"FE and FF", "\xFE\xFF", "\"" R R "\"", R R},
    {"short escapes", "a\nb\tc\rd\be\ff", "\"a\\nb\\tc\\rd\\be\\ff\"", "a\nb\tc\rd\be\ff"},
    {"other controls and DEL", "\x01x\x1b[31m\x7f", "\"\\u0001x\\u001b[31m\\u007f\"",
     "\x01x\x1b[31m\x7f"},
    {"quotes and backslashes", "say \"hi\" \\ c:\\tmp", "\"say \\\"hi\\\" \\\\ c:\\\\tmp\"",
     "say \"hi\" \\ c:\\tmp"},
    {"key=value look-alike", "a=b c", "\"a=b c\"", "a=b c"},
};

#define NCASES (sizeof(quote_cases) / sizeof(quote_cases[0]))

static void test_quote(void **state)
{
    char buf[256];
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const struct quote_case *c = &quote_cases[i];
        size_t n = ferry_log_quote(buf, 0, sizeof(buf) - 1, c->in);
        buf[n] = '\0';
        print_message("case: %s\n", c->name);
        assert_string_equal(buf, c->quoted);
        assert_true(ferry_json_utf8_is_valid(buf, n));
    }
}

/* Fills a buffer much smaller than the text: the result stays in bounds, never splits a
 * character, and still ends with the closing quote. */
static void test_quote_truncates_whole_characters(void **state)
{
    static const char text[] = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\n\n\n\n";
    char buf[32];
    (void)state;
    for (size_t cap = 0; cap < sizeof(buf); cap++) {
        size_t n;
        memset(buf, 'X', sizeof(buf));
        n = ferry_log_quote(buf, 0, cap, text);
        assert_true(n <= cap);
        assert_int_equal(buf[cap], 'X');
        if (cap < 2) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_true(n >= 2);
        assert_int_equal(buf[0], '"');
        assert_int_equal(buf[n - 1], '"');
        assert_true(ferry_json_utf8_is_valid(buf, n));
    }
}

/* Runs ferry_log_write(msg) with stderr sent to a pipe; returns the line in out. */
static void capture_line(const char *inst, const char *msg, char *out, size_t size)
{
    int fds[2], saved;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    ferry_log_write(FERRY_LOG_ERROR, "test", inst, "%s", msg);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fds[1]);
    n = read(fds[0], out, size - 1);
    close(fds[0]);
    assert_true(n > 0);
    out[n] = '\0';
}

static void test_json_lines_parse(void **state)
{
    char line[LINE_MAX_TEST];
    (void)state;
    ferry_log_setup(FERRY_LOG_INFO, FERRY_LOG_JSON);
    for (size_t i = 0; i < NCASES; i++) {
        const struct quote_case *c = &quote_cases[i];
        json_error_t err;
        json_t *obj;

        print_message("case: %s\n", c->name);
        capture_line(c->in, c->in, line, sizeof(line));
        assert_true(ferry_json_utf8_is_valid(line, strlen(line)));
        obj = json_loads(line, 0, &err);
        if (!obj)
            fail_msg("not JSON (%s): %s", err.text, line);
        assert_string_equal(json_string_value(json_object_get(obj, "msg")), c->read);
        assert_string_equal(json_string_value(json_object_get(obj, "inst")), c->read);
        assert_string_equal(json_string_value(json_object_get(obj, "level")), "error");
        json_decref(obj);
    }
    ferry_log_setup(FERRY_LOG_INFO, FERRY_LOG_LOGFMT);
}

/* A message of several KiB of escapes is cut, and the line is still one JSON object. */
static void test_json_long_line_parses(void **state)
{
    char msg[3000], line[LINE_MAX_TEST];
    json_error_t err;
    json_t *obj;
    (void)state;
    memset(msg, '\x01', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    ferry_log_setup(FERRY_LOG_INFO, FERRY_LOG_JSON);
    capture_line(NULL, msg, line, sizeof(line));
    ferry_log_setup(FERRY_LOG_INFO, FERRY_LOG_LOGFMT);
    obj = json_loads(line, 0, &err);
    if (!obj)
        fail_msg("not JSON (%s): %s", err.text, line);
    json_decref(obj);
}

static void test_logfmt_values(void **state)
{
    static const struct {
        const char *msg;
        const char *field; /* what follows "msg=" up to the end of the line */
    } cases[] = {
        {"plain", "plain"},
        {"two words", "\"two words\""},
        {"a=b", "\"a=b\""},
        {"", "\"\""},
        {"tab\there", "\"tab\\there\""},
        {"esc\x1b[0m", "\"esc\\u001b[0m\""},
        {"bad\xFF", "\"bad" R "\""},
        {"caf\xC3\xA9", "\"caf\xC3\xA9\""},
        {"back\\slash", "\"back\\\\slash\""},
    };
    char line[LINE_MAX_TEST], want[256];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        capture_line(NULL, cases[i].msg, line, sizeof(line));
        snprintf(want, sizeof(want), " msg=%s\n", cases[i].field);
        assert_true(strlen(line) > strlen(want));
        assert_string_equal(line + strlen(line) - strlen(want), want);
    }
}

/* Repeated lines: the first of each instance at once, then one per FERRY_LOG_REPEAT_MS with
 * the count held back; instances do not hold each other back. */
struct repeat_step {
    const char *inst;
    int64_t now_ms;
    int due;
    uint64_t suppressed; /* when due */
};

static const struct repeat_step repeat_steps[] = {
    {"a", 1000, 1, 0},  {"a", 1001, 0, 0},  {"a", 5000, 0, 0},  {"b", 5000, 1, 0},
    {NULL, 5000, 1, 0}, {NULL, 5001, 0, 0}, {"a", 10999, 0, 0}, {"a", 11000, 1, 3},
    {"a", 11000, 0, 0}, {"a", 30000, 1, 1}, {"b", 30000, 1, 0},
};

static void test_repeat_due(void **state)
{
    static struct ferry_log_repeat rep;
    uint64_t suppressed;
    int64_t since;

    (void)state;
    for (size_t i = 0; i < sizeof(repeat_steps) / sizeof(repeat_steps[0]); i++) {
        const struct repeat_step *s = &repeat_steps[i];
        int due = ferry_log_repeat_due(&rep, s->inst, s->now_ms, &suppressed, &since);
        if (due != s->due)
            fail_msg("step %zu (%s at %lld): due %d, want %d", i, s->inst ? s->inst : "NULL",
                     (long long)s->now_ms, due, s->due);
        if (due)
            assert_int_equal(suppressed, s->suppressed);
    }
}

/* More instances than slots: the further ones share one slot, and together write one line
 * per FERRY_LOG_REPEAT_MS; the first ones keep theirs. */
static void test_repeat_more_instances_than_slots(void **state)
{
    static struct ferry_log_repeat rep;
    char inst[16];
    uint64_t suppressed;
    int64_t since;

    (void)state;
    for (int i = 0; i < FERRY_LOG_REPEAT_SLOTS; i++) {
        snprintf(inst, sizeof(inst), "i%d", i);
        assert_true(ferry_log_repeat_due(&rep, inst, 1000 + i, &suppressed, &since));
    }
    assert_true(ferry_log_repeat_due(&rep, "x1", 1100, &suppressed, &since));
    for (int i = 2; i < 50; i++) {
        snprintf(inst, sizeof(inst), "x%d", i);
        assert_false(ferry_log_repeat_due(&rep, inst, 1200, &suppressed, &since));
    }
    assert_false(ferry_log_repeat_due(&rep, "i0", 2000, &suppressed, &since));
    assert_true(ferry_log_repeat_due(&rep, "x7", 11100, &suppressed, &since));
    assert_int_equal(suppressed, 48);
    assert_true(ferry_log_repeat_due(&rep, "i0", 11000, &suppressed, &since));
}

/* A slot idle for FERRY_LOG_REPEAT_IDLE_MS goes to a new instance; the lines it held back are
 * counted with the shared slot's. */
static void test_repeat_idle_slot_goes_to_a_new_instance(void **state)
{
    static struct ferry_log_repeat rep;
    const int64_t later = 1000 + FERRY_LOG_REPEAT_IDLE_MS;
    char inst[16];
    uint64_t suppressed;
    int64_t since;

    (void)state;
    for (int i = 0; i < FERRY_LOG_REPEAT_SLOTS; i++) {
        snprintf(inst, sizeof(inst), "i%d", i);
        assert_true(ferry_log_repeat_due(&rep, inst, 1000, &suppressed, &since));
    }
    for (int i = 1; i < FERRY_LOG_REPEAT_SLOTS; i++) { /* all but i0 write again later */
        snprintf(inst, sizeof(inst), "i%d", i);
        assert_false(ferry_log_repeat_due(&rep, inst, 1001, &suppressed, &since));
        assert_true(
            ferry_log_repeat_due(&rep, inst, 1000 + FERRY_LOG_REPEAT_MS, &suppressed, &since));
    }
    assert_false(ferry_log_repeat_due(&rep, "i0", 1002, &suppressed, &since));  /* held back */
    assert_true(ferry_log_repeat_due(&rep, "new", later, &suppressed, &since)); /* i0's slot */
    assert_int_equal(suppressed, 0);
    assert_int_equal(since, 0);
    assert_false(ferry_log_repeat_due(&rep, "new", later + 1, &suppressed, &since));
    assert_true(ferry_log_repeat_due(&rep, "newer", later, &suppressed, &since)); /* others */
    assert_int_equal(suppressed, 1); /* i0's line held back */
    assert_false(ferry_log_repeat_due(&rep, "newest", later, &suppressed, &since));
    assert_true(ferry_log_repeat_due(&rep, "i3", later + FERRY_LOG_REPEAT_MS, &suppressed,
                                     &since)); /* kept */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_quote_truncates_whole_characters),
        cmocka_unit_test(test_json_lines_parse),
        cmocka_unit_test(test_json_long_line_parses),
        cmocka_unit_test(test_logfmt_values),
        cmocka_unit_test(test_repeat_due),
        cmocka_unit_test(test_repeat_more_instances_than_slots),
        cmocka_unit_test(test_repeat_idle_slot_goes_to_a_new_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
