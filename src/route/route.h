/*
 * route.h - the routes job: every `routes:` entry consumes its topics with a consumer group
 * and delivers the records to its HTTP target, at least once.
 *
 * Each route runs on a worker thread of its own: a librdkafka consumer and a libcurl multi
 * handle in one event loop. The main thread only starts and stops them.
 */
#ifndef FERRY_ROUTE_H
#define FERRY_ROUTE_H

#include <stddef.h>

#include "core/config.h"
#include "core/kafka.h"
#include "core/metrics.h"

typedef struct ferry_routes ferry_routes;

/* Builds every route of cfg (consumers, templates, senders) without starting them. Returns
 * NULL with errstr on failure. cfg, k and m must outlive the result. Main thread. */
ferry_routes *ferry_routes_new(const struct ferry_config *cfg, ferry_kafka *k, ferry_metrics *m,
                               char *errstr, size_t errstr_size);

/* Starts the worker threads. Returns 0, or -1 with errstr. Main thread. */
int ferry_routes_start(ferry_routes *rs, char *errstr, size_t errstr_size);

/* Readiness for /readyz: every route joined its group. Any thread. */
int ferry_routes_ready(void *rs, char *why, size_t why_size);

/* Drains every route (no new requests; in-flight ones finish or are abandoned after
 * drain_timeout), commits, closes the consumers and joins the threads. Main thread. */
void ferry_routes_stop(ferry_routes *rs);

/* Frees everything; stops first if needed. Accepts NULL. Main thread. */
void ferry_routes_destroy(ferry_routes *rs);

#endif
