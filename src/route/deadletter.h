/*
 * deadletter.h - the dead-letter writer of a route.
 *
 * When a record cannot be delivered (a permanent 4xx, retries exhausted, a template that cannot
 * render for it), the route writes a copy of it to the route's dead-letter topic with the shared
 * producer. The record counts as finished only when the broker acknowledged that write, so the
 * writer hands each send's delivery report back to the route's worker thread: reports arrive on
 * the producer's poller thread, are queued here, wake(wake_arg) wakes the worker, and the worker
 * collects them with ferry_deadletter_collect().
 *
 * A dead letter keeps the record's key and value byte for byte (a null key stays null, a
 * tombstone stays a tombstone) and its original headers, in order, first. ferry then appends
 * these headers, all text or decimal (they are part of ferry's public contract, see
 * docs/dead-letter.md):
 *
 *   ferry.error        why the record was dead-lettered, e.g. "http status 400"
 *   ferry.http_status  the last HTTP status; absent when there was no response
 *   ferry.attempts     how many delivery attempts were made
 *   ferry.topic        the record's source topic
 *   ferry.partition    its source partition
 *   ferry.offset       its source offset
 *   ferry.timestamp    its timestamp in ms since the epoch; absent when it has none
 *   ferry.route        the route's name
 *   ferry.response     the first response_max bytes of the response body; absent when empty
 *   ferry.grpc_status  a gRPC target's last status code (grpc-status); absent otherwise
 *   ferry.grpc_message its grpc-message, decoded; absent when the server sent none
 *
 * A record that already carries ferry.* headers (it came from another dead-letter topic) keeps
 * them; the ones this write adds come last, starting with ferry.error (deadletter_headers.h
 * reads the newest block back). A record parked on one of the route's retry topics
 * (retry_topic.h) is the exception: its parking headers are left out, and ferry.topic,
 * ferry.partition, ferry.offset and ferry.timestamp are those of the original record. A record
 * of any other topic that carries parking headers is no parked record: it keeps them as its
 * own, as requests send it (ferry_retry_parked_read).
 *
 * Records go to partition RD_KAFKA_PARTITION_UA, so the shared producer's murmur2 partitioner
 * places keyed records as the source topic's producer would have.
 */
#ifndef FERRY_DEADLETTER_H
#define FERRY_DEADLETTER_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "core/kafka.h"
#include "route/record.h"
#include "route/retry_topic.h"

typedef struct ferry_deadletter ferry_deadletter;

/* Why a record is dead-lettered. Read only during ferry_deadletter_send(). */
struct ferry_deadletter_reason {
    const char *error; /* why, e.g. "http status 400" or "template: ${value.id}: no such field" */
    long http_status;  /* 0 when there was no response */
    int attempts;      /* delivery attempts made */
    const char *response; /* start of the response body, may be NULL */
    size_t response_len;
    long grpc_status;         /* a gRPC target's answer, with grpc_message set */
    const char *grpc_message; /* NULL: not a gRPC answer ("" when the server sent none) */
};

/* Returns a writer to topic for the route route_name, or NULL with errstr. retry_topics (copied;
 * NULL: none) are the route's: only a record of one of them is dead-lettered as a parked record
 * (the writers of retry and reply topics, whose headers are built elsewhere, pass NULL).
 * response_max caps ferry.response (0 leaves it out always). wake(wake_arg) is called on the
 * producer's poller thread (or, at shutdown, on the thread flushing the producer) whenever the
 * writer's queue of reports to collect goes from empty to non-empty; it runs with the writer's
 * lock held, so it must only signal (curl_multi_wakeup, an eventfd) and never call back into
 * the writer. It is never called after ferry_deadletter_destroy() returned. wake may be NULL.
 * k must outlive the writer. The caller owns the result. Main or worker thread. */
ferry_deadletter *ferry_deadletter_new(ferry_kafka *k, const char *topic, const char *route_name,
                                       const struct ferry_retry_topics *retry_topics,
                                       size_t response_max, void (*wake)(void *), void *wake_arg,
                                       char *errstr, size_t errstr_size);

/* Produces a copy of rec (key, value, its original headers) plus ferry's headers to the topic;
 * nothing of rec or why is kept after the call. cookie comes back from collect. Returns 0, or
 * -1 with errstr when the producer refused at once: queue full (the caller retries later), but
 * also a record too large for the producer or a producer in a fatal state, which no retry
 * cures; errstr names the librdkafka error. The route's worker thread (one thread per writer). */
int ferry_deadletter_send(ferry_deadletter *dl, const struct ferry_record *rec,
                          const struct ferry_deadletter_reason *why, void *cookie, char *errstr,
                          size_t errstr_size);

/* Produces rec's key and value (as consumed) with the headers h, which the call takes in every
 * case (NULL counts as out of memory), to partition (RD_KAFKA_PARTITION_UA: the partitioner
 * chooses): the send of a record whose headers someone else built, such as a record parked on
 * a retry topic (retry_topic.h). Otherwise as ferry_deadletter_send(). The route's worker
 * thread. */
int ferry_deadletter_send_headers(ferry_deadletter *dl, const struct ferry_record *rec,
                                  int32_t partition, rd_kafka_headers_t *h, void *cookie,
                                  char *errstr, size_t errstr_size);

/* Produces rec's key with value (value_len bytes, NULL for none; copied) and the headers h,
 * which the call takes in every case, to partition: a record that answers rec rather than
 * copies it, such as a reply (reply_topic.h). Otherwise as ferry_deadletter_send_headers().
 * The route's worker thread. */
int ferry_deadletter_send_value(ferry_deadletter *dl, const struct ferry_record *rec,
                                int32_t partition, const void *value, size_t value_len,
                                rd_kafka_headers_t *h, void *cookie, char *errstr,
                                size_t errstr_size);

/* Calls done(arg, cookie, err) for each send whose delivery report arrived, in arrival order;
 * err 0 means the broker stored the dead letter, anything else that it was not (the record is
 * not finished). done may call ferry_deadletter_send() but must not destroy dl. Returns how
 * many were collected. The route's worker thread. */
size_t ferry_deadletter_collect(ferry_deadletter *dl,
                                void (*done)(void *arg, void *cookie, rd_kafka_resp_err_t err),
                                void *arg);

/* Returns how many sends were accepted and not yet collected. The route's worker thread. */
size_t ferry_deadletter_pending(const ferry_deadletter *dl);

/* Frees dl. Sends still awaiting their report are orphaned: their report, when it comes later
 * on the poller thread, frees what it holds, logs a dead letter that was not stored, and calls
 * no one. Reports that arrived but were not collected are dropped. Destroying the shared
 * producer without flushing it leaks what orphaned sends hold (librdkafka then reports
 * nothing). Accepts NULL. Worker or main thread. */
void ferry_deadletter_destroy(ferry_deadletter *dl);

#endif
