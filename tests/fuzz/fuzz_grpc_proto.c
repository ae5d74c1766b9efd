/*
 * fuzz_grpc_proto.c - libFuzzer harness for the gRPC target's JSON to protobuf encoding
 * (route/grpc_proto.c), against the schema of tests/unit/data/grpc_shop.proto: its descriptor
 * set is made and embedded at build time, with protobuf-c's bindings for the same file.
 *
 * Input: the first byte picks the message type (shop.Order, shop.Item, shop.Tree, which nests
 * without end, or shop.Order.Note); the rest is a record's JSON. What encodes must unpack with
 * protobuf-c's generic unpacker as the same type, encode to the same bytes a second time, and
 * be appended after what out held; what fails must leave out as it was. With the first byte's
 * top bit set, the rest is a descriptor set instead, whose methods and types are looked up.
 */
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "core/buf.h"
#include "route/grpc_proto.h"
#include "grpc_shop.pb-c.h"
#include "fuzz.h"

#define FUZZ_GRPC_OUT_MAX (1u << 20)
#define FUZZ_GRPC_MARK "mark" /* what out holds before an encode */

extern const unsigned char fuzz_grpc_shop_pb[];
extern const size_t fuzz_grpc_shop_pb_len;

static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
} fuzz_types[] = {
    {"shop.Order", &shop__order__descriptor},
    {".shop.Item", &shop__item__descriptor},
    {"shop.Tree", &shop__tree__descriptor},
    {".shop.Order.Note", &shop__order__note__descriptor},
};

static ferry_grpc_proto *fuzz_proto;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_proto = ferry_grpc_proto_new(fuzz_grpc_shop_pb, fuzz_grpc_shop_pb_len, err, sizeof(err));
    if (!fuzz_proto) {
        fprintf(stderr, "fuzz_grpc_proto: grpc_shop.pb: %s\n", err);
        abort();
    }
    return 0;
}

/* Encodes json as type into a buffer that holds FUZZ_GRPC_MARK first. Returns the result. */
static int fuzz_grpc_encode(const char *type, const char *json, size_t len, struct ferry_buf *out)
{
    char err[512] = "";
    int rc;

    ferry_buf_init(out, FUZZ_GRPC_OUT_MAX);
    if (ferry_buf_adds(out, FUZZ_GRPC_MARK))
        abort();
    rc = ferry_grpc_proto_encode(fuzz_proto, type, json, len, out, err, sizeof(err));
    if (out->len < strlen(FUZZ_GRPC_MARK) ||
        memcmp(out->data, FUZZ_GRPC_MARK, strlen(FUZZ_GRPC_MARK)))
        abort(); /* what out held was overwritten */
    if (rc && (out->len != strlen(FUZZ_GRPC_MARK) || !err[0]))
        abort(); /* a failure left bytes behind, or gave no reason */
    return rc;
}

static void fuzz_grpc_json(unsigned pick, const uint8_t *data, size_t size)
{
    size_t t = pick % (sizeof(fuzz_types) / sizeof(fuzz_types[0])), mark = strlen(FUZZ_GRPC_MARK);
    char *json = malloc(size ? size : 1);
    struct ferry_buf first, second;
    ProtobufCMessage *m;

    if (!json)
        return;
    if (size)
        memcpy(json, data, size);
    if (fuzz_grpc_encode(fuzz_types[t].name, json, size, &first) == 0) {
        m = protobuf_c_message_unpack(fuzz_types[t].desc, NULL, first.len - mark,
                                      (const uint8_t *)first.data + mark);
        if (!m || !protobuf_c_message_check(m))
            abort(); /* ferry wrote bytes protobuf-c does not read as the type */
        protobuf_c_message_free_unpacked(m, NULL);
        if (fuzz_grpc_encode(fuzz_types[t].name, json, size, &second) != 0 ||
            second.len != first.len || memcmp(first.data, second.data, first.len) != 0)
            abort(); /* the same JSON encoded differently */
        ferry_buf_release(&second);
    }
    ferry_buf_release(&first);
    free(json);
}

/* A hostile descriptor set: parsed, and when it parses, a method and a type looked up in it. */
static void fuzz_grpc_descriptor_set(const uint8_t *data, size_t size)
{
    const char *input = NULL;
    int streaming = 0;
    struct ferry_buf out;
    char err[512];
    ferry_grpc_proto *p = ferry_grpc_proto_new(data, size, err, sizeof(err));

    if (!p)
        return;
    ferry_buf_init(&out, FUZZ_GRPC_OUT_MAX);
    if (ferry_grpc_proto_method(p, "shop.Orders/Place", &input, &streaming, err, sizeof(err)) == 0)
        (void)ferry_grpc_proto_encode(p, input, "{}", 2, &out, err, sizeof(err));
    (void)ferry_grpc_proto_encode(p, "shop.Order", "{\"id\":\"x\",\"items\":[{}]}", 23, &out, err,
                                  sizeof(err));
    ferry_buf_release(&out);
    ferry_grpc_proto_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        fuzz_grpc_descriptor_set(data + 1, size - 1);
    else
        fuzz_grpc_json(data[0], data + 1, size - 1);
    return 0;
}
