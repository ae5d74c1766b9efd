/*
 * reply.h - what every table answer shares: the 503 of a table that does not answer yet, the
 * content type of a value, the partition of a key, and counting answers in /metrics.
 */
#ifndef FERRY_TABLE_REPLY_H
#define FERRY_TABLE_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "core/httpd.h"
#include "table/state.h"

#define FERRY_TABLE_RETRY_AFTER "1" /* seconds, in every 429 and 503 of the tables' API */

/* Counts an answer of t by status class, and its latency from started_us (ferry_clock_us).
 * Any thread. */
void ferry_table_count(struct table *t, int status, int64_t started_us);

/* Answers 503 with Retry-After and the table's progress unless t answers reads. Returns
 * nonzero when it answered. */
int ferry_table_refuse_unready(struct table *t, ferry_http_req *req);

/* A read forwarded here (it carries the hop header) by an instance that took this one for a
 * holder, while this one does not know its partitions yet (starting, or failed before it
 * did): answers 508, so that the sender tries the next holder, and returns nonzero; else
 * returns 0. Otherwise like ferry_table_refuse_unready, for a read not forwarded. */
int ferry_table_refuse_unplaced(struct table *t, ferry_http_req *req, int forwarded,
                                int64_t started_us);

/* The content type of a value: the record's content-type header, else the table's
 * content_type, else application/json for valid JSON and application/octet-stream. */
const char *ferry_table_content_type(const struct table *t, const char *row_type, const void *value,
                                     size_t len);

/* The partition key belongs to by the table's partitioner, or -1 before the partitions are
 * known. */
int32_t ferry_table_key_partition(const struct table *t, const void *key, size_t len);

/* Checks a request's query parameters against known (NULL-terminated): each must be known, have
 * a value (name=...), come once (min_offset may repeat) and hold no NUL byte (but prefix, read
 * with ferry_http_req_query_n). Returns 0, or -1 with why set to the message of a 400. */
int ferry_table_check_query(const ferry_http_req *req, const char *const *known, char *why,
                            size_t why_size);

#endif
