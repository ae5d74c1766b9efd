/*
 * deadletter_headers.h - reading ferry's headers back from a dead letter: the ones of its
 * newest failure.
 *
 * A record that already carried ferry.* headers when it was dead-lettered (one replayed from a
 * dead-letter topic with them) keeps them, and the new ones come after (deadletter.h), so a
 * dead letter may hold several blocks of ferry's headers, oldest first. Every block starts
 * with ferry.error, the first header a dead letter gets, but the optional ones
 * (ferry.http_status, ferry.timestamp, ferry.response, ferry.grpc_status,
 * ferry.grpc_message) are missing from a block whose failure had none: the last occurrence of
 * such a header may be an earlier failure's. A timeout after an old 500 has no status, not
 * 500. This reads a header in the newest block only: the headers from the last ferry.error on.
 */
#ifndef FERRY_DEADLETTER_HEADERS_H
#define FERRY_DEADLETTER_HEADERS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Finds header name in the newest block of ferry's headers of h (NULL: no headers): its last
 * occurrence from the last ferry.error on, or in all of h when h holds no ferry.error (a dead
 * letter written by hand). Returns 0 with *value and *size set (the value belongs to h and may
 * be NULL for a header without one), or -1 when the newest block lacks it. Any thread. */
int ferry_deadletter_headers_get(const rd_kafka_headers_t *h, const char *name, const void **value,
                                 size_t *size);

#endif
