/*
 * retry_topic.h - what a record parked on a route's retry topic carries, and when it is due.
 *
 * Retry topics are non-blocking delayed retries: once a record's in-place attempts ran out,
 * the route produces it to its retry topic N (1-based) instead of holding its partition, and
 * consumes it back from there once its delay passed. This file is the pure part of that: the
 * topic names, the headers a parked record carries and their parsing, and the due-time
 * arithmetic. Nothing here talks to Kafka beyond building and reading a header list, so
 * tests/unit/test_retry_topic.c covers it without a broker.
 *
 * A parked record keeps its key and value byte for byte and its own headers in order, minus
 * any headers this file writes (so a record parked twice does not carry two sets); then come:
 *
 *   ferry.retry.stage  the retry topic it sits on, 1 for the first
 *   ferry.retry.due    when it is due again, ms since the epoch
 *   ferry.attempts     delivery attempts made so far, all stages included
 *   ferry.error        why the last attempt failed, e.g. "http status 503"
 *   ferry.topic        the record's original topic (not the retry topic)
 *   ferry.partition    its original partition
 *   ferry.offset       its original offset
 *   ferry.timestamp    its original timestamp in ms; absent when it had none
 *   ferry.route        the route that parked it
 *
 * All values are text or decimal. A record from a retry topic that is dead-lettered later
 * keeps the original coordinates: the dead-letter writer reads them back from here.
 *
 * Only a record consumed from one of the route's own retry topics is a parked record
 * (ferry_retry_parked_read): the same headers on a record of any other topic were written by
 * someone else, and that record is sent and dead-lettered as what it is.
 */
#ifndef FERRY_RETRY_TOPIC_H
#define FERRY_RETRY_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "route/record.h"

#define FERRY_RETRY_STAGES_MAX 16      /* retry topics one route may have */
#define FERRY_RETRY_ERROR_MAX 256      /* ferry.error kept, with its terminating NUL */
#define FERRY_RETRY_TOPIC_NAME_MAX 250 /* Kafka's longest topic name, plus NUL */
/* ferry.attempts read back is at most this: the header may be written by hand (INT32_MAX, say),
 * and a parked record's attempts are added to the ones made since (at most retry.max_attempts,
 * 1,000,000), which must stay within an int. */
#define FERRY_RETRY_ATTEMPTS_MAX 1000000000

/* What a parked record says about itself. */
struct ferry_retry_meta {
    int stage;    /* 1-based retry topic */
    int attempts; /* delivery attempts made so far */
    int64_t due_ms;
    char topic[FERRY_RETRY_TOPIC_NAME_MAX]; /* the original coordinates */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the record had none */
    char error[FERRY_RETRY_ERROR_MAX];
};

/* The names of a route's retry topics, stage 1 first: where its parked records are consumed
 * from. */
struct ferry_retry_topics {
    char names[FERRY_RETRY_STAGES_MAX][FERRY_RETRY_TOPIC_NAME_MAX];
    int count;
};

/* Writes the name of retry topic stage (1-based) of route into out: configured when it is set,
 * else "<route>.retry.<stage>". Returns 0, or -1 when it does not fit in size. Any thread. */
int ferry_retry_topic_name(const char *route, int stage, const char *configured, char *out,
                           size_t size);

/* Fills m for parking rec on retry topic stage after attempts attempts that failed with
 * error, due delay_ms after now_ms. When rec came from a retry topic itself (from is not
 * NULL: what ferry_retry_meta_read found on it), the original coordinates are kept from
 * there. Any thread. */
void ferry_retry_meta_make(struct ferry_retry_meta *m, const struct ferry_record *rec,
                           const struct ferry_retry_meta *from, int stage, int attempts,
                           const char *error, int64_t now_ms, int64_t delay_ms);

/* Returns rec's own headers (source, may be NULL) without the ones this file writes, followed
 * by m's, or NULL when memory ran out. The caller owns the result. Any thread. */
rd_kafka_headers_t *ferry_retry_headers_build(const rd_kafka_headers_t *source,
                                              const struct ferry_retry_meta *m, const char *route);

/* Returns a copy of source (may be NULL) without the headers this file writes, with room for
 * extra more, or NULL when memory ran out: what a dead letter of a parked record starts from.
 * The caller owns the result. Any thread. */
rd_kafka_headers_t *ferry_retry_headers_strip(const rd_kafka_headers_t *source, size_t extra);

/* Sets orig to the view of the record that parked is a copy of: parked with the coordinates m
 * read from it (orig->topic points into m). */
void ferry_retry_meta_origin(const struct ferry_retry_meta *m, const struct ferry_record *parked,
                             struct ferry_record *orig);

/* Reads m from a parked record's headers, attempts cut to FERRY_RETRY_ATTEMPTS_MAX. Returns 1
 * when they are there and well formed, 0 when the record carries no ferry.retry.stage (it was
 * not parked by a route), or -1 with errstr when they are malformed (a record written by hand,
 * or cut). Any thread. */
int ferry_retry_meta_read(const rd_kafka_headers_t *h, struct ferry_retry_meta *m, char *errstr,
                          size_t errstr_size);

/* Returns the stage (1-based) of topic among t's retry topics, or 0 when it is none of them
 * (also when t or topic is NULL). Any thread. */
int ferry_retry_topics_stage(const struct ferry_retry_topics *t, const char *topic);

/* Reads m from rec when it is a parked record: consumed from one of t's retry topics (t may be
 * NULL: a route without any), with the headers of a parking. Returns 1 then; 0 when rec is an
 * ordinary record, also one of another topic that carries such headers; -1 with errstr when it
 * is on one of t's topics with malformed ones (it is an ordinary record too). The request
 * builder, the dead-letter writer and the route's parking all decide with this. The thread
 * that may read rec's headers (record.h). */
int ferry_retry_parked_read(const struct ferry_retry_topics *t, const struct ferry_record *rec,
                            struct ferry_retry_meta *m, char *errstr, size_t errstr_size);

/* How long a parked record must still wait at now_ms: 0 when due. Any thread. */
int64_t ferry_retry_wait_ms(const struct ferry_retry_meta *m, int64_t now_ms);

#endif
