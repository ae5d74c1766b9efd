/*
 * deadletter_backlog.h - a route's dead letters under way: from the moment the route gives up
 * on a record until the broker has confirmed its copy on the dead-letter topic. A route with
 * retry topics has one more backlog per retry topic, for the records it parks there: the same
 * course, with the parking's headers (retry_topic.h) instead of the dead-letter ones.
 *
 * The backlog owns the route's dead-letter writer (deadletter.h). For each record handed over
 * it keeps the reason and a copy of the target's response, writes the record, and on the
 * write's delivery report either finishes the record in the dispatcher (it counts in
 * ferry_route_records_dead_lettered_total) or, when the broker did not store it, writes it
 * again. A write the producer refuses at once (its queue is full) waits in the backlog and is
 * tried again every DEADLETTER_BACKLOG_RETRY_MS; each refusal counts in
 * ferry_route_dead_letter_refusals_total and the route logs them at most once every
 * DEADLETTER_BACKLOG_LOG_MS.
 *
 * Used by the route's worker thread only (the writer's wake callback excepted, see
 * deadletter.h).
 */
#ifndef FERRY_DEADLETTER_BACKLOG_H
#define FERRY_DEADLETTER_BACKLOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/kafka.h"
#include "core/metrics.h"
#include "route/deadletter.h"
#include "route/dispatch.h"
#include "route/retry_topic.h"

/* How often refused writes are tried again. */
#define DEADLETTER_BACKLOG_RETRY_MS 100
/* At most one log line per route this often about refused writes. */
#define DEADLETTER_BACKLOG_LOG_MS 10000

typedef struct ferry_deadletter_backlog ferry_deadletter_backlog;

struct ferry_deadletter_backlog_options {
    ferry_kafka *kafka;      /* its shared producer writes the dead letters */
    const char *topic;       /* the dead-letter topic */
    const char *route;       /* the route's name, for log lines and the ferry.route header */
    size_t response_max;     /* bytes of a response kept in ferry.response */
    void (*wake)(void *arg); /* wakes the worker when reports arrive: see deadletter.h */
    void *wake_arg;
    ferry_dispatch *dispatch; /* where confirmed records are finished */
    /* Told of each record the backlog lets go (its write confirmed, or the record abandoned),
     * just before the dispatcher finishes or abandons it; NULL: not told. */
    void (*let_go)(void *arg, const struct ferry_dispatch_rec *rec);
    void *let_go_arg;
    struct ferry_counter *dead_lettered; /* records whose dead letter was confirmed */
    struct ferry_counter *refused;       /* writes the producer refused at once */
    int retry_stage; /* nonzero: the writer of a retry topic, which log lines say */
    /* The route's retry topics, whose records may be parked ones (ferry_deadletter_new);
     * NULL for the writers of retry topics. */
    const struct ferry_retry_topics *retry_topics;
};

/* Returns a backlog with its writer, or NULL with a message in errstr. The strings, kafka,
 * dispatch and counters must outlive it. The caller owns it. */
ferry_deadletter_backlog *
ferry_deadletter_backlog_new(const struct ferry_deadletter_backlog_options *o, char *errstr,
                             size_t errstr_size);

/* Starts the dead-letter write of rec, one of the dispatcher's records in flight, for why
 * (copied; nothing of why is kept after the call). The record is the backlog's until its write
 * is confirmed. When memory runs out the record is abandoned (logged): its partition's
 * watermark waits for it and it is consumed again later. */
void ferry_deadletter_backlog_add(ferry_deadletter_backlog *b, struct ferry_dispatch_rec *rec,
                                  const struct ferry_deadletter_reason *why);

/* Starts the write of rec to the backlog's topic as a record parked on a retry topic, with m's
 * headers (copied), to partition (RD_KAFKA_PARTITION_UA: the partitioner chooses). Otherwise
 * as ferry_deadletter_backlog_add(): the record is finished once the write is confirmed, and
 * counts in the backlog's dead_lettered counter (the route's parked one). */
void ferry_deadletter_backlog_park(ferry_deadletter_backlog *b, struct ferry_dispatch_rec *rec,
                                   const struct ferry_retry_meta *m, int32_t partition);

/* Collects the writes' delivery reports (finishing or rewriting their records) and, once
 * their time came (ferry_clock_ms()), writes the refused ones again. */
void ferry_deadletter_backlog_collect(ferry_deadletter_backlog *b);

/* Returns when refused writes are next tried (ferry_clock_ms()), or INT64_MAX when none
 * waits. */
int64_t ferry_deadletter_backlog_retry_ms(const ferry_deadletter_backlog *b);

/* Returns how many writes the producer accepted and did not report yet. */
size_t ferry_deadletter_backlog_pending(const ferry_deadletter_backlog *b);

/* Destroys the writer (reports that come later free only the writer's own part, see
 * deadletter.h) and frees every dead letter under way; the records are left to the
 * dispatcher. Accepts NULL. */
void ferry_deadletter_backlog_destroy(ferry_deadletter_backlog *b);

#endif
