/*
 * grpc_wkt.h - the JSON text forms of protobuf's well-known types Timestamp and Duration.
 *
 * Proto3's JSON mapping writes a google.protobuf.Timestamp as an RFC 3339 string
 * ("2026-12-05T07:00:00.250Z", any UTC offset accepted) and a google.protobuf.Duration as
 * seconds with an "s" ("-1.5s"). grpc_proto.c encodes both messages from these strings; the
 * parsing lives here, apart from the wire encoding. Both give whole seconds and nanoseconds;
 * a negative duration has both parts negative (or zero), as the message wants.
 */
#ifndef FERRY_GRPC_WKT_H
#define FERRY_GRPC_WKT_H

#include <stddef.h>
#include <stdint.h>

/* Parses an RFC 3339 time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z with 0 to
 * 9 fraction digits and "Z" or an offset ("+01:00"). Returns 0 with *seconds (since the Unix
 * epoch) and *nanos set, or -1 with *why saying what is wrong. */
int ferry_grpc_wkt_timestamp(const char *text, size_t len, int64_t *seconds, int32_t *nanos,
                             const char **why);

/* Parses a duration like "3s", "-0.5s" or "1.000000001s" (at most 9 fraction digits, within
 * the message's range of 315,576,000,000 seconds either way). Returns 0 with *seconds and
 * *nanos set, or -1 with *why. */
int ferry_grpc_wkt_duration(const char *text, size_t len, int64_t *seconds, int32_t *nanos,
                            const char **why);

#endif
