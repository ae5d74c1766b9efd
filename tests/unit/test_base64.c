/*
 * test_base64.c - base64 in both alphabets and in either (FERRY_BASE64_EITHER): decoding good
 * and bad input in place, as every caller does, and encoding every length around a group of
 * three so that padding is exercised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"

struct decode_case {
    enum ferry_base64_alphabet abc;
    const char *in;
    const char *out; /* NULL: invalid */
};

static const struct decode_case decode_cases[] = {
    {FERRY_BASE64_STD, "", ""},
    {FERRY_BASE64_STD, "a2V5", "key"},
    {FERRY_BASE64_STD, "Y29uZmx1ZW50", "confluent"},
    {FERRY_BASE64_STD, "a2Fma2E=", "kafka"},
    {FERRY_BASE64_STD, "a2Fma2E", "kafka"},
    {FERRY_BASE64_STD, "bG9ncw==", "logs"},
    {FERRY_BASE64_STD, "bG9ncw", "logs"},
    {FERRY_BASE64_STD, "+/+/", "\xfb\xff\xbf"},
    {FERRY_BASE64_STD, "P/8=", "?\xff"},
    {FERRY_BASE64_STD, "P/8", "?\xff"},
    {FERRY_BASE64_STD, "a2V5=", NULL},
    {FERRY_BASE64_STD, "a", NULL},
    {FERRY_BASE64_STD, "a2V5a", NULL},
    {FERRY_BASE64_STD, "a2V5\n", NULL},
    {FERRY_BASE64_STD, "a2 5", NULL},
    {FERRY_BASE64_STD, "-_-_", NULL},
    {FERRY_BASE64_STD, "====", NULL},
    {FERRY_BASE64_STD, "a===", NULL},
    {FERRY_BASE64_URL, "-_-_", "\xfb\xff\xbf"},
    {FERRY_BASE64_URL, "+/+/", NULL},
    {FERRY_BASE64_URL, "a2Fma2E", "kafka"},
    {FERRY_BASE64_URL, "a2Fma2E=", "kafka"},
    {FERRY_BASE64_URL, "P_8", "?\xff"},
    {FERRY_BASE64_URL, "aGk+", NULL},
    /* Either alphabet in one pass: the first of + / - _ decides. The standard texts here
     * failed once, when callers tried URL-safe first and then decoded what it had left. */
    {FERRY_BASE64_EITHER, "", ""},
    {FERRY_BASE64_EITHER, "a2V5", "key"},
    {FERRY_BASE64_EITHER, "aGk+", "hi>"},
    {FERRY_BASE64_EITHER, "aGk-", "hi>"},
    {FERRY_BASE64_EITHER, "aGk/", "hi?"},
    {FERRY_BASE64_EITHER, "aGk_", "hi?"},
    {FERRY_BASE64_EITHER, "+/+/", "\xfb\xff\xbf"},
    {FERRY_BASE64_EITHER, "-_-_", "\xfb\xff\xbf"},
    {FERRY_BASE64_EITHER, "++++/w==", "\xfb\xef\xbe\xff"},
    {FERRY_BASE64_EITHER, "++++/w", "\xfb\xef\xbe\xff"},
    {FERRY_BASE64_EITHER, "----_w==", "\xfb\xef\xbe\xff"},
    {FERRY_BASE64_EITHER, "----_w", "\xfb\xef\xbe\xff"},
    {FERRY_BASE64_EITHER, "P/8=", "?\xff"},
    {FERRY_BASE64_EITHER, "P_8", "?\xff"},
    {FERRY_BASE64_EITHER, "a2Fma2E=", "kafka"},
    {FERRY_BASE64_EITHER, "a2Fma2E", "kafka"},
    {FERRY_BASE64_EITHER, "+/-_", NULL},
    {FERRY_BASE64_EITHER, "-_+/", NULL},
    {FERRY_BASE64_EITHER, "aGk+aGk-", NULL},
    {FERRY_BASE64_EITHER, "P_8/", NULL},
    {FERRY_BASE64_EITHER, "aGk*", NULL},
    {FERRY_BASE64_EITHER, "aGk.", NULL},
    {FERRY_BASE64_EITHER, "aGk+=", NULL},
    {FERRY_BASE64_EITHER, "a2 5", NULL},
    {FERRY_BASE64_EITHER, "a", NULL},
    {FERRY_BASE64_EITHER, "====", NULL},
};

static void test_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        char buf[64];
        size_t len = strlen(c->in), out_len = 0;
        int rc;
        memcpy(buf, c->in, len);
        rc = ferry_base64_decode(buf, len, c->abc, &out_len);
        if (!c->out) {
            if (rc == 0)
                fail_msg("'%s' decoded, want invalid", c->in);
            continue;
        }
        if (rc)
            fail_msg("'%s' refused", c->in);
        assert_int_equal(out_len, strlen(c->out));
        assert_memory_equal(buf, c->out, out_len);
    }
}

struct encode_case {
    const char *in;
    const char *std;
    const char *url;
};

static const struct encode_case encode_cases[] = {
    {"", "", ""},
    {"k", "aw==", "aw"},
    {"ke", "a2U=", "a2U"},
    {"key", "a2V5", "a2V5"},
    {"kafka", "a2Fma2E=", "a2Fma2E"},
    {"\xfb\xff\xbf", "+/+/", "-_-_"},
};

static void test_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]); i++) {
        const struct encode_case *c = &encode_cases[i];
        struct ferry_buf b;
        ferry_buf_init(&b, 1024);
        assert_int_equal(ferry_base64_encode(&b, c->in, strlen(c->in), FERRY_BASE64_STD), 0);
        assert_int_equal(b.len, strlen(c->std));
        assert_memory_equal(b.len ? b.data : "", c->std, b.len);
        ferry_buf_reset(&b);
        assert_int_equal(ferry_base64_encode(&b, c->in, strlen(c->in), FERRY_BASE64_URL), 0);
        assert_int_equal(b.len, strlen(c->url));
        assert_memory_equal(b.len ? b.data : "", c->url, b.len);
        ferry_buf_release(&b);
    }
}

/* Every length from 0 to 300 bytes (past the encoder's 256-byte chunk) survives a round trip
 * in both alphabets, and in either (which encodes as the standard one). */
static void test_round_trip(void **state)
{
    unsigned char in[300];
    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (int abc = FERRY_BASE64_STD; abc <= FERRY_BASE64_EITHER; abc++) {
        for (size_t n = 0; n <= sizeof(in); n++) {
            struct ferry_buf b;
            size_t out = 0;
            ferry_buf_init(&b, 4096);
            assert_int_equal(ferry_base64_encode(&b, in, n, abc), 0);
            assert_int_equal(ferry_base64_decode(b.data ? b.data : (char *)"", b.len, abc, &out),
                             0);
            assert_int_equal(out, n);
            if (n)
                assert_memory_equal(b.data, in, n);
            ferry_buf_release(&b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
