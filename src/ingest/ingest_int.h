/*
 * ingest_int.h - what the files of the ingest job share: the job's state, its endpoints, the
 * producing of a parsed batch (produce.c) and the counted answers (reply.c).
 */
#ifndef FERRY_INGEST_INT_H
#define FERRY_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/httpd.h"
#include "core/kafka.h"
#include "core/auth.h"
#include "ingest/batch.h"
#include "ingest/ingest_config.h"
#include "ingest/ingest_metrics.h"
#include "core/pattern.h"
#include "ingest/topics.h"

typedef struct ferry_ingest ferry_ingest;

struct ingest_req;

/* One endpoint: the REST Proxy API, or one webhook. */
struct ingest_endpoint {
    ferry_ingest *ing;
    const char *name;                                  /* "rest_proxy" or the webhook's */
    int ack;                                           /* enum ferry_ingest_ack */
    const struct ferry_ingest_webhook_config *webhook; /* NULL for the REST Proxy API */
    const struct ferry_ingest_topic *topic;            /* a webhook's topic */
    char **header_names;                               /* a webhook's copied headers, lower case */
    struct ferry_ingest_endpoint_metrics m;
    _Atomic int64_t failures_logged_ms; /* when failed records were last logged */
    _Atomic uint64_t failures_unlogged;
};

struct ferry_ingest {
    const struct ferry_config *cfg;         /* for server.listen */
    const struct ferry_ingest_config *conf; /* the `ingest:` section */
    rd_kafka_t *rk;                         /* the shared producer, owned by ferry_kafka */
    ferry_metrics *metrics;
    ferry_auth *auth; /* the listener's keys, owned by the core */
    ferry_patterns *rest_topics;
    ferry_ingest_topics *topics;
    struct ingest_endpoint rest;
    struct ingest_endpoint *webhooks;
    size_t nwebhooks;
    struct ferry_ingest_limits limits;
    int64_t max_in_flight_bytes;
    int64_t max_in_flight_records;
    struct ferry_ingest_rejects rejects;
    int collector; /* the in-flight collector is registered */

    /* requests in flight (produce.c) */
    atomic_int stopping;
    atomic_int producing; /* handlers between taking a request and finishing its produce calls */
    _Atomic int64_t in_flight_bytes;
    _Atomic int64_t in_flight_records;
    _Atomic int64_t in_flight_requests;
    pthread_mutex_t lock; /* pending and the requests' listed/answered flags */
    pthread_cond_t changed;
    struct ingest_req *pending; /* `ack: kafka` requests waiting for their reports */
};

/* Produces the records of b to topic for endpoint ep and answers req: at once with 202 for
 * `ack: accepted`, or from the last delivery report for `ack: kafka`. Answers 413 when b could
 * never fit in the in-flight budget, 429 (Retry-After: 1) when it does not fit now, 503 once
 * stopping. Never blocks. Server threads. b may be released when this returns. */
void ferry_ingest_produce(ferry_ingest *ing, struct ingest_endpoint *ep, ferry_http_req *req,
                          const struct ferry_ingest_topic *topic,
                          const struct ferry_ingest_batch *b, const char *answer_type);

/* Sets up and tears down the in-flight bookkeeping of ing. Main thread. */
int ferry_ingest_flight_init(ferry_ingest *ing);
void ferry_ingest_flight_release(ferry_ingest *ing);

/* Refuses new requests, waits up to timeout_ms for those in flight, answers 503 to any still
 * waiting for reports, then waits for handlers still producing. Returns how many requests were
 * answered before their reports arrived. Main thread. */
size_t ferry_ingest_flight_drain(ferry_ingest *ing, int64_t timeout_ms);

/* Answers req with status and body, counted under ep. Adds Retry-After: 1 to 429 and 503. */
void ferry_ingest_reply(struct ingest_endpoint *ep, ferry_http_req *req, int status,
                        const char *content_type, const char *body, size_t len);

/* Answers req with a REST Proxy error body {"error_code": code, "message": ...}, counted under
 * ep and, when reject is not negative, as a rejection for that reason (enum
 * ferry_ingest_reject). Adds Retry-After: 1 to 429 and 503, WWW-Authenticate to 401. */
void ferry_ingest_reply_error(struct ingest_endpoint *ep, ferry_http_req *req, int status, int code,
                              int reject, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
