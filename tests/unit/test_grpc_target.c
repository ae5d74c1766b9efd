/*
 * test_grpc_target.c - a route's gRPC target: which url/method/payload settings are refused
 * and why, the URL and header lines of its calls, and bodies of one or several frames, raw or
 * encoded from JSON (tests/unit/data/grpc_shop.pb).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/grpc_target.h"

static char shop_pb[512];

static int setup(void **state)
{
    const char *dir = getenv("FERRY_TEST_DATA");
    (void)state;
    snprintf(shop_pb, sizeof(shop_pb), "%s/grpc_shop.pb", dir ? dir : "tests/unit/data");
    return 0;
}

struct options_case {
    const char *url, *method;
    int json;
    int with_descriptor;
    const char *error; /* NULL: accepted */
};

static const struct options_case options_cases[] = {
    {"https://orders:8443", "shop.Orders/Place", 0, 0, NULL},
    {"http://orders:50051", "shop.Orders/Place", 1, 1, NULL},
    {"grpc://orders:1", "shop.Orders/Place", 0, 0, "expected https://host:port"},
    {"https://orders:1/api", "shop.Orders/Place", 0, 0, "without a path"},
    {"https://", "shop.Orders/Place", 0, 0, "without a path"},
    {"https://${key}", "shop.Orders/Place", 0, 0, "without a path"},
    {"https://orders:1", "Place", 0, 0, "expected package.Service/Method"},
    {"https://orders:1", "shop.Orders/Pl ace", 0, 0, "expected package.Service/Method"},
    {"https://orders:1", "shop.Orders/Place", 1, 0, "needs a descriptor_set"},
    {"https://orders:1", "shop.Orders/Cancel", 1, 1, "no such method"},
    {NULL, "shop.Orders/Place", 0, 0, "needs a url and a method"},
};

static void test_options(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(options_cases) / sizeof(options_cases[0]); i++) {
        const struct options_case *c = &options_cases[i];
        struct ferry_grpc_target_options o = {c->url, c->method, c->json,
                                              c->with_descriptor ? shop_pb : NULL, 0};
        char err[512] = "";
        ferry_grpc_target *t = ferry_grpc_target_new(&o, err, sizeof(err));
        if (!c->error && !t)
            fail_msg("case %zu refused: %s", i, err);
        if (c->error && t)
            fail_msg("case %zu accepted", i);
        if (c->error && !strstr(err, c->error))
            fail_msg("case %zu: error '%s', want '%s'", i, err, c->error);
        ferry_grpc_target_destroy(t);
    }
}

static void test_call_parts(void **state)
{
    struct ferry_grpc_target_options o = {"http://orders:50051", "shop.Orders/Upload", 1, shop_pb,
                                          2500};
    const char *lines[FERRY_GRPC_TARGET_HEADERS];
    char err[256];
    ferry_grpc_target *t = ferry_grpc_target_new(&o, err, sizeof(err));
    (void)state;
    assert_non_null(t);
    assert_string_equal(ferry_grpc_target_url(t), "http://orders:50051/shop.Orders/Upload");
    assert_int_equal(ferry_grpc_target_h2c(t), 1);
    assert_int_equal(ferry_grpc_target_streaming(t), 1);
    assert_int_equal(ferry_grpc_target_headers(t, lines), 3);
    assert_string_equal(lines[0], "Content-Type: application/grpc");
    assert_string_equal(lines[1], "TE: trailers");
    assert_string_equal(lines[2], "grpc-timeout: 2500m");
    ferry_grpc_target_destroy(t);

    o.url = "https://orders:8443";
    o.method = "shop.Orders/Place";
    o.payload_json = 0;
    o.timeout_ms = 0;
    t = ferry_grpc_target_new(&o, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(ferry_grpc_target_h2c(t), 0);
    assert_int_equal(ferry_grpc_target_streaming(t), 0);
    assert_int_equal(ferry_grpc_target_headers(t, lines), 2);
    ferry_grpc_target_destroy(t);
}

static int add(ferry_grpc_target *t, const char *payload, struct ferry_buf *body, char *err,
               size_t err_size)
{
    return ferry_grpc_target_add(t, payload, strlen(payload), body, err, err_size);
}

static void test_bodies(void **state)
{
    struct ferry_grpc_target_options o = {"https://orders:8443", "shop.Orders/Upload", 1, shop_pb,
                                          0};
    struct ferry_buf body;
    char err[256] = "";
    ferry_grpc_target *t = ferry_grpc_target_new(&o, err, sizeof(err));
    (void)state;
    assert_non_null(t);
    ferry_buf_init(&body, 64);
    /* {"id": "A"} is 0a 01 41; {} is an empty message */
    assert_int_equal(add(t, "{\"id\": \"A\"}", &body, err, sizeof(err)), 0);
    assert_int_equal(add(t, "{}", &body, err, sizeof(err)), 0);
    assert_int_equal(body.len, 13);
    assert_memory_equal(body.data, "\0\0\0\0\3\x0a\x01\x41\0\0\0\0\0", 13);
    /* a bad record leaves the body as it was, and says where */
    assert_int_equal(add(t, "{\"items\": [{\"qty\": \"x\"}]}", &body, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "items[0].qty"));
    assert_int_equal(body.len, 13);
    /* past the cap: refused, body unchanged */
    assert_int_equal(add(t,
                         "{\"id\": \"0123456789012345678901234567890123456789"
                         "0123456789\"}",
                         &body, err, sizeof(err)),
                     FERRY_GRPC_TARGET_FULL);
    assert_non_null(strstr(err, "larger than 64 bytes"));
    assert_int_equal(body.len, 13);
    ferry_grpc_target_destroy(t);

    /* payload: value frames the bytes as they are */
    o.payload_json = 0;
    t = ferry_grpc_target_new(&o, err, sizeof(err));
    assert_non_null(t);
    ferry_buf_reset(&body);
    assert_int_equal(ferry_grpc_target_add(t, "\x0a\x01\x41", 3, &body, err, sizeof(err)), 0);
    assert_memory_equal(body.data, "\0\0\0\0\3\x0a\x01\x41", 8);
    ferry_buf_release(&body);
    ferry_grpc_target_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_call_parts),
        cmocka_unit_test(test_bodies),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
