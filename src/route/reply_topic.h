/*
 * reply_topic.h - a route's reply topic: each target's answer written to Kafka before the
 * record it answers counts as finished.
 *
 * A route with `reply: {topic: ...}` hands each record the target answered (and, with
 * `reply.on: all`, each record it gives up on) to its reply topic instead of finishing it.
 * The reply is produced with the shared producer (through a dead-letter writer,
 * deadletter.h), and only once the broker confirmed it does the route get the record back, to
 * finish it (its offset may then be committed) or to dead-letter it. A reply the broker did
 * not store is written again; one the producer refuses at once (queue full, too large, broker
 * gone) waits and is tried again every REPLY_TOPIC_RETRY_MS: the record stays unfinished, its
 * key's lane stays busy and its partition's watermark waits, so nothing is lost and, per key,
 * replies come in the order of their records. A record whose partition was revoked meanwhile
 * is abandoned (consumed again by the partition's next owner).
 *
 * A reply is keyed like its record (a null key stays null), goes to the partition the shared
 * producer's partitioner picks for that key, and carries the response body, cut to max_body
 * bytes, as its value. Its headers, all text or decimal:
 *
 *   ferry.status       the HTTP status, or the SMTP reply code of an e-mail target; absent
 *                      when there was no answer
 *   ferry.grpc_status  a gRPC target's grpc-status; absent for other targets
 *   ferry.grpc_message its grpc-message; absent when empty
 *   ferry.error        why the record was dead-lettered (reply.on: all); absent on success
 *   ferry.attempts     delivery attempts made
 *   ferry.topic        the record's topic (for a record from a retry topic, its original one)
 *   ferry.partition    its partition
 *   ferry.offset       its offset
 *   ferry.timestamp    its timestamp in ms since the epoch; absent when it has none
 *   ferry.route        the route's name
 *   ferry.truncated    "true" when the body was longer than max_body and was cut
 *   ferry.batch.index  with a request of more than one record: the record's place in it,
 *   ferry.batch.size   from 0, and how many records the request had (each gets the reply)
 *
 * followed by the response headers the route asked for, under the names given in its config.
 *
 * Used by the route's worker thread only (the writer's wake callback excepted, see
 * deadletter.h).
 */
#ifndef FERRY_REPLY_TOPIC_H
#define FERRY_REPLY_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/kafka.h"
#include "core/metrics.h"
#include "route/dispatch.h"
#include "route/record.h"

struct ferry_retry_topics;

/* How often refused replies are tried again. */
#define REPLY_TOPIC_RETRY_MS 100
/* At most one log line per route this often about refused replies. */
#define REPLY_TOPIC_LOG_MS 10000

typedef struct ferry_reply_topic ferry_reply_topic;

/* The target's answer to one request. Read only during the call it is passed to. */
struct ferry_reply_answer {
    long status;         /* HTTP status or SMTP reply code; 0: there was no answer */
    const char *error;   /* NULL: the target accepted the records; else why they are
                            dead-lettered */
    int attempts;        /* delivery attempts made */
    const char *body;    /* what the sender kept of the response body, may be NULL */
    size_t body_len;     /* may be more than max_body: the reply cuts it and says so */
    const char *headers; /* response headers as "name\0value\0" pairs (sender.h), or NULL */
    size_t headers_len;
    int grpc_status;          /* a gRPC call's grpc-status; -1: not gRPC, or none came */
    const char *grpc_message; /* its grpc-message, may be NULL */
};

struct ferry_reply_topic_options {
    ferry_kafka *kafka;      /* its shared producer writes the replies */
    const char *topic;       /* the reply topic */
    const char *route;       /* the route's name, for log lines and ferry.route */
    size_t max_body;         /* bytes of a response body a reply keeps */
    void (*wake)(void *arg); /* wakes the worker when reports arrive: see deadletter.h */
    void *wake_arg;
    ferry_dispatch *dispatch; /* where records of revoked partitions are abandoned */
    /* Called for each record whose reply the broker confirmed, with the answer it was handed
     * over with: the record is the caller's again, to finish or to dead-letter (a->error). */
    void (*done)(void *arg, struct ferry_dispatch_rec *rec, const struct ferry_reply_answer *a);
    void *done_arg;
    struct ferry_counter *written; /* replies confirmed */
    struct ferry_counter *refused; /* writes the producer refused at once */
    /* The route's retry topics (copied; NULL: none): a record of one of them with a parking's
     * headers answers for its original place (ferry_retry_parked_read). */
    const struct ferry_retry_topics *retry_topics;
};

/* Returns the length of a body of len bytes that a reply keeps, at most max_body, and sets
 * *truncated to whether that cut it. Any thread. */
size_t ferry_reply_body_cut(size_t len, size_t max_body, int *truncated);

/* Returns the headers of the reply to rec (the list above) for the answer a, or NULL when
 * memory ran out. index and count place rec in its request (count 1: a request of its own).
 * The caller owns the result. Any thread. */
rd_kafka_headers_t *ferry_reply_headers_build(const struct ferry_record *rec,
                                              const struct ferry_retry_topics *retry,
                                              const struct ferry_reply_answer *a, const char *route,
                                              int truncated, size_t index, size_t count);

/* Returns a reply topic with its writer, or NULL with a message in errstr. The strings, kafka,
 * dispatch and counters must outlive it. The caller owns it. */
ferry_reply_topic *ferry_reply_topic_new(const struct ferry_reply_topic_options *o, char *errstr,
                                         size_t errstr_size);

/* Starts the replies to recs[0..n), the records of one request, all answered by a (copied,
 * the body cut to max_body). The records are the reply topic's until done gives them back.
 * When memory runs out they are abandoned (logged): their partition's watermark waits for
 * them and they are consumed again later. */
void ferry_reply_topic_add(ferry_reply_topic *t, struct ferry_dispatch_rec **recs, size_t n,
                           const struct ferry_reply_answer *a);

/* Collects the writes' delivery reports (handing confirmed records to done, writing the others
 * again) and, once their time came (ferry_clock_ms()), writes the refused ones again. */
void ferry_reply_topic_collect(ferry_reply_topic *t);

/* Returns when refused replies are next tried (ferry_clock_ms()), or INT64_MAX when none
 * waits. */
int64_t ferry_reply_topic_retry_ms(const ferry_reply_topic *t);

/* Returns how many writes the producer accepted and did not report yet. */
size_t ferry_reply_topic_pending(const ferry_reply_topic *t);

/* Destroys the writer (reports that come later free only the writer's own part) and frees
 * every reply under way; the records are left to the dispatcher. Accepts NULL. */
void ferry_reply_topic_destroy(ferry_reply_topic *t);

#endif
