/*
 * record.h - a read-only view of one consumed Kafka record.
 *
 * The route code fills it from an rd_kafka_message_t without copying; the helpers that turn
 * records into requests (templates, bodies, batches) read only this view, so they can be
 * unit-tested without a Kafka client. The view owns nothing.
 */
#ifndef FERRY_RECORD_H
#define FERRY_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct ferry_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the record has none */
    const char *key;      /* NULL when the record has no key */
    size_t key_len;
    const char *value; /* NULL for a tombstone */
    size_t value_len;
    rd_kafka_headers_t *headers;   /* set directly, or NULL: see ferry_record_headers() */
    const rd_kafka_message_t *msg; /* the message behind the view, or NULL */
};

/* The record's headers, or NULL when it has none. A view of a message parses them from it on
 * first use (librdkafka allocates them then and keeps them with the message), so a record
 * whose headers nothing reads costs nothing. Worker thread of the view's route. */
static inline rd_kafka_headers_t *ferry_record_headers(const struct ferry_record *r)
{
    rd_kafka_headers_t *h = NULL;

    if (r->headers || !r->msg)
        return r->headers;
    return rd_kafka_message_headers(r->msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR ? h : NULL;
}

#endif
