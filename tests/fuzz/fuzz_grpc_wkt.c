/*
 * fuzz_grpc_wkt.c - libFuzzer harness for the JSON forms of protobuf's well-known types, which
 * a gRPC route encodes from records' JSON: the Timestamp and Duration texts (route/grpc_wkt.c)
 * and whole messages of them (route/grpc_proto.c) against tests/unit/data/grpc_wkt.proto, whose
 * descriptor set is made and embedded at build time.
 *
 * Input: the first byte modulo 3 picks the case (0: a Timestamp's text, 1: a Duration's, 2: a
 * wkt.Event in JSON); the rest is the text. A time or duration accepted must be in its type's
 * range, with nanos of the seconds' sign, and a Timestamp written in UTC without a fraction
 * must print back as the same text. An Event encoded must be well-formed protobuf (every field
 * a known wire type, ending where the bytes end), the same the second time, and after what the
 * buffer held; one refused must leave the buffer as it was, with a reason.
 */
#include <stdio.h>
#include <time.h>

#include "core/buf.h"
#include "route/grpc_proto.h"
#include "route/grpc_wkt.h"
#include "fuzz.h"

#define FUZZ_WKT_OUT_MAX (1u << 20)
#define FUZZ_WKT_MARK "mark" /* what out holds before an encode */

extern const unsigned char fuzz_grpc_wkt_pb[];
extern const size_t fuzz_grpc_wkt_pb_len;

static ferry_grpc_proto *fuzz_wkt_proto;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_wkt_proto = ferry_grpc_proto_new(fuzz_grpc_wkt_pb, fuzz_grpc_wkt_pb_len, err, sizeof(err));
    if (!fuzz_wkt_proto) {
        fprintf(stderr, "fuzz_grpc_wkt: grpc_wkt.pb: %s\n", err);
        abort();
    }
    return 0;
}

static void fuzz_wkt_timestamp(const char *text, size_t n)
{
    int64_t seconds;
    int32_t nanos;
    const char *why;
    char back[32];
    struct tm tm;
    time_t t;

    if (ferry_grpc_wkt_timestamp(text, n, &seconds, &nanos, &why))
        return;
    if (seconds < -62135596800LL || seconds > 253402300799LL || nanos < 0 || nanos > 999999999)
        abort(); /* out of timestamp.proto's range */
    if (n != 20 || text[19] != 'Z')
        return;
    t = (time_t)seconds;
    if (!gmtime_r(&t, &tm) ||
        snprintf(back, sizeof(back), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) != 20 ||
        memcmp(back, text, 20) != 0)
        abort(); /* read as another time than it names */
}

static void fuzz_wkt_duration(const char *text, size_t n)
{
    int64_t seconds;
    int32_t nanos;
    const char *why;

    if (ferry_grpc_wkt_duration(text, n, &seconds, &nanos, &why))
        return;
    if (seconds < -315576000000LL || seconds > 315576000000LL || nanos < -999999999 ||
        nanos > 999999999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
        abort(); /* out of duration.proto's range, or the parts' signs differ */
}

/* Reads a varint at *p. Returns 0, or -1 when the bytes end first or it is over 10 bytes. */
static int fuzz_wkt_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Whether bytes are a sequence of well-formed fields (not looking inside length-delimited ones). */
static int fuzz_wkt_well_formed(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    uint64_t tag, len;

    while (p < end) {
        if (fuzz_wkt_varint(&p, end, &tag) || (tag >> 3) == 0)
            return 0;
        switch (tag & 7) {
        case 0:
            if (fuzz_wkt_varint(&p, end, &len))
                return 0;
            break;
        case 1:
        case 5:
            len = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < len)
                return 0;
            p += len;
            break;
        case 2:
            if (fuzz_wkt_varint(&p, end, &len) || (uint64_t)(end - p) < len)
                return 0;
            p += len;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

/* Encodes json as a wkt.Event into a buffer that holds FUZZ_WKT_MARK first. Returns the result. */
static int fuzz_wkt_encode(const char *json, size_t len, struct ferry_buf *out)
{
    size_t mark = strlen(FUZZ_WKT_MARK);
    char err[512] = "";
    int rc;

    ferry_buf_init(out, FUZZ_WKT_OUT_MAX);
    if (ferry_buf_adds(out, FUZZ_WKT_MARK))
        abort();
    rc = ferry_grpc_proto_encode(fuzz_wkt_proto, "wkt.Event", json, len, out, err, sizeof(err));
    if (out->len < mark || memcmp(out->data, FUZZ_WKT_MARK, mark) != 0)
        abort(); /* what out held was overwritten */
    if (rc && (out->len != mark || !err[0]))
        abort(); /* a failure left bytes behind, or gave no reason */
    if (!rc && !fuzz_wkt_well_formed((const unsigned char *)out->data + mark, out->len - mark))
        abort(); /* not protobuf */
    return rc;
}

static void fuzz_wkt_event(const uint8_t *data, size_t size)
{
    struct ferry_buf first, second;

    if (fuzz_wkt_encode((const char *)data, size, &first) == 0) {
        if (fuzz_wkt_encode((const char *)data, size, &second) != 0 || second.len != first.len ||
            memcmp(first.data, second.data, first.len) != 0)
            abort(); /* the same JSON encoded differently */
        ferry_buf_release(&second);
    }
    ferry_buf_release(&first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_wkt_timestamp((const char *)data + 1, size - 1);
        break;
    case 1:
        fuzz_wkt_duration((const char *)data + 1, size - 1);
        break;
    default:
        fuzz_wkt_event(data + 1, size - 1);
        break;
    }
    return 0;
}
