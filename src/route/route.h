/*
 * route.h - the routes job: every `routes:` entry consumes its topics with a consumer group
 * and delivers the records to its HTTP target, at least once.
 *
 * Each route runs on a worker thread of its own: a librdkafka consumer and a libcurl multi
 * handle in one event loop. The main thread only starts and stops them, through the job's
 * callbacks (core/job.h). stop drains every route within its own `drain_timeout`, commits,
 * and closes its consumer.
 */
#ifndef FERRY_ROUTE_H
#define FERRY_ROUTE_H

#include "core/job.h"

/* The routes job, listed in src/jobs.c. */
extern const struct ferry_job ferry_routes_job;

#endif
