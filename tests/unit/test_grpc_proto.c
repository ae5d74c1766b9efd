/*
 * test_grpc_proto.c - JSON to protobuf from a descriptor set: every scalar type, enums by
 * name and number, nested, repeated and map fields, checked byte for byte against what
 * python3-protobuf's json_format encodes for the same JSON (tests/unit/data/grpc_shop.proto);
 * then inputs that must fail, each with the field path its message must name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/grpc_proto.h"

struct good_case {
    const char *json;
    const char *hex; /* the Order message, as python3-protobuf serializes it */
};

static const struct good_case good_cases[] = {
    {"{}", ""},
    {"{\"id\": \"A-1\"}", "0a03412d31"},
    {"{\"items\": [{\"sku\": \"x\", \"price\": 150}, {\"qty\": -1}]}",
     "12060a0178109601120b18ffffffffffffffffff01"},
    {"{\"labels\": {\"k\": 7}}", "1a050a016b1007"},
    {"{\"color\": \"BLUE\"}", "2002"},
    {"{\"color\": 1}", "2001"},
    {"{\"blob\": \"AAEC/w==\"}", "2a04000102ff"},
    {"{\"codes\": [1, 300, -2]}", "320d01ac02feffffffffffffffff01"},
    {"{\"total\": 1.5}", "39000000000000f83f"},
    {"{\"ratio\": 0.25}", "450000803e"},
    {"{\"paid\": true}", "4801"},
    {"{\"delta\": -3}", "5005"},
    {"{\"delta64\": \"-9000000000\"}", "58ffe7888743"},
    {"{\"f32\": 4294967295}", "65ffffffff"},
    {"{\"f64\": \"18446744073709551615\"}", "69ffffffffffffffff"},
    {"{\"sf32\": -2}", "75feffffff"},
    {"{\"sf64\": -2}", "79feffffffffffffff"},
    {"{\"u32\": 4294967295}", "8001ffffffff0f"},
    {"{\"u64\": \"18446744073709551615\"}", "8801ffffffffffffffffff01"},
    {"{\"mainItem\": {\"sku\": \"m\"}}", "9201030a016d"},
    {"{\"main_item\": {\"price\": \"9223372036854775807\"}}", "92010a10ffffffffffffffff7f"},
    {"{\"by_id\": {\"5\": \"five\"}}", "9a01080805120466697665"},
    {"{\"tags\": [\"a\", \"b\"]}", "a2010161a2010162"},
    {"{\"by_flag\": {\"true\": {\"qty\": 2}}}", "aa0106080112021802"},
    {"{\"note\": {\"text\": \"hi\"}}", "b201040a026869"},
    {"{\"id\": null}", ""},
    {"{\"id\": \"a\\u0000b\"}", "0a03610062"},
    {"{\"note\": {}}", "b20100"},
    {"{\"total\": \"NaN\"}", "39000000000000f87f"},
    {"{\"total\": \"-Infinity\"}", "39000000000000f0ff"},
};

struct bad_case {
    const char *json;
    const char *error; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"{\"price\": 1}", "price: unknown field in shop.Order"},
    {"{\"items\": [{}, {}, {\"price\": \"cheap\"}]}",
     "items[2].price: expected an integer, got 'cheap'"},
    {"{\"items\": [{}, {\"colour\": 1}]}", "items[1].colour: unknown field in shop.Item"},
    {"{\"items\": {\"sku\": \"x\"}}", "items: expected an array, got an object"},
    {"{\"id\": 5}", "id: expected a string, got a number"},
    {"{\"color\": \"GREEN\"}", "color: unknown enum value 'GREEN'"},
    {"{\"blob\": \"not base64!\"}", "blob: expected base64"},
    {"{\"codes\": [1, 2.5]}", "codes[1]: expected an integer"},
    {"{\"codes\": [1, 4294967296]}", "codes[1]: integer out of range"},
    {"{\"u32\": -1}", "u32: integer out of range"},
    {"{\"u64\": \"-1\"}", "u64: expected an unsigned integer"},
    {"{\"paid\": \"yes\"}", "paid: expected a boolean, got a string"},
    {"{\"labels\": {\"k\": \"v\"}}", "labels[\"k\"]: expected an integer, got 'v'"},
    {"{\"by_id\": {\"five\": \"5\"}}", "by_id[\"five\"]: expected an integer, got 'five'"},
    {"{\"labels\": [1]}", "labels: expected an object (a map), got an array"},
    {"{\"note\": {\"text\": \"a\", \"x\": 1}}", "note.x: unknown field in shop.Order.Note"},
    {"{\"mainItem\": 3}", "mainItem: expected an object, got a number"},
    {"{\"total\": \"much\"}", "total: expected a number, got 'much'"},
    {"[1]", "expected an object, got an array"},
    {"{\"id\": ", "invalid JSON"},
    {"{\"id\": \"a\", \"id\": \"b\"}", "invalid JSON: duplicate object key"},
};

static ferry_grpc_proto *load_shop(void)
{
    const char *dir = getenv("FERRY_TEST_DATA");
    char path[512], err[256] = "";
    ferry_grpc_proto *p;
    snprintf(path, sizeof(path), "%s/grpc_shop.pb", dir ? dir : "tests/unit/data");
    p = ferry_grpc_proto_load(path, err, sizeof(err));
    if (!p)
        fail_msg("loading %s: %s", path, err);
    return p;
}

static void to_hex(const char *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)data[i]);
    out[2 * len] = '\0';
}

static void test_encode_good(void **state)
{
    ferry_grpc_proto *p = load_shop();
    (void)state;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *c = &good_cases[i];
        struct ferry_buf out;
        char err[256] = "", hex[256];
        ferry_buf_init(&out, 1024);
        if (ferry_grpc_proto_encode(p, "shop.Order", c->json, strlen(c->json), &out, err,
                                    sizeof(err)))
            fail_msg("%s: refused: %s", c->json, err);
        to_hex(out.data ? out.data : "", out.len, hex);
        if (strcmp(hex, c->hex) != 0)
            fail_msg("%s: got %s, want %s", c->json, hex, c->hex);
        ferry_buf_release(&out);
    }
    ferry_grpc_proto_destroy(p);
}

static void test_encode_bad(void **state)
{
    ferry_grpc_proto *p = load_shop();
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct ferry_buf out;
        char err[256] = "";
        ferry_buf_init(&out, 1024);
        ferry_buf_adds(&out, "kept");
        if (ferry_grpc_proto_encode(p, ".shop.Order", c->json, strlen(c->json), &out, err,
                                    sizeof(err)) == 0)
            fail_msg("%s: accepted", c->json);
        if (!strstr(err, c->error))
            fail_msg("%s: error '%s', want '%s'", c->json, err, c->error);
        assert_int_equal(out.len, 4);
        ferry_buf_release(&out);
    }
    ferry_grpc_proto_destroy(p);
}

static void test_cap(void **state)
{
    ferry_grpc_proto *p = load_shop();
    struct ferry_buf out;
    char err[256] = "";
    const char *json = "{\"id\": \"0123456789abcdef\"}";
    (void)state;
    ferry_buf_init(&out, 8);
    assert_int_equal(
        ferry_grpc_proto_encode(p, "shop.Order", json, strlen(json), &out, err, sizeof(err)),
        FERRY_GRPC_PROTO_FULL);
    assert_non_null(strstr(err, "larger than 8 bytes"));
    assert_int_equal(out.len, 0);
    ferry_buf_release(&out);
    ferry_grpc_proto_destroy(p);
}

/* Returns a Tree nested levels deep: {"child": {"child": {}}} for 3. */
static int encode_tree(ferry_grpc_proto *p, int levels, char *err, size_t err_size)
{
    struct ferry_buf out, json;
    int rc;
    ferry_buf_init(&out, 4096);
    ferry_buf_init(&json, 4096);
    for (int i = 1; i < levels; i++)
        ferry_buf_adds(&json, "{\"child\": ");
    ferry_buf_adds(&json, "{}");
    for (int i = 1; i < levels; i++)
        ferry_buf_adds(&json, "}");
    rc = ferry_grpc_proto_encode(p, "shop.Tree", json.data, json.len, &out, err, err_size);
    if (rc == 0)
        assert_int_equal(out.len, (size_t)(levels - 1) * 2);
    ferry_buf_release(&out);
    ferry_buf_release(&json);
    return rc;
}

static void test_depth(void **state)
{
    ferry_grpc_proto *p = load_shop();
    char err[256] = "";
    (void)state;
    assert_int_equal(encode_tree(p, FERRY_GRPC_PROTO_DEPTH_MAX, err, sizeof(err)), 0);
    assert_int_equal(encode_tree(p, FERRY_GRPC_PROTO_DEPTH_MAX + 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested deeper than 64 levels"));
    assert_non_null(strstr(err, "child.child.child"));
    ferry_grpc_proto_destroy(p);
}

struct method_case {
    const char *method;
    const char *input; /* NULL: refused */
    int streaming;
};

static const struct method_case method_cases[] = {
    {"shop.Orders/Place", ".shop.Order", 0},
    {"shop.Orders/Upload", ".shop.Order", 1},
    {"shop.Orders/Cancel", NULL, 0},
    {"shop.Carts/Place", NULL, 0},
    {"Orders/Place", NULL, 0},
    {"shop.Orders", NULL, 0},
    {"shop.Orders/", NULL, 0},
};

static void test_method(void **state)
{
    ferry_grpc_proto *p = load_shop();
    (void)state;
    for (size_t i = 0; i < sizeof(method_cases) / sizeof(method_cases[0]); i++) {
        const struct method_case *c = &method_cases[i];
        const char *input = NULL;
        int streaming = -1;
        char err[256] = "";
        int rc = ferry_grpc_proto_method(p, c->method, &input, &streaming, err, sizeof(err));
        if (!c->input) {
            if (rc == 0)
                fail_msg("%s: found", c->method);
            assert_non_null(strstr(err, c->method));
            continue;
        }
        if (rc)
            fail_msg("%s: %s", c->method, err);
        assert_string_equal(input, c->input);
        assert_int_equal(streaming, c->streaming);
    }
    ferry_grpc_proto_destroy(p);
}

static void test_not_a_descriptor_set(void **state)
{
    char err[256] = "";
    (void)state;
    assert_null(ferry_grpc_proto_new("\xff\xff\xff", 3, err, sizeof(err)));
    assert_non_null(strstr(err, "FileDescriptorSet"));
    assert_null(ferry_grpc_proto_load("/nonexistent/x.pb", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    ferry_grpc_proto_destroy(NULL);
}

/* A set made without --include_imports: svc.proto's service only, its method's input type
 * (t.In, from types.proto) left out, and no message type at all. */
static const char services_only[] =
    "\x0a\x3c\x0a\x09svc.proto\x12\x01s\x1a\x0btypes.proto\x32\x17\x0a\x01S\x12\x12\x0a\x02"
    "Do\x12\x05.t.In\x1a\x05.t.In\x62\x06proto3";

static void test_input_type_missing(void **state)
{
    ferry_grpc_proto *p = ferry_grpc_proto_new(services_only, sizeof(services_only) - 1, NULL, 0);
    const char *input = NULL;
    int streaming;
    char err[256] = "";
    (void)state;
    assert_non_null(p);
    assert_int_equal(ferry_grpc_proto_method(p, "s.S/Do", &input, &streaming, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "input type '.t.In' is not in the descriptor set"));
    ferry_grpc_proto_destroy(p);
}

/* Sets made by hand (found by fuzz_grpc_proto): one with no types at all is read, and nothing
 * is found in it; one whose method has no name is refused, not read until a lookup crashes. */
static void test_hand_made_sets(void **state)
{
    /* FileDescriptorSet { file { service { name: "S" method {} } } } */
    static const char unnamed_method[] = "\x0a\x07\x32\x05\x0a\x01S\x12\x00";
    const char *input = NULL;
    struct ferry_buf out;
    char err[256] = "";
    int streaming = 0;
    ferry_grpc_proto *p = ferry_grpc_proto_new("", 0, err, sizeof(err));

    (void)state;
    assert_non_null(p);
    assert_int_equal(ferry_grpc_proto_method(p, "S/M", &input, &streaming, err, sizeof(err)), -1);
    ferry_buf_init(&out, 1024);
    assert_int_equal(ferry_grpc_proto_encode(p, "x.Y", "{}", 2, &out, err, sizeof(err)), -1);
    assert_int_equal(out.len, 0);
    ferry_buf_release(&out);
    ferry_grpc_proto_destroy(p);

    assert_null(ferry_grpc_proto_new(unnamed_method, sizeof(unnamed_method) - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "without a name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_type_missing),
        cmocka_unit_test(test_encode_good),
        cmocka_unit_test(test_encode_bad),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_not_a_descriptor_set),
        cmocka_unit_test(test_hand_made_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
