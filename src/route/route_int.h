/*
 * route_int.h - the inside of one route, shared by the files of src/route/ that run it:
 * route.c (lifecycle, consumer, event loop, rebalances) and delivery.c (requests and what
 * their outcomes mean). Nothing outside src/route/ includes this.
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
#include "route/backoff.h"
#include "route/body.h"
#include "route/deadletter.h"
#include "route/dispatch.h"
#include "route/refetch.h"
#include "route/route_config.h"
#include "route/sender.h"
#include "route/status.h"
#include "route/template.h"

#define ROUTE_HEADERS_MAX 64
#define ROUTE_URL_MAX (16 * 1024)
#define ROUTE_HEADER_MAX (8 * 1024)
/* All header lines of one request together: past this the request counts as too large. */
#define ROUTE_HEADERS_TEXT_MAX (64 * 1024)
#define ROUTE_COMMITS_MAX 1024

struct dlq_item;

/* One HTTP request of a route: records of one partition, in the order they are sent. */
struct request {
    struct ferry_http_call call;
    struct ferry_heap_node retry_node; /* in the retry queue while waiting to be resent */
    struct route *route;
    struct ferry_dispatch_rec **recs;
    const struct ferry_record **views;
    size_t n;
    int attempts;
    struct ferry_buf url;
    struct ferry_buf body;
    struct curl_slist *headers;   /* the list sent: header_nodes linked, or NULL */
    struct ferry_buf header_text; /* "Name: value" lines, each ending in a NUL */
    size_t *header_offsets;       /* where each line starts in header_text */
    struct curl_slist *header_nodes;
    size_t nheaders, header_slots; /* lines, and room in the two arrays */
    int64_t started_ms;
    struct request *next_free;
    struct request *next_all; /* every request the route allocated, for its release */
};

/* A header of the target: its name and a compiled value template. */
struct route_header {
    const char *name;
    ferry_template *value;
};

/* Figures of one route in /metrics. */
struct route_metrics {
    struct ferry_counter *consumed, *delivered, *retried, *dead_lettered, *dead_letter_refused;
    struct ferry_counter *fetch_restarts;
    struct ferry_counter *requests[5];
    struct ferry_histogram *latency;
    struct ferry_gauge *in_flight, *buffered, *paused;
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
    pthread_t thread;
    int thread_started;
    atomic_int stop;   /* set by the main thread: drain and leave */
    atomic_int joined; /* the consumer received its first assignment */

    rd_kafka_t *consumer;
    void *consumer_opaque;
    rd_kafka_queue_t *queue;
    int event_fds[2]; /* the consumer queue signals [1]; the loop waits on [0] */
    ferry_refetch *refetch;

    ferry_sender *sender;
    int io_threads; /* the sender's; 0 when libcurl runs on the worker */
    ferry_dispatch *dispatch;
    ferry_deadletter *deadletter; /* NULL without a dead-letter topic */
    ferry_status_rules *rules;
    struct ferry_backoff_policy backoff;
    uint64_t rng;

    ferry_template *url;
    struct route_header headers[ROUTE_HEADERS_MAX];
    size_t nheaders;
    ferry_template *body_template;
    struct ferry_body_spec body;
    const char *content_type;
    struct ferry_buf header_value; /* scratch for one header template's output */

    struct request *free_requests;
    struct request *all_requests;
    struct ferry_heap retries;
    size_t in_flight;        /* requests started and not yet back */
    int64_t paused_until_ms; /* Retry-After: send nothing before this */
    int backpressure;        /* partitions paused because the buffers are full */
    int64_t full_since_ms;   /* when the buffers became full, or 0 */
    int failing;             /* the target's last outcome was a failure */
    uint64_t failures;       /* consecutive failures */
    struct dlq_item *dlq_backlog, *dlq_backlog_tail; /* refused dead-letter writes to redo */
    size_t ndlq_backlog;
    int64_t dlq_retry_at_ms;       /* when the backlog is tried again */
    int64_t dlq_refusal_logged_ms; /* when a refusal was last logged, or 0 */
    struct dlq_item *dlq_items;    /* every dead-letter write under way, for the route's release */

    struct route_metrics m;
    pthread_mutex_t commits_lock;
    struct route_commit commits[ROUTE_COMMITS_MAX];
    size_t ncommits;
};

/* delivery.c: starts as many requests as concurrency, order and timers allow. */
void route_dispatch(struct route *r, int64_t now_ms, int flush);

/* delivery.c: handles a finished HTTP call (sender callback). */
void route_on_call_done(void *arg, struct ferry_http_call *call);

/* delivery.c: resends the requests whose retry time came. */
void route_fire_retries(struct route *r, int64_t now_ms);

/* delivery.c: collects dead-letter reports, and redoes refused writes once their retry time
 * (dlq_retry_at_ms) came. */
void route_collect_dead_letters(struct route *r);

/* delivery.c: abandons requests waiting to retry; all of them when stale_only is 0, else only
 * those of drained partitions. */
void route_abandon_retries(struct route *r, int stale_only);

/* delivery.c: the earliest retry time, or INT64_MAX. */
int64_t route_next_retry_ms(const struct route *r);

/* delivery.c: frees every request and dead-letter item the route allocated, whatever their
 * state; the records they point at are released by the dispatcher. */
void route_free_requests(struct route *r);

/* delivery.c: compiles the target's templates and body spec. Returns 0, or -1 with errstr. */
int route_delivery_init(struct route *r, char *errstr, size_t errstr_size);

/* delivery.c: releases what route_delivery_init made. */
void route_delivery_release(struct route *r);

#endif
