/*
 * route_int.h - the inside of one route, shared by the two files of src/route/ that run it:
 * route.c (lifecycle, consumer, event loop, rebalances) and delivery.c (sending requests and
 * acting on their outcomes). The pieces they use keep their own state behind their own
 * headers (request.h, outcome.h, deadletter_backlog.h, dispatch.h, sender.h). Nothing outside
 * src/route/ includes this.
 */
#ifndef FERRY_ROUTE_INT_H
#define FERRY_ROUTE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/buf.h"
#include "core/heap.h"
#include "core/kafka.h"
#include "core/metrics.h"
#include "route/adaptive.h"
#include "route/backoff.h"
#include "route/breaker.h"
#include "route/deadletter_backlog.h"
#include "route/dispatch.h"
#include "route/failure_log.h"
#include "route/grpc_wire.h"
#include "route/outcome.h"
#include "route/ratelimit.h"
#include "route/refetch.h"
#include "route/reply_topic.h"
#include "route/request.h"
#include "route/retry_hold.h"
#include "route/retry_parked.h"
#include "route/retry_topic.h"
#include "route/route_config.h"
#include "route/sender.h"
#include "route/status.h"
#include "route/validate.h"

#define ROUTE_COMMITS_MAX 1024
/* How long the worker waits for a seek of its own to take effect. Waiting, not seeking
 * asynchronously: until librdkafka has handled a seek, the partition's position still says
 * where it was, and refetch.c, reading it, would seek the partition back there after it. */
#define ROUTE_SEEK_WAIT_MS 2000
#define ROUTE_LIMITS_MAX 2 /* the route's own rate limit and one shared limiter */

/* Why the worker slept, for ferry_route_idle_seconds_total (route.c, idle_cause()). */
enum route_idle_cause {
    ROUTE_IDLE_TARGET, /* every request slot taken: waiting for the target's answers */
    ROUTE_IDLE_KAFKA,  /* no record buffered: waiting for records from Kafka */
    ROUTE_IDLE_HELD,   /* records buffered that may not go yet */
    ROUTE_IDLE_CAUSES
};

/* The cause's name in /metrics and /status: "target", "kafka" or "held". */
const char *route_idle_cause_name(enum route_idle_cause cause);

/* Figures of one route in /metrics. */
struct route_metrics {
    struct ferry_counter *consumed, *delivered, *retried, *dead_lettered, *dead_letter_refused;
    struct ferry_counter *fetch_restarts, *invalid;
    struct ferry_counter *replies, *reply_refused; /* NULL without a reply topic */
    struct ferry_counter *rate_limit_waits;        /* NULL without rate limits */
    struct ferry_counter *requests[5];
    struct ferry_histogram *latency;
    struct ferry_gauge *in_flight, *buffered, *paused, *concurrency_limit;
    struct ferry_gauge *circuit[3];                /* by enum ferry_breaker_state, one-hot */
    struct ferry_counter *circuit_transitions[3];  /* by the state entered */
    struct ferry_counter *parked;                  /* NULL without retry topics */
    struct ferry_gauge *retry_held, *parked_keys;  /* NULL without retry topics */
    struct ferry_counter *idle[ROUTE_IDLE_CAUSES]; /* microseconds, by enum route_idle_cause */
};

/* A route's retry topics (parking.c). */
struct route_parking {
    int stages;                       /* retry topics; 0: none, and nothing below is made */
    struct ferry_retry_topics topics; /* their names, set by route_init for all the route */
    int32_t partitions[FERRY_RETRY_STAGES_MAX]; /* each topic's partitions; 0: not known yet */
    ferry_deadletter_backlog *writers[FERRY_RETRY_STAGES_MAX];
    ferry_retry_hold *hold;     /* retry partitions paused until their head record is due */
    ferry_retry_parked *parked; /* parked records by key; NULL unless ordering: key */
    struct ferry_buf key;       /* scratch: a key of the parked set */
};

/* A stored commit watermark, for /metrics (written by the worker, read by /metrics). */
struct route_commit {
    char topic[256];
    int32_t partition;
    int64_t offset;
};

struct route {
    const struct ferry_route_config *cfg;
    ferry_kafka *kafka;
    ferry_metrics *metrics;
    const char *instance; /* server.instance, or NULL: dynamic group membership */
    pthread_t thread;
    int thread_started;
    atomic_int stop; /* set by the main thread: drain and leave */
    /* When the drain must end to leave time for the final commit within
     * server.shutdown_timeout, set with stop; 0: only drain_timeout bounds it. */
    _Atomic int64_t drain_until_ms;
    atomic_int joined; /* the consumer received its first assignment */
    /* The consumer's assignor is cooperative (its rebalances take and give up increments), as
     * its configuration says; librdkafka cannot be asked during a close. */
    int cooperative;

    rd_kafka_t *consumer;
    void *consumer_opaque;
    rd_kafka_queue_t *queue;
    int event_fds[2]; /* the consumer queue signals [1]; the loop waits on [0] */
    ferry_refetch *refetch;

    ferry_sender *sender;
    int io_threads;      /* the sender's; 0 when libcurl runs on the worker */
    size_t max_buffered; /* records it may hold: limits.max_buffered_records, resolved */
    ferry_dispatch *dispatch;
    ferry_deadletter_backlog *dead_letters; /* NULL without a dead-letter topic */
    ferry_reply_topic *replies;             /* NULL without a reply topic */
    ferry_request_builder *requests;
    ferry_status_rules *rules;
    ferry_grpc_rules *grpc_rules; /* a gRPC target's, classifying instead of rules; or NULL */
    ferry_validate *validator;    /* NULL when the route validates nothing */
    struct ferry_backoff_policy backoff;
    struct ferry_outcome_policy outcome; /* the two above, and whether there is a topic */
    uint64_t rng;

    struct ferry_heap retries;      /* requests waiting to be resent, by time */
    size_t in_flight;               /* requests started and not yet back */
    int64_t paused_until_ms;        /* Retry-After: send nothing before this */
    int backpressure;               /* partitions paused because the buffers are full */
    int64_t full_since_ms;          /* when the buffers became full, or 0 */
    ferry_failure_log *failure_log; /* what the log says about a failing target */
    ferry_breaker *breaker;         /* NULL: circuit_breaker.enabled is false */
    ferry_adaptive *adaptive;       /* NULL: adaptive_concurrency.enabled is false */
    atomic_int circuit;             /* the breaker's state, for /readyz */
    int64_t limited_until_ms;       /* the rate limits let nothing start before this */
    int64_t limited_since_ms;       /* since when work waits for the rate limits, or 0 */

    /* The rate limits the route obeys: its own (own_limit, the route's) and a shared one (the
     * job's), in any order. */
    ferry_ratelimit *limits[ROUTE_LIMITS_MAX];
    size_t nlimits;
    ferry_ratelimit *own_limit;
    atomic_uint_fast64_t limited_ms; /* time spent waiting for them, for /metrics */

    struct route_parking parking;

    struct route_metrics m;
    pthread_mutex_t commits_lock;
    struct route_commit commits[ROUTE_COMMITS_MAX];
    size_t ncommits;
};

/* A test on one partition of the route's assignment. */
typedef int route_partition_fn(const struct route *r, const char *topic, int32_t partition);

/* route.c: the partitions of the consumer's assignment that keep() accepts, or NULL when there
 * are none (or the assignment cannot be read). Worker thread. */
rd_kafka_topic_partition_list_t *route_assignment_where(const struct route *r,
                                                        route_partition_fn *keep);

/* delivery.c: starts as many requests as concurrency, order and timers allow; with flush set,
 * partial batches go without lingering. */
void route_dispatch(struct route *r, int64_t now_ms, int flush);

/* delivery.c: handles a finished HTTP call (sender callback). */
void route_on_call_done(void *arg, struct ferry_http_call *call);

/* delivery.c: resends the requests whose retry time came. */
void route_fire_retries(struct route *r, int64_t now_ms);

/* delivery.c: collects dead-letter and reply reports, and redoes refused writes once their
 * retry time came (deadletter_backlog.h, reply_topic.h). */
void route_collect_dead_letters(struct route *r);

/* delivery.c: abandons requests waiting to retry; all of them when stale_only is 0, else only
 * those of drained partitions. */
void route_abandon_retries(struct route *r, int stale_only);

/* delivery.c: how many requests may be under way now: the route's concurrency, or the
 * adaptive limit. */
size_t route_concurrency(const struct route *r);

/* delivery.c: the earliest retry time, or INT64_MAX. */
int64_t route_next_retry_ms(const struct route *r);

/* delivery.c: 0 when the circuit breaker lets requests start now; else when it may next (the
 * end of its open period), or INT64_MAX while half-open with every probe under way. */
int64_t route_breaker_blocked_until(struct route *r, int64_t now_ms);

/* delivery.c: nonzero while the breaker is open: the partitions stay paused. Half-open they
 * resume, so that there are records to probe with (only the probes go out). */
int route_breaker_holding(const struct route *r);
/* Tells the breaker when the route has nothing left to send: see ferry_breaker_idle(). */
void route_breaker_check_idle(struct route *r);

/* delivery.c: when refused dead-letter or reply writes are tried again, or INT64_MAX. */
int64_t route_next_dead_letter_ms(const struct route *r);

/* delivery.c: hands a record whose reply the broker confirmed back to the route: finishes it,
 * or dead-letters it when the answer says why (reply_topic.h's done). */
void route_on_reply_done(void *arg, struct ferry_dispatch_rec *rec,
                         const struct ferry_reply_answer *a);

/* delivery.c: makes the request builder (the target's templates and body format), the status
 * rules and the retry policy. Returns 0, or -1 with errstr. */
int route_delivery_init(struct route *r, char *errstr, size_t errstr_size);

/* delivery.c: releases what route_delivery_init made, every request included, whatever its
 * state; the records they point at are released by the dispatcher. Accepts a half-made
 * route. */
void route_delivery_release(struct route *r);

/* parking.c: makes the retry topics' writers and sets, and asks for each topic's partitions
 * (which makes it where the brokers create topics on first use). Returns 0, or -1 with
 * errstr. Nothing happens without retry topics. */
int route_parking_init(struct route *r, char *errstr, size_t errstr_size);

/* parking.c: frees what route_parking_init made; the records under way are left to the
 * dispatcher. */
void route_parking_release(struct route *r);

/* parking.c: adds the retry topics to the route's subscription. Returns 0, or -1 when out of
 * memory. */
int route_parking_subscribe(const struct route *r, rd_kafka_topic_partition_list_t *topics);

/* parking.c: a record consumed from a retry topic that is not due yet: holds its partition
 * (paused, to be fetched again from this record once due). Returns nonzero when the record
 * was held, and the caller drops it; 0 to take it as usual. */
int route_parking_hold(struct route *r, const rd_kafka_message_t *msg, int64_t now_ms);

/* parking.c: resumes the held partitions that came due, from their held record. */
void route_parking_resume_due(struct route *r, int64_t now_ms);

/* parking.c: pauses the held partitions again (after the route resumed all of its own). */
void route_parking_repause(struct route *r);

/* parking.c: after a rebalance gave the route partitions: reads its retry partitions to learn
 * which keys have records parked (ordering: key only), with a reader of its own. Blocking.
 * Pauses, resumes and seeks nothing of the route's consumer: right after an assignment that
 * could drop the assignment's fetch start (route.c, on_rebalance). */
void route_parking_assigned(struct route *r);

/* parking.c: after partitions were taken away: lets go of those held. */
void route_parking_revoked(struct route *r, const rd_kafka_topic_partition_list_t *parts);

/* parking.c: collects the parking writes' reports and redoes refused ones when due. */
void route_parking_collect(struct route *r);

/* parking.c: when the route must look again: a held partition comes due or refused parking
 * writes are tried again; INT64_MAX when neither. */
int64_t route_parking_next_ms(const struct route *r);

/* parking.c: parking writes under way, for the shutdown drain. */
size_t route_parking_pending(const struct route *r);

/* parking.c: nonzero when rec can be parked on a next retry topic (it came from a topic of
 * the route, or from a retry topic but the last). */
int route_parking_has_next(const struct route *r, const struct ferry_dispatch_rec *rec);

/* parking.c: rec's attempts in place (attempts) failed, the last with error: parks it on the
 * next retry topic (route_parking_has_next() said there is one); the record is parking's. */
void route_parking_park(struct route *r, struct ferry_dispatch_rec *rec, const char *error,
                        int attempts);

/* parking.c: under ordering: key, a record about to be sent whose key has an earlier record
 * parked: parks it behind that one and returns nonzero; 0 to send it. */
int route_parking_behind(struct route *r, struct ferry_dispatch_rec *rec);

/* parking.c: rec was delivered or is being dead-lettered: when it came from a retry topic,
 * its key's later records may go. */
void route_parking_done(struct route *r, const struct ferry_dispatch_rec *rec);

/* route_status.c: appends the route's object of GET /status to out. Returns 0, or -1 when
 * out's cap was reached. Any thread. */
int route_status_add(struct route *r, struct ferry_buf *out);

#endif
