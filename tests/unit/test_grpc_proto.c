/*
 * test_grpc_proto.c - JSON to protobuf from a descriptor set: every scalar type, enums by
 * name and number, nested, repeated and map fields, checked byte for byte against what
 * python3-protobuf's json_format encodes for the same JSON (tests/unit/data/grpc_shop.proto);
 * then inputs that must fail, each with the field path its message must name. The same for the
 * JSON forms of the well-known types (tests/unit/data/grpc_wkt.proto).
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
    {"{\"blob\": \"AAEC_w==\"}", "2a04000102ff"}, /* URL-safe, its '_' after decoded bytes */
    {"{\"blob\": \"AAEC_w\"}", "2a04000102ff"},
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
    {"{\"total\": \"1e2\"}", "390000000000005940"},
    {"{\"ratio\": 3.4028234663852886e38}", "45ffff7f7f"}, /* the largest float */
    {"{\"card\": \"c\"}", "ba010163"},
    {"{\"card\": \"c\", \"voucher\": null}", "ba010163"},
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
    {"{\"blob\": \"AA+C_w==\"}", "blob: expected base64"}, /* both alphabets in one */
    {"{\"codes\": [1, 2.5]}", "codes[1]: expected an integer"},
    {"{\"codes\": [1, 4294967296]}", "codes[1]: integer out of range"},
    {"{\"u32\": -1}", "u32: integer out of range"},
    {"{\"u64\": \"-1\"}", "u64: expected an unsigned integer"},
    {"{\"u64\": \" -1\"}", "u64: expected an unsigned integer"}, /* strtoull wraps it */
    {"{\"f64\": \" -2\"}", "f64: expected an unsigned integer"},
    {"{\"u64\": \"+1\"}", "u64: expected an unsigned integer"},
    {"{\"sf64\": \" 5\"}", "sf64: expected an integer"},
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
    /* strtod takes these; protobuf's JSON mapping does not */
    {"{\"total\": \"0x1p3\"}", "total: expected a number, got '0x1p3'"},
    {"{\"total\": \"inf\"}", "total: expected a number, got 'inf'"},
    {"{\"total\": \" 1\"}", "total: expected a number, got ' 1'"},
    {"{\"total\": \"+1\"}", "total: expected a number, got '+1'"},
    {"{\"total\": \"1.\"}", "total: expected a number, got '1.'"},
    /* a float past the largest one was sent as Infinity */
    {"{\"ratio\": 1e39}", "ratio: number out of range for a float"},
    {"{\"ratio\": \"-1e39\"}", "ratio: number out of range for a float"},
    /* the receiver would keep only the last of these */
    {"{\"card\": \"c\", \"voucher\": \"v\"}",
     "'card' and 'voucher' are both set, but oneof 'payment' holds only one"},
    {"{\"note\": {}, \"mainItem\": {}, \"main_item\": {}}",
     "'mainItem' and 'main_item' name the same field of shop.Order"},
};

/* Timestamps, durations, wrappers, Struct, Value, ListValue and FieldMask in wkt.Event, as
 * python3-protobuf's json_format.Parse and SerializeToString(deterministic=True) give them. */
static const struct good_case wkt_good_cases[] = {
    {"{\"at\": \"2026-12-05T07:00:00Z\"}", "0a0608f0ecced806"},
    {"{\"at\": \"2026-12-05T07:00:00.250Z\"}", "0a0b08f0ecced8061080e59a77"},
    {"{\"at\": \"2026-12-05T08:00:00.000000001+01:00\"}", "0a0808f0ecced8061001"},
    {"{\"at\": \"1969-12-31T23:59:59Z\"}", "0a0b08ffffffffffffffffff01"},
    {"{\"at\": \"0001-01-01T00:00:00Z\"}", "0a0b088092b8c398feffffff01"},
    {"{\"at\": \"9999-12-31T23:59:59.999999999Z\"}", "0a0d08ff82d1ffaf0710ff93ebdc03"},
    {"{\"at\": \"1970-01-01T00:00:00Z\"}", "0a00"},
    {"{\"took\": \"1.5s\"}", "120808011080cab5ee01"},
    {"{\"took\": \"-1.5s\"}", "121608ffffffffffffffffff011080b6ca91feffffffff01"},
    {"{\"took\": \"0.000000001s\"}", "12021001"},
    {"{\"took\": \"315576000000s\"}", "12070880bcaece9709"},
    {"{\"count\": \"9007199254740993\"}", "1a09088180808080808010"},
    {"{\"count\": -3}", "1a0b08fdffffffffffffffff01"},
    {"{\"name\": \"hi\"}", "22040a026869"},
    {"{\"name\": \"\"}", "2200"},
    {"{\"flag\": false}", "2a00"},
    {"{\"count\": 0}", "1a00"},
    {"{\"flag\": true}", "2a020801"},
    {"{\"score\": 2.5}", "3209090000000000000440"},
    {"{\"data\": \"AAEC\"}", "3a050a03000102"},
    {"{\"small\": 7}", "42020807"},
    {"{\"ratio\": 0.25}", "7a050d0000803e"},
    {"{\"attrs\": {\"a\": 1}}", "4a100a0e0a0161120911000000000000f03f"},
    {"{\"attrs\": {\"a\": {\"b\": [true, null, \"x\"]}}}",
     "4a1f0a1d0a016112182a160a140a0162120f320d0a0220010a0208000a031a0178"},
    {"{\"attrs\": {}}", "4a00"},
    {"{\"any\": null}", "52020800"},
    {"{\"any\": \"s\"}", "52031a0173"},
    {"{\"any\": 1.5}", "520911000000000000f83f"},
    {"{\"any\": false}", "52022000"},
    {"{\"any\": [1, {\"k\": null}]}", "521a32180a0911000000000000f03f0a0b2a090a070a016b12020800"},
    {"{\"any\": {}}", "52022a00"},
    {"{\"list\": [1, \"a\"]}", "5a100a0911000000000000f03f0a031a0161"},
    {"{\"list\": []}", "5a00"},
    {"{\"mask\": \"user.displayName,photo\"}",
     "621a0a11757365722e646973706c61795f6e616d650a0570686f746f"},
    {"{\"mask\": \"\"}", "6200"},
    {"{\"times\": [\"1970-01-01T00:00:01Z\", \"1970-01-01T00:00:02Z\"]}", "6a0208016a020802"},
    {"{\"extra\": {\"k\": null}}", "72070a016b12020800"},
    {"{\"at\": null, \"count\": null}", ""},
    {"{\"payload\": {\"@type\": \"type.googleapis.com/wkt.Item\", \"sku\": \"x\", \"qty\": 2}}",
     "8201250a1c747970652e676f6f676c65617069732e636f6d2f776b742e4974656d12050a01781002"},
    {"{\"payload\": {\"@type\": \"type.googleapis.com/wkt.Item\"}}",
     "82011e0a1c747970652e676f6f676c65617069732e636f6d2f776b742e4974656d"},
    {"{\"payload\": {\"@type\": \"type.googleapis.com/google.protobuf.Duration\", \"value\": "
     "\"1.5s\"}}",
     "8201380a2c747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e4475726174"
     "696f6e120808011080cab5ee01"},
    {"{\"payload\": {\"@type\": \"type.googleapis.com/google.protobuf.Empty\"}}",
     "82012b0a29747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e456d70747"
     "9"},
    {"{\"nothing\": {}}", "8a0100"},
    {"{\"count\": \"0\"}", "1a00"},
    {"{\"score\": -0.0}", "3209090000000000000080"},
    {"{\"ratio\": 1e-50}", "7a00"},
    {"{\"mask\": \"a,\"}", "62050a01610a00"},
    {"{\"mask\": \",a\"}", "62050a000a0161"},
    /* the plain-message forms ferry took before it knew the JSON forms (not python's) */
    {"{\"at\": {\"seconds\": 5}}", "0a020805"},
    {"{\"count\": {\"value\": \"7\"}}", "1a020807"},
    {"{\"mask\": {\"paths\": [\"a\"]}}", "62030a0161"},
};

static const struct bad_case wkt_bad_cases[] = {
    {"{\"at\": 5}", "at: expected an RFC 3339 time in a string, got a number"},
    {"{\"at\": \"2026-13-01T00:00:00Z\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-02-29T00:00:00Z\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-12-05T07:00:00\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-12-05 07:00:00Z\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-12-05T07:00:00.Z\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-12-05T07:00:00.1234567890Z\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"2026-12-05T07:00:00+1:00\"}", "at: expected an RFC 3339 time"},
    {"{\"at\": \"0001-01-01T00:00:00+00:01\"}", "at: time out of range"},
    {"{\"times\": [\"1970-01-01T00:00:00Z\", \"soon\"]}", "times[1]: expected an RFC 3339"},
    {"{\"took\": 1.5}", "took: expected a duration like \"1.5s\" in a string, got a number"},
    {"{\"took\": \"1.5\"}", "took: expected a duration in seconds like 1.5s, got '1.5'"},
    {"{\"took\": \"s\"}", "took: expected a duration"},
    {"{\"took\": \"--1s\"}", "took: expected a duration"},
    {"{\"took\": \"315576000001s\"}", "took: duration out of range"},
    {"{\"count\": \"many\"}", "count: expected an integer, got 'many'"},
    {"{\"flag\": 0}", "flag: expected a boolean, got a number"},
    {"{\"name\": 0}", "name: expected a string, got a number"},
    {"{\"small\": -1}", "small: integer out of range"},
    {"{\"attrs\": [1]}", "attrs: expected an object, got an array"},
    {"{\"attrs\": {\"a\": {\"b\": [1, {\"c\": {\"d\": {}}}, \"x\"]}}, \"list\": \"x\"}",
     "list: expected an array, got a string"},
    {"{\"mask\": \"user.display_name\"}", "mask: field mask path 'user.display_name' has an"},
    {"{\"mask\": [\"a\"]}", "mask: expected field paths like \"a.b,c\" in a string, got an array"},
    {"{\"payload\": {\"@type\": \"x/wkt.Item\\u0000y\"}}", "payload: \"@type\" holds a NUL byte"},
    {"{\"payload\": {\"@type\": \"type.googleapis.com/wkt.Nope\"}}",
     "payload: @type 'type.googleapis.com/wkt.Nope' is not in the descriptor set"},
    {"{\"payload\": {\"@type\": \"x/wkt.Item\", \"colour\": 1}}",
     "payload.colour: unknown field in wkt.Item"},
    {"{\"payload\": {\"@type\": \"x/google.protobuf.Timestamp\"}}",
     "payload: expected \"value\" with the google.protobuf.Timestamp"},
    {"{\"payload\": {\"@type\": \"x/google.protobuf.Timestamp\", \"value\": \"now\"}}",
     "payload: expected an RFC 3339 time"},
};

static ferry_grpc_proto *load_set(const char *name)
{
    const char *dir = getenv("FERRY_TEST_DATA");
    char path[512], err[256] = "";
    ferry_grpc_proto *p;
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/unit/data", name);
    p = ferry_grpc_proto_load(path, err, sizeof(err));
    if (!p)
        fail_msg("loading %s: %s", path, err);
    return p;
}

static ferry_grpc_proto *load_shop(void)
{
    return load_set("grpc_shop.pb");
}

static void to_hex(const char *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)data[i]);
    out[2 * len] = '\0';
}

/* Encodes each case as message type of set and compares the bytes. */
static void check_good(const char *set, const char *type, const struct good_case *cases, size_t n)
{
    ferry_grpc_proto *p = load_set(set);
    for (size_t i = 0; i < n; i++) {
        const struct good_case *c = &cases[i];
        struct ferry_buf out;
        char err[256] = "", hex[512];
        ferry_buf_init(&out, 1024);
        if (ferry_grpc_proto_encode(p, type, c->json, strlen(c->json), &out, err, sizeof(err)))
            fail_msg("%s: refused: %s", c->json, err);
        to_hex(out.data ? out.data : "", out.len, hex);
        if (strcmp(hex, c->hex) != 0)
            fail_msg("%s: got %s, want %s", c->json, hex, c->hex);
        ferry_buf_release(&out);
    }
    ferry_grpc_proto_destroy(p);
}

/* Encodes each case and checks the error, and that what out held before is kept. */
static void check_bad(const char *set, const char *type, const struct bad_case *cases, size_t n)
{
    ferry_grpc_proto *p = load_set(set);
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *c = &cases[i];
        struct ferry_buf out;
        char err[256] = "";
        ferry_buf_init(&out, 1024);
        ferry_buf_adds(&out, "kept");
        if (ferry_grpc_proto_encode(p, type, c->json, strlen(c->json), &out, err, sizeof(err)) == 0)
            fail_msg("%s: accepted", c->json);
        if (!strstr(err, c->error))
            fail_msg("%s: error '%s', want '%s'", c->json, err, c->error);
        assert_int_equal(out.len, 4);
        ferry_buf_release(&out);
    }
    ferry_grpc_proto_destroy(p);
}

static void test_encode_good(void **state)
{
    (void)state;
    check_good("grpc_shop.pb", "shop.Order", good_cases,
               sizeof(good_cases) / sizeof(good_cases[0]));
}

static void test_encode_bad(void **state)
{
    (void)state;
    check_bad("grpc_shop.pb", ".shop.Order", bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]));
}

static void test_well_known_good(void **state)
{
    (void)state;
    check_good("grpc_wkt.pb", "wkt.Event", wkt_good_cases,
               sizeof(wkt_good_cases) / sizeof(wkt_good_cases[0]));
}

static void test_well_known_bad(void **state)
{
    (void)state;
    check_bad("grpc_wkt.pb", "wkt.Event", wkt_bad_cases,
              sizeof(wkt_bad_cases) / sizeof(wkt_bad_cases[0]));
}

/* Encodes {"any": [[...]]}, arrays nested levels deep, as a wkt.Event. */
static int encode_nested_value(ferry_grpc_proto *p, int levels, char *err, size_t err_size)
{
    struct ferry_buf out, json;
    int rc;
    ferry_buf_init(&out, 1 << 16);
    ferry_buf_init(&json, 4096);
    ferry_buf_adds(&json, "{\"any\": ");
    for (int i = 0; i < levels; i++)
        ferry_buf_adds(&json, "[");
    for (int i = 0; i < levels; i++)
        ferry_buf_adds(&json, "]");
    ferry_buf_adds(&json, "}");
    rc = ferry_grpc_proto_encode(p, "wkt.Event", json.data, json.len, &out, err, err_size);
    ferry_buf_release(&json);
    ferry_buf_release(&out);
    return rc;
}

/* A Value nests through lists and structs; each JSON level counts once towards the limit,
 * the Event around it one more. */
static void test_well_known_depth(void **state)
{
    ferry_grpc_proto *p = load_set("grpc_wkt.pb");
    char err[256] = "";
    (void)state;
    assert_int_equal(encode_nested_value(p, FERRY_GRPC_PROTO_DEPTH_MAX - 1, err, sizeof(err)), 0);
    assert_int_equal(encode_nested_value(p, FERRY_GRPC_PROTO_DEPTH_MAX, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested deeper than"));
    ferry_grpc_proto_destroy(p);
}

struct root_case {
    const char *type, *json, *hex;
};

/* A request type may itself be a well-known type, written in its JSON form at the root. */
static const struct root_case root_cases[] = {
    {"google.protobuf.StringValue", "\"hi\"", "0a026869"},
    {"google.protobuf.Timestamp", "\"1970-01-01T00:00:01Z\"", "0801"},
    {"google.protobuf.Duration", "\"-1s\"", "08ffffffffffffffffff01"},
};

static void test_well_known_root(void **state)
{
    ferry_grpc_proto *p = load_set("grpc_wkt.pb");
    (void)state;
    for (size_t i = 0; i < sizeof(root_cases) / sizeof(root_cases[0]); i++) {
        const struct root_case *c = &root_cases[i];
        struct ferry_buf out;
        char err[256] = "", hex[64];
        ferry_buf_init(&out, 1024);
        if (ferry_grpc_proto_encode(p, c->type, c->json, strlen(c->json), &out, err, sizeof(err)))
            fail_msg("%s %s: refused: %s", c->type, c->json, err);
        to_hex(out.data, out.len, hex);
        assert_string_equal(hex, c->hex);
        ferry_buf_release(&out);
    }
    ferry_grpc_proto_destroy(p);
}

/* A set may define google.protobuf.Int64Value as it likes; one whose "value" is a message of
 * its own type is refused, not followed round and round. */
static const char looping_wrapper[] = "\x0a\x98\x01\x0a\x07\x65\x2e\x70\x72\x6f\x74\x6f\x12\x0f\x67"
                                      "\x6f\x6f\x67\x6c\x65\x2e\x70\x72\x6f\x74"
                                      "\x6f\x62\x75\x66\x22\x3f\x0a\x0a\x49\x6e\x74\x36\x34\x56\x61"
                                      "\x6c\x75\x65\x12\x31\x0a\x05\x76\x61"
                                      "\x6c\x75\x65\x18\x01\x20\x01\x28\x0b\x32\x1b\x2e\x67\x6f\x6f"
                                      "\x67\x6c\x65\x2e\x70\x72\x6f\x74\x6f"
                                      "\x62\x75\x66\x2e\x49\x6e\x74\x36\x34\x56\x61\x6c\x75\x65\x52"
                                      "\x05\x76\x61\x6c\x75\x65\x22\x33\x0a"
                                      "\x06\x48\x6f\x6c\x64\x65\x72\x12\x29\x0a\x01\x76\x18\x01\x20"
                                      "\x01\x28\x0b\x32\x1b\x2e\x67\x6f\x6f"
                                      "\x67\x6c\x65\x2e\x70\x72\x6f\x74\x6f\x62\x75\x66\x2e\x49\x6e"
                                      "\x74\x36\x34\x56\x61\x6c\x75\x65\x52"
                                      "\x01\x76\x62\x06\x70\x72\x6f\x74\x6f\x33";

static void test_looping_wrapper(void **state)
{
    ferry_grpc_proto *p =
        ferry_grpc_proto_new(looping_wrapper, sizeof(looping_wrapper) - 1, NULL, 0);
    struct ferry_buf out;
    char err[256] = "";
    (void)state;
    assert_non_null(p);
    ferry_buf_init(&out, 1024);
    assert_int_equal(ferry_grpc_proto_encode(p, "google.protobuf.Holder", "{\"v\": 1}", 8, &out,
                                             err, sizeof(err)),
                     -1);
    assert_non_null(
        strstr(err, "v: google.protobuf.Int64Value in the descriptor set is not a wrapper"));
    ferry_buf_release(&out);
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
        cmocka_unit_test(test_well_known_good),
        cmocka_unit_test(test_well_known_bad),
        cmocka_unit_test(test_well_known_depth),
        cmocka_unit_test(test_well_known_root),
        cmocka_unit_test(test_looping_wrapper),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_not_a_descriptor_set),
        cmocka_unit_test(test_hand_made_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
