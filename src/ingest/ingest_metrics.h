/*
 * ingest_metrics.h - the metric series of ingest: requests by endpoint and status, records
 * and bytes produced, delivery failures, produce latency, and requests rejected by reason.
 *
 * Every series is registered at start, so the hot path only adds to atomics. In-flight
 * figures (bytes, records, requests) are rendered by a collector in ingest.c.
 */
#ifndef FERRY_INGEST_METRICS_H
#define FERRY_INGEST_METRICS_H

#include "core/buf.h"
#include "core/metrics.h"

/* Why a request was turned away before anything was produced. */
enum ferry_ingest_reject {
    FERRY_REJECT_UNAUTHORIZED,
    FERRY_REJECT_FORBIDDEN,
    FERRY_REJECT_UNKNOWN_TOPIC,
    FERRY_REJECT_UNSUPPORTED_MEDIA_TYPE,
    FERRY_REJECT_NOT_ACCEPTABLE,
    FERRY_REJECT_TOO_LARGE,
    FERRY_REJECT_INVALID,
    FERRY_REJECT_BACKPRESSURE,
    FERRY_REJECT_QUEUE_FULL,
    FERRY_REJECT_SHUTTING_DOWN,
    FERRY_REJECT_COUNT
};

/* The statuses counted one by one; any other is counted as "other". */
#define FERRY_INGEST_STATUSES 15

struct ferry_ingest_endpoint_metrics {
    struct ferry_counter *status[FERRY_INGEST_STATUSES + 1];
    struct ferry_counter *records;
    struct ferry_counter *bytes;
    struct ferry_counter *failed;
    struct ferry_histogram *latency;
};

struct ferry_ingest_rejects {
    struct ferry_counter *reason[FERRY_REJECT_COUNT];
};

/* Registers the series of one endpoint ("rest_proxy" or a webhook's name). Returns 0, or -1
 * when out of memory. Main thread. */
int ferry_ingest_metrics_endpoint(ferry_metrics *m, const char *endpoint,
                                  struct ferry_ingest_endpoint_metrics *out);

/* Registers ferry_ingest_rejected_total{reason}. Returns 0, or -1. Main thread. */
int ferry_ingest_metrics_rejects(ferry_metrics *m, struct ferry_ingest_rejects *out);

/* Counts one answer with status. Any thread. */
void ferry_ingest_metrics_status(struct ferry_ingest_endpoint_metrics *em, int status);

/* Appends an endpoint's object of GET /status to out: {"name", "requests", "records",
 * "bytes", "failed"}, counted since start. Returns 0, or -1 when out's cap was reached. Any
 * thread. */
int ferry_ingest_metrics_report(const struct ferry_ingest_endpoint_metrics *em, const char *name,
                                struct ferry_buf *out);

/* Appends {"<reason>": count, ...} for every reason a request is rejected for. Returns 0, or
 * -1 as above. Any thread. */
int ferry_ingest_metrics_rejects_report(const struct ferry_ingest_rejects *r,
                                        struct ferry_buf *out);

#endif
