/*
 * test_url.c - what ferry accepts as a URL it sends to: a table of authorities with whether
 * each names a host, and a table of URLs with whether libcurl parses them and, when not, the
 * message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/url.h"

static void test_authority_has_host(void **state)
{
    static const struct {
        const char *authority; /* the text after "scheme://" */
        int want;
    } cases[] = {
        {"example.com", 1},
        {"example.com:8080/path", 1},
        {"h", 1},
        {"h?q", 1},
        {"user:pw@h:25", 1},
        {"[::1]:8443", 1},
        {"[::1]", 1},
        {"", 0},
        {":8080", 0},
        {"/path", 0},
        {"?q", 0},
        {"#f", 0},
        {"u@:80", 0},
        {"u@", 0},
        {"[]:80", 0},
        {"[", 0},
        {"a b:80", 0},
        {"h\t:80", 0},
        {"h\r\n:80", 0},
        {"h/a b", 1}, /* white space after the authority is libcurl's to refuse */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!ferry_url_authority_has_host(cases[i].authority) != !cases[i].want)
            fail_msg("'%s': got %d, want %d", cases[i].authority,
                     ferry_url_authority_has_host(cases[i].authority), cases[i].want);
}

static void test_parses(void **state)
{
    static const struct {
        const char *url;
        const char *error; /* NULL: parses; else the start of the message */
    } cases[] = {
        {"http://example.com:8080/a?b=c#d", NULL},
        {"https://[::1]:8443", NULL},
        {"smtp://mail:25", NULL},
        {"http://h:65535", NULL},
        {"http://h:0", NULL},
        {"http://h:99999", "'http://h:99999' is not a URL: "},
        {"http://h:80x", "'http://h:80x' is not a URL: "},
        {"http://a b", "'http://a b' is not a URL: "},
        {"http://h/a b", "'http://h/a b' is not a URL: "},
        {"http://h/\x01", "'http://h/\x01' is not a URL: "},
        {"", "'' is not a URL: "},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc = ferry_url_parses(cases[i].url, err, sizeof(err));

        print_message("case %zu: %s\n", i, cases[i].url);
        assert_int_equal(rc, cases[i].error ? -1 : 0);
        assert_int_equal(ferry_url_problem(cases[i].url) == NULL, cases[i].error == NULL);
        if (cases[i].error && strncmp(err, cases[i].error, strlen(cases[i].error)) != 0)
            fail_msg("'%s': message '%s', want it to start '%s'", cases[i].url, err,
                     cases[i].error);
        if (cases[i].error && strlen(err) == strlen(cases[i].error))
            fail_msg("'%s': message '%s' does not say why", cases[i].url, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authority_has_host),
        cmocka_unit_test(test_parses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
