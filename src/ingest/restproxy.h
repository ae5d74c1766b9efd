/*
 * restproxy.h - the Confluent REST Proxy v2 produce API, as text: request paths, content types,
 * bodies into record batches, and the `offsets` answer.
 *
 * Nothing here touches Kafka or the HTTP server, so each function can be tested on its own;
 * ingest.c calls them from the server's threads. A body looks like
 *   {"records":[{"key":K,"value":V,"partition":P,"headers":[{"name":N,"value":H}]}]}
 * where K and V are any JSON (stored as compact JSON text) in the json format and base64
 * strings in the binary format; `headers` is ferry's extension (see docs/ingest.md).
 */
#ifndef FERRY_INGEST_RESTPROXY_H
#define FERRY_INGEST_RESTPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ingest/batch.h"

/* The embedded format, from the request's Content-Type. */
enum ferry_rp_format {
    FERRY_RP_JSON,   /* application/vnd.kafka.json.v2+json, application/json */
    FERRY_RP_BINARY, /* application/vnd.kafka.binary.v2+json */
};

/* The content type of REST Proxy v2 answers. */
#define FERRY_RP_ANSWER_TYPE "application/vnd.kafka.v2+json"

/* REST Proxy error codes ferry answers with (HTTP status x 100 + a detail). */
#define FERRY_RP_UNAUTHORIZED 40101
#define FERRY_RP_FORBIDDEN 40301
#define FERRY_RP_TOPIC_NOT_FOUND 40401
#define FERRY_RP_PARTITION_NOT_FOUND 40402
#define FERRY_RP_TOO_LARGE 42201
#define FERRY_RP_BAD_PARTITION 42202
#define FERRY_RP_QUEUE_FULL 42901
#define FERRY_RP_KAFKA_ERROR 50002

/* What a request path names. */
enum ferry_rp_path {
    FERRY_RP_PATH_OK,
    FERRY_RP_PATH_NO_ROUTE,      /* not /topics/{t} or /topics/{t}/partitions/{p} */
    FERRY_RP_PATH_BAD_TOPIC,     /* not a legal topic name */
    FERRY_RP_PATH_BAD_PARTITION, /* not a partition number */
};

/* Splits path (starting "/topics/") into the topic (NUL-terminated into topic, which holds
 * FERRY_TOPIC_NAME_MAX + 1 bytes) and the partition (FERRY_INGEST_PARTITION_ANY without one). */
enum ferry_rp_path ferry_restproxy_path(const char *path, char *topic, int32_t *partition);

/* Reads the embedded format from a Content-Type value (parameters such as charset are
 * ignored). Returns 0, or -1 when the type is missing or not supported. */
int ferry_restproxy_format(const char *content_type, enum ferry_rp_format *format);

/* Returns the content type to answer with for an Accept header value (NULL or empty: any),
 * or NULL when none that ferry writes is acceptable. */
const char *ferry_restproxy_answer_type(const char *accept);

/* Parses a produce body into out, whose arena must hold at least len bytes. path_partition is
 * the partition in the path or FERRY_INGEST_PARTITION_ANY. Returns 0, or the HTTP status to
 * answer (413 or 422) with *code the REST Proxy error code and errstr naming what was wrong
 * and where, e.g. "records[3].value: base64 is invalid". */
int ferry_restproxy_parse(const char *body, size_t len, enum ferry_rp_format format,
                          int32_t path_partition, const struct ferry_ingest_limits *limits,
                          struct ferry_ingest_batch *out, int *code, char *errstr,
                          size_t errstr_size);

/* One entry of the `offsets` answer: partition and offset are null when negative; error_code
 * and error are null when error_code is 0. */
struct ferry_rp_offset {
    int32_t partition;
    int64_t offset;
    int error_code;
    const char *error;
};

/* Fills *o with the result of record i. */
typedef void (*ferry_rp_offset_fn)(void *arg, size_t i, struct ferry_rp_offset *o);

/* Writes the answer {"offsets":[...],"key_schema_id":null,"value_schema_id":null} for n
 * records; with a nonzero error_code the object also carries "error_code" and "message", the
 * shape of a REST Proxy error, for answers in which every record failed. Returns 0, or -1 when
 * out's cap was reached. */
int ferry_restproxy_write_offsets(struct ferry_buf *out, size_t n, ferry_rp_offset_fn fn, void *arg,
                                  int error_code, const char *message);

#endif
