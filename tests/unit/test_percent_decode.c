/*
 * test_percent_decode.c - ferry_http_percent_decode (src/core/httpd.c), which turns one
 * segment of a request's raw path back into bytes: a table key may hold '/', '%', NUL or any
 * other byte, so it travels percent-encoded. Good and bad input, table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/httpd.h"

struct decode_case {
    const char *in;
    const char *out; /* NULL: refused */
    size_t out_len;
};

static const struct decode_case cases[] = {
    {"", "", 0},
    {"plain", "plain", 5},
    {"a%2Fb", "a/b", 3},
    {"a%2fb", "a/b", 3},
    {"%25", "%", 1},
    {"%00x", "\0x", 2},
    {"%FF%fe", "\xff\xfe", 2},
    {"+", "+", 1}, /* a path is not a form: '+' stays '+' */
    {"%", NULL, 0},
    {"%4", NULL, 0},
    {"ab%4", NULL, 0},
    {"%G1", NULL, 0},
    {"%1G", NULL, 0},
    {"%%41", NULL, 0},
};

static void test_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct decode_case *c = &cases[i];
        char out[32];
        size_t len = strlen(c->in), out_len = 0;
        int rc = ferry_http_percent_decode(c->in, len, out, &out_len);

        if (!c->out) {
            if (rc == 0)
                fail_msg("'%s' decoded, want refused", c->in);
            continue;
        }
        if (rc)
            fail_msg("'%s' refused", c->in);
        assert_int_equal(out_len, c->out_len);
        assert_memory_equal(out, c->out, out_len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_decode)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
