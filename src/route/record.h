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
    rd_kafka_headers_t *headers; /* NULL when the record has none; not owned */
};

#endif
